//! Responses stream events → Anthropic stream events. Anthropic streams content blocks one at
//! a time, so output items the backend interleaves (parallel tool calls) are queued and sent
//! one after the other in order of appearance. When thinking is on, reasoning becomes
//! `thinking` blocks: summary text as `thinking_delta`s, then the encrypted reasoning as one
//! `signature_delta` (see [`super::thinking`]); reasoning with neither text nor encrypted
//! content produces no block. A web search becomes a `server_tool_use` block followed by a
//! `web_search_tool_result` block, both sent when the search finished.

use std::borrow::Borrow;

use serde_json::{Value, json};

use super::response::{
    ID_PREFIX, anthropic_usage, has_refusal, message_text, messages_error_body, stop_reason,
    thinking_signature, thinking_text, web_search_id, web_search_query, web_search_result_block,
};
use crate::translate::names::ToolNameMap;
use crate::translate::responses::{ItemRef, ResponsesEvent};
use crate::translate::sse::SseEvent;
use crate::translate::stop::StopScanner;
use crate::translate::{Finish, UpstreamError, Usage, derived_id, push_json_str, type_of};

/// What kind of Anthropic block an output item becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BlockKind {
    /// A message: text (and refusal text).
    Text,
    /// A reasoning summary.
    Thinking,
    /// A web search (sent whole when it finished).
    WebSearch {
        /// The `server_tool_use` block id.
        id: String,
    },
    /// A function call.
    ToolUse {
        /// The call id, used as the block's `id`.
        call_id: String,
        /// The client's tool name.
        name: String,
    },
}

/// One output item on its way to becoming one Anthropic content block.
#[derive(Debug, Clone)]
struct Block {
    /// The backend's position for it.
    at: ItemRef,
    /// What it becomes.
    kind: BlockKind,
    /// Fragments received but not yet sent.
    pending: Vec<String>,
    /// Everything received so far (to send only the rest of a finished item).
    received: String,
    /// The reasoning summary index of the last fragment (thinking only).
    summary_index: Option<u64>,
    /// Its Anthropic `index`, once `content_block_start` went out.
    index: Option<usize>,
    /// Whether the backend finished the item.
    finished: bool,
    /// The finished item (reasoning: its signature; web search: its query and sources).
    item: Option<Value>,
}

impl Block {
    /// A new block with nothing received.
    fn new(at: ItemRef, kind: BlockKind) -> Self {
        Block {
            at,
            kind,
            pending: Vec::new(),
            received: String::new(),
            summary_index: None,
            index: None,
            finished: false,
            item: None,
        }
    }

    /// Whether an event's position names this block.
    fn is_at(&self, at: &ItemRef) -> bool {
        match (&at.item_id, &self.at.item_id) {
            (Some(a), Some(b)) => a == b,
            _ => at.output_index.is_some() && at.output_index == self.at.output_index,
        }
    }

    /// Queues a fragment.
    fn push(&mut self, fragment: &str) {
        if !fragment.is_empty() {
            self.received.push_str(fragment);
            self.pending.push(fragment.to_owned());
        }
    }
}

/// Turns backend stream events into Anthropic stream events (`message_start`,
/// `content_block_*`, `message_delta`, `message_stop`, or `error`).
///
/// The terminal backend event produces the rest of the content, `message_delta` with the stop
/// reason and usage, and `message_stop`. A failure produces one `error` event and nothing after
/// it. [`MessagesStream::finish`] must be called when the upstream body ends; it reports a
/// stream that ended without a terminal event.
#[derive(Debug, Clone)]
pub struct MessagesStream {
    /// `msg_…`, fixed by the first event that needs it.
    id: Option<String>,
    /// The model name the client asked for.
    model: String,
    /// Shortened tool names.
    names: ToolNameMap,
    /// The client's stop sequences.
    stop: StopScanner,
    /// Whether reasoning summaries become thinking blocks.
    thinking: bool,
    /// The input tokens to report in `message_start` (the real count comes at the end).
    input_estimate: u64,
    /// Whether `message_start` went out.
    started: bool,
    /// Output items in order of appearance.
    blocks: Vec<Block>,
    /// The first block not yet sent completely.
    cursor: usize,
    /// The next Anthropic block index.
    next_index: usize,
    /// Whether a stop sequence matched (everything after it is dropped).
    cut: bool,
    /// Whether any tool_use block was sent.
    made_tool_calls: bool,
    /// Whether the model refused.
    refused: bool,
    /// No more output.
    done: bool,
}

impl MessagesStream {
    /// A stream translator for one response.
    #[must_use]
    pub fn new(
        model: impl Into<String>,
        names: ToolNameMap,
        stop: Vec<String>,
        thinking: bool,
    ) -> Self {
        MessagesStream {
            id: None,
            model: model.into(),
            names,
            stop: StopScanner::new(stop),
            thinking,
            input_estimate: 0,
            started: false,
            blocks: Vec::new(),
            cursor: 0,
            next_index: 0,
            cut: false,
            made_tool_calls: false,
            refused: false,
            done: false,
        }
    }

    /// Reports `input_tokens` in `message_start` (e.g. from [`crate::translate::messages::count::count_tokens`]); the
    /// backend's real count is sent in `message_delta`.
    #[must_use]
    pub fn with_input_estimate(mut self, input_tokens: u64) -> Self {
        self.input_estimate = input_tokens;
        self
    }

    /// Takes one backend event and returns the Anthropic events it produces.
    pub fn on_event(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        if self.done {
            return Vec::new();
        }
        let mut out = Vec::new();
        match ResponsesEvent::parse(event) {
            ResponsesEvent::Created(response) => {
                if self.id.is_none() {
                    self.id = Some(derived_id(ID_PREFIX, &response));
                }
                self.ensure_started(&mut out);
            }
            ResponsesEvent::ItemAdded { at, item } => {
                self.block_for(&at, || &item);
            }
            ResponsesEvent::TextDelta { at, delta } => self.push_text(&at, &delta),
            ResponsesEvent::RefusalDelta { at, delta } => {
                self.refused = true;
                self.push_text(&at, &delta);
            }
            ResponsesEvent::ReasoningSummaryDelta {
                at,
                summary_index,
                delta,
            } => {
                self.push_summary(&at, summary_index, &delta);
            }
            ResponsesEvent::ArgumentsDelta { at, delta } => {
                if let Some(block) = self.blocks.iter_mut().find(|b| b.is_at(&at)) {
                    block.push(&delta);
                }
            }
            ResponsesEvent::ItemDone { at, item } => self.finish_item(&at, &item),
            ResponsesEvent::Terminal(response) => {
                self.ensure_started(&mut out);
                self.blocks.iter_mut().for_each(|b| b.finished = true);
                self.drain(&mut out);
                self.end_message(&response, &mut out);
                return out;
            }
            ResponsesEvent::Failed(err) => {
                out.push(error_event(&err));
                self.done = true;
                return out;
            }
            ResponsesEvent::Other => return out,
        }
        self.ensure_started(&mut out);
        self.drain(&mut out);
        out
    }

    /// Ends the stream. After a terminal or error event this returns nothing; otherwise the
    /// backend stream was cut, and this returns one `error` event.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        vec![error_event(&UpstreamError::stream_incomplete())]
    }

    /// The block for an output item, created on first sight from the `item` that announces it
    /// (made only then: an item's later events find its block); `None` for items that produce
    /// no block (reasoning when thinking is off, unknown item types).
    fn block_for<V: Borrow<Value>>(
        &mut self,
        at: &ItemRef,
        item: impl FnOnce() -> V,
    ) -> Option<usize> {
        if let Some(i) = self.blocks.iter().position(|b| b.is_at(at)) {
            return Some(i);
        }
        let item = item();
        let item = item.borrow();
        let kind = match type_of(item) {
            "message" => BlockKind::Text,
            "reasoning" if self.thinking => BlockKind::Thinking,
            "web_search_call" => BlockKind::WebSearch {
                id: web_search_id(item),
            },
            "function_call" => BlockKind::ToolUse {
                call_id: item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                name: self
                    .names
                    .to_client(item.get("name").and_then(Value::as_str).unwrap_or(""))
                    .to_owned(),
            },
            _ => return None,
        };
        self.blocks.push(Block::new(at.clone(), kind));
        Some(self.blocks.len() - 1)
    }

    /// Queues text for a message item (announcing it if the backend did not).
    fn push_text(&mut self, at: &ItemRef, delta: &str) {
        if let Some(i) = self.block_for(at, || json!({"type": "message"})) {
            self.blocks[i].push(delta);
        }
    }

    /// Queues summary text for a reasoning item; summary parts are separated by a blank line.
    fn push_summary(&mut self, at: &ItemRef, summary_index: u64, delta: &str) {
        let Some(i) = self.block_for(at, || json!({"type": "reasoning"})) else {
            return;
        };
        let block = &mut self.blocks[i];
        if delta.is_empty() {
            return;
        }
        if block.summary_index.is_some_and(|s| s != summary_index) {
            block.push(&format!("\n\n{delta}"));
        } else {
            block.push(delta);
        }
        block.summary_index = Some(summary_index);
    }

    /// A finished output item: queues whatever of it was not streamed, and marks it finished.
    fn finish_item(&mut self, at: &ItemRef, item: &Value) {
        let Some(i) = self.block_for(at, || item) else {
            return;
        };
        let whole = match &self.blocks[i].kind {
            BlockKind::Text => {
                self.refused |= has_refusal(item);
                message_text(item)
            }
            BlockKind::Thinking => thinking_text(item),
            BlockKind::WebSearch { .. } => String::new(),
            BlockKind::ToolUse { .. } => item
                .get("arguments")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        };
        let block = &mut self.blocks[i];
        if let Some(rest) = whole.strip_prefix(block.received.as_str()) {
            let rest = rest.to_owned();
            block.push(&rest);
        }
        block.finished = true;
        block.item = Some(item.clone());
    }

    /// Sends `message_start` once.
    fn ensure_started(&mut self, out: &mut Vec<SseEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = self
            .id
            .get_or_insert_with(|| derived_id(ID_PREFIX, &Value::Null))
            .clone();
        let message = json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": self.input_estimate, "output_tokens": 0},
        });
        out.push(event(
            "message_start",
            json!({"type": "message_start", "message": message}),
        ));
    }

    /// Sends every queued fragment that can go out now: blocks strictly in order, each one
    /// closed before the next opens.
    fn drain(&mut self, out: &mut Vec<SseEvent>) {
        while self.cursor < self.blocks.len() {
            let fragments = std::mem::take(&mut self.blocks[self.cursor].pending);
            for fragment in fragments {
                self.send_fragment(&fragment, out);
            }
            if !self.blocks[self.cursor].finished && !self.cut {
                return;
            }
            self.close_block(out);
            self.cursor += 1;
        }
    }

    /// Sends one fragment of the current block (opening it first), unless a stop sequence cut
    /// the output.
    fn send_fragment(&mut self, fragment: &str, out: &mut Vec<SseEvent>) {
        if self.cut {
            return;
        }
        let (delta_type, key, text) = match self.blocks[self.cursor].kind {
            BlockKind::Text => {
                let text = self.stop.push(fragment);
                self.cut = self.stop.hit().is_some();
                ("text_delta", "text", text)
            }
            BlockKind::Thinking => ("thinking_delta", "thinking", fragment.to_owned()),
            BlockKind::ToolUse { .. } => ("input_json_delta", "partial_json", fragment.to_owned()),
            BlockKind::WebSearch { .. } => return,
        };
        if text.is_empty() {
            return;
        }
        let index = self.open_block(out);
        out.push(SseEvent::named(
            "content_block_delta",
            block_delta(index, delta_type, key, &text),
        ));
    }

    /// Sends `content_block_start` for the current block if it has not gone out; returns its
    /// index.
    fn open_block(&mut self, out: &mut Vec<SseEvent>) -> usize {
        let block = &mut self.blocks[self.cursor];
        if let Some(index) = block.index {
            return index;
        }
        let index = self.next_index;
        self.next_index += 1;
        block.index = Some(index);
        let content_block = match &block.kind {
            BlockKind::Text => json!({"type": "text", "text": ""}),
            BlockKind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            BlockKind::WebSearch { id } => {
                json!({"type": "server_tool_use", "id": id, "name": "web_search", "input": {}})
            }
            BlockKind::ToolUse { call_id, name } => {
                self.made_tool_calls = true;
                json!({"type": "tool_use", "id": call_id, "name": name, "input": {}})
            }
        };
        let start =
            json!({"type": "content_block_start", "index": index, "content_block": content_block});
        out.push(event("content_block_start", start));
        index
    }

    /// Finishes the current block: held-back text goes out, a tool call always gets a block,
    /// and an opened block is closed. After a stop-sequence cut nothing new is opened.
    fn close_block(&mut self, out: &mut Vec<SseEvent>) {
        let kind = self.blocks[self.cursor].kind.clone();
        if !self.cut {
            match kind {
                BlockKind::Text => {
                    let held = self.stop.flush();
                    self.send_fragment(&held, out);
                }
                BlockKind::ToolUse { .. } => {
                    self.open_block(out);
                }
                BlockKind::Thinking => self.sign_thinking(out),
                BlockKind::WebSearch { id } => {
                    self.send_web_search(&id, out);
                    return;
                }
            }
        }
        self.stop_block(out);
    }

    /// Sends `content_block_stop` for the current block if it was opened.
    fn stop_block(&mut self, out: &mut Vec<SseEvent>) {
        if let Some(index) = self.blocks[self.cursor].index {
            out.push(event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    /// Ends a thinking block with its signature (the encrypted reasoning), opening the block
    /// first when the reasoning had no summary text.
    fn sign_thinking(&mut self, out: &mut Vec<SseEvent>) {
        let signature = self.blocks[self.cursor]
            .item
            .as_ref()
            .map(thinking_signature)
            .unwrap_or_default();
        if signature.is_empty() {
            return;
        }
        let index = self.open_block(out);
        let delta = json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "signature_delta", "signature": signature}});
        out.push(event("content_block_delta", delta));
    }

    /// A finished web search: the `server_tool_use` block with its query, then the
    /// `web_search_tool_result` block.
    fn send_web_search(&mut self, id: &str, out: &mut Vec<SseEvent>) {
        let Some(item) = self.blocks[self.cursor].item.clone() else {
            return;
        };
        let index = self.open_block(out);
        let query = json!({"query": web_search_query(&item)}).to_string();
        out.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": query}}),
        ));
        self.stop_block(out);
        let result = self.next_index;
        self.next_index += 1;
        out.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": result, "content_block": web_search_result_block(&item, id)}),
        ));
        out.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": result}),
        ));
    }

    /// `message_delta` and `message_stop`.
    fn end_message(&mut self, response: &Value, out: &mut Vec<SseEvent>) {
        let finish = match self.stop.hit() {
            Some(stop) => Finish::StopSequence(stop.to_owned()),
            None => Finish::from_response(response),
        };
        let stop_sequence = match &finish {
            Finish::StopSequence(stop) => json!(stop),
            _ => Value::Null,
        };
        let delta = json!({
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason(&finish, self.made_tool_calls, self.refused),
                "stop_sequence": stop_sequence,
            },
            "usage": anthropic_usage(Usage::from_response(response)),
        });
        out.push(event("message_delta", delta));
        out.push(event("message_stop", json!({"type": "message_stop"})));
        self.done = true;
    }
}

/// A `content_block_delta` event's data, written as text (the most frequent event by far), as
/// serde_json writes the same object: members in key order.
fn block_delta(index: usize, delta_type: &str, key: &str, text: &str) -> String {
    let mut data = String::with_capacity(text.len() + 96);
    data.push_str("{\"delta\":{\"");
    data.push_str(key);
    data.push_str("\":");
    push_json_str(&mut data, text);
    data.push_str(",\"type\":\"");
    data.push_str(delta_type);
    data.push_str("\"},\"index\":");
    data.push_str(&index.to_string());
    data.push_str(",\"type\":\"content_block_delta\"}");
    data
}

/// A named event with JSON data.
fn event(name: &str, data: Value) -> SseEvent {
    SseEvent::named(name, data.to_string())
}

/// The `error` event for a failure.
fn error_event(err: &UpstreamError) -> SseEvent {
    event("error", messages_error_body(err))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn a_written_block_delta_is_what_the_tree_writes(
            index in any::<usize>(),
            kind in prop::sample::select(vec![
                ("text_delta", "text"),
                ("thinking_delta", "thinking"),
                ("input_json_delta", "partial_json"),
            ]),
            text in any::<String>(),
        ) {
            let (delta_type, key) = kind;
            let tree = json!({"type": "content_block_delta", "index": index, "delta": {"type": delta_type, key: text}});
            prop_assert_eq!(block_delta(index, delta_type, key, &text), tree.to_string());
        }
    }
}
