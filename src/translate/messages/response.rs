//! Responses output → Anthropic content, for whole answers ([`message_from_response`]) and the
//! pieces the stream shares: text with refusals, `tool_use` blocks, thinking blocks signed with
//! the encrypted reasoning, and web searches as `server_tool_use` + `web_search_tool_result`
//! blocks. Also the Anthropic error body, usage and stop reason.

use serde_json::{Value, json};

use super::thinking::signature_for;
use crate::translate::chat::summary_texts;
use crate::translate::names::ToolNameMap;
use crate::translate::stop::truncate_at_stop;
use crate::translate::{Finish, UpstreamError, Usage, derived_id, type_of};

/// The id prefix of messages.
pub(super) const ID_PREFIX: &str = "msg_";
/// The id prefix of server tool uses.
const SERVER_TOOL_PREFIX: &str = "srvtoolu_";

/// The text of a message item: its `output_text` and `refusal` parts, concatenated.
pub(super) fn message_text(item: &Value) -> String {
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
pub(super) fn has_refusal(item: &Value) -> bool {
    item.get("content")
        .and_then(Value::as_array)
        .is_some_and(|parts| parts.iter().any(|p| type_of(p) == "refusal"))
}

/// The summary text of a reasoning item (parts separated by a blank line).
pub(super) fn thinking_text(item: &Value) -> String {
    summary_texts(item).join("\n\n")
}

/// The signature for a reasoning item: its encrypted reasoning behind bitrouter's prefix, or
/// `""` when the backend sent none (a signature is never forged).
pub(super) fn thinking_signature(item: &Value) -> String {
    item.get("encrypted_content")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(signature_for)
        .unwrap_or_default()
}

/// A finished `function_call` item → a `tool_use` block. Arguments that are not a JSON object
/// (which a tool schema would not allow) become an empty input, with a warning in the log.
pub(super) fn tool_use_block(item: &Value, names: &ToolNameMap) -> Value {
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

/// The `server_tool_use` block id for a `web_search_call` item.
pub(super) fn web_search_id(item: &Value) -> String {
    let id = item.get("id").and_then(Value::as_str).unwrap_or("");
    if id.is_empty() {
        format!("{SERVER_TOOL_PREFIX}{}", uuid::Uuid::new_v4().simple())
    } else {
        format!("{SERVER_TOOL_PREFIX}{id}")
    }
}

/// The query of a `web_search_call` item.
pub(super) fn web_search_query(item: &Value) -> String {
    item.pointer("/action/query")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// The `web_search_tool_result` block for a finished `web_search_call` item: one result per
/// source the backend listed (it gives URLs, not titles or page contents).
pub(super) fn web_search_result_block(item: &Value, id: &str) -> Value {
    let results: Vec<Value> = item
        .pointer("/action/sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("url").and_then(Value::as_str))
        .map(|url| {
            json!({"type": "web_search_result", "url": url, "title": url, "encrypted_content": "", "page_age": null})
        })
        .collect();
    json!({"type": "web_search_tool_result", "tool_use_id": id, "content": results})
}

/// Builds one Anthropic `message` from an aggregated Responses object (see
/// [`super::super::responses::Aggregator`]). Stop sequences cut the text and drop any later
/// block; reasoning becomes thinking blocks (signed with the encrypted reasoning) only when
/// `thinking`.
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
                let text = thinking_text(item);
                let signature = thinking_signature(item);
                if !text.is_empty() || !signature.is_empty() {
                    content.push(
                        json!({"type": "thinking", "thinking": text, "signature": signature}),
                    );
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
            "web_search_call" => {
                let id = web_search_id(item);
                content.push(
                    json!({"type": "server_tool_use", "id": id, "name": "web_search",
                    "input": {"query": web_search_query(item)}}),
                );
                content.push(web_search_result_block(item, &id));
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

/// The Anthropic error body for an error: `{"type": "error", "error": {type, message}}`; an
/// overloaded backend is `overloaded_error`, which Anthropic clients retry.
#[must_use]
pub fn messages_error_body(err: &UpstreamError) -> Value {
    let kind = if err.is_overloaded() {
        "overloaded_error"
    } else {
        error_type(err.status)
    };
    json!({"type": "error", "error": {"type": kind, "message": err.message}})
}

/// Anthropic usage from Responses usage. Anthropic's `input_tokens` excludes cache reads, which
/// are reported on their own.
pub(super) fn anthropic_usage(usage: Option<Usage>) -> Value {
    let usage = usage.unwrap_or_default();
    json!({
        "input_tokens": usage.input_tokens.saturating_sub(usage.cached_tokens),
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    })
}

/// The Anthropic `stop_reason` for how a response ended.
pub(super) fn stop_reason(finish: &Finish, made_tool_calls: bool, refused: bool) -> &'static str {
    match finish {
        Finish::StopSequence(_) => "stop_sequence",
        Finish::MaxTokens => "max_tokens",
        Finish::ContentFilter => "refusal",
        Finish::Completed if refused => "refusal",
        Finish::Completed if made_tool_calls => "tool_use",
        Finish::Completed => "end_turn",
    }
}
