//! The one place a credential becomes upstream request headers: `Authorization: Bearer …` or
//! `x-api-key: …` as the provider asks, and for a signed-in ChatGPT account its
//! `chatgpt-account-id`. Values are marked sensitive, so no `Debug` output or log shows them.

use http::{HeaderMap, HeaderName, HeaderValue, header};
use secrecy::ExposeSecret;

use super::credentials::Access;
use crate::config::{Authorization, ProviderConfig, ProviderKind};

/// The header that names the ChatGPT account a token belongs to.
pub const ACCOUNT_ID: HeaderName = HeaderName::from_static("chatgpt-account-id");

/// How `provider` wants its credential presented (the Codex backend: a bearer token).
#[must_use]
pub fn style_of(provider: &ProviderConfig) -> Authorization {
    match &provider.kind {
        ProviderKind::OpenaiCodex { .. } => Authorization::Bearer,
        ProviderKind::Generic { authorization, .. } => *authorization,
    }
}

/// A header value marked sensitive (never printed by `Debug`).
#[must_use]
pub fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::try_from(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Sets `secret` as the credential in `style`, replacing any there.
pub fn attach_secret(headers: &mut HeaderMap, style: Authorization, secret: &str) {
    let (name, value) = match style {
        Authorization::Bearer => (
            header::AUTHORIZATION,
            sensitive(&format!("Bearer {secret}")),
        ),
        Authorization::XApiKey => (HeaderName::from_static("x-api-key"), sensitive(secret)),
    };
    if let Some(value) = value {
        headers.insert(name, value);
    }
}

/// Sets a stored account's token in `style`, and its ChatGPT account id when it has one.
pub fn attach_access(headers: &mut HeaderMap, style: Authorization, access: &Access) {
    attach_secret(headers, style, access.token.expose_secret());
    if let Some(id) = access
        .account_id
        .as_deref()
        .and_then(|a| HeaderValue::try_from(a).ok())
    {
        headers.insert(ACCOUNT_ID, id);
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn each_style_sets_one_sensitive_header() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("old"));
        attach_secret(&mut h, Authorization::XApiKey, "k");
        assert_eq!(h["x-api-key"], "k");
        assert!(h["x-api-key"].is_sensitive());
        assert_eq!(h.get_all("x-api-key").iter().count(), 1);
        let mut h = HeaderMap::new();
        attach_secret(&mut h, Authorization::Bearer, "t");
        assert_eq!(h["authorization"], "Bearer t");
        assert!(!format!("{h:?}").contains("Bearer t"));
    }

    #[test]
    fn an_account_also_names_its_chatgpt_account() {
        let mut h = HeaderMap::new();
        let access = Access {
            token: SecretString::from("t"),
            account_id: Some("acc-1".into()),
        };
        attach_access(&mut h, Authorization::Bearer, &access);
        assert_eq!(h["authorization"], "Bearer t");
        assert_eq!(h["chatgpt-account-id"], "acc-1");
    }
}
