//! Credentials linked to a Codex CLI session (`login --import`): read from the Codex CLI's own
//! store on every use (re-parsed only when its file changed), refreshed and written back in its
//! format, and reported as needing a new login when the session is gone or changed account.

use std::sync::{Arc, PoisonError};

use secrecy::{ExposeSecret, SecretString};

use super::{Access, AccountInfo, Accounts};
use crate::auth::codex::{CodexError, CodexHome, Location, Session};
use crate::auth::oauth::{self, RefreshFailure};
use crate::auth::refresh::needs_refresh;
use crate::auth::{AuthError, unix_now};
use crate::store::Credential;

/// Identifies one version of a file (size, mtime, inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp(u64, Option<std::time::SystemTime>, u64);

impl FileStamp {
    pub(super) fn of(path: &std::path::Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(FileStamp(meta.len(), meta.modified().ok(), inode))
    }

    /// Modified within the last two seconds: an in-place rewrite of the same length within the
    /// filesystem's mtime granularity could hide behind this stamp, so do not trust a cache.
    pub(super) fn is_recent(&self) -> bool {
        self.1.is_none_or(|m| {
            m.elapsed()
                .map_or(true, |age| age < std::time::Duration::from_secs(2))
        })
    }
}

impl Accounts {
    /// Fills a linked credential's summary from the Codex CLI session as it is now.
    pub(super) fn describe_link(&self, credential: &Credential, info: &mut AccountInfo) {
        let home = self.codex_home(credential);
        let location = home.location(credential.source);
        match home.read(&location) {
            Ok(Some(session)) => {
                let access = session.access_claims();
                info.expires_at = access.expires_at;
                info.plan = access.plan.or(info.plan.take());
                if let Some(reason) = changed_account(credential, &session) {
                    info.needs_login = Some(reason);
                }
            }
            Ok(None) => info.needs_login = Some(gone(&location)),
            Err(e) => info.needs_login = Some(e.to_string()),
        }
    }

    fn codex_home(&self, credential: &Credential) -> CodexHome {
        let dir = credential.codex_home.clone().unwrap_or_default();
        let home = CodexHome::at(dir);
        match self.inner.codex_keyring.get() {
            Some(backend) => home.with_keyring(Arc::clone(backend)),
            None => home,
        }
    }

    /// A linked credential's token, read from the Codex CLI's store (re-parsed only when the
    /// file changed); refreshed when due, or when `rejected` is still the stored token.
    pub(super) async fn linked_access(
        &self,
        credential: &Credential,
        rejected: Option<&SecretString>,
    ) -> Result<Access, AuthError> {
        let key = &credential.key;
        let home = self.codex_home(credential);
        let location = home.location(credential.source);
        let session = self.read_linked(credential, &home, &location).await?;
        let dead = self
            .inner
            .codex_dead
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .filter(|(rt, _)| rt.expose_secret() == session.refresh_token.expose_secret())
            .map(|(_, reason)| reason.clone());
        if let Some(reason) = dead {
            return Err(AuthError::NeedsLogin {
                key: key.clone(),
                reason,
            });
        }
        let due = match rejected {
            Some(rejected) => rejected.expose_secret() == session.access_token.expose_secret(),
            None => needs_refresh(
                session.access_claims().expires_at,
                session.last_refresh,
                unix_now(),
            ),
        };
        if !due {
            return Ok(session_access(&session));
        }
        match self.refresh_linked(credential, home, &session).await {
            Err(AuthError::RefreshFailed { source, .. })
                if rejected.is_none()
                    && session
                        .access_claims()
                        .expires_at
                        .is_some_and(|exp| exp > unix_now()) =>
            {
                tracing::warn!(key = %key, error = %source, "proactive refresh failed; using the current token");
                Ok(session_access(&session))
            }
            other => other,
        }
    }

    async fn read_linked(
        &self,
        credential: &Credential,
        home: &CodexHome,
        location: &Location,
    ) -> Result<Session, AuthError> {
        let key = &credential.key;
        let stamp = match location {
            Location::File(path) => FileStamp::of(path).map(|s| (path.clone(), s)),
            Location::Keyring(_) => None,
        };
        let cached = stamp.as_ref().and_then(|(path, stamp)| {
            let cache = self
                .inner
                .codex_cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            cache
                .get(path)
                .filter(|(s, _)| s == stamp && !stamp.is_recent())
                .map(|(_, session)| session.clone())
        });
        let session = match cached {
            Some(session) => session,
            None => {
                let (h, l) = (home.clone(), location.clone());
                let read = tokio::task::spawn_blocking(move || h.read(&l))
                    .await
                    .map_err(AuthError::Task)?
                    .map_err(|source| AuthError::Codex {
                        key: key.clone(),
                        source,
                    })?;
                let Some(session) = read else {
                    return Err(AuthError::NeedsLogin {
                        key: key.clone(),
                        reason: gone(location),
                    });
                };
                if let Some((path, stamp)) = stamp {
                    self.inner
                        .codex_cache
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(path, (stamp, session.clone()));
                }
                session
            }
        };
        if let Some(reason) = changed_account(credential, &session) {
            return Err(AuthError::NeedsLogin {
                key: key.clone(),
                reason,
            });
        }
        Ok(session)
    }

    /// Refreshes a linked session unless someone (the Codex CLI, another bitrouter) already did,
    /// and writes the new tokens back to the Codex CLI's store.
    async fn refresh_linked(
        &self,
        credential: &Credential,
        home: CodexHome,
        seen: &Session,
    ) -> Result<Access, AuthError> {
        let key = &credential.key;
        let codex_err = |source: CodexError| AuthError::Codex {
            key: key.clone(),
            source,
        };
        let flight = self.flight(key);
        let _one_at_a_time = flight.lock().await;

        let store = Arc::clone(&self.inner.store);
        let (h, l) = (home.clone(), seen.location.clone());
        let (lock, current) = tokio::task::spawn_blocking(move || {
            let lock = store.lock().map_err(CodexError::Keyring)?;
            let current = h.read(&l)?;
            Ok::<_, CodexError>((lock, current))
        })
        .await
        .map_err(AuthError::Task)?
        .map_err(codex_err)?;
        let Some(current) = current else {
            return Err(AuthError::NeedsLogin {
                key: key.clone(),
                reason: gone(&seen.location),
            });
        };
        if let Some(reason) = changed_account(credential, &current) {
            return Err(AuthError::NeedsLogin {
                key: key.clone(),
                reason,
            });
        }
        if !current.same_tokens(seen) {
            tracing::debug!(key = %key, "the Codex CLI session was already refreshed elsewhere");
            return Ok(session_access(&current));
        }
        let client = self.oauth_client(&key.provider)?;
        tracing::debug!(key = %key, "refreshing the linked Codex CLI session");
        match client.refresh(&current.refresh_token).await {
            Ok(tokens) => {
                let written = tokio::task::spawn_blocking(move || {
                    let written = home.write_back(&current, tokens, unix_now());
                    drop(lock);
                    written
                })
                .await
                .map_err(AuthError::Task)?
                .map_err(codex_err)?;
                Ok(session_access(&written))
            }
            Err(error) => match oauth::classify_refresh_failure(&error) {
                RefreshFailure::Permanent(reason) => {
                    self.inner
                        .codex_dead
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(key.clone(), (current.refresh_token.clone(), reason.clone()));
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
}

fn session_access(session: &Session) -> Access {
    Access {
        token: Arc::new(session.access_token.clone()),
        account_id: session.account_id.clone(),
    }
}

fn gone(location: &Location) -> String {
    format!(
        "the Codex CLI session in {} is gone (did `codex logout` run?); run `bitrouter login openai-codex` or sign in to the Codex CLI again",
        location.describe()
    )
}

/// A reason when the session now belongs to another ChatGPT account than the one linked.
fn changed_account(credential: &Credential, session: &Session) -> Option<String> {
    match (&credential.account_id, &session.account_id) {
        (Some(linked), Some(now)) if linked != now => Some(format!(
            "the Codex CLI session in {} now belongs to another account; run `bitrouter login openai-codex --import --label {}` to link it again",
            session.location.describe(),
            credential.key.label
        )),
        _ => None,
    }
}
