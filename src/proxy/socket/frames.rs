//! An answer of the request path, sent on a WebSocket the way the Codex CLI reads the Responses
//! WebSocket transport: each SSE event's data as one text frame, the moment it is read; the
//! answer's `x-codex-*` quota headers first as a `codex.rate_limits` event (the transport has
//! no headers after the handshake); an error answer as one `error` frame carrying its HTTP
//! status, error object and quota headers. What the answer outputs is noted in the socket's
//! [`History`].

use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use http::HeaderMap;
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::history::History;
use crate::jsonscan;
use crate::proxy::Response;
use crate::sse::{Block, SseReader};

/// The most of an error answer's body that is read for its frame.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// How a turn's answer ended on the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The answer's HTTP status.
    pub status: u16,
    /// The answer's stream broke after it began: the socket is closed, as the HTTP transport
    /// would have cut the connection.
    pub broken: bool,
}

/// Sends `response` on `socket`, frame by frame.
///
/// # Errors
///
/// When the socket cannot be written (the client went away).
pub async fn send<S>(
    response: Response,
    history: &mut History,
    socket: &mut S,
) -> Result<Sent, WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let (parts, mut body) = response.into_parts();
    let status = parts.status.as_u16();
    if !parts.status.is_success() {
        let mut bytes = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                bytes.extend_from_slice(&data[..data.len().min(MAX_ERROR_BODY - bytes.len())]);
                if bytes.len() >= MAX_ERROR_BODY {
                    break;
                }
            }
        }
        socket
            .send(Message::text(error_frame(status, &parts.headers, &bytes)))
            .await?;
        return Ok(Sent {
            status,
            broken: false,
        });
    }
    if let Some(event) = rate_limits_event(&parts.headers) {
        socket.send(Message::text(event)).await?;
    }
    let mut reader = SseReader::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Ok(Sent {
                status,
                broken: true,
            });
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for block in reader.feed(&data) {
            deliver(&block, history, socket).await?;
        }
    }
    if let Some(block) = reader.take_rest() {
        deliver(&block, history, socket).await?;
    }
    Ok(Sent {
        status,
        broken: false,
    })
}

/// Sends one event's data as a text frame, noting what it says about the response.
async fn deliver<S>(block: &Block, history: &mut History, socket: &mut S) -> Result<(), WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let Some(data) = block.data_bytes() else {
        return Ok(());
    };
    note(&data, history);
    // Event data is JSON text, so valid UTF-8; anything else is sent with replacements.
    let text = match Utf8Bytes::try_from(data.clone()) {
        Ok(text) => text,
        Err(_) => Utf8Bytes::from(String::from_utf8_lossy(&data).into_owned()),
    };
    socket.send(Message::Text(text)).await
}

/// Keeps the items an event finishes and the id of a completed response.
pub fn note(data: &Bytes, history: &mut History) {
    let Some(kind) = jsonscan::field(data, "type").and_then(jsonscan::string) else {
        return;
    };
    match &*kind {
        "response.output_item.done" => {
            if let Some(range) = jsonscan::field_range(data, "item") {
                history.output(data.slice(range));
            }
        }
        "response.completed" => {
            let id = jsonscan::field(data, "response")
                .and_then(|r| jsonscan::field(r, "id"))
                .and_then(jsonscan::string);
            if let Some(id) = id {
                history.answered(id.into_owned());
            }
        }
        _ => {}
    }
}

/// Headers an error frame carries, as the backend's do: quota state and when to retry.
fn frame_header(name: &str) -> bool {
    name.starts_with("x-codex-") || name == "retry-after"
}

/// The `error` frame for an error answer: `{"type":"error","status",…,"error":{…}}`.
#[must_use]
pub fn error_frame(status: u16, headers: &HeaderMap, body: &[u8]) -> String {
    let error = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut object)) => match object.remove("error") {
            Some(error @ Value::Object(_)) => error,
            _ => match object.remove("detail") {
                Some(Value::String(detail)) => json!({"message": detail}),
                _ => Value::Object(object),
            },
        },
        _ => json!({"message": String::from_utf8_lossy(body)}),
    };
    let mut frame = json!({"type": "error", "status": status, "error": error});
    let carried: Map<String, Value> = headers
        .iter()
        .filter(|(name, _)| frame_header(name.as_str()))
        .filter_map(|(name, value)| Some((name.to_string(), json!(value.to_str().ok()?))))
        .collect();
    if !carried.is_empty() {
        frame["headers"] = Value::Object(carried);
    }
    frame.to_string()
}

/// The `codex.rate_limits` event for an answer's `x-codex-{primary,secondary}-*` headers, when
/// it has any.
#[must_use]
pub fn rate_limits_event(headers: &HeaderMap) -> Option<String> {
    let number =
        |name: &str| -> Option<f64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    let window = |which: &str| -> Option<Value> {
        let used = number(&format!("x-codex-{which}-used-percent"))?;
        let mut window = json!({"used_percent": used});
        for (field, header) in [
            ("window_minutes", "window-minutes"),
            ("reset_at", "reset-at"),
        ] {
            if let Some(n) = number(&format!("x-codex-{which}-{header}")) {
                // Whole numbers on the wire (minutes, Unix seconds).
                #[allow(clippy::cast_possible_truncation)]
                let n = n as i64;
                window[field] = json!(n);
            }
        }
        Some(window)
    };
    let (primary, secondary) = (window("primary"), window("secondary"));
    if primary.is_none() && secondary.is_none() {
        return None;
    }
    let mut event = json!({"type": "codex.rate_limits",
        "rate_limits": {"primary": primary, "secondary": secondary}});
    if let Some(plan) = headers
        .get("x-codex-plan-type")
        .and_then(|v| v.to_str().ok())
    {
        event["plan_type"] = json!(plan);
    }
    Some(event.to_string())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn an_error_answer_is_one_frame_with_its_status_and_quota_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("30"));
        headers.insert(
            "x-codex-primary-used-percent",
            HeaderValue::from_static("100"),
        );
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let body = br#"{"error":{"type":"usage_limit_reached","code":"usage_limit_reached","message":"limit"}}"#;
        let frame: Value = serde_json::from_str(&error_frame(429, &headers, body)).unwrap();
        assert_eq!(
            frame,
            json!({"type": "error", "status": 429,
                "error": {"type": "usage_limit_reached", "code": "usage_limit_reached", "message": "limit"},
                "headers": {"retry-after": "30", "x-codex-primary-used-percent": "100"}})
        );
        let frame: Value = serde_json::from_str(&error_frame(
            400,
            &HeaderMap::new(),
            br#"{"detail":"Store must be set to false"}"#,
        ))
        .unwrap();
        assert_eq!(
            frame,
            json!({"type": "error", "status": 400, "error": {"message": "Store must be set to false"}})
        );
    }

    #[test]
    fn quota_headers_become_a_rate_limits_event() {
        assert_eq!(rate_limits_event(&HeaderMap::new()), None);
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-codex-primary-used-percent", "12.5"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-at", "1790000000"),
            ("x-codex-secondary-used-percent", "40"),
            ("x-codex-plan-type", "plus"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let event: Value = serde_json::from_str(&rate_limits_event(&headers).unwrap()).unwrap();
        assert_eq!(
            event,
            json!({"type": "codex.rate_limits", "plan_type": "plus", "rate_limits": {
                "primary": {"used_percent": 12.5, "window_minutes": 300, "reset_at": 1_790_000_000},
                "secondary": {"used_percent": 40.0}}})
        );
    }

    #[test]
    fn finished_items_and_the_completed_id_are_noted() {
        let mut history = History::default();
        history.begin(&Bytes::from_static(br#"{"input":[{"a":1}]}"#));
        for event in [
            r#"{"type":"response.created","response":{"id":"resp_7"}}"#,
            r#"{"type":"response.output_item.added","item":{"id":"x"}}"#,
            r#"{"type":"response.output_item.done","output_index":0,"item":{"type":"message","id":"m"}}"#,
            r#"{"type":"response.completed","response":{"id":"resp_7","output":[]}}"#,
        ] {
            note(&Bytes::from(event), &mut history);
        }
        let items: Vec<&[u8]> = history
            .items_of("resp_7")
            .unwrap()
            .iter()
            .map(|b| &b[..])
            .collect();
        assert_eq!(
            items,
            [&br#"{"a":1}"#[..], br#"{"type":"message","id":"m"}"#]
        );
    }
}
