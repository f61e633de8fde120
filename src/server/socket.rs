//! The WebSocket upgrade on `/v1/responses` (the Codex CLI's Responses WebSocket transport,
//! spec §6): the handshake checked (version, key, the local key when one is set) and answered
//! `101` here, then the socket served by [`crate::proxy::socket`] until the client closes it,
//! it waits longer than `server.timeouts.idle` for its next message, or a turn's stream breaks.
//! Each message is one access-log line (method `WEBSOCKET`). The socket is served by its
//! connection's task (see [`Activity::then`]), so it keeps the connection's place under
//! `server.max_connections` and shutdown lets a turn under way finish.

use std::sync::Arc;

use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;

use super::access_log;
use super::activity::Activity;
use super::state::AppState;
use crate::proxy::socket::Session;
use crate::proxy::{self, ApiError, ErrorCode};
use crate::upstream::headers::{has_local_key, has_token};

/// The access log's method for one message on a socket.
const LOG_METHOD: &str = "WEBSOCKET";

/// Whether a request asks to become a WebSocket (`Connection: upgrade`, `Upgrade: websocket`).
#[must_use]
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let lists = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|v| has_token(v.as_bytes(), token))
    };
    lists(header::CONNECTION, "upgrade") && lists(header::UPGRADE, "websocket")
}

/// Answers a WebSocket handshake: `101` and the socket served in the background, or the error
/// that refuses it.
pub fn accept<B>(
    state: &Arc<AppState>,
    activity: &Arc<Activity>,
    mut req: Request<B>,
) -> Result<proxy::Response, ApiError> {
    let headers = req.headers();
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            proxy::ErrorKind::InvalidRequest,
            ErrorCode::WebsocketUnsupported,
            "bitrouter speaks WebSocket version 13 on /v1/responses",
        )
        .with_header(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        ));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "a WebSocket handshake needs Sec-WebSocket-Key",
        ));
    };
    let accept_key = derive_accept_key(key.as_bytes());
    let config = state.proxy.config();
    if let Some(local) = &config.server.api_key
        && !has_local_key(headers, local, true)
    {
        return Err(proxy::intake::missing_key());
    }
    let upgrade: OnUpgrade = hyper::upgrade::on(&mut req);
    let (parts, _) = req.into_parts();
    let socket_config = WebSocketConfig::default()
        .max_message_size(Some(config.server.max_body_bytes))
        .max_frame_size(Some(config.server.max_body_bytes));
    let state = state.clone();
    activity.then(Box::new(move |shutdown| {
        Box::pin(serve(
            state,
            upgrade,
            parts.headers,
            socket_config,
            shutdown,
        ))
    }));

    let mut response = proxy::Response::new(proxy::Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(value) = HeaderValue::from_str(&accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    Ok(response)
}

/// Serves one socket until it ends. On shutdown a turn under way finishes, then the socket is
/// closed (`1001 going away`).
async fn serve(
    state: Arc<AppState>,
    upgrade: OnUpgrade,
    headers: HeaderMap,
    config: WebSocketConfig,
    shutdown: CancellationToken,
) {
    let upgraded = match upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!("a WebSocket upgrade did not complete: {e}");
            return;
        }
    };
    let mut socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let mut session = Session::new(&headers);
    let method = Method::from_bytes(LOG_METHOD.as_bytes()).unwrap_or(Method::GET);
    loop {
        let idle = state.proxy.config().server.idle_timeout;
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                close(&mut socket, CloseCode::Away, "the server is stopping").await;
                return;
            }
            next = tokio::time::timeout(idle, socket.next()) => next,
        };
        let message = match next {
            Err(_) => {
                close(&mut socket, CloseCode::Normal, "idle").await;
                return;
            }
            Ok(None | Some(Err(_))) => return,
            Ok(Some(Ok(message))) => message,
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let err = ApiError::bad_request(
                    ErrorCode::InvalidRequest,
                    "send `response.create` messages as text frames",
                );
                if session.refuse(err, &mut socket).await.is_err() {
                    return;
                }
                continue;
            }
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        let (entry, log) = access_log::start_turn(&method, &headers, &state.history);
        let sent = session
            .turn(&state.proxy, text.as_bytes(), &log, &mut socket)
            .await;
        let status = sent.as_ref().map_or(499, |s| s.status);
        if let Some(entry) = entry {
            entry.finish(status, &state.history);
        }
        match sent {
            Ok(sent) if sent.broken => {
                close(&mut socket, CloseCode::Error, "the upstream stream broke").await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("a WebSocket client went away: {e}");
                return;
            }
        }
    }
}

async fn close<S>(socket: &mut WebSocketStream<S>, code: CloseCode, reason: &'static str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if let Err(e) = socket.close(Some(frame)).await {
        tracing::debug!("closing a WebSocket failed: {e}");
    }
}

/// Refuses a `GET /v1/responses` that is not a WebSocket handshake.
#[must_use]
pub fn not_upgrade() -> ApiError {
    ApiError::new(
        StatusCode::UPGRADE_REQUIRED,
        proxy::ErrorKind::InvalidRequest,
        ErrorCode::WebsocketUnsupported,
        "GET /v1/responses is the WebSocket transport (send a WebSocket handshake), or send POST /v1/responses",
    )
}
