use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::serve_sdk::run_python;
use crate::support::fake_upstream::{
    DEFAULT_TEXT, FakeUpstream, Reply, Step, anthropic_tool_events, chat_events, chat_tool_events,
};
use crate::support::serve::{ServeProcess, codex_server, http_client};
use crate::support::{TestContext, sse_events};

/// A chat-only provider `chatonly` (model `chat-model`), an Anthropic-only provider `anth`
/// (model `claude-model`) and a generic Responses provider `resp` (model `resp-model`), all on
/// the fake.
fn config(fake: &FakeUpstream) -> String {
    format!(
        "providers:
  chatonly:
    base_url: {url}/chat/v1
    api: openai_chat
    api_key: sk-chat
    models: [chat-model]
  anth:
    base_url: {url}/anth/v1
    api: anthropic_messages
    authorization: x-api-key
    api_key: sk-ant
    models: [claude-model]
  resp:
    base_url: {url}/resp/v1
    api: openai_responses
    api_key: sk-resp
    models: [resp-model]
",
        url = fake.url()
    )
}

async fn start(fake: &FakeUpstream) -> (TestContext, ServeProcess) {
    let ctx = TestContext::new();
    ctx.write_config(&config(fake));
    let server = ServeProcess::start(&ctx, &[]).await;
    (ctx, server)
}

async fn post(server: &ServeProcess, path: &str, body: &Value) -> reqwest::Response {
    http_client()
        .post(format!("{}{path}", server.url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The `event:` names of an SSE body, in order.
fn event_names(text: &str) -> Vec<String> {
    sse_events(text.as_bytes())
        .into_iter()
        .filter_map(|e| e.event)
        .collect()
}

/// The `data:` payloads of an SSE body that are JSON, in order.
fn data_json(text: &str) -> Vec<Value> {
    sse_events(text.as_bytes())
        .iter()
        .filter_map(|e| serde_json::from_str(&e.data).ok())
        .collect()
}

/// A Responses request reaches an `openai_chat`-only provider as a streamed Chat Completions
/// request, and its chunks come back as Responses events (streamed) or one Response (not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_reach_a_chat_only_provider() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = start(&fake).await;

    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "chatonly:chat-model", "stream": true,
        "instructions": "Be brief.", "input": "hi", "temperature": 0.3, "max_output_tokens": 50}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-bitrouter-provider"], "chatonly");
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    assert_eq!(
        event_names(&text),
        [
            "response.created",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let events = data_json(&text);
    let completed = &events.last().unwrap()["response"];
    assert_eq!(completed["output"][0]["content"][0]["text"], DEFAULT_TEXT);
    assert_eq!(completed["usage"]["input_tokens"], 11);
    assert_eq!(completed["usage"]["output_tokens"], 7);

    let up = &fake.posts()[0];
    assert_eq!(up.path, "/chat/v1/chat/completions");
    assert_eq!(
        up.header("authorization").as_deref(),
        Some("Bearer sk-chat")
    );
    assert_eq!(up.header("accept").as_deref(), Some("text/event-stream"));
    assert_eq!(
        up.json(),
        json!({"model": "chat-model", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "temperature": 0.3, "max_tokens": 50})
    );

    // Not streamed, with a tool call: one Response object.
    fake.push(Reply::sse(chat_tool_events()));
    let tools = json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let resp = post(&server, "/v1/responses", &json!({"model": "chatonly:chat-model", "input": "weather?", "tools": tools, "tool_choice": "required"})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["output"][0]["type"], "function_call");
    assert_eq!(body["output"][0]["call_id"], "call_1");
    assert_eq!(body["output"][0]["name"], "get_weather");
    assert_eq!(body["output"][0]["arguments"], r#"{"city":"Paris"}"#);
    assert_eq!(body["usage"]["total_tokens"], 25);
    let up = fake.posts()[1].json();
    assert_eq!(up["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(up["tool_choice"], "required");
    assert_eq!(up["stream"], true);

    // The tool result goes back as a tool message after the assistant's call.
    let input = json!([
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
    ]);
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "chatonly:chat-model", "input": input, "tools": tools}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let up = fake.posts()[2].json();
    assert_eq!(up["messages"][1]["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        up["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "sunny"})
    );

    // The provider's client error comes back in OpenAI's shape.
    fake.push(Reply::json(
        400,
        json!({"error": {"type": "invalid_request_error", "message": "bad model"}}),
    ));
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "chatonly:chat-model", "input": "hi"}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad model"),
        "{body}"
    );

    // A stream that dies after output ends with an error event, not silently.
    let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": "par"}, "finish_reason": null}]});
    fake.push(Reply::sse(vec![Step::Data(chunk), Step::Die]));
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "chatonly:chat-model", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("\"delta\":\"par\""), "{text}");
    assert_eq!(
        event_names(&text).last().map(String::as_str),
        Some("error"),
        "{text}"
    );
    assert!(!text.contains("response.completed"), "{text}");
}

/// An Anthropic Messages request reaches an `openai_chat`-only provider (Messages → Responses →
/// Chat) and the chat stream comes back as Anthropic events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_a_chat_only_provider() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = start(&fake).await;

    let resp = post(&server, "/v1/messages", &json!({"model": "chatonly:chat-model", "max_tokens": 64, "stream": true,
        "system": "Be brief.", "temperature": 0.5, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert_eq!(
        event_names(&text),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let events = data_json(&text);
    let said: String = events
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(said, DEFAULT_TEXT);
    assert_eq!(events[5]["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[5]["usage"]["output_tokens"], 7);
    let up = fake.posts()[0].json();
    assert_eq!(fake.posts()[0].path, "/chat/v1/chat/completions");
    assert_eq!(up["max_tokens"], 64);
    assert_eq!(up["temperature"], 0.5);
    assert_eq!(
        up["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    );

    fake.push(Reply::sse(chat_tool_events()));
    let resp = post(&server, "/v1/messages", &json!({"model": "chatonly:chat-model", "max_tokens": 64,
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]})).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(
        body["content"][0],
        json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}})
    );

    // Errors come back in Anthropic's shape.
    fake.push(Reply::json(
        400,
        json!({"error": {"type": "invalid_request_error", "message": "too long"}}),
    ));
    let resp = post(&server, "/v1/messages", &json!({"model": "chatonly:chat-model", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too long"),
        "{body}"
    );
}

/// A Chat Completions request reaches an `anthropic_messages`-only provider (Chat → Responses →
/// Messages, with `max_tokens` and `anthropic-version`), and the Anthropic stream comes back as
/// chat chunks or one completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_reaches_an_anthropic_only_provider() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = start(&fake).await;

    let resp = post(&server, "/v1/chat/completions", &json!({"model": "anth:claude-model", "max_tokens": 99, "temperature": 0.5,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-bitrouter-provider"], "anth");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "anth:claude-model");
    assert_eq!(body["choices"][0]["message"]["content"], DEFAULT_TEXT);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 11);
    assert_eq!(body["usage"]["completion_tokens"], 7);
    let up = &fake.posts()[0];
    assert_eq!(up.path, "/anth/v1/messages");
    assert_eq!(up.header("x-api-key").as_deref(), Some("sk-ant"));
    assert_eq!(up.header("authorization"), None);
    assert_eq!(
        up.header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(
        up.json(),
        json!({"model": "claude-model", "max_tokens": 99, "system": "Be brief.", "stream": true, "temperature": 0.5,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
    );

    // Without a limit from the client, Anthropic's required max_tokens gets the default.
    let resp = post(
        &server,
        "/v1/chat/completions",
        &json!({"model": "anth:claude-model", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.posts()[1].json()["max_tokens"], 4096);

    // Streamed with a tool call.
    fake.push(Reply::sse(anthropic_tool_events()));
    let resp = post(&server, "/v1/chat/completions", &json!({"model": "anth:claude-model", "stream": true,
        "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}})).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let chunks = data_json(&text);
    let call = &chunks
        .iter()
        .find(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"] == "toolu_1")
        .unwrap()["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(arguments, r#"{"city":"Paris"}"#);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"),
        "{text}"
    );
    assert!(
        chunks.iter().any(|c| c["usage"]["prompt_tokens"] == 20),
        "{text}"
    );
    let up = fake.posts()[2].json();
    assert_eq!(
        up["tools"],
        json!([{"name": "get_weather", "input_schema": {"type": "object"}}])
    );
    assert_eq!(
        up["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );

    // Anthropic's overload (tried twice) comes back as a 502 in OpenAI's shape.
    for _ in 0..2 {
        fake.push(Reply::json(
            529,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ));
    }
    let resp = post(
        &server,
        "/v1/chat/completions",
        &json!({"model": "anth:claude-model", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Overloaded"),
        "{body}"
    );

    // An error event mid-stream ends the chat stream with an error payload and no [DONE].
    fake.push(Reply::sse(vec![
        Step::Event(json!({"type": "message_start", "message": {"id": "msg_3", "model": "c", "usage": {"input_tokens": 1, "output_tokens": 0}}})),
        Step::Event(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        Step::Event(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "par"}})),
        Step::Event(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
    ]));
    let resp = post(&server, "/v1/chat/completions", &json!({"model": "anth:claude-model", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    let text = resp.text().await.unwrap();
    assert!(text.contains("\"content\":\"par\""), "{text}");
    let last = data_json(&text).pop().unwrap();
    assert_eq!(last["error"]["message"], "Overloaded", "{text}");
    assert!(!text.contains("[DONE]"), "{text}");

    // A connection that dies mid-stream does the same.
    fake.push(Reply::sse(vec![
        Step::Event(json!({"type": "message_start", "message": {"id": "msg_4", "model": "c", "usage": {"input_tokens": 1, "output_tokens": 0}}})),
        Step::Event(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
        Step::Event(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "par"}})),
        Step::Die,
    ]));
    let resp = post(&server, "/v1/chat/completions", &json!({"model": "anth:claude-model", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    let text = resp.text().await.unwrap();
    let last = data_json(&text).pop().unwrap();
    assert!(last["error"]["message"].is_string(), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
}

/// A Responses request reaches an `anthropic_messages`-only provider the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_reach_an_anthropic_only_provider() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = start(&fake).await;
    let resp = post(&server, "/v1/responses", &json!({"model": "anth:claude-model", "stream": true, "input": "hi", "instructions": "Be brief."})).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let names = event_names(&text);
    assert_eq!(names.first().map(String::as_str), Some("response.created"));
    assert_eq!(names.last().map(String::as_str), Some("response.completed"));
    let completed = data_json(&text).pop().unwrap();
    assert_eq!(
        completed["response"]["output"][0]["content"][0]["text"],
        DEFAULT_TEXT
    );
    let up = fake.posts()[0].json();
    assert_eq!(up["system"], "Be brief.");
    assert_eq!(up["max_tokens"], 4096);

    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "anth:claude-model", "input": "hi"}),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["output"][0]["content"][0]["text"], DEFAULT_TEXT,
        "{body}"
    );

    // Compaction has no translation: a clear 400, nothing sent.
    let resp = post(
        &server,
        "/v1/responses/compact",
        &json!({"model": "anth:claude-model", "input": "hi"}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_api", "{body}");
    assert_eq!(fake.posts().len(), 2);
}

/// A generic Responses provider gets the client's sampling parameters and output limit, and no
/// Codex shaping (`store: false`, `include`, forced reasoning); the Codex backend still does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_responses_provider_gets_no_codex_shaping() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = start(&fake).await;
    let chat = json!({"model": "resp:resp-model", "temperature": 0.7, "top_p": 0.8, "max_tokens": 40,
        "messages": [{"role": "user", "content": "hi"}]});
    let resp = post(&server, "/v1/chat/completions", &chat).await;
    assert_eq!(resp.status(), 200);
    let resp = post(
        &server,
        "/v1/messages",
        &json!({"model": "resp:resp-model", "max_tokens": 30, "temperature": 0.2,
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let posts = fake.posts();
    assert_eq!(posts[0].path, "/resp/v1/responses");
    let up = posts[0].json();
    assert_eq!(up["temperature"], 0.7);
    assert_eq!(up["top_p"], 0.8);
    assert_eq!(up["max_output_tokens"], 40);
    assert_eq!(up["stream"], true);
    for key in ["store", "include", "reasoning"] {
        assert!(up.get(key).is_none(), "{key} in {up}");
    }
    let up = posts[1].json();
    assert_eq!(up["temperature"], 0.2);
    assert_eq!(up["max_output_tokens"], 30);
    assert!(up.get("store").is_none(), "{up}");

    // The Codex backend keeps its rules.
    let codex = FakeUpstream::start().await;
    let (_ctx, server) = codex_server(&codex).await;
    let mut chat = chat;
    chat["model"] = json!("gpt-6-luna");
    let resp = post(&server, "/v1/chat/completions", &chat).await;
    assert_eq!(resp.status(), 200);
    let up = codex.posts()[0].json();
    assert_eq!(up["store"], false);
    for key in ["temperature", "top_p", "max_output_tokens"] {
        assert!(up.get(key).is_none(), "{key} in {up}");
    }
}

const OPENAI_SCRIPT: &str = r#"
import os, json
from openai import OpenAI
client = OpenAI(base_url=os.environ["BASE_URL"] + "/v1", api_key="unused", max_retries=0)
r = client.responses.create(model="chatonly:chat-model", input="say hi")
print("plain:", r.output_text, r.usage.output_tokens)
with client.responses.stream(model="chatonly:chat-model", input="say hi") as stream:
    deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    final = stream.get_final_response()
print("stream:", "".join(deltas), final.output_text, final.usage.input_tokens)
c = client.chat.completions.create(model="anth:claude-model", messages=[{"role": "user", "content": "say hi"}])
print("chat:", c.choices[0].message.content, c.choices[0].finish_reason, c.usage.completion_tokens)
"#;

/// The `openai` SDK reads Responses answers from a chat-only provider and Chat Completions
/// answers from an Anthropic-only one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the openai Python SDK"]
async fn openai_sdk_through_translated_providers() {
    let fake = FakeUpstream::start().await;
    let (ctx, server) = start(&fake).await;
    let stdout = run_python(&ctx, &server, OPENAI_SCRIPT).await;
    assert!(
        stdout.contains(&format!("plain: {DEFAULT_TEXT} 7")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("stream: {DEFAULT_TEXT} {DEFAULT_TEXT} 11")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("chat: {DEFAULT_TEXT} stop 7")),
        "{stdout}"
    );
    let paths: Vec<String> = fake.posts().iter().map(|p| p.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/chat/v1/chat/completions",
            "/chat/v1/chat/completions",
            "/anth/v1/messages"
        ]
    );
}

const ANTHROPIC_SCRIPT: &str = r#"
import os
import anthropic
client = anthropic.Anthropic(base_url=os.environ["BASE_URL"], api_key="unused", max_retries=0)
user = {"role": "user", "content": "say hi"}
with client.messages.stream(model="chatonly:chat-model", max_tokens=100, messages=[user]) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
print("stream:", text, final.stop_reason, final.usage.output_tokens)
tools = [{"name": "get_weather", "description": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
r = client.messages.create(model="chatonly:chat-model", max_tokens=100, messages=[user], tools=tools)
use = [b for b in r.content if b.type == "tool_use"][0]
print("tool:", use.id, use.name, use.input["city"], r.stop_reason)
"#;

/// The `anthropic` SDK reads Messages answers from a chat-only provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the anthropic Python SDK"]
async fn anthropic_sdk_through_a_chat_only_provider() {
    let fake = FakeUpstream::start().await;
    fake.push(Reply::sse(chat_events(DEFAULT_TEXT)));
    fake.push(Reply::sse(chat_tool_events()));
    let (ctx, server) = start(&fake).await;
    let stdout = run_python(&ctx, &server, ANTHROPIC_SCRIPT).await;
    assert!(
        stdout.contains(&format!("stream: {DEFAULT_TEXT} end_turn 7")),
        "{stdout}"
    );
    assert!(
        stdout.contains("tool: call_1 get_weather Paris tool_use"),
        "{stdout}"
    );
    assert_eq!(fake.posts().len(), 2);
}
