//! Backend stream events as `chat.completion.chunk` payloads, as they arrive.

use serde_json::{Value, json};

use super::{DONE, ID_PREFIX, chat_error_body, chat_usage, finish_reason};
use crate::sse::SseEvent;
use crate::translate::names::ToolNameMap;
use crate::translate::responses::{ItemRef, ResponsesEvent};
use crate::translate::stop::StopScanner;
use crate::translate::{
    Finish, UpstreamError, Usage, created_at, derived_id, push_json_str, type_of,
};

/// One streamed tool call.
#[derive(Debug, Clone)]
struct StreamedCall {
    /// The backend's item id.
    item_id: Option<String>,
    /// The backend's output index.
    output_index: Option<u64>,
    /// The arguments sent so far.
    arguments: String,
}

/// Turns backend stream events into `chat.completion.chunk` payloads (the text after `data: `).
///
/// [`ChatStream::on_event`] returns the chunks an event produces. The terminal event produces the
/// last content, the chunk with `finish_reason`, the usage chunk (when asked for) and
/// [`DONE`]. A `response.failed` or `error` event produces one `{"error": …}` payload, which the
/// OpenAI SDKs raise as an error, and nothing after it. [`ChatStream::finish`] must be called
/// when the upstream body ends; it reports a stream that ended without a terminal event.
#[derive(Debug, Clone)]
pub struct ChatStream {
    /// `chatcmpl-…`, fixed by the first event that needs it.
    id: Option<String>,
    /// Unix seconds, from `response.created_at`.
    created: Option<i64>,
    /// The model name the client asked for.
    model: String,
    /// Whether to send a usage chunk.
    include_usage: bool,
    /// Shortened tool names.
    names: ToolNameMap,
    /// The client's stop sequences.
    stop: StopScanner,
    /// Whether the first chunk (with `role`) went out.
    role_sent: bool,
    /// Tool calls in order of appearance; the position is the chunk `index`.
    calls: Vec<StreamedCall>,
    /// The reasoning summary part last streamed (item id, summary index).
    last_summary: Option<(Option<String>, u64)>,
    /// No more output: a terminal event, an error, or `finish` happened.
    done: bool,
    /// What follows `choices` in every chunk, written once the id is fixed.
    tail: Option<String>,
}

impl ChatStream {
    /// A stream translator for one response.
    #[must_use]
    pub fn new(
        model: impl Into<String>,
        include_usage: bool,
        names: ToolNameMap,
        stop: Vec<String>,
    ) -> Self {
        ChatStream {
            id: None,
            created: None,
            model: model.into(),
            include_usage,
            names,
            stop: StopScanner::new(stop),
            role_sent: false,
            calls: Vec::new(),
            last_summary: None,
            done: false,
            tail: None,
        }
    }

    /// Takes one backend event and returns the chunk payloads it produces.
    pub fn on_event(&mut self, event: &SseEvent) -> Vec<String> {
        if self.done {
            return Vec::new();
        }
        let mut out = Vec::new();
        match ResponsesEvent::parse(event) {
            ResponsesEvent::Created(response) => self.on_created(&response, &mut out),
            ResponsesEvent::TextDelta { delta, .. } => {
                let text = self.stop.push(&delta);
                self.emit_content(&text, &mut out);
            }
            ResponsesEvent::RefusalDelta { delta, .. } => {
                if self.stop.hit().is_none() {
                    self.emit(json!({"refusal": delta}), &mut out);
                }
            }
            ResponsesEvent::ReasoningSummaryDelta {
                at,
                summary_index,
                delta,
            } => {
                self.on_summary(at.item_id, summary_index, &delta, &mut out);
            }
            ResponsesEvent::ItemAdded { at, item } => self.on_item(at, &item, &mut out),
            ResponsesEvent::ArgumentsDelta { at, delta } => {
                self.on_arguments(&at, &delta, &mut out)
            }
            ResponsesEvent::ItemDone { at, item } => {
                if type_of(&item) == "message" {
                    let held = self.stop.flush();
                    self.emit_content(&held, &mut out);
                }
                self.on_item(at, &item, &mut out);
            }
            ResponsesEvent::Terminal(response) => self.on_terminal(&response, &mut out),
            ResponsesEvent::Failed(err) => {
                out.push(chat_error_body(&err).to_string());
                self.done = true;
            }
            ResponsesEvent::Other => {}
        }
        out
    }

    /// Ends the stream. After a terminal or error event this returns nothing; otherwise the
    /// backend stream was cut, and this returns one error payload.
    pub fn finish(&mut self) -> Vec<String> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        vec![chat_error_body(&UpstreamError::stream_incomplete()).to_string()]
    }

    /// `response.created`: fixes the id and time, and sends the role chunk.
    fn on_created(&mut self, response: &Value, out: &mut Vec<String>) {
        if self.id.is_none() {
            self.id = Some(derived_id(ID_PREFIX, response));
            self.created = Some(created_at(response));
        }
        self.emit(json!({"content": ""}), out);
    }

    /// A reasoning summary fragment; parts are separated by a blank line.
    fn on_summary(
        &mut self,
        item_id: Option<String>,
        index: u64,
        delta: &str,
        out: &mut Vec<String>,
    ) {
        if self.stop.hit().is_some() || delta.is_empty() {
            return;
        }
        let key = (item_id, index);
        let text = match &self.last_summary {
            Some(last) if *last != key => format!("\n\n{delta}"),
            _ => delta.to_owned(),
        };
        self.last_summary = Some(key);
        self.emit(json!({"reasoning_content": text}), out);
    }

    /// An added or finished output item: tool calls get their header (once) and any arguments
    /// not yet streamed.
    fn on_item(&mut self, at: ItemRef, item: &Value, out: &mut Vec<String>) {
        if type_of(item) != "function_call" || self.stop.hit().is_some() {
            return;
        }
        let arguments = item.get("arguments").and_then(Value::as_str).unwrap_or("");
        if let Some(index) = self.call_index(&at) {
            let sent = &self.calls[index].arguments;
            if let Some(rest) = arguments
                .strip_prefix(sent.as_str())
                .filter(|r| !r.is_empty())
            {
                let rest = rest.to_owned();
                self.emit_arguments(index, &rest, out);
            }
            return;
        }
        let index = self.calls.len();
        self.calls.push(StreamedCall {
            item_id: at.item_id,
            output_index: at.output_index,
            arguments: arguments.to_owned(),
        });
        let call_id = item.get("call_id").and_then(Value::as_str).unwrap_or("");
        let name = self
            .names
            .to_client(item.get("name").and_then(Value::as_str).unwrap_or(""));
        let header = json!({"tool_calls": [{
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }]});
        self.emit(header, out);
    }

    /// A function-call arguments fragment.
    fn on_arguments(&mut self, at: &ItemRef, delta: &str, out: &mut Vec<String>) {
        if self.stop.hit().is_some() || delta.is_empty() {
            return;
        }
        // A fragment for a call never announced has no id or name to send; the call's
        // `output_item.done` will carry all of it.
        if let Some(index) = self.call_index(at) {
            self.calls[index].arguments.push_str(delta);
            self.emit_arguments(index, delta, out);
        }
    }

    /// Which streamed call an event belongs to: by item id, else by output index.
    fn call_index(&self, at: &ItemRef) -> Option<usize> {
        self.calls
            .iter()
            .position(|call| match (&at.item_id, &call.item_id) {
                (Some(a), Some(b)) => a == b,
                _ => at.output_index.is_some() && at.output_index == call.output_index,
            })
    }

    /// Sends an arguments fragment for call `index`.
    fn emit_arguments(&mut self, index: usize, arguments: &str, out: &mut Vec<String>) {
        let delta = json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]});
        self.emit(delta, out);
    }

    /// Sends text content, when there is any.
    fn emit_content(&mut self, text: &str, out: &mut Vec<String>) {
        if !text.is_empty() {
            let chunk = self.content_chunk(text);
            out.push(chunk);
        }
    }

    /// A chunk of content, the most frequent chunk by far, written as text as serde_json writes
    /// the same object ([`ChatStream::emit`]): members in key order.
    fn content_chunk(&mut self, text: &str) -> String {
        let role = if self.role_sent {
            ""
        } else {
            self.role_sent = true;
            ",\"role\":\"assistant\""
        };
        let tail = self.tail();
        let mut chunk = String::with_capacity(text.len() + tail.len() + 96);
        chunk.push_str("{\"choices\":[{\"delta\":{\"content\":");
        push_json_str(&mut chunk, text);
        chunk.push_str(role);
        chunk.push_str("},\"finish_reason\":null,\"index\":0,\"logprobs\":null}]");
        chunk.push_str(tail);
        chunk
    }

    /// `,"created":…,"id":…,"model":…,"object":"chat.completion.chunk"}`, the same for every
    /// chunk once the id is fixed (fixing it here when no event did).
    fn tail(&mut self) -> &str {
        if self.tail.is_none() {
            // `{"choices":[],"created":…`: the first `,"created":` is the member's.
            let whole = self.envelope(json!([])).to_string();
            let after = whole.find(",\"created\":").unwrap_or(whole.len());
            self.tail = Some(whole[after..].to_owned());
        }
        self.tail.as_deref().unwrap_or_default()
    }

    /// `response.completed` / `response.incomplete`: the last chunks and `[DONE]`.
    fn on_terminal(&mut self, response: &Value, out: &mut Vec<String>) {
        let held = self.stop.flush();
        self.emit_content(&held, out);
        let finish = match self.stop.hit() {
            Some(stop) => Finish::StopSequence(stop.to_owned()),
            None => Finish::from_response(response),
        };
        let reason = finish_reason(&finish, !self.calls.is_empty());
        out.push(self.chunk(json!({}), json!(reason)));
        if self.include_usage
            && let Some(usage) = Usage::from_response(response)
        {
            let mut chunk = self.envelope(json!([]));
            chunk["usage"] = chat_usage(&usage);
            out.push(chunk.to_string());
        }
        out.push(DONE.to_owned());
        self.done = true;
    }

    /// Sends one delta chunk; the first one carries `role`.
    fn emit(&mut self, mut delta: Value, out: &mut Vec<String>) {
        if !self.role_sent {
            self.role_sent = true;
            delta["role"] = json!("assistant");
        }
        out.push(self.chunk(delta, Value::Null));
    }

    /// A chunk payload with one choice.
    fn chunk(&mut self, delta: Value, finish_reason: Value) -> String {
        let choice =
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason});
        self.envelope(json!([choice])).to_string()
    }

    /// The chunk envelope around `choices`.
    fn envelope(&mut self, choices: Value) -> Value {
        let id = self
            .id
            .get_or_insert_with(|| derived_id(ID_PREFIX, &Value::Null))
            .clone();
        let created = *self.created.get_or_insert_with(|| created_at(&Value::Null));
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": self.model,
            "choices": choices,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn a_written_content_chunk_is_what_the_tree_writes(
            model in any::<String>(),
            response_id in prop::option::of(any::<String>()),
            first in any::<bool>(),
            text in any::<String>(),
        ) {
            let mut stream = ChatStream::new(model, false, ToolNameMap::default(), Vec::new());
            if let Some(id) = response_id {
                stream.on_created(&json!({"id": id, "created_at": 1_764_900_000}), &mut Vec::new());
            }
            if !first {
                stream.role_sent = true;
            }
            // Fixed before the copy (without an event that fixes it, the id is made up).
            stream.envelope(json!([]));
            let mut tree = stream.clone();
            let mut out = Vec::new();
            tree.emit(json!({"content": text}), &mut out);
            prop_assert_eq!(stream.content_chunk(&text), out.remove(0));
            // The tail is kept, not written again: a second chunk agrees as well.
            tree.emit(json!({"content": "more"}), &mut out);
            prop_assert_eq!(stream.content_chunk("more"), out.remove(0));
        }
    }
}
