//! Anthropic Messages ⇄ Responses.
//!
//! Requests: `system` becomes a `developer` input message (as in [`super::chat`]); text, image
//! and document blocks become Responses content parts; `tool_use` blocks become `function_call`
//! items and `tool_result` blocks `function_call_output` items (a result with `is_error` is
//! prefixed with `[tool error] `, since Responses outputs carry no error flag); `thinking` and
//! `redacted_thinking` blocks from earlier turns are dropped, because their signatures are
//! Anthropic's and bitrouter can neither verify nor produce them. `thinking.budget_tokens` picks
//! the reasoning effort: below 4,096 `low`, below 16,384 `medium`, else `high`. For the Codex
//! backend `max_tokens` and sampling parameters are not sent; for any other upstream
//! ([`Backend::Generic`]) `temperature`, `top_p` and `max_tokens` (as `max_output_tokens`) are.
//! Server tools are not sent; stop sequences are applied on the way back.
//!
//! Responses: [`MessagesStream`] produces Anthropic stream events. Anthropic streams content
//! blocks one at a time, so output items that the backend interleaves (parallel tool calls) are
//! queued and sent one after the other in order of appearance. When the client enabled
//! thinking, reasoning summaries become `thinking` blocks whose `signature` is empty and which get
//! no `signature_delta`: the Anthropic SDK accumulates such blocks without complaint (checked
//! against `anthropic` 2.12's `accumulate_event`), and a signature is never forged.

use serde_json::{Map, Value, json};

use super::chat::summary_texts;
use super::names::ToolNameMap;
use super::responses::{ItemRef, ResponsesEvent, shape_for_codex};
use super::sse::SseEvent;
use super::stop::{StopScanner, truncate_at_stop};
use super::{
    Backend, Finish, TranslateError, UpstreamError, Usage, derived_id, input_message, input_text,
    type_of,
};

/// The id prefix of messages.
const ID_PREFIX: &str = "msg_";
/// The prefix that marks a tool result the client flagged with `is_error`.
const TOOL_ERROR_PREFIX: &str = "[tool error] ";
/// Budgets below this many tokens ask for `low` effort.
const LOW_BUDGET_BELOW: u64 = 4_096;
/// Budgets below this many tokens (and not low) ask for `medium` effort.
const MEDIUM_BUDGET_BELOW: u64 = 16_384;

/// Request keys that are translated (or read) rather than dropped.
const TRANSLATED_KEYS: &[&str] = &[
    "model",
    "messages",
    "system",
    "stream",
    "tools",
    "tool_choice",
    "thinking",
    "stop_sequences",
];

/// Keys a generic Responses upstream gets (as they are, or as `max_output_tokens`).
const GENERIC_KEYS: &[&str] = &["temperature", "top_p", "max_tokens"];

/// A Messages request translated for the Codex backend, with what is needed to translate back.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesRequest {
    /// The Responses body to send upstream (already shaped for the backend).
    pub responses_body: Value,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// The model the client asked for.
    pub model: String,
    /// The tool names that were shortened.
    pub tool_names: ToolNameMap,
    /// The client's stop sequences, applied on the way back.
    pub stop: Vec<String>,
    /// Whether the client enabled thinking, so reasoning summaries are returned as thinking
    /// blocks.
    pub thinking: bool,
    /// Request fields and blocks that were not sent upstream, for logs.
    pub dropped: Vec<String>,
}

/// Translates an Anthropic Messages request body into a Responses body for the Codex backend.
///
/// # Errors
///
/// When the body is not an object, `model` or `messages` is missing, `messages` is not a
/// non-empty list, a message has a role other than `user` / `assistant`, or a content block,
/// tool choice or thinking setting has an unknown shape.
pub fn messages_to_responses(body: Value) -> Result<MessagesRequest, TranslateError> {
    messages_to_responses_for(body, Backend::Codex)
}

/// Translates an Anthropic Messages request body into a Responses body for `backend`: shaped
/// for the Codex backend as [`messages_to_responses`] does, or, for any other upstream, with the
/// client's `temperature`, `top_p` and `max_tokens` (as `max_output_tokens`) kept.
///
/// # Errors
///
/// As [`messages_to_responses`].
pub fn messages_to_responses_for(
    body: Value,
    backend: Backend,
) -> Result<MessagesRequest, TranslateError> {
    let Value::Object(body) = body else {
        return Err(TranslateError::NotAnObject);
    };
    let model = match body.get("model") {
        Some(Value::String(model)) => model.clone(),
        None | Some(Value::Null) => return Err(TranslateError::Missing("model".to_owned())),
        Some(_) => return Err(TranslateError::invalid("model", "must be a string")),
    };
    let messages = match body.get("messages") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) => {
            return Err(TranslateError::invalid("messages", "must not be empty"));
        }
        None | Some(Value::Null) => return Err(TranslateError::Missing("messages".to_owned())),
        Some(_) => return Err(TranslateError::invalid("messages", "must be a list")),
    };
    let kept = match backend {
        Backend::Codex => &[][..],
        Backend::Generic => GENERIC_KEYS,
    };
    let mut dropped: Vec<String> = body
        .iter()
        .filter(|(key, value)| {
            !TRANSLATED_KEYS.contains(&key.as_str())
                && !kept.contains(&key.as_str())
                && !value.is_null()
        })
        .map(|(key, _)| key.clone())
        .collect();
    let tool_names = ToolNameMap::build(tool_names_in(&body, messages));
    let mut input = system_items(body.get("system"))?;
    for (i, message) in messages.iter().enumerate() {
        message_items(i, message, &tool_names, &mut input, &mut dropped)?;
    }
    let mut out = Map::new();
    out.insert("model".to_owned(), json!(model));
    out.insert("instructions".to_owned(), json!(""));
    out.insert("input".to_owned(), Value::Array(input));
    add_tools(&body, &tool_names, &mut out, &mut dropped)?;
    let (reasoning, thinking) = reasoning(body.get("thinking"))?;
    if let Some(reasoning) = reasoning {
        out.insert("reasoning".to_owned(), reasoning);
    }
    let responses_body = match backend {
        Backend::Codex => {
            let shaped = shape_for_codex(Value::Object(out))?;
            dropped.extend(shaped.dropped);
            shaped.body
        }
        Backend::Generic => {
            if !out.contains_key("tools") {
                out.remove("parallel_tool_calls");
            }
            for key in ["temperature", "top_p"] {
                if let Some(value) = body.get(key).filter(|v| !v.is_null()) {
                    out.insert(key.to_owned(), value.clone());
                }
            }
            if let Some(limit) = body.get("max_tokens").filter(|v| !v.is_null()) {
                out.insert("max_output_tokens".to_owned(), limit.clone());
            }
            out.insert("stream".to_owned(), json!(true));
            Value::Object(out)
        }
    };
    Ok(MessagesRequest {
        responses_body,
        stream: body.get("stream").and_then(Value::as_bool) == Some(true),
        model,
        tool_names,
        stop: stop_sequences(body.get("stop_sequences"))?,
        thinking,
        dropped,
    })
}

/// Every tool name the request mentions: definitions, the tool choice, and earlier calls.
fn tool_names_in<'a>(body: &'a Map<String, Value>, messages: &'a [Value]) -> Vec<&'a str> {
    let name = |v: &'a Value| v.get("name").and_then(Value::as_str);
    let defined = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(name);
    let chosen = body.get("tool_choice").and_then(name);
    let called = messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|block| type_of(block) == "tool_use")
        .filter_map(name);
    defined.chain(chosen).chain(called).collect()
}

/// `system` (a string or text blocks) → one `developer` message, or nothing.
fn system_items(system: Option<&Value>) -> Result<Vec<Value>, TranslateError> {
    let parts = match system {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(text)) if text.is_empty() => return Ok(Vec::new()),
        Some(Value::String(text)) => vec![input_text(text)],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(
                |(i, block)| match block.get("text").and_then(Value::as_str) {
                    Some(text) if type_of(block) == "text" => Ok(input_text(text)),
                    _ => Err(TranslateError::invalid(
                        format!("system[{i}]"),
                        "must be a text block",
                    )),
                },
            )
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(TranslateError::invalid(
                "system",
                "must be a string or a list of text blocks",
            ));
        }
    };
    Ok(vec![input_message("developer", parts)])
}

/// Content parts waiting to become one message, flushed when an item must come between.
struct Pending<'a> {
    /// `user` or `assistant`.
    role: &'a str,
    /// Parts collected so far.
    parts: Vec<Value>,
}

impl Pending<'_> {
    /// Pushes the collected parts as a message, if there are any.
    fn flush(&mut self, input: &mut Vec<Value>) {
        if self.parts.is_empty() {
            return;
        }
        let parts = std::mem::take(&mut self.parts);
        input.push(input_message(self.role, parts));
    }
}

/// Appends the input items for message `i`, keeping the order of its blocks.
fn message_items(
    i: usize,
    message: &Value,
    names: &ToolNameMap,
    input: &mut Vec<Value>,
    dropped: &mut Vec<String>,
) -> Result<(), TranslateError> {
    let role = match message.get("role").and_then(Value::as_str) {
        Some(role @ ("user" | "assistant")) => role,
        Some(other) => {
            return Err(TranslateError::invalid(
                format!("messages[{i}].role"),
                format!("unknown role `{other}`; expected user or assistant"),
            ));
        }
        None => return Err(TranslateError::Missing(format!("messages[{i}].role"))),
    };
    let mut pending = Pending {
        role,
        parts: Vec::new(),
    };
    match message.get("content") {
        Some(Value::String(text)) if text.is_empty() => {}
        Some(Value::String(text)) => pending.parts.push(text_part(role, text)),
        Some(Value::Array(blocks)) => {
            for (j, block) in blocks.iter().enumerate() {
                let field = format!("messages[{i}].content[{j}]");
                block_items(block, &field, names, &mut pending, input, dropped)?;
            }
        }
        _ => {
            return Err(TranslateError::invalid(
                format!("messages[{i}].content"),
                "must be a string or a list of content blocks",
            ));
        }
    }
    pending.flush(input);
    Ok(())
}

/// A text part in the form the role needs (`input_text` or `output_text`).
fn text_part(role: &str, text: &str) -> Value {
    if role == "assistant" {
        json!({"type": "output_text", "text": text})
    } else {
        input_text(text)
    }
}

/// Translates one content block, into the pending message or as its own item.
fn block_items(
    block: &Value,
    field: &str,
    names: &ToolNameMap,
    pending: &mut Pending<'_>,
    input: &mut Vec<Value>,
    dropped: &mut Vec<String>,
) -> Result<(), TranslateError> {
    let assistant = pending.role == "assistant";
    match type_of(block) {
        "text" => {
            let text = block.get("text").and_then(Value::as_str).unwrap_or("");
            if !text.is_empty() {
                pending.parts.push(text_part(pending.role, text));
            }
        }
        "thinking" | "redacted_thinking" => dropped.push(format!("{field} ({})", type_of(block))),
        "image" if !assistant => pending.parts.push(image_part(block, field)?),
        "document" if !assistant => pending.parts.push(document_part(block, field)?),
        "tool_use" if assistant => {
            pending.flush(input);
            input.push(function_call(block, field, names)?);
        }
        "tool_result" if !assistant => {
            pending.flush(input);
            input.push(tool_result(block, field)?);
        }
        other => {
            return Err(TranslateError::unsupported(
                format!("{field}.type"),
                format!(
                    "`{other}` blocks are not supported in {} messages",
                    pending.role
                ),
            ));
        }
    }
    Ok(())
}

/// The URL of a `base64` (as a data URL) or `url` source.
fn source_url(source: &Value, field: &str) -> Result<String, TranslateError> {
    match type_of(source) {
        "base64" => {
            let media_type = source
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("");
            let data = source.get("data").and_then(Value::as_str).unwrap_or("");
            Ok(format!("data:{media_type};base64,{data}"))
        }
        "url" => source
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| TranslateError::Missing(format!("{field}.source.url"))),
        other => Err(TranslateError::unsupported(
            format!("{field}.source.type"),
            format!("`{other}` sources are not supported; use base64 or url"),
        )),
    }
}

/// An `image` block → `input_image`.
fn image_part(block: &Value, field: &str) -> Result<Value, TranslateError> {
    let url = source_url(block.get("source").unwrap_or(&Value::Null), field)?;
    Ok(json!({"type": "input_image", "image_url": url, "detail": "auto"}))
}

/// A `document` block → `input_file` (base64 or url) or `input_text` (text source).
fn document_part(block: &Value, field: &str) -> Result<Value, TranslateError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    if type_of(source) == "text" {
        return Ok(input_text(
            source.get("data").and_then(Value::as_str).unwrap_or(""),
        ));
    }
    let url = source_url(source, field)?;
    let filename = block
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("document.pdf");
    Ok(if type_of(source) == "url" {
        json!({"type": "input_file", "file_url": url})
    } else {
        json!({"type": "input_file", "filename": filename, "file_data": url})
    })
}

/// A `tool_use` block → a `function_call` item.
fn function_call(block: &Value, field: &str, names: &ToolNameMap) -> Result<Value, TranslateError> {
    let id = block
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing(format!("{field}.id")))?;
    let name = block
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing(format!("{field}.name")))?;
    let arguments = block
        .get("input")
        .map_or_else(|| "{}".to_owned(), Value::to_string);
    Ok(
        json!({"type": "function_call", "call_id": id, "name": names.to_upstream(name), "arguments": arguments}),
    )
}

/// A `tool_result` block → a `function_call_output` item: a string, or a list of parts when
/// the result contains images.
fn tool_result(block: &Value, field: &str) -> Result<Value, TranslateError> {
    let call_id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing(format!("{field}.tool_use_id")))?;
    let is_error = block.get("is_error").and_then(Value::as_bool) == Some(true);
    let prefix = if is_error { TOOL_ERROR_PREFIX } else { "" };
    let output = match block.get("content") {
        None | Some(Value::Null) => json!(prefix),
        Some(Value::String(text)) => json!(format!("{prefix}{text}")),
        Some(Value::Array(blocks)) => tool_result_parts(blocks, prefix, field)?,
        Some(_) => {
            return Err(TranslateError::invalid(
                format!("{field}.content"),
                "must be a string or a list of blocks",
            ));
        }
    };
    Ok(json!({"type": "function_call_output", "call_id": call_id, "output": output}))
}

/// Tool-result blocks: joined text, or `input_text` / `input_image` parts if there is an image.
fn tool_result_parts(blocks: &[Value], prefix: &str, field: &str) -> Result<Value, TranslateError> {
    let has_image = blocks.iter().any(|b| type_of(b) == "image");
    if !has_image {
        let texts: Vec<&str> = blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect();
        return Ok(json!(format!("{prefix}{}", texts.join("\n"))));
    }
    let mut parts = Vec::new();
    if !prefix.is_empty() {
        parts.push(input_text(prefix.trim_end()));
    }
    for (k, block) in blocks.iter().enumerate() {
        match type_of(block) {
            "image" => parts.push(image_part(block, &format!("{field}.content[{k}]"))?),
            _ => parts.push(input_text(
                block.get("text").and_then(Value::as_str).unwrap_or(""),
            )),
        }
    }
    Ok(Value::Array(parts))
}

/// Tools and tool choice. Client tools become function tools; Anthropic server tools (with a
/// versioned `type` such as `web_search_20250305`) have no backend equivalent and are dropped.
fn add_tools(
    body: &Map<String, Value>,
    names: &ToolNameMap,
    out: &mut Map<String, Value>,
    dropped: &mut Vec<String>,
) -> Result<(), TranslateError> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(TranslateError::invalid("tools", "must be a list")),
    };
    let mut flat = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let kind = type_of(tool);
        if !kind.is_empty() && kind != "custom" {
            dropped.push(format!("tools[{i}] (server tool {kind})"));
            continue;
        }
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| TranslateError::Missing(format!("tools[{i}].name")))?;
        let mut function = Map::new();
        function.insert("type".to_owned(), json!("function"));
        function.insert("name".to_owned(), json!(names.to_upstream(name)));
        if let Some(description) = tool.get("description").filter(|d| d.is_string()) {
            function.insert("description".to_owned(), description.clone());
        }
        let schema = tool
            .get("input_schema")
            .filter(|s| s.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        function.insert("parameters".to_owned(), schema);
        function.insert("strict".to_owned(), json!(false));
        flat.push(Value::Object(function));
    }
    if !flat.is_empty() {
        out.insert("tools".to_owned(), Value::Array(flat));
    }
    let choice = body.get("tool_choice").filter(|c| !c.is_null());
    let parallel = choice
        .and_then(|c| c.get("disable_parallel_tool_use"))
        .and_then(Value::as_bool)
        != Some(true);
    out.insert("parallel_tool_calls".to_owned(), json!(parallel));
    if let Some(choice) = choice {
        out.insert("tool_choice".to_owned(), tool_choice(choice, names)?);
    }
    Ok(())
}

/// Anthropic `tool_choice` → Responses `tool_choice`.
fn tool_choice(choice: &Value, names: &ToolNameMap) -> Result<Value, TranslateError> {
    match type_of(choice) {
        "auto" => Ok(json!("auto")),
        "any" => Ok(json!("required")),
        "none" => Ok(json!("none")),
        "tool" => {
            let name = choice
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::Missing("tool_choice.name".to_owned()))?;
            Ok(json!({"type": "function", "name": names.to_upstream(name)}))
        }
        other => Err(TranslateError::invalid(
            "tool_choice.type",
            format!("unknown type `{other}`; expected auto, any, tool or none"),
        )),
    }
}

/// `thinking` → the Responses `reasoning` object and whether to return thinking blocks.
fn reasoning(thinking: Option<&Value>) -> Result<(Option<Value>, bool), TranslateError> {
    let Some(thinking) = thinking.filter(|t| !t.is_null()) else {
        return Ok((None, false));
    };
    match type_of(thinking) {
        "disabled" => Ok((None, false)),
        "adaptive" => Ok((Some(json!({"summary": "auto"})), true)),
        "enabled" => {
            let budget = thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let effort = if budget < LOW_BUDGET_BELOW {
                "low"
            } else if budget < MEDIUM_BUDGET_BELOW {
                "medium"
            } else {
                "high"
            };
            Ok((Some(json!({"effort": effort, "summary": "auto"})), true))
        }
        other => Err(TranslateError::invalid(
            "thinking.type",
            format!("unknown type `{other}`; expected enabled, adaptive or disabled"),
        )),
    }
}

/// `stop_sequences` as a list.
fn stop_sequences(stop: Option<&Value>) -> Result<Vec<String>, TranslateError> {
    let invalid = || TranslateError::invalid("stop_sequences", "must be a list of strings");
    match stop {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|s| s.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect(),
        Some(_) => Err(invalid()),
    }
}

/// The Anthropic error type for an HTTP status.
fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The Anthropic error body for an error: `{"type": "error", "error": {type, message}}`.
#[must_use]
pub fn messages_error_body(err: &UpstreamError) -> Value {
    json!({"type": "error", "error": {"type": error_type(err.status), "message": err.message}})
}

/// Anthropic usage from Responses usage. Anthropic's `input_tokens` excludes cache reads, which
/// are reported on their own.
fn anthropic_usage(usage: Option<Usage>) -> Value {
    let usage = usage.unwrap_or_default();
    json!({
        "input_tokens": usage.input_tokens.saturating_sub(usage.cached_tokens),
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    })
}

/// The Anthropic `stop_reason` for how a response ended.
fn stop_reason(finish: &Finish, made_tool_calls: bool, refused: bool) -> &'static str {
    match finish {
        Finish::StopSequence(_) => "stop_sequence",
        Finish::MaxTokens => "max_tokens",
        Finish::ContentFilter => "refusal",
        Finish::Completed if refused => "refusal",
        Finish::Completed if made_tool_calls => "tool_use",
        Finish::Completed => "end_turn",
    }
}

/// What kind of Anthropic block an output item becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BlockKind {
    /// A message: text (and refusal text).
    Text,
    /// A reasoning summary.
    Thinking,
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

    /// Reports `input_tokens` in `message_start` (e.g. from [`count_tokens_estimate`]); the
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
                self.block_for(&at, &item);
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

    /// The block for an output item, created on first sight; `None` for items that produce no
    /// block (reasoning when thinking is off, unknown item types).
    fn block_for(&mut self, at: &ItemRef, item: &Value) -> Option<usize> {
        if let Some(i) = self.blocks.iter().position(|b| b.is_at(at)) {
            return Some(i);
        }
        let kind = match type_of(item) {
            "message" => BlockKind::Text,
            "reasoning" if self.thinking => BlockKind::Thinking,
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
        if let Some(i) = self.block_for(at, &json!({"type": "message"})) {
            self.blocks[i].push(delta);
        }
    }

    /// Queues summary text for a reasoning item; summary parts are separated by a blank line.
    fn push_summary(&mut self, at: &ItemRef, summary_index: u64, delta: &str) {
        let Some(i) = self.block_for(at, &json!({"type": "reasoning"})) else {
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
        let Some(i) = self.block_for(at, item) else {
            return;
        };
        let whole = match &self.blocks[i].kind {
            BlockKind::Text => {
                self.refused |= has_refusal(item);
                message_text(item)
            }
            BlockKind::Thinking => summary_texts(item).join("\n\n"),
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
        };
        if text.is_empty() {
            return;
        }
        let index = self.open_block(out);
        let delta = json!({"type": "content_block_delta", "index": index, "delta": {"type": delta_type, key: text}});
        out.push(event("content_block_delta", delta));
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
                BlockKind::Thinking => {}
            }
        }
        if let Some(index) = self.blocks[self.cursor].index {
            out.push(event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
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

/// A named event with JSON data.
fn event(name: &str, data: Value) -> SseEvent {
    SseEvent::named(name, data.to_string())
}

/// The `error` event for a failure.
fn error_event(err: &UpstreamError) -> SseEvent {
    event("error", messages_error_body(err))
}

/// The text of a message item: its `output_text` and `refusal` parts, concatenated.
fn message_text(item: &Value) -> String {
    item.get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|part| match type_of(part) {
            "output_text" => part.get("text").and_then(Value::as_str),
            "refusal" => part.get("refusal").and_then(Value::as_str),
            _ => None,
        })
        .collect()
}

/// Whether a message item contains a refusal.
fn has_refusal(item: &Value) -> bool {
    item.get("content")
        .and_then(Value::as_array)
        .is_some_and(|parts| parts.iter().any(|p| type_of(p) == "refusal"))
}

/// Builds one Anthropic `message` from an aggregated Responses object (see
/// [`super::responses::Aggregator`]). Stop sequences cut the text and drop any later block;
/// reasoning summaries become thinking blocks (with an empty signature) only when `thinking`.
#[must_use]
pub fn message_from_response(
    response: &Value,
    model: &str,
    names: &ToolNameMap,
    stop: &[String],
    thinking: bool,
) -> Value {
    let mut content = Vec::new();
    let mut stopped = None;
    let mut refused = false;
    let mut made_tool_calls = false;
    let items = response
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for item in items {
        match type_of(item) {
            "reasoning" if thinking => {
                let text = summary_texts(item).join("\n\n");
                if !text.is_empty() {
                    content.push(json!({"type": "thinking", "thinking": text, "signature": ""}));
                }
            }
            "message" => {
                refused |= has_refusal(item);
                let text = message_text(item);
                let (kept, hit) = truncate_at_stop(&text, stop);
                if !kept.is_empty() {
                    content.push(json!({"type": "text", "text": kept}));
                }
                stopped = hit;
            }
            "function_call" => {
                made_tool_calls = true;
                content.push(tool_use_block(item, names));
            }
            _ => {}
        }
        if stopped.is_some() {
            break;
        }
    }
    let finish = match &stopped {
        Some(stop) => Finish::StopSequence(stop.clone()),
        None => Finish::from_response(response),
    };
    json!({
        "id": derived_id(ID_PREFIX, response),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(&finish, made_tool_calls, refused),
        "stop_sequence": stopped,
        "usage": anthropic_usage(Usage::from_response(response)),
    })
}

/// A finished `function_call` item → a `tool_use` block. Arguments that are not a JSON object
/// (which a tool schema would not allow) become an empty input, with a warning in the log.
fn tool_use_block(item: &Value, names: &ToolNameMap) -> Value {
    let arguments = item.get("arguments").and_then(Value::as_str).unwrap_or("");
    let input = match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            tracing::warn!("tool call arguments from upstream are not a json object; sending {{}}");
            json!({})
        }
    };
    json!({
        "type": "tool_use",
        "id": item.get("call_id").and_then(Value::as_str).unwrap_or(""),
        "name": names.to_client(item.get("name").and_then(Value::as_str).unwrap_or("")),
        "input": input,
    })
}

/// Tokens counted for each image or non-text document: about what Anthropic documents for a
/// full-size image (~1.15 megapixels / 750).
const IMAGE_TOKENS: u64 = 1_600;
/// Tokens counted for each message's framing (role, separators).
const MESSAGE_OVERHEAD_TOKENS: u64 = 4;

/// An estimate of a Messages request's input tokens, for `/v1/messages/count_tokens`.
///
/// The backend has no counting endpoint, so this is a heuristic, not a tokenizer: one token per
/// 4 bytes (rounded up) of system text, message text, tool-use inputs, tool results and the JSON
/// of tool definitions; 4 tokens per message; 1,600 per image or non-text document. It tends to
/// overestimate code and underestimate non-Latin scripts.
#[must_use]
pub fn count_tokens_estimate(body: &Value) -> u64 {
    let mut bytes = 0u64;
    let mut fixed = 0u64;
    let len = |s: &str| u64::try_from(s.len()).unwrap_or(u64::MAX);
    match body.get("system") {
        Some(Value::String(text)) => bytes += len(text),
        Some(Value::Array(blocks)) => bytes += blocks_bytes(blocks, &mut fixed),
        _ => {}
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for message in messages {
        fixed += MESSAGE_OVERHEAD_TOKENS;
        match message.get("content") {
            Some(Value::String(text)) => bytes += len(text),
            Some(Value::Array(blocks)) => bytes += blocks_bytes(blocks, &mut fixed),
            _ => {}
        }
    }
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for tool in tools {
        bytes += len(&tool.to_string());
    }
    bytes.div_ceil(4).saturating_add(fixed)
}

/// Text bytes of content blocks; images and binary documents add to `fixed` tokens.
fn blocks_bytes(blocks: &[Value], fixed: &mut u64) -> u64 {
    let len = |s: &str| u64::try_from(s.len()).unwrap_or(u64::MAX);
    let mut bytes = 0;
    for block in blocks {
        match type_of(block) {
            "text" => bytes += len(block.get("text").and_then(Value::as_str).unwrap_or("")),
            "thinking" => bytes += len(block.get("thinking").and_then(Value::as_str).unwrap_or("")),
            "tool_use" => {
                bytes += len(&block.get("input").map(Value::to_string).unwrap_or_default())
            }
            "tool_result" => match block.get("content") {
                Some(Value::String(text)) => bytes += len(text),
                Some(Value::Array(inner)) => bytes += blocks_bytes(inner, fixed),
                _ => {}
            },
            "document" if block.pointer("/source/type").and_then(Value::as_str) == Some("text") => {
                bytes += len(block
                    .pointer("/source/data")
                    .and_then(Value::as_str)
                    .unwrap_or(""));
            }
            "image" | "document" => *fixed += IMAGE_TOKENS,
            _ => {}
        }
    }
    bytes
}

/// The `/v1/messages/count_tokens` answer: `{"input_tokens": n}` from [`count_tokens_estimate`].
#[must_use]
pub fn count_tokens_body(body: &Value) -> Value {
    json!({"input_tokens": count_tokens_estimate(body)})
}

#[cfg(test)]
mod tests;
