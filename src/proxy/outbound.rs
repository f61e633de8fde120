//! What goes upstream for one attempt: whose credential it carries ([`Auth`]), the request
//! headers built from the client's (Codex allow-list or native deny-list, then the credential,
//! then the provider's `headers:`), and what the answer says about who served it ([`Served`]).
//! Credentials are attached by [`crate::upstream::attach`], as sensitive header values that are
//! never logged.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};

use super::codex;
use super::error::{ApiError, ErrorCode, ErrorKind};
use crate::config::{Api, ProviderConfig, ProviderKind};
use crate::ids::{Label, ProviderId};
use crate::upstream::attach::{self, attach_access, attach_secret, style_of};
use crate::upstream::credentials::{Access, CredentialError};
use crate::upstream::headers::{self as hygiene, forwardable_request_headers};

/// The most of an upstream error body that is read.
pub const MAX_ERROR_BODY: usize = 256 * 1024;

/// What served a request, for the `x-bitrouter-*` headers and the log.
#[derive(Debug, Clone)]
pub struct Served {
    /// The provider.
    pub provider: ProviderId,
    /// The upstream model.
    pub model: Arc<str>,
    /// The label, or `config` / `client` / `none` for the configured key, the client's own
    /// credential, or none.
    pub account: Arc<str>,
}

impl Served {
    /// Adds the `x-bitrouter-*` response headers to `headers`.
    pub fn add_headers(&self, headers: &mut HeaderMap) {
        // Names made at compile time: made here, each would be checked byte by byte again.
        const PROVIDER: HeaderName = HeaderName::from_static("x-bitrouter-provider");
        const MODEL: HeaderName = HeaderName::from_static("x-bitrouter-model");
        for (name, value) in [
            (PROVIDER, self.provider.as_str()),
            (hygiene::ACCOUNT_HEADER, &self.account),
            (MODEL, &self.model),
        ] {
            if let Ok(v) = HeaderValue::try_from(value) {
                headers.insert(name, v);
            }
        }
    }
}

/// Whose credential an attempt carries.
pub enum Auth {
    /// A stored account.
    Account {
        /// The label.
        label: Label,
        /// Its token.
        access: Access,
    },
    /// The `api_key` from the config.
    Configured(SecretString),
    /// The client's own (passthrough).
    Client,
    /// None at all.
    Nothing,
}

impl Auth {
    /// The name for `x-bitrouter-account`.
    #[must_use]
    pub fn name(&self) -> Arc<str> {
        match self {
            Auth::Account { label, .. } => label.shared(),
            Auth::Configured(_) => Arc::from("config"),
            Auth::Client => Arc::from("client"),
            Auth::Nothing => Arc::from("none"),
        }
    }

    /// The stored account's label, if it is one.
    #[must_use]
    pub fn label(&self) -> Option<&Label> {
        match self {
            Auth::Account { label, .. } => Some(label),
            Auth::Configured(_) | Auth::Client | Auth::Nothing => None,
        }
    }
}

/// A credential that cannot be used, as the client sees it (login needed: 401; store trouble: 502).
#[must_use]
pub fn credential_error(provider: &ProviderId, label: &Label, err: CredentialError) -> ApiError {
    match err {
        CredentialError::NotLoggedIn(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Authentication,
            ErrorCode::NotLoggedIn,
            format!(
                "{provider} account `{label}` is not logged in; run `bitrouter login {provider} --label {label}`"
            ),
        ),
        CredentialError::NeedsLogin(message) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Authentication,
            ErrorCode::LoginRequired,
            message,
        ),
        CredentialError::Transient(message) => ApiError::bad_gateway(
            ErrorCode::CredentialsUnavailable,
            format!("cannot use {provider} account `{label}`: {message}"),
        ),
    }
}

/// The request headers for one attempt. `session` is the `prompt_cache_key` of the body a
/// Codex request carries (it names the session).
#[must_use]
pub fn upstream_headers(
    provider: &ProviderConfig,
    inbound: &HeaderMap,
    session: Option<&str>,
    auth: &Auth,
    local_key: Option<&SecretString>,
) -> HeaderMap {
    let is_codex = matches!(provider.kind, ProviderKind::OpenaiCodex { .. });
    let mut out = if is_codex {
        codex::request_headers(inbound, session)
    } else {
        let mut h = forwardable_request_headers(inbound, matches!(auth, Auth::Client), local_key);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    };
    let style = style_of(provider);
    match auth {
        Auth::Account { access, .. } if is_codex => attach_access(&mut out, style, access),
        // The ChatGPT account id means nothing to other providers.
        Auth::Account { access, .. } => {
            attach_secret(&mut out, style, access.token.expose_secret())
        }
        Auth::Configured(key) => attach_secret(&mut out, style, key.expose_secret()),
        Auth::Client if is_codex => {
            for name in [header::AUTHORIZATION, attach::ACCOUNT_ID] {
                for value in inbound.get_all(&name) {
                    if !hygiene::is_local_key(value.as_bytes(), local_key) {
                        let mut v = value.clone();
                        v.set_sensitive(true);
                        out.append(name.clone(), v);
                    }
                }
            }
        }
        Auth::Client | Auth::Nothing => {}
    }
    for (name, value) in &provider.headers {
        out.insert(name.clone(), value.clone());
    }
    out
}

/// Headers for a translated request to a generic provider: it is asked for a stream, and an
/// Anthropic upstream gets the `anthropic-version` it requires unless the client or the
/// provider's `headers:` set one.
pub fn translated_headers(headers: &mut HeaderMap, api: Api) {
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
    if api == Api::AnthropicMessages && !headers.contains_key(ANTHROPIC_VERSION) {
        headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static("2023-06-01"));
    }
}

/// The header naming the Anthropic API version.
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");

/// Upstream headers worth relaying on an error answer (`x-*` such as `x-codex-*` and request
/// ids, and `retry-after`).
#[must_use]
pub fn error_meta(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in upstream {
        let n = name.as_str();
        if (n.starts_with("x-") && !hygiene::is_bitrouter_header(name)) || n == "retry-after" {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::env::Env;

    fn config(text: &str) -> Config {
        Config::parse(text, &Env::default()).unwrap()
    }

    #[test]
    fn translated_headers_ask_for_a_stream_and_keep_a_set_anthropic_version() {
        let mut headers = HeaderMap::new();
        translated_headers(&mut headers, Api::AnthropicMessages);
        assert_eq!(headers["accept"], "text/event-stream");
        assert_eq!(headers["anthropic-version"], "2023-06-01");
        let mut headers = HeaderMap::new();
        headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static("2024-01-01"));
        translated_headers(&mut headers, Api::AnthropicMessages);
        assert_eq!(headers["anthropic-version"], "2024-01-01");
        let mut headers = HeaderMap::new();
        translated_headers(&mut headers, Api::OpenaiChat);
        assert!(!headers.contains_key(ANTHROPIC_VERSION));
    }

    #[test]
    fn codex_headers_carry_the_stored_credential_and_drop_the_clients() {
        let config = config("");
        let provider = config.provider(&ProviderId::openai_codex()).unwrap();
        let mut inbound = HeaderMap::new();
        inbound.insert("authorization", HeaderValue::from_static("Bearer client"));
        inbound.insert("chatgpt-account-id", HeaderValue::from_static("client-acc"));
        let auth = Auth::Account {
            label: "work".parse().unwrap(),
            access: Access {
                token: SecretString::from("stored").into(),
                account_id: Some("acc-1".into()),
            },
        };
        let h = upstream_headers(provider, &inbound, None, &auth, None);
        assert_eq!(h["authorization"], "Bearer stored");
        assert!(h["authorization"].is_sensitive());
        assert_eq!(h["chatgpt-account-id"], "acc-1");
        assert_eq!(h.get_all("authorization").iter().count(), 1);
    }

    #[test]
    fn passthrough_forwards_the_clients_credential() {
        let config = config("providers:\n  openai-codex:\n    auth_mode: passthrough\n");
        let provider = config.provider(&ProviderId::openai_codex()).unwrap();
        let mut inbound = HeaderMap::new();
        inbound.insert("authorization", HeaderValue::from_static("Bearer client"));
        inbound.insert("chatgpt-account-id", HeaderValue::from_static("client-acc"));
        let h = upstream_headers(provider, &inbound, None, &Auth::Client, None);
        assert_eq!(h["authorization"], "Bearer client");
        assert_eq!(h["chatgpt-account-id"], "client-acc");
    }

    #[test]
    fn generic_override_uses_the_configured_style_and_header_overrides() {
        let config = config(
            "providers:\n  anth:\n    base_url: https://api.anthropic.com/v1\n    api: anthropic_messages\n    authorization: x-api-key\n    api_key: k\n    headers: {anthropic-version: '2023-06-01'}\n",
        );
        let provider = config.provider("anth").unwrap();
        let mut inbound = HeaderMap::new();
        inbound.insert("x-api-key", HeaderValue::from_static("client-key"));
        inbound.insert("anthropic-version", HeaderValue::from_static("2020-01-01"));
        let h = upstream_headers(
            provider,
            &inbound,
            None,
            &Auth::Configured(SecretString::from("k")),
            None,
        );
        assert_eq!(h["x-api-key"], "k");
        assert_eq!(h.get_all("x-api-key").iter().count(), 1);
        assert_eq!(h["anthropic-version"], "2023-06-01");
        assert!(h.get("authorization").is_none());
    }
}
