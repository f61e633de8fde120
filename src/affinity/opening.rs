//! A conversation's opening in one canonical form, per inbound API: the instructions or system
//! prompt (with any system/developer messages before the first user turn), the tools, and the
//! first user turn. Later requests of the same conversation repeat these unchanged, so their
//! canonical form — and the key hashed from it — stays the same from turn to turn.
//!
//! What a client may vary between turns without changing the conversation is left out: item
//! `id`s, Anthropic `cache_control` markers (Claude Code moves them to the newest turn), and
//! whether text is a plain string or a list of text parts.

use serde_json::{Map, Value, json};

use crate::config::Api;

/// The canonical opening as compact JSON; `None` when there is nothing to key on.
pub(super) fn canonical(api: Api, body: &Value) -> Option<String> {
    let (system, first) = match api {
        Api::OpenaiResponses => responses(body),
        Api::OpenaiChat => messages_like(body.get("messages"), None),
        Api::AnthropicMessages => messages_like(body.get("messages"), body.get("system")),
    };
    let tools = body.get("tools").map_or(Value::Null, clean);
    if system.is_empty() && first.is_none() && tools.is_null() {
        return None;
    }
    let doc = json!({"system": system, "first": first, "tools": tools});
    Some(doc.to_string())
}

/// The system texts and the first user turn.
type Parts = (Vec<Value>, Option<Value>);

/// Responses: `instructions`, then `input` up to and including the first user message.
fn responses(body: &Value) -> Parts {
    let mut system = Vec::new();
    if let Some(instructions) = body.get("instructions").and_then(Value::as_str)
        && !instructions.is_empty()
    {
        system.push(Value::String(instructions.to_owned()));
    }
    let first = match body.get("input") {
        Some(Value::String(text)) => Some(texts(&[Value::String(text.clone())])),
        Some(Value::Array(items)) => {
            let mut first = None;
            for item in items {
                let role = item.get("role").and_then(Value::as_str);
                let is_message = item
                    .get("type")
                    .and_then(Value::as_str)
                    .is_none_or(|t| t == "message");
                match role {
                    Some("user") if is_message => {
                        first = Some(content(item.get("content")));
                        break;
                    }
                    Some("system" | "developer") if is_message => {
                        system.push(content(item.get("content")));
                    }
                    _ => {}
                }
            }
            first
        }
        _ => None,
    };
    (system, first)
}

/// Chat Completions and Messages: the leading system/developer messages (and Anthropic's
/// `system`), then the first user message.
fn messages_like(messages: Option<&Value>, system_field: Option<&Value>) -> Parts {
    let mut system = Vec::new();
    if let Some(field) = system_field
        && !field.is_null()
    {
        system.push(content(Some(field)));
    }
    let mut first = None;
    for message in messages.and_then(Value::as_array).into_iter().flatten() {
        match message.get("role").and_then(Value::as_str) {
            Some("user") => {
                first = Some(content(message.get("content")));
                break;
            }
            Some("system" | "developer") => system.push(content(message.get("content"))),
            _ => {}
        }
    }
    (system, first)
}

/// Message content in one form: a list of parts, text parts reduced to their text.
fn content(value: Option<&Value>) -> Value {
    match value {
        Some(Value::String(text)) => texts(&[Value::String(text.clone())]),
        Some(Value::Array(parts)) => texts(parts),
        Some(other) => clean(other),
        None => Value::Null,
    }
}

/// Parts with text reduced to `{"text": …}` whatever their type (`text`, `input_text`,
/// `output_text`, or a bare string); other parts cleaned.
fn texts(parts: &[Value]) -> Value {
    Value::Array(
        parts
            .iter()
            .map(|part| match part {
                Value::String(text) => json!({"text": text}),
                Value::Object(fields) => match fields.get("text").and_then(Value::as_str) {
                    Some(text)
                        if fields
                            .get("type")
                            .and_then(Value::as_str)
                            .is_none_or(|t| t.ends_with("text")) =>
                    {
                        json!({"text": text})
                    }
                    _ => clean(part),
                },
                other => clean(other),
            })
            .collect(),
    )
}

/// A copy without the keys clients vary between turns (`id`, `cache_control`).
fn clean(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "id" | "cache_control"))
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
        other => other.clone(),
    }
}
