//! Accounts and credentials: a refresh after a 401, issuer reloads, login requests, usage limits,
//! failover, route chains, round robin, passthrough.

use pretty_assertions::assert_eq;

use super::*;

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
