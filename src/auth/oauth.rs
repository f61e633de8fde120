//! The Codex CLI's OAuth client against `{issuer}` (spec §1–§3): the authorize URL with exactly
//! the Codex parameters (plus `originator=bitrouter`), the authorization-code exchange (form
//! POST), the refresh (JSON POST) with its error classification, and best-effort revocation.
//! Every endpoint hangs off the configured issuer, so tests point it at a local fake.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::jwt;
use crate::store::{Credential, CredentialKey, CredentialKind, Source};

/// The Codex CLI's public OAuth client id.
pub const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
/// Requested scopes: the set every third-party client uses (the Codex CLI's newer connector
/// scopes are not needed to call the Responses backend).
pub const SCOPE: &str = "openid profile email offline_access";
/// The `originator` bitrouter announces (honestly) in the authorize URL.
pub const ORIGINATOR: &str = "bitrouter";
/// How long a token-endpoint call may take.
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a revocation may take (best effort).
pub const REVOKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A token-endpoint or transport failure.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The request did not complete (connection, timeout, TLS).
    #[error("cannot reach {url}")]
    Transport {
        /// The endpoint (no query, no secrets).
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The endpoint answered with an error status.
    #[error("{url} answered {status}: {message}")]
    Status {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The OAuth error code (`invalid_grant`, `refresh_token_reused`, …), if any.
        code: Option<String>,
        /// The server's description.
        message: String,
    },
    /// The answer was not what the protocol promises.
    #[error("unexpected answer from {url}: {message}")]
    Invalid {
        /// The endpoint.
        url: String,
        /// What was wrong.
        message: String,
    },
}

/// How a failed refresh is handled (spec §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshFailure {
    /// The refresh token is dead: the user must sign in again. The reason is shown to them.
    Permanent(String),
    /// Anything else (network, 5xx, throttling): try again later.
    Transient,
}

/// Tokens from the token endpoint.
#[derive(Debug)]
pub struct TokenSet {
    /// The bearer token.
    pub access_token: SecretString,
    /// The (rotated) refresh token, when the endpoint sent one.
    pub refresh_token: Option<SecretString>,
    /// The id_token, when sent.
    pub id_token: Option<SecretString>,
    /// `expires_in` seconds, when sent.
    pub expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct RawTokens {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

/// The OAuth client for one issuer.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    issuer: Url,
    http: reqwest::Client,
}

impl OAuthClient {
    /// A client for `issuer` (e.g. `https://auth.openai.com`).
    #[must_use]
    pub fn new(issuer: Url, http: reqwest::Client) -> Self {
        OAuthClient { issuer, http }
    }

    /// `{issuer}/{path}` (the issuer may carry a path prefix).
    #[must_use]
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{path}", self.issuer.as_str().trim_end_matches('/'))
    }

    /// The token endpoint.
    #[must_use]
    pub fn token_url(&self) -> String {
        self.endpoint("oauth/token")
    }

    /// The authorize URL: the Codex CLI's parameters, in its order (spec §1.2), with
    /// `originator=bitrouter`.
    #[must_use]
    pub fn authorize_url(&self, redirect_uri: &str, challenge: &str, state: &str) -> String {
        let params = [
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", redirect_uri),
            ("scope", SCOPE),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("id_token_add_organizations", "true"),
            ("codex_cli_simplified_flow", "true"),
            ("state", state),
            ("originator", ORIGINATOR),
        ];
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        format!("{}?{}", self.endpoint("oauth/authorize"), query.join("&"))
    }

    /// Exchanges an authorization code (spec §1.4). `redirect_uri` must be byte-identical to the
    /// one in the authorize URL.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &SecretString,
    ) -> Result<TokenSet, OAuthError> {
        let url = self.token_url();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", CLIENT_ID),
            ("code_verifier", verifier.expose_secret()),
        ];
        let request = self.http.post(&url).timeout(TOKEN_TIMEOUT).form(&form);
        self.tokens(&url, request).await
    }

    /// Refreshes (spec §3.1): JSON body, no scope, as current Codex sends it.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, OAuthError> {
        let url = self.token_url();
        let body = serde_json::json!({
            "client_id": CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token.expose_secret(),
        });
        let request = self.http.post(&url).timeout(TOKEN_TIMEOUT).json(&body);
        self.tokens(&url, request).await
    }

    /// Revokes a refresh token (or, without one, the access token), best effort within 10 s
    /// (spec §3.6). Failures are logged, not returned: logging out locally must not depend on it.
    pub async fn revoke(&self, credential: &Credential) {
        let url = self.endpoint("oauth/revoke");
        let body = match &credential.refresh_token {
            Some(rt) if !rt.expose_secret().is_empty() => serde_json::json!({
                "token": rt.expose_secret(),
                "token_type_hint": "refresh_token",
                "client_id": CLIENT_ID,
            }),
            Some(_) | None => serde_json::json!({
                "token": credential.access_token.expose_secret(),
                "token_type_hint": "access_token",
            }),
        };
        let result = self
            .http
            .post(&url)
            .timeout(REVOKE_TIMEOUT)
            .json(&body)
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => {
                tracing::debug!(key = %credential.key, "revoked the refresh token");
            }
            Ok(resp) => {
                tracing::warn!(key = %credential.key, status = resp.status().as_u16(), "token revocation was refused");
            }
            Err(e) => tracing::warn!(key = %credential.key, error = %e, "token revocation failed"),
        }
    }

    async fn tokens(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<TokenSet, OAuthError> {
        let body = send(url, request).await?;
        let raw: RawTokens = serde_json::from_slice(&body).map_err(|_| OAuthError::Invalid {
            url: url.to_owned(),
            message: "the token response is not the expected JSON".into(),
        })?;
        Ok(TokenSet {
            access_token: SecretString::from(raw.access_token),
            refresh_token: raw.refresh_token.map(SecretString::from),
            id_token: raw.id_token.map(SecretString::from),
            expires_in: raw.expires_in,
        })
    }
}

/// Sends a request; a non-2xx answer becomes [`OAuthError::Status`] with the OAuth error code.
pub(crate) async fn send(
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<bytes::Bytes, OAuthError> {
    let transport = |source| OAuthError::Transport {
        url: url.to_owned(),
        source,
    };
    let resp = request.send().await.map_err(transport)?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(transport)?;
    if status.is_success() {
        return Ok(body);
    }
    let (code, message) = describe_error_body(&body);
    Err(OAuthError::Status {
        url: url.to_owned(),
        status: status.as_u16(),
        code,
        message,
    })
}

/// The error code and message of a token-endpoint error body, as Codex reads them: the message
/// from `error_description`, `error.message`, the `error` string or `error.code`, else the raw
/// body (shortened); the code from `error` (string), `error.code` or top-level `code`.
fn describe_error_body(body: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(body);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, shorten(&text));
    };
    let s = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    let error = value.get("error");
    let code = s(error)
        .or_else(|| s(error.and_then(|e| e.get("code"))))
        .or_else(|| s(value.get("code")));
    let message = s(value.get("error_description"))
        .or_else(|| s(error.and_then(|e| e.get("message"))))
        .or_else(|| code.clone())
        .or_else(|| s(value.get("detail")))
        .unwrap_or_else(|| shorten(&text));
    (code, message)
}

fn shorten(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None if text.is_empty() => "(empty body)".to_owned(),
        None => text.to_owned(),
    }
}

/// Classifies a failed refresh (spec §3.4): a 401, `refresh_token_expired|reused|invalidated`
/// or `invalid_grant` means the user must sign in again; everything else is transient.
#[must_use]
pub fn classify_refresh_failure(error: &OAuthError) -> RefreshFailure {
    let OAuthError::Status { status, code, .. } = error else {
        return RefreshFailure::Transient;
    };
    let code = code.as_deref().map(str::to_ascii_lowercase);
    let reason = match code.as_deref() {
        Some("refresh_token_expired") => {
            "Your access token could not be refreshed because your refresh token has expired. Please log out and sign in again."
        }
        Some("refresh_token_reused") => {
            "Your access token could not be refreshed because your refresh token was already used. Please log out and sign in again."
        }
        Some("refresh_token_invalidated") => {
            "Your access token could not be refreshed because your refresh token was revoked. Please log out and sign in again."
        }
        Some("invalid_grant") => {
            "Your access token could not be refreshed. Please log out and sign in again."
        }
        _ if *status == 401 => {
            "Your access token could not be refreshed. Please log out and sign in again."
        }
        _ => return RefreshFailure::Transient,
    };
    RefreshFailure::Permanent(reason.to_owned())
}

/// A new credential from a login's tokens: email, plan, account and expiry from the JWT claims
/// (account and email from the id_token first, plan and expiry from the access token first).
#[must_use]
pub fn credential_from_tokens(
    key: CredentialKey,
    tokens: TokenSet,
    source: Source,
    now: i64,
) -> Credential {
    let access = jwt::claims(tokens.access_token.expose_secret());
    let id = tokens
        .id_token
        .as_ref()
        .map(|t| jwt::claims(t.expose_secret()))
        .unwrap_or_default();
    Credential {
        key,
        kind: CredentialKind::Oauth,
        expires_at: access
            .expires_at
            .or_else(|| tokens.expires_in.map(|s| now.saturating_add(s))),
        account_id: id.account_id.or(access.account_id),
        email: id.email.or(access.email),
        plan: access.plan.or(id.plan),
        access_token: Arc::new(tokens.access_token),
        refresh_token: tokens.refresh_token,
        id_token: tokens.id_token,
        last_refresh: Some(now),
        source,
        needs_login: None,
        codex_home: None,
    }
}

/// Applies a refresh's tokens to a stored credential: fields the response carried replace the
/// old ones, the account id stays (as Codex does), expiry and plan follow the new tokens.
pub fn apply_refresh(credential: &mut Credential, tokens: TokenSet, now: i64) {
    let access = jwt::claims(tokens.access_token.expose_secret());
    credential.expires_at = access
        .expires_at
        .or_else(|| tokens.expires_in.map(|s| now.saturating_add(s)));
    if let Some(plan) = access.plan {
        credential.plan = Some(plan);
    }
    credential.access_token = Arc::new(tokens.access_token);
    if let Some(rt) = tokens.refresh_token {
        credential.refresh_token = Some(rt);
    }
    if let Some(id) = tokens.id_token {
        let claims = jwt::claims(id.expose_secret());
        if credential.email.is_none() {
            credential.email = claims.email;
        }
        if credential.account_id.is_none() {
            credential.account_id = claims.account_id;
        }
        credential.id_token = Some(id);
    }
    credential.last_refresh = Some(now);
    credential.needs_login = None;
}

/// Percent-encodes everything but RFC 3986 unreserved characters (as `urlencoding::encode`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> OAuthClient {
        OAuthClient::new(
            Url::parse("https://auth.openai.com").unwrap(),
            crate::auth::http_client().unwrap(),
        )
    }

    #[test]
    fn authorize_url_has_exactly_the_codex_parameters() {
        let url = client().authorize_url("http://localhost:1455/auth/callback", "CH", "ST");
        assert_eq!(
            url,
            "https://auth.openai.com/oauth/authorize?response_type=code\
             &client_id=app_EMoamEEZ73f0CkXaXp7hrann\
             &redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback\
             &scope=openid%20profile%20email%20offline_access\
             &code_challenge=CH&code_challenge_method=S256\
             &id_token_add_organizations=true&codex_cli_simplified_flow=true\
             &state=ST&originator=bitrouter"
        );
    }

    #[test]
    fn issuer_with_path_prefix_keeps_it() {
        let c = OAuthClient::new(
            Url::parse("http://127.0.0.1:9/issuer/").unwrap(),
            crate::auth::http_client().unwrap(),
        );
        assert_eq!(c.token_url(), "http://127.0.0.1:9/issuer/oauth/token");
    }

    fn status(status: u16, body: &str) -> OAuthError {
        let (code, message) = describe_error_body(body.as_bytes());
        OAuthError::Status {
            url: "u".into(),
            status,
            code,
            message,
        }
    }

    #[test]
    fn refresh_failures_are_classified_as_the_spec_says() {
        for (st, body) in [
            (400, r#"{"error":"refresh_token_reused"}"#),
            (
                400,
                r#"{"error":{"code":"refresh_token_expired","message":"x"}}"#,
            ),
            (400, r#"{"code":"REFRESH_TOKEN_INVALIDATED"}"#),
            (
                400,
                r#"{"error":"invalid_grant","error_description":"bad"}"#,
            ),
            (401, r#"{"detail":"Unauthorized"}"#),
        ] {
            assert!(
                matches!(
                    classify_refresh_failure(&status(st, body)),
                    RefreshFailure::Permanent(_)
                ),
                "{st} {body}"
            );
        }
        for (st, body) in [
            (500, "oops"),
            (429, r#"{"error":"rate_limited"}"#),
            (400, r#"{"error":"invalid_request"}"#),
        ] {
            assert_eq!(
                classify_refresh_failure(&status(st, body)),
                RefreshFailure::Transient,
                "{st} {body}"
            );
        }
        let RefreshFailure::Permanent(reason) =
            classify_refresh_failure(&status(400, r#"{"error":"refresh_token_reused"}"#))
        else {
            panic!()
        };
        assert!(reason.contains("already used"));
    }

    #[test]
    fn error_messages_prefer_the_description() {
        assert_eq!(
            describe_error_body(br#"{"error":"invalid_grant","error_description":"bad code"}"#),
            (Some("invalid_grant".into()), "bad code".into())
        );
        assert_eq!(
            describe_error_body(br#"{"error":{"code":"c","message":"m"}}"#),
            (Some("c".into()), "m".into())
        );
        assert_eq!(describe_error_body(b"plain"), (None, "plain".into()));
    }
}
