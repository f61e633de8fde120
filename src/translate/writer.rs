//! Writing a Responses event stream from simpler pieces, for upstreams that speak another API:
//! [`ResponsesWriter`] opens output items (a message, a reasoning summary, a function call),
//! streams their fragments, closes them, and ends the response with usage or a failure.
//!
//! The events are the ones the Responses API sends (`response.created`,
//! `response.output_item.added`, `response.output_text.delta`,
//! `response.function_call_arguments.delta`, `response.output_item.done`, `response.completed`,
//! …), each with a `type`, a `sequence_number`, and the event name on the `event:` line, so the
//! same stream serves Responses clients as is and feeds [`super::chat::ChatStream`],
//! [`super::messages::MessagesStream`] and [`super::responses::Aggregator`]. The terminal event
//! carries the whole `output`, so no consumer has to rebuild it.

use serde_json::{Value, json};

use super::sse::SseEvent;
use super::{Finish, UpstreamError, Usage};

/// What an output item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Message,
    Reasoning,
    Call,
}

/// One output item, open or closed.
#[derive(Debug, Clone)]
struct Item {
    kind: Kind,
    id: String,
    /// The call id and name (calls only).
    call: Option<(String, String)>,
    /// The text, summary or arguments received so far.
    text: String,
    /// Whether `response.output_item.done` went out.
    closed: bool,
}

impl Item {
    /// The item as `output_item.done` (and the terminal `output`) shows it.
    fn finished(&self) -> Value {
        match self.kind {
            Kind::Message => json!({
                "id": self.id, "type": "message", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": self.text, "annotations": []}],
            }),
            Kind::Reasoning => {
                let summary = if self.text.is_empty() {
                    json!([])
                } else {
                    json!([{"type": "summary_text", "text": self.text}])
                };
                json!({"id": self.id, "type": "reasoning", "summary": summary})
            }
            Kind::Call => {
                let (call_id, name) = self.call.clone().unwrap_or_default();
                let arguments = if self.text.is_empty() {
                    "{}"
                } else {
                    &self.text
                };
                json!({
                    "id": self.id, "type": "function_call", "status": "completed",
                    "call_id": call_id, "name": name, "arguments": arguments,
                })
            }
        }
    }
}

/// Builds one Responses event stream. Slots returned by the `open_*` methods are output indexes.
#[derive(Debug, Clone)]
pub struct ResponsesWriter {
    /// `resp_…`.
    id: String,
    /// The model the upstream named.
    model: String,
    /// Unix seconds.
    created_at: i64,
    /// Whether `response.created` went out.
    started: bool,
    /// The next `sequence_number`.
    sequence: u64,
    /// Output items by output index.
    items: Vec<Item>,
    /// Whether the response ended (completed, incomplete or failed).
    ended: bool,
}

impl ResponsesWriter {
    /// A writer for a response whose upstream id is `upstream_id` (e.g. `chatcmpl-…`).
    #[must_use]
    pub fn new(upstream_id: &str, model: &str, created_at: i64) -> Self {
        let id = if upstream_id.is_empty() {
            format!("resp_{}", crate::unique::uuid().simple())
        } else {
            format!("resp_{upstream_id}")
        };
        ResponsesWriter {
            id,
            model: model.to_owned(),
            created_at,
            started: false,
            sequence: 0,
            items: Vec::new(),
            ended: false,
        }
    }

    /// Whether the response has ended; later calls produce nothing.
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Whether `response.created` went out.
    #[must_use]
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Sends `response.created` once.
    pub fn start(&mut self, out: &mut Vec<SseEvent>) {
        if self.started || self.ended {
            return;
        }
        self.started = true;
        let response = self.response("in_progress", Value::Null, json!([]), Value::Null);
        self.push(out, "response.created", json!({"response": response}));
    }

    /// Opens an assistant message; returns its slot.
    pub fn open_message(&mut self, out: &mut Vec<SseEvent>) -> usize {
        let slot = self.open(out, Kind::Message, "msg", None);
        let id = self.items[slot].id.clone();
        self.push(
            out,
            "response.content_part.added",
            json!({"item_id": id, "output_index": slot, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
        );
        slot
    }

    /// Opens a reasoning item with one summary part; returns its slot.
    pub fn open_reasoning(&mut self, out: &mut Vec<SseEvent>) -> usize {
        let slot = self.open(out, Kind::Reasoning, "rs", None);
        let id = self.items[slot].id.clone();
        self.push(
            out,
            "response.reasoning_summary_part.added",
            json!({"item_id": id, "output_index": slot, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
        );
        slot
    }

    /// Opens a function call; returns its slot.
    pub fn open_call(&mut self, out: &mut Vec<SseEvent>, call_id: &str, name: &str) -> usize {
        self.open(
            out,
            Kind::Call,
            "fc",
            Some((call_id.to_owned(), name.to_owned())),
        )
    }

    /// Streams a fragment of an open item (text, summary text or arguments).
    pub fn delta(&mut self, out: &mut Vec<SseEvent>, slot: usize, delta: &str) {
        if self.ended || delta.is_empty() {
            return;
        }
        let Some(item) = self.items.get_mut(slot).filter(|i| !i.closed) else {
            return;
        };
        item.text.push_str(delta);
        let (kind, id) = (item.kind, item.id.clone());
        let (name, data) = match kind {
            Kind::Message => (
                "response.output_text.delta",
                json!({"item_id": id, "output_index": slot, "content_index": 0, "delta": delta}),
            ),
            Kind::Reasoning => (
                "response.reasoning_summary_text.delta",
                json!({"item_id": id, "output_index": slot, "summary_index": 0, "delta": delta}),
            ),
            Kind::Call => (
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": slot, "delta": delta}),
            ),
        };
        self.push(out, name, data);
    }

    /// Closes an open item: its `.done` events and `response.output_item.done`.
    pub fn close(&mut self, out: &mut Vec<SseEvent>, slot: usize) {
        if self.ended {
            return;
        }
        let Some(item) = self.items.get_mut(slot).filter(|i| !i.closed) else {
            return;
        };
        item.closed = true;
        let item = item.clone();
        let at = |extra: Value| {
            let mut data = json!({"item_id": item.id, "output_index": slot});
            if let (Value::Object(fields), Value::Object(more)) = (&mut data, extra) {
                fields.extend(more);
            }
            data
        };
        match item.kind {
            Kind::Message => {
                let part = json!({"type": "output_text", "text": item.text, "annotations": []});
                let text_done = at(json!({"content_index": 0, "text": item.text}));
                let part_done = at(json!({"content_index": 0, "part": part}));
                self.push(out, "response.output_text.done", text_done);
                self.push(out, "response.content_part.done", part_done);
            }
            Kind::Reasoning => {
                let part = json!({"type": "summary_text", "text": item.text});
                let text_done = at(json!({"summary_index": 0, "text": item.text}));
                let part_done = at(json!({"summary_index": 0, "part": part}));
                self.push(out, "response.reasoning_summary_text.done", text_done);
                self.push(out, "response.reasoning_summary_part.done", part_done);
            }
            Kind::Call => {
                let finished = item.finished();
                let done = at(json!({"arguments": finished["arguments"]}));
                self.push(out, "response.function_call_arguments.done", done);
            }
        }
        self.push(
            out,
            "response.output_item.done",
            json!({"output_index": slot, "item": item.finished()}),
        );
    }

    /// Ends the response: closes what is open, then `response.completed` (or
    /// `response.incomplete` for a length or content-filter stop) with the whole output.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>, finish: &Finish, usage: Option<Usage>) {
        if self.ended {
            return;
        }
        self.start(out);
        for slot in 0..self.items.len() {
            self.close(out, slot);
        }
        let (name, status, details) = match finish {
            Finish::MaxTokens => (
                "response.incomplete",
                "incomplete",
                json!({"reason": "max_output_tokens"}),
            ),
            Finish::ContentFilter => (
                "response.incomplete",
                "incomplete",
                json!({"reason": "content_filter"}),
            ),
            Finish::Completed | Finish::StopSequence(_) => {
                ("response.completed", "completed", Value::Null)
            }
        };
        let output: Vec<Value> = self.items.iter().map(Item::finished).collect();
        let usage = usage.map_or(Value::Null, |u| usage_json(&u));
        let mut response = self.response(status, Value::Null, Value::Array(output), usage);
        response["incomplete_details"] = details;
        self.push(out, name, json!({"response": response}));
        self.ended = true;
    }

    /// Ends the response with `response.failed` carrying the error (`type`, `code`, `message`).
    pub fn fail(&mut self, out: &mut Vec<SseEvent>, err: &UpstreamError) {
        if self.ended {
            return;
        }
        self.start(out);
        let error = json!({"type": err.kind, "code": err.code, "message": err.message});
        let output: Vec<Value> = self.items.iter().map(Item::finished).collect();
        let response = self.response("failed", error, Value::Array(output), Value::Null);
        self.push(out, "response.failed", json!({"response": response}));
        self.ended = true;
    }

    /// Adds an item and sends `response.output_item.added`.
    fn open(
        &mut self,
        out: &mut Vec<SseEvent>,
        kind: Kind,
        prefix: &str,
        call: Option<(String, String)>,
    ) -> usize {
        self.start(out);
        let slot = self.items.len();
        let suffix = self.id.strip_prefix("resp_").unwrap_or(&self.id);
        let item = Item {
            kind,
            id: format!("{prefix}_{suffix}_{slot}"),
            call,
            text: String::new(),
            closed: false,
        };
        let added = match kind {
            Kind::Message => {
                json!({"id": item.id, "type": "message", "role": "assistant", "status": "in_progress", "content": []})
            }
            Kind::Reasoning => json!({"id": item.id, "type": "reasoning", "summary": []}),
            Kind::Call => {
                let (call_id, name) = item.call.clone().unwrap_or_default();
                json!({"id": item.id, "type": "function_call", "status": "in_progress", "call_id": call_id, "name": name, "arguments": ""})
            }
        };
        self.items.push(item);
        if !self.ended {
            self.push(
                out,
                "response.output_item.added",
                json!({"output_index": slot, "item": added}),
            );
        }
        slot
    }

    /// The `response` object of a lifecycle event.
    fn response(&self, status: &str, error: Value, output: Value, usage: Value) -> Value {
        json!({
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "error": error, "incomplete_details": null, "model": self.model, "output": output,
            "usage": usage,
        })
    }

    /// Appends one event: `type` and `sequence_number` added to `data`.
    fn push(&mut self, out: &mut Vec<SseEvent>, name: &str, mut data: Value) {
        if let Value::Object(fields) = &mut data {
            fields.insert("type".to_owned(), json!(name));
            fields.insert("sequence_number".to_owned(), json!(self.sequence));
        }
        self.sequence += 1;
        out.push(SseEvent::named(name, data.to_string()));
    }
}

/// Responses `usage` from token counts.
fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::translate::responses::aggregate;

    fn kinds(events: &[SseEvent]) -> Vec<String> {
        events.iter().filter_map(|e| e.event.clone()).collect()
    }

    #[test]
    fn a_message_and_a_call_make_a_complete_stream() {
        let mut w = ResponsesWriter::new("chatcmpl-1", "m", 5);
        let mut out = Vec::new();
        let text = w.open_message(&mut out);
        w.delta(&mut out, text, "hi");
        let call = w.open_call(&mut out, "call_1", "f");
        w.delta(&mut out, call, "{\"a\":1}");
        let usage = Usage {
            input_tokens: 3,
            output_tokens: 2,
            total_tokens: 5,
            ..Usage::default()
        };
        w.finish(&mut out, &Finish::Completed, Some(usage));
        assert_eq!(
            kinds(&out),
            [
                "response.created",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let response = aggregate(&out).unwrap();
        assert_eq!(response["id"], "resp_chatcmpl-1");
        assert_eq!(response["output"][0]["content"][0]["text"], "hi");
        assert_eq!(response["output"][1]["arguments"], "{\"a\":1}");
        assert_eq!(response["output"][1]["call_id"], "call_1");
        assert_eq!(response["usage"]["total_tokens"], 5);
        let sequence: Vec<u64> = out
            .iter()
            .map(|e| {
                serde_json::from_str::<Value>(&e.data).unwrap()["sequence_number"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(sequence, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn length_is_incomplete_and_failure_ends_the_stream() {
        let mut w = ResponsesWriter::new("x", "m", 5);
        let mut out = Vec::new();
        w.finish(&mut out, &Finish::MaxTokens, None);
        let response = aggregate(&out).unwrap();
        assert_eq!(response["status"], "incomplete");
        assert_eq!(
            response["incomplete_details"]["reason"],
            "max_output_tokens"
        );

        let mut w = ResponsesWriter::new("x", "m", 5);
        let mut out = Vec::new();
        w.fail(&mut out, &UpstreamError::stream_incomplete());
        w.finish(&mut out, &Finish::Completed, None);
        assert_eq!(kinds(&out), ["response.created", "response.failed"]);
        assert_eq!(
            aggregate(&out).unwrap_err().code.as_deref(),
            Some("stream_incomplete")
        );
    }
}
