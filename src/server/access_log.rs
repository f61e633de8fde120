//! One access-log line per request (tracing, target `bitrouter::access`, level info): method,
//! path, model, provider, account, status, latency and tokens when the stream reported them.
//! The line is written when the response body ends (or the client goes away), so streams are
//! logged with their full duration. Never a header value, never a token.
//!
//! The same finished record goes to the request history (the one hook between the request path
//! and [`crate::history`]): for requests to a proxy endpoint, the fields the handlers filled in
//! plus the client's `User-Agent`/`originator`, the time to the first body byte and whether the
//! answer streamed become a [`RequestRecord`] handed to the history [`Sink`], which never waits.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

use crate::clock::unix_now_ms;
use crate::history::{RequestRecord, Sink, Tokens};

/// What the handlers learn about a request, for its log line and its history row.
#[derive(Debug, Clone, Default)]
pub struct LogFields {
    /// The local route, set for requests to a proxy endpoint (only those are kept in the
    /// history).
    pub endpoint: Option<&'static str>,
    /// The model the client asked for.
    pub model: Option<String>,
    /// The provider that served it (or was tried last).
    pub provider: Option<String>,
    /// The upstream model.
    pub upstream_model: Option<String>,
    /// The account (label) that served it.
    pub account: Option<String>,
    /// Upstream requests sent.
    pub tries: u32,
    /// Times another account or route entry took over after a failure.
    pub failovers: u32,
    /// Token usage the answer reported.
    pub tokens: Tokens,
    /// An error code if the answer failed (also midway, e.g. `upstream_disconnected`).
    pub error: Option<String>,
    /// The message of an error answer.
    pub error_message: Option<String>,
}

impl LogFields {
    /// Notes an upstream request to `provider`'s `model` with `account`: one more try, and a
    /// failover when it is not what the previous try used.
    pub fn attempt(&mut self, provider: &str, model: &str, account: &str) {
        let same = self.provider.as_deref() == Some(provider)
            && self.upstream_model.as_deref() == Some(model)
            && self.account.as_deref() == Some(account);
        if self.tries > 0 && !same {
            self.failovers += 1;
        }
        self.tries += 1;
        if !same {
            self.provider = Some(provider.to_owned());
            self.upstream_model = Some(model.to_owned());
            self.account = Some(account.to_owned());
        }
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

    fn take(&self) -> LogFields {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// What the history needs from the request itself (only gathered when history is on). The
/// header values are copied: holding them would keep hyper's read buffer from being reused.
struct ClientInfo {
    at_ms: i64,
    user_agent: Option<String>,
    originator: Option<String>,
}

/// A header's value as text, when it has one.
fn header_text(value: Option<&HeaderValue>) -> Option<String> {
    value
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Middleware: gives the request a [`LogCell`], and logs (and records) when the response body
/// is done.
pub async fn layer(State(history): State<Sink>, mut req: Request, next: Next) -> Response {
    let cell = LogCell::default();
    req.extensions_mut().insert(cell.clone());
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let client = history.is_enabled().then(|| ClientInfo {
        at_ms: unix_now_ms(),
        user_agent: header_text(req.headers().get(header::USER_AGENT)),
        originator: header_text(req.headers().get("originator")),
    });
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let streamed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let guard = LogGuard {
        cell,
        method,
        path,
        status,
        start,
        first_byte: None,
        streamed,
        client,
        history,
    };
    response.map(|body| Body::new(LoggedBody { inner: body, guard }))
}

struct LogGuard {
    cell: LogCell,
    method: String,
    path: String,
    status: u16,
    start: Instant,
    first_byte: Option<Instant>,
    streamed: bool,
    client: Option<ClientInfo>,
    history: Sink,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let f = self.cell.take();
        let elapsed = self.start.elapsed();
        let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            target: "bitrouter::access",
            method = %self.method,
            path = %self.path,
            model = %f.model.as_deref().unwrap_or("-"),
            provider = %f.provider.as_deref().unwrap_or("-"),
            account = %f.account.as_deref().unwrap_or("-"),
            status = self.status,
            latency_ms,
            input_tokens = f.tokens.input,
            output_tokens = f.tokens.output,
            error = f.error.as_deref(),
            "request"
        );
        if let (Some(client), Some(endpoint)) = (self.client.take(), f.endpoint) {
            let ttfb_ms = self.first_byte.map(|t| {
                u64::try_from(t.duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
            });
            self.history.request(RequestRecord {
                at_ms: client.at_ms,
                user_agent: client.user_agent,
                originator: client.originator,
                endpoint: endpoint.to_owned(),
                model_asked: f.model,
                provider: f.provider,
                model: f.upstream_model,
                account: f.account,
                tries: f.tries,
                failovers: f.failovers,
                status: self.status,
                error_code: f.error,
                error_message: f.error_message,
                ttfb_ms,
                duration_ms: latency_ms,
                tokens: f.tokens,
                streamed: self.streamed,
            });
        }
    }
}

/// The response body, unchanged, carrying the guard that logs when it is dropped and noting when
/// its first bytes went out.
struct LoggedBody {
    inner: Body,
    guard: LogGuard,
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if self.guard.first_byte.is_none() && matches!(polled, Poll::Ready(Some(Ok(_)))) {
            self.guard.first_byte = Some(Instant::now());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_count_tries_and_failovers() {
        let mut f = LogFields::default();
        f.attempt("openai-codex", "gpt", "work");
        // A refresh-and-retry on the same account is a try, not a failover.
        f.attempt("openai-codex", "gpt", "work");
        f.attempt("openai-codex", "gpt", "home");
        f.attempt("openai", "gpt-4.1", "config");
        assert_eq!((f.tries, f.failovers), (4, 2));
        assert_eq!(f.provider.as_deref(), Some("openai"));
        assert_eq!(f.upstream_model.as_deref(), Some("gpt-4.1"));
        assert_eq!(f.account.as_deref(), Some("config"));
    }
}
