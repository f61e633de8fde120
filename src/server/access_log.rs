//! One access-log line per request (tracing, target `bitrouter::access`, level info): method,
//! path, model, provider, account, status, latency and tokens (input, output, cached) when the
//! answer reported them.
//! The line is written when the answer's body ends (or the client goes away), so streams are
//! logged with their full duration. Never a header value, never a token.
//!
//! The same finished record is the request's history row: this is the one hook between the
//! request path and [`crate::history`]. For a `POST` to a proxy endpoint that passed the
//! Host/Origin checks, what the request path learned ([`LogFields`]) plus the client's
//! `User-Agent`/`originator`, the time to the first body byte and whether the answer streamed
//! become a [`RequestRecord`] handed to the history [`Sink`], which never waits.
//!
//! When the line is filtered out (`RUST_LOG`) and history is off, a request costs nothing here:
//! no fields are gathered and the request path's [`LogCell`] is a no-op.

use std::cell::RefCell;
use std::sync::Arc;
use std::thread::LocalKey;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Method, Request, header};

use crate::clock::unix_now_ms;
use crate::history::{RequestRecord, Sink};
use crate::proxy::{Inbound, LogCell, LogFields};
use crate::upstream::headers::ORIGINATOR;

/// One request being logged and recorded.
pub struct Entry {
    /// What the line needs, when lines are written.
    line: Option<Line>,
    /// What the history row needs from the request itself, when it is kept.
    row: Option<Row>,
    start: Instant,
    first_byte: Option<Instant>,
    cell: LogCell,
}

struct Line {
    method: Method,
    path: String,
}

/// The request's side of a history row. The header values are copied (holding them would keep
/// the connection's read buffer from being reused), once per thread while a client repeats them.
struct Row {
    at_ms: i64,
    endpoint: &'static str,
    user_agent: Option<Arc<str>>,
    originator: Option<Arc<str>>,
    streamed: bool,
}

thread_local! {
    /// The last `User-Agent` this thread copied.
    static LAST_USER_AGENT: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
    /// The last `originator` this thread copied.
    static LAST_ORIGINATOR: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Whether access lines are written at all.
#[must_use]
pub fn enabled() -> bool {
    tracing::enabled!(target: "bitrouter::access", tracing::Level::INFO)
}

/// Starts the entry for a request, or `None` when neither a line nor a history row will be
/// written; the cell is what the request path fills in (a no-op cell without an entry).
#[must_use]
pub fn start<B>(req: &Request<B>, history: &Sink) -> (Option<Entry>, LogCell) {
    begin(
        req.method(),
        req.uri().path(),
        req.headers(),
        proxied(req),
        history,
    )
}

/// Starts the entry for one turn on a WebSocket (a `response.create` message): logged with the
/// transport's `method`, recorded as a streamed `/v1/responses` request of the client that made
/// the handshake (`headers`).
#[must_use]
pub fn start_turn(
    method: &Method,
    headers: &HeaderMap,
    history: &Sink,
) -> (Option<Entry>, LogCell) {
    let (mut entry, cell) = begin(
        method,
        Inbound::Responses.route(),
        headers,
        Some(Inbound::Responses),
        history,
    );
    if let Some(row) = entry.as_mut().and_then(|e| e.row.as_mut()) {
        row.streamed = true;
    }
    (entry, cell)
}

fn begin(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    inbound: Option<Inbound>,
    history: &Sink,
) -> (Option<Entry>, LogCell) {
    let line = enabled().then(|| Line {
        method: method.clone(),
        path: path.to_owned(),
    });
    let row = history
        .is_enabled()
        .then_some(inbound)
        .flatten()
        .map(|inbound| Row {
            at_ms: unix_now_ms(),
            endpoint: inbound.route(),
            user_agent: header_text(headers.get(header::USER_AGENT), &LAST_USER_AGENT),
            originator: header_text(headers.get(ORIGINATOR), &LAST_ORIGINATOR),
            streamed: false,
        });
    if line.is_none() && row.is_none() {
        return (None, LogCell::disabled());
    }
    let cell = LogCell::default();
    let entry = Entry {
        line,
        row,
        start: Instant::now(),
        first_byte: None,
        cell: cell.clone(),
    };
    (Some(entry), cell)
}

/// The proxy endpoint a request goes to, if it goes to one.
fn proxied<B>(req: &Request<B>) -> Option<Inbound> {
    (req.method() == Method::POST)
        .then(|| Inbound::at(req.uri().path()))
        .flatten()
}

/// A header's value as text, when it has one. A client sends the same value with every
/// request: the one `last` holds is handed out again when it is the same, instead of a copy.
fn header_text(
    value: Option<&HeaderValue>,
    last: &'static LocalKey<RefCell<Option<Arc<str>>>>,
) -> Option<Arc<str>> {
    let value = value.filter(|v| !v.is_empty())?;
    last.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return value.to_str().ok().map(Arc::from);
        };
        if let Some(known) = last.as_ref().filter(|k| k.as_bytes() == value.as_bytes()) {
            return Some(known.clone());
        }
        let text: Arc<str> = Arc::from(value.to_str().ok()?);
        *last = Some(text.clone());
        Some(text)
    })
}

impl Entry {
    /// The request was refused before reaching the request path: it gets a line, not a row.
    pub fn refused(&mut self) {
        self.row = None;
    }

    /// Notes the answer's headers (whether it is a stream).
    pub fn answered(&mut self, headers: &HeaderMap) {
        if let Some(row) = &mut self.row {
            row.streamed = headers
                .get(header::CONTENT_TYPE)
                .is_some_and(|ct| ct.as_bytes().starts_with(b"text/event-stream"));
        }
    }

    /// Notes that the answer's body began to go out (the first time only).
    pub fn body_began(&mut self) {
        if self.first_byte.is_none() {
            self.first_byte = Some(Instant::now());
        }
    }

    /// Writes the line and hands `history` (the sink the entry was started with) its row, for
    /// an answer with `status` that has ended.
    pub fn finish(self, status: u16, history: &Sink) {
        let f: LogFields = self.cell.take();
        let duration_ms = millis(self.start.elapsed());
        if let Some(line) = &self.line {
            tracing::info!(
                target: "bitrouter::access",
                method = %line.method,
                path = %line.path,
                model = %f.model.as_deref().unwrap_or("-"),
                provider = %f.provider.as_deref().unwrap_or("-"),
                account = %f.account.as_deref().unwrap_or("-"),
                status,
                latency_ms = duration_ms,
                input_tokens = f.tokens.input,
                output_tokens = f.tokens.output,
                cached_tokens = f.tokens.cached,
                error = f.error.as_deref(),
                "request"
            );
        }
        let Some(row) = self.row else {
            return;
        };
        let ttfb_ms = self
            .first_byte
            .map(|t| millis(t.duration_since(self.start)));
        history.request(RequestRecord {
            at_ms: row.at_ms,
            user_agent: row.user_agent,
            originator: row.originator,
            endpoint: row.endpoint,
            model_asked: f.model,
            provider: f.provider,
            model: f.upstream_model,
            account: f.account,
            tries: f.tries,
            failovers: f.failovers,
            status,
            error_code: f.error,
            error_message: f.error_message,
            ttfb_ms,
            duration_ms,
            tokens: f.tokens,
            streamed: row.streamed,
        });
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static LAST: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
    }

    #[test]
    fn a_repeated_header_value_is_shared_and_a_new_one_copied() {
        let ua = |v: &'static str| header_text(Some(&HeaderValue::from_static(v)), &LAST);
        let first = ua("OpenAI/Python 3.63.0").unwrap();
        let again = ua("OpenAI/Python 3.63.0").unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = ua("opencode/1.18.33").unwrap();
        assert_eq!(&*other, "opencode/1.18.33");
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(
            &*ua("OpenAI/Python 3.63.0").unwrap(),
            "OpenAI/Python 3.63.0"
        );
        // No value, an empty one or one that is not text: nothing.
        assert_eq!(header_text(None, &LAST), None);
        assert_eq!(ua(""), None);
        let binary = HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap();
        assert_eq!(header_text(Some(&binary), &LAST), None);
    }
}
