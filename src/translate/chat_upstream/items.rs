//! Responses input read the way the upstream-side translators (to Chat Completions and to
//! Anthropic Messages) need it: the request's fields, its input as items, calls and their
//! outputs, roles and text.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::translate::{TranslateError, joined_text, type_of};

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
