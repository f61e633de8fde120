//! The Responses event streams the fake model answers with: reasoning, then one or more tool
//! calls (function or custom), each input streamed in two deltas, between `response.created`
//! and `response.completed`.

use serde_json::{Value, json};

use crate::support::fake_upstream::Step;

/// The reasoning summary the model streams before its tool calls.
pub const REASONING: &str = "I should use the tool.";

/// One tool call to stream.
pub struct CallEvents<'a> {
    /// `function_call` or `custom_tool_call`.
    pub kind: &'a str,
    pub call_id: String,
    pub name: &'a str,
    /// The arguments (a function's JSON text) or input (a custom tool's text).
    pub input: &'a str,
}

impl CallEvents<'_> {
    /// The item's input member and the delta event's type prefix.
    fn fields(&self) -> (&'static str, &'static str) {
        if self.kind == "custom_tool_call" {
            ("input", "response.custom_tool_call_input")
        } else {
            ("arguments", "response.function_call_arguments")
        }
    }

    /// The events of this call at `output_index`.
    fn events(&self, output_index: usize) -> Vec<Step> {
        let (member, prefix) = self.fields();
        let id = format!("item_{output_index}");
        let item = |status: &str, input: &str| {
            json!({"id": id, "type": self.kind, "status": status, "call_id": self.call_id,
                "name": self.name, member: input})
        };
        let (a, b) = halves(self.input);
        let delta = |text: &str| {
            Step::Event(json!({"type": format!("{prefix}.delta"), "item_id": id,
                "output_index": output_index, "delta": text}))
        };
        vec![
            Step::Event(
                json!({"type": "response.output_item.added", "output_index": output_index, "item": item("in_progress", "")}),
            ),
            delta(a),
            delta(b),
            Step::Event(
                json!({"type": format!("{prefix}.done"), "item_id": id, "output_index": output_index, member: self.input}),
            ),
            Step::Event(
                json!({"type": "response.output_item.done", "output_index": output_index, "item": item("completed", self.input)}),
            ),
        ]
    }
}

/// A turn that reasons, then makes `calls` (at output indices 1, 2, …).
pub fn tool_turn(calls: &[CallEvents<'_>]) -> Vec<Step> {
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
    steps.extend(reasoning());
    for (i, call) in calls.iter().enumerate() {
        steps.extend(call.events(i + 1));
    }
    steps.push(Step::Event(
        json!({"type": "response.completed", "response": completed}),
    ));
    steps
}

/// A reasoning item at output index 0: one summary part in two deltas, and encrypted content.
fn reasoning() -> Vec<Step> {
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

/// `text` cut in two halves (at a character boundary), for two deltas.
fn halves(text: &str) -> (&str, &str) {
    let split = text
        .char_indices()
        .map(|(i, _)| i)
        .nth(text.chars().count() / 2)
        .unwrap_or(0);
    text.split_at(split)
}
