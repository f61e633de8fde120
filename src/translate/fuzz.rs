//! Property tests: the translators never panic, whatever JSON a client sends and whatever event
//! sequence the backend (or a Chat Completions or Anthropic upstream) streams. Short in CI; run longer by hand with `PROPTEST_CASES=100000`.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::Backend;
use super::chat::{ChatStream, chat_to_responses, chat_to_responses_for};
use super::chat_upstream::{ChatUpstreamStream, responses_to_chat};
use super::messages::{MessagesStream, messages_to_responses, messages_to_responses_for};
use super::messages_upstream::{MessagesUpstreamStream, responses_to_messages};
use super::names::ToolNameMap;
use super::sse::SseEvent;

/// Keys the translators look at, so arbitrary objects often hit real code paths.
const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "stream",
    "tools",
    "tool_choice",
    "tool_calls",
    "tool_call_id",
    "function",
    "name",
    "arguments",
    "input",
    "id",
    "stop",
    "n",
    "max_tokens",
    "system",
    "thinking",
    "response_format",
    "stream_options",
    "include_usage",
    "image_url",
    "url",
    "source",
    "tool_use_id",
    "budget_tokens",
    "reasoning_effort",
    "temperature",
    "response",
    "item",
    "delta",
    "output_index",
    "content_index",
    "item_id",
    "summary_index",
    "status",
    "usage",
    "error",
    "output",
    "part",
    "call_id",
    "incomplete_details",
    "reason",
    "code",
    "message",
    "input_tokens",
    "output_tokens",
    "instructions",
    "previous_response_id",
    "max_output_tokens",
    "parameters",
    "reasoning",
    "effort",
    "choices",
    "finish_reason",
    "index",
    "content_block",
    "partial_json",
    "thinking",
    "x",
];

/// Strings the translators compare against (roles, types, event names).
const WORDS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "text",
    "image",
    "image_url",
    "tool_use",
    "tool_result",
    "redacted_thinking",
    "message",
    "function_call",
    "reasoning",
    "output_text",
    "input_text",
    "refusal",
    "auto",
    "none",
    "required",
    "any",
    "enabled",
    "disabled",
    "json_schema",
    "json_object",
    "completed",
    "incomplete",
    "failed",
    "response.created",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_part.added",
    "response.refusal.delta",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
    "max_output_tokens",
    "content_filter",
    "",
    "gpt-6-luna",
    "{\"a\":1}",
    "[DONE]",
    "function_call_output",
    "input_image",
    "input_file",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "text_delta",
    "input_json_delta",
    "thinking_delta",
    "tool_calls",
    "length",
    "max_tokens",
    "data:image/png;base64,AA",
];

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{0,8}",
    ]
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-3i64..300).prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        proptest::sample::select(WORDS).prop_map(|w| Value::String(w.to_owned())),
        ".{0,12}".prop_map(Value::String),
    ]
}

/// Arbitrary JSON, biased towards the keys and words the translators know.
fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((arb_key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A request body that passes the first checks (an object with a model and a message list) more
/// often than arbitrary JSON would, so the deeper translation is exercised.
fn arb_request() -> impl Strategy<Value = Value> {
    let message = (
        proptest::sample::select(&["user", "assistant", "system", "developer", "tool"][..]),
        arb_json(),
        proptest::option::of(arb_json()),
    )
        .prop_map(|(role, content, extra)| {
            let mut m = json!({"role": role, "content": content});
            if let Some(Value::Object(extra)) = extra {
                for (k, v) in extra {
                    m[k] = v;
                }
            }
            m
        });
    (
        proptest::collection::vec(message, 0..5),
        proptest::collection::vec((arb_key(), arb_json()), 0..5),
    )
        .prop_map(|(messages, extra)| {
            let mut body = json!({"model": "gpt-6-luna", "messages": messages});
            for (k, v) in extra {
                if k != "model" && k != "messages" {
                    body[k] = v;
                }
            }
            body
        })
}

/// One backend event: a known event type with arbitrary members, or garbage data.
fn arb_event() -> impl Strategy<Value = SseEvent> {
    let typed = (
        proptest::sample::select(WORDS),
        proptest::collection::vec((arb_key(), arb_json()), 0..6),
        any::<bool>(),
    )
        .prop_map(|(kind, members, named)| {
            let mut data = json!({"type": kind});
            for (k, v) in members {
                if k != "type" {
                    data[k] = v;
                }
            }
            SseEvent {
                event: named.then(|| kind.to_owned()),
                data: data.to_string(),
            }
        });
    let raw = (
        proptest::option::of(proptest::sample::select(WORDS).prop_map(str::to_owned)),
        prop_oneof![".{0,20}", arb_json().prop_map(|v| v.to_string())],
    )
        .prop_map(|(event, data)| SseEvent { event, data });
    prop_oneof![4 => typed, 1 => raw]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128)
    ))]

    #[test]
    fn chat_to_responses_never_panics(body in prop_oneof![arb_json(), arb_request()]) {
        let _ = chat_to_responses(body);
    }

    #[test]
    fn messages_to_responses_never_panics(body in prop_oneof![arb_json(), arb_request()]) {
        let _ = messages_to_responses(body);
    }

    #[test]
    fn generic_translations_never_panic(body in prop_oneof![arb_json(), arb_request()]) {
        let _ = chat_to_responses_for(body.clone(), Backend::Generic);
        let _ = messages_to_responses_for(body, Backend::Generic);
    }

    #[test]
    fn upstream_requests_never_panic(
        input in prop_oneof![arb_json(), proptest::collection::vec(arb_json(), 0..6).prop_map(Value::Array)],
        extra in proptest::collection::vec((arb_key(), arb_json()), 0..5),
    ) {
        let mut body = json!({"model": "m", "input": input});
        for (k, v) in extra {
            if k != "input" {
                body[k] = v;
            }
        }
        let _ = responses_to_chat(&body);
        let _ = responses_to_messages(&body);
    }

    #[test]
    fn upstream_streams_never_panic(events in proptest::collection::vec(arb_event(), 0..24)) {
        let mut chat = ChatUpstreamStream::new();
        let mut messages = MessagesUpstreamStream::new();
        for event in &events {
            let _ = chat.on_event(event);
            let _ = messages.on_event(event);
        }
        let _ = chat.finish();
        let _ = messages.finish();
    }

    #[test]
    fn chat_stream_never_panics(
        events in proptest::collection::vec(arb_event(), 0..24),
        include_usage in any::<bool>(),
        stop in proptest::collection::vec("[a-z]{1,3}", 0..2),
        tools in proptest::collection::vec("[a-z_]{1,80}", 0..3),
    ) {
        let mut stream = ChatStream::new("gpt-6-luna", include_usage, ToolNameMap::build(tools.iter().map(String::as_str)), stop);
        for event in &events {
            let _ = stream.on_event(event);
        }
        let _ = stream.finish();
        let _ = stream.finish();
    }

    #[test]
    fn messages_stream_never_panics(
        events in proptest::collection::vec(arb_event(), 0..24),
        thinking in any::<bool>(),
        stop in proptest::collection::vec("[a-z]{1,3}", 0..2),
        tools in proptest::collection::vec("[a-z_]{1,80}", 0..3),
        estimate in any::<u64>(),
    ) {
        let mut stream = MessagesStream::new("gpt-6-luna", ToolNameMap::build(tools.iter().map(String::as_str)), stop, thinking)
            .with_input_estimate(estimate);
        for event in &events {
            let _ = stream.on_event(event);
        }
        let _ = stream.finish();
        let _ = stream.finish();
    }
}
