//! An upstream's `chat.completion.chunk` stream as Responses events.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::sse::SseEvent;
use crate::translate::writer::ResponsesWriter;
use crate::translate::{Finish, UpstreamError, Usage};

/// Turns an upstream chat stream (`chat.completion.chunk` payloads) into Responses events.
///
/// [`ChatUpstreamStream::on_event`] takes one SSE event and returns the Responses events it
/// produces; [`ChatUpstreamStream::finish`] must be called when the upstream body ends.
#[derive(Debug, Clone)]
pub struct ChatUpstreamStream {
    /// The writer, created by the first chunk (it carries the id, model and time).
    writer: Option<ResponsesWriter>,
    /// The open message slot.
    text: Option<usize>,
    /// The open reasoning slot.
    reasoning: Option<usize>,
    /// Tool-call slots and call ids by the chunk's `index`.
    calls: BTreeMap<u64, (usize, String)>,
    /// The `finish_reason`, once seen.
    finish: Option<Finish>,
    /// The usage, once seen.
    usage: Option<Usage>,
}

impl Default for ChatUpstreamStream {
    fn default() -> Self {
        ChatUpstreamStream::new()
    }
}

impl ChatUpstreamStream {
    /// A translator for one answer.
    #[must_use]
    pub fn new() -> Self {
        ChatUpstreamStream {
            writer: None,
            text: None,
            reasoning: None,
            calls: BTreeMap::new(),
            finish: None,
            usage: None,
        }
    }

    /// Takes one upstream event.
    pub fn on_event(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if self.writer.as_ref().is_some_and(ResponsesWriter::is_ended) {
            return out;
        }
        let data = event.data.trim();
        if data == crate::translate::chat::DONE {
            self.end(&mut out);
            return out;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return out;
        };
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let err = match error {
                Value::String(message) => {
                    UpstreamError::from_error_object(&json!({"message": message}))
                }
                other => UpstreamError::from_error_object(other),
            };
            self.writer_for(&chunk).fail(&mut out, &err);
            return out;
        }
        self.writer_for(&chunk).start(&mut out);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(chat_usage(usage));
        }
        let choice = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
            });
        let Some(choice) = choice else {
            return out;
        };
        if let Some(delta) = choice.get("delta") {
            self.on_delta(delta, &mut out);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(match reason {
                "length" => Finish::MaxTokens,
                "content_filter" => Finish::ContentFilter,
                _ => Finish::Completed,
            });
        }
        out
    }

    /// Ends the upstream body: completes the response when a `finish_reason` came without
    /// `[DONE]`; otherwise produces nothing, leaving the stream without a terminal event.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if self.finish.is_some() && self.writer.as_ref().is_some_and(|w| !w.is_ended()) {
            self.end(&mut out);
        }
        out
    }

    /// The writer, created from the first chunk's `id`, `model` and `created`.
    fn writer_for(&mut self, chunk: &Value) -> &mut ResponsesWriter {
        self.writer.get_or_insert_with(|| {
            ResponsesWriter::new(
                chunk.get("id").and_then(Value::as_str).unwrap_or(""),
                chunk.get("model").and_then(Value::as_str).unwrap_or(""),
                chunk
                    .get("created")
                    .and_then(Value::as_i64)
                    .unwrap_or_else(crate::clock::unix_now),
            )
        })
    }

    /// One choice's `delta`.
    fn on_delta(&mut self, delta: &Value, out: &mut Vec<SseEvent>) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let reasoning = delta
            .get("reasoning_content")
            .or_else(|| delta.get("reasoning"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !reasoning.is_empty() {
            let slot = *self
                .reasoning
                .get_or_insert_with(|| writer.open_reasoning(out));
            writer.delta(out, slot, reasoning);
        }
        let text = delta.get("content").and_then(Value::as_str).unwrap_or("");
        if !text.is_empty() {
            if let Some(slot) = self.reasoning.take() {
                writer.close(out, slot);
            }
            let slot = *self.text.get_or_insert_with(|| writer.open_message(out));
            writer.delta(out, slot, text);
        }
        let calls = delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for call in calls {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let id = call.get("id").and_then(Value::as_str).unwrap_or("");
            // Some servers send every call at index 0 (or none); a new id is a new call.
            let known = self
                .calls
                .get(&index)
                .filter(|(_, known)| id.is_empty() || id == known)
                .map(|(slot, _)| *slot);
            let slot = match known {
                Some(slot) => slot,
                None => {
                    for open in [self.reasoning.take(), self.text.take()]
                        .into_iter()
                        .flatten()
                    {
                        writer.close(out, open);
                    }
                    let name = call
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let slot = writer.open_call(out, id, name);
                    self.calls.insert(index, (slot, id.to_owned()));
                    slot
                }
            };
            let arguments = call
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("");
            writer.delta(out, slot, arguments);
        }
    }

    /// Completes the response with the finish reason and usage seen.
    fn end(&mut self, out: &mut Vec<SseEvent>) {
        let finish = self.finish.clone().unwrap_or(Finish::Completed);
        let usage = self.usage;
        let writer = self
            .writer
            .get_or_insert_with(|| ResponsesWriter::new("", "", crate::clock::unix_now()));
        writer.finish(out, &finish, usage);
    }
}

/// Responses usage from chat `usage`.
fn chat_usage(usage: &Value) -> Usage {
    let count = |path: &str| usage.pointer(path).and_then(Value::as_u64).unwrap_or(0);
    let input_tokens = count("/prompt_tokens");
    let output_tokens = count("/completion_tokens");
    Usage {
        input_tokens,
        cached_tokens: count("/prompt_tokens_details/cached_tokens"),
        output_tokens,
        reasoning_tokens: count("/completion_tokens_details/reasoning_tokens"),
        total_tokens: usage
            .get("total_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(input_tokens.saturating_add(output_tokens)),
    }
}
