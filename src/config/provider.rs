//! The `providers:` section: the raw YAML shape of one provider, and its validation into a
//! [`ProviderConfig`] with every default filled in (the built-in `openai-codex` needs no entry).

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::value::{OneOrMany, Parsed, Text};
use crate::ids::{Label, ProviderId};

/// Production base URL of ChatGPT's Codex backend.
pub const CODEX_BASE_URL: &str = "https://chatgpt.com/backend-api/codex";
/// Production OAuth issuer for ChatGPT sign-in.
pub const CODEX_ISSUER: &str = "https://auth.openai.com";
/// The loopback port the Codex CLI's OAuth client is registered for.
pub const CODEX_CALLBACK_PORT: u16 = 1455;
/// Default upstream connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default upstream idle timeout (no byte for this long ends the request); Codex uses 300 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default wait for an answer to begin (its status line and headers), when `timeouts.idle` is
/// not set either: a provider asked for a whole answer (not a stream) may think that long
/// first. When only `idle` is set, the first byte gets the same time.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = DEFAULT_IDLE_TIMEOUT;

/// The wire API an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// OpenAI Chat Completions (`POST /chat/completions`).
    OpenaiChat,
    /// OpenAI Responses (`POST /responses`).
    OpenaiResponses,
    /// Anthropic Messages (`POST /messages`).
    AnthropicMessages,
}

impl Api {
    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Api::OpenaiChat => "openai_chat",
            Api::OpenaiResponses => "openai_responses",
            Api::AnthropicMessages => "anthropic_messages",
        }
    }
}

/// How a credential is presented upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authorization {
    /// `Authorization: Bearer <key>`.
    #[default]
    Bearer,
    /// `x-api-key: <key>` (Anthropic style).
    XApiKey,
}

/// Whose credential travels upstream (Tailscale Aperture's modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// Attach the configured or stored credential; ignore the client's. `stored` is the same
    /// thing for `openai-codex`.
    #[default]
    #[serde(alias = "stored")]
    Override,
    /// Forward the client's own credential; fall back to ours only when it sent none.
    Passthrough,
    /// Strip credentials.
    None,
}

impl AuthMode {
    /// Whether requests in this mode may carry a credential upstream.
    #[must_use]
    pub fn carries_credentials(self) -> bool {
        !matches!(self, AuthMode::None)
    }
}

/// How accounts of one provider share the load (see `crate::picker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Start with the account that has the most quota left in its tightest window.
    #[default]
    Headroom,
    /// Use accounts in order; move on only when one cannot serve.
    Failover,
    /// Rotate the starting account on each request.
    RoundRobin,
}

impl Strategy {
    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Headroom => "headroom",
            Strategy::Failover => "failover",
            Strategy::RoundRobin => "round-robin",
        }
    }
}

/// The raw YAML shape of a provider entry. Every key is optional here; which keys a provider
/// may use and which it must have is decided by [`RawProvider::validate`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    base_url: Option<Parsed<Url>>,
    api: Option<OneOrMany<Api>>,
    authorization: Option<Authorization>,
    auth_mode: Option<AuthMode>,
    api_key: Option<Text>,
    models: Option<Vec<Text>>,
    #[serde(default)]
    headers: BTreeMap<String, Text>,
    oauth: Option<RawOAuth>,
    accounts: Option<Vec<Label>>,
    strategy: Option<Strategy>,
    timeouts: Option<RawTimeouts>,
    websocket: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth {
    issuer: Option<Parsed<Url>>,
    callback_port: Option<Parsed<u16>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    /// Seconds to establish a connection.
    connect: Option<Parsed<f64>>,
    /// Seconds from sending the request until the answer begins.
    first_byte: Option<Parsed<f64>>,
    /// Seconds without a byte from upstream, once the answer flows, before it is abandoned.
    idle: Option<Parsed<f64>>,
}

/// OAuth endpoints of the `openai-codex` provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    /// Issuer base: authorize is `{issuer}/oauth/authorize`, token is `{issuer}/oauth/token`.
    pub issuer: Url,
    /// Preferred loopback callback port (the Codex CLI client is registered for 1455 and 1457).
    pub callback_port: u16,
}

/// What kind of upstream a provider is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// ChatGPT's Codex backend with stored OAuth sign-ins.
    OpenaiCodex {
        /// Sign-in endpoints.
        oauth: OAuthConfig,
    },
    /// Any OpenAI- or Anthropic-compatible upstream.
    Generic {
        /// The APIs it speaks, preferred first.
        apis: Vec<Api>,
        /// How the key is presented.
        authorization: Authorization,
    },
}

/// Limits for upstream requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// Time to establish a connection.
    pub connect: Duration,
    /// Time from sending the request until the answer begins (status line and headers).
    pub first_byte: Duration,
    /// Longest pause between bytes of an answer that has begun.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            first_byte: DEFAULT_FIRST_BYTE_TIMEOUT,
            idle: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// One validated provider with its defaults applied.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Its id (the key under `providers:`).
    pub id: ProviderId,
    /// Codex or generic.
    pub kind: ProviderKind,
    /// Upstream base URL (paths such as `/responses` are appended).
    pub base_url: Url,
    /// Whose credential travels upstream.
    pub auth_mode: AuthMode,
    /// A configured API key (generic providers).
    pub api_key: Option<SecretString>,
    /// Models declared in the config, matched exactly.
    pub models: Vec<String>,
    /// Extra or overriding request headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Account labels in failover order; `None` means every stored label.
    pub accounts: Option<Vec<Label>>,
    /// How accounts share the load.
    pub strategy: Strategy,
    /// Upstream timeouts.
    pub timeouts: Timeouts,
    /// Streams `/responses` over the backend's WebSocket transport (Codex providers), falling
    /// back to HTTP when the upgrade is refused.
    pub websocket: bool,
}

impl ProviderConfig {
    /// The built-in `openai-codex` provider with its production endpoints.
    #[must_use]
    pub fn builtin_openai_codex() -> Self {
        let Ok(base_url) = Url::parse(CODEX_BASE_URL) else {
            unreachable!("constant URL parses")
        };
        let Ok(issuer) = Url::parse(CODEX_ISSUER) else {
            unreachable!("constant URL parses")
        };
        ProviderConfig {
            id: ProviderId::openai_codex(),
            kind: ProviderKind::OpenaiCodex {
                oauth: OAuthConfig {
                    issuer,
                    callback_port: CODEX_CALLBACK_PORT,
                },
            },
            base_url,
            auth_mode: AuthMode::Override,
            api_key: None,
            models: Vec::new(),
            headers: Vec::new(),
            accounts: None,
            strategy: Strategy::default(),
            timeouts: Timeouts::default(),
            websocket: false,
        }
    }

    /// The OAuth settings, for the Codex provider.
    #[must_use]
    pub fn oauth(&self) -> Option<&OAuthConfig> {
        match &self.kind {
            ProviderKind::OpenaiCodex { oauth } => Some(oauth),
            ProviderKind::Generic { .. } => None,
        }
    }

    /// The APIs this provider speaks, preferred first.
    #[must_use]
    pub fn apis(&self) -> &[Api] {
        match &self.kind {
            ProviderKind::OpenaiCodex { .. } => &[Api::OpenaiResponses],
            ProviderKind::Generic { apis, .. } => apis,
        }
    }
}

/// A validation failure: the key under the provider (`base_url`, `oauth.issuer`, or empty for
/// the provider itself) and what is wrong with it.
pub(super) type Issue = (&'static str, String);

impl RawProvider {
    /// Checks which keys this provider may use, applies defaults, and refuses clear-text
    /// credentials to other machines.
    pub(super) fn validate(self, id: ProviderId) -> Result<ProviderConfig, Issue> {
        let headers = self
            .headers
            .into_iter()
            .map(|(name, Text(value))| {
                let name = HeaderName::try_from(name.as_str())
                    .map_err(|_| ("headers", format!("`{name}` is not a valid header name")))?;
                let value = HeaderValue::try_from(value).map_err(|_| {
                    (
                        "headers",
                        format!("the value of `{name}` is not a valid header value"),
                    )
                })?;
                Ok((name, value))
            })
            .collect::<Result<Vec<_>, Issue>>()?;
        let models = self
            .models
            .unwrap_or_default()
            .into_iter()
            .map(|Text(m)| m)
            .collect();
        let timeouts = timeouts(self.timeouts)?;

        if id.is_openai_codex() {
            for (present, key, why) in [
                (
                    self.api.is_some(),
                    "api",
                    "it always speaks the Responses API",
                ),
                (
                    self.authorization.is_some(),
                    "authorization",
                    "it uses stored sign-ins",
                ),
                (
                    self.api_key.is_some(),
                    "api_key",
                    "it uses stored sign-ins: run `bitrouter login openai-codex`",
                ),
            ] {
                if present {
                    return Err((key, format!("not allowed for openai-codex: {why}")));
                }
            }
            let mut provider = ProviderConfig::builtin_openai_codex();
            if let Some(Parsed(url)) = self.base_url {
                provider.base_url = url;
            }
            if let Some(mode) = self.auth_mode {
                if mode == AuthMode::None {
                    return Err((
                        "auth_mode",
                        "`none` is not allowed for openai-codex (use `stored` or `passthrough`)"
                            .into(),
                    ));
                }
                provider.auth_mode = mode;
            }
            if let ProviderKind::OpenaiCodex { oauth } = &mut provider.kind
                && let Some(raw) = self.oauth
            {
                if let Some(Parsed(issuer)) = raw.issuer {
                    require_private_transport("oauth.issuer", &issuer)?;
                    oauth.issuer = issuer;
                }
                if let Some(Parsed(port)) = raw.callback_port {
                    oauth.callback_port = port;
                }
            }
            require_private_transport("base_url", &provider.base_url)?;
            provider.models = models;
            provider.headers = headers;
            provider.accounts = self.accounts;
            provider.strategy = self.strategy.unwrap_or_default();
            provider.timeouts = timeouts;
            provider.websocket = self.websocket.unwrap_or(false);
            return Ok(provider);
        }

        if self.oauth.is_some() {
            return Err(("oauth", "only openai-codex signs in with OAuth".into()));
        }
        if self.websocket == Some(true) {
            return Err((
                "websocket",
                "only openai-codex streams over the backend's WebSocket transport".into(),
            ));
        }
        let Some(Parsed(base_url)) = self.base_url else {
            return Err((
                "",
                "missing `base_url`: every configured provider needs its upstream URL".into(),
            ));
        };
        let auth_mode = self.auth_mode.unwrap_or_default();
        if auth_mode.carries_credentials() {
            require_private_transport("base_url", &base_url)?;
        }
        let apis = self.api.map_or_else(|| vec![Api::OpenaiChat], |a| a.0);
        if apis.is_empty() {
            return Err(("api", "list at least one API".into()));
        }
        let api_key = self
            .api_key
            .map(|Text(k)| k)
            .filter(|k| !k.is_empty())
            .map(SecretString::from);
        Ok(ProviderConfig {
            id,
            kind: ProviderKind::Generic {
                apis,
                authorization: self.authorization.unwrap_or_default(),
            },
            base_url,
            auth_mode,
            api_key,
            models,
            headers,
            accounts: self.accounts,
            strategy: self.strategy.unwrap_or_default(),
            timeouts,
            websocket: false,
        })
    }
}

fn timeouts(raw: Option<RawTimeouts>) -> Result<Timeouts, Issue> {
    let mut t = Timeouts::default();
    let Some(raw) = raw else { return Ok(t) };
    let first_byte_set = raw.first_byte.is_some();
    for (key, value, slot) in [
        ("timeouts.connect", raw.connect, &mut t.connect),
        ("timeouts.first_byte", raw.first_byte, &mut t.first_byte),
        ("timeouts.idle", raw.idle, &mut t.idle),
    ] {
        if let Some(Parsed(secs)) = value {
            *slot = Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or((key, "expected a positive number of seconds".to_owned()))?;
        }
    }
    if !first_byte_set {
        t.first_byte = t.idle;
    }
    Ok(t)
}

/// Whether `url` points at this machine (`localhost`, `127.0.0.0/8`, `::1`).
#[must_use]
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Refuses a URL that would send a credential in clear text to another machine.
fn require_private_transport(key: &'static str, url: &Url) -> Result<(), Issue> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err((
            key,
            format!(
                "`{url}` would send credentials in clear text; use https (plain http is allowed only to a loopback host)"
            ),
        )),
        other => Err((key, format!("unsupported scheme `{other}` (use https)"))),
    }
}
