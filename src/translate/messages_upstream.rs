//! Responses → Anthropic Messages, for upstreams that speak only `anthropic_messages`.
//!
//! Requests ([`responses_to_messages`]): `instructions` and every `system`/`developer` message
//! are joined (in order, by a blank line) into `system`, since Anthropic takes system text only
//! at the top. User parts become `text`, `image` and `document` blocks (data URLs as base64
//! sources, other URLs as url sources); assistant text becomes `text` blocks and each
//! `function_call` (or other `*_call` item with a `call_id`) a `tool_use` block; each
//! `*_call_output` becomes a `tool_result` block (one whose call is not in the input, a text
//! block). Consecutive items of one role share a message, as Anthropic expects after a tool
//! call. Function tools, `tool_choice` (`required` is `any`), `parallel_tool_calls: false`
//! (`disable_parallel_tool_use`), `temperature` and `top_p` map. Anthropic requires
//! `max_tokens`: it is the request's `max_output_tokens` (a Chat client's `max_tokens` or
//! `max_completion_tokens`), else [`DEFAULT_MAX_TOKENS`]. `reasoning.effort` enables thinking
//! with a budget of 2,048 (`minimal`, `low`), 8,192 (`medium`) or 16,384 (`high` and above)
//! tokens, kept below `max_tokens` and skipped when that leaves less than Anthropic's 1,024
//! minimum. Reasoning items, non-function tools and `text.format` are dropped and listed;
//! `previous_response_id` is refused.
//!
//! Answers ([`MessagesUpstreamStream`]): Anthropic events become Responses events through
//! [`ResponsesWriter`]: a `text` block a message, a `thinking` block a reasoning summary, a
//! `tool_use` block a function call (its `input_json_delta`s the arguments); `message_delta`
//! carries the stop reason and output tokens and `message_stop` ends the response. An `error`
//! event fails it; a stream that ends before `message_stop` produces no terminal event, so the
//! consumer reports it as cut.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::chat_upstream::{
    call_ids, call_parts, input_items, is_call, is_call_output, message_role, output_text,
    request_fields,
};
use super::sse::SseEvent;
use super::tools::FunctionTool;
use super::writer::ResponsesWriter;
use super::{Finish, TranslateError, UpstreamError, UpstreamRequest, Usage, joined_text, type_of};

/// `max_tokens` when the client set no output limit. Anthropic requires one; 4,096 is what every
/// current Claude model accepts and is enough for a typical turn.
pub const DEFAULT_MAX_TOKENS: u64 = 4_096;
/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1_024;

/// Responses keys that are translated (or read) rather than dropped.
const TRANSLATED_KEYS: &[&str] = &[
    "model",
    "instructions",
    "input",
    "stream",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "temperature",
    "top_p",
    "max_output_tokens",
    "reasoning",
    "text",
    "store",
    "include",
];

/// Translates a Responses request body into a streamed Anthropic Messages body.
///
/// # Errors
///
/// When the body is not an object, `input` is missing or malformed, a message has an unknown
/// role or part, or `previous_response_id` is set.
pub fn responses_to_messages(whole: &Value) -> Result<UpstreamRequest, TranslateError> {
    let (body, mut dropped) = request_fields(whole, "anthropic messages", TRANSLATED_KEYS)?;
    let mut system = Vec::new();
    if let Some(text) = body.get("instructions").and_then(Value::as_str)
        && !text.is_empty()
    {
        system.push(text.to_owned());
    }
    let items = input_items(body.get("input"))?;
    let messages = input_to_messages(&items, &mut system, &mut dropped)?;
    let max_tokens = body
        .get("max_output_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    let mut out = Map::new();
    out.insert(
        "model".to_owned(),
        body.get("model").cloned().unwrap_or(Value::Null),
    );
    out.insert("max_tokens".to_owned(), json!(max_tokens));
    if !system.is_empty() {
        out.insert("system".to_owned(), json!(system.join("\n\n")));
    }
    out.insert("messages".to_owned(), Value::Array(messages));
    out.insert("stream".to_owned(), json!(true));
    add_tools(body, &mut out, &mut dropped);
    for key in ["temperature", "top_p"] {
        if let Some(value) = body.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    if let Some(effort) = whole.pointer("/reasoning/effort").and_then(Value::as_str) {
        match thinking_budget(effort, max_tokens) {
            Some(budget) => {
                out.insert(
                    "thinking".to_owned(),
                    json!({"type": "enabled", "budget_tokens": budget}),
                );
            }
            None => dropped.push("reasoning.effort".to_owned()),
        }
    }
    if whole.pointer("/text/format").is_some_and(|f| !f.is_null()) {
        dropped.push("text.format".to_owned());
    }
    Ok(UpstreamRequest {
        body: Value::Object(out),
        dropped,
    })
}

/// The thinking budget for an effort, below `max_tokens`; `None` for `none` or no room.
fn thinking_budget(effort: &str, max_tokens: u64) -> Option<u64> {
    let wanted: u64 = match effort {
        "none" => return None,
        "minimal" | "low" => 2_048,
        "medium" => 8_192,
        _ => 16_384,
    };
    let budget = wanted.min(max_tokens.saturating_sub(1));
    (budget >= MIN_THINKING_BUDGET).then_some(budget)
}

/// Messages under construction: consecutive blocks of one role share a message.
struct Conversation {
    messages: Vec<Value>,
}

impl Conversation {
    /// Appends a block to the last message when it has `role`, else to a new one.
    fn push(&mut self, role: &str, block: Value) {
        if let Some(Value::Object(last)) = self.messages.last_mut()
            && last.get("role").and_then(Value::as_str) == Some(role)
            && let Some(Value::Array(content)) = last.get_mut("content")
        {
            content.push(block);
            return;
        }
        self.messages
            .push(json!({"role": role, "content": [block]}));
    }
}

/// The messages for the input items; system text goes to `system`.
fn input_to_messages(
    items: &[Value],
    system: &mut Vec<String>,
    dropped: &mut Vec<String>,
) -> Result<Vec<Value>, TranslateError> {
    let calls = call_ids(items);
    let mut conversation = Conversation {
        messages: Vec::new(),
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("input[{i}]");
        if !item.is_object() {
            return Err(TranslateError::invalid(field, "must be an object"));
        }
        let content = item.get("content").unwrap_or(&Value::Null);
        if let Some(role) = message_role(item) {
            match role {
                "system" | "developer" => {
                    let text = joined_text(content, "\n\n");
                    if !text.is_empty() {
                        system.push(text);
                    }
                }
                "user" => {
                    for block in user_blocks(content, &field)? {
                        conversation.push("user", block);
                    }
                }
                "assistant" => {
                    for text in assistant_texts(content) {
                        conversation.push("assistant", json!({"type": "text", "text": text}));
                    }
                }
                other => {
                    return Err(TranslateError::invalid(
                        format!("{field}.role"),
                        format!(
                            "unknown role `{other}`; expected user, assistant, system or developer"
                        ),
                    ));
                }
            }
        } else if is_call(item) {
            let (name, arguments) = call_parts(item);
            let input = match serde_json::from_str::<Value>(&arguments) {
                Ok(value @ Value::Object(_)) => value,
                _ => json!({}),
            };
            let id = item.get("call_id").and_then(Value::as_str).unwrap_or("");
            conversation.push(
                "assistant",
                json!({"type": "tool_use", "id": id, "name": name, "input": input}),
            );
        } else if is_call_output(item) {
            let call_id = item.get("call_id").and_then(Value::as_str).unwrap_or("");
            let block = if calls.contains(call_id) {
                let content = tool_result_content(item.get("output"), &field)?;
                json!({"type": "tool_result", "tool_use_id": call_id, "content": content})
            } else {
                dropped.push(format!(
                    "{field} (tool output without its call, sent as text)"
                ));
                json!({"type": "text", "text": non_empty(output_text(item.get("output")))})
            };
            conversation.push("user", block);
        } else {
            dropped.push(format!("{field} ({})", type_of(item)));
        }
    }
    Ok(conversation.messages)
}

/// Anthropic refuses empty text blocks.
fn non_empty(text: String) -> String {
    if text.is_empty() {
        " ".to_owned()
    } else {
        text
    }
}

/// The non-empty texts of assistant content (`output_text` parts and refusals).
fn assistant_texts(content: &Value) -> Vec<String> {
    let texts: Vec<String> = match content {
        Value::String(text) => vec![text.clone()],
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| {
                p.get("text")
                    .or_else(|| p.get("refusal"))
                    .and_then(Value::as_str)
            })
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    texts.into_iter().filter(|t| !t.is_empty()).collect()
}

/// User content as Anthropic blocks (empty text parts skipped).
fn user_blocks(content: &Value, field: &str) -> Result<Vec<Value>, TranslateError> {
    let parts = match content {
        Value::String(text) if text.is_empty() => return Ok(Vec::new()),
        Value::String(text) => return Ok(vec![json!({"type": "text", "text": text})]),
        Value::Array(parts) => parts,
        _ => {
            return Err(TranslateError::invalid(
                format!("{field}.content"),
                "must be a string or a list of parts",
            ));
        }
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let field = format!("{field}.content[{j}]");
        match type_of(part) {
            "input_text" | "output_text" | "text" => {
                let text = part.get("text").and_then(Value::as_str).unwrap_or("");
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
            }
            "input_image" => {
                let url = part.get("image_url").and_then(Value::as_str).ok_or_else(|| {
                    TranslateError::unsupported(
                        format!("{field}.image_url"),
                        "only images given by url or data url can be sent to an anthropic provider",
                    )
                })?;
                blocks.push(json!({"type": "image", "source": source(url)}));
            }
            "input_file" => {
                let url = part
                    .get("file_data")
                    .or_else(|| part.get("file_url"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::unsupported(
                            field.clone(),
                            "only files given as data or url can be sent to an anthropic provider",
                        )
                    })?;
                let mut block = json!({"type": "document", "source": source(url)});
                if let Some(name) = part.get("filename").filter(|n| n.is_string()) {
                    block["title"] = name.clone();
                }
                blocks.push(block);
            }
            other => {
                return Err(TranslateError::unsupported(
                    format!("{field}.type"),
                    format!("`{other}` parts cannot be sent to an anthropic provider"),
                ));
            }
        }
    }
    Ok(blocks)
}

/// An Anthropic source for a URL: `data:<type>;base64,<data>` as base64, anything else as url.
fn source(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((media_type, data)) = rest.split_once(";base64,")
    {
        return json!({"type": "base64", "media_type": media_type, "data": data});
    }
    json!({"type": "url", "url": url})
}

/// A tool output as `tool_result` content: a string, or text and image blocks.
fn tool_result_content(output: Option<&Value>, field: &str) -> Result<Value, TranslateError> {
    let Some(Value::Array(parts)) = output else {
        return Ok(json!(output_text(output)));
    };
    let mut blocks = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        match type_of(part) {
            "input_image" => {
                let url = part.get("image_url").and_then(Value::as_str).ok_or_else(|| {
                    TranslateError::unsupported(
                        format!("{field}.output[{k}].image_url"),
                        "only images given by url or data url can be sent to an anthropic provider",
                    )
                })?;
                blocks.push(json!({"type": "image", "source": source(url)}));
            }
            _ => {
                let text = part.get("text").and_then(Value::as_str).unwrap_or("");
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
            }
        }
    }
    Ok(Value::Array(blocks))
}

/// Function tools and the tool choice; other tools are dropped and listed.
fn add_tools(body: &Map<String, Value>, out: &mut Map<String, Value>, dropped: &mut Vec<String>) {
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut list = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        match FunctionTool::in_responses(tool) {
            Some(function) => list.push(function.to_anthropic()),
            None => dropped.push(format!("tools[{i}] ({})", type_of(tool))),
        }
    }
    if list.is_empty() {
        return;
    }
    out.insert("tools".to_owned(), Value::Array(list));
    let mut choice = match body.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(mode)) => match mode.as_str() {
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            _ => Some(json!({"type": "auto"})),
        },
        Some(choice) if type_of(choice) == "function" => choice
            .get("name")
            .and_then(Value::as_str)
            .map(|name| json!({"type": "tool", "name": name})),
        Some(_) => {
            dropped.push("tool_choice".to_owned());
            None
        }
    };
    if body.get("parallel_tool_calls").and_then(Value::as_bool) == Some(false) {
        let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = json!(true);
        }
    }
    if let Some(choice) = choice {
        out.insert("tool_choice".to_owned(), choice);
    }
}

/// Turns an upstream Anthropic stream into Responses events.
///
/// [`MessagesUpstreamStream::on_event`] takes one SSE event and returns the Responses events it
/// produces; [`MessagesUpstreamStream::finish`] must be called when the upstream body ends.
#[derive(Debug, Clone, Default)]
pub struct MessagesUpstreamStream {
    /// The writer, created by `message_start`.
    writer: Option<ResponsesWriter>,
    /// Writer slots by Anthropic block index (blocks that produce no item are absent).
    blocks: BTreeMap<u64, usize>,
    /// The stop reason from `message_delta`.
    finish: Option<Finish>,
    /// Input token counts from `message_start` (uncached, cache read, cache write).
    input: (u64, u64, u64),
    /// Output tokens, as last reported.
    output_tokens: u64,
}

impl MessagesUpstreamStream {
    /// A translator for one answer.
    #[must_use]
    pub fn new() -> Self {
        MessagesUpstreamStream::default()
    }

    /// Takes one upstream event.
    pub fn on_event(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if self.writer.as_ref().is_some_and(ResponsesWriter::is_ended) {
            return out;
        }
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            return out;
        };
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("");
        match kind {
            "message_start" => {
                let message = data.get("message").unwrap_or(&Value::Null);
                self.read_usage(message.get("usage"));
                self.writer_for(message).start(&mut out);
            }
            "content_block_start" => self.on_block_start(&data, &mut out),
            "content_block_delta" => self.on_block_delta(&data, &mut out),
            "content_block_stop" => {
                let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                if let Some(slot) = self.blocks.get(&index).copied() {
                    self.writer_for(&Value::Null).close(&mut out, slot);
                }
            }
            "message_delta" => {
                self.read_usage(data.get("usage"));
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.finish = Some(match reason {
                        "max_tokens" | "model_context_window_exceeded" => Finish::MaxTokens,
                        "refusal" => Finish::ContentFilter,
                        _ => Finish::Completed,
                    });
                }
            }
            "message_stop" => {
                let finish = self.finish.clone().unwrap_or(Finish::Completed);
                let usage = self.usage();
                self.writer_for(&Value::Null)
                    .finish(&mut out, &finish, Some(usage));
            }
            "error" => {
                let error = data.get("error").filter(|e| e.is_object()).unwrap_or(&data);
                let err = UpstreamError::from_error_object(error);
                self.writer_for(&Value::Null).fail(&mut out, &err);
            }
            _ => {}
        }
        out
    }

    /// Ends the upstream body. Anthropic always ends with `message_stop` (or `error`), so this
    /// adds nothing: a stream cut before it stays without a terminal event.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        Vec::new()
    }

    /// The writer, created from `message_start`'s `message` (its `id` and `model`).
    fn writer_for(&mut self, message: &Value) -> &mut ResponsesWriter {
        self.writer.get_or_insert_with(|| {
            ResponsesWriter::new(
                message.get("id").and_then(Value::as_str).unwrap_or(""),
                message.get("model").and_then(Value::as_str).unwrap_or(""),
                crate::clock::unix_now(),
            )
        })
    }

    /// `content_block_start`: opens the item the block becomes.
    fn on_block_start(&mut self, data: &Value, out: &mut Vec<SseEvent>) {
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        let block = data.get("content_block").unwrap_or(&Value::Null);
        let writer = self.writer_for(&Value::Null);
        let slot = match type_of(block) {
            "text" => {
                let slot = writer.open_message(out);
                let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                writer.delta(out, slot, text);
                slot
            }
            "thinking" => {
                let slot = writer.open_reasoning(out);
                let text = block.get("thinking").and_then(Value::as_str).unwrap_or("");
                writer.delta(out, slot, text);
                slot
            }
            "tool_use" => {
                let id = block.get("id").and_then(Value::as_str).unwrap_or("");
                let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                let slot = writer.open_call(out, id, name);
                if let Some(input) = block
                    .get("input")
                    .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                {
                    writer.delta(out, slot, &input.to_string());
                }
                slot
            }
            _ => return,
        };
        self.blocks.insert(index, slot);
    }

    /// `content_block_delta`: text, thinking or tool-input fragments.
    fn on_block_delta(&mut self, data: &Value, out: &mut Vec<SseEvent>) {
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        let Some(slot) = self.blocks.get(&index).copied() else {
            return;
        };
        let delta = data.get("delta").unwrap_or(&Value::Null);
        let key = match type_of(delta) {
            "text_delta" => "text",
            "thinking_delta" => "thinking",
            "input_json_delta" => "partial_json",
            _ => return,
        };
        let fragment = delta.get(key).and_then(Value::as_str).unwrap_or("");
        self.writer_for(&Value::Null).delta(out, slot, fragment);
    }

    /// Reads the counts a `usage` object carries (absent ones keep their value).
    fn read_usage(&mut self, usage: Option<&Value>) {
        let Some(usage) = usage.filter(|u| u.is_object()) else {
            return;
        };
        let count = |key: &str| usage.get(key).and_then(Value::as_u64);
        let (input, read, write) = self.input;
        self.input = (
            count("input_tokens").unwrap_or(input),
            count("cache_read_input_tokens").unwrap_or(read),
            count("cache_creation_input_tokens").unwrap_or(write),
        );
        if let Some(output) = count("output_tokens") {
            self.output_tokens = output;
        }
    }

    /// Responses usage: input counts cached and cache-written tokens too.
    fn usage(&self) -> Usage {
        let (input, read, write) = self.input;
        let input_tokens = input.saturating_add(read).saturating_add(write);
        Usage {
            input_tokens,
            cached_tokens: read,
            output_tokens: self.output_tokens,
            reasoning_tokens: 0,
            total_tokens: input_tokens.saturating_add(self.output_tokens),
        }
    }
}

#[cfg(test)]
mod tests;
