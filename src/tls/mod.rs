//! HTTPS on bitrouter's own port, for clients that insist on it: the Codex CLI reads its
//! account usage (its `/status` card and status line) only from an `https` `chatgpt_base_url`.
//!
//! A local certificate authority is made on first use ([`certs`]): its certificate
//! (`tls/ca.pem` in the data directory) is what such a client is told to trust
//! (`CODEX_CA_CERTIFICATE`); it signs one server certificate for `localhost`, `127.0.0.1` and
//! `::1`, and its private key is then thrown away, so nothing can issue another certificate in
//! its name. The server key is kept beside it, readable by the user only.
//!
//! Each accepted connection is sniffed ([`LocalTls::accept`]): a TLS handshake record
//! (`0x16`) first means HTTPS, anything else plain HTTP, so one port serves both and HTTP
//! clients notice nothing. The server's connection task does the sniffing, under the same time
//! limit as a request's headers, so a silent or slow client holds up no one else.

pub mod certs;
mod conn;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

pub use certs::TlsError;
pub use conn::Conn;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// The local HTTPS setup: the CA certificate clients trust, and the acceptor.
#[derive(Clone)]
pub struct LocalTls {
    ca_path: PathBuf,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for LocalTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTls")
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

impl LocalTls {
    /// Loads the certificates under `dir` (`<data dir>/tls`), making them first if needed.
    ///
    /// # Errors
    ///
    /// When the files cannot be made, read or used.
    pub fn load_or_create(dir: &Path) -> Result<LocalTls, TlsError> {
        let files = certs::load_or_create(dir)?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(files.chain, files.key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(LocalTls {
            ca_path: files.ca_path,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The CA certificate (PEM) clients should trust.
    #[must_use]
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// Sniffs a new connection and finishes the TLS handshake if it opens with one. Takes as
    /// long as the client does: the caller bounds it.
    ///
    /// # Errors
    ///
    /// When the connection fails or the handshake does.
    pub async fn accept(&self, tcp: TcpStream) -> std::io::Result<Conn> {
        let mut first = [0_u8; 1];
        let peeked = tcp.peek(&mut first).await?;
        if peeked == 0 || first[0] != TLS_HANDSHAKE {
            return Ok(Conn::Plain(tcp));
        }
        let tls = self.acceptor.accept(tcp).await?;
        Ok(Conn::Tls(Box::new(tls)))
    }
}
