//! The background server's log, `serve.log` in the state directory, kept under a size cap: when
//! it grows past [`CAP`] it becomes `serve.log.1` (replacing the previous one) and a new file
//! starts, so the two never take more than twice the cap. The detached process writes to it
//! through its standard output and error; rotating re-points both at the new file.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The log's file name in the state directory.
pub const LOG_FILE: &str = "serve.log";
/// The size past which the log is rotated.
pub const CAP: u64 = 8 * 1024 * 1024;
/// How often the running server checks the size.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// The log file of a state directory.
#[must_use]
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(LOG_FILE)
}

fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Rotates `path` when it is larger than `cap`; says whether it did.
///
/// # Errors
///
/// When the file cannot be renamed.
pub fn rotate_if_over(path: &Path, cap: u64) -> io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > cap => {
            std::fs::rename(path, rotated(path))?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Opens the log for appending (rotating it first when it is over the cap), private to the user.
///
/// # Errors
///
/// When the file cannot be opened.
pub fn open_append(path: &Path, cap: u64) -> io::Result<File> {
    rotate_if_over(path, cap)?;
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// The last `n` lines of the log (for an error report).
#[must_use]
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let mut lines: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        if lines.len() == n {
            lines.pop_front();
        }
        lines.push_back(line);
    }
    lines.into()
}

/// The last `n` lines written at or after byte `offset` (what one start wrote).
#[must_use]
pub fn tail_from(path: &Path, offset: u64, n: usize) -> Vec<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.take(CAP).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// In the detached server: checks the log's size every few seconds until `shutdown`, and when
/// it is over the cap rotates it and points standard output and error at the new file.
pub async fn keep_capped(path: PathBuf, cap: u64, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
        match rotate_if_over(&path, cap).and_then(|done| {
            if done {
                redirect_output(&open_append(&path, cap)?)?;
            }
            Ok(())
        }) {
            Ok(()) => {}
            Err(e) => tracing::warn!("cannot rotate {}: {e}", path.display()),
        }
    }
}

/// Points standard output and error at `file`.
#[cfg(unix)]
fn redirect_output(file: &File) -> io::Result<()> {
    rustix::stdio::dup2_stdout(file)?;
    rustix::stdio::dup2_stderr(file)?;
    Ok(())
}

#[cfg(not(unix))]
fn redirect_output(_file: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn the_log_rotates_past_the_cap_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        let mut f = open_append(&path, 10).unwrap();
        f.write_all(b"one\ntwo\nthree\n").unwrap();
        drop(f);
        let mut f = open_append(&path, 10).unwrap();
        f.write_all(b"four\n").unwrap();
        drop(f);
        assert_eq!(tail(&path, 5), ["four"]);
        assert_eq!(tail(&rotated(&path), 2), ["two", "three"]);
        assert!(!rotate_if_over(&path, 10).unwrap());
    }
}
