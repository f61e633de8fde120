//! The few rewrites SDK stream accumulators need in a Responses stream from the Codex backend
//! (spec §8.5 item 11), and what the relay learns from its events (token usage, whether it is
//! over). See [`Patcher`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::LazyLock;

use bytes::Bytes;

use super::error::ErrorCode;
use super::record::LogCell;
use crate::history::Tokens;
use crate::jsonscan;
use crate::sse::{Block, format_event};

/// Rewrites the few events SDK stream accumulators trip over (spec §8.5 item 11): a `null`
/// `output` in `response.created`/`in_progress` becomes `[]`, and an empty or `null` `output`
/// in the terminal event is rebuilt from the `response.output_item.done` items. Every other
/// block passes byte for byte, and a rewritten one differs only in that value: the events are
/// read in place (no JSON tree is built) and the new value is spliced into the original text.
/// Also notes terminal events and token usage.
pub struct Patcher {
    /// The `item` of each `response.output_item.done`, by output index (arrival order for
    /// items without one): the event's data and where the item lies in it.
    items: BTreeMap<(u64, u64), (Bytes, usize, usize)>,
    unindexed: u64,
    /// A terminal event (a final one, or `error`) was seen.
    pub terminal: bool,
    /// A final event was seen: nothing follows it.
    pub finished: bool,
    /// Where usage and failures are noted.
    pub log: LogCell,
}

/// Finds `"output"` in an event's data (built once: a searcher's set-up costs more than a
/// search through a short event).
static OUTPUT_KEY: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"\"output\""));

/// The kinds of event the relay acts on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `response.created`, `response.in_progress`, `response.queued`.
    Opening,
    /// `response.output_item.done`.
    ItemDone,
    /// `response.completed`, `response.incomplete`, `response.done`.
    Final,
    /// `response.failed`.
    Failed,
    /// `error` (a `response.failed` may still follow).
    Error,
    /// Anything else.
    Other,
}

impl Kind {
    /// The kind an event's name (its bytes: names the relay acts on are ASCII, so no UTF-8
    /// check is needed to tell them) says.
    fn of(name: &[u8]) -> Kind {
        match name {
            b"response.created" | b"response.in_progress" | b"response.queued" => Kind::Opening,
            b"response.output_item.done" => Kind::ItemDone,
            b"response.completed" | b"response.incomplete" | b"response.done" => Kind::Final,
            b"response.failed" => Kind::Failed,
            b"error" => Kind::Error,
            _ => Kind::Other,
        }
    }
}

impl Patcher {
    /// A patcher noting what it sees in `log`.
    pub fn new(log: LogCell) -> Self {
        Patcher {
            items: BTreeMap::new(),
            unindexed: 0,
            terminal: false,
            finished: false,
            log,
        }
    }

    /// The bytes to send for one block.
    pub fn process(&mut self, block: Block) -> Bytes {
        if !block.is_event() {
            return block.into_raw();
        }
        let kind = match block.name_bytes() {
            Some(name) => Kind::of(name),
            // No `event:` line: the type is in the data (rare; parse it then).
            None => match block.event().and_then(|e| e.kind()) {
                Some(kind) => Kind::of(kind.as_bytes()),
                None => return block.into_raw(),
            },
        };
        match kind {
            Kind::Final | Kind::Failed => {
                self.terminal = true;
                self.finished = true;
            }
            Kind::Error => self.terminal = true,
            Kind::Opening | Kind::ItemDone | Kind::Other => {}
        }
        match kind {
            Kind::ItemDone => {
                self.keep_item(&block);
                block.into_raw()
            }
            Kind::Opening => self.patch(block, false),
            Kind::Final => self.patch(block, true),
            Kind::Failed | Kind::Error => {
                self.log.update(|f| {
                    f.error = Some(ErrorCode::UpstreamFailed.as_str().to_owned());
                });
                self.patch(block, true)
            }
            Kind::Other => block.into_raw(),
        }
    }

    /// Keeps an output item for a terminal event that may need it.
    fn keep_item(&mut self, block: &Block) {
        let Some(data) = block.data_bytes() else {
            return;
        };
        let [item, index] = jsonscan::field_ranges(&data, ["item", "output_index"]);
        let Some(item) = item else {
            return;
        };
        let key = match index.and_then(|i| jsonscan::unsigned(&data[i])) {
            Some(i) => (i, 0),
            None => {
                self.unindexed += 1;
                (u64::MAX, self.unindexed)
            }
        };
        self.items.insert(key, (data, item.start, item.end));
    }

    /// `block` with `response.output` fixed, or unchanged when it needs no fix. Terminal events
    /// (`rebuild`) also report their token usage here, from the one read. The new value is
    /// spliced into the block's own bytes (a block with several `data:` lines, which the
    /// backend does not send, is written anew as one event).
    fn patch(&mut self, block: Block, rebuild: bool) -> Bytes {
        let Some(data) = block.data_bytes() else {
            return block.into_raw();
        };
        let single = block.data_range();
        // Most events carry no `output` at all: no need to read them.
        if !rebuild && OUTPUT_KEY.find(&data).is_none() {
            return block.into_raw();
        }
        // The fields are looked for inside `response` without first reading it to its end.
        let Some(response) = jsonscan::field_start(&data, "response") else {
            return block.into_raw();
        };
        let inner = &data[response..];
        let output = if rebuild && self.log.is_enabled() {
            let (output, tokens) = output_and_usage(inner);
            if let Some(tokens) = tokens {
                self.log.update(|f| f.tokens = tokens);
            }
            output
        } else {
            jsonscan::field_range(inner, "output")
        };
        let Some(output) = output else {
            return block.into_raw();
        };
        let value = &inner[output.clone()];
        let needs = value == b"null"
            || (rebuild
                && !self.items.is_empty()
                && jsonscan::items(value).is_some_and(|mut i| i.next().is_none()));
        if !needs {
            return block.into_raw();
        }
        // The stream is over after a terminal event: its items are not needed again.
        let items = if rebuild {
            std::mem::take(&mut self.items)
        } else {
            BTreeMap::new()
        };
        let (from, to) = (response + output.start, response + output.end);
        let raw = block.raw();
        let (head, tail) = match &single {
            Some(range) => (&raw[..range.start], &raw[range.end..]),
            None => (&b""[..], &b""[..]),
        };
        let size = items.values().map(|(_, a, b)| b - a + 1).sum::<usize>();
        let mut out = Vec::with_capacity(raw.len() + size + 2);
        out.extend_from_slice(head);
        out.extend_from_slice(&data[..from]);
        out.push(b'[');
        for (i, (item, a, b)) in items.values().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&item[*a..*b]);
        }
        out.push(b']');
        out.extend_from_slice(&data[to..]);
        out.extend_from_slice(tail);
        if single.is_some() {
            Bytes::from(out)
        } else {
            Bytes::from(format_event(block.name(), &String::from_utf8_lossy(&out)))
        }
    }
}

/// The range of the first `output` of a `response` object and the token counts of its first
/// `usage`, from one walk of its entries that reads `usage` once (and stops once it has both).
fn output_and_usage(response: &[u8]) -> (Option<Range<usize>>, Option<Tokens>) {
    let (mut output, mut tokens, mut usage_read) = (None, None, false);
    let Some(mut entries) = jsonscan::entries(response) else {
        return (None, None);
    };
    while let Some(Ok((key, start))) = entries.next_key() {
        let end = if !usage_read && jsonscan::key_is(key, "usage") {
            usage_read = true;
            let (counts, end) = Tokens::from_usage_at(response, start);
            tokens = counts;
            end
        } else {
            let range = jsonscan::value_at(response, start);
            if output.is_none() && jsonscan::key_is(key, "output") {
                output.clone_from(&range);
            }
            range.map(|r| r.end)
        };
        match end {
            Some(end) if output.is_none() || !usage_read => entries.resume_at(end),
            _ => break,
        }
    }
    (output, tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseReader;

    /// The bytes the patcher sends for `stream`, and the log it kept.
    fn run(stream: &[u8]) -> (Vec<u8>, LogCell) {
        let log = LogCell::default();
        let mut patcher = Patcher::new(log.clone());
        let mut reader = SseReader::new();
        let mut out = Vec::new();
        for block in reader.feed(stream) {
            out.extend_from_slice(&patcher.process(block));
        }
        (out, log)
    }

    const ITEM_1: &str = r#"{"type":"message","id":"m1","content":[{"text":"é, ]}"}]}"#;
    const ITEM_0: &str = r#"{"type":"function_call","arguments":"{\"a\":[1]}"}"#;

    fn done(index: u32, item: &str) -> String {
        format!(
            "event: response.output_item.done\ndata: {{\"type\":\"response.output_item.done\",\"output_index\":{index},\"item\":{item}}}\n\n"
        )
    }

    #[test]
    fn null_and_empty_outputs_are_filled_in_place_and_the_rest_passes_untouched() {
        let created = "event: response.created\r\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"output\":null,\"x\":1}}\r\n\r\n";
        let delta =
            "event: response.output_text.delta\ndata: {\"delta\":\"\\\"output\\\":null\"}\n\n";
        let completed = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\": [ ],\"usage\":{\"input_tokens\":5,\"output_tokens\":2}}}\n\n";
        let stream = [
            created,
            delta,
            &done(1, ITEM_1),
            &done(0, ITEM_0),
            completed,
        ]
        .concat();
        let (out, log) = run(stream.as_bytes());
        let expected = [
            &created.replace("null", "[]"),
            delta,
            &done(1, ITEM_1),
            &done(0, ITEM_0),
            &completed.replace("[ ]", &format!("[{ITEM_0},{ITEM_1}]")),
        ]
        .concat();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        let tokens = log.take().tokens;
        assert_eq!((tokens.input, tokens.output), (Some(5), Some(2)));
    }

    #[test]
    fn an_event_on_several_data_lines_is_written_anew_and_bytes_that_are_not_utf8_pass() {
        let created = "event: response.created\ndata: {\"type\":\"response.created\",\ndata: \"response\":{\"output\":null}}\n\n";
        let odd = b"event: response.output_text.delta\ndata: {\"delta\":\"\xff\"}\n\n";
        // An item that is not UTF-8 reaches the rebuilt output byte for byte.
        let item = b"{\"type\":\"message\",\"content\":[{\"text\":\"\xfe\"}]}";
        let done = [
            &b"event: response.output_item.done\ndata: {\"output_index\":0,\"item\":"[..],
            item,
            b"}\n\n",
        ]
        .concat();
        let completed = b"event: response.completed\ndata: {\"response\":{\"output\":[]}}\n\n";
        let stream = [created.as_bytes(), odd, &done, completed].concat();
        let (out, _) = run(&stream);
        let expected = [
            &b"event: response.created\ndata: {\"type\":\"response.created\",\ndata: \"response\":{\"output\":[]}}\n\n"[..],
            odd,
            &done,
            b"event: response.completed\ndata: {\"response\":{\"output\":[",
            item,
            b"]}}\n\n",
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn usage_is_read_wherever_it_stands_and_output_is_still_filled() {
        // Usage first, then the empty output the stream's items fill.
        let completed = "event: response.completed\ndata: {\"response\":{\"usage\":{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":4}},\"output\":[]}}\n\n";
        let stream = [done(0, ITEM_0), completed.to_owned()].concat();
        let (out, log) = run(stream.as_bytes());
        let filled = completed.replace("[]", &format!("[{ITEM_0}]"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            [done(0, ITEM_0), filled].concat()
        );
        let tokens = log.take().tokens;
        assert_eq!((tokens.input, tokens.cached), (Some(9), Some(4)));
    }

    #[test]
    fn output_and_usage_come_from_one_walk() {
        let response = br#"{"id":"r","output":[{"a":"]"}],"x":{"usage":1},"usage":{"output_tokens":2},"usage":{"output_tokens":3}}"#;
        let (output, tokens) = output_and_usage(response);
        assert_eq!(&response[output.unwrap()], br#"[{"a":"]"}]"#);
        // The first `usage` of the response itself counts, not one nested deeper.
        assert_eq!(tokens.and_then(|t| t.output), Some(2));
        // Malformed after the output: the output is still found.
        let (output, tokens) = output_and_usage(br#"{"output":[],"usage":{"input_tokens":"#);
        assert_eq!(output, Some(10..12));
        assert_eq!(tokens, None);
        assert_eq!(output_and_usage(b"[]"), (None, None));
    }

    #[test]
    fn a_filled_output_is_left_alone() {
        let completed = format!(
            "event: response.completed\ndata: {{\"type\":\"response.completed\",\"response\":{{\"output\":[{ITEM_0}]}}}}\n\n"
        );
        let stream = [done(0, ITEM_0), completed.clone()].concat();
        let (out, _) = run(stream.as_bytes());
        assert_eq!(String::from_utf8(out).unwrap(), stream);
    }
}
