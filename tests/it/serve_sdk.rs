use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::clients;
use crate::support::fake_upstream::{DEFAULT_TEXT, FakeUpstream, Reply, Step, answer_events};
use crate::support::fixtures::{self, Scrub};
use crate::support::recorder::Recorder;
use crate::support::serve::{ServeProcess, codex_server, http_client};

const SCRIPT: &str = r#"
import os, sys
from openai import OpenAI
client = OpenAI(base_url=os.environ["BASE_URL"] + "/v1", api_key="unused", max_retries=0)
r = client.responses.create(model="gpt-6-luna", input="say hi")
print("plain:", r.output_text)
with client.responses.stream(model="gpt-6-luna", input="say hi") as stream:
    for _ in stream:
        pass
    final = stream.get_final_response()
print("stream:", final.output_text, final.usage.output_tokens)
"#;

/// The `openai` Python SDK reads bitrouter's Responses answers, streamed and not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the openai Python SDK"]
async fn openai_sdk_reads_responses_through_serve() {
    let fake = FakeUpstream::start().await;
    let (ctx, server) = codex_server(&fake).await;
    let recorder = Recorder::start(&server.url()).await;
    let stdout = run_python_at(&ctx, &server, &recorder.url(), SCRIPT).await;
    assert!(
        stdout.contains(&format!("plain: {DEFAULT_TEXT}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("stream: {DEFAULT_TEXT} 7")),
        "{stdout}"
    );
    assert_eq!(fake.post_bearers(), vec!["tok-work", "tok-work"]);
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    fixtures::check(
        "openai-python",
        &clients::pip_version("venv", "openai"),
        "responses",
        &recorder.sent(),
        &Scrub::new(&ctx),
    );
}

/// Runs `script` with the installed Python SDKs (`BASE_URL` is the server's root) and returns
/// what it printed; fails the test when the SDKs are not installed or the script fails.
pub(crate) async fn run_python(ctx: &TestContext, server: &ServeProcess, script: &str) -> String {
    run_python_at(ctx, server, &server.url(), script).await
}

/// [`run_python`] with `BASE_URL` set to `base` (e.g. a recorder in front of the server).
async fn run_python_at(
    ctx: &TestContext,
    server: &ServeProcess,
    base: &str,
    script: &str,
) -> String {
    let mut cmd = tokio::process::Command::new(clients::python());
    cmd.env_clear()
        .envs(ctx.env_pairs())
        .env("BASE_URL", base)
        .args(["-c", script]);
    clients::run(
        "the Python SDK script",
        cmd,
        server,
        Duration::from_secs(60),
    )
    .await
    .stdout
}

/// The events of a Responses answer that calls `get_weather` with `{"city":"Paris"}`, the
/// arguments streamed in two deltas.
fn tool_call_events() -> Vec<Step> {
    let args = r#"{"city":"Paris"}"#;
    let created = json!({"type": "response.created", "response": {"id": "resp_2", "object": "response", "created_at": 1, "status": "in_progress", "model": "gpt-test", "output": null}});
    let item = |status: &str, arguments: &str| json!({"id": "fc_1", "type": "function_call", "status": status, "call_id": "call_1", "name": "get_weather", "arguments": arguments});
    vec![
        Step::Event(created),
        Step::Event(
            json!({"type": "response.output_item.added", "output_index": 0, "item": item("in_progress", "")}),
        ),
        Step::Event(
            json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 0, "delta": "{\"city\":"}),
        ),
        Step::Event(
            json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 0, "delta": "\"Paris\"}"}),
        ),
        Step::Event(
            json!({"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 0, "arguments": args}),
        ),
        Step::Event(
            json!({"type": "response.output_item.done", "output_index": 0, "item": item("completed", args)}),
        ),
        Step::Event(
            json!({"type": "response.completed", "response": {"id": "resp_2", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-test", "output": [],
            "usage": {"input_tokens": 20, "output_tokens": 5, "total_tokens": 25}}}),
        ),
    ]
}

/// The Responses input items of a recorded request of a given type.
fn items_of(body: &Value, kind: &str) -> Vec<Value> {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == kind)
        .cloned()
        .collect()
}

/// Checks the second turn of a tool round trip reached the backend as Responses items.
fn assert_tool_round_trip(body: &Value) {
    let calls = items_of(body, "function_call");
    assert_eq!(calls.len(), 1, "{body}");
    assert_eq!(calls[0]["call_id"], "call_1");
    assert_eq!(calls[0]["name"], "get_weather");
    let args: Value = serde_json::from_str(calls[0]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    let outputs = items_of(body, "function_call_output");
    assert_eq!(outputs.len(), 1, "{body}");
    assert_eq!(outputs[0]["call_id"], "call_1");
    assert!(outputs[0]["output"].to_string().contains("sunny"), "{body}");
    assert_eq!(body["tools"][0]["name"], "get_weather", "{body}");
    assert_eq!(body["stream"], true);
    assert_eq!(body["store"], false);
}

const CHAT_SCRIPT: &str = r#"
import os, json
from openai import OpenAI
client = OpenAI(base_url=os.environ["BASE_URL"] + "/v1", api_key="unused", max_retries=0)
user = {"role": "user", "content": "say hi"}
r = client.chat.completions.create(model="gpt-6-luna", messages=[user])
print("plain:", r.choices[0].message.content, r.choices[0].finish_reason, r.usage.completion_tokens)
text, usage = "", None
for c in client.chat.completions.create(model="gpt-6-luna", messages=[user], stream=True, stream_options={"include_usage": True}):
    if c.choices and c.choices[0].delta.content:
        text += c.choices[0].delta.content
    if c.usage:
        usage = c.usage.completion_tokens
print("stream:", text, usage)
tools = [{"type": "function", "function": {"name": "get_weather", "description": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ask = {"role": "user", "content": "weather in Paris?"}
r = client.chat.completions.create(model="gpt-6-luna", messages=[ask], tools=tools)
call = r.choices[0].message.tool_calls[0]
print("call:", call.id, call.function.name, json.loads(call.function.arguments)["city"], r.choices[0].finish_reason)
messages = [ask, r.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
r = client.chat.completions.create(model="gpt-6-luna", messages=messages, tools=tools)
print("final:", r.choices[0].message.content)
args, name = "", None
for c in client.chat.completions.create(model="gpt-6-luna", messages=[ask], tools=tools, stream=True):
    for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
        name = name or (tc.function.name if tc.function else None)
        args += (tc.function.arguments or "") if tc.function else ""
print("streamed call:", name, json.loads(args)["city"])
"#;

/// The `openai` SDK's Chat Completions, streamed and not, and a tool round trip, through the
/// translation to the Codex backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the openai Python SDK"]
async fn openai_sdk_chat_completions_through_codex() {
    let fake = FakeUpstream::start().await;
    fake.push(Reply::sse(answer_events(DEFAULT_TEXT)));
    fake.push(Reply::sse(answer_events(DEFAULT_TEXT)));
    fake.push(Reply::sse(tool_call_events()));
    fake.push(Reply::sse(answer_events("It is sunny in Paris.")));
    fake.push(Reply::sse(tool_call_events()));
    let (ctx, server) = codex_server(&fake).await;
    let recorder = Recorder::start(&server.url()).await;
    let stdout = run_python_at(&ctx, &server, &recorder.url(), CHAT_SCRIPT).await;
    assert!(
        stdout.contains(&format!("plain: {DEFAULT_TEXT} stop 7")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("stream: {DEFAULT_TEXT} 7")),
        "{stdout}"
    );
    assert!(
        stdout.contains("call: call_1 get_weather Paris tool_calls"),
        "{stdout}"
    );
    assert!(stdout.contains("final: It is sunny in Paris."), "{stdout}");
    assert!(
        stdout.contains("streamed call: get_weather Paris"),
        "{stdout}"
    );
    let posts = fake.posts();
    assert_eq!(posts.len(), 5);
    for post in &posts {
        assert_eq!(post.path, "/backend-api/codex/responses");
        assert_eq!(
            post.header("authorization").as_deref(),
            Some("Bearer tok-work")
        );
    }
    let first = posts[0].json();
    assert_eq!(first["model"], "gpt-6-luna");
    assert_eq!(items_of(&first, "message")[0]["role"], "user");
    assert_tool_round_trip(&posts[3].json());
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    fixtures::check(
        "openai-python",
        &clients::pip_version("venv", "openai"),
        "chat_completions",
        &recorder.sent(),
        &Scrub::new(&ctx),
    );
}

const MESSAGES_SCRIPT: &str = r#"
import os, json
import anthropic
client = anthropic.Anthropic(base_url=os.environ["BASE_URL"], api_key="unused", max_retries=0)
user = {"role": "user", "content": "say hi"}
r = client.messages.create(model="gpt-6-luna", max_tokens=100, messages=[user])
print("plain:", r.content[0].text, r.stop_reason, r.usage.output_tokens)
with client.messages.stream(model="gpt-6-luna", max_tokens=100, messages=[user]) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
print("stream:", text, final.content[0].text, final.usage.output_tokens)
tools = [{"name": "get_weather", "description": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
ask = {"role": "user", "content": "weather in Paris?"}
with client.messages.stream(model="gpt-6-luna", max_tokens=100, messages=[ask], tools=tools) as stream:
    first = stream.get_final_message()
use = [b for b in first.content if b.type == "tool_use"][0]
print("tool:", use.id, use.name, use.input["city"], first.stop_reason)
messages = [ask, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}]
r = client.messages.create(model="gpt-6-luna", max_tokens=100, messages=messages, tools=tools)
print("final:", r.content[0].text)
r = client.messages.create(model="gpt-6-luna", max_tokens=100, messages=[ask], tools=tools)
use = [b for b in r.content if b.type == "tool_use"][0]
print("plain tool:", use.name, use.input["city"], r.stop_reason)
try:
    client.messages.create(model="gpt-6-luna", max_tokens=100, messages=[user])
    print("no error")
except anthropic.RateLimitError as e:
    print("limit:", e.status_code, e.response.headers.get("retry-after") is not None, e.body["type"], e.body["error"]["type"])
"#;

/// The `anthropic` SDK's Messages, streamed and not, tool use, and a usage limit, through the
/// translation to the Codex backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the anthropic Python SDK"]
async fn anthropic_sdk_messages_through_codex() {
    let fake = FakeUpstream::start().await;
    fake.push(Reply::sse(answer_events(DEFAULT_TEXT)));
    fake.push(Reply::sse(answer_events(DEFAULT_TEXT)));
    fake.push(Reply::sse(tool_call_events()));
    fake.push(Reply::sse(answer_events("It is sunny in Paris.")));
    fake.push(Reply::sse(tool_call_events()));
    fake.push(Reply::usage_limit(4_102_444_800));
    let (ctx, server) = codex_server(&fake).await;
    let recorder = Recorder::start(&server.url()).await;
    let stdout = run_python_at(&ctx, &server, &recorder.url(), MESSAGES_SCRIPT).await;
    assert!(
        stdout.contains(&format!("plain: {DEFAULT_TEXT} end_turn 7")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("stream: {DEFAULT_TEXT} {DEFAULT_TEXT} 7")),
        "{stdout}"
    );
    assert!(
        stdout.contains("tool: call_1 get_weather Paris tool_use"),
        "{stdout}"
    );
    assert!(stdout.contains("final: It is sunny in Paris."), "{stdout}");
    assert!(
        stdout.contains("plain tool: get_weather Paris tool_use"),
        "{stdout}"
    );
    assert!(
        stdout.contains("limit: 429 True error rate_limit_error"),
        "{stdout}"
    );
    let posts = fake.posts();
    assert_eq!(posts.len(), 6);
    assert_tool_round_trip(&posts[3].json());
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    fixtures::check(
        "anthropic-python",
        &clients::pip_version("venv", "anthropic"),
        "messages",
        &recorder.sent(),
        &Scrub::new(&ctx),
    );
}

/// A translated chat stream is not buffered: the first chunk reaches the client while the
/// backend holds the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stream_through_codex_is_unbuffered() {
    let fake = FakeUpstream::start().await;
    let mut steps = answer_events(DEFAULT_TEXT);
    steps.insert(4, Step::Hold);
    fake.push(Reply::sse(steps));
    let (_ctx, server) = codex_server(&fake).await;
    let mut resp = http_client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&json!({"model": "gpt-6-luna", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut seen = String::new();
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(DEFAULT_TEXT) {
            let chunk = resp.chunk().await.unwrap().expect("more chunks");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(
        first.is_ok(),
        "the delta arrived before the release: {seen}"
    );
    assert!(!seen.contains("[DONE]"), "{seen}");
    fake.release();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("\"finish_reason\":\"stop\""), "{seen}");
    assert!(seen.trim_end().ends_with("data: [DONE]"), "{seen}");
}

/// Chat Completions and Messages reach a configured provider that speaks only Responses through
/// the same translation; compaction to a Chat-only provider is a clear 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_responses_provider_serves_chat_and_messages_translated() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    ctx.write_config(&format!(
        "providers:\n  resp:\n    base_url: {url}/resp/v1\n    api: openai_responses\n    api_key: sk-resp\n    models: [resp-model]\n  chatonly:\n    base_url: {url}/chat/v1\n    api: openai_chat\n    api_key: sk-chat\n    models: [chat-model]\n",
        url = fake.url()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    let post = |path: &str, body: Value| {
        http_client()
            .post(format!("{}{path}", server.url()))
            .json(&body)
            .send()
    };

    let resp = post(
        "/v1/chat/completions",
        json!({"model": "resp:resp-model", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-bitrouter-provider"], "resp");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], DEFAULT_TEXT);

    let resp = post("/v1/chat/completions", json!({"model": "resp:resp-model", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("chat.completion.chunk") && text.contains(DEFAULT_TEXT),
        "{text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    let resp = post("/v1/messages", json!({"model": "resp:resp-model", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], DEFAULT_TEXT);

    let posts = fake.posts();
    assert_eq!(posts.len(), 3);
    for post in &posts {
        assert_eq!(post.path, "/resp/v1/responses");
        assert_eq!(
            post.header("authorization").as_deref(),
            Some("Bearer sk-resp")
        );
        assert_eq!(post.json()["model"], "resp-model");
        assert_eq!(post.json()["stream"], true);
    }

    // The provider's own client error comes back in the client's shape, not verbatim.
    fake.push(Reply::json(
        400,
        json!({"error": {"type": "invalid_request_error", "message": "bad tool"}}),
    ));
    let resp = post("/v1/messages", json!({"model": "resp:resp-model", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})).await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad tool"),
        "{body}"
    );

    // Compaction is the one request with no translation to a Chat-only provider.
    let resp = post(
        "/v1/responses/compact",
        json!({"model": "chatonly:chat-model", "input": "hi"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_api", "{body}");
    assert_eq!(fake.posts().len(), 4);
}
