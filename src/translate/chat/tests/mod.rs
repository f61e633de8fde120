//! Tests for the Chat Completions translator, driven by the fixtures in `translate/fixtures`:
//! requests, streams and whole completions, one file each, with the helpers they share here.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::sse::SseEvent;
use crate::translate::Backend;
use crate::translate::fixtures::{self, events};
use crate::translate::names::ToolNameMap;
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

mod answer;
mod request;
mod stream;
