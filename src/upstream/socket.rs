//! One Responses request over the Codex backend's WebSocket transport (spec §6.1, §6.2,
//! §7.1): the handshake to `wss://…/responses` with the request's headers and
//! `OpenAI-Beta: responses_websockets=2026-02-06`, the body sent as one `response.create`
//! message, and the answer read back as an upstream [`Response`] the rest of the request path
//! takes as it takes HTTP's: each text frame becomes one SSE event, an `error` frame with a
//! status becomes an error answer with that status, and `codex.rate_limits` frames before the
//! first event become the `x-codex-*` headers HTTP would have carried. A refused upgrade (`426`, `404`) is
//! reported as such, so the caller falls back to HTTP. One socket per request, closed after
//! the response's terminal event.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{Response, TransportError, TransportKind};
use crate::config::Timeouts;

/// The `OpenAI-Beta` value the transport's handshake carries.
pub const BETA: &str = "responses_websockets=2026-02-06";

/// Events after which the backend sends nothing more for a response.
const TERMINAL: [&str; 4] = [
    "response.completed",
    "response.failed",
    "response.incomplete",
    "error",
];

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
/// `…/responses`) over the WebSocket transport.
///
/// # Errors
///
/// When no connection can be made, the answer does not begin within `first_byte`, or the
/// socket breaks before it does.
pub async fn send(
    timeouts: Timeouts,
    url: &http::Uri,
    headers: HeaderMap,
    body: &Bytes,
) -> Result<Opened, TransportError> {
    let (mut socket, handshake) =
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
    socket
        .send(Message::text(create_message(body)))
        .await
        .map_err(|e| broken(&e))?;
    let mut handshake = handshake;
    let first = loop {
        let text = match tokio::time::timeout(timeouts.first_byte, next_text(&mut socket)).await {
            Ok(Ok(Some(text))) => text,
            Ok(Ok(None)) => break Bytes::new(),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(first_byte_timeout(timeouts.first_byte)),
        };
        // Quota before the answer is what HTTP sends as headers: it becomes those headers.
        if !rate_limits_to_headers(&text, &mut handshake) {
            break text;
        }
    };
    if let Some((status, headers, body)) = error_answer(&first) {
        let _ = socket.close(None).await;
        return Ok(Opened::Answer(whole(status, headers, body)));
    }
    Ok(Opened::Answer(Response {
        status: StatusCode::OK,
        headers: handshake,
        body: events(socket, first, timeouts.idle),
    }))
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

/// The client TLS setup: rustls with ring and the platform's verifier, HTTP/1.1 only.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, TransportError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            use rustls_platform_verifier::BuilderVerifierExt;
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .and_then(BuilderVerifierExt::with_platform_verifier)
            .map(|b| Arc::new(b.with_no_client_auth()))
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| broken_setup(&format!("cannot set up TLS for upstream requests: {e}")))
}

/// The `response.create` message for a request body: the body with the type in front.
fn create_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let inner = text.trim_start().strip_prefix('{').unwrap_or(&text);
    let sep = if inner.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    format!("{{\"type\":\"response.create\"{sep}{inner}")
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

/// A `codex.rate_limits` frame's windows and plan as the `x-codex-*` headers HTTP answers
/// carry; `false` when the frame is something else.
fn rate_limits_to_headers(frame: &[u8], headers: &mut HeaderMap) -> bool {
    let kind = crate::jsonscan::field(frame, "type").and_then(crate::jsonscan::string);
    if kind.as_deref() != Some("codex.rate_limits") {
        return false;
    }
    let Ok(value) = serde_json::from_slice::<Value>(frame) else {
        return false;
    };
    let mut put = |name: String, v: &Value| {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        if let (Ok(name), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(text)) {
            headers.insert(name, v);
        }
    };
    for which in ["primary", "secondary"] {
        let window = &value["rate_limits"][which];
        for (field, header) in [
            ("used_percent", "used-percent"),
            ("window_minutes", "window-minutes"),
            ("reset_at", "reset-at"),
        ] {
            put(format!("x-codex-{which}-{header}"), &window[field]);
        }
    }
    put("x-codex-plan-type".to_owned(), &value["plan_type"]);
    true
}

/// An `error` frame with an HTTP status, as an error answer: `{"error": …}` and the frame's
/// headers.
fn error_answer(frame: &[u8]) -> Option<(StatusCode, HeaderMap, Bytes)> {
    let value: Value = serde_json::from_slice(frame).ok()?;
    if value["type"] != "error" {
        return None;
    }
    let status = value
        .get("status")
        .or_else(|| value.get("status_code"))
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .filter(|s| !s.is_success())?;
    let mut headers = HeaderMap::new();
    if let Some(Value::Object(carried)) = value.get("headers") {
        for (name, v) in carried {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Ok(v)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(text),
            ) {
                headers.insert(name, v);
            }
        }
    }
    let error = value.get("error").cloned().unwrap_or(Value::Null);
    let body = serde_json::json!({"error": error}).to_string();
    Some((status, headers, Bytes::from(body)))
}

/// A whole answer as a [`Response`].
fn whole(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response {
    Response {
        status,
        headers,
        body: futures_util::stream::once(async move { Ok(body) }).boxed(),
    }
}

/// The answer's events as SSE bytes, starting with `first`, until the terminal event; each
/// frame must come within `idle` of the one before.
fn events(socket: Socket, first: Bytes, idle: Duration) -> super::ByteStream {
    futures_util::stream::unfold(Some((socket, Some(first))), move |state| async move {
        let (mut socket, first) = state?;
        let text = match first {
            Some(first) if !first.is_empty() => first,
            Some(_) => return None,
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
        if terminal {
            let _ = socket.close(None).await;
            return Some((Ok(event), None));
        }
        Some((Ok(event), Some((socket, None))))
    })
    .boxed()
}

/// One frame as an SSE event (`event: <type>`, `data: <frame>`), and whether it ends the
/// response.
fn as_sse(frame: &Bytes) -> (Bytes, bool) {
    let kind = crate::jsonscan::field(frame, "type")
        .and_then(crate::jsonscan::string)
        .map(std::borrow::Cow::into_owned);
    let terminal = kind.as_deref().is_some_and(|k| TERMINAL.contains(&k));
    let mut out = BytesMut::with_capacity(frame.len() + 32);
    if let Some(kind) = &kind
        && !kind.contains(['\n', '\r'])
    {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\n");
    }
    // A frame is one JSON text; a line break inside it can only be whitespace between tokens.
    for line in frame.split(|b| *b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
    (out.freeze(), terminal)
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

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn the_body_becomes_a_create_message() {
        assert_eq!(
            create_message(br#"{"model":"m","stream":true}"#),
            r#"{"type":"response.create","model":"m","stream":true}"#
        );
        assert_eq!(create_message(b" {}"), r#"{"type":"response.create"}"#);
    }

    #[test]
    fn frames_become_sse_events() {
        let (event, terminal) = as_sse(&Bytes::from_static(
            br#"{"type":"response.created","response":{}}"#,
        ));
        assert_eq!(
            &event[..],
            b"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{}}\n\n"
        );
        assert!(!terminal);
        assert!(as_sse(&Bytes::from_static(br#"{"type":"response.completed"}"#)).1);
        assert!(as_sse(&Bytes::from_static(br#"{"type":"error","error":{}}"#)).1);
    }

    #[test]
    fn a_rate_limits_frame_becomes_quota_headers() {
        let mut headers = HeaderMap::new();
        let frame = br#"{"type":"codex.rate_limits","plan_type":"plus","rate_limits":{"primary":{"used_percent":12.5,"window_minutes":300,"reset_at":1790000000},"secondary":null}}"#;
        assert!(rate_limits_to_headers(frame, &mut headers));
        assert_eq!(headers["x-codex-primary-used-percent"], "12.5");
        assert_eq!(headers["x-codex-primary-window-minutes"], "300");
        assert_eq!(headers["x-codex-primary-reset-at"], "1790000000");
        assert_eq!(headers["x-codex-plan-type"], "plus");
        assert!(headers.get("x-codex-secondary-used-percent").is_none());
        assert!(!rate_limits_to_headers(
            br#"{"type":"response.created"}"#,
            &mut headers
        ));
    }

    #[test]
    fn an_error_frame_with_a_status_is_an_error_answer() {
        let frame = br#"{"type":"error","status":429,"error":{"type":"usage_limit_reached","message":"x"},"headers":{"x-codex-primary-used-percent":"100","retry-after":30}}"#;
        let (status, headers, body) = error_answer(frame).unwrap();
        assert_eq!(status, 429);
        assert_eq!(headers["x-codex-primary-used-percent"], "100");
        assert_eq!(headers["retry-after"], "30");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["type"], "usage_limit_reached");
        assert!(
            error_answer(br#"{"type":"error","error":{}}"#).is_none(),
            "no status: an event"
        );
        assert!(error_answer(br#"{"type":"response.created"}"#).is_none());
    }
}
