//! What is learned about one request on its way, for its access-log line: the model asked for,
//! who served it, token counts (input, output, and input served from the prompt cache) and a
//! mid-stream error code. The HTTP face creates one
//! [`LogCell`] per request and writes the line when the answer ends; the request path fills it
//! in.

use std::sync::{Arc, Mutex};

use crate::jsonscan;

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

    /// [`LogFields::note_usage`] on the `usage` object's JSON text, read in place.
    pub fn note_raw_usage(&mut self, usage: &[u8]) {
        let count = |k: &str| jsonscan::field(usage, k).and_then(jsonscan::unsigned);
        self.input_tokens = count("input_tokens");
        self.output_tokens = count("output_tokens");
        self.cached_tokens = jsonscan::field(usage, "input_tokens_details")
            .and_then(|details| jsonscan::field(details, "cached_tokens"))
            .and_then(jsonscan::unsigned);
    }
}

/// A request's log fields, shared between the HTTP face and the request path. A disabled cell
/// (when nothing would read the fields) ignores updates, so the request path gathers nothing.
#[derive(Debug, Clone)]
pub struct LogCell(Option<Arc<Mutex<LogFields>>>);

impl Default for LogCell {
    /// A cell that keeps what it is told.
    fn default() -> Self {
        LogCell(Some(Arc::default()))
    }
}

impl LogCell {
    /// A cell that ignores updates.
    #[must_use]
    pub fn disabled() -> Self {
        LogCell(None)
    }

    /// Updates the fields (nothing happens on a disabled cell).
    pub fn update(&self, f: impl FnOnce(&mut LogFields)) {
        if let Some(cell) = &self.0 {
            f(&mut cell
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner));
        }
    }

    /// A copy of the fields as they are now (empty for a disabled cell).
    #[must_use]
    pub fn snapshot(&self) -> LogFields {
        self.0.as_ref().map_or_else(LogFields::default, |cell| {
            cell.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        })
    }
}
