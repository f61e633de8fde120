//! What the HTTP face shares: the request path's state, the address the server listens on and
//! the local HTTPS setup, if any, and the request history's sink.

use std::net::SocketAddr;

use crate::history::Sink;
use crate::proxy::Proxy;
use crate::tls::LocalTls;

/// The server's shared state.
#[derive(Debug)]
pub struct AppState {
    /// The request path's state (config, credentials, upstream client, account book, catalogs).
    pub proxy: Proxy,
    /// The bound address (the `Host` check compares with it).
    pub local_addr: SocketAddr,
    /// When the server started (Unix seconds), for `/health`.
    pub started_at: i64,
    /// HTTPS on the same port (connections that open with a TLS handshake), if set up.
    pub tls: Option<LocalTls>,
    /// Where finished requests are recorded (disabled unless set with [`Self::with_history`]).
    pub history: Sink,
}

impl AppState {
    /// The state of a server bound to `local_addr`, starting now, that also answers HTTPS with
    /// `tls`.
    #[must_use]
    pub fn new(proxy: Proxy, local_addr: SocketAddr, tls: Option<LocalTls>) -> Self {
        AppState {
            proxy,
            local_addr,
            started_at: crate::clock::unix_now(),
            tls,
            history: Sink::disabled(),
        }
    }

    /// The state, recording finished requests in `history`.
    #[must_use]
    pub fn with_history(mut self, history: Sink) -> Self {
        self.history = history;
        self
    }
}
