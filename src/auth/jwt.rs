//! Reading JWT claims without verifying signatures (spec §5): the tokens come straight from the
//! issuer over TLS, and bitrouter only reads them to show the account and time refreshes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The namespace of ChatGPT's auth claims.
const AUTH_CLAIMS: &str = "https://api.openai.com/auth";
/// The namespace of profile claims (email fallback).
const PROFILE_CLAIMS: &str = "https://api.openai.com/profile";

/// The claims bitrouter uses, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `email`, or the profile namespace's `email`.
    pub email: Option<String>,
    /// `chatgpt_account_id` in the auth namespace (the `ChatGPT-Account-Id` header).
    pub account_id: Option<String>,
    /// `chatgpt_plan_type` in the auth namespace.
    pub plan: Option<String>,
    /// `exp` (unix seconds).
    pub expires_at: Option<i64>,
}

/// Decodes a JWT's payload. Anything that is not a JWT gives empty claims.
#[must_use]
pub fn claims(token: &str) -> Claims {
    let Some(payload) = payload(token) else {
        return Claims::default();
    };
    let auth = payload.get(AUTH_CLAIMS);
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    Claims {
        email: text(payload.get("email"))
            .or_else(|| text(payload.get(PROFILE_CLAIMS).and_then(|p| p.get("email")))),
        account_id: text(auth.and_then(|a| a.get("chatgpt_account_id"))),
        plan: text(auth.and_then(|a| a.get("chatgpt_plan_type"))),
        expires_at: payload
            .get("exp")
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))),
    }
}

fn payload(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.is_object().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &Value) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        )
    }

    #[test]
    fn reads_codex_claims() {
        let token = jwt(&serde_json::json!({
            "email": "you@example.com",
            "exp": 1_790_000_000,
            "https://api.openai.com/auth": {"chatgpt_account_id": "acc-1", "chatgpt_plan_type": "pro"}
        }));
        assert_eq!(
            claims(&token),
            Claims {
                email: Some("you@example.com".into()),
                account_id: Some("acc-1".into()),
                plan: Some("pro".into()),
                expires_at: Some(1_790_000_000),
            }
        );
    }

    #[test]
    fn profile_email_fallback_and_garbage() {
        let token = jwt(&serde_json::json!({"https://api.openai.com/profile": {"email": "p@x"}}));
        assert_eq!(claims(&token).email.as_deref(), Some("p@x"));
        assert_eq!(claims("not-a-jwt"), Claims::default());
        assert_eq!(claims("a.!!!.c"), Claims::default());
    }
}
