//! The database file: `history.sqlite3` in the data directory, created private (mode 0600, in
//! a 0700 directory), in WAL mode so `bitrouter usage` and the dashboard read while `serve`
//! writes. Opening for writing migrates the schema; a file SQLite calls corrupt (or not a
//! database at all) is moved aside as `history.sqlite3.corrupt-<unix time>` and a new one is
//! started, and the caller says so. Opening for reading never creates, moves or writes anything
//! except to bring an older schema up to date.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::schema::{self, Migrated};

/// The file name inside the data directory.
pub const FILE_NAME: &str = "history.sqlite3";

/// How long a statement waits for another process's lock before it fails with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// The history file in `data_dir`.
#[must_use]
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Why the history database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The directory or the file could not be created.
    #[error("cannot create {path}")]
    Create {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused the file.
    #[error("cannot use {path}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is damaged or is not a database.
    #[error("{path} is damaged")]
    Corrupt {
        /// The database.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A newer bitrouter wrote it.
    #[error(
        "{path} was written by a newer bitrouter (schema {found}; this one knows up to {known})"
    )]
    Newer {
        /// The database.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// A damaged file could not be moved aside.
    #[error("cannot move the damaged {path} aside")]
    MoveAside {
        /// The database.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl HistoryError {
    fn sqlite(path: &Path, source: rusqlite::Error) -> HistoryError {
        if is_corrupt(&source) {
            HistoryError::Corrupt {
                path: path.to_path_buf(),
                source,
            }
        } else {
            HistoryError::Sqlite {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// Whether the error says another process holds a lock (a retry may succeed).
    #[must_use]
    pub fn is_busy(&self) -> bool {
        matches!(self, HistoryError::Sqlite { source, .. } if is_busy(source))
    }
}

/// Whether SQLite says the file is damaged or not a database.
#[must_use]
pub fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Whether SQLite says another connection holds a lock.
#[must_use]
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A database opened for writing.
#[derive(Debug)]
pub struct WriterDb {
    /// The connection.
    pub conn: Connection,
    /// Where a damaged file was moved, when one was.
    pub moved_aside: Option<PathBuf>,
}

/// Opens (creating when absent) the database for writing, migrated to the current schema. A
/// damaged file is moved aside and a new one started.
///
/// # Errors
///
/// When the file cannot be created, opened or migrated (read-only, locked, disk full), or a
/// newer bitrouter wrote it.
pub fn open_for_writing(path: &Path, now: i64) -> Result<WriterDb, HistoryError> {
    create_private(path)?;
    match open_writer(path) {
        Ok(conn) => Ok(WriterDb {
            conn,
            moved_aside: None,
        }),
        Err(HistoryError::Corrupt { .. }) => {
            let aside = move_aside(path, now)?;
            create_private(path)?;
            let conn = open_writer(path)?;
            Ok(WriterDb {
                conn,
                moved_aside: Some(aside),
            })
        }
        Err(e) => Err(e),
    }
}

fn open_writer(path: &Path) -> Result<Connection, HistoryError> {
    let fail = |e| HistoryError::sqlite(path, e);
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::debug!(path = %path.display(), mode, "history database is not in WAL mode");
    }
    // WAL with NORMAL: a commit does not wait for the disk; a power cut may lose the last
    // few records, never the file.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(fail)?;
    // The bundled SQLite checks foreign keys by default: for each request row, a look-up of
    // its agent and its target. The writer has just found or made both in the same
    // transaction, so the checks only cost time.
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(fail)?;
    match schema::migrate(&mut conn).map_err(fail)? {
        Migrated::Current => Ok(conn),
        Migrated::Newer(found) => Err(HistoryError::Newer {
            path: path.to_path_buf(),
            found,
            known: schema::current_version(),
        }),
    }
}

/// Opens the database for reading; `None` when there is no history yet.
///
/// # Errors
///
/// When the file exists but cannot be read, is damaged, or a newer bitrouter wrote it.
pub fn open_for_reading(path: &Path) -> Result<Option<Connection>, HistoryError> {
    if !path.exists() {
        return Ok(None);
    }
    let fail = |e| HistoryError::sqlite(path, e);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    let found = schema::version(&conn).map_err(fail)?;
    if found == 0 {
        return Ok(None);
    }
    if found > schema::current_version() {
        return Err(HistoryError::Newer {
            path: path.to_path_buf(),
            found,
            known: schema::current_version(),
        });
    }
    if found < schema::current_version() {
        // An older schema: bring it up to date, then read.
        drop(conn);
        drop(open_writer(path)?);
        return open_for_reading(path);
    }
    Ok(Some(conn))
}

/// Creates the data directory (0700) and the file (0600) when they are absent; an existing
/// file keeps its mode.
fn create_private(path: &Path) -> Result<(), HistoryError> {
    let fail = |source| HistoryError::Create {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

/// Moves a damaged database (and its WAL) to `<file>.corrupt-<now>`; its shared-memory index
/// is removed. Returns the new name.
///
/// # Errors
///
/// When the file cannot be renamed.
pub fn move_aside(path: &Path, now: i64) -> Result<PathBuf, HistoryError> {
    let name = path
        .file_name()
        .map_or_else(|| FILE_NAME.into(), |n| n.to_string_lossy().into_owned());
    let aside = path.with_file_name(format!("{name}.corrupt-{now}"));
    std::fs::rename(path, &aside).map_err(|source| HistoryError::MoveAside {
        path: path.to_path_buf(),
        source,
    })?;
    let sibling = |suffix: &str| path.with_file_name(format!("{name}{suffix}"));
    let _ = std::fs::rename(
        sibling("-wal"),
        aside.with_file_name(format!("{name}.corrupt-{now}-wal")),
    );
    let _ = std::fs::remove_file(sibling("-shm"));
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_file_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(&dir.path().join("bitrouter"));
        let db = open_for_writing(&path, 1).unwrap();
        assert!(db.moved_aside.is_none());
        let mode: String = db
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(file & 0o777, 0o600);
            let parent = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(parent & 0o777, 0o700);
        }
        assert!(open_for_reading(&path).unwrap().is_some());
    }

    #[test]
    fn a_damaged_file_is_moved_aside_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
        assert!(matches!(
            open_for_reading(&path),
            Err(HistoryError::Corrupt { .. })
        ));
        let db = open_for_writing(&path, 42).unwrap();
        let aside = db.moved_aside.unwrap();
        assert_eq!(aside, dir.path().join("history.sqlite3.corrupt-42"));
        assert_eq!(std::fs::read(&aside).unwrap(), vec![0x5a_u8; 8192]);
        assert_eq!(
            schema::version(&db.conn).unwrap(),
            schema::current_version()
        );
    }

    #[test]
    fn reading_a_missing_file_is_no_history() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open_for_reading(&path_in(dir.path())).unwrap().is_none());
        assert!(!path_in(dir.path()).exists());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        drop(open_for_writing(&path, 1).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            open_for_reading(&path),
            Err(HistoryError::Newer { found: 99, .. })
        ));
        assert!(matches!(
            open_for_writing(&path, 1),
            Err(HistoryError::Newer { found: 99, .. })
        ));
    }
}
