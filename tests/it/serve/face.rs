//! The HTTP face: Host, Origin and key checks, model lists, health and request errors, live config
//! reloads, quota headers and the access log, the setup banner.

use pretty_assertions::assert_eq;

use super::*;

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
