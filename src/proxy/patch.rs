//! The few rewrites SDK stream accumulators need in a Responses stream from the Codex backend
//! (spec §8.5 item 11), and what the relay learns from its events (token usage, whether it is
//! over). See [`Patcher`].

use std::collections::BTreeMap;

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
    fn of(name: &str) -> Kind {
        match name {
            "response.created" | "response.in_progress" | "response.queued" => Kind::Opening,
            "response.output_item.done" => Kind::ItemDone,
            "response.completed" | "response.incomplete" | "response.done" => Kind::Final,
            "response.failed" => Kind::Failed,
            "error" => Kind::Error,
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
        let kind = match block.name() {
            Some(name) => Kind::of(name),
            // No `event:` line: the type is in the data (rare; parse it then).
            None => match block.event().and_then(|e| e.kind()) {
                Some(kind) => Kind::of(&kind),
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
        let Some(item) = jsonscan::field_range(&data, "item") else {
            return;
        };
        if std::str::from_utf8(&data[item.clone()]).is_err() {
            return;
        }
        let key = match jsonscan::field(&data, "output_index").and_then(jsonscan::unsigned) {
            Some(i) => (i, 0),
            None => {
                self.unindexed += 1;
                (u64::MAX, self.unindexed)
            }
        };
        self.items.insert(key, (data.clone(), item.start, item.end));
    }

    /// `block` with `response.output` fixed, or unchanged when it needs no fix. Terminal events
    /// (`rebuild`) also report their token usage here, from the one read.
    fn patch(&mut self, block: Block, rebuild: bool) -> Bytes {
        let Some(data) = block.data() else {
            return block.into_raw();
        };
        // Most events carry no `output` at all: no need to read them.
        if !rebuild && !data.contains("\"output\"") {
            return block.into_raw();
        }
        let bytes = data.as_bytes();
        let Some(response) = jsonscan::field_range(bytes, "response") else {
            return block.into_raw();
        };
        let inner = &bytes[response.clone()];
        let [output, usage] = if rebuild && self.log.is_enabled() {
            jsonscan::field_ranges(inner, ["output", "usage"])
        } else {
            [jsonscan::field_range(inner, "output"), None]
        };
        if let Some(tokens) = usage.and_then(|u| Tokens::from_usage_raw(&inner[u])) {
            self.log.update(|f| f.tokens = tokens);
        }
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
        let (start, end) = (response.start + output.start, response.start + output.end);
        let mut patched = String::with_capacity(data.len() + 64);
        patched.push_str(&data[..start]);
        patched.push('[');
        if rebuild {
            // The stream is over: the items are not needed again.
            for (i, (item_data, from, to)) in std::mem::take(&mut self.items).values().enumerate() {
                if i > 0 {
                    patched.push(',');
                }
                patched.push_str(&String::from_utf8_lossy(&item_data[*from..*to]));
            }
        }
        patched.push(']');
        patched.push_str(&data[end..]);
        Bytes::from(format_event(block.name(), &patched))
    }
}
