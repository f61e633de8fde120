//! `bitrouter stop`: stops the server of this state directory as SIGTERM does (open streams
//! finish, up to the server's grace period), and waits until it has let go of its lock.

use std::time::{Duration, Instant};

use crate::commands::Context;
use crate::daemon::{lock, record};
use crate::error::{Failure, UsageError};
use crate::paths;
use crate::server::SHUTDOWN_GRACE;

/// Runs the command.
pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let state_dir = paths::state_dir(&ctx.env).ok_or_else(|| {
        UsageError::new(
            "no state directory for the background server",
            "set XDG_STATE_HOME or HOME",
        )
    })?;
    match stop(&state_dir).await? {
        Some(pid) => ctx.printer.info(format!("stopped bitrouter (pid {pid})")),
        None => ctx.printer.info("no bitrouter server is running"),
    }
    Ok(())
}

/// Stops the server of `state_dir`; its pid, or `None` when none ran.
///
/// # Errors
///
/// When the server cannot be signalled or does not stop in time.
pub async fn stop(state_dir: &std::path::Path) -> anyhow::Result<Option<u32>> {
    if !lock::is_held(state_dir) {
        return Ok(None);
    }
    // A server that holds the lock writes its record right after binding; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let record = loop {
        if let Some(record) = record::read(state_dir).filter(|r| r.pid != 0) {
            break record;
        }
        if !lock::is_held(state_dir) {
            return Ok(None);
        }
        if Instant::now() > deadline {
            return Err(Failure::new(
                format!(
                    "a bitrouter server holds {} but wrote no record of its pid",
                    state_dir.join(lock::SERVE_LOCK).display()
                ),
                "find it with `pgrep -a bitrouter` and stop it with `kill <pid>`",
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    terminate(record.pid)?;
    let deadline = Instant::now() + SHUTDOWN_GRACE + Duration::from_secs(5);
    while lock::is_held(state_dir) {
        if Instant::now() > deadline {
            return Err(Failure::new(
                format!("bitrouter (pid {}) did not stop", record.pid),
                format!("force it with `kill -9 {}`", record.pid),
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Some(record.pid))
}

/// Sends SIGTERM.
#[cfg(unix)]
fn terminate(pid: u32) -> anyhow::Result<()> {
    use rustix::process::{Pid, Signal, kill_process};
    let pid_value = i32::try_from(pid).ok().and_then(Pid::from_raw);
    let Some(target) = pid_value else {
        return Err(Failure::new(
            format!("bad pid {pid} in the server record"),
            "stop it by hand",
        )
        .into());
    };
    match kill_process(target, Signal::TERM) {
        Ok(()) => Ok(()),
        // Gone between the lock check and now.
        Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(Failure::new(
            format!("cannot stop bitrouter (pid {pid}): {e}"),
            "is it another user's server? stop it as that user",
        )
        .into()),
    }
}

#[cfg(not(unix))]
fn terminate(pid: u32) -> anyhow::Result<()> {
    Err(Failure::new(
        format!("stopping the background server (pid {pid}) is supported on Unix only"),
        "end it with the task manager",
    )
    .into())
}
