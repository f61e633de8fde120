//! The HTTP face of `bitrouter serve`, on hyper directly: accepting connections under a cap
//! ([`listener`]), each with its header and idle limits ([`connection`]), the route table and
//! the checks every request passes ([`routes`], [`guard`]), the access log, and the pages
//! beside the proxy endpoints ([`face`]: `/health`, `/v1/models`). The proxy endpoints hand
//! their requests to the request path, [`crate::proxy`].

mod access_log;
mod activity;
mod connection;
mod face;
pub mod guard;
mod listener;
pub mod reload;
mod routes;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use listener::SHUTDOWN_GRACE;
pub use state::AppState;

/// Serves until `shutdown` is cancelled, then lets open streams finish for up to
/// [`SHUTDOWN_GRACE`].
///
/// # Errors
///
/// When the listener fails for good.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    listener::run(listener, state, shutdown).await
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
