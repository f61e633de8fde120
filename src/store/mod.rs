//! Credential storage: what a stored credential is ([`Credential`], keyed by [`CredentialKey`]),
//! the [`CredentialStore`] trait every backend implements, and choosing a backend from the
//! config (`store: file | keyring | auto`).
//!
//! Invariants: every write happens under the store's cross-process lock ([`StoreLock`]), so two
//! bitrouter processes never lose each other's updates; tokens live in [`SecretString`]s and are
//! exposed only when they are written to the backend.

mod auto;
mod file;
mod keyring;
mod wire;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

pub use auto::AutoStore;
pub use file::FileStore;
pub(crate) use file::create_private_dir;
pub use keyring::{Backend, KEYRING_SERVICE, KEYRING_TIMEOUT, KeyringStore};
pub(crate) use keyring::{call as keyring_call, platform_backend};

use crate::config::StoreKind;
use crate::env::Env;
use crate::ids::{Label, ProviderId};
use crate::paths;

/// The token file's name inside the data directory.
pub const TOKEN_FILE: &str = "oauth-tokens.json";

/// Which stored credential: a provider and an account label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CredentialKey {
    /// The provider it signs in to.
    pub provider: ProviderId,
    /// The account label (`default` unless `--label` said otherwise).
    pub label: Label,
}

impl CredentialKey {
    /// A key for this provider and label.
    #[must_use]
    pub fn new(provider: ProviderId, label: Label) -> Self {
        CredentialKey { provider, label }
    }
}

impl fmt::Display for CredentialKey {
    /// `provider:label`, the keyring account name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.label)
    }
}

/// What kind of secret a credential holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// An OAuth sign-in (access token, usually a refresh token).
    Oauth,
    /// A static API key.
    ApiKey,
}

impl CredentialKind {
    /// The file spelling (`oauth` | `api_key`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Oauth => "oauth",
            CredentialKind::ApiKey => "api_key",
        }
    }
}

/// Where a credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `bitrouter login` (browser or device code).
    Login,
    /// `bitrouter login --api-key-stdin`.
    ApiKey,
    /// Linked to the Codex CLI's `$CODEX_HOME/auth.json`.
    CodexAuthJson,
    /// Linked to the Codex CLI's keyring entry.
    CodexKeyring,
}

impl Source {
    /// The file spelling (`login` | `api-key` | `codex:auth.json` | `codex:keyring`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Login => "login",
            Source::ApiKey => "api-key",
            Source::CodexAuthJson => "codex:auth.json",
            Source::CodexKeyring => "codex:keyring",
        }
    }

    /// Whether the tokens live in the Codex CLI's store rather than in bitrouter's.
    #[must_use]
    pub fn is_codex_link(self) -> bool {
        matches!(self, Source::CodexAuthJson | Source::CodexKeyring)
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Source::Login,
            Source::ApiKey,
            Source::CodexAuthJson,
            Source::CodexKeyring,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored credential. Tokens are secrets: `Debug` redacts them and nothing here serialises
/// them except the backends' writers.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Provider and label.
    pub key: CredentialKey,
    /// OAuth or API key.
    pub kind: CredentialKind,
    /// The bearer token (the API key for `api_key`). Empty for a credential linked to the Codex
    /// CLI, whose tokens are read from the Codex store on every use. Shared with each request's
    /// [`crate::auth::Access`] rather than copied: a ChatGPT access token is some 2 KB.
    pub access_token: Arc<SecretString>,
    /// The OAuth refresh token (rotates on every refresh).
    pub refresh_token: Option<SecretString>,
    /// The OpenID id_token.
    pub id_token: Option<SecretString>,
    /// When the access token expires (unix seconds).
    pub expires_at: Option<i64>,
    /// The ChatGPT account (workspace) id, sent as `ChatGPT-Account-Id`.
    pub account_id: Option<String>,
    /// The signed-in email.
    pub email: Option<String>,
    /// The ChatGPT plan (`plus`, `pro`, …).
    pub plan: Option<String>,
    /// When the tokens were last obtained or refreshed (unix seconds).
    pub last_refresh: Option<i64>,
    /// Where it came from.
    pub source: Source,
    /// Set when the credential cannot be used until the user signs in again: the reason.
    pub needs_login: Option<String>,
    /// For a credential linked to the Codex CLI: its `CODEX_HOME`.
    pub codex_home: Option<PathBuf>,
}

impl Credential {
    /// Whether the access and refresh tokens are the same as `other`'s (in constant time is not
    /// needed: both sides are ours).
    #[must_use]
    pub fn same_tokens(&self, other: &Credential) -> bool {
        self.access_token.expose_secret() == other.access_token.expose_secret()
            && opt_eq(self.refresh_token.as_ref(), other.refresh_token.as_ref())
    }
}

fn opt_eq(a: Option<&SecretString>, b: Option<&SecretString>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
        (None, None) => true,
        (Some(_), None) | (None, Some(_)) => false,
    }
}

/// Which backend holds a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreName {
    /// The 0600 JSON token file.
    File,
    /// The OS credential store.
    Keyring,
}

impl StoreName {
    /// `file` or `keyring`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StoreName::File => "file",
            StoreName::Keyring => "keyring",
        }
    }
}

impl fmt::Display for StoreName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A credential together with the backend that holds it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The credential.
    pub credential: Credential,
    /// Where it is.
    pub store: StoreName,
}

/// Why a store operation failed. `NotFound` is not among them: a missing credential is `None`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read, written, created or locked.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done (`read`, `write`, `lock`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The token file is not valid; it is left untouched.
    #[error("the token file {path} is corrupt: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The token file can be read by other users; it is left untouched.
    #[error("the token file {path} is readable by other users (mode {mode:o})")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The token file was written by a newer bitrouter.
    #[error("the token file {path} has schema version {version}, this bitrouter reads version 1")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u64,
    },
    /// No data directory could be found for the token file.
    #[error("no data directory for the token file (neither $XDG_DATA_HOME nor a home directory)")]
    NoDataDir,
    /// The OS credential store failed or could not be reached.
    #[error("the OS credential store {action} failed: {message}")]
    Keyring {
        /// What was being done.
        action: &'static str,
        /// The store's own message (never a secret).
        message: String,
    },
    /// The OS credential store did not answer in time (a locked keychain waiting for a prompt).
    #[error("the OS credential store did not answer within {}s ({action})", .seconds)]
    KeyringTimeout {
        /// What was being done.
        action: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// A keyring entry holds something that is not a bitrouter credential.
    #[error("the keyring entry {account} is corrupt: {message}")]
    KeyringCorrupt {
        /// The keyring account (`provider:label`).
        account: String,
        /// What is wrong.
        message: String,
    },
}

/// Proof that the store's cross-process lock is held; writes require it. Released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Takes the exclusive lock on `path` (created if needed, mode 0600), waiting for other
    /// holders. Blocking: call it off the async executor.
    pub fn acquire(path: &Path) -> Result<StoreLock, StoreError> {
        let io = |action, source| StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            file::create_private_dir(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|e| io("open", e))?;
        file.lock().map_err(|e| io("lock", e))?;
        Ok(StoreLock { _file: file })
    }
}

/// A place credentials are kept. Reads need no lock (writers replace whole values atomically);
/// writes take a [`StoreLock`] so a read-modify-write spanning several calls (and a network
/// refresh) is safe across processes. Every method may block: call it off the async executor.
pub trait CredentialStore: Send + Sync + fmt::Debug {
    /// Takes the store's exclusive cross-process lock.
    fn lock(&self) -> Result<StoreLock, StoreError>;

    /// The credential under `key`, if any.
    fn load(&self, key: &CredentialKey) -> Result<Option<Stored>, StoreError>;

    /// [`CredentialStore::load`], shared instead of copied where the store keeps its
    /// credentials in memory (the file store does). A running server asks this on every
    /// request, and a signed-in account's tokens are some kilobytes.
    fn load_shared(&self, key: &CredentialKey) -> Result<Option<Arc<Credential>>, StoreError> {
        Ok(self.load(key)?.map(|s| Arc::new(s.credential)))
    }

    /// Every stored credential, sorted by key.
    fn list(&self) -> Result<Vec<Stored>, StoreError>;

    /// The keys of every stored credential: [`CredentialStore::list`] without copying the
    /// credentials (the server asks this on every request).
    fn keys(&self) -> Result<Vec<CredentialKey>, StoreError> {
        Ok(self.list()?.into_iter().map(|s| s.credential.key).collect())
    }

    /// A number that stays the same while what [`CredentialStore::keys`] answers stays the
    /// same, for callers that keep something built from the keys; `None` when the store cannot
    /// tell cheaply (such callers then ask for the keys every time).
    fn version(&self) -> Option<u64> {
        None
    }

    /// Saves `credential` under its key, replacing any previous one; says where it went.
    fn save(&self, lock: &StoreLock, credential: &Credential) -> Result<StoreName, StoreError>;

    /// Removes the credential under `key`; says where it was, or `None` if there was none.
    fn delete(
        &self,
        lock: &StoreLock,
        key: &CredentialKey,
    ) -> Result<Option<StoreName>, StoreError>;

    /// A human description of where credentials go (for messages), e.g. the file's path.
    fn describe(&self, store: StoreName) -> String;

    /// A one-time notice to show the user, e.g. that `auto` fell back to the file.
    fn notice(&self) -> Option<String> {
        None
    }

    /// Whether `load` and `list` may wait on something slow (the OS keyring over D-Bus), so
    /// async callers should move them off the runtime's threads. The token file answers from
    /// its cache after one `stat`, which is cheaper than the hand-off to a blocking thread.
    fn reads_block(&self) -> bool {
        true
    }
}

/// Locked read-modify-write of one credential: `f` gets the current value and returns the new
/// one (`None` deletes). Returns what `f` returned.
pub fn update(
    store: &dyn CredentialStore,
    key: &CredentialKey,
    f: impl FnOnce(Option<Credential>) -> Option<Credential>,
) -> Result<Option<Credential>, StoreError> {
    let lock = store.lock()?;
    let current = store.load(key)?.map(|s| s.credential);
    let next = f(current);
    match &next {
        Some(credential) => {
            store.save(&lock, credential)?;
        }
        None => {
            store.delete(&lock, key)?;
        }
    }
    Ok(next)
}

/// The token file's path: `$XDG_DATA_HOME/bitrouter/oauth-tokens.json` (or the platform's).
pub fn token_file_path(env: &Env) -> Result<PathBuf, StoreError> {
    paths::data_dir(env)
        .map(|dir| dir.join(TOKEN_FILE))
        .ok_or(StoreError::NoDataDir)
}

/// Opens the backend the config asks for. `keyring` fails if the OS store cannot be reached;
/// `auto` falls back to the file and says so through [`CredentialStore::notice`].
pub fn open(kind: StoreKind, env: &Env) -> Result<Arc<dyn CredentialStore>, StoreError> {
    let path = token_file_path(env)?;
    match kind {
        StoreKind::File => Ok(Arc::new(FileStore::new(path))),
        StoreKind::Keyring => Ok(Arc::new(KeyringStore::open_platform(&path)?)),
        StoreKind::Auto => Ok(Arc::new(AutoStore::open_platform(path))),
    }
}

#[cfg(test)]
pub(crate) mod tests;
