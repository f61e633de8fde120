//! Tests for the Chat Completions translator: requests, streams and whole completions, driven
//! by the fixtures in `translate/fixtures`.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::translate::Backend;
use crate::translate::fixtures::{self, events};
use crate::translate::responses::aggregate;

const LONG_MCP: &str = "mcp__an_extremely_long_server_name_that_goes_on_and_on__lookup_time";

fn tool_names() -> ToolNameMap {
    ToolNameMap::build(["get_weather", LONG_MCP])
}

/// Runs a fixture through a [`ChatStream`] and returns every payload, then `finish`'s.
fn stream_with(fixture: &str, include_usage: bool, stop: &[&str]) -> Vec<String> {
    let stop = stop.iter().map(|s| (*s).to_owned()).collect();
    let mut stream = ChatStream::new("gpt-5.5", include_usage, tool_names(), stop);
    let mut out: Vec<String> = events(fixture)
        .iter()
        .flat_map(|e| stream.on_event(e))
        .collect();
    out.extend(stream.finish());
    out
}

/// The payloads reduced to what changes between chunks: the delta and finish reason, the
/// usage, the error, or `[DONE]`.
fn summarize(payloads: &[String]) -> Vec<Value> {
    payloads
        .iter()
        .map(|payload| {
            if payload == DONE {
                return json!(DONE);
            }
            let chunk: Value = serde_json::from_str(payload).unwrap();
            if chunk.get("error").is_some() {
                return chunk;
            }
            assert_eq!(chunk["id"], json!(format!("chatcmpl-{}", id_of(payload))));
            assert_eq!(chunk["object"], json!("chat.completion.chunk"));
            assert_eq!(chunk["model"], json!("gpt-5.5"));
            assert_eq!(chunk["created"], json!(1_763_900_000));
            match chunk["choices"].as_array().unwrap().as_slice() {
                [] => json!({"usage": chunk["usage"]}),
                [choice] => json!({"delta": choice["delta"], "finish": choice["finish_reason"]}),
                _ => panic!("more than one choice"),
            }
        })
        .collect()
}

fn id_of(payload: &str) -> String {
    let chunk: Value = serde_json::from_str(payload).unwrap();
    chunk["id"]
        .as_str()
        .unwrap()
        .trim_start_matches("chatcmpl-")
        .to_owned()
}

fn role() -> Value {
    json!({"delta": {"role": "assistant", "content": ""}, "finish": null})
}

fn content(text: &str) -> Value {
    json!({"delta": {"content": text}, "finish": null})
}

fn finish(reason: &str) -> Value {
    json!({"delta": {}, "finish": reason})
}

fn usage(prompt: u64, cached: u64, completion: u64, reasoning: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning}
    })
}

// ---- requests ----

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

// ---- streams ----

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

// ---- whole completions ----

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
