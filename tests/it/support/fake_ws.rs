//! The fake backend's WebSocket transport on `…/codex/responses` (spec §6.1, §7.1), once a test
//! turns it on: each `response.create` message is posted to the fake itself over HTTP with the
//! handshake's headers (so the strict checks, scripted replies and quota headers all apply, and
//! the request is recorded with `x-fake-transport: websocket`), and the answer comes back as
//! text frames, one per event, after a `codex.rate_limits` event when the answer carried quota
//! headers; an error answer is one `error` frame with its status and quota
//! headers, as the backend sends it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The header marking a request that came over the WebSocket transport.
pub const TRANSPORT_HEADER: &str = "x-fake-transport";

/// Whether a request is a WebSocket handshake.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Upgrades `req` and serves the socket, posting each message to `self_url` + its path; with
/// `once`, the socket is closed after its first answer.
pub fn accept(self_url: String, once: bool, mut req: Request) -> Response {
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()))
        .unwrap_or_default();
    let headers = req.headers().clone();
    let path = req.uri().path().to_owned();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        serve(socket, format!("{self_url}{path}"), headers, once).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", key)
        // As the backend: what holds for the whole socket comes on the handshake.
        .header("x-models-etag", "fake-models-etag")
        .body(Body::empty())
        .unwrap()
}

async fn serve<S>(mut socket: WebSocketStream<S>, url: String, handshake: HeaderMap, once: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let http = super::serve::http_client();
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let mut body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(
            body["type"], "response.create",
            "the fake takes create messages only"
        );
        body.as_object_mut().unwrap().remove("type");
        let mut post = http.post(&url).header(TRANSPORT_HEADER, "websocket");
        for (name, value) in &handshake {
            let name_str = name.as_str();
            if !(name_str.starts_with("sec-websocket-")
                || matches!(
                    name_str,
                    "host" | "connection" | "upgrade" | "content-length"
                ))
            {
                post = post.header(name, value);
            }
        }
        let answer = post
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        if !answer.status().is_success() {
            let carried: Map<String, Value> = answer
                .headers()
                .iter()
                .filter(|(n, _)| n.as_str().starts_with("x-codex-") || n.as_str() == "retry-after")
                .map(|(n, v)| (n.to_string(), json!(v.to_str().unwrap_or(""))))
                .collect();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            let error = body.get("error").cloned().unwrap_or(body);
            let frame =
                json!({"type": "error", "status": status, "error": error, "headers": carried});
            if socket.send(Message::text(frame.to_string())).await.is_err() {
                return;
            }
            continue;
        }
        // As the backend does on this transport: quota as an event before the answer.
        if let Some(event) = rate_limits_event(answer.headers())
            && socket.send(Message::text(event)).await.is_err()
        {
            return;
        }
        let mut stream = answer.bytes_stream();
        let mut buffer = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buffer.extend_from_slice(&chunk);
            while let Some(end) = find(&buffer, b"\n\n") {
                let event: Vec<u8> = buffer.drain(..end + 2).collect();
                let data: Vec<&str> = std::str::from_utf8(&event)
                    .unwrap_or("")
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                if data.is_empty() {
                    continue;
                }
                if socket.send(Message::text(data.join("\n"))).await.is_err() {
                    return;
                }
            }
        }
        if once {
            let _ = socket.close(None).await;
            return;
        }
    }
}

/// A `codex.rate_limits` event for an answer's `x-codex-*` quota headers, if it has any.
fn rate_limits_event(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let number = |name: String| -> Option<f64> { headers.get(name)?.to_str().ok()?.parse().ok() };
    let window = |which: &str| -> Option<Value> {
        Some(json!({
            "used_percent": number(format!("x-codex-{which}-used-percent"))?,
            "window_minutes": number(format!("x-codex-{which}-window-minutes")).map(|n| n as i64),
            "reset_at": number(format!("x-codex-{which}-reset-at")).map(|n| n as i64),
        }))
    };
    let primary = window("primary")?;
    let plan = headers
        .get("x-codex-plan-type")
        .and_then(|v| v.to_str().ok());
    Some(
        json!({"type": "codex.rate_limits", "plan_type": plan,
            "rate_limits": {"primary": primary, "secondary": window("secondary")}})
        .to_string(),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
