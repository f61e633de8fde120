//! Pure translation between the client APIs bitrouter serves and the upstream APIs, with the
//! streamed OpenAI Responses API as the pivot: every translated request passes through a
//! Responses body, and every translated answer through Responses events.
//!
//! | client ↓ / upstream → | Responses | Chat Completions | Messages |
//! |---|---|---|---|
//! | Responses | native | [`chat_upstream`] | [`messages_upstream`] |
//! | Chat Completions | [`chat`] | native | [`chat`] then [`messages_upstream`] |
//! | Messages | [`messages`] | [`messages`] then [`chat_upstream`] | native |
//!
//! A request bound for the Codex backend is shaped to its rules ([`Backend::Codex`]); one bound
//! for any other upstream keeps the client's sampling and length parameters
//! ([`Backend::Generic`]).
//!
//! Nothing here does I/O. The server feeds request bodies and upstream byte chunks in and writes
//! what comes out:
//!
//! - [`sse`]: the crate's one server-sent-events reader and writer ([`crate::sse`]), re-exported
//!   here so the translators name it as before.
//! - [`responses`]: shaping a client's Responses request for the Codex backend, parsing backend
//!   events, and aggregating a stream into one response object for non-streaming clients.
//! - [`chat`]: OpenAI Chat Completions ⇄ Responses (client side).
//! - [`messages`]: Anthropic Messages ⇄ Responses (client side).
//! - [`chat_upstream`]: Responses ⇄ Chat Completions (upstream side).
//! - [`messages_upstream`]: Responses ⇄ Anthropic Messages (upstream side).
//! - [`writer`]: writing a Responses event stream for the upstream-side translators.
//! - [`size`]: a JSON value's written length, counted without writing it.
//! - [`names`]: the reversible map for tool names longer than the backend allows.
//! - [`stop`]: stop sequences, which the backend does not accept, applied to the output instead.
//! - [`tools`]: function tools read from and written to each API's shape.
//!
//! Errors: a malformed client request is a [`TranslateError`] (always HTTP 400). A failure the
//! backend reports (HTTP error body, `response.failed` or `error` event, a stream cut short) is an
//! [`UpstreamError`], which each translator renders in its client's error shape.

pub mod chat;
pub mod chat_upstream;
pub mod messages;
pub mod messages_upstream;
pub mod names;
pub mod responses;
pub mod size;
pub use crate::sse;
pub mod stop;
pub mod tools;
pub mod writer;

#[cfg(test)]
pub(crate) mod fixtures;
/// Property tests: the translators never panic on arbitrary input.
#[cfg(test)]
mod fuzz;

use serde_json::{Value, json};

/// Which kind of Responses upstream a client request is translated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// ChatGPT's Codex backend: the body is shaped to its rules
    /// ([`responses::shape_for_codex`]): `store: false`, no sampling or length parameters, and
    /// reasoning summaries always asked for.
    Codex,
    /// Any other upstream: the client's `temperature`, `top_p`, output limit, `user` and
    /// `store` are kept, nothing is forced, and `reasoning` is sent only when the client asked
    /// for it. The body asks for a stream.
    Generic,
}

/// A Responses request translated for an upstream that speaks another API.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    /// The body to send upstream.
    pub body: Value,
    /// Request fields and items that were not sent upstream, for logs.
    pub dropped: Vec<String>,
}

/// A client request that cannot be translated. Always the client's mistake (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The body is not a JSON object.
    #[error("request body must be a json object")]
    NotAnObject,
    /// A required field is absent or null.
    #[error("missing required field `{0}`")]
    Missing(String),
    /// A field has the wrong shape or value.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The JSON path of the field, e.g. `messages[2].role`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A field asks for something the Codex backend cannot do.
    #[error("unsupported `{field}`: {reason}")]
    Unsupported {
        /// The JSON path of the field.
        field: String,
        /// Why it cannot be honoured.
        reason: String,
    },
}

impl TranslateError {
    /// A [`TranslateError::Invalid`] for `field`.
    #[must_use]
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        TranslateError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A [`TranslateError::Unsupported`] for `field`.
    #[must_use]
    pub fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> Self {
        TranslateError::Unsupported {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The JSON path of the offending field, if there is one.
    #[must_use]
    pub fn param(&self) -> Option<&str> {
        match self {
            TranslateError::NotAnObject => None,
            TranslateError::Missing(field)
            | TranslateError::Invalid { field, .. }
            | TranslateError::Unsupported { field, .. } => Some(field),
        }
    }
}

/// An error to report to the client: from the backend, from a broken stream, or (through
/// `From<&TranslateError>`) from a malformed request. Every translator renders this one type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream error {status} ({kind}): {message}")]
pub struct UpstreamError {
    /// The HTTP status to answer with.
    pub status: u16,
    /// The error type as the backend named it (e.g. `usage_limit_reached`), else one derived
    /// from the status (e.g. `server_error`).
    pub kind: String,
    /// The backend's error code, if any.
    pub code: Option<String>,
    /// A human-readable message.
    pub message: String,
    /// The request field at fault, if known.
    pub param: Option<String>,
    /// Unix seconds when a usage limit resets (usage-limit errors only).
    pub resets_at: Option<i64>,
    /// Seconds until a usage limit resets (usage-limit errors only).
    pub resets_in_seconds: Option<i64>,
}

/// Error types and codes that mean "try again later" (HTTP 429). Usage-limit ones are quota,
/// not authentication: they must never trigger a re-login (spec §8.5 item 15).
const RATE_LIMIT_KINDS: &[&str] = &[
    "usage_limit_reached",
    "usage_not_included",
    "rate_limit_exceeded",
    "rate_limit_error",
    "insufficient_quota",
];
/// Error types and codes that are the request's fault (HTTP 400).
const INVALID_REQUEST_KINDS: &[&str] = &[
    "invalid_request_error",
    "context_length_exceeded",
    "invalid_prompt",
    "cyber_policy",
];
/// Error types and codes about credentials (HTTP 401).
const AUTHENTICATION_KINDS: &[&str] = &["authentication_error", "invalid_api_key", "token_expired"];
/// Error types and codes for an overloaded backend (HTTP 503), see spec §7.2.
const OVERLOADED_KINDS: &[&str] = &["server_is_overloaded", "slow_down", "overloaded_error"];

impl UpstreamError {
    /// Classifies an error object from a `response.failed` event (`response.error`), an `error`
    /// event (its `error` member or the flat event) or an HTTP error body's `error` member.
    ///
    /// The status comes from an explicit `status_code`/`status` in 400..=599 when present, else
    /// from the type or code: rate and usage limits 429, request errors 400, authentication 401,
    /// overload 503, anything else 502.
    #[must_use]
    pub fn from_error_object(error: &Value) -> Self {
        let text = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_owned);
        // A flat `error` event carries `"type": "error"`, which names the event, not the error.
        let kind = text("type").filter(|t| t != "error" && !t.is_empty());
        let code = text("code").filter(|c| !c.is_empty());
        let explicit = ["status_code", "status"]
            .iter()
            .filter_map(|key| error.get(*key).and_then(Value::as_u64))
            .find(|s| (400..=599).contains(s))
            .and_then(|s| u16::try_from(s).ok());
        let status = explicit.unwrap_or_else(|| {
            [kind.as_deref(), code.as_deref()]
                .into_iter()
                .flatten()
                .find_map(status_for_kind)
                .unwrap_or(502)
        });
        let message = text("message")
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "upstream reported an error without a message".to_owned());
        let kind = kind
            .or_else(|| code.clone())
            .unwrap_or_else(|| default_kind(status).to_owned());
        UpstreamError {
            status,
            kind,
            code,
            message,
            param: text("param"),
            resets_at: error.get("resets_at").and_then(Value::as_i64),
            resets_in_seconds: error.get("resets_in_seconds").and_then(Value::as_i64),
        }
    }

    /// The error for a backend stream that ended before a terminal event (spec §7.1).
    #[must_use]
    pub fn stream_incomplete() -> Self {
        UpstreamError {
            status: 502,
            kind: "server_error".to_owned(),
            code: Some("stream_incomplete".to_owned()),
            message: "upstream stream ended before response.completed".to_owned(),
            param: None,
            resets_at: None,
            resets_in_seconds: None,
        }
    }

    /// Whether this is the backend being overloaded (see [`is_overload`]).
    #[must_use]
    pub fn is_overloaded(&self) -> bool {
        is_overload(self.status, &self.kind, self.code.as_deref())
    }

    /// Whether the client may retry later (429 or 5xx).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.status == 429 || self.status >= 500
    }
}

impl From<&TranslateError> for UpstreamError {
    fn from(err: &TranslateError) -> Self {
        UpstreamError {
            status: 400,
            kind: "invalid_request_error".to_owned(),
            code: None,
            message: err.to_string(),
            param: err.param().map(str::to_owned),
            resets_at: None,
            resets_in_seconds: None,
        }
    }
}

/// Whether an error means "the backend is overloaded, try again": HTTP 503 or 529, an
/// overload type or code (`server_is_overloaded`, `slow_down`, `overloaded_error`, spec §7.2),
/// or a `server_error` the backend reported in a `response.failed` event. Anthropic clients
/// get these as 529 `overloaded_error`, which they retry.
#[must_use]
pub fn is_overload(status: u16, kind: &str, code: Option<&str>) -> bool {
    let overload = |k: &str| OVERLOADED_KINDS.contains(&k) || k == "upstream_503";
    status == 503
        || status == 529
        || overload(kind)
        || code.is_some_and(overload)
        || (kind == "server_error" && code != Some("stream_incomplete"))
}

/// The HTTP status an error type or code implies, if it is one we know.
fn status_for_kind(kind: &str) -> Option<u16> {
    if RATE_LIMIT_KINDS.contains(&kind) {
        Some(429)
    } else if INVALID_REQUEST_KINDS.contains(&kind) {
        Some(400)
    } else if AUTHENTICATION_KINDS.contains(&kind) {
        Some(401)
    } else if OVERLOADED_KINDS.contains(&kind) {
        Some(503)
    } else {
        None
    }
}

/// The OpenAI-style error type for a status, used when the backend named none.
fn default_kind(status: u16) -> &'static str {
    match status {
        400 | 404 | 409 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

/// Token counts of one response, from the Responses `usage` object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All input tokens, cached ones included.
    pub input_tokens: u64,
    /// Input tokens served from the prompt cache.
    pub cached_tokens: u64,
    /// All output tokens, reasoning included.
    pub output_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: u64,
    /// Input plus output.
    pub total_tokens: u64,
}

impl Usage {
    /// Reads `usage` from a Responses `response` object; `None` when it has none.
    #[must_use]
    pub fn from_response(response: &Value) -> Option<Self> {
        let usage = response.get("usage").filter(|u| u.is_object())?;
        let count = |path: &str| usage.pointer(path).and_then(Value::as_u64).unwrap_or(0);
        let input_tokens = count("/input_tokens");
        let output_tokens = count("/output_tokens");
        let total_tokens = usage
            .get("total_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(input_tokens + output_tokens);
        Some(Usage {
            input_tokens,
            cached_tokens: count("/input_tokens_details/cached_tokens"),
            output_tokens,
            reasoning_tokens: count("/output_tokens_details/reasoning_tokens"),
            total_tokens,
        })
    }
}

/// Why a response stopped, in Responses terms, before each translator names it its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// `response.completed`.
    Completed,
    /// `response.incomplete` because the output token limit was reached.
    MaxTokens,
    /// `response.incomplete` because of the content filter.
    ContentFilter,
    /// A client stop sequence matched; the text was cut before it.
    StopSequence(String),
}

impl Finish {
    /// Reads the finish of a terminal `response` object (`status` and `incomplete_details`).
    #[must_use]
    pub fn from_response(response: &Value) -> Self {
        let status = response.get("status").and_then(Value::as_str);
        if status != Some("incomplete") {
            return Finish::Completed;
        }
        let reason = response
            .pointer("/incomplete_details/reason")
            .and_then(Value::as_str);
        match reason {
            Some("content_filter") => Finish::ContentFilter,
            _ => Finish::MaxTokens,
        }
    }
}

/// A client-facing id derived from the response id (`resp_abc` → `{prefix}abc`), or a random one
/// when the backend gave none.
fn derived_id(prefix: &str, response: &Value) -> String {
    match response.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => format!("{prefix}{}", id.strip_prefix("resp_").unwrap_or(id)),
        _ => format!("{prefix}{}", crate::unique::uuid().simple()),
    }
}

/// The `created_at` of a response, else the current time.
fn created_at(response: &Value) -> i64 {
    response
        .get("created_at")
        .and_then(Value::as_i64)
        .unwrap_or_else(crate::clock::unix_now)
}

/// The text of a content value that is either a string or a list of text parts (each with a
/// `text` member); other parts are skipped. Parts are joined with `separator`.
fn joined_text(content: &Value, separator: &str) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(separator),
        _ => String::new(),
    }
}

/// The `type` member of a JSON object, `""` when absent.
fn type_of(value: &Value) -> &str {
    value.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Appends `text` as a JSON string, escaped as serde_json writes it: for the stream writers
/// that write their most frequent events as text instead of building a tree.
fn push_json_str(out: &mut String, text: &str) {
    // Writing a string cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

/// A Responses input message with the given role and content parts.
fn input_message(role: &str, content: Vec<Value>) -> Value {
    json!({"type": "message", "role": role, "content": content})
}

/// One `input_text` content part.
fn input_text(text: &str) -> Value {
    json!({"type": "input_text", "text": text})
}

#[cfg(test)]
mod tests;
