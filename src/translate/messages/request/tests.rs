//! Tests for the Messages request translator: whole conversations, thinking and effort,
//! tool choices and tool changes, system messages, refusals.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::translate::Backend;

const LONG_MCP: &str = "mcp__an_extremely_long_server_name_that_goes_on_and_on__lookup_time";

#[test]
fn request_translates_a_full_conversation() {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "stream": true,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}, "title": "spec.pdf"}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "xyz"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": LONG_MCP, "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true, "content": [{"type": "text", "text": "no clock"}, {"type": "text", "text": "try later"}]},
                {"type": "text", "text": "And?"}
            ]},
            {"role": "assistant", "content": "It is sunny."},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [
            {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"name": LONG_MCP, "input_schema": {"type": "object", "properties": {}}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "stop_sequences": ["END"],
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "metadata": {"user_id": "u"}
    });
    let request = messages_to_responses(body).unwrap();
    assert_eq!(
        request.responses_body,
        json!({
            "model": "claude-sonnet-4-5",
            "instructions": "",
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are terse."}]},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "Look:"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
                    {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
                    {"type": "input_file", "filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBE"}
                ]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
                {"type": "function_call", "call_id": "toolu_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "call_id": "toolu_2", "name": "mcp__lookup_time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "toolu_2", "output": "[tool error] no clock\ntry later"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "And?"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is sunny."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks"}]}
            ],
            "tools": [
                {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": false},
                {"type": "function", "name": "mcp__lookup_time", "parameters": {"type": "object", "properties": {}}, "strict": false},
                {"type": "web_search"}
            ],
            "parallel_tool_calls": false,
            "tool_choice": "required",
            "reasoning": {"effort": "medium", "summary": "auto"},
            "prompt_cache_key": "u",
            "stream": true,
            "store": false,
            "include": ["reasoning.encrypted_content"]
        })
    );
    assert!(request.stream);
    assert!(request.thinking);
    assert_eq!(request.model, "claude-sonnet-4-5");
    assert_eq!(request.stop, vec!["END".to_owned()]);
    assert_eq!(request.tool_names.to_client("mcp__lookup_time"), LONG_MCP);
    assert_eq!(
        request.dropped,
        [
            "max_tokens",
            "metadata",
            "temperature",
            "top_k",
            "top_p",
            "messages[1].content[0] (thinking)",
            "messages[1].content[1] (redacted_thinking)"
        ]
        .map(str::to_owned)
        .to_vec()
    );
}

#[test]
fn request_for_a_generic_backend_keeps_sampling_and_forces_nothing() {
    let request = messages_to_responses_for(
        json!({"model": "m", "max_tokens": 64, "temperature": 0.5, "top_p": 0.9, "top_k": 40,
            "messages": [{"role": "user", "content": "hi"}]}),
        Backend::Generic,
    )
    .unwrap();
    assert_eq!(
        request.responses_body,
        json!({
            "model": "m",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "temperature": 0.5,
            "top_p": 0.9,
            "max_output_tokens": 64,
            "stream": true
        })
    );
    assert_eq!(request.dropped, ["top_k".to_owned()]);
}

#[test]
fn request_maps_thinking_budgets_to_effort() {
    let reasoning = |thinking: Value| {
        let request = messages_to_responses(json!({
            "model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "thinking": thinking
        }))
        .unwrap();
        (
            request.responses_body.get("reasoning").cloned(),
            request.thinking,
        )
    };
    let effort = |e: &str| (Some(json!({"effort": e, "summary": "auto"})), true);
    assert_eq!(
        reasoning(json!({"type": "enabled", "budget_tokens": 1024})),
        effort("low")
    );
    assert_eq!(
        reasoning(json!({"type": "enabled", "budget_tokens": 4095})),
        effort("low")
    );
    assert_eq!(
        reasoning(json!({"type": "enabled", "budget_tokens": 4096})),
        effort("medium")
    );
    assert_eq!(
        reasoning(json!({"type": "enabled", "budget_tokens": 16383})),
        effort("medium")
    );
    assert_eq!(
        reasoning(json!({"type": "enabled", "budget_tokens": 16384})),
        effort("high")
    );
    assert_eq!(
        reasoning(json!({"type": "enabled", "budget_tokens": 32768})),
        effort("xhigh")
    );
    assert_eq!(
        reasoning(json!({"type": "disabled"})),
        (Some(json!({"effort": "none"})), false)
    );
    assert_eq!(reasoning(json!(null)), (None, false));
    assert_eq!(
        reasoning(json!({"type": "adaptive"})),
        (Some(json!({"summary": "auto"})), true)
    );
}

#[test]
fn request_maps_tool_choices() {
    let choice = |c: Value| {
        let request = messages_to_responses(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": c,
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]
        }));
        request.map(|r| {
            (
                r.responses_body["tool_choice"].clone(),
                r.responses_body["parallel_tool_calls"].clone(),
            )
        })
    };
    assert_eq!(
        choice(json!({"type": "auto"})).unwrap(),
        (json!("auto"), json!(true))
    );
    assert_eq!(
        choice(json!({"type": "none"})).unwrap(),
        (json!("none"), json!(true))
    );
    assert_eq!(
        choice(json!({"type": "tool", "name": "get_weather"})).unwrap(),
        (
            json!({"type": "function", "name": "get_weather"}),
            json!(true)
        )
    );
    assert_eq!(
        choice(json!({"type": "sometimes"}))
            .unwrap_err()
            .to_string(),
        "invalid `tool_choice.type`: unknown type `sometimes`; expected auto, any, tool or none"
    );
}

#[test]
fn request_keeps_images_in_tool_results() {
    let request = messages_to_responses(json!({
        "model": "m",
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
                {"type": "text", "text": "here"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}
            ]}]}
        ]
    }))
    .unwrap();
    assert_eq!(
        request.responses_body["input"][1],
        json!({"type": "function_call_output", "call_id": "t1", "output": [
            {"type": "input_text", "text": "here"},
            {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/", "detail": "auto"}
        ]})
    );
}

#[test]
fn request_refuses_invalid_shapes() {
    let err = |body: Value| messages_to_responses(body).unwrap_err().to_string();
    let user = json!([{"role": "user", "content": "x"}]);
    assert_eq!(err(json!(1)), "request body must be a json object");
    assert_eq!(
        err(json!({"messages": user})),
        "missing required field `model`"
    );
    assert_eq!(
        err(json!({"model": "m"})),
        "missing required field `messages`"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": "x"})),
        "invalid `messages`: must be a list"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": []})),
        "invalid `messages`: must not be empty"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]})),
        "invalid `messages[0].role`: unknown role `tool`; expected user, assistant or system"
    );
    assert_eq!(
        err(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]})
        ),
        "unsupported `messages[1].role`: the conversation ends with an assistant message (prefill); the Responses backend cannot continue a partial answer, so end with a user message"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": user, "temperature": 1, "frequency_penalty": 1})),
        "invalid `frequency_penalty`: unknown field: the Anthropic Messages API has no such parameter"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": user, "container": "c"})),
        "unsupported `container`: code-execution containers exist only on Anthropic's servers"
    );
    assert_eq!(
        err(
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": {}}]}]})
        ),
        "unsupported `messages[0].content[0].type`: `tool_use` blocks are not supported in user messages by the Responses backend"
    );
    assert_eq!(
        err(
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]})
        ),
        "unsupported `messages[0].content[0].source.type`: `file` sources refer to Anthropic's Files API, which the Responses backend cannot read; send the content as base64 or a url"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": user, "system": 5})),
        "invalid `system`: must be a string or a list of text blocks"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": user, "thinking": {"type": "maybe"}})),
        "invalid `thinking.type`: unknown type `maybe`; expected enabled, adaptive, between_tools or disabled"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": user, "stop_sequences": "END"})),
        "invalid `stop_sequences`: must be a list of strings"
    );
}

#[test]
fn request_skips_empty_string_content() {
    let request = messages_to_responses(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""},
            {"role": "user", "content": ""}]
    }))
    .unwrap();
    assert_eq!(request.responses_body["input"].as_array().unwrap().len(), 1);
}

/// Claude Code's requests: system messages, effort, signatures, tool changes, web search.
mod claude;
