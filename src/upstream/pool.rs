//! Upstream connections kept alive per serving thread and origin: HTTP/1.1 of our own
//! ([`super::h1`]), or HTTP/2 over hyper where TLS negotiates it (then one connection per origin
//! carries every request). An exchange takes the most recently used idle HTTP/1.1 connection or
//! opens one; the answer's body hands it back when read to the end, and an answer dropped early
//! closes it. A request that a kept-alive connection left unanswered (the upstream closed it
//! while it was idle) goes again on the next connection, then on a new one.
//!
//! hyper-util's pooled client did this before, at some 8,000 instructions a request more for its
//! checkout (callgrind, the proxy benchmark's hyper proxy with either: 62,646 against 54,428);
//! hyper's own HTTP/1.1 connection after that, which runs as a task of its own.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::client::legacy::connect::{Connection as _, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower::ServiceExt as _;

use super::h1;

/// What opens connections: TCP with `TCP_NODELAY` and a connect timeout, then TLS for https.
pub(super) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

type Body = Full<Bytes>;

/// How long an unused connection is kept.
const IDLE_FOR: Duration = Duration::from_secs(90);

/// Where connections go: scheme and authority.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    authority: Authority,
}

/// An unused HTTP/1.1 connection, and since when.
struct Idle {
    conn: h1::Conn,
    since: Instant,
}

/// The connections to one origin.
struct Conns {
    origin: Origin,
    /// The `Host` header of its HTTP/1.1 requests, made once.
    host: Option<HeaderValue>,
    /// Oldest first: the newest is used next, the oldest expires first.
    idle: VecDeque<Idle>,
    /// The HTTP/2 connection every request shares, once one was negotiated.
    shared: Option<http2::SendRequest<Body>>,
}

/// One serving thread's connections to every upstream, opened with one connector. A thread
/// talks to a handful of origins at most: they are found by looking through them, which costs
/// less than hashing an authority.
pub(super) struct Pool {
    connector: Connector,
    origins: Mutex<Vec<Conns>>,
}

/// Where an HTTP/1.1 connection lent to one exchange goes back to.
pub(super) struct Lease {
    pool: Arc<Pool>,
    origin: Origin,
}

impl Lease {
    /// `conn`, whose answer was read to the end, may carry the next request.
    pub(super) fn give_back(self, conn: h1::Conn) {
        let idle = Idle {
            conn,
            since: Instant::now(),
        };
        self.pool.with(&self.origin, |c| c.idle.push_back(idle));
    }
}

/// An answer's head, its body still to come.
pub(super) enum Answer {
    /// Over the origin's HTTP/2 connection.
    Shared(http::Response<Incoming>),
    /// Over an HTTP/1.1 connection, which goes back with the lease when its body was read.
    Own(h1::Answer, Lease),
}

/// Why an exchange failed.
#[derive(Debug)]
pub(super) enum SendError {
    /// No connection could be made (TCP or TLS).
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The HTTP/2 connection failed during the exchange, or the handshake over it.
    Http(hyper::Error),
    /// The HTTP/1.1 exchange failed.
    Exchange(h1::Failure),
    /// The address names no host.
    Address,
}

impl Pool {
    pub(super) fn new(connector: Connector) -> Arc<Pool> {
        Arc::new(Pool {
            connector,
            origins: Mutex::default(),
        })
    }

    /// `f` on the connections to `origin` (none yet the first time).
    fn with<R>(&self, origin: &Origin, f: impl FnOnce(&mut Conns) -> R) -> R {
        let mut origins = self.origins.lock().unwrap_or_else(PoisonError::into_inner);
        let at = match origins.iter().position(|c| c.origin == *origin) {
            Some(at) => at,
            None => {
                origins.push(Conns {
                    origin: origin.clone(),
                    host: host_header(origin),
                    idle: VecDeque::new(),
                    shared: None,
                });
                origins.len() - 1
            }
        };
        f(&mut origins[at])
    }

    /// Sends a request to `uri` (absolute) and waits for the answer's head.
    pub(super) async fn send(
        self: &Arc<Self>,
        mut method: Method,
        uri: Uri,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, SendError> {
        let origin = origin_of(&uri).ok_or(SendError::Address)?;
        let (shared, host) = self.with(&origin, |c| (c.shared.clone(), c.host.clone()));
        if let Some(mut sender) = shared {
            let request = request(method, uri.clone(), headers, body.clone());
            match sender.try_send_request(request).await {
                Ok(answer) => return Ok(Answer::Shared(answer)),
                Err(mut e) => {
                    let request = e
                        .take_message()
                        .ok_or_else(|| SendError::Http(e.into_error()))?;
                    let (parts, _) = request.into_parts();
                    (method, headers) = (parts.method, parts.headers);
                    self.with(&origin, |c| c.shared = None);
                }
            }
        }
        let head = h1::request_head(
            &method,
            origin_form(&uri),
            host.as_ref(),
            &headers,
            body.len(),
        );
        while let Some(mut conn) = self.take_idle(&origin) {
            if !conn.still_open() {
                continue;
            }
            match conn.exchange(&head, &body, &method).await {
                Ok(answer) => return Ok(Answer::Own(answer, self.lease(origin))),
                Err(h1::Failure::Unanswered(_)) => {}
                Err(e) => return Err(SendError::Exchange(e)),
            }
        }
        // Boxed: a new connection's future (TCP, TLS, handshake) is large, and it would
        // otherwise grow every future that awaits this one, a server connection's included,
        // for as long as it lives.
        let request = Fresh {
            method,
            uri,
            headers,
            head,
            body,
        };
        Box::pin(self.connect_and_send(origin, request)).await
    }

    /// Opens a connection to `origin` and sends `request` on it.
    async fn connect_and_send(
        self: &Arc<Self>,
        origin: Origin,
        request: Fresh,
    ) -> Result<Answer, SendError> {
        let stream = self
            .connector
            .clone()
            .oneshot(request.uri.clone())
            .await
            .map_err(SendError::Connect)?;
        if stream.connected().is_negotiated_h2() {
            let (mut sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(stream)
                .await
                .map_err(SendError::Http)?;
            tokio::spawn(connection);
            self.with(&origin, |c| c.shared = Some(sender.clone()));
            let Fresh {
                method,
                uri,
                headers,
                body,
                ..
            } = request;
            let answer = sender
                .send_request(self::request(method, uri, headers, body))
                .await
                .map_err(SendError::Http)?;
            return Ok(Answer::Shared(answer));
        }
        let io = match stream {
            MaybeHttpsStream::Http(tcp) => h1::Io::Plain(tcp.into_inner()),
            MaybeHttpsStream::Https(tls) => h1::Io::Tls(Box::new(tls.into_inner())),
        };
        let answer = h1::Conn::new(io)
            .exchange(&request.head, &request.body, &request.method)
            .await
            .map_err(SendError::Exchange)?;
        Ok(Answer::Own(answer, self.lease(origin)))
    }

    fn lease(self: &Arc<Self>, origin: Origin) -> Lease {
        Lease {
            pool: Arc::clone(self),
            origin,
        }
    }

    /// The most recently used idle connection to `origin`. The oldest is closed on the way when
    /// it has been unused for [`IDLE_FOR`] (one a call: a busy origin's hundreds of idle
    /// connections are not all looked at for every request).
    fn take_idle(&self, origin: &Origin) -> Option<h1::Conn> {
        self.with(origin, |c| {
            let expired = c
                .idle
                .front()
                .is_some_and(|i| i.since.elapsed() >= IDLE_FOR);
            if expired {
                c.idle.pop_front();
            }
            c.idle.pop_back().map(|idle| idle.conn)
        })
    }
}

/// A request for a new connection: its parts, and its HTTP/1.1 head made already.
struct Fresh {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    head: Vec<u8>,
    body: Bytes,
}

/// A request for hyper's HTTP/2 connection (whose `:authority` comes from the absolute `uri`).
fn request(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Request<Body> {
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    request
}

fn origin_of(uri: &Uri) -> Option<Origin> {
    Some(Origin {
        https: uri.scheme() == Some(&Scheme::HTTPS),
        authority: uri.authority()?.clone(),
    })
}

/// The `Host` header of `origin`: the host, and the port when it is not the scheme's default.
fn host_header(origin: &Origin) -> Option<HeaderValue> {
    let default = if origin.https { 443 } else { 80 };
    let host = match origin.authority.port_u16() {
        Some(port) if port != default => origin.authority.as_str(),
        _ => origin.authority.host(),
    };
    HeaderValue::from_str(host).ok()
}

/// The path and query alone, as an HTTP/1.1 request line wants them.
fn origin_form(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::Upstream;
    use super::*;
    use crate::config::Timeouts;

    /// A server that answers every request `ok`, counting connections; with `last`, each
    /// connection is closed after its first answer and, 20 ms later, `last` (no
    /// `Connection: close` said).
    async fn server(last: Option<&'static [u8]>) -> (url::Url, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url =
            url::Url::parse(&format!("http://{}/v1", listener.local_addr().unwrap())).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0_u8; 4096];
                    loop {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.clear();
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                        if let Some(last) = last {
                            // Later: the answer's reader has seen the answer end by then.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            let _ = socket.write_all(last).await;
                            return;
                        }
                    }
                });
            }
        });
        (url, connections)
    }

    async fn get(upstream: &Upstream, url: &url::Url) -> Bytes {
        let answer = upstream
            .send(
                Timeouts::default(),
                http::Method::GET,
                url,
                http::HeaderMap::new(),
                Bytes::new(),
            )
            .await
            .unwrap();
        answer.read_to(1 << 20).await
    }

    #[tokio::test]
    async fn a_connection_carries_the_next_request_once_its_answer_was_read() {
        let (url, connections) = server(None).await;
        let upstream = Upstream::new();
        for _ in 0..3 {
            assert_eq!(get(&upstream, &url).await, "ok");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_replaced() {
        let (url, connections) = server(Some(b"")).await;
        let upstream = Upstream::new();
        for _ in 0..2 {
            assert_eq!(get(&upstream, &url).await, "ok");
            // Time to see the close (a request sent on a connection the upstream is closing
            // at that moment fails, as with any HTTP/1.1 client: it may have arrived).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn what_an_upstream_says_on_an_idle_connection_is_not_taken_for_an_answer() {
        let timeout = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n";
        let (url, connections) = server(Some(timeout)).await;
        let upstream = Upstream::new();
        for _ in 0..2 {
            assert_eq!(get(&upstream, &url).await, "ok");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_answer_dropped_early_does_not_give_its_connection_back() {
        let (url, connections) = server(None).await;
        let upstream = Upstream::new();
        let answer = upstream
            .send(
                Timeouts::default(),
                http::Method::GET,
                &url,
                http::HeaderMap::new(),
                Bytes::new(),
            )
            .await
            .unwrap();
        drop(answer);
        assert_eq!(get(&upstream, &url).await, "ok");
        assert_eq!(get(&upstream, &url).await, "ok");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_host_header_names_a_port_only_when_it_is_not_the_default() {
        for (uri, host) in [
            ("http://127.0.0.1:8080/v1", "127.0.0.1:8080"),
            ("http://example.com:80/v1", "example.com"),
            ("https://chatgpt.com/backend-api/codex", "chatgpt.com"),
            ("https://chatgpt.com:443/x", "chatgpt.com"),
            ("https://chatgpt.com:8443/x", "chatgpt.com:8443"),
        ] {
            let origin = origin_of(&uri.parse().unwrap()).unwrap();
            assert_eq!(host_header(&origin).unwrap(), host, "{uri}");
        }
    }

    #[test]
    fn requests_go_out_in_origin_form() {
        let uri: Uri = "https://chatgpt.com/backend-api/codex/models?client_version=1"
            .parse()
            .unwrap();
        assert_eq!(
            origin_form(&uri),
            "/backend-api/codex/models?client_version=1"
        );
        let bare: Uri = "http://127.0.0.1:9".parse().unwrap();
        assert_eq!(origin_form(&bare), "/");
    }

    #[test]
    fn origins_differ_by_scheme_and_authority() {
        let a = origin_of(&"http://127.0.0.1:9/a".parse().unwrap()).unwrap();
        let b = origin_of(&"http://127.0.0.1:9/b".parse().unwrap()).unwrap();
        let c = origin_of(&"https://127.0.0.1:9/a".parse().unwrap()).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(origin_of(&"/relative".parse().unwrap()).is_none());
    }
}
