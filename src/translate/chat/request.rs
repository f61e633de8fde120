//! A Chat Completions request as a Responses body: messages become input items (system and
//! developer messages `developer` messages, user text and images `input_text`/`input_image`,
//! assistant tool calls `function_call` items, `tool` messages `function_call_output` items),
//! shaped for the Codex backend or kept generic for other upstreams.

use serde_json::{Map, Value, json};

use super::options::{stop_sequences, translate_options};
use crate::translate::names::ToolNameMap;
use crate::translate::responses::shape_for_codex;
use crate::translate::{Backend, TranslateError, input_message, input_text, joined_text, type_of};

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
    let Value::Object(mut body) = body else {
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
    // The definitions move into the new body (their schemas are most of an agent's request).
    let tools = body.remove("tools");
    translate_options(&body, tools, &tool_names, &mut out)?;
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
