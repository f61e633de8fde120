//! A Responses request as a Chat Completions request.

use serde_json::{Map, Value, json};

use super::items::{
    call_ids, call_parts, input_items, is_call, is_call_output, message_role, output_text,
    request_fields,
};
use crate::translate::tools::FunctionTool;
use crate::translate::{TranslateError, UpstreamRequest, joined_text, type_of};

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
        match FunctionTool::in_responses(tool) {
            Some(function) => out.push(function.to_chat()),
            None => dropped.push(format!("tools[{i}] ({})", type_of(tool))),
        }
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
