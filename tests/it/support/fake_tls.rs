//! HTTPS for the fake upstream: a certificate for `127.0.0.1` signed by a test CA (bitrouter's
//! own local CA maker, in the test's directory), whose file a child process is told to trust
//! with `SSL_CERT_FILE`. Each connection serves HTTP/2 or HTTP/1.1, as ALPN negotiated, and the
//! protocol of every connection is kept ([`FakeTls::connections`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower::ServiceExt as _;

/// The test CA's server certificate, and what was negotiated on each connection.
#[derive(Clone)]
pub struct FakeTls {
    ca: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    connections: Arc<Mutex<Vec<String>>>,
}

impl FakeTls {
    /// A CA and a server certificate made under `dir`.
    pub fn new(dir: &Path) -> FakeTls {
        let files = bitrouter::tls::certs::load_or_create(dir).unwrap();
        FakeTls {
            ca: files.ca_path,
            chain: files.chain,
            key: Arc::new(files.key),
            connections: Arc::default(),
        }
    }

    /// The CA certificate (PEM), for `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// The ALPN protocol of each connection accepted so far (`h2`, `http/1.1`, or `none`).
    pub fn connections(&self) -> Vec<String> {
        self.connections.lock().unwrap().clone()
    }

    /// Serves `app` on `listener` over TLS, offering `alpn`.
    pub fn serve(
        &self,
        listener: tokio::net::TcpListener,
        alpn: &[&[u8]],
        app: Router,
    ) -> impl Future<Output = ()> + Send + 'static {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let connections = Arc::clone(&self.connections);
        async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app, connections) =
                    (acceptor.clone(), app.clone(), Arc::clone(&connections));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let protocol = tls.get_ref().1.alpn_protocol().map_or_else(
                        || "none".to_owned(),
                        |p| String::from_utf8_lossy(p).into_owned(),
                    );
                    connections.lock().unwrap().push(protocol.clone());
                    let service = hyper::service::service_fn(move |req| {
                        app.clone().oneshot(req.map(axum::body::Body::new))
                    });
                    let io = TokioIo::new(tls);
                    let _ = if protocol == "h2" {
                        http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, service)
                            .await
                    } else {
                        http1::Builder::new().serve_connection(io, service).await
                    };
                });
            }
        }
    }
}
