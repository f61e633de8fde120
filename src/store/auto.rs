//! `store: auto`: the OS keyring when it can be opened and answers, else the token file — and
//! the fallback is visible ([`CredentialStore::notice`], a warning in the logs, and `status`
//! naming the store of each credential). A missing entry is not a reason to fall back; an
//! unavailable keyring is. Reads look in both, so credentials saved to the file while the
//! keyring was away stay usable when it returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{
    Credential, CredentialKey, CredentialStore, FileStore, KeyringStore, StoreError, StoreLock,
    StoreName, Stored,
};

/// The keyring-first backend with a visible fallback to the file.
#[derive(Debug)]
pub struct AutoStore {
    file: FileStore,
    keyring: Option<KeyringStore>,
    unavailable: Option<String>,
    warned: AtomicBool,
}

impl AutoStore {
    /// Opens the platform keyring; when that fails, uses only the file at `token_path`.
    #[must_use]
    pub fn open_platform(token_path: std::path::PathBuf) -> Self {
        match KeyringStore::open_platform(&token_path) {
            Ok(keyring) => AutoStore::new(FileStore::new(token_path), Some(keyring), None),
            Err(e) => {
                let reason = e.to_string();
                AutoStore::new(FileStore::new(token_path), None, Some(reason))
            }
        }
    }

    /// An auto store over these backends; `unavailable` says why there is no keyring.
    #[must_use]
    pub fn new(
        file: FileStore,
        keyring: Option<KeyringStore>,
        unavailable: Option<String>,
    ) -> Self {
        AutoStore {
            file,
            keyring,
            unavailable,
            warned: AtomicBool::new(false),
        }
    }

    /// Whether the keyring is in use.
    #[must_use]
    pub fn has_keyring(&self) -> bool {
        self.keyring.is_some()
    }

    fn degrade(&self, e: &StoreError) {
        tracing::warn!(error = %e, "the OS keyring failed; using the token file");
    }
}

impl CredentialStore for AutoStore {
    fn lock(&self) -> Result<StoreLock, StoreError> {
        self.file.lock()
    }

    fn version(&self) -> Option<u64> {
        // With a keyring in use, what it holds cannot be told without asking it.
        if self.keyring.is_some() {
            None
        } else {
            self.file.version()
        }
    }

    fn load(&self, key: &CredentialKey) -> Result<Option<Stored>, StoreError> {
        if let Some(keyring) = &self.keyring {
            match keyring.load(key) {
                Ok(Some(found)) => return Ok(Some(found)),
                Ok(None) => {}
                Err(e) => self.degrade(&e),
            }
        }
        self.file.load(key)
    }

    fn load_shared(&self, key: &CredentialKey) -> Result<Option<Arc<Credential>>, StoreError> {
        if self.keyring.is_some() {
            return Ok(self.load(key)?.map(|s| Arc::new(s.credential)));
        }
        self.file.load_shared(key)
    }

    fn list(&self) -> Result<Vec<Stored>, StoreError> {
        let mut out = match &self.keyring {
            Some(keyring) => keyring.list().unwrap_or_else(|e| {
                self.degrade(&e);
                Vec::new()
            }),
            None => Vec::new(),
        };
        for stored in self.file.list()? {
            if !out
                .iter()
                .any(|s| s.credential.key == stored.credential.key)
            {
                out.push(stored);
            }
        }
        out.sort_by(|a, b| a.credential.key.cmp(&b.credential.key));
        Ok(out)
    }

    fn save(&self, lock: &StoreLock, credential: &Credential) -> Result<StoreName, StoreError> {
        if let Some(keyring) = &self.keyring {
            match keyring.save(lock, credential) {
                Ok(name) => {
                    // A copy left in the file from an earlier fallback would go stale.
                    self.file.delete(lock, &credential.key)?;
                    return Ok(name);
                }
                Err(e) => self.degrade(&e),
            }
        }
        self.file.save(lock, credential)
    }

    fn delete(
        &self,
        lock: &StoreLock,
        key: &CredentialKey,
    ) -> Result<Option<StoreName>, StoreError> {
        let from_keyring = match &self.keyring {
            Some(keyring) => keyring.delete(lock, key)?,
            None => None,
        };
        let from_file = self.file.delete(lock, key)?;
        Ok(from_keyring.or(from_file))
    }

    fn describe(&self, store: StoreName) -> String {
        match (store, &self.keyring) {
            (StoreName::Keyring, Some(keyring)) => keyring.describe(store),
            (StoreName::Keyring, None) | (StoreName::File, _) => self.file.describe(store),
        }
    }

    fn reads_block(&self) -> bool {
        self.keyring.is_some()
    }

    fn notice(&self) -> Option<String> {
        let reason = self.unavailable.as_ref()?;
        if self.warned.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(format!(
            "the OS keyring is unavailable ({reason}); using the token file {} instead",
            self.file.path().display()
        ))
    }
}
