//! The serialised shape of a credential, shared by the token file and keyring entries. This is
//! a contract (the server's tests seed it): `{"provider", "label", "kind": "oauth"|"api_key",
//! "access_token", "refresh_token", "id_token", "expires_at", "account_id", "email", "plan",
//! "last_refresh", "source", "needs_login"}`, optional fields absent or null, plus `codex_home`
//! for credentials linked to the Codex CLI (which carry no `access_token`).

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{Credential, CredentialKey, CredentialKind, Source};
use crate::ids::{Label, ProviderId};

/// The current schema version of the token file.
pub(super) const VERSION: u64 = 1;

/// One credential as written. Plain strings live here only between parsing and building a
/// [`Credential`], or between exposing secrets and writing them out.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireCredential {
    provider: ProviderId,
    label: Label,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    last_refresh: Option<i64>,
    source: String,
    #[serde(default)]
    needs_login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    codex_home: Option<PathBuf>,
}

/// The token file document.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireFile {
    pub(super) version: u64,
    #[serde(default)]
    pub(super) credentials: Vec<WireCredential>,
}

impl WireCredential {
    /// The serialised form (secrets exposed: only for writing to the backend).
    pub(super) fn from_credential(c: &Credential) -> Self {
        let expose = |s: &SecretString| s.expose_secret().to_owned();
        let linked = c.source.is_codex_link();
        WireCredential {
            provider: c.key.provider.clone(),
            label: c.key.label.clone(),
            kind: c.kind.as_str().to_owned(),
            access_token: (!linked).then(|| expose(&c.access_token)),
            refresh_token: c.refresh_token.as_ref().map(expose),
            id_token: c.id_token.as_ref().map(expose),
            expires_at: c.expires_at,
            account_id: c.account_id.clone(),
            email: c.email.clone(),
            plan: c.plan.clone(),
            last_refresh: c.last_refresh,
            source: c.source.as_str().to_owned(),
            needs_login: c.needs_login.clone(),
            codex_home: c.codex_home.clone(),
        }
    }

    /// The key, without validating the rest.
    pub(super) fn key(&self) -> CredentialKey {
        CredentialKey::new(self.provider.clone(), self.label.clone())
    }

    /// Validates and converts; the error says which field is wrong (never its value).
    pub(super) fn into_credential(self) -> Result<Credential, String> {
        let key = self.key();
        let kind = match self.kind.as_str() {
            "oauth" => CredentialKind::Oauth,
            "api_key" => CredentialKind::ApiKey,
            _ => return Err(format!("{key}: unknown `kind` (expected oauth or api_key)")),
        };
        let source = Source::parse(&self.source).ok_or_else(|| {
            format!("{key}: unknown `source` (expected login, api-key, codex:auth.json or codex:keyring)")
        })?;
        let access_token = match (self.access_token, source.is_codex_link()) {
            (Some(t), _) => t,
            (None, true) => String::new(),
            (None, false) => return Err(format!("{key}: missing `access_token`")),
        };
        if source.is_codex_link() && self.codex_home.is_none() {
            return Err(format!(
                "{key}: a credential linked to the Codex CLI needs `codex_home`"
            ));
        }
        Ok(Credential {
            key,
            kind,
            access_token: Arc::new(SecretString::from(access_token)),
            refresh_token: self.refresh_token.map(SecretString::from),
            id_token: self.id_token.map(SecretString::from),
            expires_at: self.expires_at,
            account_id: self.account_id,
            email: self.email,
            plan: self.plan,
            last_refresh: self.last_refresh,
            source,
            needs_login: self.needs_login,
            codex_home: self.codex_home,
        })
    }
}

/// A serde_json error as a message that cannot echo a secret: type errors quote the offending
/// value, so those keep only their position.
pub(super) fn describe_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.contains('"') || text.contains('`') && text.starts_with("invalid") {
        format!(
            "a value has the wrong type at line {} column {}",
            e.line(),
            e.column()
        )
    } else {
        text
    }
}
