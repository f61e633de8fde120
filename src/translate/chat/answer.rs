//! An aggregated Responses object as one `chat.completion`.

use serde_json::{Map, Value, json};

use super::{ID_PREFIX, chat_usage, finish_reason};
use crate::translate::names::ToolNameMap;
use crate::translate::stop::truncate_at_stop;
use crate::translate::{Finish, Usage, created_at, derived_id, type_of};

/// Builds one `chat.completion` from an aggregated Responses object (see
/// [`crate::translate::responses::Aggregator`]). Stop sequences cut the text, and drop any output item
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
