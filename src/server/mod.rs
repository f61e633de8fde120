//! The HTTP face of `bitrouter serve`: accepting connections under a cap ([`listener`]) and
//! spreading them evenly over the serving threads ([`spread`]), each
//! with its header and idle limits ([`connection`]), served by HTTP/1.1 of our own ([`h1`])
//! and by hyper for the requests that one hands over (upgrades among them), the route table and
//! the checks every request passes ([`routes`], [`guard`]), the access log and the request
//! history's row ([`access_log`]), and the pages beside the proxy endpoints ([`face`]:
//! `/health`, `/v1/models`, the ChatGPT backend's usage endpoints in [`backend`], the
//! dashboard). With a local CA ([`crate::tls`]) the same port also answers HTTPS. The proxy
//! endpoints hand their requests to the request path, [`crate::proxy`]; a WebSocket handshake on
//! `/v1/responses` is answered in [`socket`].

mod access_log;
mod activity;
mod backend;
mod connection;
mod dashboard_view;
mod date;
mod face;
pub mod guard;
mod h1;
mod listener;
pub mod reload;
mod routes;
mod socket;
mod spread;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use listener::SHUTDOWN_GRACE;
pub use state::AppState;

/// The most threads that serve connections.
const MAX_THREADS: usize = 4;

/// Serves until `shutdown` is cancelled, then lets open streams finish for up to
/// [`SHUTDOWN_GRACE`].
///
/// One thread per core (at most [`MAX_THREADS`]) accepts and serves connections, each with a
/// single-threaded runtime of its own: a connection, its requests and their upstream
/// connections stay on the thread that serves it, so no request pays for handing work between
/// threads, and a busy server still uses every core. That is the thread that accepted it, or
/// the least busy one when the one that accepted it held more than its share ([`spread`]).
/// This task's thread is one of them.
///
/// # Errors
///
/// When the listener fails for good, or a serving thread cannot start.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let cap = Arc::new(listener::Cap::new(
        state.proxy.config().server.max_connections,
    ));
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(MAX_THREADS);
    let listener = listener.into_std()?;
    let (own, shares) = spread::Spread::shares(threads);
    let mut others = Vec::new();
    for share in shares {
        let n = share.thread;
        let listener = listener.try_clone()?;
        let (state, cap, shutdown) = (state.clone(), cap.clone(), shutdown.clone());
        let thread = std::thread::Builder::new()
            .name(format!("bitrouter-serve-{n}"))
            .spawn(move || -> std::io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    listener::run(listener, state, cap, shutdown, share).await
                })
            })?;
        others.push(thread);
    }
    let served = listener::run(TcpListener::from_std(listener)?, state, cap, shutdown, own).await;
    for thread in others {
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(Err(e))) => tracing::warn!("a serving thread failed: {e}"),
            Ok(Err(_)) => tracing::warn!("a serving thread panicked"),
            Ok(Ok(Ok(()))) | Err(_) => {}
        }
    }
    served
}

/// Warms the model catalogs in the background (so bare names route to the right provider).
pub fn warm_catalogs(state: &Arc<AppState>) {
    let state = state.clone();
    tokio::spawn(async move {
        let proxy = &state.proxy;
        let config = proxy.config();
        proxy.catalogs.refresh(&config, proxy.sources(), None).await;
    });
}

/// The address a `serve` process prints, for humans and tests.
#[must_use]
pub fn url_of(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
