//! The OS credential store backend (through `keyring-core`): service `bitrouter`, account
//! `provider:label`, value the same JSON object as one token-file entry, plus an `index` entry
//! listing the stored accounts (keyrings cannot be enumerated portably). Every call runs on its
//! own thread under [`KEYRING_TIMEOUT`], so a locked keychain waiting for a prompt never hangs
//! the CLI or the server. A plain thread rather than `spawn_blocking`: a call that never
//! returns must not keep the async runtime from shutting down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use keyring_core::Error as KeyringError;

use super::wire::{self, WireCredential};
use super::{Credential, CredentialKey, CredentialStore, StoreError, StoreLock, StoreName, Stored};

/// The keyring service name of every bitrouter entry.
pub const KEYRING_SERVICE: &str = "bitrouter";
/// The longest bitrouter waits for one keyring call.
pub const KEYRING_TIMEOUT: Duration = Duration::from_secs(5);
/// The account of the index entry (cannot clash with `provider:label`, which has a colon).
const INDEX_ACCOUNT: &str = "index";

/// A `keyring-core` store handle.
pub type Backend = Arc<keyring_core::CredentialStore>;

/// The OS credential store backend.
#[derive(Debug, Clone)]
pub struct KeyringStore {
    backend: Backend,
    lock_path: PathBuf,
    timeout: Duration,
}

impl KeyringStore {
    /// A store on `backend` (e.g. `keyring_core::mock::Store` in tests), locking `lock_path`
    /// across processes.
    #[must_use]
    pub fn with_backend(backend: Backend, lock_path: PathBuf) -> Self {
        KeyringStore {
            backend,
            lock_path,
            timeout: KEYRING_TIMEOUT,
        }
    }

    /// The platform's credential store (Secret Service on Linux, Keychain on macOS, Credential
    /// Manager on Windows), checked to answer. `token_path` is the token file, whose sibling
    /// lock file serialises writers.
    pub fn open_platform(token_path: &Path) -> Result<Self, StoreError> {
        let backend =
            call(KEYRING_TIMEOUT, "open", platform_backend)?.ok_or(StoreError::Keyring {
                action: "open",
                message: "no credential store".into(),
            })?;
        let store = KeyringStore::with_backend(backend, lock_path_for(token_path));
        store.read_index()?;
        Ok(store)
    }

    /// Runs one keyring operation on an entry of the bitrouter service, under the timeout;
    /// `None` when the entry does not exist.
    fn on_entry<T: Send + 'static>(
        &self,
        action: &'static str,
        account: &str,
        op: impl FnOnce(&keyring_core::Entry) -> keyring_core::Result<T> + Send + 'static,
    ) -> Result<Option<T>, StoreError> {
        let backend = Arc::clone(&self.backend);
        let account = account.to_owned();
        call(self.timeout, action, move || {
            let entry = backend.build(KEYRING_SERVICE, &account, None)?;
            op(&entry)
        })
    }

    fn get(&self, account: &str) -> Result<Option<String>, StoreError> {
        self.on_entry("read", account, keyring_core::Entry::get_password)
    }

    fn set(&self, account: &str, value: String) -> Result<(), StoreError> {
        self.on_entry("write", account, move |e| e.set_password(&value))?
            .ok_or(StoreError::Keyring {
                action: "write",
                message: "the entry vanished while it was written".into(),
            })
    }

    fn remove(&self, account: &str) -> Result<bool, StoreError> {
        Ok(self
            .on_entry("delete", account, keyring_core::Entry::delete_credential)?
            .is_some())
    }

    fn read_index(&self) -> Result<Vec<String>, StoreError> {
        let Some(text) = self.get(INDEX_ACCOUNT)? else {
            return Ok(Vec::new());
        };
        serde_json::from_str(&text).map_err(|e| StoreError::KeyringCorrupt {
            account: INDEX_ACCOUNT.to_owned(),
            message: wire::describe_json_error(&e),
        })
    }

    fn write_index(&self, mut accounts: Vec<String>) -> Result<(), StoreError> {
        accounts.sort();
        accounts.dedup();
        let text = serde_json::to_string(&accounts).map_err(|e| StoreError::Keyring {
            action: "write",
            message: e.to_string(),
        })?;
        self.set(INDEX_ACCOUNT, text)
    }

    fn load_account(&self, account: &str) -> Result<Option<Credential>, StoreError> {
        let Some(text) = self.get(account)? else {
            return Ok(None);
        };
        let corrupt = |message| StoreError::KeyringCorrupt {
            account: account.to_owned(),
            message,
        };
        let wire: WireCredential =
            serde_json::from_str(&text).map_err(|e| corrupt(wire::describe_json_error(&e)))?;
        wire.into_credential().map(Some).map_err(corrupt)
    }
}

impl CredentialStore for KeyringStore {
    fn lock(&self) -> Result<StoreLock, StoreError> {
        StoreLock::acquire(&self.lock_path)
    }

    fn load(&self, key: &CredentialKey) -> Result<Option<Stored>, StoreError> {
        Ok(self
            .load_account(&key.to_string())?
            .map(|credential| Stored {
                credential,
                store: StoreName::Keyring,
            }))
    }

    fn list(&self) -> Result<Vec<Stored>, StoreError> {
        let mut out = Vec::new();
        for account in self.read_index()? {
            if let Some(credential) = self.load_account(&account)? {
                out.push(Stored {
                    credential,
                    store: StoreName::Keyring,
                });
            }
        }
        out.sort_by(|a, b| a.credential.key.cmp(&b.credential.key));
        Ok(out)
    }

    fn save(&self, _lock: &StoreLock, credential: &Credential) -> Result<StoreName, StoreError> {
        let account = credential.key.to_string();
        let text =
            serde_json::to_string(&WireCredential::from_credential(credential)).map_err(|e| {
                StoreError::Keyring {
                    action: "write",
                    message: e.to_string(),
                }
            })?;
        self.set(&account, text)?;
        let mut index = self.read_index()?;
        if !index.contains(&account) {
            index.push(account);
            self.write_index(index)?;
        }
        Ok(StoreName::Keyring)
    }

    fn delete(
        &self,
        _lock: &StoreLock,
        key: &CredentialKey,
    ) -> Result<Option<StoreName>, StoreError> {
        let account = key.to_string();
        let removed = self.remove(&account)?;
        let mut index = self.read_index()?;
        if index.contains(&account) {
            index.retain(|a| a != &account);
            self.write_index(index)?;
        }
        Ok(removed.then_some(StoreName::Keyring))
    }

    fn describe(&self, _store: StoreName) -> String {
        format!("the OS keyring (service {KEYRING_SERVICE})")
    }
}

/// The lock file beside the token file (shared by every backend).
pub(super) fn lock_path_for(token_path: &Path) -> PathBuf {
    let mut name = token_path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    token_path.with_file_name(name)
}

/// Runs `op` on a fresh thread and waits at most `timeout` for it; `None` when it answered
/// that the entry does not exist.
pub(crate) fn call<T: Send + 'static>(
    timeout: Duration,
    action: &'static str,
    op: impl FnOnce() -> keyring_core::Result<T> + Send + 'static,
) -> Result<Option<T>, StoreError> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("bitrouter-keyring".into())
        .spawn(move || {
            let _ = tx.send(op());
        })
        .map_err(|e| StoreError::Keyring {
            action,
            message: e.to_string(),
        })?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(value)) => Ok(Some(value)),
        Ok(Err(KeyringError::NoEntry)) => Ok(None),
        Ok(Err(e)) => Err(StoreError::Keyring {
            action,
            message: e.to_string(),
        }),
        Err(_) => Err(StoreError::KeyringTimeout {
            action,
            seconds: timeout.as_secs(),
        }),
    }
}

/// The platform's keyring store.
pub(crate) fn platform_backend() -> keyring_core::Result<Backend> {
    #[cfg(target_os = "linux")]
    {
        let store: Backend = zbus_secret_service_keyring_store::Store::new()?;
        Ok(store)
    }
    #[cfg(target_os = "macos")]
    {
        let store: Backend = apple_native_keyring_store::keychain::Store::new()?;
        Ok(store)
    }
    #[cfg(target_os = "windows")]
    {
        let store: Backend = windows_native_keyring_store::Store::new()?;
        Ok(store)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
    {
        Err(KeyringError::NotSupportedByStore(
            "no OS credential store on this platform".into(),
        ))
    }
}
