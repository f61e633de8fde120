use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;

fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut reader = SseReader::new();
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(reader.events(chunk));
    }
    events.extend(reader.finish());
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
fn reader_reads_whole_input() {
    assert_eq!(parse_all(&[SAMPLE.as_bytes()]), sample_events());
}

#[test]
fn reader_handles_a_split_at_every_byte_offset() {
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
fn reader_handles_one_byte_chunks() {
    let chunks: Vec<&[u8]> = SAMPLE.as_bytes().chunks(1).collect();
    assert_eq!(parse_all(&chunks), sample_events());
}

#[test]
fn blocks_keep_every_byte_under_any_split() {
    let bytes = SAMPLE.as_bytes();
    for cut in 0..=bytes.len() {
        let mut reader = SseReader::new();
        let mut raw = Vec::new();
        for chunk in [&bytes[..cut], &bytes[cut..]] {
            for block in reader.feed(chunk) {
                raw.extend_from_slice(block.raw());
            }
        }
        if let Some(rest) = reader.take_rest() {
            raw.extend_from_slice(rest.raw());
        }
        assert_eq!(raw, bytes, "split at {cut}");
    }
}

#[test]
fn fields_noted_while_scanning_are_the_fields_of_the_whole_block() {
    let mixed = "\u{feff}event: a\r\ndata: 1\rdata:2\n: note\nid: 7\nevent\n\n\
                 data\r\n\r\nevent: b\ndata: x\n\n";
    let texts = crate::translate::fixtures::ALL
        .iter()
        .map(|(_, text)| *text)
        .chain([SAMPLE, mixed]);
    for text in texts {
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let mut reader = SseReader::new();
            for chunk in [&bytes[..cut], &bytes[cut..]] {
                for block in reader.feed(chunk) {
                    assert_eq!(block, Block::framed(block.raw().clone(), true), "at {cut}");
                }
            }
        }
    }
}

#[test]
fn reader_splits_every_fixture_at_every_offset() {
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
fn reader_treats_cr_then_lf_in_next_chunk_as_one_line_end() {
    let events = parse_all(&[b"data: a\r", b"\n\r", b"\ndata: b\n\n"]);
    assert_eq!(events, vec![SseEvent::data("a"), SseEvent::data("b")]);
}

#[test]
fn reader_replaces_invalid_utf8() {
    let events = parse_all(&[b"data: a\xffb\n\n"]);
    assert_eq!(events, vec![SseEvent::data("a\u{fffd}b")]);
}

#[test]
fn finish_returns_event_missing_its_blank_line() {
    assert_eq!(parse_all(&[b"data: x\n"]), vec![SseEvent::data("x")]);
    assert_eq!(
        parse_all(&[b"data: x\ndata: cut"]),
        vec![SseEvent::data("x")]
    );
    assert_eq!(parse_all(&[b"data: cut"]), vec![]);
}

#[test]
fn events_split_across_chunks_are_reassembled() {
    let mut r = SseReader::new();
    assert!(
        r.events(b"event: response.created\ndata: {\"type\":\"resp")
            .is_empty()
    );
    let events = r.events(b"onse.created\"}\n\n: comment\n\ndata: a\ndata: b\r\n\r\n");
    assert_eq!(
        events,
        vec![
            SseEvent::named("response.created", "{\"type\":\"response.created\"}"),
            SseEvent::data("a\nb"),
        ]
    );
    assert_eq!(events[0].kind().as_deref(), Some("response.created"));
}

#[test]
fn kind_falls_back_to_the_event_name() {
    let e = SseEvent::named("keepalive", "");
    assert_eq!(e.kind().as_deref(), Some("keepalive"));
}

#[test]
fn blocks_keep_their_exact_bytes_and_comments() {
    let mut r = SseReader::new();
    let blocks = r.feed(b": keepalive\n\nevent: a\ndata: 1\n\nevent: b\nda");
    assert_eq!(blocks.len(), 2);
    assert_eq!(&blocks[0].raw()[..], b": keepalive\n\n");
    assert_eq!(blocks[0].event(), None);
    assert_eq!(&blocks[1].raw()[..], b"event: a\ndata: 1\n\n");
    assert_eq!(blocks[1].name(), Some("a"));
    let blocks = r.feed(b"ta: 2\n\n");
    assert_eq!(&blocks[0].raw()[..], b"event: b\ndata: 2\n\n");
    assert_eq!(blocks[0].data().as_deref(), Some("2"));
    assert!(r.take_rest().is_none());
}

#[test]
fn an_oversized_event_ends_framing_and_passes_through() {
    let mut reader = SseReader::with_max_event_bytes(16);
    assert_eq!(reader.events(b"data: 12345\n"), vec![]);
    let blocks = reader.feed(b"data: 67890\n");
    assert!(reader.overflowed());
    assert_eq!(blocks.len(), 1);
    assert_eq!(&blocks[0].raw()[..], b"data: 12345\ndata: 67890\n");
    assert_eq!(blocks[0].event(), None);
    let blocks = reader.feed(b"\n");
    assert_eq!(&blocks[0].raw()[..], b"\n");
    assert_eq!(blocks[0].event(), None);
    assert_eq!(reader.finish(), None);
}

#[test]
fn the_size_limit_is_per_event() {
    let mut reader = SseReader::with_max_event_bytes(10);
    for _ in 0..100 {
        assert_eq!(reader.events(b"data: 1\n\n"), vec![SseEvent::data("1")]);
    }
    assert!(!reader.overflowed());
}

#[test]
fn format_event_writes_named_and_multiline_events() {
    assert_eq!(
        format_event(Some("ping"), "{}"),
        "event: ping\ndata: {}\n\n"
    );
    assert_eq!(format_event(None, "[DONE]"), "data: [DONE]\n\n");
    assert_eq!(
        format_event(None, "a\nb\r\nc\rd"),
        "data: a\ndata: b\ndata: c\ndata: d\n\n"
    );
    assert_eq!(format_event(Some("x\ny"), ""), "event: xy\ndata: \n\n");
}

#[test]
fn format_round_trips() {
    let wire = format_event(Some("error"), "{\"a\":1}");
    assert_eq!(wire, "event: error\ndata: {\"a\":1}\n\n");
    let mut r = SseReader::new();
    assert_eq!(r.events(wire.as_bytes())[0].event.as_deref(), Some("error"));
}

fn arb_event() -> impl Strategy<Value = SseEvent> {
    let name = proptest::option::of("[a-z._]{1,12}");
    let data = proptest::collection::vec("[^\r\n]{0,8}", 1..4).prop_map(|l| l.join("\n"));
    (name, data).prop_map(|(event, data)| SseEvent { event, data })
}

proptest! {
    #[test]
    fn reader_reads_back_what_the_writer_wrote_under_any_chunking(
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
