//! Tests for the Anthropic Messages translator: requests, streams, whole messages, errors and
//! token estimates, driven by the fixtures in `translate/fixtures`.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::translate::UpstreamError;
use crate::translate::fixtures::{self, events};
use crate::translate::names::ToolNameMap;
use crate::translate::responses::aggregate;
use crate::translate::sse::SseEvent;

const LONG_MCP: &str = "mcp__an_extremely_long_server_name_that_goes_on_and_on__lookup_time";

fn tool_names() -> ToolNameMap {
    ToolNameMap::build(["get_weather", LONG_MCP])
}

/// Runs a fixture through a [`MessagesStream`]; returns (event name, data) pairs, then
/// `finish`'s.
fn stream_with(fixture: &str, thinking: bool, stop: &[&str]) -> Vec<(String, Value)> {
    let stop = stop.iter().map(|s| (*s).to_owned()).collect();
    let mut stream = MessagesStream::new("gpt-5.5", tool_names(), stop, thinking);
    let mut out: Vec<SseEvent> = events(fixture)
        .iter()
        .flat_map(|e| stream.on_event(e))
        .collect();
    out.extend(stream.finish());
    out.into_iter()
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).unwrap();
            let name = e.event.unwrap();
            assert_eq!(data["type"], json!(name), "event name matches data type");
            (name, data)
        })
        .collect()
}

fn ev(name: &str, data: Value) -> (String, Value) {
    (name.to_owned(), data)
}

fn message_start(id: &str) -> (String, Value) {
    ev(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": format!("msg_{id}"), "type": "message", "role": "assistant", "model": "gpt-5.5",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}
        }}),
    )
}

fn block_start(index: u64, block: Value) -> (String, Value) {
    ev(
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": block}),
    )
}

fn text_start(index: u64) -> (String, Value) {
    block_start(index, json!({"type": "text", "text": ""}))
}

fn delta(index: u64, kind: &str, key: &str, value: &str) -> (String, Value) {
    ev(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index, "delta": {"type": kind, key: value}}),
    )
}

fn text(index: u64, t: &str) -> (String, Value) {
    delta(index, "text_delta", "text", t)
}

fn block_stop(index: u64) -> (String, Value) {
    ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    )
}

fn usage(input: u64, output: u64, cached: u64) -> Value {
    json!({"input_tokens": input, "output_tokens": output, "cache_read_input_tokens": cached})
}

fn message_end(stop_reason: &str, stop_sequence: Value, usage: Value) -> [(String, Value); 2] {
    [
        ev(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence}, "usage": usage}),
        ),
        ev("message_stop", json!({"type": "message_stop"})),
    ]
}

// ---- streams ----

#[test]
fn stream_plain_text() {
    let mut expected = vec![
        message_start("plain1"),
        text_start(0),
        text(0, "Hello"),
        text(0, ", wo"),
        text(0, "rld! é😀"),
        block_stop(0),
    ];
    expected.extend(message_end("end_turn", Value::Null, usage(8, 5, 4)));
    assert_eq!(stream_with(fixtures::PLAIN_TEXT, false, &[]), expected);
}

#[test]
fn stream_reasoning_as_signed_thinking_when_enabled() {
    let thinking = |t: &str| delta(0, "thinking_delta", "thinking", t);
    let mut expected = vec![
        message_start("reason1"),
        block_start(
            0,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
        ),
        thinking("Thinking about"),
        thinking(" it."),
        thinking("\n\nSecond part."),
        delta(
            0,
            "signature_delta",
            "signature",
            "bitrouter.reasoning.v1:gAAAAencrypted",
        ),
        block_stop(0),
        text_start(1),
        text(1, "The answer"),
        text(1, " is 4."),
        block_stop(1),
    ];
    expected.extend(message_end("end_turn", Value::Null, usage(20, 80, 0)));
    assert_eq!(stream_with(fixtures::REASONING_TEXT, true, &[]), expected);
}

#[test]
fn stream_reasoning_omitted_when_thinking_is_off() {
    let mut expected = vec![
        message_start("reason1"),
        text_start(0),
        text(0, "The answer"),
        text(0, " is 4."),
        block_stop(0),
    ];
    expected.extend(message_end("end_turn", Value::Null, usage(20, 80, 0)));
    assert_eq!(stream_with(fixtures::REASONING_TEXT, false, &[]), expected);
}

#[test]
fn stream_parallel_tool_calls_one_block_after_the_other() {
    let json_delta = |i: u64, p: &str| delta(i, "input_json_delta", "partial_json", p);
    let mut expected = vec![
        message_start("tools1"),
        block_start(
            0,
            json!({"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {}}),
        ),
        json_delta(0, "{\"city\":"),
        json_delta(0, "\"Paris\"}"),
        block_stop(0),
        block_start(
            1,
            json!({"type": "tool_use", "id": "call_b", "name": LONG_MCP, "input": {}}),
        ),
        json_delta(1, "{\"zone\":"),
        json_delta(1, "\"UTC\"}"),
        block_stop(1),
    ];
    expected.extend(message_end("tool_use", Value::Null, usage(50, 30, 0)));
    assert_eq!(stream_with(fixtures::PARALLEL_TOOLS, false, &[]), expected);
}

#[test]
fn stream_refusal() {
    let mut expected = vec![
        message_start("refuse1"),
        text_start(0),
        text(0, "I can't"),
        text(0, " help with that."),
        block_stop(0),
    ];
    expected.extend(message_end("refusal", Value::Null, usage(9, 6, 0)));
    assert_eq!(stream_with(fixtures::REFUSAL, false, &[]), expected);
}

#[test]
fn stream_incomplete_is_max_tokens() {
    let mut expected = vec![
        message_start("long1"),
        text_start(0),
        text(0, "This is a long ans"),
        block_stop(0),
    ];
    expected.extend(message_end("max_tokens", Value::Null, usage(7, 16, 0)));
    assert_eq!(
        stream_with(fixtures::INCOMPLETE_LENGTH, false, &[]),
        expected
    );
}

#[test]
fn stream_failure_ends_with_an_error_event() {
    assert_eq!(
        stream_with(fixtures::FAILED_USAGE_LIMIT, false, &[]),
        vec![
            message_start("fail1"),
            text_start(0),
            text(0, "Partial"),
            ev(
                "error",
                json!({"type": "error", "error": {"type": "rate_limit_error", "message": "You've hit your usage limit. Upgrade to Pro or try again later."}})
            ),
        ]
    );
}

#[test]
fn stream_cut_short_ends_with_an_error_event() {
    assert_eq!(
        stream_with(fixtures::CUT_STREAM, false, &[]),
        vec![
            message_start("cut1"),
            text_start(0),
            text(0, "Half an ans"),
            ev(
                "error",
                json!({"type": "error", "error": {"type": "api_error", "message": "upstream stream ended before response.completed"}})
            ),
        ]
    );
}

#[test]
fn stream_applies_stop_sequences() {
    let mut expected = vec![
        message_start("plain1"),
        text_start(0),
        text(0, "Hello"),
        text(0, ", "),
        block_stop(0),
    ];
    expected.extend(message_end("stop_sequence", json!("world"), usage(8, 5, 4)));
    assert_eq!(
        stream_with(fixtures::PLAIN_TEXT, false, &["world"]),
        expected
    );
}

#[test]
fn stream_reports_an_input_estimate_in_message_start() {
    let mut stream =
        MessagesStream::new("m", ToolNameMap::default(), Vec::new(), false).with_input_estimate(42);
    let out = stream.on_event(&events(fixtures::PLAIN_TEXT)[0]);
    let data: Value = serde_json::from_str(&out[0].data).unwrap();
    assert_eq!(
        data["message"]["usage"],
        json!({"input_tokens": 42, "output_tokens": 0})
    );
}

#[test]
fn stream_tool_call_known_only_at_done_gets_a_whole_block() {
    let mut stream = MessagesStream::new("m", ToolNameMap::default(), Vec::new(), false);
    let done = SseEvent::data(
        r#"{"type":"response.output_item.done","output_index":0,"item":{"id":"fc_9","type":"function_call","call_id":"call_9","name":"f","arguments":"{\"x\":1}"}}"#,
    );
    let names: Vec<String> = stream.on_event(&done).into_iter().map(|e| e.data).collect();
    let values: Vec<Value> = names
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(values[0]["type"], json!("message_start"));
    assert_eq!(
        values[1..].to_vec(),
        vec![
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "call_9", "name": "f", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"x\":1}"}}),
            json!({"type": "content_block_stop", "index": 0}),
        ]
    );
}

#[test]
fn stream_refusal_known_only_at_done_sets_the_stop_reason() {
    let mut stream = MessagesStream::new("m", ToolNameMap::default(), Vec::new(), false);
    let done = SseEvent::data(
        r#"{"type":"response.output_item.done","output_index":0,"item":{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"refusal","refusal":"No."}]}}"#,
    );
    let completed = SseEvent::data(
        r#"{"type":"response.completed","response":{"id":"resp_1","status":"completed"}}"#,
    );
    let mut out = stream.on_event(&done);
    out.extend(stream.on_event(&completed));
    let data: Vec<Value> = out
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(
        data[2]["delta"],
        json!({"type": "text_delta", "text": "No."})
    );
    assert_eq!(data[4]["delta"]["stop_reason"], json!("refusal"));
}

// ---- whole messages ----

fn message(fixture: &str, stop: &[&str], thinking: bool) -> Value {
    let response = aggregate(&events(fixture)).unwrap();
    let stop: Vec<String> = stop.iter().map(|s| (*s).to_owned()).collect();
    message_from_response(&response, "gpt-5.5", &tool_names(), &stop, thinking)
}

fn expected(
    id: &str,
    content: Value,
    stop_reason: &str,
    stop_sequence: Value,
    usage: Value,
) -> Value {
    json!({
        "id": format!("msg_{id}"),
        "type": "message",
        "role": "assistant",
        "model": "gpt-5.5",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage
    })
}

#[test]
fn message_plain_text() {
    assert_eq!(
        message(fixtures::PLAIN_TEXT, &[], false),
        expected(
            "plain1",
            json!([{"type": "text", "text": "Hello, world! é😀"}]),
            "end_turn",
            Value::Null,
            usage(8, 5, 4)
        )
    );
}

#[test]
fn message_reasoning_then_text() {
    assert_eq!(
        message(fixtures::REASONING_TEXT, &[], true),
        expected(
            "reason1",
            json!([
                {"type": "thinking", "thinking": "Thinking about it.\n\nSecond part.", "signature": "bitrouter.reasoning.v1:gAAAAencrypted"},
                {"type": "text", "text": "The answer is 4."}
            ]),
            "end_turn",
            Value::Null,
            usage(20, 80, 0)
        )
    );
    assert_eq!(
        message(fixtures::REASONING_TEXT, &[], false)["content"],
        json!([{"type": "text", "text": "The answer is 4."}])
    );
}

#[test]
fn message_parallel_tool_calls() {
    assert_eq!(
        message(fixtures::PARALLEL_TOOLS, &[], false),
        expected(
            "tools1",
            json!([
                {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_b", "name": LONG_MCP, "input": {"zone": "UTC"}}
            ]),
            "tool_use",
            Value::Null,
            usage(50, 30, 0)
        )
    );
}

#[test]
fn message_refusal() {
    assert_eq!(
        message(fixtures::REFUSAL, &[], false),
        expected(
            "refuse1",
            json!([{"type": "text", "text": "I can't help with that."}]),
            "refusal",
            Value::Null,
            usage(9, 6, 0)
        )
    );
}

#[test]
fn message_incomplete_is_max_tokens() {
    assert_eq!(
        message(fixtures::INCOMPLETE_LENGTH, &[], false),
        expected(
            "long1",
            json!([{"type": "text", "text": "This is a long ans"}]),
            "max_tokens",
            Value::Null,
            usage(7, 16, 0)
        )
    );
}

#[test]
fn message_cut_at_stop_sequence() {
    assert_eq!(
        message(fixtures::PLAIN_TEXT, &["world"], false),
        expected(
            "plain1",
            json!([{"type": "text", "text": "Hello, "}]),
            "stop_sequence",
            json!("world"),
            usage(8, 5, 4)
        )
    );
}

#[test]
fn message_errors_render_as_anthropic_errors() {
    let failed = aggregate(&events(fixtures::FAILED_USAGE_LIMIT)).unwrap_err();
    assert_eq!(
        messages_error_body(&failed),
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "You've hit your usage limit. Upgrade to Pro or try again later."}})
    );
    let cut = aggregate(&events(fixtures::CUT_STREAM)).unwrap_err();
    assert_eq!(
        messages_error_body(&cut),
        json!({"type": "error", "error": {"type": "api_error", "message": "upstream stream ended before response.completed"}})
    );
    let kind = |status: u16| {
        let mut err = UpstreamError::stream_incomplete();
        err.status = status;
        messages_error_body(&err)["error"]["type"].clone()
    };
    assert_eq!(kind(400), json!("invalid_request_error"));
    assert_eq!(kind(401), json!("authentication_error"));
    assert_eq!(kind(404), json!("not_found_error"));
    assert_eq!(kind(503), json!("overloaded_error"));
    assert_eq!(kind(504), json!("api_error"));
}

// ---- token estimate ----

#[test]
fn the_input_estimate_counts_text_bytes_messages_images_and_tools() {
    let tool = json!({"name": "f", "input_schema": {"type": "object"}});
    let tool_bytes = u64::try_from(tool.to_string().len()).unwrap();
    let body = json!({
        "model": "m",
        "system": "12345678",
        "messages": [
            {"role": "user", "content": "abcd"},
            {"role": "user", "content": [
                {"type": "text", "text": "abcd"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "xy"}]}
            ]}
        ],
        "tools": [tool]
    });
    let text_bytes = 8 + 4 + 4 + 2;
    let expected = (text_bytes + tool_bytes).div_ceil(4) + 2 * 4 + 1_600;
    assert_eq!(input_estimate(&body), expected);
    assert_eq!(input_estimate(&json!({})), 0);
}

// ---- web search and signed reasoning without summaries ----

/// A reasoning item with no summary (thinking display omitted), a web search, then text.
fn search_events() -> Vec<SseEvent> {
    let ev = |v: Value| SseEvent::named(v["type"].as_str().unwrap(), v.to_string());
    vec![
        ev(json!({"type": "response.created", "response": {"id": "resp_ws"}})),
        ev(
            json!({"type": "response.output_item.added", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning", "summary": []}}),
        ),
        ev(
            json!({"type": "response.output_item.done", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAAAsecret"}}),
        ),
        ev(
            json!({"type": "response.output_item.added", "output_index": 1, "item": {"id": "ws_1", "type": "web_search_call", "status": "in_progress"}}),
        ),
        ev(
            json!({"type": "response.output_item.done", "output_index": 1, "item": {"id": "ws_1", "type": "web_search_call", "status": "completed",
            "action": {"type": "search", "query": "rust 2026", "sources": [{"type": "url", "url": "https://rust-lang.org"}]}}}),
        ),
        ev(
            json!({"type": "response.output_item.added", "output_index": 2, "item": {"id": "m1", "type": "message", "role": "assistant", "content": []}}),
        ),
        ev(
            json!({"type": "response.output_text.delta", "item_id": "m1", "output_index": 2, "delta": "Rust is fine."}),
        ),
        ev(
            json!({"type": "response.output_item.done", "output_index": 2, "item": {"id": "m1", "type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": "Rust is fine.", "annotations": []}]}}),
        ),
        ev(
            json!({"type": "response.completed", "response": {"id": "resp_ws", "status": "completed", "output": [],
            "usage": {"input_tokens": 9, "output_tokens": 3}}}),
        ),
    ]
}

#[test]
fn stream_web_search_and_signature_only_thinking() {
    let mut stream = MessagesStream::new("gpt-5.5", tool_names(), Vec::new(), true);
    let mut out: Vec<SseEvent> = search_events()
        .iter()
        .flat_map(|e| stream.on_event(e))
        .collect();
    out.extend(stream.finish());
    let events: Vec<(String, Value)> = out
        .into_iter()
        .map(|e| {
            (
                e.event.clone().unwrap(),
                serde_json::from_str(&e.data).unwrap(),
            )
        })
        .collect();
    let result = json!({"type": "web_search_tool_result", "tool_use_id": "srvtoolu_ws_1", "content": [
        {"type": "web_search_result", "url": "https://rust-lang.org", "title": "https://rust-lang.org", "encrypted_content": "", "page_age": null}]});
    let mut expected = vec![
        message_start("ws"),
        block_start(
            0,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
        ),
        delta(
            0,
            "signature_delta",
            "signature",
            "bitrouter.reasoning.v1:gAAAAsecret",
        ),
        block_stop(0),
        block_start(
            1,
            json!({"type": "server_tool_use", "id": "srvtoolu_ws_1", "name": "web_search", "input": {}}),
        ),
        delta(
            1,
            "input_json_delta",
            "partial_json",
            r#"{"query":"rust 2026"}"#,
        ),
        block_stop(1),
        block_start(2, result),
        block_stop(2),
        text_start(3),
        text(3, "Rust is fine."),
        block_stop(3),
    ];
    expected.extend(message_end("end_turn", Value::Null, usage(9, 3, 0)));
    assert_eq!(events, expected);
}

#[test]
fn message_web_search_and_signature_only_thinking() {
    let response = aggregate(&search_events()).unwrap();
    let message = message_from_response(&response, "gpt-5.5", &tool_names(), &[], true);
    assert_eq!(
        message["content"],
        json!([
            {"type": "thinking", "thinking": "", "signature": "bitrouter.reasoning.v1:gAAAAsecret"},
            {"type": "server_tool_use", "id": "srvtoolu_ws_1", "name": "web_search", "input": {"query": "rust 2026"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_ws_1", "content": [
                {"type": "web_search_result", "url": "https://rust-lang.org", "title": "https://rust-lang.org", "encrypted_content": "", "page_age": null}]},
            {"type": "text", "text": "Rust is fine."}
        ])
    );
    assert_eq!(message["stop_reason"], "end_turn");
}
