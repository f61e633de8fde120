//! One access-log line per request (tracing, target `bitrouter::access`, level info): method,
//! path, model, provider, account, status, latency and tokens when the stream reported them.
//! The line is written when the response body ends (or the client goes away), so streams are
//! logged with their full duration. Never a header value, never a token.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

use crate::proxy::LogCell;

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
