//! Starting `bitrouter serve` in the background: the same binary, re-run with a hidden flag, its
//! standard input closed and its output going to the size-capped log, in the root directory so it
//! holds no other directory open. The child makes itself a session leader ([`become_daemon`]), so
//! closing the terminal does not reach it. The starter waits until the child has written its
//! record and answers `/health`, or reports the end of its log when it died first.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::probe::{self, Probe};
use super::record::{self, ServerRecord};
use super::{connect_addr, log};
use crate::error::Failure;

/// The hidden `serve` flag the background child runs with.
pub const CHILD_FLAG: &str = "--detached-child";
/// How long a background server may take to answer `/health`.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// How many log lines a failed start shows.
const TAIL_LINES: usize = 12;

/// How to start a background server.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The state directory (lock, record, log).
    pub state_dir: PathBuf,
    /// The configuration file to pass on with `--config` (made absolute).
    pub config: Option<PathBuf>,
    /// The address to pass on with `--listen`.
    pub listen: Option<SocketAddr>,
    /// The binary to run (`None`: this one).
    pub exe: Option<PathBuf>,
}

impl StartOptions {
    fn command(&self) -> std::io::Result<Command> {
        let exe = match &self.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe()?,
        };
        let mut args: Vec<OsString> = Vec::new();
        if let Some(config) = &self.config {
            args.push("--config".into());
            args.push(std::path::absolute(config)?.into_os_string());
        }
        args.push("serve".into());
        if let Some(listen) = self.listen {
            args.push("--listen".into());
            args.push(listen.to_string().into());
        }
        args.push(CHILD_FLAG.into());
        let mut cmd = Command::new(exe);
        cmd.args(args).current_dir("/");
        Ok(cmd)
    }
}

/// Starts a background server and waits until it answers; returns its record.
///
/// # Errors
///
/// When the log cannot be opened, the binary cannot be run, or the server exits or does not
/// answer in time (the error shows the end of its log).
pub async fn start(options: &StartOptions) -> anyhow::Result<ServerRecord> {
    super::lock::ensure_dir(&options.state_dir).map_err(|e| {
        Failure::new(
            format!("cannot create {}: {e}", options.state_dir.display()),
            "check the permissions of the state directory (XDG_STATE_HOME)",
        )
    })?;
    let log_path = log::path_in(&options.state_dir);
    let log_file = log::open_append(&log_path, log::CAP).map_err(|e| {
        Failure::new(
            format!("cannot open the server log {}: {e}", log_path.display()),
            "check the permissions of the state directory (XDG_STATE_HOME)",
        )
    })?;
    let start_offset = log_file.metadata().map_or(0, |m| m.len());
    let mut cmd = options.command()?;
    cmd.stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    let mut child = cmd.spawn().map_err(|e| {
        Failure::new(
            format!("cannot start the background server: {e}"),
            "reinstall bitrouter, or start it in the foreground with `bitrouter serve`",
        )
    })?;
    wait_ready(&mut child, &options.state_dir, &log_path, start_offset).await
}

async fn wait_ready(
    child: &mut Child,
    state_dir: &Path,
    log_path: &Path,
    start_offset: u64,
) -> anyhow::Result<ServerRecord> {
    let pid = child.id();
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(failed_start(
                &format!("the background server exited ({status}) before it answered"),
                log_path,
                start_offset,
            ));
        }
        if let Some(record) = record::read(state_dir).filter(|r| r.pid == pid)
            && let Probe::Bitrouter(health) =
                probe::health(connect_addr(record.listen), probe::TIMEOUT).await
            && health.pid.is_none_or(|p| p == pid)
        {
            return Ok(record);
        }
        if Instant::now() > deadline {
            return Err(failed_start(
                &format!(
                    "the background server (pid {pid}) did not answer within {} s",
                    READY_WITHIN.as_secs()
                ),
                log_path,
                start_offset,
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// An error that shows what the server wrote to its log during this start.
fn failed_start(what: &str, log_path: &Path, start_offset: u64) -> anyhow::Error {
    let lines = log::tail_from(log_path, start_offset, TAIL_LINES);
    let mut message = what.to_owned();
    if lines.is_empty() {
        message.push_str(&format!("; its log {} is empty", log_path.display()));
    } else {
        message.push_str(&format!("; the end of its log ({}):", log_path.display()));
        for line in lines {
            message.push_str("\n  ");
            message.push_str(&line);
        }
    }
    Failure::new(
        message,
        "fix what the log says, or run `bitrouter serve` in the foreground to see it happen",
    )
    .into()
}

/// In the background child: leave the terminal's session, so that closing the terminal (and its
/// hangup signal) does not reach the server.
pub fn become_daemon() {
    #[cfg(unix)]
    if let Err(e) = rustix::process::setsid() {
        tracing::debug!("setsid failed: {e}");
    }
}
