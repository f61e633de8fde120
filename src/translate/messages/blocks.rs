//! Content blocks → Responses content parts and items: text, images (base64 and url),
//! documents (PDF as a file, plain text and content sources as text), search results, tool
//! uses and tool results (with `is_error`, text, images and documents), bitrouter's own
//! thinking blocks (back to encrypted reasoning) and web searches (back to `web_search_call`
//! items). Blocks that need an Anthropic-side feature (Files API sources, code execution, MCP,
//! compaction…) are refused with the block's path.

use serde_json::{Value, json};

use super::thinking;
use super::tools::ToolChange;
use crate::translate::names::ToolNameMap;
use crate::translate::{TranslateError, input_text, type_of};

/// The prefix that marks a tool result the client flagged with `is_error` (Responses outputs
/// carry no error flag).
pub const TOOL_ERROR_PREFIX: &str = "[tool error] ";

/// The text of a `text` block.
pub fn text_of(block: &Value) -> &str {
    // `citations` on a text block only point at where earlier text came from, and
    // `cache_control` is a caching hint: neither is part of what the model reads.
    block.get("text").and_then(Value::as_str).unwrap_or("")
}

/// A content part for a user-side block (`text`, `image`, `document`, `search_result`).
///
/// # Errors
///
/// An unsupported source, or a block type that is not user content.
pub fn user_parts(block: &Value, field: &str) -> Result<Vec<Value>, TranslateError> {
    match type_of(block) {
        "text" => {
            let text = text_of(block);
            Ok(if text.is_empty() {
                Vec::new()
            } else {
                vec![input_text(text)]
            })
        }
        "image" => Ok(vec![image_part(block, field)?]),
        "document" => document_parts(block, field),
        "search_result" => Ok(vec![input_text(&search_result_text(block))]),
        other => Err(unsupported_block(other, field, "user")),
    }
}

/// The error for a block type that cannot be translated in this place.
pub fn unsupported_block(kind: &str, field: &str, role: &str) -> TranslateError {
    TranslateError::unsupported(
        format!("{field}.type"),
        format!("`{kind}` blocks are not supported in {role} messages by the Responses backend"),
    )
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
            if media_type.is_empty() || data.is_empty() {
                return Err(TranslateError::invalid(
                    format!("{field}.source"),
                    "a base64 source needs `media_type` and `data`",
                ));
            }
            Ok(format!("data:{media_type};base64,{data}"))
        }
        "url" => source
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| TranslateError::Missing(format!("{field}.source.url"))),
        "file" => Err(TranslateError::unsupported(
            format!("{field}.source.type"),
            "`file` sources refer to Anthropic's Files API, which the Responses backend cannot read; send the content as base64 or a url",
        )),
        other => Err(TranslateError::unsupported(
            format!("{field}.source.type"),
            format!("`{other}` sources are not supported; use base64 or url"),
        )),
    }
}

/// An `image` block → `input_image`.
fn image_part(block: &Value, field: &str) -> Result<Value, TranslateError> {
    let transformed = block
        .get("transformations")
        .and_then(Value::as_object)
        .is_some_and(|t| !t.is_empty());
    if transformed {
        return Err(TranslateError::unsupported(
            format!("{field}.transformations"),
            "the Responses backend cannot apply Anthropic's image transformations",
        ));
    }
    let url = source_url(block.get("source").unwrap_or(&Value::Null), field)?;
    Ok(json!({"type": "input_image", "image_url": url, "detail": "auto"}))
}

/// A `document` block → an `input_file` (base64 or url PDF) or text parts (text and content
/// sources), after its `context`. The `title` names the file. Citations cannot be produced by
/// the backend, so asking for them is refused.
fn document_parts(block: &Value, field: &str) -> Result<Vec<Value>, TranslateError> {
    if block.pointer("/citations/enabled").and_then(Value::as_bool) == Some(true) {
        return Err(TranslateError::unsupported(
            format!("{field}.citations"),
            "the Responses backend cannot cite document passages",
        ));
    }
    let source = block.get("source").unwrap_or(&Value::Null);
    let title = block.get("title").and_then(Value::as_str);
    let mut parts = Vec::new();
    if let Some(context) = block
        .get("context")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    {
        parts.push(input_text(context));
    }
    match type_of(source) {
        "text" => {
            let data = source.get("data").and_then(Value::as_str).unwrap_or("");
            let text = match title {
                Some(title) => format!("{title}\n\n{data}"),
                None => data.to_owned(),
            };
            parts.push(input_text(&text));
        }
        "content" => match source.get("content") {
            Some(Value::String(text)) => parts.push(input_text(text)),
            Some(Value::Array(blocks)) => {
                for (k, inner) in blocks.iter().enumerate() {
                    let inner_field = format!("{field}.source.content[{k}]");
                    match type_of(inner) {
                        "text" | "image" => parts.extend(user_parts(inner, &inner_field)?),
                        other => return Err(unsupported_block(other, &inner_field, "document")),
                    }
                }
            }
            _ => return Err(TranslateError::Missing(format!("{field}.source.content"))),
        },
        "url" => parts.push(json!({"type": "input_file", "file_url": source_url(source, field)?})),
        _ => {
            let data = source_url(source, field)?;
            let filename = title.unwrap_or("document.pdf");
            parts.push(json!({"type": "input_file", "filename": filename, "file_data": data}));
        }
    }
    Ok(parts)
}

/// A `search_result` block as text: title, source, then its text blocks.
fn search_result_text(block: &Value) -> String {
    let title = block.get("title").and_then(Value::as_str).unwrap_or("");
    let source = block.get("source").and_then(Value::as_str).unwrap_or("");
    let body: Vec<&str> = block
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(text_of)
        .collect();
    format!("{title}\nSource: {source}\n\n{}", body.join("\n"))
}

/// A `tool_use` block → a `function_call` item.
///
/// # Errors
///
/// A missing `id` or `name`.
pub fn function_call(
    block: &Value,
    field: &str,
    names: &ToolNameMap,
) -> Result<Value, TranslateError> {
    let id = block
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing(format!("{field}.id")))?;
    let name = block
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing(format!("{field}.name")))?;
    let arguments = match block.get("input") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(input) => input.to_string(),
    };
    Ok(
        json!({"type": "function_call", "call_id": id, "name": names.to_upstream(name), "arguments": arguments}),
    )
}

/// A `tool_result` block → a `function_call_output` item: a string, or a list of parts when the
/// result holds images or files. Its `tool_reference` blocks load deferred tools.
///
/// # Errors
///
/// A missing `tool_use_id`, or content that cannot be translated.
pub fn tool_result(
    block: &Value,
    field: &str,
    changes: &mut Vec<ToolChange>,
) -> Result<Value, TranslateError> {
    let call_id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing(format!("{field}.tool_use_id")))?;
    let prefix = if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        TOOL_ERROR_PREFIX
    } else {
        ""
    };
    let parts = match block.get("content") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![input_text(text)],
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::new();
            for (k, inner) in blocks.iter().enumerate() {
                let inner_field = format!("{field}.content[{k}]");
                if type_of(inner) == "tool_reference" {
                    let name = inner
                        .get("tool_name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            TranslateError::Missing(format!("{inner_field}.tool_name"))
                        })?;
                    changes.push(ToolChange::Load(name.to_owned()));
                    parts.push(input_text(&format!("Tool `{name}` is now available.")));
                    continue;
                }
                parts.extend(user_parts(inner, &inner_field)?);
            }
            parts
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                format!("{field}.content"),
                "must be a string or a list of blocks",
            ));
        }
    };
    let only_text = parts.iter().all(|p| type_of(p) == "input_text");
    let output = if only_text {
        let texts: Vec<&str> = parts.iter().map(text_of).collect();
        json!(format!("{prefix}{}", texts.join("\n")))
    } else {
        let mut list = Vec::with_capacity(parts.len() + 1);
        if !prefix.is_empty() {
            list.push(input_text(prefix.trim_end()));
        }
        list.extend(parts);
        Value::Array(list)
    };
    Ok(json!({"type": "function_call_output", "call_id": call_id, "output": output}))
}

/// A `thinking` block → a `reasoning` item when bitrouter signed it; `None` (dropped, never
/// forwarded) otherwise.
pub fn reasoning(block: &Value) -> Option<Value> {
    thinking::reasoning_item(block)
}

/// A web search the model ran in an earlier turn (`server_tool_use` named `web_search`) → a
/// completed `web_search_call` item with its query. The results block that follows it is
/// not sent: the backend keeps search results out of its input, as it does for its own
/// searches, and the model's answer already holds what it used.
///
/// # Errors
///
/// A server tool other than web search.
pub fn web_search_call(block: &Value, field: &str) -> Result<Value, TranslateError> {
    let name = block.get("name").and_then(Value::as_str).unwrap_or("");
    if name != "web_search" {
        return Err(unsupported_block(
            &format!("server_tool_use` named `{name}"),
            field,
            "assistant",
        ));
    }
    let query = block
        .pointer("/input/query")
        .and_then(Value::as_str)
        .unwrap_or("");
    Ok(
        json!({"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": query}}),
    )
}
