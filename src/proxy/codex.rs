//! What the Codex backend demands of a request and how it says "quota": body shaping (spec §6.3,
//! §8.5), the customary and session headers (spec §6.2), the usage-limit classification (spec
//! §7.2, §8.5 item 15) and turning the backend's error bodies into OpenAI-shaped errors.
//!
//! [`shape_body`] is `translate::responses::shape_for_codex` with errors in the server's type.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::Value;

use super::error::{ApiError, ErrorCode, ErrorKind};
use crate::translate::TranslateError;
use crate::translate::responses::shape_for_codex;
use crate::upstream::headers::{ORIGINATOR, SESSION_ID, SESSION_ID_UNDERSCORE};
use crate::upstream::user_agent;

/// Cooldown when a usage limit names no reset time.
pub const DEFAULT_COOLDOWN_SECS: i64 = 300;

/// Whether a client header goes on to the backend: the Codex CLI's fingerprint and session
/// headers, and its `x-codex-*` ones.
fn forwarded(name: &HeaderName) -> bool {
    let name = name.as_str();
    matches!(
        name,
        "originator"
            | "user-agent"
            | "session-id"
            | "session_id"
            | "conversation_id"
            | "thread-id"
            | "x-client-request-id"
            | "x-openai-subagent"
            | "openai-beta"
            | "version"
    ) || name.starts_with("x-codex-")
}

/// A request body ready for the backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Shaped {
    /// The body to send upstream.
    pub body: Value,
    /// Whether the client asked for a stream; if not, the answer is aggregated.
    pub client_stream: bool,
}

/// Shapes a client's Responses body for the backend with the one implementation,
/// [`crate::translate::responses::shape_for_codex`]: `stream: true`, `store: false`,
/// `instructions` a string (`""` when absent), a string `input` becomes one user message, input
/// item `id`s and `item_reference` items are dropped, unsupported parameters are removed, and
/// `include` gets `reasoning.encrypted_content` when `reasoning` is set.
///
/// # Errors
///
/// A 400 when the body is not an object, or `input`/`instructions` have the wrong type.
pub fn shape_body(body: Value) -> Result<Shaped, ApiError> {
    let shaped = shape_for_codex(body).map_err(|e| {
        let code = match &e {
            TranslateError::NotAnObject => ErrorCode::InvalidBody,
            TranslateError::Missing(_) => ErrorCode::MissingField,
            TranslateError::Invalid { .. } | TranslateError::Unsupported { .. } => {
                ErrorCode::InvalidField
            }
        };
        ApiError::bad_request(code, e.to_string())
    })?;
    if !shaped.dropped.is_empty() {
        tracing::debug!(dropped = ?shaped.dropped, "fields the Codex backend does not accept were removed");
    }
    Ok(Shaped {
        body: shaped.body,
        client_stream: shaped.client_stream,
    })
}

/// The request headers for the backend, before credentials and the provider's `headers:`: the
/// client's fingerprint and session headers when it sent them (the Codex CLI does), else
/// `originator: bitrouter` and bitrouter's `User-Agent`; when the client sent no session
/// header, a `session-id` taken from the body's `prompt_cache_key` (which [`crate::affinity`]
/// set to the conversation's key), or a new one when the body has none, and `session_id`
/// mirroring it; JSON in, SSE out.
#[must_use]
pub fn request_headers(inbound: &HeaderMap, prompt_cache_key: Option<&str>) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(16);
    // What the client sent of the headers filled in below, noted on the way (each look-up in
    // the map afterwards would hash and probe again).
    let (mut originator, mut user_agent) = (false, false);
    let (mut session, mut session_underscore) = (None, None);
    for (name, value) in inbound {
        if !forwarded(name) {
            continue;
        }
        if *name == ORIGINATOR {
            originator = true;
        } else if *name == header::USER_AGENT {
            user_agent = true;
        } else if *name == SESSION_ID {
            session.get_or_insert_with(|| value.clone());
        } else if *name == SESSION_ID_UNDERSCORE {
            session_underscore.get_or_insert_with(|| value.clone());
        }
        out.append(name.clone(), value.clone());
    }
    if !originator {
        out.append(ORIGINATOR, HeaderValue::from_static("bitrouter"));
    }
    if !user_agent && let Some(ua) = own_user_agent() {
        out.append(header::USER_AGENT, ua);
    }
    if session.is_none() {
        let derived = session_underscore
            .clone()
            .or_else(|| prompt_cache_key.and_then(|k| HeaderValue::try_from(k).ok()));
        session = derived.or_else(|| HeaderValue::try_from(crate::unique::uuid().to_string()).ok());
        if let Some(value) = &session {
            out.append(SESSION_ID, value.clone());
        }
    }
    // Both spellings carry the one session id (the backend has been seen caching on either).
    if session_underscore.is_none()
        && let Some(value) = session
    {
        out.append(SESSION_ID_UNDERSCORE, value);
    }
    out.append(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out.append(
        header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
    out
}

/// bitrouter's own `User-Agent` as a header value, made once.
fn own_user_agent() -> Option<HeaderValue> {
    static UA: std::sync::OnceLock<Option<HeaderValue>> = std::sync::OnceLock::new();
    UA.get_or_init(|| HeaderValue::try_from(user_agent()).ok())
        .clone()
}

/// The backend's "you have hit your usage limit" answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageLimit {
    /// Unix seconds when the limit resets, if said.
    pub resets_at: Option<i64>,
    /// Seconds until it resets, if said.
    pub resets_in_seconds: Option<i64>,
    /// The plan, if said.
    pub plan_type: Option<String>,
    /// The backend's message.
    pub message: Option<String>,
}

impl UsageLimit {
    /// When the account can be used again: `resets_at`, else now + `resets_in_seconds`, else
    /// now + [`DEFAULT_COOLDOWN_SECS`].
    #[must_use]
    pub fn until(&self, now: i64) -> i64 {
        self.resets_at
            .filter(|t| *t > now)
            .or_else(|| {
                self.resets_in_seconds
                    .filter(|s| *s > 0)
                    .map(|s| now.saturating_add(s))
            })
            .unwrap_or(now + DEFAULT_COOLDOWN_SECS)
    }

    /// Reads a usage limit from an error object (`{type|code: "usage_limit_reached", …}`).
    fn from_error_object(error: &Value) -> Option<UsageLimit> {
        let is_limit = ["type", "code"]
            .iter()
            .any(|k| error.get(*k).and_then(Value::as_str) == Some("usage_limit_reached"));
        is_limit.then(|| UsageLimit {
            resets_at: error.get("resets_at").and_then(as_i64),
            resets_in_seconds: error.get("resets_in_seconds").and_then(as_i64),
            plan_type: error
                .get("plan_type")
                .and_then(Value::as_str)
                .map(str::to_owned),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && f.abs() < 9.0e15)
            .map(|f| {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "bounded above; reset times are whole seconds"
                )]
                let i = f as i64;
                i
            })
    })
}

/// A usage limit in a stream event (`response.failed` with `response.error`, or an `error`
/// event, nested or flat).
#[must_use]
pub fn usage_limit_in_event(event: &Value) -> Option<UsageLimit> {
    [
        event.get("error"),
        event.get("response").and_then(|r| r.get("error")),
        Some(event),
    ]
    .into_iter()
    .flatten()
    .find_map(UsageLimit::from_error_object)
}

/// A failed stream event (`response.failed`, `error`) that reports a server-side hiccup
/// (overloaded, internal error; see [`crate::retry::transient_code`]), with the code it gave.
#[must_use]
pub fn transient_failure_in_event(event: &Value) -> Option<String> {
    [
        event.get("response").and_then(|r| r.get("error")),
        event.get("error"),
        Some(event),
    ]
    .into_iter()
    .flatten()
    .filter(|e| e.is_object())
    .flat_map(|e| ["code", "type"].map(|k| e.get(k).and_then(Value::as_str)))
    .flatten()
    .find(|code| crate::retry::transient_code(code))
    .map(str::to_owned)
}

/// A usage limit in an HTTP error answer: a 429 saying so, or (as some report) a 404 whose body
/// mentions it. Other statuses are never a usage limit.
#[must_use]
pub fn usage_limit_in_answer(status: StatusCode, body: &[u8]) -> Option<UsageLimit> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::NOT_FOUND {
        return None;
    }
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(limit) = parsed.as_ref().and_then(usage_limit_in_event) {
        return Some(limit);
    }
    let mentions = String::from_utf8_lossy(body).contains("usage_limit_reached");
    mentions.then_some(UsageLimit {
        resets_at: None,
        resets_in_seconds: None,
        plan_type: None,
        message: None,
    })
}

/// An HTTP error from the backend as an OpenAI-shaped error: `{"error":{…}}` bodies keep their
/// message, type and code, `{"detail": "…"}` bodies become the message. Statuses stay honest:
/// 400/404/429 pass, 401/403 (bitrouter's credential refused, or Cloudflare) and 5xx become 502,
/// 504 stays 504. With `client_credential` (passthrough) a 401/403 is the client's own and
/// passes as is.
#[must_use]
pub fn upstream_error(
    provider: &str,
    status: StatusCode,
    body: &[u8],
    client_credential: bool,
) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error_obj = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .filter(|e| e.is_object());
    let text = |v: Option<&Value>, k: &str| {
        v.and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let detail = text(parsed.as_ref(), "detail");
    let message = text(error_obj, "message")
        .or(detail)
        .or_else(|| {
            parsed
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            let raw = String::from_utf8_lossy(body);
            let snippet: String = raw.trim().chars().take(300).collect();
            if snippet.is_empty() || snippet.starts_with('<') {
                format!("{provider} answered {status}")
            } else {
                snippet
            }
        });
    let kind = text(error_obj, "type");
    let code = text(error_obj, "code");
    let (out_status, default_kind, prefix) = match status.as_u16() {
        401 | 403 if client_credential => (status, ErrorKind::Authentication, ""),
        401 => (
            StatusCode::BAD_GATEWAY,
            ErrorKind::Upstream,
            "upstream refused bitrouter's credential: ",
        ),
        403 => (
            StatusCode::BAD_GATEWAY,
            ErrorKind::Upstream,
            "upstream refused the request (403): ",
        ),
        429 => (status, ErrorKind::RateLimit, ""),
        504 => (StatusCode::GATEWAY_TIMEOUT, ErrorKind::Upstream, ""),
        500..=599 => (StatusCode::BAD_GATEWAY, ErrorKind::Upstream, ""),
        400..=499 => (status, ErrorKind::InvalidRequest, ""),
        _ => (StatusCode::BAD_GATEWAY, ErrorKind::Upstream, ""),
    };
    let mut err = ApiError::with_text(
        out_status,
        kind.map_or(Cow::Borrowed(default_kind.as_str()), Cow::Owned),
        code.map(Cow::Owned),
        format!("{prefix}{message}"),
    );
    if out_status.is_server_error() && err.code.is_none() {
        err.code = Some(Cow::Owned(format!("upstream_{}", status.as_u16())));
    }
    err
}

#[cfg(test)]
mod tests {
    use http::HeaderName;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    #[test]
    fn shaping_forces_the_backend_rules() {
        let body = json!({
            "model": "gpt-6",
            "input": "hi",
            "stream": false,
            "store": true,
            "max_output_tokens": 10,
            "temperature": 0.2,
            "top_p": 1,
            "previous_response_id": "resp_1",
            "metadata": {"a": 1},
            "reasoning": {"effort": "low"},
            "include": ["message.output_text.logprobs"],
            "prompt_cache_key": "conv-1",
        });
        let shaped = shape_body(body).unwrap();
        assert!(!shaped.client_stream);
        assert_eq!(
            shaped.body,
            json!({
                "model": "gpt-6",
                "input": [{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}],
                "stream": true,
                "store": false,
                "instructions": "",
                "reasoning": {"effort": "low"},
                "include": ["message.output_text.logprobs", "reasoning.encrypted_content"],
                "prompt_cache_key": "conv-1",
            })
        );
    }

    #[test]
    fn shaping_strips_item_ids_and_references() {
        let body = json!({
            "model": "m",
            "stream": true,
            "instructions": "be brief",
            "input": [
                {"id": "msg_1", "type": "message", "role": "user", "content": "a"},
                {"type": "item_reference", "id": "rs_1"},
                {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            ],
        });
        let shaped = shape_body(body).unwrap();
        assert!(shaped.client_stream);
        assert_eq!(
            shaped.body["input"],
            json!([
                {"type": "message", "role": "user", "content": "a"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            ])
        );
        assert_eq!(shaped.body["instructions"], "be brief");
        assert!(shaped.body.get("include").is_none());
    }

    #[test]
    fn shaping_refuses_wrong_types() {
        for body in [
            json!([1]),
            json!({"model":"m"}),
            json!({"model":"m","input":5}),
            json!({"model":"m","input":"x","instructions":1}),
        ] {
            assert_eq!(shape_body(body).unwrap_err().status, 400);
        }
    }

    #[test]
    fn headers_forward_the_client_fingerprint() {
        let mut inbound = HeaderMap::new();
        for (k, v) in [
            ("originator", "codex_exec"),
            ("user-agent", "codex_exec/0.169.0"),
            ("session-id", "s-1"),
            ("thread-id", "t-1"),
            ("x-codex-turn-metadata", "{}"),
            ("x-client-request-id", "r-1"),
            ("authorization", "Bearer client"),
            ("cookie", "a=b"),
        ] {
            inbound.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let out = request_headers(&inbound, None);
        assert_eq!(out["originator"], "codex_exec");
        assert_eq!(out["user-agent"], "codex_exec/0.169.0");
        assert_eq!(out["session-id"], "s-1");
        // The other spelling mirrors it, and neither is doubled.
        assert_eq!(out["session_id"], "s-1");
        assert_eq!(out.get_all("session-id").iter().count(), 1);
        assert_eq!(out["thread-id"], "t-1");
        assert_eq!(out["x-codex-turn-metadata"], "{}");
        assert_eq!(out["x-client-request-id"], "r-1");
        assert_eq!(out["accept"], "text/event-stream");
        assert!(out.get("authorization").is_none());
        assert!(out.get("cookie").is_none());
    }

    #[test]
    fn headers_default_to_bitrouter_and_derive_the_session() {
        let out = request_headers(&HeaderMap::new(), Some("conv-9"));
        assert_eq!(out["originator"], "bitrouter");
        assert!(
            out["user-agent"]
                .to_str()
                .unwrap()
                .starts_with("bitrouter/")
        );
        assert_eq!(out["session-id"], "conv-9");
        // Both spellings carry the one session.
        assert_eq!(out["session_id"], "conv-9");
        let a = request_headers(&HeaderMap::new(), None);
        let b = request_headers(&HeaderMap::new(), None);
        assert_ne!(a["session-id"], b["session-id"]);
        assert_eq!(a["session-id"], a["session_id"]);
        // The client's own session header wins over the body's key, in both spellings.
        let mut inbound = HeaderMap::new();
        inbound.insert("session_id", HeaderValue::from_static("client-thread"));
        let out = request_headers(&inbound, Some("conv-9"));
        assert_eq!(out["session-id"], "client-thread");
        assert_eq!(out["session_id"], "client-thread");
    }

    #[test]
    fn server_errors_in_failed_events_are_transient_and_request_errors_are_not() {
        for event in [
            json!({"type": "response.failed", "response": {"error": {"code": "server_is_overloaded", "message": "busy"}}}),
            json!({"type": "error", "error": {"type": "overloaded_error"}}),
            json!({"type": "error", "code": "internal_error"}),
        ] {
            assert!(transient_failure_in_event(&event).is_some(), "{event}");
        }
        for event in [
            json!({"type": "response.failed", "response": {"error": {"code": "context_length_exceeded"}}}),
            json!({"type": "error", "error": {"type": "usage_limit_reached"}}),
            json!({"type": "error", "code": 500}),
        ] {
            assert_eq!(transient_failure_in_event(&event), None, "{event}");
        }
    }

    #[test]
    fn usage_limit_is_recognised_in_answers_and_events() {
        let body = br#"{"error":{"type":"usage_limit_reached","message":"You've hit your usage limit","plan_type":"plus","resets_at":1790000000,"resets_in_seconds":60}}"#;
        let limit = usage_limit_in_answer(StatusCode::TOO_MANY_REQUESTS, body).unwrap();
        assert_eq!(limit.resets_at, Some(1_790_000_000));
        assert_eq!(limit.until(1_000), 1_790_000_000);
        assert!(usage_limit_in_answer(StatusCode::NOT_FOUND, body).is_some());
        assert!(usage_limit_in_answer(StatusCode::BAD_REQUEST, body).is_none());
        assert!(
            usage_limit_in_answer(
                StatusCode::TOO_MANY_REQUESTS,
                br#"{"error":{"type":"rate_limit_exceeded"}}"#
            )
            .is_none()
        );

        let failed = json!({"type":"response.failed","response":{"error":{"code":"usage_limit_reached","resets_in_seconds":30}}});
        assert_eq!(usage_limit_in_event(&failed).unwrap().until(100), 130);
        let flat = json!({"type":"error","code":"usage_limit_reached","message":"x"});
        assert_eq!(
            usage_limit_in_event(&flat).unwrap().until(100),
            100 + DEFAULT_COOLDOWN_SECS
        );
        let other = json!({"type":"response.failed","response":{"error":{"code":"context_length_exceeded"}}});
        assert!(usage_limit_in_event(&other).is_none());
    }

    #[test]
    fn upstream_errors_become_openai_shaped_with_honest_statuses() {
        let e = upstream_error(
            "openai-codex",
            StatusCode::BAD_REQUEST,
            br#"{"detail":"Unsupported parameter: temperature"}"#,
            false,
        );
        assert_eq!(e.status, 400);
        assert_eq!(e.message, "Unsupported parameter: temperature");
        assert_eq!(e.kind, "invalid_request_error");

        let e = upstream_error(
            "openai-codex",
            StatusCode::SERVICE_UNAVAILABLE,
            br#"{"error":{"code":"server_is_overloaded","message":"busy"}}"#,
            false,
        );
        assert_eq!(
            (e.status, e.code.as_deref(), e.message.as_str()),
            (
                StatusCode::BAD_GATEWAY,
                Some("server_is_overloaded"),
                "busy"
            )
        );

        let e = upstream_error(
            "openai-codex",
            StatusCode::UNAUTHORIZED,
            br#"{"detail":"Unauthorized"}"#,
            false,
        );
        assert_eq!(e.status, 502);
        let e = upstream_error(
            "openai-codex",
            StatusCode::UNAUTHORIZED,
            br#"{"detail":"Unauthorized"}"#,
            true,
        );
        assert_eq!(e.status, 401);

        let e = upstream_error(
            "openai-codex",
            StatusCode::FORBIDDEN,
            b"<html>challenge</html>",
            false,
        );
        assert_eq!(
            e.message,
            "upstream refused the request (403): openai-codex answered 403 Forbidden"
        );
    }
}
