use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::fake_issuer::FakeIssuer;
use crate::support::fake_upstream::{DEFAULT_TEXT, FakeUpstream, Reply, Step, answer_events};
use crate::support::serve::{ServeProcess, Token, http_client, seed_tokens};

const SECS: Duration = Duration::from_secs(10);

fn work_token() -> Token<'static> {
    Token {
        provider: "openai-codex",
        label: "work",
        token: "tok-work",
        account_id: Some("acc-work"),
    }
}

/// A config with the Codex provider pointed at the fake, plus `extra` YAML under the provider.
fn codex_config(fake: &FakeUpstream, extra: &str) -> String {
    format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    timeouts: {{connect: 2, idle: 10}}\n{extra}",
        fake.codex_base()
    )
}

async fn start(ctx: &TestContext, config: &str) -> ServeProcess {
    ctx.write_config(config);
    ServeProcess::start(ctx, &[]).await
}

/// Reads the response body until `needle` appears (or the stream ends / `within` passes).
async fn read_until(
    resp: &mut reqwest::Response,
    seen: &mut String,
    needle: &str,
    within: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !seen.contains(needle) {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None) | Err(_)) | Err(_) => return seen.contains(needle),
        }
    }
    true
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn post(server: &ServeProcess, path: &str, body: &Value) -> reqwest::Response {
    http_client()
        .post(format!("{}{path}", server.url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

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
async fn serve_refreshes_once_after_a_401_and_retries() {
    let fake = FakeUpstream::start().await;
    let issuer = start_issuer().await;
    issuer.add_refresh_token("rt-work");
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, &issuer_config(&issuer))).await;
    fake.push(Reply::json(401, json!({"detail": "Unauthorized"})));

    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains(DEFAULT_TEXT));
    let bearers = fake.post_bearers();
    assert_eq!(bearers.len(), 2, "{bearers:?}");
    assert_eq!(bearers[0], "tok-work");
    assert_ne!(bearers[1], "tok-work", "the retry uses the refreshed token");
    let counts = issuer.counts();
    assert_eq!((counts.refreshes, counts.reused), (1, 0));
    // The rotated tokens were saved before use.
    let stored = std::fs::read_to_string(ctx.token_file()).unwrap();
    assert!(
        !stored.contains("\"rt-work\""),
        "refresh token rotated in the store"
    );
    drop_off_runtime(issuer).await;
}

/// A fake issuer whose own runtime must be built and dropped outside the test's runtime.
async fn start_issuer() -> FakeIssuer {
    tokio::task::spawn_blocking(FakeIssuer::start)
        .await
        .unwrap()
}

async fn drop_off_runtime(issuer: FakeIssuer) {
    tokio::task::spawn_blocking(move || drop(issuer))
        .await
        .unwrap();
}

fn issuer_config(issuer: &FakeIssuer) -> String {
    format!("    oauth:\n      issuer: {}\n", issuer.url)
}

/// A reload that changes `oauth.issuer` moves the next token refresh to the new issuer; one
/// that changes `store` says a restart is needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reload_sends_the_next_refresh_to_the_new_issuer() {
    let fake = FakeUpstream::start().await;
    let (old, new) = (start_issuer().await, start_issuer().await);
    // Both issuers would accept the refresh token: only the call counts tell them apart.
    old.add_refresh_token("rt-work");
    new.add_refresh_token("rt-work");
    let ctx = TestContext::new();
    // No account yet, so nothing refreshes before the reload (the catalog warm-up included).
    let server = start(&ctx, &codex_config(&fake, &issuer_config(&old))).await;

    ctx.write_config(&codex_config(&fake, &issuer_config(&new)));
    server.signal("HUP");
    assert!(
        server
            .wait_for_stderr("configuration reloaded", 1, SECS)
            .await,
        "{}",
        server.stderr()
    );
    // Now an account whose access token is due.
    seed_tokens(&ctx, &[work_token()]);
    let path = ctx.token_file();
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["credentials"][0]["expires_at"] = json!(1_790_000_000);
    std::fs::write(&path, doc.to_string()).unwrap();

    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", server.stderr());
    resp.text().await.unwrap();
    assert_eq!(old.counts().refreshes, 0, "the old issuer was asked");
    assert_eq!(new.counts().refreshes, 1);
    let bearers = fake.post_bearers();
    assert_eq!(bearers.len(), 1);
    assert_ne!(
        bearers[0], "tok-work",
        "the request used the refreshed token"
    );

    // Another store cannot be swapped in live: the server says so and keeps the file.
    ctx.write_config(&format!(
        "store: keyring\n{}",
        codex_config(&fake, &issuer_config(&new))
    ));
    server.signal("HUP");
    assert!(
        server
            .wait_for_stderr(
                "store is now keyring; restart bitrouter serve to use it (still using file)",
                1,
                SECS
            )
            .await,
        "{}",
        server.stderr()
    );
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", server.stderr());
    resp.text().await.unwrap();
    assert_eq!(
        new.counts().refreshes,
        1,
        "the refreshed token is still stored"
    );
    drop_off_runtime(old).await;
    drop_off_runtime(new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_asks_for_a_login_when_a_refresh_cannot_help() {
    let fake = FakeUpstream::start().await;
    // The issuer does not know the stored refresh token: the refresh fails permanently.
    let issuer = start_issuer().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, &issuer_config(&issuer))).await;

    fake.push(Reply::json(401, json!({"detail": "Unauthorized"})));
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "login_required");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("bitrouter login openai-codex --label work"),
        "{message}"
    );
    assert!(!message.contains("tok-work"));
    assert_eq!(fake.posts().len(), 1);
    assert_eq!(issuer.counts().refreshes, 1);
    drop_off_runtime(issuer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_429_with_retry_after_when_the_only_account_is_exhausted() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    fake.push(Reply::usage_limit(now + 120));
    for _ in 0..2 {
        let resp = post(
            &server,
            "/v1/responses",
            &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
        )
        .await;
        assert_eq!(resp.status(), 429);
        let retry: i64 = header(&resp, "retry-after").parse().unwrap();
        assert!((100..=121).contains(&retry), "retry-after {retry}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["type"], "usage_limit_reached");
    }
    // The cooling account was not asked again, and never told to log in.
    assert_eq!(fake.posts().len(), 1);
    assert!(!server.stderr().contains("login_required"));

    // The cooldown reaches usage.json for `status` and `route` to show.
    let usage = ctx.data_home().join("bitrouter").join("usage.json");
    let deadline = std::time::Instant::now() + SECS;
    let file = loop {
        if let Ok(text) = std::fs::read_to_string(&usage)
            && text.contains("cooling_until")
        {
            break bitrouter::quota::file::load(&ctx.data_home().join("bitrouter")).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "usage.json not written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let entry = &file.accounts[0];
    assert_eq!(entry.label.as_str(), "work");
    assert_eq!(entry.cooling_until, Some(now + 120));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_fails_over_to_the_next_account_and_skips_the_cooling_one() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(
        &ctx,
        &[
            work_token(),
            Token {
                provider: "openai-codex",
                label: "personal",
                token: "tok-personal",
                account_id: Some("acc-personal"),
            },
        ],
    );
    let server = start(
        &ctx,
        &codex_config(&fake, "    accounts: [work, personal]\n"),
    )
    .await;
    let resets = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 3600;

    fake.push(Reply::usage_limit(resets));
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-bitrouter-account"), "personal");
    assert!(resp.text().await.unwrap().contains(DEFAULT_TEXT));

    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "again", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-bitrouter-account"), "personal");
    resp.text().await.unwrap();
    assert_eq!(
        fake.post_bearers(),
        vec!["tok-work", "tok-personal", "tok-personal"]
    );
    assert_eq!(
        fake.posts()[1].header("chatgpt-account-id").as_deref(),
        Some("acc-personal")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_fails_over_on_a_usage_limit_inside_the_stream() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(
        &ctx,
        &[
            work_token(),
            Token {
                provider: "openai-codex",
                label: "personal",
                token: "tok-personal",
                account_id: None,
            },
        ],
    );
    let server = start(
        &ctx,
        &codex_config(&fake, "    accounts: [work, personal]\n"),
    )
    .await;
    fake.push(Reply::sse(vec![
        Step::Event(json!({"type": "response.created", "response": {"id": "r0"}})),
        Step::Event(json!({"type": "response.failed", "response": {"error": {"type": "usage_limit_reached", "message": "limit", "resets_in_seconds": 600}}})),
    ]));
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-bitrouter-account"), "personal");
    let text = resp.text().await.unwrap();
    assert!(text.contains(DEFAULT_TEXT));
    assert!(!text.contains("usage_limit_reached"), "{text}");
    assert_eq!(fake.post_bearers(), vec!["tok-work", "tok-personal"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_route_chain_falls_through_a_503_to_its_next_entry() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let config = format!(
        "{}  backup:\n    base_url: {}/backup/v1\n    api: openai_responses\n    auth_mode: none\nroutes:\n  fast: [openai-codex:gpt-6-luna, backup:model-b]\n",
        codex_config(&fake, ""),
        fake.url()
    );
    let server = start(&ctx, &config).await;
    // Overloaded twice: the one account is tried again once, then the next entry.
    for _ in 0..2 {
        fake.push(Reply::json(
            503,
            json!({"error": {"code": "server_is_overloaded", "message": "busy"}}),
        ));
    }

    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "fast", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-bitrouter-provider"), "backup");
    assert_eq!(header(&resp, "x-bitrouter-model"), "model-b");
    assert_eq!(header(&resp, "x-bitrouter-account"), "none");
    assert!(resp.text().await.unwrap().contains(DEFAULT_TEXT));
    let posts = fake.posts();
    assert_eq!(posts.len(), 3);
    assert_eq!(posts[1].path, "/backend-api/codex/responses");
    assert_eq!(posts[2].path, "/backup/v1/responses");
    assert_eq!(posts[2].json()["model"], "model-b");
    // Native forwarding: the body is the client's, only the model replaced.
    assert_eq!(posts[2].json()["input"], "hi");
    assert_eq!(posts[2].header("authorization"), None);

    // A 4xx the client caused never fails over.
    fake.push(Reply::json(
        400,
        json!({"detail": "Unsupported parameter: foo"}),
    ));
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "fast", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Unsupported parameter: foo");
    assert_eq!(fake.posts().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_passthrough_forwards_the_clients_own_key() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    let config = format!(
        "providers:\n  byok:\n    base_url: {}/byok/v1\n    auth_mode: passthrough\n    api_key: sk-configured\n    models: [byok-model]\n",
        fake.url()
    );
    let server = start(&ctx, &config).await;

    // A deliberately wrong key is rejected upstream: proof that it was not replaced.
    fake.push(Reply::json(
        401,
        json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}),
    ));
    let resp = http_client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .bearer_auth("sk-wrong")
        .json(&json!({"model": "byok-model", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(header(&resp, "x-bitrouter-account"), "client");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Incorrect API key provided");
    assert_eq!(fake.post_bearers(), vec!["sk-wrong"]);

    // Without a key of its own, the configured one is used.
    let resp = post(
        &server,
        "/v1/chat/completions",
        &json!({"model": "byok-model", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-bitrouter-account"), "config");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], DEFAULT_TEXT);
    assert_eq!(fake.post_bearers(), vec!["sk-wrong", "sk-configured"]);
    assert_eq!(fake.posts()[1].path, "/byok/v1/chat/completions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_codex_passthrough_forwards_the_codex_clis_login() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "    auth_mode: passthrough\n")).await;

    let resp = http_client()
        .post(format!("{}/v1/responses", server.url()))
        .bearer_auth("client-jwt")
        .header("chatgpt-account-id", "client-acc")
        .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-bitrouter-account"), "client");
    resp.text().await.unwrap();
    let req = &fake.posts()[0];
    assert_eq!(
        req.header("authorization").as_deref(),
        Some("Bearer client-jwt")
    );
    assert_eq!(
        req.header("chatgpt-account-id").as_deref(),
        Some("client-acc")
    );

    // Without one, the stored sign-in is the fallback.
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(header(&resp, "x-bitrouter-account"), "work");
    resp.text().await.unwrap();
    assert_eq!(fake.post_bearers(), vec!["client-jwt", "tok-work"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_ends_a_broken_stream_with_an_error_event() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;
    let mut steps = answer_events("partial");
    steps.truncate(4);
    steps.push(Step::Die);
    fake.push(Reply::sse(steps));

    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = tokio::time::timeout(SECS, resp.text())
        .await
        .expect("the stream must end, not hang")
        .unwrap();
    assert!(text.contains("partial"));
    let tail = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(tail.starts_with("event: error\ndata: "), "{text}");
    let data: Value =
        serde_json::from_str(tail.trim_start_matches("event: error\ndata: ")).unwrap();
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["code"], "upstream_disconnected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_times_out_a_stalled_upstream() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let config = format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    timeouts: {{connect: 2, idle: 1}}\n",
        fake.codex_base()
    );
    let server = start(&ctx, &config).await;

    // Stalled mid-stream: an error event after the idle timeout.
    let mut steps = answer_events("slow");
    steps.truncate(4);
    steps.push(Step::Stall);
    fake.push(Reply::sse(steps));
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    let text = tokio::time::timeout(SECS, resp.text())
        .await
        .expect("no hang")
        .unwrap();
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("upstream_timeout"), "{text}");

    // Stalled before answering, and again when tried again: 504.
    fake.push(Reply::Stall);
    fake.push(Reply::Stall);
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 504);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_releases_the_upstream_when_the_client_disconnects() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;
    let mut steps = answer_events("before-disconnect");
    steps.truncate(4);
    steps.push(Step::Hold);
    steps.push(Step::Trickle);
    fake.push(Reply::sse(steps));

    let mut resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    let mut seen = String::new();
    assert!(read_until(&mut resp, &mut seen, "before-disconnect", SECS).await);
    drop(resp);
    fake.release();
    assert!(
        fake.wait_dropped(1, SECS).await,
        "the upstream stream was not released after the client left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_foreign_hosts_origins_and_missing_keys() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let config = format!(
        "server:\n  api_key: k-local\n  allowed_origins: ['http://localhost:3000']\n{}",
        codex_config(&fake, "")
    );
    let server = start(&ctx, &config).await;
    let url = format!("{}/v1/responses", server.url());
    let body = json!({"model": "gpt-6-luna", "input": "hi", "stream": true});
    let client = http_client();

    let resp = client
        .post(&url)
        .header("host", format!("evil.example:{}", server.port))
        .header("x-bitrouter-key", "k-local")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "host_not_allowed");

    let resp = client
        .post(&url)
        .header("origin", "https://evil.example")
        .header("x-bitrouter-key", "k-local")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    let resp = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .post(&url)
        .bearer_auth("k-wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(fake.posts().is_empty());

    for (name, value) in [
        ("x-bitrouter-key", "k-local"),
        ("authorization", "Bearer k-local"),
        ("x-api-key", "k-local"),
    ] {
        let resp = client
            .post(&url)
            .header(name, value)
            .header("origin", "http://localhost:3000")
            .header("host", format!("localhost:{}", server.port))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
        assert_eq!(
            header(&resp, "access-control-allow-origin"),
            "http://localhost:3000"
        );
        resp.text().await.unwrap();
    }
    // A page on an allowed origin gets CORS answers; others are refused before any work.
    let resp = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, x-bitrouter-key",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        "http://localhost:3000"
    );
    assert_eq!(
        header(&resp, "access-control-allow-headers"),
        "content-type, x-bitrouter-key"
    );
    let resp = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(header(&resp, "access-control-allow-origin"), "");

    // The local key never travels upstream.
    for req in fake.posts() {
        for (_, value) in &req.headers {
            assert!(!value.to_str().unwrap_or("").contains("k-local"));
        }
        assert_eq!(
            req.header("authorization").as_deref(),
            Some("Bearer tok-work")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_lists_models_in_both_shapes() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let config = format!(
        "{}  local:\n    base_url: {}/local/v1\n    auth_mode: none\n    models: [llama-local]\n",
        codex_config(&fake, ""),
        fake.url()
    );
    let server = start(&ctx, &config).await;
    let client = http_client();

    let doc: Value = client
        .get(format!("{}/v1/models", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["object"], "list");
    let data = doc["data"].as_array().unwrap();
    let find = |id: &str| data.iter().find(|m| m["id"] == id).cloned();
    let luna = find("gpt-6-luna").expect("codex catalog model listed");
    assert_eq!(luna["object"], "model");
    assert_eq!(luna["owned_by"], "openai-codex");
    assert_eq!(luna["metadata"]["provider"]["id"], "openai-codex");
    assert_eq!(find("llama-local").unwrap()["owned_by"], "local");
    assert_eq!(find("remote-model").unwrap()["owned_by"], "local");
    assert!(doc.get("models").is_none());

    let doc: Value = client
        .get(format!("{}/v1/models?client_version=0.169.0", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let models = doc["models"].as_array().unwrap();
    assert_eq!(models[0]["slug"], "gpt-6-luna");
    assert_eq!(models[1]["slug"], "gpt-6.1-sol");

    let catalog = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/backend-api/codex/models")
        .expect("the backend catalog was fetched");
    assert_eq!(catalog.query.as_deref(), Some("client_version=0.169.0"));
    assert_eq!(
        catalog.header("authorization").as_deref(),
        Some("Bearer tok-work")
    );
    assert_eq!(
        catalog.header("chatgpt-account-id").as_deref(),
        Some("acc-work")
    );

    // A bare name from the live catalog routes to its provider.
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6.1-sol", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(header(&resp, "x-bitrouter-provider"), "openai-codex");
    resp.text().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_health_unknown_paths_and_request_errors() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let config = format!(
        "server:\n  max_body_bytes: 2000\n{}",
        codex_config(&fake, "")
    );
    let server = start(&ctx, &config).await;
    let client = http_client();

    let resp = client
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let health: Value = resp.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["providers"], json!(["openai-codex"]));
    assert_eq!(health["accounts"], 1);
    assert!(!health.to_string().contains("tok-work"));

    let resp = client
        .get(format!("{}/v2/nothing", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("GET /v2/nothing"), "{message}");
    assert!(message.contains("POST /v1/responses"), "{message}");
    assert!(message.contains("GET /health"), "{message}");

    let resp = client
        .get(format!("{}/v1/responses", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 426);

    let big = "x".repeat(5000);
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": big}),
    )
    .await;
    assert_eq!(resp.status(), 413);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "request_too_large"
    );

    let resp = client
        .post(format!("{}/v1/responses", server.url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_json"
    );

    let resp = client
        .post(format!("{}/v1/responses", server.url()))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let resp = post(&server, "/v1/responses", &json!({"input": "no model"})).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "missing_model"
    );

    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "nope:gpt", "input": "x"}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "unknown_provider"
    );

    // Remote compaction (Codex CLI) is forwarded as JSON, unshaped, with the stored sign-in.
    let resp = post(
        &server,
        "/v1/responses/compact",
        &json!({"model": "gpt-6-luna", "input": [], "instructions": "x"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-bitrouter-account"), "work");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["output"][0]["content"][0]["text"], "compacted summary");
    let compact = fake.posts().pop().unwrap();
    assert_eq!(compact.path, "/backend-api/codex/responses/compact");
    assert_eq!(
        compact.header("authorization").as_deref(),
        Some("Bearer tok-work")
    );
    assert_eq!(
        compact.header("accept").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        compact.json(),
        json!({"model": "gpt-6-luna", "input": [], "instructions": "x"})
    );

    // Another API to openai-codex: translated to a streamed Responses request and back.
    let resp = post(&server, "/v1/messages", &json!({"model": "gpt-6-luna", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status(), 200);
    let message: Value = resp.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"][0]["text"], DEFAULT_TEXT);
    let posts = fake.posts();
    assert_eq!(posts.len(), 2);
    let sent = posts[1].json();
    assert_eq!(posts[1].path, "/backend-api/codex/responses");
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["store"], false);
    assert_eq!(sent["model"], "gpt-6-luna");

    // count_tokens is estimated locally for a provider that does not speak Messages.
    let resp = post(
        &server,
        "/v1/messages/count_tokens",
        &json!({"model": "gpt-6-luna", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let count: Value = resp.json().await.unwrap();
    assert!(count["input_tokens"].as_u64().unwrap() > 0, "{count}");
    assert_eq!(fake.posts().len(), 2, "count_tokens made no upstream call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reloads_config_live_and_keeps_it_on_an_invalid_edit() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let with_header =
        |value: &str| codex_config(&fake, &format!("    headers: {{x-test: {value}}}\n"));
    let server = start(&ctx, &with_header("one")).await;
    let body = json!({"model": "gpt-6-luna", "input": "hi", "stream": true});

    post(&server, "/v1/responses", &body)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(fake.posts()[0].header("x-test").as_deref(), Some("one"));

    let reloaded = server.count_in_stderr("configuration reloaded");
    ctx.write_config(&format!("{}# changed\n", with_header("two")));
    assert!(
        server
            .wait_for_stderr("configuration reloaded", reloaded + 1, SECS)
            .await,
        "{}",
        server.stderr()
    );
    post(&server, "/v1/responses", &body)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(fake.posts()[1].header("x-test").as_deref(), Some("two"));

    let refused = server.count_in_stderr("configuration not reloaded");
    ctx.write_config("providers:\n  openai-codex:\n    bogus_key: 1\n");
    assert!(
        server
            .wait_for_stderr("configuration not reloaded", refused + 1, SECS)
            .await,
        "{}",
        server.stderr()
    );
    assert!(server.stderr().contains("bogus_key"), "{}", server.stderr());
    let resp = post(&server, "/v1/responses", &body).await;
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap();
    assert_eq!(fake.posts()[2].header("x-test").as_deref(), Some("two"));

    // SIGHUP reloads too.
    ctx.write_config(&with_header("three"));
    server.signal("HUP");
    assert!(
        server
            .wait_for_stderr("configuration reloaded (SIGHUP)", 1, SECS)
            .await,
        "{}",
        server.stderr()
    );
    post(&server, "/v1/responses", &body)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(fake.posts()[3].header("x-test").as_deref(), Some("three"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_relays_quota_headers_and_logs_each_request() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;
    fake.push(Reply::Sse {
        status: 200,
        headers: vec![
            ("x-codex-primary-used-percent".into(), "42.5".into()),
            ("x-codex-primary-window-minutes".into(), "300".into()),
            ("x-codex-primary-reset-at".into(), "4102444800".into()),
            ("x-codex-plan-type".into(), "pro".into()),
        ],
        steps: answer_events("quota"),
        no_content_type: false,
    });
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(header(&resp, "x-codex-primary-used-percent"), "42.5");
    resp.text().await.unwrap();

    let dir = ctx.data_home().join("bitrouter");
    let deadline = std::time::Instant::now() + SECS;
    loop {
        let file = bitrouter::quota::file::load(&dir).unwrap();
        if let Some(entry) = file.accounts.first() {
            assert_eq!(entry.primary_used_percent, Some(42.5));
            assert_eq!(entry.primary_window_minutes, Some(300));
            assert_eq!(entry.plan_type.as_deref(), Some("pro"));
            assert_eq!(entry.cooling_until, None);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "usage.json not written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert!(server.wait_for_stderr("path=/v1/responses", 1, SECS).await);
    let stderr = server.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("path=/v1/responses"))
        .unwrap();
    for part in [
        "method=POST",
        "model=gpt-6-luna",
        "provider=openai-codex",
        "account=work",
        "status=200",
        "latency_ms=",
        "input_tokens=11",
        "output_tokens=7",
    ] {
        assert!(line.contains(part), "{part} missing in: {line}");
    }
    assert!(!stderr.contains("tok-work"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_lets_open_streams_finish_on_sigterm() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let mut server = start(&ctx, &codex_config(&fake, "")).await;
    let mut steps = answer_events("graceful");
    steps.insert(4, Step::Hold);
    fake.push(Reply::sse(steps));

    let mut resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    let mut seen = String::new();
    assert!(read_until(&mut resp, &mut seen, "graceful", SECS).await);
    server.signal("TERM");
    assert!(
        server.wait_for_stderr("shutting down", 1, SECS).await,
        "{}",
        server.stderr()
    );
    fake.release();
    assert!(
        read_until(&mut resp, &mut seen, "response.completed", SECS).await,
        "{seen}"
    );
    let status = server
        .wait_exit(SECS)
        .await
        .expect("serve exits after the stream");
    assert!(status.success(), "{status}: {}", server.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_setup_and_refuses_an_open_listen_without_a_key() {
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = ServeProcess::start(&ctx, &[]).await;
    assert!(server.wait_for_stderr("Ctrl-C stops", 1, SECS).await);
    let stderr = server.stderr();
    assert!(stderr.contains("openai-codex: work"), "{stderr}");
    assert!(
        stderr.contains(&format!("base_url = \"{}/v1\"", server.url())),
        "{stderr}"
    );
    assert!(stderr.contains("wire_api = \"responses\""), "{stderr}");
    assert!(stderr.contains("requires_openai_auth = true"), "{stderr}");
    drop(server);

    let out = ctx
        .cmd()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .timeout(SECS)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.api_key"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_round_robin_rotates_the_starting_account() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(
        &ctx,
        &[
            work_token(),
            Token {
                provider: "openai-codex",
                label: "personal",
                token: "tok-personal",
                account_id: None,
            },
        ],
    );
    let server = start(
        &ctx,
        &codex_config(
            &fake,
            "    accounts: [work, personal]\n    strategy: round-robin\n",
        ),
    )
    .await;
    // Four conversations take turns; a conversation's next request stays on its account.
    for i in 0..4 {
        let resp = post(
            &server,
            "/v1/responses",
            &json!({"model": "gpt-6-luna", "input": format!("conversation {i}"), "stream": true}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap();
    }
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "conversation 1", "stream": true}),
    )
    .await;
    resp.text().await.unwrap();
    assert_eq!(
        fake.post_bearers(),
        vec![
            "tok-work",
            "tok-personal",
            "tok-work",
            "tok-personal",
            "tok-personal"
        ]
    );

    // A pinned account is used as asked.
    let resp = http_client()
        .post(format!("{}/v1/responses", server.url()))
        .header("x-bitrouter-account", "personal")
        .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "x-bitrouter-account"), "personal");
    resp.text().await.unwrap();
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "openai-codex@work:gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(header(&resp, "x-bitrouter-account"), "work");
    resp.text().await.unwrap();
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "openai-codex@nobody:gpt-6-luna", "input": "hi"}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "unknown_account"
    );
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
