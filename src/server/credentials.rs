//! What the server needs from the credential side: the [`Credentials`] trait (stored labels per
//! provider, a fresh access token per account, a refresh after an upstream 401), an in-memory
//! implementation for tests and embedding, and a temporary read-only adapter over the token file.
//!
//! The server never reads tokens any other way, and never logs them: [`Access::token`] is a
//! [`SecretString`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::ids::{Label, ProviderId};

/// What a request needs to call upstream with one account.
#[derive(Clone)]
pub struct Access {
    /// The bearer token (an OAuth access token, or an API key for API-key accounts).
    pub token: SecretString,
    /// The ChatGPT account id (`ChatGPT-Account-Id`), for `openai-codex` sign-ins.
    pub account_id: Option<String>,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("token", &"[redacted]")
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// Why a credential cannot be used right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Nothing is stored under this provider and label.
    #[error("not logged in: {0}")]
    NotLoggedIn(String),
    /// The sign-in is no longer valid (refresh refused, token rejected): the user must log in
    /// again. The message is plain text, safe to show.
    #[error("{0}")]
    NeedsLogin(String),
    /// A temporary failure (the store is locked, the token endpoint is unreachable).
    #[error("{0}")]
    Transient(String),
}

/// The server's view of stored credentials. Implemented by the account store; the server only
/// reads through it.
pub trait Credentials: Send + Sync + 'static {
    /// Stored labels for `provider`, configured order first.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn labels(&self, provider: &ProviderId) -> Result<Vec<Label>, CredentialError>;

    /// A usable access token for `(provider, label)`, refreshed first when it is due.
    fn access<'a>(
        &'a self,
        provider: &'a ProviderId,
        label: &'a Label,
    ) -> BoxFuture<'a, Result<Access, CredentialError>>;

    /// Called once after upstream answered 401 to `rejected`: refresh (unless another process
    /// already did) and return the new token, or say that a new login is needed.
    fn refresh_after_unauthorized<'a>(
        &'a self,
        provider: &'a ProviderId,
        label: &'a Label,
        rejected: &'a SecretString,
    ) -> BoxFuture<'a, Result<Access, CredentialError>>;
}

/// An in-memory credential set (tests and embedding). A refresh after a 401 hands out the token
/// queued with [`MemoryCredentials::queue_refresh`], else reports that a login is needed.
#[derive(Default)]
pub struct MemoryCredentials {
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    accounts: BTreeMap<ProviderId, Vec<(Label, Access)>>,
    refreshed: BTreeMap<(ProviderId, Label), Access>,
    refresh_calls: usize,
}

impl MemoryCredentials {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        MemoryCredentials::default()
    }

    /// Adds (or replaces) an account.
    pub fn insert(&self, provider: ProviderId, label: Label, access: Access) {
        let mut inner = lock(&self.inner);
        let list = inner.accounts.entry(provider).or_default();
        list.retain(|(l, _)| l != &label);
        list.push((label, access));
    }

    /// The token the next refresh of `(provider, label)` returns.
    pub fn queue_refresh(&self, provider: ProviderId, label: Label, access: Access) {
        lock(&self.inner)
            .refreshed
            .insert((provider, label), access);
    }

    /// How many refreshes were asked for.
    #[must_use]
    pub fn refresh_calls(&self) -> usize {
        lock(&self.inner).refresh_calls
    }
}

impl Credentials for MemoryCredentials {
    fn labels(&self, provider: &ProviderId) -> Result<Vec<Label>, CredentialError> {
        Ok(lock(&self.inner)
            .accounts
            .get(provider)
            .map(|list| list.iter().map(|(l, _)| l.clone()).collect())
            .unwrap_or_default())
    }

    fn access<'a>(
        &'a self,
        provider: &'a ProviderId,
        label: &'a Label,
    ) -> BoxFuture<'a, Result<Access, CredentialError>> {
        let found = lock(&self.inner).accounts.get(provider).and_then(|list| {
            list.iter()
                .find(|(l, _)| l == label)
                .map(|(_, a)| a.clone())
        });
        Box::pin(async move {
            found.ok_or_else(|| CredentialError::NotLoggedIn(format!("{provider} account {label}")))
        })
    }

    fn refresh_after_unauthorized<'a>(
        &'a self,
        provider: &'a ProviderId,
        label: &'a Label,
        _rejected: &'a SecretString,
    ) -> BoxFuture<'a, Result<Access, CredentialError>> {
        let mut inner = lock(&self.inner);
        inner.refresh_calls += 1;
        let next = inner.refreshed.remove(&(provider.clone(), label.clone()));
        if let Some(access) = &next
            && let Some(list) = inner.accounts.get_mut(provider)
            && let Some(slot) = list.iter_mut().find(|(l, _)| l == label)
        {
            slot.1 = access.clone();
        }
        drop(inner);
        Box::pin(async move {
            next.ok_or_else(|| {
                CredentialError::NeedsLogin(format!(
                    "{provider} account `{label}` was rejected upstream; run `bitrouter login {provider} --label {label}`"
                ))
            })
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// TEMPORARY: a read-only adapter over `$XDG_DATA_HOME/bitrouter/oauth-tokens.json` so the real
/// binary can serve before the account store lands. It never refreshes: a "refresh" after a 401
/// re-reads the file and succeeds only if another process (e.g. `bitrouter login`) wrote a
/// different token. To be replaced by `auth::Accounts` (the integrator swaps it in
/// `commands::serve`).
#[derive(Debug, Clone)]
pub struct FileCredentials {
    path: PathBuf,
}

/// The token file's name inside the data directory.
pub const TOKEN_FILE: &str = "oauth-tokens.json";

#[derive(Deserialize)]
struct WireFile {
    #[serde(default)]
    credentials: Vec<WireCredential>,
}

#[derive(Deserialize)]
struct WireCredential {
    provider: String,
    label: String,
    #[serde(default)]
    access_token: Option<SecretString>,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    needs_login: Option<String>,
}

impl FileCredentials {
    /// The adapter over `data_dir/oauth-tokens.json`.
    #[must_use]
    pub fn new(data_dir: &Path) -> Self {
        FileCredentials {
            path: data_dir.join(TOKEN_FILE),
        }
    }

    fn read(&self) -> Result<Vec<WireCredential>, CredentialError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(CredentialError::Transient(format!(
                    "cannot read {}: {e}",
                    self.path.display()
                )));
            }
        };
        // The parse error may quote the file's text, so it is not repeated.
        serde_json::from_str::<WireFile>(&text)
            .map(|f| f.credentials)
            .map_err(|_| {
                CredentialError::Transient(format!(
                    "{} is not a valid token file",
                    self.path.display()
                ))
            })
    }

    fn find(&self, provider: &ProviderId, label: &Label) -> Result<Access, CredentialError> {
        let entry = self
            .read()?
            .into_iter()
            .find(|c| c.provider == provider.as_str() && c.label == label.as_str())
            .ok_or_else(|| CredentialError::NotLoggedIn(format!("{provider} account {label}")))?;
        if let Some(why) = entry.needs_login.filter(|w| !w.is_empty()) {
            return Err(CredentialError::NeedsLogin(format!(
                "{provider} account `{label}` needs a new login ({why}); run `bitrouter login {provider} --label {label}`"
            )));
        }
        let token = entry
            .access_token
            .filter(|t| !t.expose_secret().is_empty())
            .ok_or_else(|| {
                CredentialError::NeedsLogin(format!(
                    "{provider} account `{label}` has no access token; run `bitrouter login {provider} --label {label}`"
                ))
            })?;
        Ok(Access {
            token,
            account_id: entry.account_id,
        })
    }
}

impl Credentials for FileCredentials {
    fn labels(&self, provider: &ProviderId) -> Result<Vec<Label>, CredentialError> {
        Ok(self
            .read()?
            .into_iter()
            .filter(|c| c.provider == provider.as_str())
            .filter_map(|c| c.label.parse().ok())
            .collect())
    }

    fn access<'a>(
        &'a self,
        provider: &'a ProviderId,
        label: &'a Label,
    ) -> BoxFuture<'a, Result<Access, CredentialError>> {
        Box::pin(async move { self.find(provider, label) })
    }

    fn refresh_after_unauthorized<'a>(
        &'a self,
        provider: &'a ProviderId,
        label: &'a Label,
        rejected: &'a SecretString,
    ) -> BoxFuture<'a, Result<Access, CredentialError>> {
        Box::pin(async move {
            let access = self.find(provider, label)?;
            if access.token.expose_secret() == rejected.expose_secret() {
                return Err(CredentialError::NeedsLogin(format!(
                    "{provider} account `{label}` was rejected upstream; run `bitrouter login {provider} --label {label}`"
                )));
            }
            Ok(access)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, json: &str) {
        std::fs::write(dir.join(TOKEN_FILE), json).unwrap();
    }

    #[tokio::test]
    async fn file_adapter_reads_labels_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            r#"{"version":1,"credentials":[
              {"provider":"openai-codex","label":"work","kind":"oauth","access_token":"at-work","account_id":"acc-1","source":"login"},
              {"provider":"openai-codex","label":"old","kind":"oauth","access_token":"x","needs_login":"refresh token expired","source":"login"},
              {"provider":"openai","label":"default","kind":"api_key","access_token":"sk-1","source":"api-key"}]}"#,
        );
        let creds = FileCredentials::new(dir.path());
        let codex = ProviderId::openai_codex();
        let labels = creds.labels(&codex).unwrap();
        assert_eq!(
            labels,
            vec!["work".parse::<Label>().unwrap(), "old".parse().unwrap()]
        );
        let access = creds.access(&codex, &labels[0]).await.unwrap();
        assert_eq!(access.token.expose_secret(), "at-work");
        assert_eq!(access.account_id.as_deref(), Some("acc-1"));
        assert!(matches!(
            creds.access(&codex, &labels[1]).await,
            Err(CredentialError::NeedsLogin(_))
        ));
        let rejected = SecretString::from("at-work");
        assert!(matches!(
            creds
                .refresh_after_unauthorized(&codex, &labels[0], &rejected)
                .await,
            Err(CredentialError::NeedsLogin(_))
        ));
    }

    #[test]
    fn file_adapter_without_file_has_no_labels() {
        let dir = tempfile::tempdir().unwrap();
        let creds = FileCredentials::new(dir.path());
        assert!(
            creds
                .labels(&ProviderId::openai_codex())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn access_debug_hides_the_token() {
        let access = Access {
            token: SecretString::from("very-secret"),
            account_id: None,
        };
        assert!(!format!("{access:?}").contains("very-secret"));
    }
}
