//! Accepting connections: `TCP_NODELAY` on each, a cap on how many are open at once (more wait
//! in the kernel's queue until one closes, with one log line when the cap is reached), and the
//! file-descriptor limit raised so the cap can be reached. On shutdown it stops accepting and
//! lets open connections finish their answers for up to [`SHUTDOWN_GRACE`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::activity::Limits;
use super::connection;
use super::face;
use super::state::AppState;

/// How long open answers may run on after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Descriptors kept for everything but client connections (files, the store, logs).
const RESERVED_FDS: u64 = 64;

/// The least time between two "cap reached" lines.
const CAP_LOG_EVERY: Duration = Duration::from_secs(60);

/// Accepts and serves connections until `shutdown`, then waits for open ones.
///
/// # Errors
///
/// When the listener fails for good (not for one failed accept, such as too many open files,
/// which is logged and retried).
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let config = state.proxy.config();
    let cap = connection_cap(config.server.max_connections);
    drop(config);
    let permits = Arc::new(Semaphore::new(cap));
    let face = face::router(state.clone());
    let tracker = TaskTracker::new();
    let mut last_cap_log: Option<Instant> = None;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if last_cap_log.is_none_or(|at| at.elapsed() >= CAP_LOG_EVERY) {
                    tracing::warn!(
                        "{cap} client connections are open, the most allowed (server.max_connections); new ones wait until one closes"
                    );
                    last_cap_log = Some(Instant::now());
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = shutdown.cancelled() => break,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Too many open files and the like pass; do not spin on them.
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let config = state.proxy.config();
        let limits = Limits {
            header: config.server.header_timeout,
            idle: config.server.idle_timeout,
        };
        drop(config);
        tracker.spawn(connection::serve(
            tcp,
            state.clone(),
            face.clone(),
            limits,
            shutdown.clone(),
            permit,
        ));
    }
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "open streams did not finish within {} s; closing them",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}

/// The connection cap: as configured, but no more than the file-descriptor limit allows (each
/// proxied request also holds an upstream connection), after raising that limit as far as the
/// system lets this process.
fn connection_cap(configured: usize) -> usize {
    let Some(fds) = raise_fd_limit() else {
        return configured;
    };
    let allowed = usize::try_from(fds.saturating_sub(RESERVED_FDS) / 2).unwrap_or(usize::MAX);
    if allowed < configured {
        tracing::info!(
            target: "bitrouter::serve",
            "at most {allowed} client connections at once: the open-file limit is {fds} (server.max_connections is {configured})"
        );
    }
    configured.min(allowed.max(1))
}

/// Raises the soft open-file limit to the hard one (capped at 65,536) and returns it.
#[cfg(unix)]
fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current?;
    let wanted = limit.maximum.unwrap_or(u64::MAX).min(65_536);
    if wanted > current {
        let raised = rustix::process::Rlimit {
            current: Some(wanted),
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return Some(wanted);
        }
    }
    Some(current)
}

#[cfg(not(unix))]
fn raise_fd_limit() -> Option<u64> {
    None
}
