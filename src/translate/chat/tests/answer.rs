//! Aggregated responses as whole completions.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

fn completion(fixture: &str, stop: &[&str]) -> Value {
    let response = aggregate(&events(fixture)).unwrap();
    let stop: Vec<String> = stop.iter().map(|s| (*s).to_owned()).collect();
    chat_completion_from_response(&response, "gpt-5.5", &tool_names(), &stop)
}

fn expected(id: &str, message: Value, finish_reason: &str, usage: Value) -> Value {
    json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "created": 1_763_900_000,
        "model": "gpt-5.5",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": usage
    })
}

#[test]
fn completion_plain_text() {
    assert_eq!(
        completion(fixtures::PLAIN_TEXT, &[]),
        expected(
            "plain1",
            json!({"role": "assistant", "content": "Hello, world! é😀", "refusal": null}),
            "stop",
            usage(12, 4, 5, 0)
        )
    );
}

#[test]
fn completion_reasoning_then_text() {
    assert_eq!(
        completion(fixtures::REASONING_TEXT, &[]),
        expected(
            "reason1",
            json!({"role": "assistant", "content": "The answer is 4.", "refusal": null, "reasoning_content": "Thinking about it.\n\nSecond part."}),
            "stop",
            usage(20, 0, 80, 64)
        )
    );
}

#[test]
fn completion_parallel_tool_calls() {
    assert_eq!(
        completion(fixtures::PARALLEL_TOOLS, &[]),
        expected(
            "tools1",
            json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": LONG_MCP, "arguments": "{\"zone\":\"UTC\"}"}}
            ]}),
            "tool_calls",
            usage(50, 0, 30, 10)
        )
    );
}

#[test]
fn completion_refusal() {
    assert_eq!(
        completion(fixtures::REFUSAL, &[]),
        expected(
            "refuse1",
            json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
            "stop",
            usage(9, 0, 6, 0)
        )
    );
}

#[test]
fn completion_incomplete_is_length() {
    assert_eq!(
        completion(fixtures::INCOMPLETE_LENGTH, &[]),
        expected(
            "long1",
            json!({"role": "assistant", "content": "This is a long ans", "refusal": null}),
            "length",
            usage(7, 0, 16, 0)
        )
    );
}

#[test]
fn completion_cut_at_stop_sequence() {
    assert_eq!(
        completion(fixtures::PLAIN_TEXT, &["world"]),
        expected(
            "plain1",
            json!({"role": "assistant", "content": "Hello, ", "refusal": null}),
            "stop",
            usage(12, 4, 5, 0)
        )
    );
}

#[test]
fn completion_errors_render_as_openai_errors() {
    let failed = aggregate(&events(fixtures::FAILED_USAGE_LIMIT)).unwrap_err();
    assert_eq!(failed.status, 429);
    assert_eq!(
        chat_error_body(&failed),
        json!({"error": {
            "message": "You've hit your usage limit. Upgrade to Pro or try again later.",
            "type": "usage_limit_reached",
            "code": "usage_limit_reached",
            "param": null,
            "resets_at": 1_763_903_600,
            "resets_in_seconds": 3600
        }})
    );
    let cut = aggregate(&events(fixtures::CUT_STREAM)).unwrap_err();
    assert_eq!(cut.status, 502);
    assert_eq!(
        chat_error_body(&cut),
        json!({"error": {
            "message": "upstream stream ended before response.completed",
            "type": "server_error",
            "code": "stream_incomplete",
            "param": null
        }})
    );
}
