//! One access-log line per request (tracing, target `bitrouter::access`, level info): method,
//! path, model, provider, account, status, latency and tokens (input, output, cached) when the
//! stream reported them.
//! The line is written when the answer's body ends (or the client goes away), so streams are
//! logged with their full duration. Never a header value, never a token.
//!
//! When the line is filtered out (`RUST_LOG`), a request costs nothing here: no fields are
//! gathered and the request path's [`LogCell`] is a no-op.

use std::time::Instant;

use http::Method;

use crate::proxy::{LogCell, LogFields};

/// One request being logged: what the line needs from the request itself.
pub struct Entry {
    method: Method,
    path: String,
    start: Instant,
    cell: LogCell,
}

/// Whether access lines are written at all.
#[must_use]
pub fn enabled() -> bool {
    tracing::enabled!(target: "bitrouter::access", tracing::Level::INFO)
}

/// Starts the entry for a request, or `None` when lines are filtered out; the cell is what
/// the request path fills in (a no-op cell without an entry).
#[must_use]
pub fn start(method: &Method, path: &str) -> (Option<Entry>, LogCell) {
    if !enabled() {
        return (None, LogCell::disabled());
    }
    let cell = LogCell::default();
    let entry = Entry {
        method: method.clone(),
        path: path.to_owned(),
        start: Instant::now(),
        cell: cell.clone(),
    };
    (Some(entry), cell)
}

impl Entry {
    /// Writes the line for an answer with `status` that has ended.
    pub fn finish(self, status: u16) {
        let f: LogFields = self.cell.snapshot();
        let latency_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            target: "bitrouter::access",
            method = %self.method,
            path = %self.path,
            model = %f.model.as_deref().unwrap_or("-"),
            provider = %f.provider.as_deref().unwrap_or("-"),
            account = %f.account.as_deref().unwrap_or("-"),
            status,
            latency_ms,
            input_tokens = f.input_tokens,
            output_tokens = f.output_tokens,
            cached_tokens = f.cached_tokens,
            error = f.error.as_deref(),
            "request"
        );
    }
}
