//! Talking to providers, for the request path and the catalogs alike: the HTTP client
//! ([`Upstream`]: pooled connections, `TCP_NODELAY`, redirects off, a connect timeout, a
//! first-byte timeout and an idle timeout between body chunks, never a total one, so long
//! streams are not cut), endpoints under a provider's `base_url`, the credentials the server
//! may use ([`credentials`]) and the one place they are attached to a request ([`attach`]).
//! Failures come back as [`TransportError`]s that name no URL and no header.

pub mod attach;
pub mod credentials;
pub mod headers;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::{HeaderMap, Method, StatusCode};
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

/// Upstream HTTP clients keyed by timeout settings; connections are pooled per client.
#[derive(Debug, Default)]
pub struct Upstream {
    clients: Mutex<HashMap<Timeouts, reqwest::Client>>,
}

impl Upstream {
    /// No clients yet; each is built when first used.
    #[must_use]
    pub fn new() -> Self {
        Upstream::default()
    }

    /// Sends one request and waits for the answer's head.
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
        let client = self.client(timeouts)?;
        let sent = client
            .request(method, url.clone())
            .headers(headers)
            .body(body)
            .send();
        let answer = match tokio::time::timeout(timeouts.first_byte, sent).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(transport_error(&e)),
            Err(_) => return Err(first_byte_timeout(timeouts.first_byte)),
        };
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = answer
            .bytes_stream()
            .map(|chunk| chunk.map_err(|e| transport_error(&e)))
            .boxed();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn client(&self, timeouts: Timeouts) -> Result<reqwest::Client, TransportError> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(&timeouts) {
            return Ok(client.clone());
        }
        let client = build_client(timeouts).map_err(|e| TransportError {
            kind: TransportKind::Broken,
            cause: format!("cannot set up the upstream HTTP client: {}", root_cause(&e)),
        })?;
        clients.insert(timeouts, client.clone());
        Ok(client)
    }
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

/// A reqwest failure as a [`TransportError`].
fn transport_error(err: &reqwest::Error) -> TransportError {
    let kind = if err.is_timeout() {
        TransportKind::Timeout
    } else if err.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Broken
    };
    TransportError {
        kind,
        cause: root_cause(err),
    }
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
