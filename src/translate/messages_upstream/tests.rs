//! Tests of Responses → Anthropic Messages requests and of Anthropic streams → Responses
//! events, including the whole pivot for Chat clients.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::translate::Backend;
use crate::translate::chat::{ChatStream, chat_to_responses_for};
use crate::translate::fixtures::{self, events};
use crate::translate::names::ToolNameMap;
use crate::translate::responses::aggregate;

/// Every Responses event the upstream stream produces, in order.
fn translate(wire: &str) -> Vec<SseEvent> {
    let mut stream = MessagesUpstreamStream::new();
    let mut out: Vec<SseEvent> = events(wire)
        .iter()
        .flat_map(|e| stream.on_event(e))
        .collect();
    out.extend(stream.finish());
    out
}

fn kinds(events: &[SseEvent]) -> Vec<&str> {
    events.iter().filter_map(|e| e.event.as_deref()).collect()
}

#[test]
fn request_maps_system_blocks_tools_and_options() {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "instructions": "Be brief.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Use tools."}]},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "Weather here?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                {"type": "input_image", "image_url": "https://example.com/a.png"},
                {"type": "input_file", "filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBE"}
            ]},
            {"type": "reasoning", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "call_gone", "output": ""},
            {"type": "message", "role": "user", "content": "Thanks"}
        ],
        "tools": [
            {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"type": "local_shell"}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "temperature": 0.2,
        "max_output_tokens": 10000,
        "reasoning": {"effort": "medium"},
        "text": {"format": {"type": "json_object"}},
        "stream": true
    });
    let request = responses_to_messages(&body).unwrap();
    assert_eq!(
        request.body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 10000,
            "system": "Be brief.\n\nUse tools.",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}, "title": "spec.pdf"}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                    {"type": "text", "text": " "},
                    {"type": "text", "text": "Thanks"}
                ]}
            ],
            "stream": true,
            "tools": [
                {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "temperature": 0.2,
            "thinking": {"type": "enabled", "budget_tokens": 8192}
        })
    );
    assert_eq!(
        request.dropped,
        [
            "input[2] (reasoning)",
            "input[6] (tool output without its call, sent as text)",
            "tools[1] (local_shell)",
            "text.format"
        ]
        .map(str::to_owned)
        .to_vec()
    );
}

#[test]
fn max_tokens_defaults_and_thinking_needs_room() {
    let request = responses_to_messages(&json!({"model": "m", "input": "hi"})).unwrap();
    assert_eq!(request.body["max_tokens"], DEFAULT_MAX_TOKENS);
    assert_eq!(
        request.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    );
    assert!(request.body.get("system").is_none());

    let request = responses_to_messages(
        &json!({"model": "m", "input": "hi", "max_output_tokens": 1000, "reasoning": {"effort": "high"}}),
    )
    .unwrap();
    assert!(request.body.get("thinking").is_none());
    assert_eq!(request.dropped, ["reasoning.effort".to_owned()]);

    let request = responses_to_messages(
        &json!({"model": "m", "input": "hi", "max_output_tokens": 3000, "reasoning": {"effort": "high"}}),
    )
    .unwrap();
    assert_eq!(request.body["thinking"]["budget_tokens"], 2999);

    let err =
        responses_to_messages(&json!({"model": "m", "input": "hi", "previous_response_id": "r"}))
            .unwrap_err();
    assert_eq!(err.param(), Some("previous_response_id"));
}

#[test]
fn a_chat_request_keeps_its_options_on_the_way_to_anthropic() {
    let request = chat_to_responses_for(
        json!({"model": "claude", "max_completion_tokens": 77, "temperature": 0.4, "stop": ["END"],
            "messages": [{"role": "system", "content": "Terse."}, {"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}}}),
        Backend::Generic,
    )
    .unwrap();
    let body = responses_to_messages(&request.responses_body).unwrap().body;
    assert_eq!(body["max_tokens"], 77);
    assert_eq!(body["temperature"], 0.4);
    assert_eq!(body["system"], "Terse.");
    assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "f"}));
    assert_eq!(body["stream"], true);
    assert!(body.get("thinking").is_none());
}

#[test]
fn a_recorded_anthropic_stream_becomes_responses_events() {
    let out = translate(fixtures::ANTHROPIC_TEXT_TOOL);
    assert_eq!(
        kinds(&out),
        [
            "response.created",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let response = aggregate(&out).unwrap();
    assert_eq!(response["id"], "resp_msg_01Ab");
    assert_eq!(response["model"], "claude-sonnet-4-5");
    assert_eq!(
        response["output"][0]["content"][0]["text"],
        "Let me check the weather."
    );
    assert_eq!(response["output"][1]["call_id"], "toolu_01");
    assert_eq!(response["output"][1]["arguments"], "{\"city\": \"Paris\"}");
    assert_eq!(
        response["usage"],
        json!({"input_tokens": 48, "input_tokens_details": {"cached_tokens": 8}, "output_tokens": 25, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 73})
    );
}

#[test]
fn a_chat_client_gets_the_anthropic_answer_as_chunks() {
    let mut client = ChatStream::new("claude", true, ToolNameMap::default(), Vec::new());
    let payloads: Vec<String> = translate(fixtures::ANTHROPIC_TEXT_TOOL)
        .iter()
        .flat_map(|e| client.on_event(e))
        .collect();
    let text: String = payloads.join("\n");
    for needle in [
        "\"content\":\"Let me check\"",
        "\"id\":\"toolu_01\"",
        "\"name\":\"get_weather\"",
        "\"finish_reason\":\"tool_calls\"",
        "\"prompt_tokens\":48",
        "\"completion_tokens\":25",
    ] {
        assert!(text.contains(needle), "{needle} missing in {text}");
    }
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
}

#[test]
fn an_error_event_fails_the_response() {
    let wire = format!(
        "event: message_start\ndata: {}\n\nevent: error\ndata: {}\n\n",
        json!({"type": "message_start", "message": {"id": "msg_1", "model": "c", "usage": {"input_tokens": 1}}}),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    );
    let out = translate(&wire);
    assert_eq!(kinds(&out), ["response.created", "response.failed"]);
    let err = aggregate(&out).unwrap_err();
    assert_eq!(err.status, 503);
    assert_eq!(err.message, "Overloaded");
}

#[test]
fn a_truncated_stream_has_no_terminal_event() {
    let cut: String = fixtures::ANTHROPIC_TEXT_TOOL
        .split("\n\n")
        .take(9)
        .map(|e| format!("{e}\n\n"))
        .collect();
    let out = translate(&cut);
    assert!(kinds(&out).contains(&"response.function_call_arguments.delta"));
    assert!(!kinds(&out).contains(&"response.completed"));
    assert_eq!(
        aggregate(&out).unwrap_err().code.as_deref(),
        Some("stream_incomplete")
    );
}

#[test]
fn max_tokens_and_thinking_map() {
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let wire = [
        event("message_start", json!({"type": "message_start", "message": {"id": "msg_2", "model": "c", "usage": {"input_tokens": 3, "output_tokens": 1}}})),
        event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}})),
        event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}})),
        event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}})),
        event("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        event("content_block_start", json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})),
        event("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "a"}})),
        event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}})),
        event("message_stop", json!({"type": "message_stop"})),
    ]
    .concat();
    let response = aggregate(&translate(&wire)).unwrap();
    assert_eq!(response["status"], "incomplete");
    assert_eq!(
        response["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(response["output"][0]["summary"][0]["text"], "hmm");
    assert_eq!(response["output"][1]["content"][0]["text"], "a");
    assert_eq!(response["usage"]["output_tokens"], 9);
}
