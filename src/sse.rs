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
        match memchr::memchr2(b'\r', b'\n', rest.as_bytes()) {
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

/// One framed block of a stream: its exact bytes, blank line included, with where its fields
/// lie (found once, when the block is framed). Comment-only blocks (`: keepalive`) hold no
/// event, nor do unframed blocks (bytes passed through after an oversized event, or the
/// unfinished rest of a stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    raw: Bytes,
    /// The last `event:` value, as a range of `raw`.
    name: Option<Span>,
    /// The `data:` values.
    data: Data,
}

/// A range of a block's bytes.
type Span = (usize, usize);

/// Where a block's `data:` lines are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Data {
    /// None: the block is no event.
    #[default]
    None,
    /// One line (the usual case: read without copying).
    One(Span),
    /// Several lines, joined with `\n` when read.
    Many(Vec<Span>),
}

/// The fields of a block being read: where its last `event:` value and its `data:` values lie.
#[derive(Debug, Default)]
struct Fields {
    name: Option<Span>,
    data: Data,
}

impl Fields {
    /// Notes one complete line of the block (without its line end), which starts at `start`.
    fn note(&mut self, start: usize, line: &[u8]) {
        let (start, line) = match line.strip_prefix(BOM.as_bytes()) {
            Some(rest) => (start + BOM.len(), rest),
            None => (start, line),
        };
        if line.is_empty() || line[0] == b':' {
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let skip = usize::from(line.get(i + 1) == Some(&b' '));
                (&line[..i], start + i + 1 + skip)
            }
            None => (line, start + line.len()),
        };
        let span = (value, start + line.len());
        match field {
            b"event" => self.name = (span.0 < span.1).then_some(span),
            b"data" => {
                self.data = match std::mem::take(&mut self.data) {
                    Data::None => Data::One(span),
                    Data::One(first) => Data::Many(vec![first, span]),
                    Data::Many(mut all) => {
                        all.push(span);
                        Data::Many(all)
                    }
                };
            }
            _ => {}
        }
    }

    /// The block of `raw`, with the fields noted in it (taken: the next block starts afresh).
    fn block(&mut self, raw: Bytes) -> Block {
        let Fields { name, data } = std::mem::take(self);
        Block { raw, name, data }
    }
}

impl Block {
    /// A framed block; `complete` says whether its last line ended (a stream's unfinished rest
    /// may stop mid-line, and that line is not part of any event).
    fn framed(raw: Bytes, complete: bool) -> Self {
        let mut fields = Fields::default();
        let mut lines = Lines { rest: &raw, at: 0 };
        while let Some((start, line, terminated)) = lines.next_line() {
            if !terminated && !complete {
                break;
            }
            fields.note(start, line);
        }
        fields.block(raw)
    }

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

    /// Whether the block holds an event (it has `data`).
    #[must_use]
    pub fn is_event(&self) -> bool {
        self.data != Data::None
    }

    /// The `event:` name, without copying (the last one wins, as in the standard); `None` when
    /// absent or not UTF-8.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        let (start, end) = self.name?;
        std::str::from_utf8(&self.raw[start..end]).ok()
    }

    /// The `event:` name's bytes, as received (the last one wins); `None` when absent.
    #[must_use]
    pub fn name_bytes(&self) -> Option<&[u8]> {
        let (start, end) = self.name?;
        Some(&self.raw[start..end])
    }

    /// The `data:` lines joined with `\n`, without copying when there is one; `None` when the
    /// block has no data (and so is no event). Bytes that are not UTF-8 become U+FFFD.
    #[must_use]
    pub fn data(&self) -> Option<Cow<'_, str>> {
        match &self.data {
            Data::None => None,
            Data::One((start, end)) => Some(String::from_utf8_lossy(&self.raw[*start..*end])),
            Data::Many(spans) => {
                let mut joined = String::new();
                for (i, (start, end)) in spans.iter().enumerate() {
                    if i > 0 {
                        joined.push('\n');
                    }
                    joined.push_str(&String::from_utf8_lossy(&self.raw[*start..*end]));
                }
                Some(Cow::Owned(joined))
            }
        }
    }

    /// The `data:` lines as bytes, without copying when there is one (joined with `\n` when
    /// there are several); `None` when the block has no data.
    #[must_use]
    pub fn data_bytes(&self) -> Option<Bytes> {
        match &self.data {
            Data::None => None,
            Data::One((start, end)) => Some(self.raw.slice(*start..*end)),
            Data::Many(_) => self.data().map(|d| Bytes::from(d.into_owned())),
        }
    }

    /// Where the one `data:` value lies in [`Block::raw`]; `None` when the block has no data or
    /// several `data:` lines.
    #[must_use]
    pub fn data_range(&self) -> Option<std::ops::Range<usize>> {
        match self.data {
            Data::One((start, end)) => Some(start..end),
            Data::None | Data::Many(_) => None,
        }
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
}

/// Lines of a block, ending in LF, CRLF or CR.
struct Lines<'a> {
    rest: &'a [u8],
    /// Where `rest` starts in the block.
    at: usize,
}

impl<'a> Lines<'a> {
    /// The next line with its offset, and whether a line end followed it.
    fn next_line(&mut self) -> Option<(usize, &'a [u8], bool)> {
        if self.rest.is_empty() {
            return None;
        }
        let start = self.at;
        match memchr::memchr2(b'\n', b'\r', self.rest) {
            Some(i) => {
                let line = &self.rest[..i];
                let skip = if self.rest[i] == b'\r' && self.rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                self.rest = &self.rest[i + skip..];
                self.at += i + skip;
                Some((start, line, true))
            }
            None => {
                let line = self.rest;
                self.at += line.len();
                self.rest = &[];
                Some((start, line, false))
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
    /// Where the line being scanned starts in `buffer`.
    line_start: usize,
    /// The fields of the block being read (`buffer` starts with it), noted line by line as
    /// the scan finds each line's end, so a block is read once.
    fields: Fields,
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
            line_start: 0,
            fields: Fields::default(),
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
        // Room for the events of a usual chunk: growing from empty reallocated twice for a
        // short answer that came in one read.
        let mut blocks = Vec::with_capacity(8);
        let mut i = self.scanned;
        while i < self.buffer.len() {
            if std::mem::take(&mut self.after_cr) && self.buffer[i] == b'\n' {
                // The LF of a CRLF: the line already ended at the CR.
                i += 1;
                self.line_start = i;
                continue;
            }
            // Jump to the next line end; a line with content is not a blank line.
            let Some(at) = memchr::memchr2(b'\n', b'\r', &self.buffer[i..]) else {
                self.at_line_start = false;
                i = self.buffer.len();
                break;
            };
            let end = i + at;
            if at > 0 {
                self.at_line_start = false;
            }
            let byte = self.buffer[end];
            i = end + 1;
            self.after_cr = byte == b'\r';
            if !self.at_line_start {
                self.at_line_start = true;
                self.fields
                    .note(self.line_start, &self.buffer[self.line_start..end]);
                self.line_start = i;
                continue;
            }
            // A blank line: the block ends here, with the LF of a CRLF when it is already in.
            if self.after_cr && self.buffer.get(i) == Some(&b'\n') {
                self.after_cr = false;
                i += 1;
            }
            blocks.push(self.fields.block(self.buffer.split_to(i).freeze()));
            self.line_start = 0;
            i = 0;
        }
        self.scanned = i;
        if self.buffer.len() > self.max_event_bytes {
            self.overflowed = true;
            self.scanned = 0;
            self.line_start = 0;
            self.fields = Fields::default();
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
        self.line_start = 0;
        // The rest is framed anew: its last line may not have ended.
        self.fields = Fields::default();
        let raw = self.buffer.split().freeze();
        Some(if self.overflowed {
            unframed(raw)
        } else {
            Block::framed(raw, false)
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
        name: None,
        data: Data::None,
    }
}

#[cfg(test)]
mod tests;
