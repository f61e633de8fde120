//! Scripted answers for the fake upstream: complete Responses event streams (text, a reasoned
//! tool call, a web search), and Chat Completions and Anthropic Messages streams.

use serde_json::{Value, json};

use super::fake_upstream::Step;

/// The events of a complete Responses answer saying `text` (the completed event leaves
/// `output` empty, as the backend sometimes does).
pub fn answer_events(text: &str) -> Vec<Step> {
    answer_events_with_cache(text, 0)
}

/// Input tokens the default answer reports, and how many of them a repeated conversation gets
/// from the prompt cache when `FakeUpstream::simulate_prompt_cache` is on.
pub const INPUT_TOKENS: u64 = 11;
/// See [`INPUT_TOKENS`].
pub const CACHED_TOKENS: u64 = 8;

/// [`answer_events`] whose usage reports `cached` input tokens served from the prompt cache.
pub fn answer_events_with_cache(text: &str, cached: u64) -> Vec<Step> {
    let item = json!({"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}]});
    vec![
        Step::Event(
            json!({"type": "response.created", "response": {"id": "resp_1", "object": "response", "created_at": 1, "status": "in_progress", "model": "gpt-test", "output": null}}),
        ),
        Step::Event(
            json!({"type": "response.output_item.added", "output_index": 0, "item": {"id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress", "content": []}}),
        ),
        Step::Event(
            json!({"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
        ),
        Step::Event(
            json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": text}),
        ),
        Step::Event(
            json!({"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0, "text": text}),
        ),
        Step::Event(json!({"type": "response.output_item.done", "output_index": 0, "item": item})),
        Step::Event(
            json!({"type": "response.completed", "response": {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-test", "output": [],
            "usage": {"input_tokens": INPUT_TOKENS, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 18}}}),
        ),
    ]
}

/// The events of a Responses answer that first reasons (an item with `encrypted` as its
/// encrypted content and no summary) and then calls `name` with `arguments` as `call_id`.
pub fn call_events(encrypted: &str, call_id: &str, name: &str, arguments: &Value) -> Vec<Step> {
    let reasoning =
        json!({"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": encrypted});
    let call = json!({"id": "fc_1", "type": "function_call", "status": "completed", "call_id": call_id,
        "name": name, "arguments": arguments.to_string()});
    vec![
        Step::Event(
            json!({"type": "response.created", "response": {"id": "resp_2", "object": "response", "created_at": 1, "status": "in_progress", "model": "gpt-test", "output": null}}),
        ),
        Step::Event(
            json!({"type": "response.output_item.added", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning", "summary": []}}),
        ),
        Step::Event(
            json!({"type": "response.output_item.done", "output_index": 0, "item": reasoning}),
        ),
        Step::Event(
            json!({"type": "response.output_item.added", "output_index": 1, "item": {"id": "fc_1", "type": "function_call", "status": "in_progress", "call_id": call_id, "name": name, "arguments": ""}}),
        ),
        Step::Event(
            json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": arguments.to_string()}),
        ),
        Step::Event(json!({"type": "response.output_item.done", "output_index": 1, "item": call})),
        Step::Event(
            json!({"type": "response.completed", "response": {"id": "resp_2", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-test", "output": [],
            "usage": {"input_tokens": 40, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 5}, "total_tokens": 49}}}),
        ),
    ]
}

/// The events of a Responses answer that searches the web for `query` (finding `url`) and
/// then says `text`.
pub fn search_events(query: &str, url: &str, text: &str) -> Vec<Step> {
    let search = json!({"id": "ws_1", "type": "web_search_call", "status": "completed",
        "action": {"type": "search", "query": query, "sources": [{"type": "url", "url": url}]}});
    let mut steps = vec![
        Step::Event(
            json!({"type": "response.created", "response": {"id": "resp_3", "object": "response", "created_at": 1, "status": "in_progress", "model": "gpt-test", "output": null}}),
        ),
        Step::Event(
            json!({"type": "response.output_item.added", "output_index": 0, "item": {"id": "ws_1", "type": "web_search_call", "status": "in_progress"}}),
        ),
        Step::Event(
            json!({"type": "response.output_item.done", "output_index": 0, "item": search}),
        ),
    ];
    // The text answer, as the second output item.
    for step in answer_events(text).into_iter().skip(1) {
        let Step::Event(mut event) = step else {
            continue;
        };
        if event.get("output_index").is_some() {
            event["output_index"] = json!(1);
        }
        steps.push(Step::Event(event));
    }
    steps
}

/// A Chat Completions stream saying `text` (two deltas), with a usage chunk and `[DONE]`.
pub fn chat_events(text: &str) -> Vec<Step> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "chat-upstream",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let (a, b) = text.split_at(text.len() / 2);
    vec![
        Step::Data(chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )),
        Step::Data(chunk(json!({"content": a}), Value::Null)),
        Step::Data(chunk(json!({"content": b}), Value::Null)),
        Step::Data(chunk(json!({}), json!("stop"))),
        Step::Data(
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "chat-upstream", "choices": [],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}),
        ),
        Step::Raw("data: [DONE]\n\n"),
    ]
}

/// A Chat Completions stream that calls `get_weather` with `{"city":"Paris"}`.
pub fn chat_tool_events() -> Vec<Step> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": "chat-upstream",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    vec![
        Step::Data(chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        )),
        Step::Data(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            Value::Null,
        )),
        Step::Data(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            Value::Null,
        )),
        Step::Data(chunk(json!({}), json!("tool_calls"))),
        Step::Data(
            json!({"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": "chat-upstream", "choices": [],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}),
        ),
        Step::Raw("data: [DONE]\n\n"),
    ]
}

/// An Anthropic Messages stream saying `text` (two deltas).
pub fn anthropic_events(text: &str) -> Vec<Step> {
    let (a, b) = text.split_at(text.len() / 2);
    let delta = |t: &str| json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}});
    vec![
        Step::Event(
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-upstream", "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 11, "output_tokens": 1}}}),
        ),
        Step::Event(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        Step::Event(json!({"type": "ping"})),
        Step::Event(delta(a)),
        Step::Event(delta(b)),
        Step::Event(json!({"type": "content_block_stop", "index": 0})),
        Step::Event(
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 7}}),
        ),
        Step::Event(json!({"type": "message_stop"})),
    ]
}

/// An Anthropic Messages stream that calls `get_weather` with `{"city":"Paris"}`.
pub fn anthropic_tool_events() -> Vec<Step> {
    let delta = |t: &str| json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": t}});
    vec![
        Step::Event(
            json!({"type": "message_start", "message": {"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-upstream", "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 20, "output_tokens": 1}}}),
        ),
        Step::Event(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        ),
        Step::Event(delta("{\"city\":")),
        Step::Event(delta("\"Paris\"}")),
        Step::Event(json!({"type": "content_block_stop", "index": 0})),
        Step::Event(
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 5}}),
        ),
        Step::Event(json!({"type": "message_stop"})),
    ]
}
