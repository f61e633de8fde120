//! Input items: known types and fields, content parts that suit the role, and calls paired with
//! their outputs.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{Checked, Rejection, invalid_type, invalid_value, missing, schema, unknown_parameter};

/// Message roles.
const ROLES: &[&str] = &["user", "assistant", "system", "developer"];
/// Content part types of user, system and developer messages.
const INPUT_PARTS: &[&str] = &["input_text", "input_image", "input_file"];
/// Content part types of assistant messages.
const OUTPUT_PARTS: &[&str] = &["output_text", "refusal"];
/// Input item types and, for the ones bitrouter writes, the fields each may carry (`None`: a
/// type only replayed from the Codex CLI's own history, whose fields are not checked).
const ITEMS: &[(&str, Option<&[&str]>)] = &[
    (
        "message",
        Some(&["id", "type", "role", "content", "status", "phase"]),
    ),
    (
        "function_call",
        Some(&[
            "id",
            "type",
            "call_id",
            "name",
            "arguments",
            "status",
            "namespace",
        ]),
    ),
    (
        "function_call_output",
        Some(&["id", "type", "call_id", "output", "status"]),
    ),
    (
        "reasoning",
        Some(&[
            "id",
            "type",
            "summary",
            "content",
            "encrypted_content",
            "status",
        ]),
    ),
    (
        "custom_tool_call",
        Some(&["id", "type", "call_id", "name", "input", "status"]),
    ),
    (
        "custom_tool_call_output",
        Some(&["id", "type", "call_id", "output", "name"]),
    ),
    ("web_search_call", Some(&["id", "type", "status", "action"])),
    // The Codex CLI 0.171 sends its tools as a developer `additional_tools` item of
    // `namespace` tools instead of a top-level `tools` list.
    ("additional_tools", None),
    ("local_shell_call", None),
    ("image_generation_call", None),
    ("compaction", None),
    ("compaction_summary", None),
    ("tool_search_call", None),
    ("tool_search_output", None),
    ("file_search_call", None),
    ("computer_call", None),
    ("computer_call_output", None),
    ("code_interpreter_call", None),
    ("mcp_call", None),
    ("mcp_list_tools", None),
    ("mcp_approval_request", None),
    ("mcp_approval_response", None),
];

/// One input item: a known type, known fields, required fields of the right type. An `id` is
/// allowed: the spec reports ids refused with `store: false`, but the real Codex CLI 0.171
/// sends its own `msg_<uuid>` ids on messages to the real backend.
pub(super) fn check_item(item: &Value, at: &str) -> Checked {
    let Value::Object(fields) = item else {
        return Err(invalid_type(at, "an object", item));
    };
    // An item without `type` is a message when it has a role (the "easy" input message).
    let kind = match fields.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        None if fields.contains_key("role") => "message",
        None => return Err(missing(&format!("{at}.type"))),
        Some(other) => return Err(invalid_type(&format!("{at}.type"), "a string", other)),
    };
    let Some((_, allowed)) = ITEMS.iter().find(|(name, _)| *name == kind) else {
        let supported: Vec<&str> = ITEMS.iter().map(|(name, _)| *name).collect();
        return Err(invalid_value(&format!("{at}.type"), kind, &supported));
    };
    if let Some(allowed) = allowed
        && let Some(key) = fields.keys().find(|k| !allowed.contains(&k.as_str()))
    {
        return Err(unknown_parameter(&format!("{at}.{key}")));
    }
    match kind {
        "message" => check_message(fields, at),
        "function_call" => {
            required_string(fields, at, "call_id")?;
            required_string(fields, at, "name")?;
            required_string(fields, at, "arguments")
        }
        "custom_tool_call" => {
            required_string(fields, at, "call_id")?;
            required_string(fields, at, "name")?;
            required_string(fields, at, "input")
        }
        "function_call_output" | "custom_tool_call_output" => {
            required_string(fields, at, "call_id")?;
            match fields.get("output") {
                None => Err(missing(&format!("{at}.output"))),
                Some(Value::String(_)) => Ok(()),
                Some(Value::Array(parts)) => {
                    check_parts(parts, INPUT_PARTS, &format!("{at}.output"))
                }
                Some(other) => Err(invalid_type(
                    &format!("{at}.output"),
                    "a string or an array",
                    other,
                )),
            }
        }
        "reasoning" => check_reasoning_item(fields, at),
        _ => Ok(()),
    }
}

fn required_string(fields: &Map<String, Value>, at: &str, key: &str) -> Checked {
    match fields.get(key) {
        Some(Value::String(_)) => Ok(()),
        None | Some(Value::Null) => Err(missing(&format!("{at}.{key}"))),
        Some(other) => Err(invalid_type(&format!("{at}.{key}"), "a string", other)),
    }
}

fn check_message(fields: &Map<String, Value>, at: &str) -> Checked {
    let role = match fields.get("role") {
        Some(Value::String(role)) => role.as_str(),
        None => return Err(missing(&format!("{at}.role"))),
        Some(other) => return Err(invalid_type(&format!("{at}.role"), "a string", other)),
    };
    if !ROLES.contains(&role) {
        return Err(invalid_value(&format!("{at}.role"), role, ROLES));
    }
    if role != "assistant" && fields.contains_key("phase") {
        return Err(unknown_parameter(&format!("{at}.phase")));
    }
    let parts = if role == "assistant" {
        OUTPUT_PARTS
    } else {
        INPUT_PARTS
    };
    match fields.get("content") {
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(list)) => check_parts(list, parts, &format!("{at}.content")),
        None => Err(missing(&format!("{at}.content"))),
        Some(other) => Err(invalid_type(
            &format!("{at}.content"),
            "a string or an array",
            other,
        )),
    }
}

/// Content parts: each of a type in `allowed`, with that type's fields.
fn check_parts(parts: &[Value], allowed: &[&str], at: &str) -> Checked {
    for (j, part) in parts.iter().enumerate() {
        let at = format!("{at}[{j}]");
        let Value::Object(fields) = part else {
            return Err(invalid_type(&at, "an object", part));
        };
        let kind = fields.get("type").and_then(Value::as_str).unwrap_or("");
        if !allowed.contains(&kind) {
            return Err(invalid_value(&format!("{at}.type"), kind, allowed));
        }
        let (known, required): (&[&str], &[&str]) = match kind {
            "input_text" => (&["type", "text"], &["text"]),
            "output_text" => (&["type", "text", "annotations", "logprobs"], &["text"]),
            "refusal" => (&["type", "refusal"], &["refusal"]),
            "input_image" => (&["type", "image_url", "file_id", "detail"], &[]),
            _ => (
                &["type", "file_id", "file_data", "file_url", "filename"],
                &[],
            ),
        };
        if let Some(key) = fields.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(unknown_parameter(&format!("{at}.{key}")));
        }
        for key in required {
            required_string(fields, &at, key)?;
        }
        let has_file = ["file_id", "file_data", "file_url"]
            .iter()
            .any(|k| fields.contains_key(*k));
        match kind {
            "input_image" => check_image(fields, &at)?,
            "input_file" if !has_file => return Err(missing(&format!("{at}.file_data"))),
            _ => {}
        }
    }
    Ok(())
}

/// An image part: a URL (`http(s)` or a base64 `data:` URL) or a file id, and a known detail.
fn check_image(fields: &Map<String, Value>, at: &str) -> Checked {
    match (fields.get("image_url"), fields.get("file_id")) {
        (Some(Value::String(url)), _) => {
            let fine = url.starts_with("https://")
                || url.starts_with("http://")
                || (url.starts_with("data:image/") && url.contains(";base64,"));
            if !fine {
                return Err(schema(
                    format!(
                        "Invalid '{at}.image_url'. Expected a valid URL, but got a value with an invalid format."
                    ),
                    &format!("{at}.image_url"),
                    Some("invalid_value"),
                ));
            }
        }
        (_, Some(Value::String(_))) => {}
        _ => return Err(missing(&format!("{at}.image_url"))),
    }
    match fields.get("detail").and_then(Value::as_str) {
        None | Some("low" | "high" | "auto" | "original") => Ok(()),
        Some(other) => Err(invalid_value(
            &format!("{at}.detail"),
            other,
            &["low", "high", "auto", "original"],
        )),
    }
}

/// A reasoning item: `summary` is a list of `summary_text` parts; `encrypted_content` a string.
fn check_reasoning_item(fields: &Map<String, Value>, at: &str) -> Checked {
    let Some(summary) = fields.get("summary") else {
        return Err(missing(&format!("{at}.summary")));
    };
    let Value::Array(parts) = summary else {
        return Err(invalid_type(&format!("{at}.summary"), "an array", summary));
    };
    for (j, part) in parts.iter().enumerate() {
        if part["type"] != "summary_text" || !part["text"].is_string() {
            return Err(invalid_value(
                &format!("{at}.summary[{j}].type"),
                part["type"].as_str().unwrap_or(""),
                &["summary_text"],
            ));
        }
    }
    match fields.get("encrypted_content") {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(other) => Err(invalid_type(
            &format!("{at}.encrypted_content"),
            "a string",
            other,
        )),
    }
}

/// Calls and their outputs: an output needs an earlier call with its `call_id`; a call needs
/// its output after it and before the next user message.
pub(super) fn check_pairs(input: &[Value]) -> Checked {
    let call_id = |item: &Value| item["call_id"].as_str().unwrap_or("").to_owned();
    let kind = |item: &Value| item["type"].as_str().unwrap_or("").to_owned();
    let mut open: Vec<(String, String)> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for item in input {
        let kind = kind(item);
        if matches!(
            kind.as_str(),
            "function_call" | "custom_tool_call" | "local_shell_call"
        ) {
            seen.insert(call_id(item));
            open.push((kind, call_id(item)));
        } else if kind.ends_with("_call_output") {
            let id = call_id(item);
            if !seen.contains(&id) {
                return Err(schema(
                    format!("No tool call found for function call output with call_id {id}."),
                    "input",
                    None,
                ));
            }
            open.retain(|(_, open_id)| *open_id != id);
        } else if item["role"] == "user"
            && let Some((kind, id)) = open.first()
        {
            return Err(unanswered(kind, id));
        }
    }
    match open.first() {
        Some((kind, id)) => Err(unanswered(kind, id)),
        None => Ok(()),
    }
}

fn unanswered(kind: &str, id: &str) -> Rejection {
    let what = if kind == "custom_tool_call" {
        "custom tool call"
    } else {
        "function call"
    };
    schema(
        format!("No tool output found for {what} {id}."),
        "input",
        None,
    )
}
