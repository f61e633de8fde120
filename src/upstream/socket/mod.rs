//! One Responses request over the Codex backend's WebSocket transport (spec §6.1, §6.2,
//! §7.1): the handshake to `wss://…/responses` with the request's headers and
//! `OpenAI-Beta: responses_websockets=2026-02-06`, the body sent as one `response.create`
//! message, and the answer read back as an upstream [`Response`] the rest of the request path
//! takes as it takes HTTP's: each text frame becomes one SSE event, an `error` frame with a
//! status becomes an error answer with that status, and `codex.rate_limits` frames before the
//! first event become the `x-codex-*` headers HTTP would have carried. A refused upgrade (`426`, `404`) is
//! reported as such, so the caller falls back to HTTP. A socket whose response completed is
//! parked for the same conversation's next request ([`pool`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

mod frames;
mod pool;

use self::frames::{Terminal, as_sse, create_message, error_answer, rate_limits_to_headers};
use self::pool::Key;
pub use self::pool::Pool;
use super::{Response, TransportError, TransportKind};
use crate::config::Timeouts;

/// The `OpenAI-Beta` value the transport's handshake carries.
pub const BETA: &str = "responses_websockets=2026-02-06";

/// What became of an attempt on the WebSocket transport.
pub enum Opened {
    /// The backend answered (a stream, or an error with its status).
    Answer(Response),
    /// The backend does not take WebSockets here (`426`, `404`): use HTTP.
    Refused(StatusCode),
}

/// A byte stream a WebSocket can run on: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

/// Sends `body` (a Responses request, a JSON object) to `url` (the `https`/`http` address of
/// `…/responses`) over the WebSocket transport, on a socket parked in `pool` by an earlier
/// request of the same conversation when there is one, else on a new one.
///
/// # Errors
///
/// When no connection can be made, the answer does not begin within `first_byte`, or the
/// socket breaks before it does.
pub async fn send(
    pool: &Arc<Pool>,
    timeouts: Timeouts,
    url: &http::Uri,
    headers: HeaderMap,
    body: &Bytes,
) -> Result<Opened, TransportError> {
    let key = Key::new(url, &headers);
    let message = create_message(body);
    if let Some((socket, handshake)) = pool.take(&key) {
        let parked = Exchange {
            pool: pool.clone(),
            key: key.clone(),
            timeouts,
            handshake: handshake.clone(),
        };
        // A parked socket the backend has closed meanwhile answers nothing: nothing reached
        // anyone yet, so the request goes on a new socket.
        if let Ok(Some(response)) = parked.run(socket, handshake, &message).await {
            return Ok(Opened::Answer(response));
        }
    }
    let (socket, handshake) =
        match tokio::time::timeout(timeouts.first_byte, connect(timeouts.connect, url, headers))
            .await
        {
            Ok(Ok(Connected::Open(socket, headers))) => (*socket, headers),
            Ok(Ok(Connected::Refused(status, headers, body))) => {
                if status == StatusCode::UPGRADE_REQUIRED || status == StatusCode::NOT_FOUND {
                    return Ok(Opened::Refused(status));
                }
                return Ok(Opened::Answer(whole(status, headers, body)));
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(first_byte_timeout(timeouts.first_byte)),
        };
    let fresh = Exchange {
        pool: pool.clone(),
        key,
        timeouts,
        handshake: lasting(&handshake),
    };
    match fresh.run(socket, handshake, &message).await? {
        Some(response) => Ok(Opened::Answer(response)),
        None => Err(TransportError {
            kind: TransportKind::Broken,
            cause: "the upstream closed the WebSocket before answering".to_owned(),
        }),
    }
}

/// One request on one socket, and where the socket goes when its response ends.
struct Exchange {
    pool: Arc<Pool>,
    key: Key,
    timeouts: Timeouts,
    /// The handshake answer's headers that hold for every answer on the socket.
    handshake: HeaderMap,
}

impl Exchange {
    /// Sends `message` and reads up to the first event: the answer, or `None` when the socket
    /// was closed before it answered.
    async fn run(
        self,
        mut socket: Socket,
        mut headers: HeaderMap,
        message: &str,
    ) -> Result<Option<Response>, TransportError> {
        let first_byte = self.timeouts.first_byte;
        if socket
            .send(Message::text(message.to_owned()))
            .await
            .is_err()
        {
            return Ok(None);
        }
        let first = loop {
            let text = match tokio::time::timeout(first_byte, next_text(&mut socket)).await {
                Ok(Ok(Some(text))) => text,
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(first_byte_timeout(first_byte)),
            };
            // Quota before the answer is what HTTP sends as headers: it becomes those headers.
            if !rate_limits_to_headers(&text, &mut headers) {
                break text;
            }
        };
        if let Some((status, error_headers, body)) = error_answer(&first) {
            let _ = socket.close(None).await;
            headers.extend(error_headers);
            return Ok(Some(whole(status, headers, body)));
        }
        Ok(Some(Response {
            status: StatusCode::OK,
            headers,
            body: self.events(socket, first),
        }))
    }

    /// The answer's events as SSE bytes, starting with `first`, until the terminal event; each
    /// frame must come within the idle timeout of the one before. After a completed response
    /// the socket is parked for the conversation's next request.
    fn events(self, socket: Socket, first: Bytes) -> super::ByteStream {
        let idle = self.timeouts.idle;
        let state = (socket, Some(first), self);
        futures_util::stream::unfold(Some(state), move |state| async move {
            let (mut socket, first, exchange) = state?;
            let text = match first {
                Some(first) => first,
                None => match tokio::time::timeout(idle, next_text(&mut socket)).await {
                    Ok(Ok(Some(text))) => text,
                    Ok(Ok(None)) => return None,
                    Ok(Err(e)) => return Some((Err(e), None)),
                    Err(_) => {
                        let err = TransportError {
                            kind: TransportKind::Timeout,
                            cause: format!("nothing for {} s", idle.as_secs_f64()),
                        };
                        return Some((Err(err), None));
                    }
                },
            };
            let (event, terminal) = as_sse(&text);
            match terminal {
                Terminal::No => Some((Ok(event), Some((socket, None, exchange)))),
                Terminal::Done => {
                    exchange.pool.park(exchange.key, socket, exchange.handshake);
                    Some((Ok(event), None))
                }
                Terminal::Failed => {
                    let _ = socket.close(None).await;
                    Some((Ok(event), None))
                }
            }
        })
        .boxed()
    }
}

/// A handshake answer's headers without its quota, which holds for its own moment only (later
/// answers on the socket get theirs from `codex.rate_limits` frames).
fn lasting(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    let quota: Vec<HeaderName> = out
        .keys()
        .filter(|n| {
            let n = n.as_str();
            n.starts_with("x-codex-primary-")
                || n.starts_with("x-codex-secondary-")
                || n.starts_with("x-codex-credits-")
        })
        .cloned()
        .collect();
    for name in quota {
        out.remove(name);
    }
    out
}

/// The answer to a handshake.
enum Connected {
    Open(Box<Socket>, HeaderMap),
    Refused(StatusCode, HeaderMap, Bytes),
}

async fn connect(
    connect: Duration,
    url: &http::Uri,
    headers: HeaderMap,
) -> Result<Connected, TransportError> {
    let tls = url.scheme_str() == Some("https");
    let host = url.host().unwrap_or_default().to_owned();
    let port = url.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let ws_url = format!(
        "{}://{}{}",
        if tls { "wss" } else { "ws" },
        url.authority().map_or(host.as_str(), |a| a.as_str()),
        url.path_and_query().map_or("/", |pq| pq.as_str())
    );
    let mut request = ws_url
        .into_client_request()
        .map_err(|e| broken_setup(&format!("invalid upstream address: {e}")))?;
    for (name, value) in &headers {
        if !skipped(name) {
            request.headers_mut().append(name, value.clone());
        }
    }
    request.headers_mut().insert(
        HeaderName::from_static("openai-beta"),
        HeaderValue::from_static(BETA),
    );
    let tcp = match tokio::time::timeout(connect, TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return Err(TransportError {
                kind: TransportKind::Connect,
                cause: e.to_string(),
            });
        }
        Err(_) => {
            return Err(TransportError {
                kind: TransportKind::Connect,
                cause: format!("no connection within {} s", connect.as_secs_f64()),
            });
        }
    };
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if tls {
        let name = rustls::pki_types::ServerName::try_from(host)
            .map_err(|e| broken_setup(&format!("invalid upstream host: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(tls_config()?);
        Box::new(
            connector
                .connect(name, tcp)
                .await
                .map_err(|e| TransportError {
                    kind: TransportKind::Connect,
                    cause: format!("TLS: {e}"),
                })?,
        )
    } else {
        Box::new(tcp)
    };
    match tokio_tungstenite::client_async(request, io).await {
        Ok((socket, answer)) => Ok(Connected::Open(Box::new(socket), answer.headers().clone())),
        Err(WsError::Http(answer)) => {
            let (parts, body) = answer.into_parts();
            Ok(Connected::Refused(
                parts.status,
                parts.headers,
                Bytes::from(body.unwrap_or_default()),
            ))
        }
        Err(e) => Err(broken(&e)),
    }
}

/// Request headers that belong to HTTP's framing or that the handshake sets itself.
fn skipped(name: &HeaderName) -> bool {
    super::headers::is_hop_by_hop(name)
        || name == header::CONTENT_TYPE
        || name == header::ACCEPT
        || name.as_str().starts_with("sec-websocket-")
}

/// The client TLS setup (HTTP/1.1 only: no ALPN).
fn tls_config() -> Result<Arc<rustls::ClientConfig>, TransportError> {
    super::tls::client_config().map_err(|e| broken_setup(&e))
}

/// The next text frame's bytes; `None` when the socket closed.
async fn next_text(socket: &mut Socket) -> Result<Option<Bytes>, TransportError> {
    loop {
        match socket.next().await {
            None | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Ok(Message::Text(text))) => return Ok(Some(Bytes::from(text))),
            Some(Ok(
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_),
            )) => {}
            Some(Err(e)) => return Err(broken(&e)),
        }
    }
}

/// A whole answer as a [`Response`].
fn whole(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response {
    Response {
        status,
        headers,
        body: futures_util::stream::once(async move { Ok(body) }).boxed(),
    }
}

fn broken(e: &WsError) -> TransportError {
    TransportError {
        kind: TransportKind::Broken,
        cause: e.to_string(),
    }
}

fn broken_setup(cause: &str) -> TransportError {
    TransportError {
        kind: TransportKind::Broken,
        cause: cause.to_owned(),
    }
}

fn first_byte_timeout(limit: Duration) -> TransportError {
    TransportError {
        kind: TransportKind::Timeout,
        cause: format!("no answer within {} s", limit.as_secs_f64()),
    }
}
