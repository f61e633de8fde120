//! Tools and tool choice. Client tools become Responses function tools; the web search server
//! tools (`web_search_20250305` and its successors) become the backend's `web_search` tool,
//! whose calls come back as `server_tool_use` / `web_search_tool_result` blocks. Any other
//! Anthropic-defined tool (bash, text editor, computer, code execution, MCP toolsets…) is
//! refused: the backend has no equivalent.
//!
//! Deferred tools (`defer_loading: true`) stay hidden from the model until the conversation
//! loads them: a `tool_reference` block in a tool result, or a `tool_addition` block in a
//! system message; a `tool_removal` block withdraws a tool. The tools sent are the ones in
//! effect after the last message (the backend has no mid-conversation tool changes).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::translate::names::ToolNameMap;
use crate::translate::{TranslateError, type_of};

/// Anthropic's web search server tools, by type.
const WEB_SEARCH_TYPES: &[&str] = &[
    "web_search_20250305",
    "web_search_20260209",
    "web_search_20260318",
];

/// A change to the tools in effect, in conversation order.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChange {
    /// A declared (or earlier defined) tool becomes available: a `tool_reference` in a tool
    /// result or a `tool_addition` referring to it.
    Load(String),
    /// A `tool_addition` carrying a whole definition.
    Define {
        /// The tool definition (as in `tools`).
        definition: Value,
        /// Where it was, for errors.
        field: String,
    },
    /// A `tool_removal`.
    Remove(String),
}

/// One declared tool, translated.
#[derive(Debug, Clone)]
struct Declared {
    /// The Responses tool.
    wire: Value,
    /// Hidden until loaded.
    deferred: bool,
}

/// The tools of a request, translated, and what the way back needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tools {
    /// The Responses tools in effect.
    pub wire: Vec<Value>,
    /// Whether the web search server tool is among them.
    pub web_search: bool,
}

/// Translates `tools` and applies the conversation's tool changes.
///
/// # Errors
///
/// A malformed tool, a tool type the backend cannot serve, or a change naming no tool.
pub fn translate(
    tools: Option<Value>,
    changes: &[ToolChange],
    names: &ToolNameMap,
) -> Result<Tools, TranslateError> {
    let list = match tools {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(TranslateError::invalid("tools", "must be a list")),
    };
    let mut declared: BTreeMap<String, Declared> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (i, tool) in list.into_iter().enumerate() {
        let (name, tool) = declare(tool, &format!("tools[{i}]"), names)?;
        if !tool.deferred {
            order.push(name.clone());
        }
        declared.insert(name, tool);
    }
    for change in changes {
        match change {
            // A reference to a tool that was never declared loads nothing: there is no
            // definition to offer the model.
            ToolChange::Load(name) => {
                if declared.contains_key(name) && !order.contains(name) {
                    order.push(name.clone());
                }
            }
            ToolChange::Define { definition, field } => {
                let (name, tool) = declare(definition.clone(), field, names)?;
                declared.insert(name.clone(), tool);
                if !order.contains(&name) {
                    order.push(name);
                }
            }
            ToolChange::Remove(name) => order.retain(|n| n != name),
        }
    }
    // Each tool's definition moves to the output; one named twice is copied for all but its
    // last place.
    let mut wire: Vec<Value> = Vec::with_capacity(order.len());
    for (i, name) in order.iter().enumerate() {
        let tool = if order[i + 1..].contains(name) {
            declared.get(name).map(|d| d.wire.clone())
        } else {
            declared.remove(name).map(|d| d.wire)
        };
        wire.extend(tool);
    }
    let web_search = wire.iter().any(|t| type_of(t) == "web_search");
    Ok(Tools { wire, web_search })
}

/// One tool definition → its client name and Responses tool.
fn declare(
    tool: Value,
    field: &str,
    names: &ToolNameMap,
) -> Result<(String, Declared), TranslateError> {
    let Value::Object(mut fields) = tool else {
        return Err(TranslateError::invalid(field, "must be an object"));
    };
    let name = fields
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::Missing(format!("{field}.name")))?
        .to_owned();
    // `cache_control` is a prompt-caching hint (the backend caches prefixes by itself),
    // `eager_input_streaming` a streaming granularity, `allowed_callers` matters only with
    // code execution, which is refused: ignoring them cannot change the answer.
    let deferred = fields.get("defer_loading").and_then(Value::as_bool) == Some(true);
    let wire = match fields.get("type").and_then(Value::as_str).unwrap_or("") {
        "" | "custom" => function_tool(&mut fields, &name, field, names)?,
        kind if WEB_SEARCH_TYPES.contains(&kind) => web_search_tool(&fields, field)?,
        other => {
            return Err(TranslateError::unsupported(
                format!("{field}.type"),
                format!(
                    "the `{other}` tool has no equivalent on the Responses backend; client tools (with `input_schema`) and web search ({}) are supported",
                    WEB_SEARCH_TYPES.join(", ")
                ),
            ));
        }
    };
    Ok((name, Declared { wire, deferred }))
}

/// A client tool → a function tool, its schema moved out of `fields`. `input_examples` are
/// appended to the description, so the model still sees them.
fn function_tool(
    fields: &mut Map<String, Value>,
    name: &str,
    field: &str,
    names: &ToolNameMap,
) -> Result<Value, TranslateError> {
    let schema = match fields.get_mut("input_schema") {
        Some(schema @ Value::Object(_)) => schema.take(),
        None | Some(Value::Null) => {
            return Err(TranslateError::Missing(format!("{field}.input_schema")));
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                format!("{field}.input_schema"),
                "must be an object",
            ));
        }
    };
    let mut description = fields
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if let Some(Value::Array(examples)) = fields.get("input_examples")
        && !examples.is_empty()
    {
        let shown: Vec<String> = examples.iter().map(Value::to_string).collect();
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str("Example inputs:\n");
        description.push_str(&shown.join("\n"));
    }
    let mut function = Map::new();
    function.insert("type".to_owned(), json!("function"));
    function.insert("name".to_owned(), json!(names.to_upstream(name)));
    if !description.is_empty() {
        function.insert("description".to_owned(), json!(description));
    }
    function.insert("parameters".to_owned(), schema);
    let strict = fields.get("strict").and_then(Value::as_bool) == Some(true);
    function.insert("strict".to_owned(), json!(strict));
    Ok(Value::Object(function))
}

/// A web search server tool → the backend's `web_search` tool. `max_uses` is not sent: the
/// backend has no cap, and the answer is the same one a capped search would have grounded.
fn web_search_tool(fields: &Map<String, Value>, field: &str) -> Result<Value, TranslateError> {
    if fields.get("name").and_then(Value::as_str) != Some("web_search") {
        return Err(TranslateError::invalid(
            format!("{field}.name"),
            "must be `web_search`",
        ));
    }
    let blocked = fields
        .get("blocked_domains")
        .and_then(Value::as_array)
        .is_some_and(|list| !list.is_empty());
    if blocked {
        return Err(TranslateError::unsupported(
            format!("{field}.blocked_domains"),
            "the backend's web search can only be limited to allowed domains, not told which to avoid",
        ));
    }
    let mut tool = Map::new();
    tool.insert("type".to_owned(), json!("web_search"));
    if let Some(Value::Array(allowed)) = fields.get("allowed_domains")
        && !allowed.is_empty()
    {
        tool.insert("filters".to_owned(), json!({"allowed_domains": allowed}));
    }
    if let Some(Value::Object(location)) = fields.get("user_location") {
        let mut out = Map::new();
        out.insert("type".to_owned(), json!("approximate"));
        for key in ["city", "region", "country", "timezone"] {
            if let Some(value) = location.get(key).filter(|v| v.is_string()) {
                out.insert(key.to_owned(), value.clone());
            }
        }
        tool.insert("user_location".to_owned(), Value::Object(out));
    }
    Ok(Value::Object(tool))
}

/// Anthropic `tool_choice` → Responses `tool_choice` and whether parallel calls are allowed.
///
/// # Errors
///
/// An unknown choice type or a `tool` choice without a name.
pub fn choice(
    choice: Option<&Value>,
    tools: &Tools,
    names: &ToolNameMap,
) -> Result<(Option<Value>, bool), TranslateError> {
    let Some(choice) = choice.filter(|c| !c.is_null()) else {
        return Ok((None, true));
    };
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        != Some(true);
    let wire = match type_of(choice) {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => {
            let name = choice
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::Missing("tool_choice.name".to_owned()))?;
            let is_function = tools
                .wire
                .iter()
                .any(|t| t.get("name").and_then(Value::as_str) == Some(names.to_upstream(name)));
            if name == "web_search" && tools.web_search && !is_function {
                json!({"type": "web_search"})
            } else {
                json!({"type": "function", "name": names.to_upstream(name)})
            }
        }
        other => {
            return Err(TranslateError::invalid(
                "tool_choice.type",
                format!("unknown type `{other}`; expected auto, any, tool or none"),
            ));
        }
    };
    Ok((Some(wire), parallel))
}
