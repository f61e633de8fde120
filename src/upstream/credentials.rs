//! What talking to providers needs from the credential side: the [`Credentials`] trait (stored
//! labels per provider, a fresh access token per account, a refresh after an upstream 401, the
//! settings of a reloaded configuration), an in-memory implementation for tests and embedding,
//! and the implementation over [`Accounts`].
//!
//! The request path and the catalogs never read tokens any other way, and never log them:
//! [`Access::token`] is a [`SecretString`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use secrecy::SecretString;

use crate::auth::{Accounts, AuthError};
use crate::config::Config;
use crate::ids::{Label, ProviderId};
use crate::store::CredentialKey;

pub use crate::auth::Access;

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

/// What [`Credentials::version`] answers: the store's version and the number of
/// reconfigurations (each may reorder the labels).
pub type Version = (u64, u64);

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

    /// A version that stays the same while [`Credentials::labels`] answers the same, for
    /// callers that keep what they built from the labels; `None` when it cannot be told
    /// cheaply (such callers then ask for the labels every time).
    fn version(&self) -> Option<Version> {
        None
    }

    /// Takes the settings of a reloaded configuration (OAuth endpoints, account order) for
    /// what follows. Implementations without such settings ignore it.
    fn reconfigure(&self, config: &Config) {
        let _ = config;
    }
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

impl Credentials for Accounts {
    fn labels(&self, provider: &ProviderId) -> Result<Vec<Label>, CredentialError> {
        Accounts::labels(self, provider).map_err(|e| CredentialError::Transient(format!("{e:#}")))
    }

    fn access<'a>(
        &'a self,
        provider: &'a ProviderId,
        label: &'a Label,
    ) -> BoxFuture<'a, Result<Access, CredentialError>> {
        Box::pin(async move {
            let key = CredentialKey::new(provider.clone(), label.clone());
            Accounts::access(self, &key).await.map_err(classify)
        })
    }

    fn refresh_after_unauthorized<'a>(
        &'a self,
        provider: &'a ProviderId,
        label: &'a Label,
        rejected: &'a SecretString,
    ) -> BoxFuture<'a, Result<Access, CredentialError>> {
        Box::pin(async move {
            let key = CredentialKey::new(provider.clone(), label.clone());
            Accounts::refresh_after_unauthorized(self, &key, rejected)
                .await
                .map_err(classify)
        })
    }

    fn version(&self) -> Option<Version> {
        Accounts::version(self)
    }

    fn reconfigure(&self, config: &Config) {
        Accounts::reconfigure(self, config);
    }
}

/// Maps the account store's errors onto what the server distinguishes: the user's to fix
/// (log in) or a failure that may pass.
fn classify(e: AuthError) -> CredentialError {
    let hint = |key: &CredentialKey| {
        format!(
            "run `bitrouter login {} --label {}`",
            key.provider, key.label
        )
    };
    match &e {
        AuthError::NotLoggedIn { key } => {
            CredentialError::NotLoggedIn(format!("{e}; {}", hint(key)))
        }
        AuthError::NeedsLogin { key, .. } | AuthError::Codex { key, .. } => {
            CredentialError::NeedsLogin(format!("{e:#}; {}", hint(key)))
        }
        _ => CredentialError::Transient(format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_debug_hides_the_token() {
        let access = Access {
            token: SecretString::from("very-secret").into(),
            account_id: None,
        };
        assert!(!format!("{access:?}").contains("very-secret"));
    }
}
