//! Chat Completions requests as Responses bodies.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

#[test]
fn request_translates_a_full_conversation() {
    let body = json!({
        "model": "gpt-5.5",
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather and time?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": LONG_MCP, "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "12:00"}]},
            {"role": "assistant", "content": "Sunny, noon."},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
            {"type": "function", "function": {"name": LONG_MCP, "strict": true, "parameters": {"type": "object", "properties": {}, "additionalProperties": false}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": LONG_MCP}},
        "parallel_tool_calls": false,
        "reasoning_effort": "minimal",
        "verbosity": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true, "schema": {"type": "object"}}},
        "stop": ["\n\n", "END"],
        "prompt_cache_key": "conv-9",
        "temperature": 0.1,
        "top_p": 0.5,
        "max_tokens": 10,
        "max_completion_tokens": 10,
        "n": 1,
        "logprobs": false,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "seed": 7,
        "logit_bias": {},
        "user": "me",
        "store": true,
        "metadata": null
    });
    let request = chat_to_responses(body).unwrap();
    assert_eq!(
        request.responses_body,
        json!({
            "model": "gpt-5.5",
            "instructions": "",
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are terse."}]},
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Use tools."}]},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "Weather and time?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}
                ]},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "call_id": "call_2", "name": "mcp__lookup_time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "call_2", "output": "12:00"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Sunny, noon."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks"}]}
            ],
            "tools": [
                {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": false},
                {"type": "function", "name": "mcp__lookup_time", "parameters": {"type": "object", "properties": {}, "additionalProperties": false}, "strict": true}
            ],
            "tool_choice": {"type": "function", "name": "mcp__lookup_time"},
            "parallel_tool_calls": false,
            "reasoning": {"effort": "low", "summary": "auto"},
            "text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": true}, "verbosity": "low"},
            "prompt_cache_key": "conv-9",
            "stream": true,
            "store": false,
            "include": ["reasoning.encrypted_content"]
        })
    );
    assert!(request.stream);
    assert!(request.include_usage);
    assert_eq!(request.model, "gpt-5.5");
    assert_eq!(request.stop, vec!["\n\n".to_owned(), "END".to_owned()]);
    assert_eq!(request.tool_names.to_client("mcp__lookup_time"), LONG_MCP);
    assert_eq!(
        request.dropped,
        [
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "max_completion_tokens",
            "max_tokens",
            "n",
            "presence_penalty",
            "seed",
            "store",
            "temperature",
            "top_p",
            "user"
        ]
        .map(str::to_owned)
        .to_vec()
    );
}

#[test]
fn request_for_a_generic_backend_keeps_sampling_and_forces_nothing() {
    let request = chat_to_responses_for(
        json!({
            "model": "gpt-4.1",
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.1,
            "top_p": 0.5,
            "max_tokens": 10,
            "max_completion_tokens": 20,
            "user": "me",
            "seed": 7
        }),
        Backend::Generic,
    )
    .unwrap();
    assert_eq!(
        request.responses_body,
        json!({
            "model": "gpt-4.1",
            "instructions": "",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "temperature": 0.1,
            "top_p": 0.5,
            "max_output_tokens": 20,
            "user": "me",
            "stream": true
        })
    );
    assert_eq!(request.dropped, ["seed".to_owned()]);
    let with_effort = chat_to_responses_for(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high", "store": true}),
        Backend::Generic,
    )
    .unwrap();
    assert_eq!(
        with_effort.responses_body["reasoning"],
        json!({"effort": "high", "summary": "auto"})
    );
    assert_eq!(with_effort.responses_body["store"], true);
}

#[test]
fn request_defaults_for_a_minimal_body() {
    let request = chat_to_responses(json!({
        "model": "gpt-5.5",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_object"}
    }))
    .unwrap();
    assert_eq!(
        request.responses_body,
        json!({
            "model": "gpt-5.5",
            "instructions": "",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "parallel_tool_calls": true,
            "reasoning": {"summary": "auto"},
            "text": {"format": {"type": "json_object"}},
            "stream": true,
            "store": false,
            "include": ["reasoning.encrypted_content"]
        })
    );
    assert!(!request.stream);
    assert!(!request.include_usage);
    assert!(request.dropped.is_empty());
}

#[test]
fn request_sends_orphaned_tool_output_as_a_message() {
    let request = chat_to_responses(json!({
        "model": "m",
        "messages": [{"role": "tool", "tool_call_id": "call_gone", "content": "42"}]
    }))
    .unwrap();
    assert_eq!(
        request.responses_body["input"],
        json!([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "42"}]}])
    );
}

#[test]
fn request_maps_tool_choice_modes_and_allowed_tools() {
    let choice = |c: Value| {
        chat_to_responses(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": c}),
        )
        .map(|r| r.responses_body["tool_choice"].clone())
    };
    assert_eq!(choice(json!("required")).unwrap(), json!("required"));
    assert_eq!(
        choice(json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "a"}}]}})).unwrap(),
        json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "a"}]})
    );
    assert_eq!(
        choice(json!("sometimes")).unwrap_err().to_string(),
        "invalid `tool_choice`: unknown mode `sometimes`"
    );
}

#[test]
fn request_refuses_invalid_shapes() {
    let err = |body: Value| chat_to_responses(body).unwrap_err().to_string();
    let user = json!([{"role": "user", "content": "x"}]);
    assert_eq!(err(json!("x")), "request body must be a json object");
    assert_eq!(
        err(json!({"messages": user})),
        "missing required field `model`"
    );
    assert_eq!(
        err(json!({"model": "m"})),
        "missing required field `messages`"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": {}})),
        "invalid `messages`: must be a list"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": []})),
        "invalid `messages`: must not be empty"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]})),
        "invalid `messages[0].role`: unknown role `robot`; expected system, developer, user, assistant or tool"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": [{"content": "x"}]})),
        "missing required field `messages[0].role`"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": user, "n": 2})),
        "unsupported `n`: the codex backend returns one choice; send n = 1"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": user, "functions": []})),
        "unsupported `functions`: deprecated; use `tools` and `tool_choice`"
    );
    assert_eq!(
        err(
            json!({"model": "m", "messages": user, "tools": [{"type": "custom", "custom": {"name": "x"}}]})
        ),
        "unsupported `tools[0].type`: only function tools are supported"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]})),
        "missing required field `messages[0].tool_call_id`"
    );
    assert_eq!(
        err(
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})
        ),
        "unsupported `messages[0].content[0]`: audio input is not supported by the codex backend"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": user, "stop": 3})),
        "invalid `stop`: must be a string or a list of strings"
    );
    assert_eq!(
        err(json!({"model": "m", "messages": user, "response_format": {"type": "yaml"}})),
        "invalid `response_format.type`: unknown format `yaml`; expected text, json_object or json_schema"
    );
}
