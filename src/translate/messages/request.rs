//! Anthropic Messages request → Responses request. Every top-level field is translated,
//! ignored where ignoring cannot change the answer (each says why), or refused with one clear
//! 400 naming the field and the reason; unknown fields are refused, as Anthropic refuses them.
//!
//! Messages keep their order: the top-level `system` becomes a `developer` message first, and
//! `role: "system"` messages become `developer` messages where they stand (one whose
//! `clear_at` is `next_user_message` is left out once a later user message exists). A user
//! message's tool results come first, as `function_call_output` items, then its other
//! content as one user message; an assistant message's blocks become reasoning items (from
//! bitrouter's own thinking signatures), assistant text, `function_call` items and
//! `web_search_call` items, in order. A conversation that ends with an assistant message
//! (prefill) is refused: the backend cannot continue a partial answer.

use serde_json::{Map, Value, json};

use super::conversation::Conversation;
use super::thinking::{self, ThinkingPlan};
use super::tools;
use crate::translate::names::ToolNameMap;
use crate::translate::responses::shape_for_codex;
use crate::translate::{Backend, TranslateError, type_of};

/// Top-level fields that are translated.
const TRANSLATED: &[&str] = &[
    "model",
    "messages",
    "system",
    "stream",
    "max_tokens",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "stop_sequences",
    "context_management",
    "metadata",
    "speed",
    "temperature",
    "top_p",
    "top_k",
];

/// Top-level fields that are read and ignored, because they cannot change the answer here:
/// `cache_control` is a prompt-caching hint (the backend caches prefixes on its own),
/// `service_tier` picks Anthropic's capacity pool, `diagnostics` only adds cache reports,
/// `fallback_credit_token` is Anthropic billing, `user_profile_id` and `workspace_id` are
/// Anthropic account attribution.
const IGNORED: &[&str] = &[
    "cache_control",
    "service_tier",
    "diagnostics",
    "fallback_credit_token",
    "user_profile_id",
    "workspace_id",
];

/// Top-level fields that ask for something only Anthropic's servers can do, with why.
const REFUSED: &[(&str, &str)] = &[
    (
        "container",
        "code-execution containers exist only on Anthropic's servers",
    ),
    (
        "mcp_servers",
        "the Responses backend does not connect to MCP servers for bitrouter",
    ),
    (
        "compaction",
        "compaction requests are not translated; send the conversation itself",
    ),
    (
        "fallbacks",
        "server-side model fallbacks are Anthropic's; route fallbacks with bitrouter `routes`",
    ),
    (
        "thread",
        "server-held conversation state does not exist when nothing is stored",
    ),
    (
        "inference_geo",
        "the backend does not let bitrouter choose where inference runs",
    ),
];

/// A Messages request translated to Responses, with what is needed to translate back.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesRequest {
    /// The Responses body to send upstream (already shaped for its backend).
    pub responses_body: Value,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// The model the client asked for.
    pub model: String,
    /// The tool names that were shortened.
    pub tool_names: ToolNameMap,
    /// The client's stop sequences, applied on the way back.
    pub stop: Vec<String>,
    /// Whether reasoning comes back as thinking blocks (thinking is on).
    pub thinking: bool,
    /// Request fields and blocks that were not sent upstream, for logs.
    pub dropped: Vec<String>,
}

/// Translates an Anthropic Messages request body into a Responses body for the Codex backend.
///
/// # Errors
///
/// A malformed request, or one asking for something the backend cannot do (see the module
/// documentation).
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
    let Value::Object(mut body) = body else {
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
    check_fields(&body)?;
    let mut dropped = dropped_fields(&body, backend);

    let tool_names = ToolNameMap::build(tool_names_in(&body, messages));
    let keep_thinking = thinking_turns_kept(body.get("context_management"))?;
    let mut conversation = Conversation::new(&tool_names, messages, keep_thinking);
    conversation.system(body.get("system"))?;
    for (i, message) in messages.iter().enumerate() {
        conversation.message(i, message)?;
    }
    let Conversation {
        input,
        changes,
        turn_effort,
        dropped: dropped_blocks,
        ..
    } = conversation;
    dropped.extend(dropped_blocks);

    // The definitions move into the new body (their schemas are most of a coding agent's
    // request).
    let tools = tools::translate(body.remove("tools"), &changes, &tool_names)?;
    let (choice, parallel) = tools::choice(body.get("tool_choice"), &tools, &tool_names)?;
    let ThinkingPlan { reasoning, blocks } = thinking::plan(
        body.get("thinking"),
        body.get("output_config"),
        turn_effort.as_deref(),
    )?;

    let mut out = Map::new();
    out.insert("model".to_owned(), json!(model));
    out.insert("input".to_owned(), Value::Array(input));
    if !tools.wire.is_empty() {
        out.insert("tools".to_owned(), Value::Array(tools.wire));
        out.insert("parallel_tool_calls".to_owned(), json!(parallel));
    }
    if let Some(choice) = choice {
        out.insert("tool_choice".to_owned(), choice);
    }
    if let Some(reasoning) = reasoning {
        out.insert("reasoning".to_owned(), reasoning);
    }
    if let Some(format) = output_format(body.get("output_config"))? {
        out.insert("text".to_owned(), json!({"format": format}));
    }
    if let Some(key) = session_key(body.get("metadata")) {
        out.insert("prompt_cache_key".to_owned(), json!(key));
    }
    if body.get("speed").and_then(Value::as_str) == Some("fast") {
        // Anthropic's fast mode is the backend's priority tier (Codex "Fast").
        out.insert("service_tier".to_owned(), json!("priority"));
    }
    let responses_body = match backend {
        Backend::Codex => {
            let shaped = shape_for_codex(Value::Object(out))?;
            dropped.extend(shaped.dropped);
            shaped.body
        }
        Backend::Generic => {
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
        thinking: blocks,
        dropped,
    })
}

/// Refuses unknown fields and fields only Anthropic can honour.
fn check_fields(body: &Map<String, Value>) -> Result<(), TranslateError> {
    for (key, value) in body {
        if value.is_null() || TRANSLATED.contains(&key.as_str()) || IGNORED.contains(&key.as_str())
        {
            continue;
        }
        if let Some((_, why)) = REFUSED.iter().find(|(k, _)| k == key) {
            let empty_list = value.as_array().is_some_and(Vec::is_empty);
            if !empty_list {
                return Err(TranslateError::unsupported(key.clone(), *why));
            }
            continue;
        }
        if key == "billing_policy" {
            if value
                .get("bill_to")
                .and_then(Value::as_str)
                .unwrap_or("self")
                != "self"
            {
                return Err(TranslateError::unsupported(
                    "billing_policy.bill_to",
                    "only `self` can be honoured: bitrouter answers from your own subscription",
                ));
            }
            continue;
        }
        return Err(TranslateError::invalid(
            key.clone(),
            "unknown field: the Anthropic Messages API has no such parameter",
        ));
    }
    if let Some(config) = body.get("output_config").filter(|c| !c.is_null()) {
        let Value::Object(config) = config else {
            return Err(TranslateError::invalid(
                "output_config",
                "must be an object",
            ));
        };
        for key in config.keys() {
            match key.as_str() {
                "effort" | "format" => {}
                "task_budget" if config[key].is_null() => {}
                "task_budget" => {
                    return Err(TranslateError::unsupported(
                        "output_config.task_budget",
                        "the Responses backend has no token task budgets",
                    ));
                }
                other => {
                    return Err(TranslateError::invalid(
                        format!("output_config.{other}"),
                        "unknown field",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The fields not sent upstream, for logs.
fn dropped_fields(body: &Map<String, Value>, backend: Backend) -> Vec<String> {
    let mut dropped: Vec<String> = IGNORED
        .iter()
        .chain(&["metadata", "top_k", "context_management"])
        .filter(|k| body.get(**k).is_some_and(|v| !v.is_null()))
        .map(|k| (*k).to_owned())
        .collect();
    if backend == Backend::Codex {
        // The backend refuses sampling and length parameters (spec §6.3).
        dropped.extend(
            ["max_tokens", "temperature", "top_p"]
                .iter()
                .filter(|k| body.get(**k).is_some_and(|v| !v.is_null()))
                .map(|k| (*k).to_owned()),
        );
    }
    dropped.sort();
    dropped
}

/// Every tool name the request mentions: definitions, the tool choice, earlier calls and
/// mid-conversation definitions.
fn tool_names_in<'a>(body: &'a Map<String, Value>, messages: &'a [Value]) -> Vec<&'a str> {
    let name = |v: &'a Value| v.get("name").and_then(Value::as_str);
    let defined = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(name);
    let chosen = body.get("tool_choice").and_then(name);
    let blocks = messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten();
    let called = blocks
        .clone()
        .filter(|b| type_of(b) == "tool_use")
        .filter_map(name);
    let added = blocks
        .filter(|b| type_of(b) == "tool_addition")
        .filter_map(|b| b.pointer("/tool/definition"))
        .filter_map(name);
    defined.chain(chosen).chain(called).chain(added).collect()
}

/// `context_management`: `clear_thinking_20251015` is applied here (how many assistant turns
/// keep their thinking; `None` keeps all); other edits are refused.
fn thinking_turns_kept(config: Option<&Value>) -> Result<Option<usize>, TranslateError> {
    let Some(config) = config.filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    let edits = match config.get("edits") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(edits)) => edits,
        Some(_) => {
            return Err(TranslateError::invalid(
                "context_management.edits",
                "must be a list",
            ));
        }
    };
    let mut kept = None;
    for (i, edit) in edits.iter().enumerate() {
        let field = format!("context_management.edits[{i}]");
        match type_of(edit) {
            "clear_thinking_20251015" => kept = thinking::thinking_turns_kept(edit, &field)?,
            other => {
                return Err(TranslateError::unsupported(
                    format!("{field}.type"),
                    format!(
                        "the `{other}` context edit is not supported; only clear_thinking_20251015 is"
                    ),
                ));
            }
        }
    }
    Ok(kept)
}

/// `output_config.format` (a JSON schema) → Responses `text.format`.
fn output_format(config: Option<&Value>) -> Result<Option<Value>, TranslateError> {
    let Some(format) = config
        .and_then(|c| c.get("format"))
        .filter(|f| !f.is_null())
    else {
        return Ok(None);
    };
    if type_of(format) != "json_schema" {
        return Err(TranslateError::invalid(
            "output_config.format.type",
            "must be `json_schema`",
        ));
    }
    let schema = format
        .get("schema")
        .filter(|s| s.is_object())
        .ok_or_else(|| TranslateError::Missing("output_config.format.schema".to_owned()))?;
    Ok(Some(
        json!({"type": "json_schema", "name": "output", "schema": schema, "strict": true}),
    ))
}

/// A stable conversation key for the backend's prompt cache, from `metadata.user_id`: the
/// `session_id` inside it when it is JSON (Claude Code's shape), else the id itself. The
/// metadata is not sent otherwise (the backend refuses it), which cannot change the answer.
fn session_key(metadata: Option<&Value>) -> Option<String> {
    let user_id = metadata?.get("user_id")?.as_str()?;
    let session = serde_json::from_str::<Value>(user_id)
        .ok()
        .and_then(|v| {
            v.get("session_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .filter(|s| !s.is_empty());
    session.or_else(|| (!user_id.is_empty()).then(|| user_id.to_owned()))
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

#[cfg(test)]
mod tests;
