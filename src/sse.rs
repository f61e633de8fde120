//! Server-sent events: the one reader and writer, shared by the relay, the translators and the
//! tests.
//!
//! [`SseReader`] takes bytes split anywhere and yields complete [`Block`]s: the exact bytes of
//! one event with the blank line that ends it, so the relay can pass it on untouched, and its
//! fields, parsed only when asked. Framing follows the WHATWG event-stream rules that matter
//! here: lines end in LF, CRLF or CR (a CRLF split across chunks included); a blank line ends an
//! event; `data` lines join with `\n`; lines starting with `:` are comments; a leading
//! byte-order mark is skipped; `id`, `retry` and unknown fields are ignored; an event without
//! `data` is not an event. Work is linear in the input. A block that grows past the size limit
//! ends framing: from then on bytes pass through as unframed blocks that hold no event.
//!
//! [`format_event`] writes one event.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};

/// The default limit on one event's size: 64 MiB (the backend can send a whole answer as one
/// delta).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

/// The UTF-8 byte-order mark, skipped at the start of a stream.
const BOM: &str = "\u{feff}";

/// One complete event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n` (`[DONE]` and other non-JSON data pass through as is).
    pub data: String,
}

impl SseEvent {
    /// An event with a name.
    #[must_use]
    pub fn named(event: impl Into<String>, data: impl Into<String>) -> Self {
        SseEvent {
            event: Some(event.into()),
            data: data.into(),
        }
    }

    /// An event with only data.
    #[must_use]
    pub fn data(data: impl Into<String>) -> Self {
        SseEvent {
            event: None,
            data: data.into(),
        }
    }

    /// The event in wire form, see [`format_event`].
    #[must_use]
    pub fn to_wire(&self) -> String {
        format_event(self.event.as_deref(), &self.data)
    }

    /// The event's type: the JSON `type` of its data when present (the Responses API repeats it
    /// there), else the `event:` name.
    #[must_use]
    pub fn kind(&self) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(&self.data)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
            .or_else(|| self.event.clone())
    }

    /// The data parsed as JSON, if it is JSON.
    #[must_use]
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// Formats one event for the wire: `event: X\n` (when named), one `data: ` line per line of
/// `data`, and the blank line that ends it. Line breaks in `event` are removed so the frame stays
/// well formed.
#[must_use]
pub fn format_event(event: Option<&str>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 32);
    write_event(&mut out, event, data);
    out
}

/// Appends one event in wire form to `out` (see [`format_event`]).
pub fn write_event(out: &mut String, event: Option<&str>, data: &str) {
    if let Some(name) = event {
        out.push_str("event: ");
        out.extend(name.chars().filter(|c| *c != '\n' && *c != '\r'));
        out.push('\n');
    }
    let mut rest = data;
    loop {
        out.push_str("data: ");
        match rest.find(['\r', '\n']) {
            Some(i) => {
                out.push_str(&rest[..i]);
                out.push('\n');
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                out.push_str(rest);
                out.push('\n');
                break;
            }
        }
    }
    out.push('\n');
}

/// One framed block of a stream: its exact bytes, blank line included. Comment-only blocks
/// (`: keepalive`) hold no event, nor do unframed blocks (bytes passed through after an
/// oversized event, or the unfinished rest of a stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    raw: Bytes,
    /// Whether `raw` is one framed event (false: bytes passed through unparsed).
    framed: bool,
    /// Whether the last line is complete (false for the rest of a stream that ended mid-line).
    complete: bool,
}

impl Block {
    /// The bytes as received.
    #[must_use]
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The bytes as received, owned.
    #[must_use]
    pub fn into_raw(self) -> Bytes {
        self.raw
    }

    /// The `event:` name, without copying (the last one wins, as in the standard).
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        let mut name = None;
        for (field, value) in self.fields() {
            if field == b"event" {
                name = std::str::from_utf8(value).ok().filter(|v| !v.is_empty());
            }
        }
        name
    }

    /// The `data:` lines joined with `\n`, without copying when there is one; `None` when the
    /// block has no data (and so is no event).
    #[must_use]
    pub fn data(&self) -> Option<Cow<'_, str>> {
        let mut data: Option<Cow<'_, str>> = None;
        for (field, value) in self.fields() {
            if field != b"data" {
                continue;
            }
            let value = String::from_utf8_lossy(value);
            data = Some(match data {
                None => value,
                Some(mut joined) => {
                    let owned = joined.to_mut();
                    owned.push('\n');
                    owned.push_str(&value);
                    joined
                }
            });
        }
        data
    }

    /// The event this block holds, if any.
    #[must_use]
    pub fn event(&self) -> Option<SseEvent> {
        let data = self.data()?;
        Some(SseEvent {
            event: self.name().map(str::to_owned),
            data: data.into_owned(),
        })
    }

    /// The block's fields as `(name, value)`, comments and empty lines skipped.
    fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let raw: &[u8] = if self.framed { &self.raw } else { &[] };
        let complete = self.complete;
        let mut lines = Lines { rest: raw };
        std::iter::from_fn(move || {
            loop {
                let (line, terminated) = lines.next_line()?;
                if !terminated && !complete {
                    // A line the stream never finished is not part of any event.
                    return None;
                }
                let line = line.strip_prefix(BOM.as_bytes()).unwrap_or(line);
                if line.is_empty() || line[0] == b':' {
                    continue;
                }
                return Some(match line.iter().position(|b| *b == b':') {
                    Some(i) => {
                        let value = &line[i + 1..];
                        (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
                    }
                    None => (line, &[][..]),
                });
            }
        })
    }
}

/// Lines of a block, ending in LF, CRLF or CR.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    /// The next line and whether a line end followed it.
    fn next_line(&mut self) -> Option<(&'a [u8], bool)> {
        if self.rest.is_empty() {
            return None;
        }
        match self.rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            Some(i) => {
                let line = &self.rest[..i];
                let skip = if self.rest[i] == b'\r' && self.rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                self.rest = &self.rest[i + skip..];
                Some((line, true))
            }
            None => {
                let line = self.rest;
                self.rest = &[];
                Some((line, false))
            }
        }
    }
}

/// Accumulates bytes and yields complete blocks.
#[derive(Debug)]
pub struct SseReader {
    /// Bytes not yet part of a yielded block.
    buffer: BytesMut,
    /// How much of `buffer` has been scanned.
    scanned: usize,
    /// The scan is at the start of a line.
    at_line_start: bool,
    /// The last byte scanned was a CR: a following LF belongs to it.
    after_cr: bool,
    /// The largest block framed; bigger ones end framing.
    max_event_bytes: usize,
    /// A block grew past the limit; bytes now pass through unframed.
    overflowed: bool,
}

impl Default for SseReader {
    fn default() -> Self {
        SseReader::new()
    }
}

impl SseReader {
    /// A reader with the default size limit.
    #[must_use]
    pub fn new() -> Self {
        SseReader::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A reader that stops framing when one block exceeds `max_event_bytes`.
    #[must_use]
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        SseReader {
            buffer: BytesMut::new(),
            scanned: 0,
            at_line_start: true,
            after_cr: false,
            max_event_bytes,
            overflowed: false,
        }
    }

    /// Whether a block grew past the size limit; from then on bytes pass through unframed.
    #[must_use]
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Feeds bytes, returning the blocks they complete.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Block> {
        if self.overflowed {
            return if chunk.is_empty() {
                Vec::new()
            } else {
                vec![unframed(Bytes::copy_from_slice(chunk))]
            };
        }
        self.buffer.extend_from_slice(chunk);
        let mut blocks = Vec::new();
        let mut i = self.scanned;
        while i < self.buffer.len() {
            let byte = self.buffer[i];
            i += 1;
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                // The LF of a CRLF: the line already ended at the CR.
                continue;
            }
            if byte != b'\n' && byte != b'\r' {
                self.at_line_start = false;
                continue;
            }
            self.after_cr = byte == b'\r';
            if !self.at_line_start {
                self.at_line_start = true;
                continue;
            }
            // A blank line: the block ends here, with the LF of a CRLF when it is already in.
            if self.after_cr && self.buffer.get(i) == Some(&b'\n') {
                self.after_cr = false;
                i += 1;
            }
            blocks.push(Block {
                raw: self.buffer.split_to(i).freeze(),
                framed: true,
                complete: true,
            });
            i = 0;
        }
        self.scanned = i;
        if self.buffer.len() > self.max_event_bytes {
            self.overflowed = true;
            self.scanned = 0;
            blocks.push(unframed(self.buffer.split().freeze()));
        }
        blocks
    }

    /// Feeds bytes, returning the events they complete.
    pub fn events(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.feed(chunk).iter().filter_map(Block::event).collect()
    }

    /// The unfinished rest when the stream ends: its bytes, and the event its complete lines
    /// hold if the blank line that should end it never came (an unterminated last line is not
    /// part of it).
    pub fn take_rest(&mut self) -> Option<Block> {
        if self.buffer.is_empty() {
            return None;
        }
        self.scanned = 0;
        self.at_line_start = true;
        self.after_cr = false;
        Some(Block {
            raw: self.buffer.split().freeze(),
            framed: !self.overflowed,
            complete: false,
        })
    }

    /// The event of the unfinished rest, see [`SseReader::take_rest`].
    pub fn finish(&mut self) -> Option<SseEvent> {
        self.take_rest().and_then(|b| b.event())
    }
}

fn unframed(raw: Bytes) -> Block {
    Block {
        raw,
        framed: false,
        complete: false,
    }
}

#[cfg(test)]
mod tests;
