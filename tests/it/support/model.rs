//! The fake Codex backend playing a model for a real client: it answers plainly (the fake's
//! default answer), except that
//! when a request offers the tool the test names and carries no result for it yet, it asks for
//! that tool call (arguments streamed in two deltas); once the client sends the call's result
//! back, it answers with a final text that says whether the result held the test's marker. So
//! the final text a client prints proves the whole loop ran: call, execution, result, answer.

use std::sync::Arc;

use serde_json::{Value, json};

use super::fake_upstream::{Recorded, Reply, Responder, Step, answer_events};

/// The call id the model gives its tool call.
pub const CALL_ID: &str = "call_bitrouter_1";

/// The tool call a test wants the client to run.
#[derive(Debug, Clone)]
pub struct ToolLoop {
    /// The tool's name, exactly as the client declares it.
    pub tool: String,
    /// How to call it.
    pub call: Call,
    /// Text the tool's result must contain (e.g. a file's content).
    pub marker: String,
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
        }
    }

    /// A loop calling the custom tool `tool` with `input`, expecting `marker` in the result.
    pub fn custom(tool: &str, input: &str, marker: &str) -> Self {
        ToolLoop {
            tool: tool.to_owned(),
            call: Call::Custom(input.to_owned()),
            marker: marker.to_owned(),
        }
    }

    /// The final answer when the result held the marker: the marker in capitals, so a client
    /// that merely echoes its tool output does not print it.
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
        let results = tool_results(&body);
        if !results.is_empty() {
            let text = if results.iter().any(|r| r.contains(&self.marker)) {
                self.final_text()
            } else {
                format!("The tool result did not contain {}.", self.marker)
            };
            return Some(Reply::sse(answer_events(&text)));
        }
        if !offers(&body, &self.tool) {
            return forced_call(&body).or_else(|| structured_answer(&body));
        }
        let steps = match &self.call {
            Call::Function(arguments) => tool_call_events(&self.tool, &arguments.to_string()),
            Call::Custom(input) => custom_call_events(&self.tool, input),
        };
        Some(Reply::sse(steps))
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
    let name = tool["name"].as_str()?;
    Some(Reply::sse(tool_call_events(
        name,
        &instance(&tool["parameters"]).to_string(),
    )))
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

/// The results the client sent back for the model's call ([`CALL_ID`]), as text: a string
/// output, or the texts of a list of content parts.
pub fn tool_results(body: &Value) -> Vec<String> {
    body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| {
            matches!(
                item["type"].as_str(),
                Some("function_call_output" | "custom_tool_call_output")
            ) && item["call_id"] == CALL_ID
        })
        .map(|item| match &item["output"] {
            Value::String(text) => text.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
            other => other.to_string(),
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

/// The reasoning summary the model streams before its tool call.
pub const REASONING: &str = "I should use the tool.";

/// A reasoning item at output index 0: one summary part in two deltas, and encrypted content.
fn reasoning_events() -> Vec<Step> {
    let event = |kind: &str, extra: Value| {
        let mut event = json!({"type": kind, "item_id": "rs_1", "output_index": 0});
        if let (Value::Object(event), Value::Object(extra)) = (&mut event, extra) {
            event.extend(extra);
        }
        Step::Event(event)
    };
    let (a, b) = halves(REASONING);
    let part = |text: &str| json!({"type": "summary_text", "text": text});
    vec![
        Step::Event(
            json!({"type": "response.output_item.added", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning", "summary": []}}),
        ),
        event(
            "response.reasoning_summary_part.added",
            json!({"summary_index": 0, "part": part("")}),
        ),
        event(
            "response.reasoning_summary_text.delta",
            json!({"summary_index": 0, "delta": a}),
        ),
        event(
            "response.reasoning_summary_text.delta",
            json!({"summary_index": 0, "delta": b}),
        ),
        event(
            "response.reasoning_summary_text.done",
            json!({"summary_index": 0, "text": REASONING}),
        ),
        event(
            "response.reasoning_summary_part.done",
            json!({"summary_index": 0, "part": part(REASONING)}),
        ),
        Step::Event(
            json!({"type": "response.output_item.done", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning",
                "summary": [part(REASONING)], "encrypted_content": "gAAAA-bitrouter-test-reasoning"}}),
        ),
    ]
}

/// A tool call turn: `response.created`, reasoning, the call's events (at output index 1),
/// `response.completed`.
fn framed(events: Vec<Step>) -> Vec<Step> {
    let response = |status: &str| {
        json!({"id": "resp_tool", "object": "response", "created_at": 1, "status": status,
            "model": "gpt-test", "output": []})
    };
    let mut completed = response("completed");
    completed["usage"] = json!({"input_tokens": 20, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 25});
    let mut steps = vec![Step::Event(
        json!({"type": "response.created", "response": response("in_progress")}),
    )];
    steps.extend(reasoning_events());
    steps.extend(events);
    steps.push(Step::Event(
        json!({"type": "response.completed", "response": completed}),
    ));
    steps
}

/// `text` cut in two halves (at a character boundary), for two deltas.
fn halves(text: &str) -> (&str, &str) {
    let split = text
        .char_indices()
        .map(|(i, _)| i)
        .nth(text.chars().count() / 2)
        .unwrap_or(0);
    text.split_at(split)
}

/// The events of a Responses answer that calls the custom tool `name` with `input`, streamed
/// in two deltas.
pub fn custom_call_events(name: &str, input: &str) -> Vec<Step> {
    let item = |status: &str, input: &str| {
        json!({"id": "ctc_1", "type": "custom_tool_call", "status": status, "call_id": CALL_ID,
            "name": name, "input": input})
    };
    let (a, b) = halves(input);
    framed(vec![
        Step::Event(
            json!({"type": "response.output_item.added", "output_index": 1, "item": item("in_progress", "")}),
        ),
        Step::Event(
            json!({"type": "response.custom_tool_call_input.delta", "item_id": "ctc_1", "output_index": 1, "delta": a}),
        ),
        Step::Event(
            json!({"type": "response.custom_tool_call_input.delta", "item_id": "ctc_1", "output_index": 1, "delta": b}),
        ),
        Step::Event(
            json!({"type": "response.custom_tool_call_input.done", "item_id": "ctc_1", "output_index": 1, "input": input}),
        ),
        Step::Event(
            json!({"type": "response.output_item.done", "output_index": 1, "item": item("completed", input)}),
        ),
    ])
}

/// The events of a Responses answer that calls the function `name` with `arguments`,
/// streamed in two deltas.
pub fn tool_call_events(name: &str, arguments: &str) -> Vec<Step> {
    let item = |status: &str, args: &str| {
        json!({"id": "fc_1", "type": "function_call", "status": status, "call_id": CALL_ID,
            "name": name, "arguments": args})
    };
    let (a, b) = halves(arguments);
    framed(vec![
        Step::Event(
            json!({"type": "response.output_item.added", "output_index": 1, "item": item("in_progress", "")}),
        ),
        Step::Event(
            json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": a}),
        ),
        Step::Event(
            json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": b}),
        ),
        Step::Event(
            json!({"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 1, "arguments": arguments}),
        ),
        Step::Event(
            json!({"type": "response.output_item.done", "output_index": 1, "item": item("completed", arguments)}),
        ),
    ])
}
