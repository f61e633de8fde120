//! Tests for request shaping, event parsing and aggregation.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::translate::fixtures::{self, events};

fn usage(input: u64, cached: u64, output: u64, reasoning: u64) -> Value {
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input + output
    })
}

#[test]
fn shape_forces_backend_rules_and_strips_refused_fields() {
    let body = json!({
        "model": "gpt-5.5",
        "input": "hi",
        "stream": false,
        "store": true,
        "max_output_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "previous_response_id": "resp_old",
        "prompt_cache_retention": "24h",
        "safety_identifier": "x",
        "stream_options": {"include_obfuscation": false},
        "metadata": {"a": "b"},
        "user": "u",
        "truncation": "auto",
        "prompt_cache_key": "conv-1"
    });
    let shaped = shape_for_codex(body).unwrap();
    assert_eq!(
        shaped,
        Shaped {
            body: json!({
                "model": "gpt-5.5",
                "instructions": "",
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
                "stream": true,
                "store": false,
                "truncation": "auto",
                "prompt_cache_key": "conv-1"
            }),
            client_stream: false,
            dropped: [
                "max_output_tokens",
                "temperature",
                "top_p",
                "previous_response_id",
                "prompt_cache_retention",
                "safety_identifier",
                "stream_options",
                "metadata",
                "user"
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    );
}

#[test]
fn shape_cleans_input_items() {
    let body = json!({
        "model": "gpt-5.5",
        "instructions": "be brief",
        "stream": true,
        "input": [
            {"id": "msg_1", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]},
            {"type": "item_reference", "id": "rs_1"},
            {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "matched"},
            {"type": "function_call_output", "call_id": "call_gone", "output": "orphan text"},
            {"type": "function_call_output", "call_id": "call_gone2", "output": [{"type": "input_text", "text": "parts"}]}
        ]
    });
    let shaped = shape_for_codex(body).unwrap();
    assert!(shaped.client_stream);
    assert_eq!(
        shaped.body["input"],
        json!([
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "matched"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "orphan text"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "parts"}]}
        ])
    );
    assert_eq!(shaped.body["instructions"], json!("be brief"));
    assert_eq!(
        shaped.dropped,
        [
            "input[0].id",
            "input[1] (item_reference)",
            "input[2].id",
            "input[4] (tool output without its call, sent as a message)",
            "input[5] (tool output without its call, sent as a message)"
        ]
        .map(str::to_owned)
        .to_vec()
    );
}

/// An answer's output passed back as input through an SDK parsing helper carries fields the
/// API refuses; they are removed, the rest of the item kept.
#[test]
fn shape_drops_the_fields_sdk_helpers_add_to_output_items() {
    let body = json!({
        "model": "gpt-5.5",
        "input": [
            {"type": "message", "role": "user", "content": "q"},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "{\"a\":1}", "annotations": [], "parsed": {"a": 1}}]},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}", "parsed_arguments": null},
            {"type": "function_call_output", "call_id": "call_1", "output": "done", "parsed_arguments": "kept: not an SDK field here"}
        ]
    });
    let shaped = shape_for_codex(body).unwrap();
    assert_eq!(
        shaped.body["input"],
        json!([
            {"type": "message", "role": "user", "content": "q"},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "{\"a\":1}", "annotations": []}]},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "done", "parsed_arguments": "kept: not an SDK field here"}
        ])
    );
    assert_eq!(
        shaped.dropped,
        ["input[1].content[0].parsed", "input[2].parsed_arguments"]
            .map(str::to_owned)
            .to_vec()
    );
}

#[test]
fn shape_adds_encrypted_reasoning_when_reasoning_is_set() {
    let with = |extra: Value| {
        let mut body = json!({"model": "m", "input": []});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        shape_for_codex(body).unwrap().body.get("include").cloned()
    };
    assert_eq!(with(json!({})), None);
    assert_eq!(with(json!({"reasoning": null})), None);
    assert_eq!(
        with(json!({"reasoning": {"effort": "low"}})),
        Some(json!(["reasoning.encrypted_content"]))
    );
    assert_eq!(
        with(json!({"reasoning": {}, "include": ["file_search_call.results"]})),
        Some(json!([
            "file_search_call.results",
            "reasoning.encrypted_content"
        ]))
    );
    assert_eq!(
        with(json!({"reasoning": {}, "include": ["reasoning.encrypted_content"]})),
        Some(json!(["reasoning.encrypted_content"]))
    );
}

#[test]
fn shape_refuses_malformed_bodies() {
    let err = |body: Value| shape_for_codex(body).unwrap_err().to_string();
    assert_eq!(err(json!([])), "request body must be a json object");
    assert_eq!(err(json!({"model": "m"})), "missing required field `input`");
    assert_eq!(
        err(json!({"input": 3})),
        "invalid `input`: must be a string or a list of items"
    );
    assert_eq!(
        err(json!({"input": [1]})),
        "invalid `input[0]`: must be an object"
    );
    assert_eq!(
        err(json!({"input": [], "instructions": ["x"]})),
        "invalid `instructions`: must be a string"
    );
    assert_eq!(
        err(json!({"input": [], "reasoning": {}, "include": "x"})),
        "invalid `include`: must be a list"
    );
}

#[test]
fn parse_reads_delta_events() {
    let event = SseEvent::named(
        "response.function_call_arguments.delta",
        r#"{"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":2,"delta":"{}"}"#,
    );
    assert_eq!(
        ResponsesEvent::parse(&event),
        ResponsesEvent::ArgumentsDelta {
            at: ItemRef {
                item_id: Some("fc_1".to_owned()),
                output_index: Some(2)
            },
            delta: "{}".to_owned()
        }
    );
    assert_eq!(
        ResponsesEvent::parse(&SseEvent::data("not json")),
        ResponsesEvent::Other
    );
    assert_eq!(
        ResponsesEvent::parse(&SseEvent::named("keepalive", "{}")),
        ResponsesEvent::Other
    );
}

#[test]
fn parse_classifies_error_events() {
    let flat = SseEvent::named(
        "error",
        r#"{"type":"error","code":"rate_limit_exceeded","message":"Rate limit reached. Please try again in 20s.","param":null}"#,
    );
    assert_eq!(
        ResponsesEvent::parse(&flat),
        ResponsesEvent::Failed(UpstreamError {
            status: 429,
            kind: "rate_limit_exceeded".to_owned(),
            code: Some("rate_limit_exceeded".to_owned()),
            message: "Rate limit reached. Please try again in 20s.".to_owned(),
            param: None,
            resets_at: None,
            resets_in_seconds: None,
        })
    );
    let nested = SseEvent::data(
        r#"{"type":"error","error":{"type":"invalid_request_error","code":"context_length_exceeded","message":"too long","param":"input"}}"#,
    );
    assert_eq!(
        ResponsesEvent::parse(&nested),
        ResponsesEvent::Failed(UpstreamError {
            status: 400,
            kind: "invalid_request_error".to_owned(),
            code: Some("context_length_exceeded".to_owned()),
            message: "too long".to_owned(),
            param: Some("input".to_owned()),
            resets_at: None,
            resets_in_seconds: None,
        })
    );
}

#[test]
fn aggregate_rebuilds_empty_output_from_done_items() {
    let response = aggregate(&events(fixtures::PLAIN_TEXT)).unwrap();
    assert_eq!(
        response,
        json!({
            "id": "resp_plain1",
            "object": "response",
            "created_at": 1_763_900_000,
            "status": "completed",
            "model": "gpt-5.5",
            "output": [{
                "id": "msg_plain1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello, world! é😀", "annotations": []}]
            }],
            "usage": usage(12, 4, 5, 0)
        })
    );
}

#[test]
fn aggregate_rebuilds_null_output_in_output_index_order() {
    let response = aggregate(&events(fixtures::PARALLEL_TOOLS)).unwrap();
    assert_eq!(
        response["output"],
        json!([
            {"id": "fc_a", "type": "function_call", "status": "completed", "call_id": "call_a", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"id": "fc_b", "type": "function_call", "status": "completed", "call_id": "call_b", "name": "mcp__lookup_time", "arguments": "{\"zone\":\"UTC\"}"}
        ])
    );
}

#[test]
fn aggregate_keeps_a_complete_output() {
    let response = aggregate(&events(fixtures::REASONING_TEXT)).unwrap();
    let kinds: Vec<&str> = response["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["reasoning", "message"]);
    assert_eq!(
        response["output"][0]["encrypted_content"],
        json!("gAAAAencrypted")
    );
}

#[test]
fn aggregate_returns_incomplete_responses() {
    let response = aggregate(&events(fixtures::INCOMPLETE_LENGTH)).unwrap();
    assert_eq!(response["status"], json!("incomplete"));
    assert_eq!(
        response["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
}

#[test]
fn aggregate_reports_usage_limit_as_429_with_reset() {
    let err = aggregate(&events(fixtures::FAILED_USAGE_LIMIT)).unwrap_err();
    assert_eq!(
        err,
        UpstreamError {
            status: 429,
            kind: "usage_limit_reached".to_owned(),
            code: Some("usage_limit_reached".to_owned()),
            message: "You've hit your usage limit. Upgrade to Pro or try again later.".to_owned(),
            param: None,
            resets_at: Some(1_763_903_600),
            resets_in_seconds: Some(3600),
        }
    );
}

#[test]
fn aggregate_reports_a_cut_stream() {
    let err = aggregate(&events(fixtures::CUT_STREAM)).unwrap_err();
    assert_eq!(err, UpstreamError::stream_incomplete());
    assert_eq!(err.status, 502);
}

#[test]
fn aggregate_ignores_events_after_the_terminal_one() {
    let mut all = events(fixtures::PLAIN_TEXT);
    all.extend(events(fixtures::FAILED_USAGE_LIMIT));
    let mut aggregator = Aggregator::new();
    for event in &all {
        aggregator.on_sse(event);
        if aggregator.is_done() {
            break;
        }
    }
    assert_eq!(aggregator.finish().unwrap()["id"], json!("resp_plain1"));
    assert_eq!(aggregate(&all).unwrap()["id"], json!("resp_plain1"));
}
