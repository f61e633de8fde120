//! The API a request came in on: its wire API, the error envelope its clients understand, its
//! local route and the path a provider that speaks it natively serves it under.

use crate::config::{Api, ProviderConfig};

use super::error::{ApiError, ErrorCode, Flavor};

/// The API a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/responses/compact` (the Codex CLI's remote compaction; JSON, not a stream).
    Compact,
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

impl Inbound {
    /// Every inbound API.
    pub const ALL: [Inbound; 5] = [
        Inbound::Responses,
        Inbound::Compact,
        Inbound::ChatCompletions,
        Inbound::Messages,
        Inbound::CountTokens,
    ];

    /// The inbound API served at `path`, if any.
    #[must_use]
    pub fn at(path: &str) -> Option<Inbound> {
        Inbound::ALL.into_iter().find(|i| i.route() == path)
    }

    /// The wire API this is.
    #[must_use]
    pub fn api(self) -> Api {
        match self {
            Inbound::Responses | Inbound::Compact => Api::OpenaiResponses,
            Inbound::ChatCompletions => Api::OpenaiChat,
            Inbound::Messages | Inbound::CountTokens => Api::AnthropicMessages,
        }
    }

    /// The error envelope its clients understand.
    #[must_use]
    pub fn flavor(self) -> Flavor {
        match self {
            Inbound::Responses | Inbound::Compact | Inbound::ChatCompletions => Flavor::OpenAi,
            Inbound::Messages | Inbound::CountTokens => Flavor::Anthropic,
        }
    }

    /// The local route.
    #[must_use]
    pub fn route(self) -> &'static str {
        match self {
            Inbound::Responses => "/v1/responses",
            Inbound::Compact => "/v1/responses/compact",
            Inbound::ChatCompletions => "/v1/chat/completions",
            Inbound::Messages => "/v1/messages",
            Inbound::CountTokens => "/v1/messages/count_tokens",
        }
    }

    /// The path appended to a native provider's `base_url`.
    #[must_use]
    pub fn upstream_path(self) -> &'static str {
        match self {
            Inbound::Responses => "responses",
            Inbound::Compact => "responses/compact",
            Inbound::ChatCompletions => "chat/completions",
            Inbound::Messages => "messages",
            Inbound::CountTokens => "messages/count_tokens",
        }
    }
}

/// A provider that neither speaks the inbound API nor can be reached through a translation
/// (`/v1/responses/compact` to a provider that does not speak Responses): a clear 400.
#[must_use]
pub fn untranslated(inbound: Inbound, provider: &ProviderConfig) -> ApiError {
    let speaks: Vec<&str> = provider.apis().iter().map(|a| a.as_str()).collect();
    ApiError::bad_request(
        ErrorCode::UnsupportedApi,
        format!(
            "{} cannot serve {} ({}): it speaks {}, and this build has no translation between these APIs",
            provider.id,
            inbound.route(),
            inbound.api().as_str(),
            speaks.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::env::Env;

    #[test]
    fn untranslated_names_provider_and_api() {
        // Compaction is the one request that has no translation.
        let config = Config::parse(
            "providers:\n  chatonly:\n    base_url: http://127.0.0.1:1/v1\n    api: openai_chat\n",
            &Env::default(),
        )
        .unwrap();
        let provider = config.provider("chatonly").unwrap();
        let e = untranslated(Inbound::Compact, provider);
        assert_eq!(e.status, 400);
        assert!(e.message.contains("chatonly"), "{}", e.message);
        assert!(e.message.contains("/v1/responses/compact"), "{}", e.message);
        assert!(e.message.contains("openai_chat"), "{}", e.message);
    }

    #[test]
    fn every_route_finds_its_inbound_api() {
        for inbound in Inbound::ALL {
            assert_eq!(Inbound::at(inbound.route()), Some(inbound));
        }
        assert_eq!(Inbound::at("/v1/models"), None);
    }
}
