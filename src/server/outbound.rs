//! What goes upstream for one attempt: whose credential it carries ([`Auth`]), the request
//! headers built from the client's (Codex allow-list or native deny-list, then the credential,
//! then the provider's `headers:`), and what the answer says about who served it ([`Served`]).
//! Credentials are attached as sensitive header values and never logged.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::codex;
use super::credentials::{Access, CredentialError};
use super::error::ApiError;
use super::security;
use crate::config::{Authorization, ProviderConfig, ProviderKind};
use crate::ids::{Label, ProviderId};

/// The most of an upstream error body that is read.
const MAX_ERROR_BODY: usize = 256 * 1024;

/// What served a request, for the `x-bitrouter-*` headers and the log.
#[derive(Debug, Clone)]
pub(super) struct Served {
    /// The provider.
    pub(super) provider: ProviderId,
    /// The upstream model.
    pub(super) model: String,
    /// The label, or `config` / `client` / `none` for the configured key, the client's own
    /// credential, or none.
    pub(super) account: String,
}

impl Served {
    /// The `x-bitrouter-*` response headers.
    pub(super) fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("x-bitrouter-provider", self.provider.as_str()),
            ("x-bitrouter-account", self.account.as_str()),
            ("x-bitrouter-model", self.model.as_str()),
        ] {
            if let Ok(v) = HeaderValue::try_from(value) {
                h.insert(HeaderName::from_static(name), v);
            }
        }
        h
    }
}

/// Whose credential an attempt carries.
pub(super) enum Auth {
    /// A stored account.
    Account { label: Label, access: Access },
    /// The `api_key` from the config.
    Configured(SecretString),
    /// The client's own (passthrough).
    Client,
    /// None at all.
    Nothing,
}

impl Auth {
    /// The name for `x-bitrouter-account`.
    pub(super) fn name(&self) -> String {
        match self {
            Auth::Account { label, .. } => label.to_string(),
            Auth::Configured(_) => "config".to_owned(),
            Auth::Client => "client".to_owned(),
            Auth::Nothing => "none".to_owned(),
        }
    }

    /// The stored account's label, if it is one.
    pub(super) fn label(&self) -> Option<&Label> {
        match self {
            Auth::Account { label, .. } => Some(label),
            Auth::Configured(_) | Auth::Client | Auth::Nothing => None,
        }
    }
}

/// A credential that cannot be used, as the client sees it (login needed: 401; store trouble: 502).
pub(super) fn credential_error(
    provider: &ProviderId,
    label: &Label,
    err: CredentialError,
) -> ApiError {
    match err {
        CredentialError::NotLoggedIn(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            Some("not_logged_in"),
            format!(
                "{provider} account `{label}` is not logged in; run `bitrouter login {provider} --label {label}`"
            ),
        ),
        CredentialError::NeedsLogin(message) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            Some("login_required"),
            message,
        ),
        CredentialError::Transient(message) => ApiError::bad_gateway(
            "credentials_unavailable",
            format!("cannot use {provider} account `{label}`: {message}"),
        ),
    }
}

/// A header value marked sensitive (never printed by `Debug`).
pub(super) fn sensitive(value: String) -> Option<HeaderValue> {
    let mut v = HeaderValue::try_from(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// The request headers for one attempt.
pub(super) fn upstream_headers(
    provider: &ProviderConfig,
    inbound: &HeaderMap,
    body: &Value,
    auth: &Auth,
    local_key: Option<&SecretString>,
) -> HeaderMap {
    let is_codex = matches!(provider.kind, ProviderKind::OpenaiCodex { .. });
    let mut out = if is_codex {
        codex::request_headers(inbound, body)
    } else {
        let mut h =
            security::forwardable_request_headers(inbound, matches!(auth, Auth::Client), local_key);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    };
    let style = match &provider.kind {
        ProviderKind::OpenaiCodex { .. } => Authorization::Bearer,
        ProviderKind::Generic { authorization, .. } => *authorization,
    };
    let mut attach = |secret: &str| {
        let (name, value) = match style {
            Authorization::Bearer => (header::AUTHORIZATION, format!("Bearer {secret}")),
            Authorization::XApiKey => (HeaderName::from_static("x-api-key"), secret.to_owned()),
        };
        if let Some(v) = sensitive(value) {
            out.insert(name, v);
        }
    };
    match auth {
        Auth::Account { access, .. } => {
            attach(access.token.expose_secret());
            if is_codex
                && let Some(id) = access
                    .account_id
                    .as_deref()
                    .and_then(|a| HeaderValue::try_from(a).ok())
            {
                out.insert(HeaderName::from_static("chatgpt-account-id"), id);
            }
        }
        Auth::Configured(key) => attach(key.expose_secret()),
        Auth::Client if is_codex => {
            for name in ["authorization", "chatgpt-account-id"] {
                for value in inbound.get_all(name) {
                    if !security::is_local_key(value.as_bytes(), local_key) {
                        let mut v = value.clone();
                        v.set_sensitive(true);
                        out.append(HeaderName::from_static(name), v);
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

/// Upstream headers worth relaying on an error answer (`x-*` such as `x-codex-*` and request
/// ids, and `retry-after`).
pub(super) fn error_meta(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in upstream {
        let n = name.as_str();
        if (n.starts_with("x-") && !security::is_bitrouter_header(name)) || n == "retry-after" {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// An upstream error body, read up to a bound.
pub(super) async fn read_error_body(resp: reqwest::Response) -> Bytes {
    let mut stream = resp.bytes_stream();
    let mut buf = BytesMut::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = MAX_ERROR_BODY.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    buf.freeze()
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
    fn codex_headers_carry_the_stored_credential_and_drop_the_clients() {
        let config = config("");
        let provider = config.provider(&ProviderId::openai_codex()).unwrap();
        let mut inbound = HeaderMap::new();
        inbound.insert("authorization", HeaderValue::from_static("Bearer client"));
        inbound.insert("chatgpt-account-id", HeaderValue::from_static("client-acc"));
        let auth = Auth::Account {
            label: "work".parse().unwrap(),
            access: Access {
                token: SecretString::from("stored"),
                account_id: Some("acc-1".into()),
            },
        };
        let h = upstream_headers(provider, &inbound, &serde_json::json!({}), &auth, None);
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
        let h = upstream_headers(
            provider,
            &inbound,
            &serde_json::json!({}),
            &Auth::Client,
            None,
        );
        assert_eq!(h["authorization"], "Bearer client");
        assert_eq!(h["chatgpt-account-id"], "client-acc");
    }

    #[test]
    fn generic_override_uses_the_configured_style_and_header_overrides() {
        let config = config(
            "providers:\n  anth:\n    base_url: https://api.anthropic.com/v1\n    api: anthropic_messages\n    authorization: x-api-key\n    api_key: k\n    headers: {anthropic-version: '2023-06-01'}\n",
        );
        let provider = config.provider(&"anth".parse().unwrap()).unwrap();
        let mut inbound = HeaderMap::new();
        inbound.insert("x-api-key", HeaderValue::from_static("client-key"));
        inbound.insert("anthropic-version", HeaderValue::from_static("2020-01-01"));
        let h = upstream_headers(
            provider,
            &inbound,
            &serde_json::json!({}),
            &Auth::Configured(SecretString::from("k")),
            None,
        );
        assert_eq!(h["x-api-key"], "k");
        assert_eq!(h.get_all("x-api-key").iter().count(), 1);
        assert_eq!(h["anthropic-version"], "2023-06-01");
        assert!(h.get("authorization").is_none());
    }
}
