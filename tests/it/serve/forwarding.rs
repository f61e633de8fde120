//! Requests forwarded: the Codex shaping and the stored credential, streams event by event,
//! aggregated answers, Anthropic Messages natively, keep-alive.

use pretty_assertions::assert_eq;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_shapes_codex_requests_and_attaches_the_stored_credential() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;

    let resp = http_client()
        .post(format!("{}/v1/responses", server.url()))
        .header("authorization", "Bearer client-junk")
        .header("chatgpt-account-id", "client-acc")
        .header("cookie", "session=1")
        .json(&json!({
            "model": "gpt-6-luna", "input": "say hi", "stream": true, "temperature": 0.3,
            "max_output_tokens": 50, "top_p": 1, "reasoning": {"effort": "low"},
            "prompt_cache_key": "conv-42"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    assert_eq!(header(&resp, "cache-control"), "no-cache");
    assert_eq!(header(&resp, "x-bitrouter-provider"), "openai-codex");
    assert_eq!(header(&resp, "x-bitrouter-account"), "work");
    assert_eq!(header(&resp, "x-bitrouter-model"), "gpt-6-luna");
    let text = resp.text().await.unwrap();
    assert!(text.contains(DEFAULT_TEXT), "{text}");
    assert!(text.contains("event: response.completed"), "{text}");

    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    let req = &posts[0];
    assert_eq!(req.path, "/backend-api/codex/responses");
    assert_eq!(
        req.header("authorization").as_deref(),
        Some("Bearer tok-work")
    );
    assert_eq!(
        req.header("chatgpt-account-id").as_deref(),
        Some("acc-work")
    );
    assert_eq!(req.header("originator").as_deref(), Some("bitrouter"));
    assert!(
        req.header("user-agent")
            .unwrap()
            .starts_with("bitrouter/0.")
    );
    assert_eq!(req.header("session-id").as_deref(), Some("conv-42"));
    assert_eq!(req.header("accept").as_deref(), Some("text/event-stream"));
    assert_eq!(req.header("cookie"), None);
    assert_eq!(req.headers.get_all("authorization").iter().count(), 1);
    assert_eq!(
        req.json(),
        json!({
            "model": "gpt-6-luna",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "say hi"}]}],
            "stream": true, "store": false, "instructions": "",
            "reasoning": {"effort": "low"}, "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "conv-42"
        })
    );

    // The Codex CLI's own fingerprint and session headers are forwarded.
    let resp = http_client()
        .post(format!("{}/v1/responses", server.url()))
        .header("originator", "codex_exec")
        .header("user-agent", "codex_exec/0.169.0 (Debian 12.0.0; x86_64) xterm")
        .header("session-id", "thread-1")
        .header("thread-id", "thread-1")
        .header("x-codex-turn-metadata", "{\"turn_id\":\"t\"}")
        .header("x-client-request-id", "thread-1")
        .json(&json!({"model": "openai-codex:gpt-6-luna", "stream": true,
            "input": [{"id": "msg_old", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap();
    let req = fake.posts().pop().unwrap();
    assert_eq!(req.header("originator").as_deref(), Some("codex_exec"));
    assert!(
        req.header("user-agent")
            .unwrap()
            .starts_with("codex_exec/0.169.0")
    );
    assert_eq!(req.header("session-id").as_deref(), Some("thread-1"));
    assert_eq!(req.header("thread-id").as_deref(), Some("thread-1"));
    assert_eq!(
        req.header("x-codex-turn-metadata").as_deref(),
        Some("{\"turn_id\":\"t\"}")
    );
    assert_eq!(
        req.header("x-client-request-id").as_deref(),
        Some("thread-1")
    );
    assert_eq!(req.json()["model"], "gpt-6-luna");
    assert!(req.json()["input"][0].get("id").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_streams_event_by_event_without_buffering() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;
    let mut steps = answer_events("first-part");
    // Hold the rest of the answer until the client has seen the first delta.
    steps.insert(4, Step::Hold);
    // The backend has been seen answering without a content-type.
    fake.push(Reply::Sse {
        status: 200,
        headers: vec![],
        steps,
        no_content_type: true,
    });

    let mut resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    let mut seen = String::new();
    assert!(
        read_until(&mut resp, &mut seen, "first-part", SECS).await,
        "the first delta did not arrive while the backend held the rest: {seen}"
    );
    assert!(!seen.contains("response.completed"));
    fake.release();
    assert!(
        read_until(&mut resp, &mut seen, "response.completed", SECS).await,
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_aggregates_for_clients_that_do_not_stream() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;

    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": false}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert_eq!(header(&resp, "x-bitrouter-account"), "work");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], "resp_1");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["output"][0]["content"][0]["text"], DEFAULT_TEXT);
    assert_eq!(body["usage"]["output_tokens"], 7);
    assert_eq!(fake.posts()[0].json()["stream"], true);

    // A failure inside the stream becomes an HTTP error for such clients.
    fake.push(Reply::sse(vec![
        Step::Event(json!({"type": "response.created", "response": {"id": "r"}})),
        Step::Event(json!({"type": "response.failed", "response": {"error": {"code": "context_length_exceeded", "message": "too long"}}})),
    ]));
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi"}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], "too long");
    assert_eq!(body["error"]["code"], "context_length_exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_forwards_anthropic_messages_natively() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    let config = format!(
        "providers:\n  anth:\n    base_url: {}/anth/v1\n    api: anthropic_messages\n    authorization: x-api-key\n    api_key: sk-ant-config\n    models: [claude-test]\n",
        fake.url()
    );
    let server = start(&ctx, &config).await;
    let resp = http_client()
        .post(format!("{}/v1/messages", server.url()))
        .header("x-api-key", "client-key-ignored")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "anth:claude-test", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-bitrouter-provider"), "anth");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], DEFAULT_TEXT);
    let req = &fake.posts()[0];
    assert_eq!(req.path, "/anth/v1/messages");
    assert_eq!(req.header("x-api-key").as_deref(), Some("sk-ant-config"));
    assert_eq!(
        req.header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(req.header("authorization"), None);
    assert_eq!(req.json()["model"], "claude-test");
    assert_eq!(req.json()["max_tokens"], 16);

    // Upstream trouble on /v1/messages (tried twice) is answered in Anthropic's shape.
    for _ in 0..2 {
        fake.push(Reply::json(
            529,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ));
    }
    let resp = post(
        &server,
        "/v1/messages",
        &json!({"model": "claude-test", "max_tokens": 16, "messages": []}),
    )
    .await;
    // An overloaded upstream stays "overloaded" (529), which Anthropic clients retry.
    assert_eq!(resp.status(), 529);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Overloaded")
    );
}

/// Nagle's algorithm meeting delayed ACKs adds ~40 ms per request on a reused connection
/// (DEPENDENCIES.md §7); with TCP_NODELAY on both sides a keep-alive client sees a few ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_keepalive_requests_fast() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;
    let client = http_client();
    let url = format!("{}/v1/responses", server.url());
    let mut times = Vec::new();
    for i in 0..40 {
        let body = json!({"model": "gpt-6-luna", "input": "hi", "stream": i % 2 == 0});
        let started = std::time::Instant::now();
        let resp = client.post(&url).json(&body).send().await.unwrap();
        resp.text().await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    let p90 = times[times.len() * 9 / 10];
    eprintln!(
        "keep-alive median {:?}, p90 {p90:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    assert!(p90 < Duration::from_millis(35), "p90 {p90:?}");
}
