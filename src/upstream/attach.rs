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
    let name = match style {
        Authorization::Bearer => header::AUTHORIZATION,
        Authorization::XApiKey => X_API_KEY,
    };
    if let Some(value) = credential_value(style, secret) {
        headers.insert(name, value);
    }
}

/// The header naming an Anthropic-style API key.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// The most credential values a serving thread keeps made (accounts and keys in use at once).
const MADE_VALUES: usize = 8;

thread_local! {
    /// Credential values this thread made lately, newest last. A signed-in account's token is
    /// some 2 KB, and making it a header value (a copy, and a check of every byte) on every
    /// request cost more than the rest of attaching it; finding it here is one comparison. A
    /// value is found only for the same style and the very same secret, so a refreshed token
    /// makes a new one.
    static MADE: std::cell::RefCell<Vec<(Authorization, HeaderValue)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `secret` as the sensitive header value of `style` (`Bearer …` or the bare key); `None`
/// when it cannot be a header value.
fn credential_value(style: Authorization, secret: &str) -> Option<HeaderValue> {
    let presents = |value: &HeaderValue| match style {
        Authorization::Bearer => {
            value.as_bytes().strip_prefix(b"Bearer ") == Some(secret.as_bytes())
        }
        Authorization::XApiKey => value.as_bytes() == secret.as_bytes(),
    };
    MADE.with_borrow_mut(|made| {
        if let Some((_, value)) = made.iter().rev().find(|(s, v)| *s == style && presents(v)) {
            return Some(value.clone());
        }
        let value = match style {
            Authorization::Bearer => sensitive(&format!("Bearer {secret}"))?,
            Authorization::XApiKey => sensitive(secret)?,
        };
        if made.len() == MADE_VALUES {
            made.remove(0);
        }
        made.push((style, value.clone()));
        Some(value)
    })
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
    fn a_made_value_serves_only_its_own_style_and_secret() {
        let value = |style, secret: &str| {
            let mut h = HeaderMap::new();
            attach_secret(&mut h, style, secret);
            h.into_iter().next().map(|(n, v)| (n.unwrap(), v))
        };
        let (name, first) = value(Authorization::Bearer, "tok").unwrap();
        assert_eq!(
            (name.as_str(), first.as_bytes()),
            ("authorization", &b"Bearer tok"[..])
        );
        // The same secret again, the other style, a longer and a refreshed secret.
        assert_eq!(value(Authorization::Bearer, "tok").unwrap().1, "Bearer tok");
        assert_eq!(value(Authorization::XApiKey, "tok").unwrap().1, "tok");
        assert_eq!(
            value(Authorization::XApiKey, "Bearer tok").unwrap().1,
            "Bearer tok"
        );
        assert_eq!(
            value(Authorization::Bearer, "tok2").unwrap().1,
            "Bearer tok2"
        );
        // More secrets than are kept: each still gets its own value, marked sensitive.
        for n in 0..3 * MADE_VALUES {
            let (_, v) = value(
                Authorization::Bearer,
                &format!("s{}", n % (MADE_VALUES + 1)),
            )
            .unwrap();
            assert_eq!(v, format!("Bearer s{}", n % (MADE_VALUES + 1)).as_str());
            assert!(v.is_sensitive());
        }
        assert!(value(Authorization::Bearer, "bad\nvalue").is_none());
    }

    #[test]
    fn an_account_also_names_its_chatgpt_account() {
        let mut h = HeaderMap::new();
        let access = Access {
            token: SecretString::from("t").into(),
            account_id: Some("acc-1".into()),
        };
        attach_access(&mut h, Authorization::Bearer, &access);
        assert_eq!(h["authorization"], "Bearer t");
        assert_eq!(h["chatgpt-account-id"], "acc-1");
    }
}
