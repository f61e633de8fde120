//! What is learned about one request on its way, for its access-log line: the model asked for,
//! who served it, token counts and a mid-stream error code. The HTTP face creates one
//! [`LogCell`] per request and writes the line when the answer ends; the request path fills it
//! in.

use std::sync::{Arc, Mutex};

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
    /// An error code if the answer failed midway (e.g. `upstream_disconnected`).
    pub error: Option<String>,
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
