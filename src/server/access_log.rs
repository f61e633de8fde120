//! One access-log line per request (tracing, target `bitrouter::access`, level info): method,
//! path, model, provider, account, status, latency and tokens (input, output, cached) when the
//! stream reported them.
//! The line is written when the response body ends (or the client goes away), so streams are
//! logged with their full duration. Never a header value, never a token.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// What the handlers learn about a request, for its log line.
#[derive(Debug, Clone, Default)]
pub struct LogFields {
    /// The model the client asked for.
    pub model: Option<String>,
    /// The provider that served it.
    pub provider: Option<String>,
    /// The account (label) that served it.
    pub account: Option<String>,
    /// Input tokens, from the stream's usage.
    pub input_tokens: Option<u64>,
    /// Output tokens, from the stream's usage.
    pub output_tokens: Option<u64>,
    /// Input tokens the backend served from its prompt cache, from the stream's usage.
    pub cached_tokens: Option<u64>,
    /// An error code if the answer failed midway (e.g. `upstream_disconnected`).
    pub error: Option<String>,
}

impl LogFields {
    /// Takes the token counts from a Responses `usage` object (`input_tokens`,
    /// `output_tokens`, `input_tokens_details.cached_tokens`).
    pub fn note_usage(&mut self, usage: &serde_json::Value) {
        let count = |pointer: &str| usage.pointer(pointer).and_then(serde_json::Value::as_u64);
        self.input_tokens = count("/input_tokens");
        self.output_tokens = count("/output_tokens");
        self.cached_tokens = count("/input_tokens_details/cached_tokens");
    }
}

/// A request's log fields, shared between the middleware and the handler (a request extension).
#[derive(Debug, Clone, Default)]
pub struct LogCell(Arc<Mutex<LogFields>>);

impl LogCell {
    /// Updates the fields.
    pub fn update(&self, f: impl FnOnce(&mut LogFields)) {
        let mut fields = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut fields);
    }

    fn snapshot(&self) -> LogFields {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Middleware: gives the request a [`LogCell`] and logs when the response body is done.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let cell = LogCell::default();
    req.extensions_mut().insert(cell.clone());
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let guard = LogGuard {
        cell,
        method,
        path,
        status,
        start,
    };
    response.map(|body| {
        Body::new(LoggedBody {
            inner: body,
            _guard: guard,
        })
    })
}

struct LogGuard {
    cell: LogCell,
    method: String,
    path: String,
    status: u16,
    start: Instant,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let f = self.cell.snapshot();
        let latency_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            target: "bitrouter::access",
            method = %self.method,
            path = %self.path,
            model = %f.model.as_deref().unwrap_or("-"),
            provider = %f.provider.as_deref().unwrap_or("-"),
            account = %f.account.as_deref().unwrap_or("-"),
            status = self.status,
            latency_ms,
            input_tokens = f.input_tokens,
            output_tokens = f.output_tokens,
            cached_tokens = f.cached_tokens,
            error = f.error.as_deref(),
            "request"
        );
    }
}

/// The response body, unchanged, carrying the guard that logs when it is dropped.
struct LoggedBody {
    inner: Body,
    _guard: LogGuard,
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
