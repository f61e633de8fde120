//! `serve.json` in the state directory: what the serving process says about itself (pid, the
//! address it bound, version, start time, log file). Written atomically after the listener is
//! bound, removed on a clean exit; it is trusted only while the serve lock is held, so one left
//! behind by a killed server is harmless.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The record's file name.
pub const RECORD_FILE: &str = "serve.json";

/// What a running server says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    /// Its process id (0 when unknown).
    pub pid: u32,
    /// The address it bound (the real port when the config said port 0).
    pub listen: SocketAddr,
    /// Its version.
    pub version: String,
    /// When it started (Unix seconds).
    pub started_at: i64,
    /// Its log file, when it runs in the background.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
}

impl ServerRecord {
    /// The record of this process, serving on `listen`.
    #[must_use]
    pub fn of_this_process(listen: SocketAddr, log: Option<PathBuf>) -> Self {
        ServerRecord {
            pid: std::process::id(),
            listen,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: super::unix_now(),
            log,
        }
    }

    /// A placeholder for a server whose record is not (yet) written.
    #[must_use]
    pub fn unknown() -> Self {
        ServerRecord {
            pid: 0,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            version: String::new(),
            started_at: 0,
            log: None,
        }
    }
}

/// Writes the record atomically (temp file and rename), private to the user.
///
/// # Errors
///
/// When the file cannot be written.
pub fn write(dir: &Path, record: &ServerRecord) -> io::Result<()> {
    super::lock::ensure_dir(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut file, record).map_err(io::Error::other)?;
    file.persist(dir.join(RECORD_FILE))
        .map_err(|e| e.error)
        .map(drop)
}

/// Reads the record, if there is a readable one.
#[must_use]
pub fn read(dir: &Path) -> Option<ServerRecord> {
    let text = std::fs::read(dir.join(RECORD_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Removes the record if it is this process's (best effort).
pub fn remove_own(dir: &Path) {
    if read(dir).is_some_and(|r| r.pid == std::process::id()) {
        let _ = std::fs::remove_file(dir.join(RECORD_FILE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_only_its_owner_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = ServerRecord::of_this_process("127.0.0.1:4356".parse().unwrap(), None);
        write(dir.path(), &record).unwrap();
        assert_eq!(read(dir.path()), Some(record.clone()));
        record.pid += 1;
        write(dir.path(), &record).unwrap();
        remove_own(dir.path());
        assert_eq!(read(dir.path()), Some(record.clone()));
        record.pid = std::process::id();
        write(dir.path(), &record).unwrap();
        remove_own(dir.path());
        assert_eq!(read(dir.path()), None);
    }
}
