//! The Codex backend's request rules, as strict as the real backend (spec §6.3, §7.2, §8.5 and
//! the OpenAI Responses input schema): a `POST …/backend-api/codex/responses` body that breaks
//! one is refused with the backend's status and message, so a translation gap fails a test
//! instead of passing it. Where the spec marks a fact uncertain the rule is liberal (e.g.
//! `instructions` may be absent: the real Codex CLI omits it).
//!
//! Two error shapes, as the backend has them: its own checks answer FastAPI-style
//! `{"detail": "…"}` (stream, store, input, unsupported parameters, unknown models); schema
//! checks of the Responses engine answer `{"error": {"message", "type", "param", "code"}}`.

use serde_json::{Map, Value, json};

mod items;

/// A refused request: the HTTP status and body the backend answers with.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub status: u16,
    pub body: Value,
}

impl Rejection {
    /// The message, whichever shape the body has.
    pub fn message(&self) -> String {
        self.body["detail"]
            .as_str()
            .or_else(|| self.body["error"]["message"].as_str())
            .unwrap_or("")
            .to_owned()
    }
}

type Checked = Result<(), Rejection>;

/// `{"detail": message}`: the backend's own validation.
fn detail(message: impl Into<String>) -> Rejection {
    Rejection {
        status: 400,
        body: json!({"detail": message.into()}),
    }
}

/// `{"error": {…}}`: the Responses engine's schema validation.
fn schema(message: impl Into<String>, param: &str, code: Option<&str>) -> Rejection {
    Rejection {
        status: 400,
        body: json!({"error": {"message": message.into(), "type": "invalid_request_error",
            "param": param, "code": code}}),
    }
}

fn unknown_parameter(param: &str) -> Rejection {
    schema(
        format!("Unknown parameter: '{param}'."),
        param,
        Some("unknown_parameter"),
    )
}

fn missing(param: &str) -> Rejection {
    schema(
        format!("Missing required parameter: '{param}'."),
        param,
        Some("missing_required_parameter"),
    )
}

fn invalid_value(param: &str, value: &str, supported: &[&str]) -> Rejection {
    let list: Vec<String> = supported.iter().map(|s| format!("'{s}'")).collect();
    schema(
        format!(
            "Invalid value: '{value}'. Supported values are: {}.",
            list.join(", ")
        ),
        param,
        Some("invalid_value"),
    )
}

fn invalid_type(param: &str, expected: &str, got: &Value) -> Rejection {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    schema(
        format!("Invalid type for '{param}': expected {expected}, but got {got} instead."),
        param,
        Some("invalid_type"),
    )
}

/// Top-level parameters the backend takes: what the Codex CLI sends (spec §6.3, §10), plus
/// `truncation`, which the spec reports forwarded without complaint. Anything else is
/// "Unsupported parameter".
const PARAMETERS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "store",
    "stream",
    "include",
    "prompt_cache_key",
    "text",
    "service_tier",
    "client_metadata",
    "truncation",
];

/// `include` values the Responses API knows.
const INCLUDES: &[&str] = &[
    "reasoning.encrypted_content",
    "web_search_call.action.sources",
    "web_search_call.results",
    "message.output_text.logprobs",
    "message.input_image.image_url",
    "file_search_call.results",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
];

/// Tool types and, for function tools, the fields they may carry.
const TOOLS: &[&str] = &[
    "function",
    "custom",
    "web_search",
    "web_search_preview",
    "local_shell",
    "image_generation",
    "file_search",
    "code_interpreter",
    "mcp",
    "computer_use_preview",
    "tool_search",
    "namespace",
];
const FUNCTION_TOOL_FIELDS: &[&str] = &["type", "name", "description", "parameters", "strict"];

/// Checks a `POST /backend-api/codex/responses` body against the backend's rules. `catalog`
/// is the `{"models": […]}` document the fake serves: the model must be one of its slugs, and
/// a reasoning effort one of that model's `supported_reasoning_levels`.
///
/// # Errors
///
/// The first broken rule, as the backend answers it.
pub fn check(body: &Value, catalog: &Value) -> Checked {
    let Value::Object(body) = body else {
        return Err(detail("Request body must be a JSON object"));
    };
    if let Some(key) = body.keys().find(|k| !PARAMETERS.contains(&k.as_str())) {
        return Err(detail(format!("Unsupported parameter: {key}")));
    }
    if body.get("stream") != Some(&Value::Bool(true)) {
        return Err(detail("Stream must be set to true"));
    }
    if body.get("store") != Some(&Value::Bool(false)) {
        return Err(detail("Store must be set to false"));
    }
    let model = check_model(body, catalog)?;
    match body.get("instructions") {
        None | Some(Value::String(_)) => {}
        Some(other) => return Err(invalid_type("instructions", "a string", other)),
    }
    let Some(Value::Array(input)) = body.get("input") else {
        return Err(detail("Input must be a list"));
    };
    for (i, item) in input.iter().enumerate() {
        items::check_item(item, &format!("input[{i}]"))?;
    }
    items::check_pairs(input)?;
    let functions = check_tools(body.get("tools"))?;
    check_tool_choice(body.get("tool_choice"), &functions)?;
    check_reasoning(body.get("reasoning"), model)?;
    check_scalars(body)
}

/// The catalog entry of the body's model.
fn check_model<'a>(body: &Map<String, Value>, catalog: &'a Value) -> Result<&'a Value, Rejection> {
    let name = body.get("model").and_then(Value::as_str).unwrap_or("");
    catalog["models"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["slug"] == name)
        .ok_or_else(|| {
            detail(format!(
                "The '{name}' model is not supported when using Codex with a ChatGPT account."
            ))
        })
}

/// Tools: known types; a function tool has a valid name and an object schema. Returns the
/// function and custom tool names (for `tool_choice`).
fn check_tools(tools: Option<&Value>) -> Result<Vec<String>, Rejection> {
    let tools = match tools {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(other) => return Err(invalid_type("tools", "an array", other)),
    };
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        let kind = tool["type"].as_str().unwrap_or("");
        if !TOOLS.contains(&kind) {
            return Err(invalid_value(&format!("{at}.type"), kind, TOOLS));
        }
        if kind != "function" && kind != "custom" {
            continue;
        }
        let Value::Object(fields) = tool else {
            return Err(invalid_type(&at, "an object", tool));
        };
        let name = fields.get("name").and_then(Value::as_str).unwrap_or("");
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(schema(
                format!(
                    "Invalid '{at}.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$'."
                ),
                &format!("{at}.name"),
                Some("invalid_value"),
            ));
        }
        names.push(name.to_owned());
        if kind == "custom" {
            continue;
        }
        if let Some(key) = fields
            .keys()
            .find(|k| !FUNCTION_TOOL_FIELDS.contains(&k.as_str()))
        {
            return Err(unknown_parameter(&format!("{at}.{key}")));
        }
        check_function_schema(fields.get("parameters"), name, &at)?;
    }
    Ok(names)
}

/// A function's parameters: a JSON schema of `type: "object"`, without top-level combinators.
fn check_function_schema(parameters: Option<&Value>, name: &str, at: &str) -> Checked {
    let Some(parameters) = parameters.filter(|p| !p.is_null()) else {
        return Ok(());
    };
    let got = parameters["type"].as_str().unwrap_or("None");
    let combinator = ["anyOf", "oneOf", "allOf", "enum", "not"]
        .into_iter()
        .find(|k| parameters.get(*k).is_some());
    if got != "object" || combinator.is_some() {
        let why = match combinator {
            Some(key) if got == "object" => {
                format!("schema must not have '{key}' at the top level")
            }
            _ => {
                format!("schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'")
            }
        };
        return Err(schema(
            format!("Invalid schema for function '{name}': {why}."),
            &format!("{at}.parameters"),
            Some("invalid_function_parameters"),
        ));
    }
    Ok(())
}

/// `tool_choice`: a mode, or a function/custom tool that is among the tools, or a hosted tool.
fn check_tool_choice(choice: Option<&Value>, functions: &[String]) -> Checked {
    const MODES: &[&str] = &["none", "auto", "required"];
    match choice {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(mode)) if MODES.contains(&mode.as_str()) => Ok(()),
        Some(Value::String(mode)) => Err(invalid_value("tool_choice", mode, MODES)),
        Some(Value::Object(fields)) => {
            let kind = fields.get("type").and_then(Value::as_str).unwrap_or("");
            match kind {
                "function" | "custom" => {
                    let name = fields.get("name").and_then(Value::as_str).unwrap_or("");
                    if functions.iter().any(|f| f == name) {
                        Ok(())
                    } else {
                        Err(schema(
                            format!("Tool choice '{kind}' not found in 'tools' parameter."),
                            "tool_choice",
                            None,
                        ))
                    }
                }
                "allowed_tools" | "web_search" | "web_search_preview" | "image_generation"
                | "file_search" | "code_interpreter" | "mcp" => Ok(()),
                other => Err(invalid_value(
                    "tool_choice.type",
                    other,
                    &["function", "custom", "allowed_tools"],
                )),
            }
        }
        Some(other) => Err(invalid_type("tool_choice", "a string or an object", other)),
    }
}

/// `reasoning`: known fields (`context` is what the Codex CLI 0.171 sends, e.g. `all_turns`);
/// an effort among the model's supported levels.
fn check_reasoning(reasoning: Option<&Value>, model: &Value) -> Checked {
    let fields = match reasoning {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(fields)) => fields,
        Some(other) => return Err(invalid_type("reasoning", "an object", other)),
    };
    if let Some(key) = fields
        .keys()
        .find(|k| !["effort", "summary", "generate_summary", "context"].contains(&k.as_str()))
    {
        return Err(unknown_parameter(&format!("reasoning.{key}")));
    }
    if let Some(effort) = fields.get("effort").filter(|e| !e.is_null()) {
        let effort = effort.as_str().unwrap_or("");
        let supported: Vec<&str> = model["supported_reasoning_levels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|level| level["effort"].as_str())
            .collect();
        if !supported.contains(&effort) {
            let list: Vec<String> = supported.iter().map(|s| format!("'{s}'")).collect();
            return Err(schema(
                format!(
                    "Unsupported value: '{effort}' is not supported with the '{}' model. Supported values are: {}.",
                    model["slug"].as_str().unwrap_or(""),
                    list.join(", ")
                ),
                "reasoning.effort",
                Some("unsupported_value"),
            ));
        }
    }
    match fields.get("summary").and_then(Value::as_str) {
        None | Some("auto" | "concise" | "detailed") => Ok(()),
        Some(other) => Err(invalid_value(
            "reasoning.summary",
            other,
            &["auto", "concise", "detailed"],
        )),
    }
}

/// Whether a JSON value has the type a parameter needs.
type TypeCheck = fn(&Value) -> bool;

/// `include`, `parallel_tool_calls`, `prompt_cache_key`, `text`, `service_tier`,
/// `client_metadata`, `truncation`: the types and values the API takes.
fn check_scalars(body: &Map<String, Value>) -> Checked {
    if let Some(include) = body.get("include") {
        let Value::Array(list) = include else {
            return Err(invalid_type("include", "an array", include));
        };
        for (i, entry) in list.iter().enumerate() {
            let value = entry.as_str().unwrap_or("");
            if !INCLUDES.contains(&value) {
                return Err(invalid_value(&format!("include[{i}]"), value, INCLUDES));
            }
        }
    }
    let typed: [(&str, TypeCheck, &str); 6] = [
        ("parallel_tool_calls", Value::is_boolean, "a boolean"),
        ("prompt_cache_key", Value::is_string, "a string"),
        ("text", Value::is_object, "an object"),
        ("service_tier", Value::is_string, "a string"),
        ("client_metadata", Value::is_object, "an object"),
        ("truncation", Value::is_string, "a string"),
    ];
    for (key, is_right, expected) in typed {
        if let Some(value) = body.get(key).filter(|v| !v.is_null())
            && !is_right(value)
        {
            return Err(invalid_type(key, expected, value));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
