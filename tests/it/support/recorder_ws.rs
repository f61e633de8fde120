//! The recorder's WebSocket pass-through: a client's handshake on the recorder is repeated to
//! bitrouter, and every message then passes both ways unchanged. The handshake is kept as a
//! `GET` (status: bitrouter's answer, `101` when it upgraded) and each text message the client
//! sent as a `WEBSOCKET` request with the message as its body (status `200`, or the `status` of
//! the `error` frame bitrouter answered it with).

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

use super::recorder::Sent;

/// Whether a request is a WebSocket handshake.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Repeats the handshake to `target` (`http://127.0.0.1:PORT`) and, when bitrouter upgrades,
/// answers the client's handshake and pumps messages between the two sockets.
pub async fn forward(target: &str, sent: Arc<Mutex<Vec<Sent>>>, mut req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let headers = req.headers().clone();
    let mut record = Sent {
        method: "GET".to_owned(),
        path: path.clone(),
        headers: headers.clone(),
        body: Value::Null,
        status: 0,
    };
    let url = format!("{}{path}", target.replacen("http://", "ws://", 1));
    let mut upstream_req = url.as_str().into_client_request().unwrap();
    for (name, value) in &headers {
        let name_str = name.as_str();
        let own = name_str.starts_with("sec-websocket-")
            || matches!(name_str, "host" | "connection" | "upgrade");
        if !own {
            upstream_req.headers_mut().append(name, value.clone());
        }
    }
    let addr = target.trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let upstream = match client_async(upstream_req, tcp).await {
        Ok((socket, answer)) => {
            record.status = answer.status().as_u16();
            socket
        }
        Err(WsError::Http(answer)) => {
            record.status = answer.status().as_u16();
            sent.lock().unwrap().push(record);
            let (parts, body) = answer.into_parts();
            let mut response = Response::builder().status(parts.status);
            for (name, value) in &parts.headers {
                response = response.header(name, value);
            }
            return response.body(Body::from(body.unwrap_or_default())).unwrap();
        }
        Err(e) => {
            sent.lock().unwrap().push(record);
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(format!(
                    "recorder: bitrouter refused the WebSocket: {e}"
                )))
                .unwrap();
        }
    };
    sent.lock().unwrap().push(record);
    let key = headers
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()))
        .unwrap_or_default();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let client =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        pump(client, upstream, &path, &sent).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", key)
        .body(Body::empty())
        .unwrap()
}

/// Passes messages both ways until either side closes, keeping what the client sent.
async fn pump<C, U>(
    client: WebSocketStream<C>,
    upstream: WebSocketStream<U>,
    path: &str,
    sent: &Mutex<Vec<Sent>>,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut client_tx, mut client_rx) = client.split();
    let (mut upstream_tx, mut upstream_rx) = upstream.split();
    loop {
        tokio::select! {
            from_client = client_rx.next() => {
                let Some(Ok(message)) = from_client else { break };
                if let Message::Text(text) = &message {
                    sent.lock().unwrap().push(Sent {
                        method: "WEBSOCKET".to_owned(),
                        path: path.to_owned(),
                        headers: HeaderMap::new(),
                        body: serde_json::from_str(text).unwrap_or(Value::Null),
                        status: 200,
                    });
                }
                if upstream_tx.send(message).await.is_err() {
                    break;
                }
            }
            from_upstream = upstream_rx.next() => {
                let Some(Ok(message)) = from_upstream else { break };
                if let Message::Text(text) = &message
                    && let Ok(event) = serde_json::from_str::<Value>(text)
                    && event["type"] == "error"
                    && let Some(status) = event["status"].as_u64()
                    && let Some(last) = sent.lock().unwrap().iter_mut().rev().find(|s| s.method == "WEBSOCKET")
                {
                    last.status = u16::try_from(status).unwrap_or(0);
                }
                if client_tx.send(message).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = client_tx.close().await;
    let _ = upstream_tx.close().await;
}
