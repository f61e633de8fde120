//! The default backend: one JSON file (`oauth-tokens.json`, schema `version: 1`) in the data
//! directory. Written atomically (a 0600 temp file in the same directory, fsync, rename), under
//! an advisory lock on the sibling `oauth-tokens.json.lock`. A corrupt file, a file of a newer
//! schema or a file other users can read is reported and never overwritten. Reads are cached
//! and re-parsed only when the file's size, mtime or inode change, so a running server sees a
//! `logout` at once without re-parsing on every request. The file is looked at (one `stat`) at
//! most once per [`RECHECK`]: a busy server does not pay a system call per request for it, and
//! another process's change is seen a millisecond later at most.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::wire::{self, WireCredential, WireFile};
use super::{Credential, CredentialKey, CredentialStore, StoreError, StoreLock, StoreName, Stored};

/// The credentials of one read, each shared so that handing one out copies nothing.
type Credentials = Arc<Vec<Arc<Credential>>>;

/// The credentials as last read, the file's stamp then, when that stamp was checked, and the
/// read's number (see [`FileStore::version`]).
type Cached = (Stamp, Credentials, Instant, u64);

/// Numbers reads of token files: each parse gets a new one.
static READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// How long a checked file is trusted before it is looked at again.
const RECHECK: Duration = Duration::from_millis(1);

/// The token file backend.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    /// The credentials as last read, the file's stamp then, and when that stamp was checked.
    cache: Mutex<Option<Cached>>,
}

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

impl Stamp {
    /// Modified within the last two seconds: another writer's in-place rewrite of the same
    /// length within the filesystem's mtime granularity could hide behind this stamp.
    fn is_recent(&self) -> bool {
        self.modified.is_none_or(|m| {
            m.elapsed()
                .map_or(true, |age| age < std::time::Duration::from_secs(2))
        })
    }
}

impl FileStore {
    /// A store on the token file at `path` (which need not exist yet).
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        let mut lock_name = path.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let lock_path = path.with_file_name(lock_name);
        FileStore {
            path,
            lock_path,
            cache: Mutex::new(None),
        }
    }

    /// The token file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, message: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// Every credential in the file (empty when there is no file), through the cache.
    fn read_all(&self) -> Result<Credentials, StoreError> {
        self.read_numbered().map(|(credentials, _)| credentials)
    }

    /// [`FileStore::read_all`] with the number of the read it comes from: the same number as
    /// long as the file has not changed, 0 when there is no file.
    fn read_numbered(&self) -> Result<(Credentials, u64), StoreError> {
        if let Some((stamp, credentials, checked, read)) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            && checked.elapsed() < RECHECK
            && !stamp.is_recent()
        {
            return Ok((Arc::clone(credentials), *read));
        }
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Arc::new(Vec::new()), 0));
            }
            Err(e) => return Err(self.io("read", e)),
        };
        check_private(&self.path, &meta)?;
        let stamp = Stamp::of(&meta);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((cached, credentials, checked, read)) = cache.as_mut()
            && *cached == stamp
            && !stamp.is_recent()
        {
            *checked = Instant::now();
            return Ok((Arc::clone(credentials), *read));
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| self.io("read", e))?;
        // Stamp after reading too: if the file was replaced in between, the next read re-parses.
        let credentials = Arc::new(self.parse(&text)?.into_iter().map(Arc::new).collect());
        let read = READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *cache = Some((stamp, Arc::clone(&credentials), Instant::now(), read));
        Ok((credentials, read))
    }

    /// A copy of every credential in the file, to change and write back.
    fn owned(&self) -> Result<Vec<Credential>, StoreError> {
        Ok(self
            .read_all()?
            .iter()
            .map(|c| Credential::clone(c))
            .collect())
    }

    fn parse(&self, text: &str) -> Result<Vec<Credential>, StoreError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| self.corrupt(wire::describe_json_error(&e)))?;
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| self.corrupt("missing `version`"))?;
        if version != wire::VERSION {
            return Err(StoreError::Version {
                path: self.path.clone(),
                version,
            });
        }
        let file: WireFile = serde_json::from_value(value)
            .map_err(|e| self.corrupt(wire::describe_json_error(&e)))?;
        let mut seen = BTreeMap::new();
        let mut out = Vec::with_capacity(file.credentials.len());
        for wire in file.credentials {
            let credential = wire.into_credential().map_err(|m| self.corrupt(m))?;
            if seen.insert(credential.key.clone(), ()).is_some() {
                return Err(self.corrupt(format!("{} appears twice", credential.key)));
            }
            out.push(credential);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Replaces the file with these credentials: temp file (0600) in the same directory, fsync,
    /// rename over the old one, fsync the directory. Called with the store lock held, so any
    /// temp file already there was left by a writer that died mid-write (e.g. SIGKILL) and is
    /// removed first.
    fn write_all(&self, credentials: &[Credential]) -> Result<(), StoreError> {
        let dir = self
            .path
            .parent()
            .ok_or_else(|| self.io("write", std::io::Error::other("no parent directory")))?;
        create_private_dir(dir)?;
        let doc = WireFile {
            version: wire::VERSION,
            credentials: credentials
                .iter()
                .map(WireCredential::from_credential)
                .collect(),
        };
        let mut text = serde_json::to_vec_pretty(&doc).map_err(|e| self.io("write", e.into()))?;
        text.push(b'\n');
        remove_stale_temps(dir);
        let mut tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(dir)
            .map_err(|e| self.io("write", e))?;
        set_private(tmp.as_file()).map_err(|e| self.io("write", e))?;
        tmp.write_all(&text).map_err(|e| self.io("write", e))?;
        tmp.as_file().sync_all().map_err(|e| self.io("write", e))?;
        tmp.persist(&self.path)
            .map_err(|e| self.io("replace", e.error))?;
        sync_dir(dir);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        *cache = None;
        Ok(())
    }
}

impl CredentialStore for FileStore {
    fn lock(&self) -> Result<StoreLock, StoreError> {
        StoreLock::acquire(&self.lock_path)
    }

    fn reads_block(&self) -> bool {
        false
    }

    fn load(&self, key: &CredentialKey) -> Result<Option<Stored>, StoreError> {
        Ok(self.load_shared(key)?.map(|c| Stored {
            credential: Credential::clone(&c),
            store: StoreName::File,
        }))
    }

    fn load_shared(&self, key: &CredentialKey) -> Result<Option<Arc<Credential>>, StoreError> {
        Ok(self.read_all()?.iter().find(|c| &c.key == key).cloned())
    }

    fn list(&self) -> Result<Vec<Stored>, StoreError> {
        Ok(self
            .read_all()?
            .iter()
            .map(|c| Stored {
                credential: Credential::clone(c),
                store: StoreName::File,
            })
            .collect())
    }

    fn keys(&self) -> Result<Vec<CredentialKey>, StoreError> {
        Ok(self.read_all()?.iter().map(|c| c.key.clone()).collect())
    }

    fn version(&self) -> Option<u64> {
        self.read_numbered().ok().map(|(_, read)| read)
    }

    fn save(&self, _lock: &StoreLock, credential: &Credential) -> Result<StoreName, StoreError> {
        let mut all = self.owned()?;
        all.retain(|c| c.key != credential.key);
        all.push(credential.clone());
        all.sort_by(|a, b| a.key.cmp(&b.key));
        self.write_all(&all)?;
        Ok(StoreName::File)
    }

    fn delete(
        &self,
        _lock: &StoreLock,
        key: &CredentialKey,
    ) -> Result<Option<StoreName>, StoreError> {
        let mut all = self.owned()?;
        let before = all.len();
        all.retain(|c| &c.key != key);
        if all.len() == before {
            return Ok(None);
        }
        self.write_all(&all)?;
        Ok(Some(StoreName::File))
    }

    fn describe(&self, _store: StoreName) -> String {
        format!("file {}", self.path.display())
    }
}

/// Refuses a file that other users could read or write.
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StoreError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

fn set_private(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Creates `dir` and its parents; new directories get mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| StoreError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })
}

/// The name of a temp file the store writes before renaming it over the token file.
const TEMP_PREFIX: &str = ".oauth-tokens.";
/// See [`TEMP_PREFIX`].
const TEMP_SUFFIX: &str = ".tmp";

/// Removes temp files a killed writer left behind (best effort; only call under the lock).
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Makes a rename durable (best effort: some filesystems refuse to sync a directory).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
