use serde_json::{Value, json};

use crate::support::fake_upstream::{FakeUpstream, Reply, Step, answer_events};
use crate::support::serve::{ServeProcess, codex_server, http_client};

async fn messages(server: &ServeProcess, body: &Value) -> reqwest::Response {
    http_client()
        .post(format!("{}/v1/messages", server.url()))
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

fn request(stream: bool) -> Value {
    json!({"model": "gpt-6-luna", "max_tokens": 64, "stream": stream,
        "messages": [{"role": "user", "content": "hi"}]})
}

/// An overloaded backend (503 `server_is_overloaded`, on both tries bitrouter makes) is
/// Anthropic's 529 `overloaded_error`, streamed or not, which Claude Code retries.
#[tokio::test]
async fn an_overloaded_backend_is_a_529_overloaded_error() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = codex_server(&fake).await;
    for stream in [false, true] {
        for _ in 0..2 {
            fake.push(Reply::json(
                503,
                json!({"error": {"code": "server_is_overloaded", "message": "busy"}}),
            ));
        }
        let resp = messages(&server, &request(stream)).await;
        assert_eq!(resp.status(), 529);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "overloaded_error");
    }
}

/// Mid-stream failures become one Anthropic `error` event of the type clients act on: a
/// server error is `overloaded_error`, a usage limit `rate_limit_error`.
#[tokio::test]
async fn failures_mid_stream_are_anthropic_error_events() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = codex_server(&fake).await;
    let started = answer_events("partial")[..4].to_vec();
    for (error, kind) in [
        (
            json!({"code": "server_error", "message": "boom"}),
            "overloaded_error",
        ),
        (
            json!({"type": "usage_limit_reached", "message": "limit", "resets_in_seconds": 60}),
            "rate_limit_error",
        ),
    ] {
        let mut steps = started.clone();
        steps.push(Step::Event(
            json!({"type": "response.failed", "response": {"id": "resp_1", "status": "failed", "error": error}}),
        ));
        fake.push(Reply::sse(steps));
        let resp = messages(&server, &request(true)).await;
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(text.contains("partial"), "{text}");
        let last = text.trim_end().rsplit("\n\n").next().unwrap();
        assert!(last.starts_with("event: error\n"), "{text}");
        let data: Value = serde_json::from_str(last.split_once("data: ").unwrap().1).unwrap();
        assert_eq!(data["error"]["type"], kind, "{text}");
    }
}

/// `count_tokens` answers with the tokenizer's count of the translated request, and refuses a
/// request that cannot be translated as `/v1/messages` would.
#[tokio::test]
async fn count_tokens_counts_the_translated_request() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = codex_server(&fake).await;
    let count = |body: Value| {
        let url = format!("{}/v1/messages/count_tokens", server.url());
        async move {
            http_client()
                .post(url)
                .header("anthropic-version", "2023-06-01")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let resp = count(
        json!({"model": "gpt-6-luna", "messages": [{"role": "user", "content": "hello world"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    // 3 to prime the reply, 3 for the message, "user" and "hello world".
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"input_tokens": 9})
    );
    let resp =
        count(json!({"model": "gpt-6-luna", "messages": [{"role": "tool", "content": "x"}]})).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages[0].role")
    );
    assert!(fake.posts().is_empty(), "counting asked the backend");
}

/// Thinking disabled asks for the least effort the model has; Anthropic's `max` becomes the
/// most it has (the fake's catalog: low and medium).
#[tokio::test]
async fn efforts_are_fitted_to_the_models_levels() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = codex_server(&fake).await;
    let mut disabled = request(false);
    disabled["thinking"] = json!({"type": "disabled"});
    let mut max = request(false);
    max["output_config"] = json!({"effort": "max"});
    for body in [disabled, max] {
        let resp = messages(&server, &body).await;
        assert_eq!(resp.status(), 200, "{:?}", fake.rejections());
    }
    let efforts: Vec<Value> = fake
        .posts()
        .iter()
        .map(|r| r.json()["reasoning"]["effort"].clone())
        .collect();
    assert_eq!(efforts, [json!("low"), json!("medium")]);
}
