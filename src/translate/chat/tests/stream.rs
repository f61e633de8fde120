//! Backend streams as chat chunks.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

#[test]
fn stream_plain_text() {
    let payloads = stream_with(fixtures::PLAIN_TEXT, true, &[]);
    assert_eq!(
        serde_json::from_str::<Value>(&payloads[0]).unwrap(),
        json!({
            "id": "chatcmpl-plain1",
            "object": "chat.completion.chunk",
            "created": 1_763_900_000,
            "model": "gpt-5.5",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]
        })
    );
    assert_eq!(
        summarize(&payloads),
        vec![
            role(),
            content("Hello"),
            content(", wo"),
            content("rld! é😀"),
            finish("stop"),
            json!({"usage": usage(12, 4, 5, 0)}),
            json!(DONE),
        ]
    );
}

#[test]
fn stream_reasoning_then_text() {
    let reasoning = |t: &str| json!({"delta": {"reasoning_content": t}, "finish": null});
    assert_eq!(
        summarize(&stream_with(fixtures::REASONING_TEXT, false, &[])),
        vec![
            role(),
            reasoning("Thinking about"),
            reasoning(" it."),
            reasoning("\n\nSecond part."),
            content("The answer"),
            content(" is 4."),
            finish("stop"),
            json!(DONE),
        ]
    );
}

#[test]
fn stream_parallel_tool_calls_keep_their_index() {
    let args = |index: u64, a: &str| json!({"delta": {"tool_calls": [{"index": index, "function": {"arguments": a}}]}, "finish": null});
    let header = |index: u64, id: &str, name: &str| json!({"delta": {"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}, "finish": null});
    assert_eq!(
        summarize(&stream_with(fixtures::PARALLEL_TOOLS, true, &[])),
        vec![
            role(),
            header(0, "call_a", "get_weather"),
            header(1, "call_b", LONG_MCP),
            args(0, "{\"city\":"),
            args(1, "{\"zone\":"),
            args(0, "\"Paris\"}"),
            args(1, "\"UTC\"}"),
            finish("tool_calls"),
            json!({"usage": usage(50, 0, 30, 10)}),
            json!(DONE),
        ]
    );
}

#[test]
fn stream_refusal() {
    let refusal = |t: &str| json!({"delta": {"refusal": t}, "finish": null});
    assert_eq!(
        summarize(&stream_with(fixtures::REFUSAL, false, &[])),
        vec![
            role(),
            refusal("I can't"),
            refusal(" help with that."),
            finish("stop"),
            json!(DONE)
        ]
    );
}

#[test]
fn stream_incomplete_is_length() {
    assert_eq!(
        summarize(&stream_with(fixtures::INCOMPLETE_LENGTH, false, &[])),
        vec![
            role(),
            content("This is a long ans"),
            finish("length"),
            json!(DONE)
        ]
    );
}

#[test]
fn stream_failure_ends_with_an_error_payload() {
    assert_eq!(
        summarize(&stream_with(fixtures::FAILED_USAGE_LIMIT, true, &[])),
        vec![
            role(),
            content("Partial"),
            json!({"error": {
                "message": "You've hit your usage limit. Upgrade to Pro or try again later.",
                "type": "usage_limit_reached",
                "code": "usage_limit_reached",
                "param": null,
                "resets_at": 1_763_903_600,
                "resets_in_seconds": 3600
            }}),
        ]
    );
}

#[test]
fn stream_cut_short_ends_with_an_error_payload() {
    assert_eq!(
        summarize(&stream_with(fixtures::CUT_STREAM, false, &[])),
        vec![
            role(),
            content("Half an ans"),
            json!({"error": {
                "message": "upstream stream ended before response.completed",
                "type": "server_error",
                "code": "stream_incomplete",
                "param": null
            }}),
        ]
    );
}

#[test]
fn stream_applies_stop_sequences_across_deltas() {
    assert_eq!(
        summarize(&stream_with(fixtures::PLAIN_TEXT, false, &["world"])),
        vec![
            role(),
            content("Hello"),
            content(", "),
            finish("stop"),
            json!(DONE)
        ]
    );
}

#[test]
fn stream_releases_held_text_when_no_stop_matches() {
    assert_eq!(
        summarize(&stream_with(fixtures::PLAIN_TEXT, false, &["wonder"])),
        vec![
            role(),
            content("Hello"),
            content(", "),
            content("world! é😀"),
            finish("stop"),
            json!(DONE),
        ]
    );
}

#[test]
fn stream_tool_call_known_only_at_done_is_sent_whole() {
    let mut stream = ChatStream::new("m", false, ToolNameMap::default(), Vec::new());
    let done = SseEvent::data(
        r#"{"type":"response.output_item.done","output_index":0,"item":{"id":"fc_9","type":"function_call","call_id":"call_9","name":"f","arguments":"{\"x\":1}"}}"#,
    );
    let chunks: Vec<Value> = stream
        .on_event(&done)
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]})
    );
    assert!(chunks[0]["id"].as_str().unwrap().starts_with("chatcmpl-"));
}

#[test]
fn stream_matches_argument_deltas_by_output_index_without_item_id() {
    let mut stream = ChatStream::new("m", false, ToolNameMap::default(), Vec::new());
    let added = SseEvent::data(
        r#"{"type":"response.output_item.added","output_index":3,"item":{"type":"function_call","call_id":"c","name":"f","arguments":""}}"#,
    );
    let delta = SseEvent::data(
        r#"{"type":"response.function_call_arguments.delta","output_index":3,"delta":"{}"}"#,
    );
    assert_eq!(stream.on_event(&added).len(), 1);
    let chunk: Value = serde_json::from_str(&stream.on_event(&delta)[0]).unwrap();
    assert_eq!(
        chunk["choices"][0]["delta"],
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]})
    );
}

#[test]
fn stream_says_nothing_after_it_ended() {
    let mut stream = ChatStream::new("m", false, ToolNameMap::default(), Vec::new());
    for event in events(fixtures::PLAIN_TEXT) {
        stream.on_event(&event);
    }
    assert!(stream.finish().is_empty());
    assert!(stream.on_event(&events(fixtures::PLAIN_TEXT)[2]).is_empty());
}
