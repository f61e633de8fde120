//! Talking to providers, for the request path and the catalogs alike: the HTTP client
//! ([`Upstream`]: pooled connections, `TCP_NODELAY`, redirects off, a connect timeout, a
//! first-byte timeout and an idle timeout between body chunks, never a total one, so long
//! streams are not cut), endpoints under a provider's `base_url`, the credentials the server
//! may use ([`credentials`]) and the one place they are attached to a request ([`attach`]);
//! the Codex backend's WebSocket transport for `/responses` ([`socket`]).
//! Failures come back as [`TransportError`]s that name no URL and no header.

pub mod attach;
mod body;
pub mod credentials;
mod h1;
pub mod headers;
mod pool;
pub mod socket;
mod tls;

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::{HeaderMap, Method, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::ClientConfig;
use url::Url;

use crate::config::Timeouts;

/// Query value the Codex CLI 0.169 sends to `/models` (the backend requires one).
pub const CODEX_CLIENT_VERSION: &str = "0.169.0";

/// An upstream body as a stream of chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes, TransportError>>;

/// Why an exchange with an upstream failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{cause}")]
pub struct TransportError {
    /// What kind of failure.
    pub kind: TransportKind,
    /// The innermost cause, in words (no URL, no header).
    pub cause: String,
}

/// The kinds of [`TransportError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection could be made.
    Connect,
    /// The upstream did not answer, or went silent, for longer than allowed.
    Timeout,
    /// The connection broke, or the client could not be set up.
    Broken,
}

/// An upstream answer: status, headers, and the body as it arrives.
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: ByteStream,
}

impl Response {
    /// The body, read up to `limit` bytes (the rest is dropped).
    pub async fn read_to(mut self, limit: usize) -> Bytes {
        let mut buf = BytesMut::new();
        while let Some(Ok(chunk)) = self.body.next().await {
            let room = limit.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if buf.len() >= limit {
                break;
            }
        }
        buf.freeze()
    }
}

/// Connections kept alive per upstream (as many as the load needs, none closed for the pool's
/// sake), `TCP_NODELAY`, HTTP/2 where TLS negotiates it ([`pool`]).
type Pool = Arc<pool::Pool>;

/// Upstream HTTP clients keyed by timeout settings (the connect timeout lives in the
/// connector); connections are pooled per client.
#[derive(Default)]
pub struct Upstream {
    /// One pool per serving thread and connect timeout in use (a short list): a connection's
    /// I/O runs on the thread that opened it, so each thread keeps its own.
    pools: Mutex<Vec<(ThreadId, Duration, Pool)>>,
    /// Sockets to the backend's WebSocket transport, kept between a conversation's requests.
    pub sockets: std::sync::Arc<socket::Pool>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").finish_non_exhaustive()
    }
}

impl Upstream {
    /// No clients yet; each is built when first used.
    #[must_use]
    pub fn new() -> Self {
        Upstream::default()
    }

    /// Sends one request and waits for the answer's head; the body then arrives with the idle
    /// timeout between chunks.
    ///
    /// # Errors
    ///
    /// When no connection can be made, the answer does not begin in time, or the client cannot
    /// be set up.
    pub async fn send(
        &self,
        timeouts: Timeouts,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, TransportError> {
        let uri: http::Uri =
            url.as_str()
                .parse()
                .map_err(|e: http::uri::InvalidUri| TransportError {
                    kind: TransportKind::Broken,
                    cause: format!("invalid upstream address: {e}"),
                })?;
        self.send_to(timeouts, method, uri, headers, body).await
    }

    /// [`Upstream::send`] to an address already in [`http::Uri`] form.
    ///
    /// # Errors
    ///
    /// As [`Upstream::send`].
    pub async fn send_to(
        &self,
        timeouts: Timeouts,
        method: Method,
        uri: http::Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, TransportError> {
        let pool = self.pool(timeouts.connect)?;
        // Pinned where it stands: moved into the timeout, the exchange's future (some 1 KB)
        // would be copied again with each move of the timeout.
        let exchange = std::pin::pin!(pool.send(method, uri, headers, body));
        let answer = match tokio::time::timeout(timeouts.first_byte, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(send_error(e)),
            Err(_) => return Err(first_byte_timeout(timeouts.first_byte)),
        };
        Ok(match answer {
            pool::Answer::Shared(answer) => {
                let (parts, incoming) = answer.into_parts();
                Response {
                    status: parts.status,
                    headers: parts.headers,
                    body: body::shared(incoming, timeouts.idle),
                }
            }
            pool::Answer::Own(answer, lease) => Response {
                status: answer.status,
                headers: answer.headers,
                body: body::own(answer.body, lease, timeouts.idle),
            },
        })
    }

    fn pool(&self, connect: Duration) -> Result<Pool, TransportError> {
        let mut pools = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let thread = std::thread::current().id();
        if let Some((_, _, pool)) = pools.iter().find(|(t, c, _)| *t == thread && *c == connect) {
            return Ok(Arc::clone(pool));
        }
        let pool = build_pool(connect)?;
        pools.push((thread, connect, Arc::clone(&pool)));
        Ok(pool)
    }
}

/// A pool whose connections take at most `connect` to establish.
fn build_pool(connect: Duration) -> Result<Pool, TransportError> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect));
    http.enforce_http(false);
    let tls = tls::client_config().map_err(|cause| TransportError {
        kind: TransportKind::Broken,
        cause,
    })?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(ClientConfig::clone(&tls))
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(pool::Pool::new(https))
}

/// Builds a client with these timeouts (the idle one between reads).
///
/// # Errors
///
/// When reqwest cannot build it.
pub fn build_client(timeouts: Timeouts) -> Result<reqwest::Client, reqwest::Error> {
    // reqwest is built without a default crypto provider; install ring once (an error only
    // means it is already installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.idle)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
}

/// The error of an answer that did not begin within `limit`.
fn first_byte_timeout(limit: Duration) -> TransportError {
    TransportError {
        kind: TransportKind::Timeout,
        cause: format!("no answer within {} s", limit.as_secs_f64()),
    }
}

/// A failure of the pool as a [`TransportError`].
fn send_error(err: pool::SendError) -> TransportError {
    let (kind, cause) = match &err {
        pool::SendError::Connect(e) => (
            TransportKind::Connect,
            &**e as &(dyn std::error::Error + 'static),
        ),
        pool::SendError::Http(e) => (
            TransportKind::Broken,
            e as &(dyn std::error::Error + 'static),
        ),
        pool::SendError::Exchange(e) => (
            TransportKind::Broken,
            e as &(dyn std::error::Error + 'static),
        ),
        pool::SendError::Address => {
            return TransportError {
                kind: TransportKind::Broken,
                cause: "invalid upstream address: no host".to_owned(),
            };
        }
    };
    classified(kind, cause)
}

/// `err` as a [`TransportError`] of `kind`, or of a time-out when an I/O time-out is among its
/// causes.
fn classified(kind: TransportKind, err: &(dyn std::error::Error + 'static)) -> TransportError {
    TransportError {
        kind: if timed_out(err) {
            TransportKind::Timeout
        } else {
            kind
        },
        cause: root_cause(err),
    }
}

/// Whether an I/O time-out (the connect timeout) is among the error's causes.
fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// `{base_url}/{path}` (the base's own path kept, one slash between).
#[must_use]
pub fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url
}

/// The innermost error message (reqwest's own Display repeats the URL).
#[must_use]
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// bitrouter's own `User-Agent`: `bitrouter/<version> (<os>; <arch>)`.
#[must_use]
pub fn user_agent() -> String {
    format!(
        "bitrouter/{} ({}; {})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_appends_to_the_base_path() {
        let base = Url::parse("https://chatgpt.com/backend-api/codex").unwrap();
        assert_eq!(
            endpoint(&base, "responses").as_str(),
            "https://chatgpt.com/backend-api/codex/responses"
        );
        let base = Url::parse("http://127.0.0.1:9/v1/").unwrap();
        assert_eq!(
            endpoint(&base, "/chat/completions").as_str(),
            "http://127.0.0.1:9/v1/chat/completions"
        );
    }

    #[tokio::test]
    async fn connection_refused_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let err = Upstream::new()
            .send(
                Timeouts::default(),
                Method::GET,
                &url,
                HeaderMap::new(),
                Bytes::new(),
            )
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind, TransportKind::Connect);
    }

    #[tokio::test]
    async fn an_answer_that_never_begins_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        // Accept and read, never answer.
        let silent = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(socket);
        });
        let timeouts = Timeouts {
            first_byte: Duration::from_millis(200),
            ..Timeouts::default()
        };
        let err = Upstream::new()
            .send(timeouts, Method::GET, &url, HeaderMap::new(), Bytes::new())
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind, TransportKind::Timeout);
        silent.abort();
    }
}
