//! [`Accounts`]: the one service that hands out usable tokens. It reads the store on every call
//! (the file backend caches on size/mtime/inode, so this is cheap and a `logout` takes effect
//! in a running server at once), refreshes when a token is due, and makes sure one credential
//! is refreshed once at a time: a per-key async mutex across tasks, and the store's file lock
//! across processes. Under the lock it re-reads the store; if someone else already rotated the
//! tokens it uses theirs, otherwise it refreshes and persists the rotated refresh token before
//! handing out the new access token (spec §3.2, §3.5).
//!
//! The provider settings it uses (OAuth issuer, `accounts:` order) can be replaced while it runs
//! ([`Accounts::reconfigure`]), so a reloaded config's issuer is used by the next refresh. The
//! store is chosen once, when the service is built.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::codex::Session;
use super::oauth::{self, OAuthClient, RefreshFailure};
use super::refresh::needs_refresh;
use super::{AuthError, http_client, unix_now};
use crate::config::{Config, ProviderConfig};
use crate::env::Env;
use crate::ids::{Label, ProviderId};
use crate::store::{
    self, Backend, Credential, CredentialKey, CredentialKind, CredentialStore, StoreLock, StoreName,
};

mod linked;

use linked::FileStamp;

/// A usable credential for one upstream request.
#[derive(Debug, Clone)]
pub struct Access {
    /// The bearer token (or API key), shared with the stored credential it came from.
    pub token: Arc<SecretString>,
    /// The ChatGPT account id (`ChatGPT-Account-Id`), for Codex sign-ins.
    pub account_id: Option<String>,
}

/// What `status` and `route` show about a credential: never a secret.
#[derive(Debug, Clone, Serialize)]
pub struct AccountInfo {
    /// Provider id.
    pub provider: ProviderId,
    /// Account label.
    pub label: Label,
    /// `oauth` or `api_key`.
    pub kind: &'static str,
    /// Signed-in email.
    pub email: Option<String>,
    /// ChatGPT plan.
    pub plan: Option<String>,
    /// ChatGPT account id.
    pub account_id: Option<String>,
    /// Access-token expiry (unix seconds).
    pub expires_at: Option<i64>,
    /// Where the credential came from (`login`, `codex:auth.json`, …).
    pub source: &'static str,
    /// Which store holds it (`file` or `keyring`).
    pub store: StoreName,
    /// Why it needs a new sign-in, if it does.
    pub needs_login: Option<String>,
}

/// Stored accounts and their tokens. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn CredentialStore>,
    /// The providers of the configuration in force (replaced on reload).
    providers: RwLock<Arc<BTreeMap<ProviderId, ProviderConfig>>>,
    /// How many times `providers` was replaced.
    reconfigured: AtomicU64,
    http: reqwest::Client,
    flights: Mutex<HashMap<CredentialKey, Arc<tokio::sync::Mutex<()>>>>,
    /// The keyring linked Codex sessions are read from (tests: the in-memory mock; else the OS).
    codex_keyring: std::sync::OnceLock<Backend>,
    /// Parsed `auth.json` files by path, with the stamp they were read at.
    codex_cache: Mutex<HashMap<std::path::PathBuf, (FileStamp, Session)>>,
    /// Linked sessions whose refresh token the issuer refused for good, so it is not retried
    /// until the Codex CLI signs in again (the refresh token changes).
    codex_dead: Mutex<HashMap<CredentialKey, (SecretString, String)>>,
}

impl Accounts {
    /// Accounts on the store the config names (`store:`), under the data directory of `env`.
    /// When `auto` falls back to the file, a warning is logged once.
    pub fn new(config: &Config, env: &Env) -> Result<Self, AuthError> {
        let store = store::open(config.store, env)?;
        if let Some(notice) = store.notice() {
            tracing::warn!("{notice}");
        }
        Self::with_store(config, store)
    }

    /// Accounts on an explicit store (tests, or a store the caller already opened).
    pub fn with_store(config: &Config, store: Arc<dyn CredentialStore>) -> Result<Self, AuthError> {
        let http = http_client().map_err(AuthError::Http)?;
        Ok(Accounts {
            inner: Arc::new(Inner {
                store,
                providers: RwLock::new(Arc::new(config.providers.clone())),
                reconfigured: AtomicU64::new(0),
                http,
                flights: Mutex::new(HashMap::new()),
                codex_keyring: std::sync::OnceLock::new(),
                codex_cache: Mutex::new(HashMap::new()),
                codex_dead: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Reads linked Codex CLI keyring sessions from `backend` instead of the OS keyring (tests).
    /// Has no effect once set.
    pub fn set_codex_keyring(&self, backend: Backend) {
        let _ = self.inner.codex_keyring.set(backend);
    }

    /// Uses the providers of a reloaded `config` from now on: refreshes already under way finish
    /// with the settings they started with. The store stays the one the service was built on.
    pub fn reconfigure(&self, config: &Config) {
        *self
            .inner
            .providers
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(config.providers.clone());
        self.inner.reconfigured.fetch_add(1, Ordering::Relaxed);
    }

    /// The store's version and the number of reconfigurations: while both stay the same,
    /// [`Accounts::labels`] answers the same. `None` when the store cannot tell its version.
    #[must_use]
    pub fn version(&self) -> Option<(u64, u64)> {
        let reconfigured = self.inner.reconfigured.load(Ordering::Relaxed);
        Some((self.inner.store.version()?, reconfigured))
    }

    fn providers(&self) -> Arc<BTreeMap<ProviderId, ProviderConfig>> {
        Arc::clone(
            &self
                .inner
                .providers
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The store in use.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn CredentialStore> {
        &self.inner.store
    }

    /// Stored labels for a provider, in the configured `accounts:` order (configured labels
    /// first, then the rest sorted); labels needing a new sign-in are included.
    pub fn labels(&self, provider: &ProviderId) -> Result<Vec<Label>, AuthError> {
        let mut stored: Vec<Label> = self
            .inner
            .store
            .keys()?
            .into_iter()
            .filter(|key| &key.provider == provider)
            .map(|key| key.label)
            .collect();
        stored.sort();
        let configured = self
            .providers()
            .get(provider)
            .and_then(|p| p.accounts.clone())
            .unwrap_or_default();
        let mut out: Vec<Label> = configured
            .into_iter()
            .filter(|l| stored.contains(l))
            .collect();
        out.dedup();
        for label in stored {
            if !out.contains(&label) {
                out.push(label);
            }
        }
        Ok(out)
    }

    /// A usable access token: refreshed first when due (single-flight). Reads the store every
    /// time, so a `logout` or another process's refresh is seen at once.
    pub async fn access(&self, key: &CredentialKey) -> Result<Access, AuthError> {
        let credential = self.load(key).await?;
        if let Some(reason) = &credential.needs_login {
            return Err(AuthError::NeedsLogin {
                key: key.clone(),
                reason: reason.clone(),
            });
        }
        // The refreshing paths are boxed: they hold an HTTP exchange with the issuer, some
        // 2 KB of future that every request would otherwise carry (and copy) for a refresh
        // due once an hour or so.
        if credential.source.is_codex_link() {
            return Box::pin(self.linked_access(&credential, None)).await;
        }
        if credential.kind == CredentialKind::ApiKey
            || !needs_refresh(credential.expires_at, credential.last_refresh, unix_now())
        {
            return Ok(access_of(&credential));
        }
        match Box::pin(self.refresh(&credential)).await {
            Ok(access) => Ok(access),
            // A transient failure with a token that has not expired yet: use it (as Codex does).
            Err(AuthError::RefreshFailed { source, .. })
                if credential.expires_at.is_some_and(|exp| exp > unix_now()) =>
            {
                tracing::warn!(key = %key, error = %source, "proactive refresh failed; using the current token");
                Ok(access_of(&credential))
            }
            Err(e) => Err(e),
        }
    }

    /// After an upstream 401 with `rejected`: if the stored token already differs (another task
    /// or process refreshed), return it; otherwise force one refresh.
    pub async fn refresh_after_unauthorized(
        &self,
        key: &CredentialKey,
        rejected: &SecretString,
    ) -> Result<Access, AuthError> {
        let credential = self.load(key).await?;
        if let Some(reason) = &credential.needs_login {
            return Err(AuthError::NeedsLogin {
                key: key.clone(),
                reason: reason.clone(),
            });
        }
        if credential.source.is_codex_link() {
            return self.linked_access(&credential, Some(rejected)).await;
        }
        if credential.access_token.expose_secret() != rejected.expose_secret() {
            return Ok(access_of(&credential));
        }
        if credential.kind == CredentialKind::ApiKey {
            return Err(AuthError::NeedsLogin {
                key: key.clone(),
                reason: "the upstream rejected the stored API key".into(),
            });
        }
        self.refresh(&credential).await
    }

    /// A summary of every stored credential (no secrets), sorted by provider and label.
    pub fn list(&self) -> Result<Vec<AccountInfo>, AuthError> {
        Ok(self
            .inner
            .store
            .list()?
            .into_iter()
            .map(|s| {
                let mut info = info(&s.credential, s.store);
                if s.credential.source.is_codex_link() {
                    self.describe_link(&s.credential, &mut info);
                }
                info
            })
            .collect())
    }

    fn flight(&self, key: &CredentialKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self
            .inner
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(flights.entry(key.clone()).or_default())
    }

    async fn load(&self, key: &CredentialKey) -> Result<Arc<Credential>, AuthError> {
        let store = Arc::clone(&self.inner.store);
        let found = if store.reads_block() {
            let k = key.clone();
            tokio::task::spawn_blocking(move || store.load_shared(&k))
                .await
                .map_err(AuthError::Task)??
        } else {
            store.load_shared(key)?
        };
        found.ok_or_else(|| AuthError::NotLoggedIn { key: key.clone() })
    }

    /// Refreshes `seen` unless someone already replaced its tokens; one at a time per key in
    /// this process, and under the store lock across processes.
    async fn refresh(&self, seen: &Credential) -> Result<Access, AuthError> {
        let key = &seen.key;
        let flight = self.flight(key);
        let _one_at_a_time = flight.lock().await;

        let store = Arc::clone(&self.inner.store);
        let k = key.clone();
        let (lock, current) = tokio::task::spawn_blocking(move || {
            let lock = store.lock()?;
            let current = store.load(&k)?;
            Ok::<_, store::StoreError>((lock, current))
        })
        .await
        .map_err(AuthError::Task)??;
        let Some(current) = current.map(|s| s.credential) else {
            return Err(AuthError::NotLoggedIn { key: key.clone() });
        };
        if let Some(reason) = current.needs_login {
            return Err(AuthError::NeedsLogin {
                key: key.clone(),
                reason,
            });
        }
        if !current.same_tokens(seen) {
            tracing::debug!(key = %key, "tokens were already refreshed elsewhere");
            return Ok(access_of(&current));
        }
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(AuthError::NeedsLogin {
                key: key.clone(),
                reason: "no refresh token is stored".into(),
            });
        };
        let client = self.oauth_client(&key.provider)?;
        tracing::debug!(key = %key, "refreshing the access token");
        match client.refresh(&refresh_token).await {
            Ok(tokens) => {
                let mut next = current;
                oauth::apply_refresh(&mut next, tokens, unix_now());
                let access = access_of(&next);
                self.save_locked(lock, next).await?;
                Ok(access)
            }
            Err(error) => match oauth::classify_refresh_failure(&error) {
                RefreshFailure::Permanent(reason) => {
                    let mut next = current;
                    next.needs_login = Some(reason.clone());
                    self.save_locked(lock, next).await?;
                    Err(AuthError::NeedsLogin {
                        key: key.clone(),
                        reason,
                    })
                }
                RefreshFailure::Transient => Err(AuthError::RefreshFailed {
                    key: key.clone(),
                    source: Box::new(error),
                }),
            },
        }
    }

    async fn save_locked(&self, lock: StoreLock, credential: Credential) -> Result<(), AuthError> {
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || {
            store.save(&lock, &credential)?;
            drop(lock);
            Ok::<_, store::StoreError>(())
        })
        .await
        .map_err(AuthError::Task)??;
        Ok(())
    }

    fn oauth_client(&self, provider: &ProviderId) -> Result<OAuthClient, AuthError> {
        let issuer = self
            .providers()
            .get(provider)
            .and_then(ProviderConfig::oauth)
            .map(|oauth| oauth.issuer.clone())
            .ok_or_else(|| AuthError::NoOAuth(provider.clone()))?;
        Ok(OAuthClient::new(issuer, self.inner.http.clone()))
    }
}

/// The token and account id of a credential: all a request needs of it, and all it copies
/// (the store shares the rest).
fn access_of(credential: &Credential) -> Access {
    Access {
        token: credential.access_token.clone(),
        account_id: credential.account_id.clone(),
    }
}

fn info(c: &Credential, store: StoreName) -> AccountInfo {
    AccountInfo {
        provider: c.key.provider.clone(),
        label: c.key.label.clone(),
        kind: c.kind.as_str(),
        email: c.email.clone(),
        plan: c.plan.clone(),
        account_id: c.account_id.clone(),
        expires_at: c.expires_at,
        source: c.source.as_str(),
        store,
        needs_login: c.needs_login.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_can_be_shared_across_tasks() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<Accounts>();
        shareable::<Access>();
    }
}
