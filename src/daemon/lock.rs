//! One server per state directory: the serving process holds an exclusive lock on `serve.lock`
//! for its whole life. The kernel drops the lock when the process ends, however it ends (SIGKILL
//! included), so a dead server never blocks the next start and nothing has to be cleaned up.
//! `start.lock` serialises on-demand starts, so two `run`s started at once start one server.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lock file the serving process holds.
pub const SERVE_LOCK: &str = "serve.lock";
/// The lock file a process holds while it starts a server on demand.
pub const START_LOCK: &str = "start.lock";

/// Why the serve lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it: a server runs for this state directory.
    #[error("another bitrouter server holds {}", path.display())]
    Held {
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be created or locked.
    #[error("cannot lock {}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// An exclusive lock, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct Held {
    _file: File,
}

/// Creates the state directory (private to the user) if needed.
///
/// # Errors
///
/// When the directory cannot be created.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn open(dir: &Path, name: &str) -> Result<(File, PathBuf), LockError> {
    let path = dir.join(name);
    ensure_dir(dir).map_err(|source| LockError::Io {
        path: path.clone(),
        source,
    })?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
    Ok((file, path))
}

/// Takes the serve lock of `dir`, or says that a server already holds it.
///
/// # Errors
///
/// [`LockError::Held`] when a server runs; [`LockError::Io`] when the file cannot be locked.
pub fn acquire_serve(dir: &Path) -> Result<Held, LockError> {
    let (file, path) = open(dir, SERVE_LOCK)?;
    match file.try_lock() {
        Ok(()) => Ok(Held { _file: file }),
        Err(TryLockError::WouldBlock) => Err(LockError::Held { path }),
        Err(TryLockError::Error(source)) => Err(LockError::Io { path, source }),
    }
}

/// Whether a server holds the serve lock of `dir` now.
#[must_use]
pub fn is_held(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(SERVE_LOCK)) else {
        return false;
    };
    matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
}

/// Takes the start lock of `dir`, waiting up to `within` for another starter to finish.
///
/// # Errors
///
/// When the file cannot be locked, or another process held it for longer than `within`.
pub async fn acquire_start(dir: &Path, within: Duration) -> Result<Held, LockError> {
    let (file, path) = open(dir, START_LOCK)?;
    let deadline = Instant::now() + within;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Held { _file: file }),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Io {
                    path,
                    source: io::Error::new(
                        io::ErrorKind::TimedOut,
                        "another process has been starting a server for too long",
                    ),
                });
            }
            Err(TryLockError::Error(source)) => return Err(LockError::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_held(dir.path()));
        let held = acquire_serve(dir.path()).unwrap();
        assert!(is_held(dir.path()));
        assert!(matches!(
            acquire_serve(dir.path()),
            Err(LockError::Held { .. })
        ));
        drop(held);
        assert!(!is_held(dir.path()));
        assert!(acquire_serve(dir.path()).is_ok());
    }
}
