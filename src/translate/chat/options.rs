//! The options of a Chat Completions request in Responses terms: tools and tool choice,
//! response format, reasoning effort, verbosity and stop sequences.

use serde_json::{Map, Value, json};

use crate::translate::TranslateError;
use crate::translate::names::ToolNameMap;
use crate::translate::tools::FunctionTool;
use crate::translate::type_of;

/// Tools, tool choice, response format, reasoning and the other translated options.
pub(super) fn translate_options(
    body: &Map<String, Value>,
    tools: Option<Value>,
    names: &ToolNameMap,
    out: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    if let Some(tools) = tools.filter(|t| !t.is_null()) {
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

/// Chat tools (`{type: function, function: {…}}`) → flat Responses function tools (see
/// [`FunctionTool`]); each schema moves to the new tool instead of being copied.
fn translate_tools(tools: Value, names: &ToolNameMap) -> Result<Value, TranslateError> {
    let Value::Array(tools) = tools else {
        return Err(TranslateError::invalid("tools", "must be a list"));
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, mut tool) in tools.into_iter().enumerate() {
        if type_of(&tool) != "function" {
            return Err(TranslateError::unsupported(
                format!("tools[{i}].type"),
                "only function tools are supported",
            ));
        }
        let schema = tool
            .pointer_mut("/function/parameters")
            .filter(|p| p.is_object())
            .map(Value::take);
        let function = FunctionTool::in_chat(&tool)
            .ok_or_else(|| TranslateError::Missing(format!("tools[{i}].function.name")))?;
        out.push(function.to_responses_with_schema(names.to_upstream(function.name), schema));
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
pub(super) fn stop_sequences(stop: Option<&Value>) -> Result<Vec<String>, TranslateError> {
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
