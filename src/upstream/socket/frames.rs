//! The frames of the WebSocket transport, and what they are on HTTP: the `response.create`
//! message a request body becomes, each event frame as the SSE event it would have been, an
//! `error` frame with a status as the error answer of that status, and a `codex.rate_limits`
//! frame as the `x-codex-*` quota headers.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use crate::jsonscan;

/// Events after which the backend sends nothing more for a response.
const TERMINAL: [&str; 4] = [
    "response.completed",
    "response.failed",
    "response.incomplete",
    "error",
];

/// The `response.create` message for a request body: the body with the type in front.
pub(super) fn create_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let inner = text.trim_start().strip_prefix('{').unwrap_or(&text);
    let sep = if inner.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    format!("{{\"type\":\"response.create\"{sep}{inner}")
}

/// A `codex.rate_limits` frame's windows and plan as the `x-codex-*` headers HTTP answers
/// carry; `false` when the frame is something else.
pub(super) fn rate_limits_to_headers(frame: &[u8], headers: &mut HeaderMap) -> bool {
    let kind = jsonscan::field(frame, "type").and_then(jsonscan::string);
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
pub(super) fn error_answer(frame: &[u8]) -> Option<(StatusCode, HeaderMap, Bytes)> {
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

/// Whether a frame ends its response, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Terminal {
    /// More frames follow.
    No,
    /// The response completed: the socket can take the next request.
    Done,
    /// The response failed or was cut short: the socket is not reused.
    Failed,
}

/// One frame as an SSE event (`event: <type>`, `data: <frame>`), and whether it ends the
/// response.
pub(super) fn as_sse(frame: &Bytes) -> (Bytes, Terminal) {
    let kind = jsonscan::field(frame, "type")
        .and_then(jsonscan::string)
        .map(std::borrow::Cow::into_owned);
    let terminal = match kind.as_deref() {
        Some("response.completed") => Terminal::Done,
        Some(k) if TERMINAL.contains(&k) => Terminal::Failed,
        _ => Terminal::No,
    };
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
        assert_eq!(terminal, Terminal::No);
        assert_eq!(
            as_sse(&Bytes::from_static(br#"{"type":"response.completed"}"#)).1,
            Terminal::Done
        );
        assert_eq!(
            as_sse(&Bytes::from_static(br#"{"type":"error","error":{}}"#)).1,
            Terminal::Failed
        );
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
