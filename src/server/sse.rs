//! A minimal incremental Server-Sent Events reader (spec §7.1 framing): bytes in, complete events
//! out. The server only looks at events (to spot a usage limit before committing to a stream,
//! to count tokens, to aggregate for non-streaming clients); the bytes it forwards are the
//! upstream's own, untouched.
//!
//! Overlaps `translate::sse::SseParser`; the integrator may replace this with it.

/// The largest event the reader buffers before giving up on framing (the backend can send the
/// whole answer as one delta, so this is generous).
const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

/// One event: its `event:` name (if any) and its `data:` lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field.
    pub event: Option<String>,
    /// The `data:` payload.
    pub data: String,
}

impl SseEvent {
    /// The event's type: the JSON `type` of its data when present (the backend repeats it
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

/// One framed block of the stream: its exact bytes (separator included) and the event it holds
/// (`None` for comment-only blocks such as `: keepalive`, and for raw pass-through after an
/// oversized event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The bytes as received.
    pub raw: bytes::Bytes,
    /// The parsed event.
    pub event: Option<SseEvent>,
}

/// Accumulates bytes and yields complete blocks.
#[derive(Debug, Default)]
pub struct SseReader {
    buffer: Vec<u8>,
    overflowed: bool,
}

impl SseReader {
    /// An empty reader.
    #[must_use]
    pub fn new() -> Self {
        SseReader::default()
    }

    /// Whether an event grew past the size limit; from then on bytes pass through unparsed.
    #[must_use]
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Feeds bytes, returning the events they complete.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.feed_blocks(chunk)
            .into_iter()
            .filter_map(|b| b.event)
            .collect()
    }

    /// Feeds bytes, returning the blocks they complete.
    pub fn feed_blocks(&mut self, chunk: &[u8]) -> Vec<Block> {
        if self.overflowed {
            return vec![Block {
                raw: bytes::Bytes::copy_from_slice(chunk),
                event: None,
            }];
        }
        self.buffer.extend_from_slice(chunk);
        let mut blocks = Vec::new();
        let mut start = 0;
        while let Some((end, sep)) = find_boundary(&self.buffer[start..]) {
            let block = &self.buffer[start..start + end];
            blocks.push(Block {
                raw: bytes::Bytes::copy_from_slice(&self.buffer[start..start + end + sep]),
                event: parse_block(block),
            });
            start += end + sep;
        }
        self.buffer.drain(..start);
        if self.buffer.len() > MAX_EVENT_BYTES {
            self.overflowed = true;
            blocks.push(Block {
                raw: bytes::Bytes::from(std::mem::take(&mut self.buffer)),
                event: None,
            });
        }
        blocks
    }

    /// The last event when the stream ended without a blank line after it.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let block = std::mem::take(&mut self.buffer);
        parse_block(&block)
    }

    /// The bytes of an unfinished block, when the stream ended without a blank line after it.
    pub fn take_rest(&mut self) -> Option<Block> {
        if self.buffer.is_empty() {
            return None;
        }
        let raw = std::mem::take(&mut self.buffer);
        let event = parse_block(&raw);
        Some(Block {
            raw: bytes::Bytes::from(raw),
            event,
        })
    }
}

/// The end of the first event block and the length of the blank-line separator after it.
fn find_boundary(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

fn parse_block(block: &[u8]) -> Option<SseEvent> {
    let text = String::from_utf8_lossy(block);
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if event.is_none() && data.is_empty() {
        return None;
    }
    Some(SseEvent {
        event,
        data: data.join("\n"),
    })
}

/// One event in wire form.
#[must_use]
pub fn format_event(event: Option<&str>, data: &str) -> String {
    let mut out = String::new();
    if let Some(name) = event {
        out.push_str("event: ");
        out.push_str(name);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut r = SseReader::new();
        assert!(
            r.feed(b"event: response.created\ndata: {\"type\":\"resp")
                .is_empty()
        );
        let events = r.feed(b"onse.created\"}\n\n: comment\n\ndata: a\ndata: b\r\n\r\n");
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("response.created".into()),
                    data: "{\"type\":\"response.created\"}".into()
                },
                SseEvent {
                    event: None,
                    data: "a\nb".into()
                }
            ]
        );
        assert_eq!(events[0].kind().as_deref(), Some("response.created"));
    }

    #[test]
    fn kind_falls_back_to_the_event_name() {
        let e = SseEvent {
            event: Some("keepalive".into()),
            data: String::new(),
        };
        assert_eq!(e.kind().as_deref(), Some("keepalive"));
    }

    #[test]
    fn trailing_event_without_blank_line_is_kept() {
        let mut r = SseReader::new();
        assert!(r.feed(b"data: x").is_empty());
        assert_eq!(r.finish().map(|e| e.data), Some("x".to_owned()));
    }

    #[test]
    fn blocks_keep_their_exact_bytes_and_comments() {
        let mut r = SseReader::new();
        let blocks = r.feed_blocks(b": keepalive\n\nevent: a\ndata: 1\n\nevent: b\nda");
        assert_eq!(blocks.len(), 2);
        assert_eq!(&blocks[0].raw[..], b": keepalive\n\n");
        assert_eq!(blocks[0].event, None);
        assert_eq!(&blocks[1].raw[..], b"event: a\ndata: 1\n\n");
        let blocks = r.feed_blocks(b"ta: 2\n\n");
        assert_eq!(&blocks[0].raw[..], b"event: b\ndata: 2\n\n");
        assert_eq!(blocks[0].event.as_ref().unwrap().data, "2");
        assert!(r.take_rest().is_none());
    }

    #[test]
    fn format_round_trips() {
        let wire = format_event(Some("error"), "{\"a\":1}");
        assert_eq!(wire, "event: error\ndata: {\"a\":1}\n\n");
        let mut r = SseReader::new();
        assert_eq!(r.feed(wire.as_bytes())[0].event.as_deref(), Some("error"));
    }
}
