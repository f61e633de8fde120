//! Tests of Responses → Chat Completions requests and of chat streams → Responses events,
//! including the whole pivot for Messages and Chat clients.

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::sse::SseEvent;
use crate::translate::TranslateError;
use crate::translate::fixtures::{self, events};
use crate::translate::messages::{MessagesStream, messages_to_responses_for};
use crate::translate::names::ToolNameMap;
use crate::translate::responses::aggregate;
use crate::translate::{Backend, chat::ChatStream};

/// Every Responses event the upstream stream produces, in order.
fn translate(wire: &str) -> Vec<SseEvent> {
    let mut stream = ChatUpstreamStream::new();
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
fn request_maps_messages_tools_and_options() {
    let body = json!({
        "model": "gpt-4.1-mini",
        "instructions": "Be brief.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Use tools."}]},
            {"role": "user", "content": [
                {"type": "input_text", "text": "Weather here?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}
            ]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "noon"}]},
            {"type": "function_call_output", "call_id": "call_gone", "output": "42"},
            {"type": "message", "role": "user", "content": "Thanks"}
        ],
        "tools": [
            {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": false},
            {"type": "function", "name": "get_time"},
            {"type": "web_search"}
        ],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": false,
        "temperature": 0.2,
        "top_p": 0.9,
        "max_output_tokens": 300,
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": true}},
        "stream": false,
        "store": false,
        "truncation": "auto"
    });
    let request = responses_to_chat(&body).unwrap();
    assert_eq!(
        request.body,
        json!({
            "model": "gpt-4.1-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "system", "content": "Use tools."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
                ]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
                {"role": "user", "content": "42"},
                {"role": "user", "content": "Thanks"}
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": false}},
                {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": false,
            "temperature": 0.2,
            "top_p": 0.9,
            "max_tokens": 300,
            "reasoning_effort": "low",
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}}
        })
    );
    assert_eq!(
        request.dropped,
        [
            "truncation",
            "input[2] (reasoning)",
            "input[8] (tool output without its call, sent as a message)",
            "tools[2] (web_search)"
        ]
        .map(str::to_owned)
        .to_vec()
    );
}

#[test]
fn request_takes_a_string_input_and_refuses_stored_state() {
    let request = responses_to_chat(&json!({"model": "m", "input": "hi"})).unwrap();
    assert_eq!(
        request.body["messages"],
        json!([{"role": "user", "content": "hi"}])
    );
    assert_eq!(request.body["stream"], true);
    assert!(request.body.get("tools").is_none());

    let err =
        responses_to_chat(&json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"}))
            .unwrap_err();
    assert_eq!(err.param(), Some("previous_response_id"));
    assert_eq!(
        responses_to_chat(&json!({"model": "m"})).unwrap_err(),
        TranslateError::Missing("input".to_owned())
    );
    let err =
        responses_to_chat(&json!({"model": "m", "input": [{"role": "robot", "content": "x"}]}))
            .unwrap_err();
    assert_eq!(err.param(), Some("input[0].role"));
}

#[test]
fn a_recorded_chat_stream_becomes_responses_events() {
    let out = translate(fixtures::CHAT_TEXT_TOOL);
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
    assert_eq!(response["id"], "resp_chatcmpl-Bx1");
    assert_eq!(response["model"], "gpt-4.1-mini");
    assert_eq!(response["created_at"], 1_763_900_000);
    assert_eq!(response["status"], "completed");
    assert_eq!(
        response["output"][0]["content"][0]["text"],
        "Let me check the weather."
    );
    assert_eq!(
        response["output"][1],
        json!({"id": "fc_chatcmpl-Bx1_1", "type": "function_call", "status": "completed", "call_id": "call_abc", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(
        response["usage"],
        json!({"input_tokens": 50, "input_tokens_details": {"cached_tokens": 10}, "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 70})
    );
}

#[test]
fn a_messages_client_gets_the_chat_answer_as_anthropic_events() {
    // Messages → Responses (generic) → Chat on the way up; chat → Responses → Anthropic down.
    let request = messages_to_responses_for(
        json!({"model": "m", "max_tokens": 64, "temperature": 0.3, "system": "Be brief.", "messages": [{"role": "user", "content": "Weather?"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}),
        Backend::Generic,
    )
    .unwrap();
    let chat = responses_to_chat(&request.responses_body).unwrap().body;
    assert_eq!(chat["max_tokens"], 64);
    assert_eq!(chat["temperature"], 0.3);
    assert_eq!(
        chat["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(chat["tools"][0]["function"]["name"], "get_weather");

    let mut client = MessagesStream::new("m", ToolNameMap::default(), Vec::new(), false);
    let wire: String = translate(fixtures::CHAT_TEXT_TOOL)
        .iter()
        .flat_map(|e| client.on_event(e))
        .map(|e| e.to_wire())
        .collect();
    for needle in [
        "\"text\":\"Let me check\"",
        "\"type\":\"tool_use\"",
        "\"id\":\"call_abc\"",
        "\"name\":\"get_weather\"",
        "\"partial_json\":\"\\\"Paris\\\"}\"",
        "\"stop_reason\":\"tool_use\"",
        "event: message_stop",
    ] {
        assert!(wire.contains(needle), "{needle} missing in {wire}");
    }
}

#[test]
fn an_error_chunk_fails_the_response() {
    let wire = format!(
        "data: {}\n\ndata: {}\n\n",
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": "par"}, "finish_reason": null}]}),
        json!({"error": {"type": "server_error", "code": "overloaded", "message": "try later"}}),
    );
    let out = translate(&wire);
    assert_eq!(kinds(&out).last(), Some(&"response.failed"));
    let err = aggregate(&out).unwrap_err();
    assert_eq!(err.message, "try later");
    assert_eq!(err.kind, "server_error");
}

#[test]
fn a_truncated_stream_has_no_terminal_event_and_chat_clients_see_the_cut() {
    let cut: String = fixtures::CHAT_TEXT_TOOL
        .split("\n\n")
        .take(4)
        .map(|e| format!("{e}\n\n"))
        .collect();
    let out = translate(&cut);
    assert!(
        !kinds(&out)
            .iter()
            .any(|k| k.starts_with("response.completed"))
    );
    assert_eq!(
        aggregate(&out).unwrap_err().code.as_deref(),
        Some("stream_incomplete")
    );
    let mut client = ChatStream::new("m", false, ToolNameMap::default(), Vec::new());
    let mut payloads: Vec<String> = out.iter().flat_map(|e| client.on_event(e)).collect();
    payloads.extend(client.finish());
    assert!(
        payloads.last().unwrap().contains("stream_incomplete"),
        "{payloads:?}"
    );
}

#[test]
fn a_finish_reason_without_done_still_completes_and_length_is_incomplete() {
    let wire = format!(
        "data: {}\n\ndata: {}\n\n",
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"reasoning_content": "hmm", "content": "a"}, "finish_reason": null}]}),
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}),
    );
    let out = translate(&wire);
    let response = aggregate(&out).unwrap();
    assert_eq!(response["status"], "incomplete");
    assert_eq!(
        response["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(response["output"][0]["type"], "reasoning");
    assert_eq!(response["output"][0]["summary"][0]["text"], "hmm");
    assert_eq!(response["output"][1]["content"][0]["text"], "a");
    assert_eq!(response["usage"]["total_tokens"], 3);
}

#[test]
fn calls_that_share_an_index_are_told_apart_by_id() {
    let chunk = |id: &str, name: &str, args: &str| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0,
            "delta": {"tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": args}}]}, "finish_reason": null}]})
    };
    let wire = format!(
        "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        chunk("call_a", "f", "{}"),
        chunk("call_b", "g", "{\"x\":1}"),
    );
    let response = aggregate(&translate(&wire)).unwrap();
    assert_eq!(response["output"][0]["call_id"], "call_a");
    assert_eq!(response["output"][0]["arguments"], "{}");
    assert_eq!(response["output"][1]["call_id"], "call_b");
    assert_eq!(response["output"][1]["name"], "g");
    assert_eq!(response["output"][1]["arguments"], "{\"x\":1}");
}
