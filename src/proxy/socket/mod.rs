//! The Codex CLI's Responses WebSocket transport, inbound (spec §6.1, §7.1): after the
//! handshake (which the HTTP face answers), each `response.create` text message is one request
//! of the request path, exactly as `POST /v1/responses` with the handshake's headers would be
//! (same plan, credentials, affinity, picker and retries), and its answer goes back as text
//! frames, one per event, as they arrive. Turns run one after another on a socket.
//!
//! What the Codex CLI 0.171 does on this transport, recorded from the real program
//! (`tests/fixtures/clients/codex-cli/ws_tool_loop.json`): a warm-up message first
//! (`generate: false`, no input), answered here without asking any upstream; then each request
//! continues the last response by `previous_response_id` with only its new input items, which
//! [`message`] spells out in full from the socket's [`history`], since an upstream reached over
//! HTTP keeps nothing (`store: false`).

pub mod frames;
pub mod history;
pub mod message;

use futures_util::{Sink, SinkExt};
use http::{HeaderMap, HeaderValue, Method, header};
use http_body_util::Full;
use serde_json::json;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use self::frames::Sent;
use self::history::History;
use super::{ApiError, Flavor, Inbound, LogCell, Proxy};

/// The `OpenAI-Beta` value that asks for this transport; it names the transport, not the
/// request, so it is not sent on with the turns.
pub const BETA: &str = "responses_websockets=2026-02-06";

/// One socket's state: the handshake's headers, which every turn is sent with, and the last
/// answered response.
#[derive(Debug)]
pub struct Session {
    headers: HeaderMap,
    history: History,
}

impl Session {
    /// A session opened with these handshake headers.
    #[must_use]
    pub fn new(handshake: &HeaderMap) -> Self {
        let mut headers = HeaderMap::with_capacity(handshake.len() + 2);
        for (name, value) in handshake {
            let transport = name.as_str().starts_with("sec-websocket-")
                || (name.as_str() == "openai-beta" && value.as_bytes() == BETA.as_bytes());
            if !transport {
                headers.append(name, value.clone());
            }
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        Session {
            headers,
            history: History::default(),
        }
    }

    /// Answers one text message on `socket`; what happened is for the access log.
    ///
    /// # Errors
    ///
    /// When the socket cannot be written (the client went away).
    pub async fn turn<S>(
        &mut self,
        proxy: &Proxy,
        message: &[u8],
        log: &LogCell,
        socket: &mut S,
    ) -> Result<Sent, WsError>
    where
        S: Sink<Message, Error = WsError> + Unpin,
    {
        let create = match message::read(message, &self.history) {
            Ok(create) => create,
            Err(err) => {
                log.update(|f| f.error = err.code.as_deref().map(str::to_owned));
                return self.refuse(err, socket).await;
            }
        };
        self.history.begin(&create.body);
        if create.prewarm {
            log.update(|f| f.model.clone_from(&create.model));
            return self.warm_up(create.model.as_deref(), socket).await;
        }
        let mut request = http::Request::new(Full::new(create.body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = http::Uri::from_static("/v1/responses");
        *request.headers_mut() = self.headers.clone();
        request.headers_mut().extend(create.headers);
        let (parts, body) = request.into_parts();
        let response = super::handle(proxy, Inbound::Responses, parts, body, log).await;
        frames::send(response, &mut self.history, socket).await
    }

    /// Answers a message with an error frame.
    ///
    /// # Errors
    ///
    /// When the socket cannot be written (the client went away).
    pub async fn refuse<S>(&mut self, err: ApiError, socket: &mut S) -> Result<Sent, WsError>
    where
        S: Sink<Message, Error = WsError> + Unpin,
    {
        let answer = err.into_response_as(Flavor::OpenAi);
        frames::send(answer, &mut self.history, socket).await
    }

    /// A warm-up's answer: a response that generated nothing, created and completed at once,
    /// which the next message continues.
    async fn warm_up<S>(&mut self, model: Option<&str>, socket: &mut S) -> Result<Sent, WsError>
    where
        S: Sink<Message, Error = WsError> + Unpin,
    {
        let id = format!("resp_bitrouter_warmup_{}", uuid::Uuid::new_v4().simple());
        let created_at = crate::clock::unix_now();
        let response = |status: &str| {
            json!({"id": id, "object": "response", "created_at": created_at, "status": status,
                "model": model, "output": []})
        };
        for (kind, status) in [
            ("response.created", "in_progress"),
            ("response.completed", "completed"),
        ] {
            let event = json!({"type": kind, "response": response(status)}).to_string();
            socket.send(Message::text(event)).await?;
        }
        self.history.answered(id);
        Ok(Sent {
            status: 200,
            broken: false,
        })
    }
}
