//! Responses → Chat Completions, for upstreams that speak only `openai_chat`.
//!
//! Requests ([`responses_to_chat`]): `instructions` and `system`/`developer` messages become
//! `system` messages (the role every OpenAI-compatible server knows), user parts become `text`,
//! `image_url` and `file` parts, assistant text stays in order, each `function_call` item (and
//! any other `*_call` item with a `call_id`) becomes a `tool_calls` entry on the assistant
//! message before it, and each `*_call_output` a `tool` message (one whose call is not in the
//! input becomes a user message, as [`super::responses::shape_for_codex`] does). Function tools,
//! `tool_choice`, `parallel_tool_calls`, `temperature`, `top_p`, `user`, `reasoning.effort`
//! (`reasoning_effort`) and `text.format` (`response_format`) map; `max_output_tokens` is sent
//! as `max_tokens`, which OpenAI-compatible servers (vLLM, Ollama, llama.cpp, DeepSeek, Groq)
//! accept more widely than `max_completion_tokens`. The upstream is always asked for a stream
//! with usage. Reasoning items and non-function tools are dropped and listed;
//! `previous_response_id` is refused, since a Chat upstream keeps no state.
//!
//! Answers ([`ChatUpstreamStream`]): `chat.completion.chunk` payloads become Responses events
//! through [`ResponsesWriter`]: `delta.content` a message, `delta.reasoning_content` (or
//! `reasoning`) a reasoning summary, `delta.tool_calls` function calls by index; the
//! `finish_reason` and the usage chunk end the response at `data: [DONE]`. A chunk carrying
//! `error` fails it. A stream that ends without `[DONE]` after a `finish_reason` still
//! completes; one that ends before any `finish_reason` produces no terminal event, so the
//! consumer reports it as cut.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::sse::SseEvent;
use super::writer::ResponsesWriter;
use super::{Finish, TranslateError, UpstreamError, UpstreamRequest, Usage, joined_text, type_of};

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
    "user",
    "reasoning",
    "text",
    "store",
    "include",
];

/// Translates a Responses request body into a streamed Chat Completions body.
///
/// # Errors
///
/// When the body is not an object, `input` is missing or malformed, a message has an unknown
/// role or part, or `previous_response_id` is set.
pub fn responses_to_chat(whole: &Value) -> Result<UpstreamRequest, TranslateError> {
    let (body, mut dropped) = request_fields(whole, "chat completions", TRANSLATED_KEYS)?;
    let mut messages = Vec::new();
    if let Some(text) = body.get("instructions").and_then(Value::as_str)
        && !text.is_empty()
    {
        messages.push(json!({"role": "system", "content": text}));
    }
    let items = input_items(body.get("input"))?;
    input_to_messages(&items, &mut messages, &mut dropped)?;
    let mut out = Map::new();
    out.insert(
        "model".to_owned(),
        body.get("model").cloned().unwrap_or(Value::Null),
    );
    out.insert("messages".to_owned(), Value::Array(messages));
    out.insert("stream".to_owned(), json!(true));
    out.insert("stream_options".to_owned(), json!({"include_usage": true}));
    let tools = tools(body.get("tools"), &mut dropped);
    if !tools.is_empty() {
        out.insert("tools".to_owned(), Value::Array(tools));
        if let Some(choice) = body.get("tool_choice").filter(|c| !c.is_null()) {
            match tool_choice(choice) {
                Some(choice) => {
                    out.insert("tool_choice".to_owned(), choice);
                }
                None => dropped.push("tool_choice".to_owned()),
            }
        }
        if let Some(parallel) = body.get("parallel_tool_calls").filter(|p| p.is_boolean()) {
            out.insert("parallel_tool_calls".to_owned(), parallel.clone());
        }
    }
    for key in ["temperature", "top_p", "user"] {
        if let Some(value) = body.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    if let Some(max) = body.get("max_output_tokens").filter(|v| !v.is_null()) {
        out.insert("max_tokens".to_owned(), max.clone());
    }
    if let Some(effort) = whole.pointer("/reasoning/effort").filter(|e| e.is_string()) {
        out.insert("reasoning_effort".to_owned(), effort.clone());
    }
    if let Some(format) = whole.pointer("/text/format").filter(|f| !f.is_null()) {
        out.insert("response_format".to_owned(), response_format(format)?);
    }
    if whole
        .pointer("/text/verbosity")
        .is_some_and(|v| !v.is_null())
    {
        dropped.push("text.verbosity".to_owned());
    }
    Ok(UpstreamRequest {
        body: Value::Object(out),
        dropped,
    })
}

/// `input` as a list of items (a string is one user message).
/// The object of a Responses request for a provider that speaks `api` (named in the error) and
/// keeps no conversation state, with the keys it will not translate (not in `translated`).
///
/// # Errors
///
/// When the body is not an object, or refers to a stored `previous_response_id`.
pub(crate) fn request_fields<'a>(
    whole: &'a Value,
    api: &str,
    translated: &[&str],
) -> Result<(&'a Map<String, Value>, Vec<String>), TranslateError> {
    let Value::Object(body) = whole else {
        return Err(TranslateError::NotAnObject);
    };
    if body
        .get("previous_response_id")
        .is_some_and(|v| !v.is_null())
    {
        return Err(TranslateError::unsupported(
            "previous_response_id",
            format!(
                "this provider speaks {api} and keeps no responses; send the whole conversation"
            ),
        ));
    }
    let dropped = body
        .iter()
        .filter(|(key, value)| !translated.contains(&key.as_str()) && !value.is_null())
        .map(|(key, _)| key.clone())
        .collect();
    Ok((body, dropped))
}

pub(crate) fn input_items(input: Option<&Value>) -> Result<Vec<Value>, TranslateError> {
    match input {
        None | Some(Value::Null) => Err(TranslateError::Missing("input".to_owned())),
        Some(Value::String(text)) => Ok(vec![
            json!({"type": "message", "role": "user", "content": text}),
        ]),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(TranslateError::invalid(
            "input",
            "must be a string or a list of items",
        )),
    }
}

/// The `call_id`s of every tool call in the input.
pub(crate) fn call_ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .filter(|item| is_call(item))
        .filter_map(|item| item.get("call_id").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Whether an item is a tool call (`function_call`, `custom_tool_call`, `local_shell_call`, …).
pub(crate) fn is_call(item: &Value) -> bool {
    type_of(item).ends_with("_call") && item.get("call_id").is_some_and(Value::is_string)
}

/// Whether an item is a tool call's output.
pub(crate) fn is_call_output(item: &Value) -> bool {
    type_of(item).ends_with("_call_output")
}

/// The role of a message item (an item with a `role` and no `type` is a message too).
pub(crate) fn message_role(item: &Value) -> Option<&str> {
    let kind = type_of(item);
    if kind == "message" || kind.is_empty() {
        item.get("role").and_then(Value::as_str)
    } else {
        None
    }
}

/// A call item's name and arguments: `name` (else the item type) and `arguments` (else `input`
/// or `action` as JSON).
pub(crate) fn call_parts(item: &Value) -> (String, String) {
    let name = item
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_else(|| type_of(item))
        .to_owned();
    let arguments = match item
        .get("arguments")
        .or_else(|| item.get("input"))
        .or_else(|| item.get("action"))
    {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "{}".to_owned(),
        Some(other) => other.to_string(),
    };
    (name, arguments)
}

/// A tool output's text: a string as is, text parts joined, anything else as JSON.
pub(crate) fn output_text(output: Option<&Value>) -> String {
    match output {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(parts @ Value::Array(_)) => joined_text(parts, "\n"),
        Some(other) => other.to_string(),
    }
}

/// Appends the chat messages for the input items.
fn input_to_messages(
    items: &[Value],
    messages: &mut Vec<Value>,
    dropped: &mut Vec<String>,
) -> Result<(), TranslateError> {
    let calls = call_ids(items);
    for (i, item) in items.iter().enumerate() {
        let field = format!("input[{i}]");
        if !item.is_object() {
            return Err(TranslateError::invalid(field, "must be an object"));
        }
        if let Some(role) = message_role(item) {
            message(item, role, &field, messages)?;
        } else if is_call(item) {
            let (name, arguments) = call_parts(item);
            let call = json!({
                "id": item.get("call_id").and_then(Value::as_str).unwrap_or(""),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            });
            push_call(messages, call);
        } else if is_call_output(item) {
            let call_id = item.get("call_id").and_then(Value::as_str).unwrap_or("");
            let text = output_text(item.get("output"));
            if calls.contains(call_id) {
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": text}));
            } else {
                dropped.push(format!(
                    "{field} (tool output without its call, sent as a message)"
                ));
                messages.push(json!({"role": "user", "content": text}));
            }
        } else {
            dropped.push(format!("{field} ({})", type_of(item)));
        }
    }
    Ok(())
}

/// Adds a tool call to the last message when it is an assistant message, else to a new one.
fn push_call(messages: &mut Vec<Value>, call: Value) {
    if let Some(last) = messages.last_mut()
        && last.get("role").and_then(Value::as_str) == Some("assistant")
        && let Value::Object(fields) = last
    {
        match fields.get_mut("tool_calls") {
            Some(Value::Array(calls)) => calls.push(call),
            _ => {
                fields.insert("tool_calls".to_owned(), json!([call]));
            }
        }
        return;
    }
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
}

/// One message item.
fn message(
    item: &Value,
    role: &str,
    field: &str,
    messages: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    let content = item.get("content").unwrap_or(&Value::Null);
    match role {
        "system" | "developer" => {
            let text = joined_text(content, "\n\n");
            if !text.is_empty() {
                messages.push(json!({"role": "system", "content": text}));
            }
        }
        "assistant" => {
            let text = joined_text_or_refusal(content);
            if !text.is_empty() {
                messages.push(json!({"role": "assistant", "content": text}));
            }
        }
        "user" => messages.push(json!({"role": "user", "content": user_content(content, field)?})),
        other => {
            return Err(TranslateError::invalid(
                format!("{field}.role"),
                format!("unknown role `{other}`; expected user, assistant, system or developer"),
            ));
        }
    }
    Ok(())
}

/// The text of assistant content: `output_text` parts and refusals, in order.
fn joined_text_or_refusal(content: &Value) -> String {
    match content {
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| {
                p.get("text")
                    .or_else(|| p.get("refusal"))
                    .and_then(Value::as_str)
            })
            .collect(),
        other => joined_text(other, ""),
    }
}

/// User content: one text part as a string, else a list of chat parts.
fn user_content(content: &Value, field: &str) -> Result<Value, TranslateError> {
    let parts = match content {
        Value::String(text) => return Ok(json!(text)),
        Value::Array(parts) => parts,
        _ => {
            return Err(TranslateError::invalid(
                format!("{field}.content"),
                "must be a string or a list of parts",
            ));
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let field = format!("{field}.content[{j}]");
        out.push(match type_of(part) {
            "input_text" | "output_text" | "text" => {
                json!({"type": "text", "text": part.get("text").and_then(Value::as_str).unwrap_or("")})
            }
            "input_image" => {
                let url = part
                    .get("image_url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::unsupported(
                            format!("{field}.image_url"),
                            "only images given by url or data url can be sent to a chat provider",
                        )
                    })?;
                let detail = part.get("detail").and_then(Value::as_str).unwrap_or("auto");
                json!({"type": "image_url", "image_url": {"url": url, "detail": detail}})
            }
            "input_file" => {
                let mut file = Map::new();
                for key in ["file_data", "filename", "file_id"] {
                    if let Some(value) = part.get(key).filter(|v| v.is_string()) {
                        file.insert(key.to_owned(), value.clone());
                    }
                }
                json!({"type": "file", "file": file})
            }
            other => {
                return Err(TranslateError::unsupported(
                    format!("{field}.type"),
                    format!("`{other}` parts cannot be sent to a chat provider"),
                ));
            }
        });
    }
    if let [only] = out.as_slice()
        && type_of(only) == "text"
    {
        return Ok(only["text"].clone());
    }
    Ok(Value::Array(out))
}

/// Function tools as chat tools; other tools are dropped and listed.
fn tools(tools: Option<&Value>, dropped: &mut Vec<String>) -> Vec<Value> {
    let Some(Value::Array(tools)) = tools else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let name = tool.get("name").and_then(Value::as_str);
        let (true, Some(name)) = (type_of(tool) == "function", name) else {
            dropped.push(format!("tools[{i}] ({})", type_of(tool)));
            continue;
        };
        let mut function = Map::new();
        function.insert("name".to_owned(), json!(name));
        if let Some(description) = tool.get("description").filter(|d| d.is_string()) {
            function.insert("description".to_owned(), description.clone());
        }
        let parameters = tool
            .get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        function.insert("parameters".to_owned(), parameters);
        if let Some(strict) = tool.get("strict").filter(|s| s.is_boolean()) {
            function.insert("strict".to_owned(), strict.clone());
        }
        out.push(json!({"type": "function", "function": function}));
    }
    out
}

/// Responses `tool_choice` → chat `tool_choice`; `None` for choices of non-function tools.
fn tool_choice(choice: &Value) -> Option<Value> {
    if let Some(mode) = choice.as_str() {
        return Some(json!(mode));
    }
    let function = |t: &Value| {
        t.get("name")
            .and_then(Value::as_str)
            .map(|name| json!({"type": "function", "function": {"name": name}}))
    };
    match type_of(choice) {
        "function" => function(choice),
        "allowed_tools" => {
            let tools: Vec<Value> = choice
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(function)
                .collect();
            let mode = choice.get("mode").and_then(Value::as_str).unwrap_or("auto");
            Some(json!({"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}}))
        }
        _ => None,
    }
}

/// Responses `text.format` → chat `response_format`.
fn response_format(format: &Value) -> Result<Value, TranslateError> {
    match type_of(format) {
        "text" => Ok(json!({"type": "text"})),
        "json_object" => Ok(json!({"type": "json_object"})),
        "json_schema" => {
            let mut schema = Map::new();
            for key in ["name", "schema", "strict", "description"] {
                if let Some(value) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.to_owned(), value.clone());
                }
            }
            Ok(json!({"type": "json_schema", "json_schema": schema}))
        }
        other => Err(TranslateError::invalid(
            "text.format.type",
            format!("unknown format `{other}`; expected text, json_object or json_schema"),
        )),
    }
}

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
        if data == super::chat::DONE {
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

#[cfg(test)]
mod tests;
