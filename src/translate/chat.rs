//! OpenAI Chat Completions ⇄ Responses (spec §8).
//!
//! Requests: system and developer messages become `developer` input messages and `instructions`
//! stays `""`, as the Codex CLI itself sends its prompt (spec §10); user text and images become
//! `input_text` / `input_image`; assistant text becomes an `output_text` message and each tool
//! call a top-level `function_call` item; `tool` messages become `function_call_output` items.
//! For the Codex backend the result then goes through [`shape_for_codex`], so every backend rule
//! holds for it too, and sampling and length parameters the backend refuses are dropped and
//! listed; for any other Responses upstream ([`Backend::Generic`]) they are kept. `n > 1` is
//! refused; stop sequences are applied to the output on the way back (see [`super::stop`]).
//!
//! Responses: [`ChatStream`] turns backend events into `chat.completion.chunk` payloads as they
//! arrive; [`chat_completion_from_response`] turns an aggregated response into one
//! `chat.completion`. Reasoning summaries are returned as `reasoning_content` (the field
//! DeepSeek and several gateways use); raw reasoning text events are not forwarded.

use serde_json::{Map, Value, json};

use super::names::ToolNameMap;
use super::responses::{ItemRef, ResponsesEvent, shape_for_codex};
use super::sse::SseEvent;
use super::stop::{StopScanner, truncate_at_stop};
use super::{
    Backend, Finish, TranslateError, UpstreamError, Usage, created_at, derived_id, input_message,
    input_text, joined_text, type_of,
};

/// The id prefix of chat completions.
const ID_PREFIX: &str = "chatcmpl-";
/// The data line that ends a chat stream.
pub const DONE: &str = "[DONE]";

/// Request keys that are translated (or read) rather than dropped.
const TRANSLATED_KEYS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "verbosity",
    "stop",
    "prompt_cache_key",
    "service_tier",
];

/// A chat request translated for the Codex backend, with what is needed to translate back.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The Responses body to send upstream (already shaped for the backend).
    pub responses_body: Value,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether the client asked for a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// The model the client asked for.
    pub model: String,
    /// The tool names that were shortened.
    pub tool_names: ToolNameMap,
    /// The client's stop sequences, applied on the way back.
    pub stop: Vec<String>,
    /// Request fields that were not sent upstream, for logs.
    pub dropped: Vec<String>,
}

/// Translates a Chat Completions request body into a Responses body for the Codex backend.
///
/// # Errors
///
/// When the body is not an object, `model` or `messages` is missing, `messages` is not a
/// non-empty list, a message has an unknown role or a malformed content, `n` is above 1, or a
/// tool, tool choice or response format has an unsupported shape.
pub fn chat_to_responses(body: Value) -> Result<ChatRequest, TranslateError> {
    chat_to_responses_for(body, Backend::Codex)
}

/// Translates a Chat Completions request body into a Responses body for `backend`: shaped for
/// the Codex backend as [`chat_to_responses`] does, or, for any other Responses upstream, with
/// the client's `temperature`, `top_p`, `user`, `store`, `metadata` and output limit
/// (`max_completion_tokens`, else `max_tokens`, as `max_output_tokens`) kept, and `reasoning`
/// and `parallel_tool_calls` sent only when the client set reasoning or tools.
///
/// # Errors
///
/// As [`chat_to_responses`].
pub fn chat_to_responses_for(body: Value, backend: Backend) -> Result<ChatRequest, TranslateError> {
    let Value::Object(body) = body else {
        return Err(TranslateError::NotAnObject);
    };
    let model = required_string(&body, "model")?;
    check_choice_count(&body)?;
    refuse_legacy_functions(&body)?;
    let messages = message_list(&body)?;
    let tool_names = ToolNameMap::build(tool_names_in(&body, messages));
    let mut input = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        message_to_items(i, message, &tool_names, &mut input)?;
    }
    let mut out = Map::new();
    out.insert("model".to_owned(), Value::String(model.clone()));
    out.insert("instructions".to_owned(), Value::String(String::new()));
    out.insert("input".to_owned(), Value::Array(input));
    translate_options(&body, &tool_names, &mut out)?;
    let (responses_body, shaped_dropped, kept) = match backend {
        Backend::Codex => {
            let shaped = shape_for_codex(Value::Object(out))?;
            (shaped.body, shaped.dropped, &[][..])
        }
        Backend::Generic => {
            generic_options(&body, &mut out);
            (Value::Object(out), Vec::new(), GENERIC_KEYS)
        }
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
    dropped.extend(shaped_dropped);
    Ok(ChatRequest {
        responses_body,
        stream: body.get("stream").and_then(Value::as_bool) == Some(true),
        include_usage: body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            == Some(true),
        model,
        tool_names,
        stop: stop_sequences(body.get("stop"))?,
        dropped,
    })
}

/// Keys a generic Responses upstream gets (as they are, or as `max_output_tokens`).
const GENERIC_KEYS: &[&str] = &[
    "temperature",
    "top_p",
    "user",
    "store",
    "metadata",
    "safety_identifier",
    "max_tokens",
    "max_completion_tokens",
];

/// The options a generic Responses upstream takes as the client set them; `reasoning` only when
/// asked for, `parallel_tool_calls` only with tools; and a streamed answer.
fn generic_options(body: &Map<String, Value>, out: &mut Map<String, Value>) {
    if body.get("reasoning_effort").is_none_or(Value::is_null) {
        out.remove("reasoning");
    }
    if !out.contains_key("tools") {
        out.remove("parallel_tool_calls");
    }
    for key in [
        "temperature",
        "top_p",
        "user",
        "store",
        "metadata",
        "safety_identifier",
    ] {
        if let Some(value) = body.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    let limit = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|key| body.get(*key).filter(|v| !v.is_null()));
    if let Some(limit) = limit {
        out.insert("max_output_tokens".to_owned(), limit.clone());
    }
    out.insert("stream".to_owned(), Value::Bool(true));
}

/// A required string field.
fn required_string(body: &Map<String, Value>, key: &str) -> Result<String, TranslateError> {
    match body.get(key) {
        None | Some(Value::Null) => Err(TranslateError::Missing(key.to_owned())),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(TranslateError::invalid(key, "must be a string")),
    }
}

/// Refuses `n > 1`: the backend returns one choice.
fn check_choice_count(body: &Map<String, Value>) -> Result<(), TranslateError> {
    match body.get("n") {
        None | Some(Value::Null) => Ok(()),
        Some(n) if n.as_u64() == Some(1) => Ok(()),
        Some(n) if n.as_u64().is_some_and(|n| n > 1) => Err(TranslateError::unsupported(
            "n",
            "the codex backend returns one choice; send n = 1",
        )),
        Some(_) => Err(TranslateError::invalid("n", "must be a positive integer")),
    }
}

/// Refuses the deprecated `functions` / `function_call` parameters rather than ignore them.
fn refuse_legacy_functions(body: &Map<String, Value>) -> Result<(), TranslateError> {
    for key in ["functions", "function_call"] {
        if body.get(key).is_some_and(|v| !v.is_null()) {
            return Err(TranslateError::unsupported(
                key,
                "deprecated; use `tools` and `tool_choice`",
            ));
        }
    }
    Ok(())
}

/// The `messages` list, which must be non-empty.
fn message_list(body: &Map<String, Value>) -> Result<&Vec<Value>, TranslateError> {
    match body.get("messages") {
        None | Some(Value::Null) => Err(TranslateError::Missing("messages".to_owned())),
        Some(Value::Array(list)) if list.is_empty() => {
            Err(TranslateError::invalid("messages", "must not be empty"))
        }
        Some(Value::Array(list)) => Ok(list),
        Some(_) => Err(TranslateError::invalid("messages", "must be a list")),
    }
}

/// Every tool name the request mentions: definitions, the tool choice, and earlier calls.
fn tool_names_in<'a>(body: &'a Map<String, Value>, messages: &'a [Value]) -> Vec<&'a str> {
    let defined = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str));
    let chosen = body
        .get("tool_choice")
        .and_then(|c| c.pointer("/function/name"))
        .and_then(Value::as_str);
    let called = messages
        .iter()
        .filter_map(|m| m.get("tool_calls").and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.pointer("/function/name").and_then(Value::as_str));
    defined.chain(chosen).chain(called).collect()
}

/// Appends the input items for message `i`.
fn message_to_items(
    i: usize,
    message: &Value,
    names: &ToolNameMap,
    input: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    let field = |name: &str| format!("messages[{i}].{name}");
    if !message.is_object() {
        return Err(TranslateError::invalid(
            format!("messages[{i}]"),
            "must be an object",
        ));
    }
    let role = match message.get("role") {
        Some(Value::String(role)) => role.as_str(),
        None | Some(Value::Null) => return Err(TranslateError::Missing(field("role"))),
        Some(_) => return Err(TranslateError::invalid(field("role"), "must be a string")),
    };
    let content = message.get("content").unwrap_or(&Value::Null);
    match role {
        "system" | "developer" => {
            let parts = text_parts(content, &field("content"))?;
            input.push(input_message("developer", parts));
        }
        "user" => input.push(input_message(
            "user",
            user_parts(content, &field("content"))?,
        )),
        "assistant" => assistant_items(i, message, names, input)?,
        "tool" => input.push(tool_output(i, message)?),
        other => {
            return Err(TranslateError::invalid(
                field("role"),
                format!(
                    "unknown role `{other}`; expected system, developer, user, assistant or tool"
                ),
            ));
        }
    }
    Ok(())
}

/// `input_text` parts for a string or a list of text parts.
fn text_parts(content: &Value, field: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::String(text) => Ok(vec![input_text(text)]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| match part.get("text").and_then(Value::as_str) {
                Some(text) if type_of(part) == "text" => Ok(input_text(text)),
                _ => Err(TranslateError::invalid(
                    format!("{field}[{j}]"),
                    "must be a text part",
                )),
            })
            .collect(),
        _ => Err(TranslateError::invalid(
            field,
            "must be a string or a list of text parts",
        )),
    }
}

/// Responses content parts for a user message.
fn user_parts(content: &Value, field: &str) -> Result<Vec<Value>, TranslateError> {
    let Value::Array(parts) = content else {
        return match content {
            Value::String(text) => Ok(vec![input_text(text)]),
            _ => Err(TranslateError::invalid(
                field,
                "must be a string or a list of content parts",
            )),
        };
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| user_part(part, &format!("{field}[{j}]")))
        .collect()
}

/// One user content part.
fn user_part(part: &Value, field: &str) -> Result<Value, TranslateError> {
    match type_of(part) {
        "text" => match part.get("text").and_then(Value::as_str) {
            Some(text) => Ok(input_text(text)),
            None => Err(TranslateError::Missing(format!("{field}.text"))),
        },
        "image_url" => image_part(part.get("image_url").unwrap_or(&Value::Null), field),
        "file" => Ok(file_part(part.get("file").unwrap_or(&Value::Null))),
        "input_audio" => Err(TranslateError::unsupported(
            field,
            "audio input is not supported by the codex backend",
        )),
        other => Err(TranslateError::invalid(
            format!("{field}.type"),
            format!("unknown content part type `{other}`"),
        )),
    }
}

/// `image_url` (`{url, detail}` or a bare string) → `input_image`.
fn image_part(image: &Value, field: &str) -> Result<Value, TranslateError> {
    let url = image
        .as_str()
        .or_else(|| image.get("url").and_then(Value::as_str))
        .ok_or_else(|| TranslateError::Missing(format!("{field}.image_url.url")))?;
    let detail = image
        .get("detail")
        .and_then(Value::as_str)
        .unwrap_or("auto");
    Ok(json!({"type": "input_image", "image_url": url, "detail": detail}))
}

/// `file` (`{file_data, filename, file_id}`) → `input_file` with the same members.
fn file_part(file: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".to_owned(), Value::String("input_file".to_owned()));
    for key in ["file_data", "filename", "file_id"] {
        if let Some(value) = file.get(key).filter(|v| v.is_string()) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    Value::Object(out)
}

/// An assistant message: its text or refusal as one `output_text` message (skipped when
/// empty, so call ids still pair up), then one `function_call` item per tool call.
fn assistant_items(
    i: usize,
    message: &Value,
    names: &ToolNameMap,
    input: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    let field = format!("messages[{i}]");
    let mut parts = assistant_parts(message.get("content").unwrap_or(&Value::Null), &field)?;
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
        parts.push(json!({"type": "refusal", "refusal": refusal}));
    }
    if !parts.is_empty() {
        input.push(json!({"type": "message", "role": "assistant", "content": parts}));
    }
    let calls = match message.get("tool_calls") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(calls)) => calls,
        Some(_) => {
            return Err(TranslateError::invalid(
                format!("{field}.tool_calls"),
                "must be a list",
            ));
        }
    };
    for (j, call) in calls.iter().enumerate() {
        input.push(function_call_item(
            call,
            names,
            &format!("{field}.tool_calls[{j}]"),
        )?);
    }
    Ok(())
}

/// `output_text` / `refusal` parts of an assistant's content (empty text is skipped).
fn assistant_parts(content: &Value, field: &str) -> Result<Vec<Value>, TranslateError> {
    let output_text = |text: &str| json!({"type": "output_text", "text": text});
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        Value::String(text) => Ok(vec![output_text(text)]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| match (type_of(part), part) {
                ("text", _) => Ok(output_text(part.get("text").and_then(Value::as_str).unwrap_or(""))),
                ("refusal", _) => Ok(json!({"type": "refusal", "refusal": part.get("refusal").and_then(Value::as_str).unwrap_or("")})),
                _ => Err(TranslateError::invalid(
                    format!("{field}.content[{j}]"),
                    "must be a text or refusal part",
                )),
            })
            .collect(),
        _ => Err(TranslateError::invalid(
            format!("{field}.content"),
            "must be a string, a list of parts, or null",
        )),
    }
}

/// One chat tool call → a `function_call` input item.
fn function_call_item(
    call: &Value,
    names: &ToolNameMap,
    field: &str,
) -> Result<Value, TranslateError> {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing(format!("{field}.id")))?;
    let name = call
        .pointer("/function/name")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing(format!("{field}.function.name")))?;
    let arguments = match call.pointer("/function/arguments") {
        Some(Value::String(args)) => args.clone(),
        None | Some(Value::Null) => "{}".to_owned(),
        Some(other) => other.to_string(),
    };
    Ok(json!({
        "type": "function_call",
        "call_id": id,
        "name": names.to_upstream(name),
        "arguments": arguments,
    }))
}

/// A `tool` message → a `function_call_output` item.
fn tool_output(i: usize, message: &Value) -> Result<Value, TranslateError> {
    let call_id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing(format!("messages[{i}].tool_call_id")))?;
    let output = joined_text(message.get("content").unwrap_or(&Value::Null), "");
    Ok(json!({"type": "function_call_output", "call_id": call_id, "output": output}))
}

/// Tools, tool choice, response format, reasoning and the other translated options.
fn translate_options(
    body: &Map<String, Value>,
    names: &ToolNameMap,
    out: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    if let Some(tools) = body.get("tools").filter(|t| !t.is_null()) {
        out.insert("tools".to_owned(), translate_tools(tools, names)?);
    }
    if let Some(choice) = body.get("tool_choice").filter(|c| !c.is_null()) {
        out.insert(
            "tool_choice".to_owned(),
            translate_tool_choice(choice, names)?,
        );
    }
    let parallel = body
        .get("parallel_tool_calls")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    out.insert("parallel_tool_calls".to_owned(), Value::Bool(parallel));
    out.insert(
        "reasoning".to_owned(),
        reasoning(body.get("reasoning_effort"))?,
    );
    let text = text_options(body)?;
    if !text.is_empty() {
        out.insert("text".to_owned(), Value::Object(text));
    }
    for key in ["prompt_cache_key", "service_tier"] {
        if let Some(value) = body.get(key).filter(|v| v.is_string()) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    Ok(())
}

/// Chat tools (`{type: function, function: {…}}`) → flat Responses function tools. Chat's
/// `strict` defaults to false, the Responses API's to true, so it is always written out.
fn translate_tools(tools: &Value, names: &ToolNameMap) -> Result<Value, TranslateError> {
    let Value::Array(tools) = tools else {
        return Err(TranslateError::invalid("tools", "must be a list"));
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        if type_of(tool) != "function" {
            return Err(TranslateError::unsupported(
                format!("tools[{i}].type"),
                "only function tools are supported",
            ));
        }
        let function = tool.get("function").unwrap_or(&Value::Null);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| TranslateError::Missing(format!("tools[{i}].function.name")))?;
        let mut flat = Map::new();
        flat.insert("type".to_owned(), json!("function"));
        flat.insert("name".to_owned(), json!(names.to_upstream(name)));
        if let Some(description) = function.get("description").filter(|d| d.is_string()) {
            flat.insert("description".to_owned(), description.clone());
        }
        let parameters = function
            .get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        flat.insert("parameters".to_owned(), parameters);
        let strict = function
            .get("strict")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        flat.insert("strict".to_owned(), Value::Bool(strict));
        out.push(Value::Object(flat));
    }
    Ok(Value::Array(out))
}

/// Chat `tool_choice` → Responses `tool_choice`.
fn translate_tool_choice(choice: &Value, names: &ToolNameMap) -> Result<Value, TranslateError> {
    if let Some(mode) = choice.as_str() {
        return match mode {
            "none" | "auto" | "required" => Ok(json!(mode)),
            other => Err(TranslateError::invalid(
                "tool_choice",
                format!("unknown mode `{other}`"),
            )),
        };
    }
    match type_of(choice) {
        "function" => {
            let name = choice
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::Missing("tool_choice.function.name".to_owned()))?;
            Ok(json!({"type": "function", "name": names.to_upstream(name)}))
        }
        "allowed_tools" => {
            let allowed = choice.get("allowed_tools").unwrap_or(&Value::Null);
            let tools: Vec<Value> = allowed
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str))
                .map(|name| json!({"type": "function", "name": names.to_upstream(name)}))
                .collect();
            let mode = allowed
                .get("mode")
                .and_then(Value::as_str)
                .unwrap_or("auto");
            Ok(json!({"type": "allowed_tools", "mode": mode, "tools": tools}))
        }
        _ => Err(TranslateError::unsupported(
            "tool_choice",
            "expected none, auto, required, a function, or allowed_tools",
        )),
    }
}

/// `reasoning_effort` → `reasoning`. `minimal` is sent as `low` (GPT-5.x rejects `minimal`,
/// spec §6.3). Summaries are always asked for, so `reasoning_content` can be streamed, except
/// with effort `none` where there is nothing to summarise.
fn reasoning(effort: Option<&Value>) -> Result<Value, TranslateError> {
    let effort = match effort {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if e == "minimal" => Some("low"),
        Some(Value::String(e)) => Some(e.as_str()),
        Some(_) => {
            return Err(TranslateError::invalid(
                "reasoning_effort",
                "must be a string",
            ));
        }
    };
    Ok(match effort {
        Some("none") => json!({"effort": "none"}),
        Some(effort) => json!({"effort": effort, "summary": "auto"}),
        None => json!({"summary": "auto"}),
    })
}

/// `response_format` and `verbosity` → the Responses `text` object.
fn text_options(body: &Map<String, Value>) -> Result<Map<String, Value>, TranslateError> {
    let mut text = Map::new();
    if let Some(format) = body.get("response_format").filter(|f| !f.is_null()) {
        text.insert("format".to_owned(), response_format(format)?);
    }
    if let Some(verbosity) = body.get("verbosity").filter(|v| v.is_string()) {
        text.insert("verbosity".to_owned(), verbosity.clone());
    }
    Ok(text)
}

/// Chat `response_format` → Responses `text.format`.
fn response_format(format: &Value) -> Result<Value, TranslateError> {
    match type_of(format) {
        "text" => Ok(json!({"type": "text"})),
        "json_object" => Ok(json!({"type": "json_object"})),
        "json_schema" => {
            let spec = format.get("json_schema").unwrap_or(&Value::Null);
            let schema = spec
                .get("schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| {
                    TranslateError::Missing("response_format.json_schema.schema".to_owned())
                })?;
            let mut out = Map::new();
            out.insert("type".to_owned(), json!("json_schema"));
            let name = spec
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("response");
            out.insert("name".to_owned(), json!(name));
            out.insert("schema".to_owned(), schema.clone());
            for key in ["strict", "description"] {
                if let Some(value) = spec.get(key).filter(|v| !v.is_null()) {
                    out.insert(key.to_owned(), value.clone());
                }
            }
            Ok(Value::Object(out))
        }
        other => Err(TranslateError::invalid(
            "response_format.type",
            format!("unknown format `{other}`; expected text, json_object or json_schema"),
        )),
    }
}

/// `stop` (a string or a list of strings) as a list.
fn stop_sequences(stop: Option<&Value>) -> Result<Vec<String>, TranslateError> {
    match stop {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(list)) => list
            .iter()
            .map(|s| {
                s.as_str().map(str::to_owned).ok_or_else(|| {
                    TranslateError::invalid("stop", "must be a string or a list of strings")
                })
            })
            .collect(),
        Some(_) => Err(TranslateError::invalid(
            "stop",
            "must be a string or a list of strings",
        )),
    }
}

/// The OpenAI error body for an error: `{"error": {message, type, code, param}}`, plus
/// `resets_at` / `resets_in_seconds` for usage limits.
#[must_use]
pub fn chat_error_body(err: &UpstreamError) -> Value {
    let mut error = json!({
        "message": err.message,
        "type": err.kind,
        "code": err.code,
        "param": err.param,
    });
    if let Value::Object(fields) = &mut error {
        if let Some(at) = err.resets_at {
            fields.insert("resets_at".to_owned(), json!(at));
        }
        if let Some(secs) = err.resets_in_seconds {
            fields.insert("resets_in_seconds".to_owned(), json!(secs));
        }
    }
    json!({"error": error})
}

/// Chat `usage` from Responses usage.
fn chat_usage(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    })
}

/// The chat `finish_reason` for how a response ended.
fn finish_reason(finish: &Finish, made_tool_calls: bool) -> &'static str {
    match finish {
        Finish::Completed if made_tool_calls => "tool_calls",
        Finish::Completed | Finish::StopSequence(_) => "stop",
        Finish::MaxTokens => "length",
        Finish::ContentFilter => "content_filter",
    }
}

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
            self.emit(json!({"content": text}), out);
        }
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

/// Builds one `chat.completion` from an aggregated Responses object (see
/// [`super::responses::Aggregator`]). Stop sequences cut the text, and drop any output item
/// after the cut.
#[must_use]
pub fn chat_completion_from_response(
    response: &Value,
    model: &str,
    names: &ToolNameMap,
    stop: &[String],
) -> Value {
    let collected = collect_output(response, names, stop);
    let finish = match &collected.stopped {
        Some(stop) => Finish::StopSequence(stop.clone()),
        None => Finish::from_response(response),
    };
    let mut message = Map::new();
    message.insert("role".to_owned(), json!("assistant"));
    let has_other = !collected.tool_calls.is_empty() || !collected.refusal.is_empty();
    let content = if collected.content.is_empty() && has_other {
        Value::Null
    } else {
        json!(collected.content)
    };
    message.insert("content".to_owned(), content);
    let refusal = (!collected.refusal.is_empty()).then_some(collected.refusal);
    message.insert("refusal".to_owned(), json!(refusal));
    if !collected.reasoning.is_empty() {
        message.insert(
            "reasoning_content".to_owned(),
            json!(collected.reasoning.join("\n\n")),
        );
    }
    let made_calls = !collected.tool_calls.is_empty();
    if made_calls {
        message.insert("tool_calls".to_owned(), Value::Array(collected.tool_calls));
    }
    let mut completion = json!({
        "id": derived_id(ID_PREFIX, response),
        "object": "chat.completion",
        "created": created_at(response),
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(&finish, made_calls),
        }],
    });
    if let Some(usage) = Usage::from_response(response) {
        completion["usage"] = chat_usage(&usage);
    }
    completion
}

/// What a response's output items say, in chat terms.
#[derive(Debug, Default)]
struct Collected {
    /// Text content.
    content: String,
    /// Refusal text.
    refusal: String,
    /// Reasoning summary parts.
    reasoning: Vec<String>,
    /// Chat tool calls.
    tool_calls: Vec<Value>,
    /// The stop sequence that cut the text.
    stopped: Option<String>,
}

/// Walks the output items in order, stopping at a stop sequence.
fn collect_output(response: &Value, names: &ToolNameMap, stop: &[String]) -> Collected {
    let mut out = Collected::default();
    let items = response
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for item in items {
        match type_of(item) {
            "message" => collect_message(item, stop, &mut out),
            "reasoning" => out.reasoning.extend(summary_texts(item)),
            "function_call" => out.tool_calls.push(json!({
                "id": item.get("call_id").and_then(Value::as_str).unwrap_or(""),
                "type": "function",
                "function": {
                    "name": names.to_client(item.get("name").and_then(Value::as_str).unwrap_or("")),
                    "arguments": item.get("arguments").and_then(Value::as_str).unwrap_or(""),
                },
            })),
            _ => {}
        }
        if out.stopped.is_some() {
            break;
        }
    }
    out
}

/// Adds a message item's text and refusal, cutting at a stop sequence.
fn collect_message(item: &Value, stop: &[String], out: &mut Collected) {
    let parts = item
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for part in parts {
        match type_of(part) {
            "output_text" => {
                out.content
                    .push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
                let (kept, hit) = truncate_at_stop(&out.content, stop);
                if hit.is_some() {
                    out.content = kept.to_owned();
                    out.stopped = hit;
                    return;
                }
            }
            "refusal" => out
                .refusal
                .push_str(part.get("refusal").and_then(Value::as_str).unwrap_or("")),
            _ => {}
        }
    }
}

/// The summary texts of a reasoning item.
pub(crate) fn summary_texts(item: &Value) -> Vec<String> {
    item.get("summary")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("text").and_then(Value::as_str))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests;
