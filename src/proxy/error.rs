//! The server's one error type and the one place it becomes an HTTP answer: OpenAI-shaped
//! `{"error":{"message","type","code"}}` JSON, or Anthropic-shaped on `/v1/messages`, with an
//! honest status and, for quota, `retry-after`. Messages never carry a token.
//!
//! bitrouter's own errors name their `type` and `code` with [`ErrorKind`] and [`ErrorCode`];
//! an upstream's own type and code (from its error body) pass through as text.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::body::Body;
use crate::upstream::{TransportError, TransportKind};

/// Which error envelope the client understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `{"error":{"message","type","code","param"}}` (OpenAI APIs, `/health`, `/v1/models`).
    OpenAi,
    /// `{"type":"error","error":{"type","message"}}` (Anthropic Messages).
    Anthropic,
}

/// The error `type`s bitrouter answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client's request is wrong.
    InvalidRequest,
    /// A key or sign-in is missing or refused.
    Authentication,
    /// Refused (Host, Origin).
    Permission,
    /// Nothing here.
    NotFound,
    /// Too many requests.
    RateLimit,
    /// Every account has hit its usage limit.
    UsageLimit,
    /// An upstream failed.
    Upstream,
    /// bitrouter's own configuration is at fault.
    Server,
}

impl ErrorKind {
    /// The wire text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::UsageLimit => "usage_limit_reached",
            ErrorKind::Upstream => "upstream_error",
            ErrorKind::Server => "server_error",
        }
    }
}

/// The error `code`s bitrouter answers with (the contract's machine-readable reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The body names no model.
    MissingModel,
    /// The body is not JSON.
    InvalidJson,
    /// The body is declared as something other than JSON.
    InvalidContentType,
    /// The body is larger than `server.max_body_bytes`.
    RequestTooLarge,
    /// The body could not be read, or is not an object.
    InvalidBody,
    /// A field the backend needs is missing.
    MissingField,
    /// A field has the wrong type or value.
    InvalidField,
    /// The request cannot be translated.
    InvalidRequest,
    /// The account label is invalid.
    InvalidAccount,
    /// The id names an unknown provider.
    UnknownProvider,
    /// The id or header names an unknown account.
    UnknownAccount,
    /// The provider has no account.
    NotLoggedIn,
    /// The id and the header pin different accounts.
    ConflictingAccounts,
    /// Several providers offer the model.
    AmbiguousModel,
    /// A route refers back to itself.
    RouteLoop,
    /// The variant suffix of the id is malformed.
    InvalidVariant,
    /// A variant suffix on a route name.
    VariantOfRoute,
    /// The model does not offer the variant, or the provider cannot carry it.
    UnsupportedVariant,
    /// The provider cannot serve this endpoint.
    UnsupportedApi,
    /// Every account that could serve has hit its usage limit.
    UsageLimitReached,
    /// No provider could serve the request.
    NoRoute,
    /// The account's sign-in is no longer valid.
    LoginRequired,
    /// The credential store cannot be used right now.
    CredentialsUnavailable,
    /// The local key is missing or wrong.
    InvalidApiKey,
    /// The `Host` is not this server.
    HostNotAllowed,
    /// The browser `Origin` is not allowed.
    OriginNotAllowed,
    /// No such route.
    UnknownRoute,
    /// The method is not allowed on this route.
    MethodNotAllowed,
    /// A `GET /v1/responses` that is not a WebSocket upgrade.
    WebsocketUnsupported,
    /// A WebSocket message continues a response the socket did not answer last.
    PreviousResponseNotFound,
    /// The upstream did not answer in time, or went silent.
    UpstreamTimeout,
    /// No connection to the upstream.
    UpstreamUnreachable,
    /// The exchange with the upstream failed.
    UpstreamFailed,
    /// The upstream's stream broke midway.
    UpstreamDisconnected,
    /// The stream ended before its final event.
    StreamIncomplete,
    /// Counting a request's tokens failed.
    CountFailed,
}

impl ErrorCode {
    /// The wire text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingModel => "missing_model",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidContentType => "invalid_content_type",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidAccount => "invalid_account",
            ErrorCode::UnknownProvider => "unknown_provider",
            ErrorCode::UnknownAccount => "unknown_account",
            ErrorCode::NotLoggedIn => "not_logged_in",
            ErrorCode::ConflictingAccounts => "conflicting_accounts",
            ErrorCode::AmbiguousModel => "ambiguous_model",
            ErrorCode::RouteLoop => "route_loop",
            ErrorCode::InvalidVariant => "invalid_variant",
            ErrorCode::VariantOfRoute => "variant_of_route",
            ErrorCode::UnsupportedVariant => "unsupported_variant",
            ErrorCode::UnsupportedApi => "unsupported_api",
            ErrorCode::UsageLimitReached => "usage_limit_reached",
            ErrorCode::NoRoute => "no_route",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::CredentialsUnavailable => "credentials_unavailable",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::HostNotAllowed => "host_not_allowed",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::UnknownRoute => "unknown_route",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::WebsocketUnsupported => "websocket_unsupported",
            ErrorCode::PreviousResponseNotFound => "previous_response_not_found",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
            ErrorCode::UpstreamUnreachable => "upstream_unreachable",
            ErrorCode::UpstreamFailed => "upstream_failed",
            ErrorCode::UpstreamDisconnected => "upstream_disconnected",
            ErrorCode::StreamIncomplete => "stream_incomplete",
            ErrorCode::CountFailed => "count_failed",
        }
    }
}

/// An error answered by the server itself, or an upstream's error in the client's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The error `type` (e.g. `invalid_request_error`).
    pub kind: Cow<'static, str>,
    /// The machine-readable `code`.
    pub code: Option<Cow<'static, str>>,
    /// Human-readable message (lowercase, no secrets).
    pub message: String,
    /// Seconds for `retry-after`, when retrying later helps.
    pub retry_after: Option<u64>,
    /// Extra response headers (e.g. `x-bitrouter-*`, upstream `x-codex-*`); boxed to keep the
    /// error small.
    pub headers: Box<HeaderMap>,
}

impl ApiError {
    /// An error of bitrouter's own.
    #[must_use]
    pub fn new(
        status: StatusCode,
        kind: ErrorKind,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Self {
        ApiError::with_text(
            status,
            Cow::Borrowed(kind.as_str()),
            Some(Cow::Borrowed(code.as_str())),
            message,
        )
    }

    /// An error whose type and code came from elsewhere (an upstream's error body).
    #[must_use]
    pub fn with_text(
        status: StatusCode,
        kind: Cow<'static, str>,
        code: Option<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code,
            message: message.into(),
            retry_after: None,
            headers: Box::default(),
        }
    }

    /// 400: the client's request is wrong.
    #[must_use]
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequest,
            code,
            message,
        )
    }

    /// 401: the local key is missing or wrong.
    #[must_use]
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Authentication,
            ErrorCode::InvalidApiKey,
            message,
        )
    }

    /// 403: refused (Host or Origin).
    #[must_use]
    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, ErrorKind::Permission, code, message)
    }

    /// 404: nothing here.
    #[must_use]
    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, code, message)
    }

    /// 502: upstream failed.
    #[must_use]
    pub fn bad_gateway(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_GATEWAY, ErrorKind::Upstream, code, message)
    }

    /// 504: upstream too slow.
    #[must_use]
    pub fn gateway_timeout(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Upstream,
            ErrorCode::UpstreamTimeout,
            message,
        )
    }

    /// A transport failure talking to `provider`: 504 for a timeout, 502 otherwise. The message
    /// names the provider, not the URL's query or any header.
    #[must_use]
    pub fn transport(provider: &str, err: &TransportError) -> Self {
        let cause = &err.cause;
        match err.kind {
            TransportKind::Timeout => {
                ApiError::gateway_timeout(format!("{provider} did not answer in time ({cause})"))
            }
            TransportKind::Connect => ApiError::bad_gateway(
                ErrorCode::UpstreamUnreachable,
                format!("cannot connect to {provider}: {cause}"),
            ),
            TransportKind::Broken => ApiError::bad_gateway(
                ErrorCode::UpstreamFailed,
                format!("the request to {provider} failed: {cause}"),
            ),
        }
    }

    /// A stream from `provider` that broke midway: a timeout keeps its code, anything else is
    /// `upstream_disconnected`.
    #[must_use]
    pub fn stream_broke(provider: &str, err: &TransportError) -> Self {
        let mut out = ApiError::transport(provider, err);
        if !out.has_code(ErrorCode::UpstreamTimeout) {
            out.code = Some(Cow::Borrowed(ErrorCode::UpstreamDisconnected.as_str()));
            out.message = format!("{provider} stream broke: {}", out.message);
        }
        out
    }

    /// Whether the error carries this code.
    #[must_use]
    pub fn has_code(&self, code: ErrorCode) -> bool {
        self.code.as_deref() == Some(code.as_str())
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
    pub fn into_response_as(self, flavor: Flavor) -> http::Response<Body> {
        let body = Body::full(self.body(flavor).to_string());
        let mut response = http::Response::new(body);
        // Anthropic's "overloaded, retry" status, which Claude Code and the SDKs retry.
        *response.status_mut() = match flavor {
            Flavor::Anthropic if self.is_overloaded() => {
                StatusCode::from_u16(529).unwrap_or(self.status)
            }
            _ => self.status,
        };
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
        crate::sse::format_event(Some("error"), &data.to_string())
    }
}

impl From<&crate::translate::UpstreamError> for ApiError {
    /// A failure the backend reported inside a stream, for a client that did not stream: its
    /// status and type as classified by the translate module, `retry-after` for usage limits.
    fn from(err: &crate::translate::UpstreamError) -> Self {
        let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut out = ApiError::with_text(
            status,
            Cow::Owned(err.kind.clone()),
            err.code.clone().map(Cow::Owned),
            err.message.clone(),
        );
        if status == StatusCode::TOO_MANY_REQUESTS {
            out.retry_after = err
                .resets_in_seconds
                .and_then(|s| u64::try_from(s.max(1)).ok());
        }
        out
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
        let e = ApiError::bad_request(ErrorCode::MissingModel, "missing `model`");
        assert_eq!(
            e.body(Flavor::OpenAi),
            json!({"error":{"message":"missing `model`","type":"invalid_request_error","code":"missing_model","param":null}})
        );
    }

    #[test]
    fn anthropic_envelope() {
        let mut e = ApiError::bad_request(ErrorCode::InvalidRequest, "nope");
        e.status = StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(
            e.body(Flavor::Anthropic),
            json!({"type":"error","error":{"type":"rate_limit_error","message":"nope"}})
        );
    }

    #[test]
    fn an_overloaded_upstream_is_a_529_for_anthropic_clients() {
        let text = |status: StatusCode, kind: &'static str, code: Option<&'static str>| {
            ApiError::with_text(status, kind.into(), code.map(Into::into), "busy")
        };
        for err in [
            text(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                Some("server_is_overloaded"),
            ),
            text(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                Some("upstream_503"),
            ),
            text(StatusCode::BAD_GATEWAY, "server_error", None),
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream_error",
                Some("slow_down"),
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
        let cut = text(
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("stream_incomplete"),
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
            ErrorKind::UsageLimit,
            ErrorCode::UsageLimitReached,
            "x",
        );
        e.retry_after = Some(42);
        let r = e.into_response_as(Flavor::OpenAi);
        assert_eq!(r.headers()[header::RETRY_AFTER], "42");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn sse_event_carries_both_shapes() {
        let e = ApiError::bad_gateway(ErrorCode::UpstreamDisconnected, "gone");
        let wire = e.sse_event(Flavor::OpenAi);
        assert!(wire.starts_with("event: error\ndata: "));
        let data: Value =
            serde_json::from_str(wire.trim_start_matches("event: error\ndata: ").trim_end())
                .unwrap();
        assert_eq!(data["type"], "error");
        assert_eq!(data["error"]["code"], "upstream_disconnected");
        assert_eq!(data["message"], "gone");
    }

    #[test]
    fn transport_failures_have_honest_statuses() {
        let err = |kind| TransportError {
            kind,
            cause: "x".into(),
        };
        let e = ApiError::transport("local", &err(TransportKind::Connect));
        assert_eq!(e.status, 502);
        assert!(
            e.message.starts_with("cannot connect to local"),
            "{}",
            e.message
        );
        assert_eq!(
            ApiError::transport("p", &err(TransportKind::Timeout)).status,
            504
        );
        assert!(
            ApiError::stream_broke("p", &err(TransportKind::Broken))
                .has_code(ErrorCode::UpstreamDisconnected)
        );
        assert!(
            ApiError::stream_broke("p", &err(TransportKind::Timeout))
                .has_code(ErrorCode::UpstreamTimeout)
        );
    }
}
