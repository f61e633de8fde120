//! Accepting connections: `TCP_NODELAY` on each, a cap on how many are open at once (more wait
//! in the kernel's queue until one closes, with one log line when the cap is reached), and the
//! file-descriptor limit raised so the cap can be reached. On shutdown it stops accepting and
//! lets open connections finish their answers for up to [`SHUTDOWN_GRACE`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::activity::Limits;
use super::connection;
use super::face;
use super::spread::{Counted, Share};
use super::state::AppState;

/// How long open answers may run on after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Descriptors kept for everything but client connections (files, the store, logs).
const RESERVED_FDS: u64 = 64;

/// The least time between two "cap reached" lines.
const CAP_LOG_EVERY: Duration = Duration::from_secs(60);

/// The cap on open client connections, shared by every accept loop.
#[derive(Debug)]
pub struct Cap {
    permits: Arc<Semaphore>,
    size: usize,
    /// When the cap was last reported.
    logged: Mutex<Option<Instant>>,
}

impl Cap {
    /// The cap `server.max_connections` asks for, as far as the open-file limit allows.
    #[must_use]
    pub fn new(configured: usize) -> Self {
        let size = connection_cap(configured);
        Cap {
            permits: Arc::new(Semaphore::new(size)),
            size,
            logged: Mutex::new(None),
        }
    }

    /// A place for one more connection, waiting for one when the cap is reached (and saying so,
    /// at most once a minute); `None` on shutdown.
    async fn place(&self, shutdown: &CancellationToken) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Some(permit);
        }
        {
            let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
            if logged.is_none_or(|at| at.elapsed() >= CAP_LOG_EVERY) {
                tracing::warn!(
                    "{} client connections are open, the most allowed (server.max_connections); new ones wait until one closes",
                    self.size
                );
                *logged = Some(Instant::now());
            }
        }
        tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.ok(),
            () = shutdown.cancelled() => None,
        }
    }
}

/// Accepts and serves connections until `shutdown`, then waits for open ones. Several of these
/// may run on one listening socket, one per thread (each with its [`Share`]): a connection
/// this thread accepts while it holds more than its share goes to another thread, and ones
/// other threads hand over arrive in its inbox.
///
/// # Errors
///
/// When the listener fails for good (not for one failed accept, such as too many open files,
/// which is logged and retried).
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    cap: Arc<Cap>,
    shutdown: CancellationToken,
    share: Share,
) -> std::io::Result<()> {
    let Share {
        thread: me,
        spread,
        mut inbox,
    } = share;
    let face = face::router(state.clone());
    let tracker = TaskTracker::new();
    let serve = |tcp: TcpStream, permit: OwnedSemaphorePermit| {
        let config = state.proxy.config();
        let limits = Limits {
            header: config.server.header_timeout,
            idle: config.server.idle_timeout,
        };
        drop(config);
        let counted = Counted::on(&spread, me);
        let served = connection::serve(
            tcp,
            state.clone(),
            face.clone(),
            limits,
            shutdown.clone(),
            permit,
        );
        tracker.spawn(async move {
            served.await;
            drop(counted);
        });
    };
    loop {
        let (accepted, permit) = tokio::select! {
            () = shutdown.cancelled() => break,
            Some((tcp, permit)) = inbox.recv() => {
                match TcpStream::from_std(tcp) {
                    Ok(tcp) => serve(tcp, permit),
                    Err(e) => {
                        tracing::debug!("cannot take a connection from another thread: {e}");
                        spread.closed(me);
                    }
                }
                continue;
            }
            next = next_connection(&listener, &cap, &shutdown) => match next {
                Some(next) => next,
                None => break,
            },
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
        match spread.place(me) {
            None => serve(tcp, permit),
            Some(to) => {
                if let Some((tcp, permit)) = spread.hand(me, to, tcp, permit) {
                    serve(tcp, permit);
                }
            }
        }
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

/// The next connection with its place under the cap (waiting for a place first); `None` on
/// shutdown. Dropped while waiting, it holds nothing.
async fn next_connection(
    listener: &TcpListener,
    cap: &Cap,
    shutdown: &CancellationToken,
) -> Option<(
    std::io::Result<(TcpStream, SocketAddr)>,
    OwnedSemaphorePermit,
)> {
    let permit = cap.place(shutdown).await?;
    Some((listener.accept().await, permit))
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
