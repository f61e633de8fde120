//! What the HTTP face shares: the request path's state and the address the server listens on.

use std::net::SocketAddr;

use crate::proxy::Proxy;

/// The server's shared state.
#[derive(Debug)]
pub struct AppState {
    /// The request path's state (config, credentials, upstream client, account book, catalogs).
    pub proxy: Proxy,
    /// The bound address (the `Host` check compares with it).
    pub local_addr: SocketAddr,
    /// When the server started (Unix seconds), for `/health`.
    pub started_at: i64,
}

impl AppState {
    /// The state of a server bound to `local_addr`, starting now.
    #[must_use]
    pub fn new(proxy: Proxy, local_addr: SocketAddr) -> Self {
        AppState {
            proxy,
            local_addr,
            started_at: crate::clock::unix_now(),
        }
    }
}
