//! Server-sent events: an incremental parser for upstream bytes and a writer for client events.
//!
//! The parser follows the WHATWG event-stream rules that matter here: lines end in LF, CRLF or
//! CR; `data` lines of one event are joined with `\n`; lines starting with `:` are comments; a
//! leading byte-order mark is skipped; `id` and `retry` are ignored. Bytes may be split anywhere,
//! including inside a UTF-8 sequence or a CRLF pair, because lines are decoded only once whole.
//! Work is linear in the input, and only the current incomplete event is buffered, bounded by a
//! size limit.

/// The default limit on one event's size: 16 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

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
}

/// Formats one event for the wire: `event: X\n` (when named), one `data: ` line per line of
/// `data`, and the blank line that ends it. Line breaks in `event` are removed so the frame stays
/// well formed.
#[must_use]
pub fn format_event(event: Option<&str>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(name) = event {
        out.push_str("event: ");
        out.extend(name.chars().filter(|c| *c != '\n' && *c != '\r'));
        out.push('\n');
    }
    let normalized = data.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Why the parser gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One event grew past the limit; the stream should be abandoned.
    #[error("server-sent event exceeds {limit} bytes")]
    EventTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// An incremental event-stream parser. After an error it keeps returning that error.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the current line, not yet terminated.
    line: Vec<u8>,
    /// The `event:` name of the event being built.
    event: Option<String>,
    /// The joined `data:` lines of the event being built.
    data: String,
    /// Whether the event being built has had a `data` line (an empty one counts).
    has_data: bool,
    /// Bytes of complete lines in the event being built.
    event_bytes: usize,
    /// The limit on `event_bytes` plus the current line.
    max_event_bytes: usize,
    /// The previous chunk ended in CR, so a leading LF in the next one ends no new line.
    after_cr: bool,
    /// No line has been completed yet (a BOM may start the first one).
    at_start: bool,
    /// The error returned once, and then forever.
    failed: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new()
    }
}

impl SseParser {
    /// A parser with the default event-size limit.
    #[must_use]
    pub fn new() -> Self {
        SseParser::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser that fails when one event exceeds `max_event_bytes` (line terminators included).
    #[must_use]
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        SseParser {
            line: Vec::new(),
            event: None,
            data: String::new(),
            has_data: false,
            event_bytes: 0,
            max_event_bytes,
            after_cr: false,
            at_start: true,
            failed: None,
        }
    }

    /// Feeds the next chunk and returns the events it completed, in order.
    ///
    /// # Errors
    ///
    /// [`SseError::EventTooLarge`] when the event being built exceeds the limit.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let mut events = Vec::new();
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.line.extend_from_slice(&rest[..end]);
            self.check_size(self.line.len() + 1)?;
            self.end_line(&mut events);
            let is_crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
            if rest[end] == b'\r' && end + 1 == rest.len() {
                self.after_cr = true;
            }
            rest = &rest[end + if is_crlf { 2 } else { 1 }..];
        }
        self.line.extend_from_slice(rest);
        self.check_size(self.line.len())?;
        Ok(events)
    }

    /// Ends the stream. Returns the last event when its lines were complete but the blank line
    /// that should end it never came; an unterminated last line is discarded.
    #[must_use]
    pub fn finish(mut self) -> Option<SseEvent> {
        if self.failed.is_some() || !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event: self.event.take(),
            data: std::mem::take(&mut self.data),
        })
    }

    /// Fails when the current event plus `pending` more bytes would exceed the limit.
    fn check_size(&mut self, pending: usize) -> Result<(), SseError> {
        if self.event_bytes.saturating_add(pending) <= self.max_event_bytes {
            return Ok(());
        }
        let err = SseError::EventTooLarge {
            limit: self.max_event_bytes,
        };
        self.failed = Some(err.clone());
        self.line = Vec::new();
        self.data = String::new();
        Err(err)
    }

    /// Processes the complete line in `self.line`, pushing an event when it is a blank line.
    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let bytes = std::mem::take(&mut self.line);
        self.event_bytes += bytes.len() + 1;
        let decoded = String::from_utf8_lossy(&bytes);
        let mut line: &str = &decoded;
        if self.at_start {
            self.at_start = false;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = (!value.is_empty()).then(|| value.to_owned()),
            _ => {}
        }
    }

    /// Ends the event being built; it is pushed only if it had data (as the standard says).
    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let event = self.event.take();
        self.event_bytes = 0;
        if !std::mem::take(&mut self.has_data) {
            self.data.clear();
            return;
        }
        events.push(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use proptest::prelude::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(parser.feed(chunk).unwrap());
        }
        events.extend(parser.finish());
        events
    }

    const SAMPLE: &str = "\u{feff}: comment\r\nevent: response.created\r\ndata: {\"a\":\"é😀\"}\r\n\r\n\
        event: multi\ndata: line one\ndata:line two\ndata\n\n\
        id: 7\nretry: 100\ndata: [DONE]\r\r\
        event: no-data\n\n\
        data: last\n\n";

    fn sample_events() -> Vec<SseEvent> {
        vec![
            SseEvent::named("response.created", "{\"a\":\"é😀\"}"),
            SseEvent::named("multi", "line one\nline two\n"),
            SseEvent::data("[DONE]"),
            SseEvent::data("last"),
        ]
    }

    #[test]
    fn parser_reads_whole_input() {
        assert_eq!(parse_all(&[SAMPLE.as_bytes()]), sample_events());
    }

    #[test]
    fn parser_handles_a_split_at_every_byte_offset() {
        let bytes = SAMPLE.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(
                parse_all(&[&bytes[..cut], &bytes[cut..]]),
                sample_events(),
                "split at {cut}"
            );
        }
    }

    #[test]
    fn parser_handles_one_byte_chunks() {
        let chunks: Vec<&[u8]> = SAMPLE.as_bytes().chunks(1).collect();
        assert_eq!(parse_all(&chunks), sample_events());
    }

    #[test]
    fn parser_splits_every_fixture_at_every_offset() {
        for (name, text) in crate::translate::fixtures::ALL {
            let bytes = text.as_bytes();
            let whole = parse_all(&[bytes]);
            assert!(!whole.is_empty(), "{name}");
            for cut in 0..=bytes.len() {
                assert_eq!(
                    parse_all(&[&bytes[..cut], &bytes[cut..]]),
                    whole,
                    "{name} at {cut}"
                );
            }
        }
    }

    #[test]
    fn parser_treats_cr_then_lf_in_next_chunk_as_one_line_end() {
        let events = parse_all(&[b"data: a\r", b"\n\r", b"\ndata: b\n\n"]);
        assert_eq!(events, vec![SseEvent::data("a"), SseEvent::data("b")]);
    }

    #[test]
    fn parser_replaces_invalid_utf8() {
        let events = parse_all(&[b"data: a\xffb\n\n"]);
        assert_eq!(events, vec![SseEvent::data("a\u{fffd}b")]);
    }

    #[test]
    fn parser_finish_returns_event_missing_its_blank_line() {
        assert_eq!(parse_all(&[b"data: x\n"]), vec![SseEvent::data("x")]);
        assert_eq!(
            parse_all(&[b"data: x\ndata: cut"]),
            vec![SseEvent::data("x")]
        );
        assert_eq!(parse_all(&[b"data: cut"]), vec![]);
    }

    #[test]
    fn parser_refuses_an_oversized_event_and_stays_failed() {
        let mut parser = SseParser::with_max_event_bytes(16);
        assert_eq!(parser.feed(b"data: 12345\n").unwrap(), vec![]);
        let err = parser.feed(b"data: 67890\n").unwrap_err();
        assert_eq!(err, SseError::EventTooLarge { limit: 16 });
        assert_eq!(parser.feed(b"\n").unwrap_err(), err);
        assert_eq!(parser.finish(), None);
    }

    #[test]
    fn parser_refuses_an_oversized_unterminated_line() {
        let mut parser = SseParser::with_max_event_bytes(8);
        assert!(parser.feed(b"data: 12").is_ok());
        assert!(parser.feed(b"3").is_err());
    }

    #[test]
    fn parser_size_limit_is_per_event() {
        let mut parser = SseParser::with_max_event_bytes(10);
        for _ in 0..100 {
            assert_eq!(
                parser.feed(b"data: 1\n\n").unwrap(),
                vec![SseEvent::data("1")]
            );
        }
    }

    #[test]
    fn format_event_writes_named_and_multiline_events() {
        assert_eq!(
            format_event(Some("ping"), "{}"),
            "event: ping\ndata: {}\n\n"
        );
        assert_eq!(format_event(None, "[DONE]"), "data: [DONE]\n\n");
        assert_eq!(
            format_event(None, "a\nb\r\nc"),
            "data: a\ndata: b\ndata: c\n\n"
        );
        assert_eq!(format_event(Some("x\ny"), ""), "event: xy\ndata: \n\n");
    }

    fn arb_event() -> impl Strategy<Value = SseEvent> {
        let name = proptest::option::of("[a-z._]{1,12}");
        let data = proptest::collection::vec("[^\r\n]{0,8}", 1..4).prop_map(|l| l.join("\n"));
        (name, data).prop_map(|(event, data)| SseEvent { event, data })
    }

    proptest! {
        #[test]
        fn parser_reads_back_what_the_writer_wrote_under_any_chunking(
            events in proptest::collection::vec(arb_event(), 0..6),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
            crlf in any::<bool>(),
        ) {
            let mut wire: String = events.iter().map(SseEvent::to_wire).collect();
            if crlf {
                wire = wire.replace('\n', "\r\n");
            }
            let bytes = wire.as_bytes();
            let mut offsets: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            offsets.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for offset in offsets {
                chunks.push(&bytes[start..offset]);
                start = offset;
            }
            chunks.push(&bytes[start..]);
            prop_assert_eq!(parse_all(&chunks), events);
        }
    }
}
