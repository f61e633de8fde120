//! The fake Codex backend playing a model for a real client. It answers plainly (the fake's
//! default answer), except:
//!
//! - when a request offers the tool a test names and carries no result for it yet, it reasons
//!   (a summary and encrypted content, as a reasoning model does) and calls that tool, once or
//!   several times in parallel, each input streamed in two deltas;
//! - once the client sends the results back, it answers with a final text saying whether all of
//!   them came back and held the test's marker, so the final text a client prints proves the
//!   whole loop ran: call, execution, result, answer;
//! - a request that forces a tool gets a call of it, and one asking for JSON-schema output an
//!   instance of the schema (clients' structured output).

mod events;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

pub use events::REASONING;
use events::{CallEvents, tool_turn};

use super::fake_upstream::{Recorded, Reply, Responder, answer_events};

/// The prefix of the call ids the model gives its tool calls (`call_bitrouter_1`, `_2`, …).
pub const CALL_ID_PREFIX: &str = "call_bitrouter_";

/// The tool calls a test wants the client to run.
#[derive(Debug, Clone)]
pub struct ToolLoop {
    /// The tool's name, exactly as the client declares it.
    pub tool: String,
    /// How to call it.
    pub call: Call,
    /// Text each result must contain (e.g. a file's content).
    pub marker: String,
    /// How many calls the model makes at once.
    pub parallel: usize,
}

/// A tool call's input.
#[derive(Debug, Clone)]
pub enum Call {
    /// A function tool's JSON arguments (a `function_call` item).
    Function(Value),
    /// A custom (freeform) tool's text input (a `custom_tool_call` item), e.g. the script of
    /// the Codex CLI's `exec` tool.
    Custom(String),
}

impl ToolLoop {
    /// A loop calling the function tool `tool` with `arguments`, expecting `marker` in the
    /// result.
    pub fn new(tool: &str, arguments: Value, marker: &str) -> Self {
        ToolLoop {
            tool: tool.to_owned(),
            call: Call::Function(arguments),
            marker: marker.to_owned(),
            parallel: 1,
        }
    }

    /// A loop calling the custom tool `tool` with `input`, expecting `marker` in the result.
    pub fn custom(tool: &str, input: &str, marker: &str) -> Self {
        ToolLoop {
            call: Call::Custom(input.to_owned()),
            ..ToolLoop::new(tool, Value::Null, marker)
        }
    }

    /// The same loop with `n` calls made at once.
    pub fn parallel(self, n: usize) -> Self {
        ToolLoop {
            parallel: n,
            ..self
        }
    }

    /// The final answer when every result came back holding the marker: the marker in
    /// capitals, so a client that merely echoes its tool output does not print it.
    pub fn final_text(&self) -> String {
        format!("The tool said {}.", self.marker.to_uppercase())
    }

    /// The responder to install with [`super::fake_upstream::FakeUpstream::respond_with`].
    pub fn responder(self) -> Responder {
        Arc::new(move |req: &Recorded| self.reply(req))
    }

    fn reply(&self, req: &Recorded) -> Option<Reply> {
        if req.method != "POST" || !req.path.ends_with("/responses") {
            return None;
        }
        let body = req.json();
        let results = tool_results_by_call(&body);
        if !results.is_empty() {
            let answered: BTreeSet<&str> = results.iter().map(|(id, _)| id.as_str()).collect();
            let text = if answered.len() != self.parallel {
                format!(
                    "{} of {} tool results came back.",
                    answered.len(),
                    self.parallel
                )
            } else if results.iter().all(|(_, r)| r.contains(&self.marker)) {
                self.final_text()
            } else {
                format!("A tool result did not contain {}.", self.marker)
            };
            return Some(Reply::sse(answer_events(&text)));
        }
        if !offers(&body, &self.tool) {
            return forced_call(&body).or_else(|| structured_answer(&body));
        }
        let (kind, input) = match &self.call {
            Call::Function(arguments) => ("function_call", arguments.to_string()),
            Call::Custom(input) => ("custom_tool_call", input.clone()),
        };
        let calls: Vec<CallEvents<'_>> = (1..=self.parallel)
            .map(|i| CallEvents {
                kind,
                call_id: format!("{CALL_ID_PREFIX}{i}"),
                name: &self.tool,
                input: &input,
            })
            .collect();
        Some(Reply::sse(tool_turn(&calls)))
    }
}

/// When the request forces a function tool (`tool_choice` naming one, or `required` with one
/// tool), a call of it with an instance of its parameters (see [`instance`]), as a model must
/// answer; clients use this for structured output (e.g. a `json` tool).
pub fn forced_call(body: &Value) -> Option<Reply> {
    let tools = body["tools"].as_array()?;
    let choice = &body["tool_choice"];
    let tool = match choice["name"].as_str() {
        Some(name) => tools.iter().find(|t| t["name"] == name)?,
        None if choice == "required" && tools.len() == 1 => &tools[0],
        None => return None,
    };
    let arguments = instance(&tool["parameters"]).to_string();
    Some(Reply::sse(tool_turn(&[CallEvents {
        kind: "function_call",
        call_id: "call_forced_1".to_owned(),
        name: tool["name"].as_str()?,
        input: &arguments,
    }])))
}

/// When the request asks for structured output (`text.format` of type `json_schema`), an
/// answer that is an instance of the schema (see [`instance`]); otherwise `None`.
pub fn structured_answer(body: &Value) -> Option<Reply> {
    let format = &body["text"]["format"];
    if format["type"] != "json_schema" {
        return None;
    }
    Some(Reply::sse(answer_events(
        &instance(&format["schema"]).to_string(),
    )))
}

/// A value matching a JSON schema: objects get every property, strings `"hi"`, numbers 1,
/// booleans `true`, arrays one element, enums their first value.
pub fn instance(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned(),
        other => Some(other.clone()),
    };
    match kind.as_ref().and_then(Value::as_str) {
        Some("object") => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, sub)| (name.clone(), instance(sub)))
                .collect(),
        ),
        Some("array") => json!([instance(&schema["items"])]),
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(true),
        Some("null") => Value::Null,
        _ => json!("hi"),
    }
}

/// The results the client sent back for the model's calls, as text: a string output, or the
/// texts of a list of content parts.
pub fn tool_results(body: &Value) -> Vec<String> {
    tool_results_by_call(body)
        .into_iter()
        .map(|(_, text)| text)
        .collect()
}

/// [`tool_results`] with the call id of each.
fn tool_results_by_call(body: &Value) -> Vec<(String, String)> {
    body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| {
            matches!(
                item["type"].as_str(),
                Some("function_call_output" | "custom_tool_call_output")
            )
        })
        .filter_map(|item| {
            let id = item["call_id"].as_str()?;
            let text = match &item["output"] {
                Value::String(text) => text.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(""),
                other => other.to_string(),
            };
            id.starts_with(CALL_ID_PREFIX)
                .then(|| (id.to_owned(), text))
        })
        .collect()
}

/// Whether the request offers a tool named `name`: in `tools`, or (as the Codex CLI sends
/// them) inside an `additional_tools` input item, namespaces included.
fn offers(body: &Value, name: &str) -> bool {
    let extra = body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "additional_tools")
        .map(|item| &item["tools"]);
    std::iter::once(&body["tools"])
        .chain(extra)
        .any(|tools| declares(tools, name))
}

fn declares(tools: &Value, name: &str) -> bool {
    tools.as_array().is_some_and(|tools| {
        tools
            .iter()
            .any(|t| t["name"] == name || declares(&t["tools"], name))
    })
}
