//! A listener that serves HTTP and HTTPS on one port: a background task accepts TCP
//! connections (with `TCP_NODELAY`), sniffs each in a task of its own (a slow or stalled
//! client never holds up the next) and hands ready connections to the server in order of
//! readiness. Dropping the listener stops accepting.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Conn, LocalTls};

/// How many sniffed connections may wait for the server to take them.
const BACKLOG: usize = 256;

/// HTTP and HTTPS connections from one TCP listener.
#[derive(Debug)]
pub struct Listener {
    ready: mpsc::Receiver<(Conn, SocketAddr)>,
    local_addr: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl Listener {
    /// Starts accepting on `tcp`; connections that open with a TLS handshake are served by
    /// `tls`.
    ///
    /// # Errors
    ///
    /// When the bound address cannot be read.
    pub fn new(tcp: TcpListener, tls: LocalTls) -> std::io::Result<Listener> {
        let local_addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(BACKLOG);
        let acceptor = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, then go on.
                        tracing::debug!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!("cannot set TCP_NODELAY: {e}");
                }
                let tx = tx.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls.accept(stream).await {
                        Ok(conn) => {
                            let _ = tx.send((conn, peer)).await;
                        }
                        Err(e) => {
                            tracing::debug!(%peer, "connection dropped before a request: {e}")
                        }
                    }
                });
            }
        });
        Ok(Listener {
            ready,
            local_addr,
            acceptor,
        })
    }
}

impl axum::serve::Listener for Listener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accepting task ended (it only does when aborted): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}
