//! The request path's one error type and the one place it becomes an HTTP answer: OpenAI-shaped
//! `{"error":{"message","type","code"}}` JSON, or Anthropic-shaped on `/v1/messages`, with an
//! honest status and, for quota, `retry-after`. Messages never carry a token.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which error envelope the client understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `{"error":{"message","type","code","param"}}` (OpenAI APIs, `/health`, `/v1/models`).
    OpenAi,
    /// `{"type":"error","error":{"type","message"}}` (Anthropic Messages).
    Anthropic,
}

/// An error answered by the server itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI error `type` (e.g. `invalid_request_error`).
    pub kind: String,
    /// Machine-readable `code`.
    pub code: Option<String>,
    /// Human-readable message (lowercase, no secrets).
    pub message: String,
    /// Seconds for `retry-after`, when retrying later helps.
    pub retry_after: Option<u64>,
    /// Extra response headers (e.g. `x-bitrouter-*`, upstream `x-codex-*`); boxed to keep the
    /// error small.
    pub headers: Box<HeaderMap>,
}

impl ApiError {
    /// An error with this status, type, code and message.
    #[must_use]
    pub fn new(
        status: StatusCode,
        kind: &str,
        code: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind: kind.to_owned(),
            code: code.map(str::to_owned),
            message: message.into(),
            retry_after: None,
            headers: Box::default(),
        }
    }

    /// 400: the client's request is wrong.
    #[must_use]
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some(code),
            message,
        )
    }

    /// 401: the local key is missing or wrong.
    #[must_use]
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            Some("invalid_api_key"),
            message,
        )
    }

    /// 403: refused (Host or Origin).
    #[must_use]
    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            Some(code),
            message,
        )
    }

    /// 404: nothing here.
    #[must_use]
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            Some(code),
            message,
        )
    }

    /// 502: upstream failed.
    #[must_use]
    pub fn bad_gateway(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            Some(code),
            message,
        )
    }

    /// 504: upstream too slow.
    #[must_use]
    pub fn gateway_timeout(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_error",
            Some("upstream_timeout"),
            message,
        )
    }

    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// The JSON body in the given envelope.
    #[must_use]
    pub fn body(&self, flavor: Flavor) -> Value {
        match flavor {
            Flavor::OpenAi => json!({
                "error": {
                    "message": self.message,
                    "type": self.kind,
                    "code": self.code,
                    "param": null,
                }
            }),
            Flavor::Anthropic => json!({
                "type": "error",
                "error": {"type": anthropic_type(self), "message": self.message},
            }),
        }
    }

    /// Whether the upstream was overloaded (answered to Anthropic clients as 529).
    fn is_overloaded(&self) -> bool {
        crate::translate::is_overload(self.status.as_u16(), &self.kind, self.code.as_deref())
    }

    /// The full HTTP answer in the given envelope.
    #[must_use]
    pub fn into_response_as(self, flavor: Flavor) -> Response {
        let body = self.body(flavor).to_string();
        // Anthropic's "overloaded, retry" status, which Claude Code and the SDKs retry.
        let status = match flavor {
            Flavor::Anthropic if self.is_overloaded() => {
                StatusCode::from_u16(529).unwrap_or(self.status)
            }
            _ => self.status,
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.extend(*self.headers);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }

    /// The error as an SSE `error` event for a stream that already started (Responses style:
    /// the error object both nested and flat, so either kind of parser finds it).
    #[must_use]
    pub fn sse_event(&self, flavor: Flavor) -> String {
        let data = match flavor {
            Flavor::OpenAi => json!({
                "type": "error",
                "code": self.code,
                "message": self.message,
                "param": null,
                "error": {"type": self.kind, "code": self.code, "message": self.message},
            }),
            Flavor::Anthropic => self.body(Flavor::Anthropic),
        };
        super::sse::format_event(Some("error"), &data.to_string())
    }
}

impl From<&crate::translate::UpstreamError> for ApiError {
    /// A failure the backend reported inside a stream, for a client that did not stream: its
    /// status and type as classified by the translate module, `retry-after` for usage limits.
    fn from(err: &crate::translate::UpstreamError) -> Self {
        let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut out = ApiError::new(status, &err.kind, err.code.as_deref(), err.message.clone());
        if status == StatusCode::TOO_MANY_REQUESTS {
            out.retry_after = err
                .resets_in_seconds
                .and_then(|s| u64::try_from(s.max(1)).ok());
        }
        out
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_response_as(Flavor::OpenAi)
    }
}

/// Anthropic's error type for an error: `overloaded_error` for an overloaded upstream, else by
/// status.
fn anthropic_type(err: &ApiError) -> &'static str {
    if err.is_overloaded() {
        return "overloaded_error";
    }
    match err.status.as_u16() {
        400 | 413 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_envelope() {
        let e = ApiError::bad_request("missing_model", "missing `model`");
        assert_eq!(
            e.body(Flavor::OpenAi),
            json!({"error":{"message":"missing `model`","type":"invalid_request_error","code":"missing_model","param":null}})
        );
    }

    #[test]
    fn anthropic_envelope() {
        let mut e = ApiError::bad_request("x", "nope");
        e.status = StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(
            e.body(Flavor::Anthropic),
            json!({"type":"error","error":{"type":"rate_limit_error","message":"nope"}})
        );
    }

    #[test]
    fn an_overloaded_upstream_is_a_529_for_anthropic_clients() {
        for err in [
            ApiError::bad_gateway("server_is_overloaded", "busy"),
            ApiError::bad_gateway("upstream_503", "busy"),
            ApiError::new(StatusCode::BAD_GATEWAY, "server_error", None, "failed"),
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream_error",
                Some("slow_down"),
                "slow",
            ),
        ] {
            let openai = err.clone().into_response_as(Flavor::OpenAi);
            assert_ne!(openai.status().as_u16(), 529);
            assert_eq!(
                err.body(Flavor::Anthropic)["error"]["type"],
                "overloaded_error"
            );
            assert_eq!(
                err.into_response_as(Flavor::Anthropic).status().as_u16(),
                529
            );
        }
        let cut = ApiError::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("stream_incomplete"),
            "cut",
        );
        assert_eq!(cut.body(Flavor::Anthropic)["error"]["type"], "api_error");
        assert_eq!(
            cut.into_response_as(Flavor::Anthropic).status(),
            StatusCode::BAD_GATEWAY
        );
    }

    #[test]
    fn retry_after_header_is_set() {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "usage_limit_reached",
            None,
            "x",
        );
        e.retry_after = Some(42);
        let r = e.into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "42");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn sse_event_carries_both_shapes() {
        let e = ApiError::bad_gateway("upstream_disconnected", "gone");
        let wire = e.sse_event(Flavor::OpenAi);
        assert!(wire.starts_with("event: error\ndata: "));
        let data: Value =
            serde_json::from_str(wire.trim_start_matches("event: error\ndata: ").trim_end())
                .unwrap();
        assert_eq!(data["type"], "error");
        assert_eq!(data["error"]["code"], "upstream_disconnected");
        assert_eq!(data["message"], "gone");
    }
}
