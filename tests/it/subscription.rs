//! The subscription used to the full, through `bitrouter serve` and the fake backend: one cache
//! key per conversation, cached tokens in each API's usage and the access log, the account with
//! the most quota left (and a conversation staying on its account), hiccups before any output
//! retried unseen, a failure after output in the client's own form, and the quota in each
//! client's convention.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::fake_upstream::{
    CACHED_TOKENS, DEFAULT_TEXT, FakeUpstream, INPUT_TOKENS, Reply, Step, answer_events,
};
use crate::support::serve::{ServeProcess, Token, http_client, seed_tokens};

const SECS: Duration = Duration::from_secs(10);

fn config(fake: &FakeUpstream, extra: &str) -> String {
    format!(
        "providers:\n  openai-codex:\n    base_url: {}\n{extra}",
        fake.codex_base()
    )
}

/// Three accounts `a`, `b`, `c` (tokens `tok-a`…, account ids `acc-a`…).
fn three_accounts(ctx: &TestContext) {
    seed_tokens(
        ctx,
        &[
            Token {
                provider: "openai-codex",
                label: "a",
                token: "tok-a",
                account_id: Some("acc-a"),
            },
            Token {
                provider: "openai-codex",
                label: "b",
                token: "tok-b",
                account_id: Some("acc-b"),
            },
            Token {
                provider: "openai-codex",
                label: "c",
                token: "tok-c",
                account_id: Some("acc-c"),
            },
        ],
    );
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// `usage.json` as a server left it: each account's 5-hour and weekly percent used.
fn seed_usage(ctx: &TestContext, used: &[(&str, f64, f64)]) {
    let accounts: Vec<Value> = used
        .iter()
        .map(|(label, five, week)| {
            json!({"provider": "openai-codex", "label": label,
                "primary_used_percent": five, "primary_window_minutes": 300, "primary_reset_at": now() + 3600,
                "secondary_used_percent": week, "secondary_window_minutes": 10080, "secondary_reset_at": now() + 86_400,
                "plan_type": "plus", "quota_source": "headers", "quota_checked_at": now(), "updated_at": now()})
        })
        .collect();
    let dir = ctx.data_home().join("bitrouter");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("usage.json"),
        json!({"version": 1, "accounts": accounts}).to_string(),
    )
    .unwrap();
}

async fn post(server: &ServeProcess, path: &str, body: &Value) -> reqwest::Response {
    http_client()
        .post(format!("{}{path}", server.url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A chat conversation's turns, each repeating the history before it.
fn chat_turn(history: &[&str]) -> Value {
    let messages: Vec<Value> = history
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            json!({"role": role, "content": text})
        })
        .collect();
    let mut all = vec![json!({"role": "system", "content": "You are terse."})];
    all.extend(messages);
    json!({"model": "gpt-6-luna", "messages": all, "stream": false})
}

/// A client that sends no ids of its own: each conversation gets one key, derived from its
/// opening, for every request; the backend's cached tokens come back in Chat's usage and in
/// the access log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_per_conversation_and_cached_tokens_in_usage_and_log() {
    let fake = FakeUpstream::start().await;
    fake.simulate_prompt_cache();
    let ctx = TestContext::new();
    three_accounts(&ctx);
    ctx.write_config(&config(&fake, ""));
    let server = ServeProcess::start(&ctx, &[]).await;

    let mut history = vec!["first question"];
    let mut last = Value::Null;
    for turn in 0..3 {
        let resp = post(&server, "/v1/chat/completions", &chat_turn(&history)).await;
        assert_eq!(resp.status(), 200);
        last = resp.json().await.unwrap();
        history.push("an answer");
        history.push(["second", "third", "fourth"][turn]);
    }
    let other = post(&server, "/v1/chat/completions", &chat_turn(&["unrelated"])).await;
    assert_eq!(other.status(), 200);
    other.text().await.unwrap();

    let posts = fake.posts();
    assert_eq!(posts.len(), 4);
    let keys: Vec<String> = posts
        .iter()
        .map(|r| r.json()["prompt_cache_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[1], keys[2]);
    assert_ne!(keys[0], keys[3]);
    for r in &posts {
        let key = r.json()["prompt_cache_key"].as_str().unwrap().to_owned();
        assert_eq!(r.header("session-id"), Some(key.clone()));
        assert_eq!(r.header("session_id"), Some(key));
    }
    // One conversation, one account.
    let accounts: Vec<String> = posts[..3]
        .iter()
        .map(|r| r.header("chatgpt-account-id").unwrap())
        .collect();
    assert!(accounts.iter().all(|a| *a == accounts[0]), "{accounts:?}");

    assert_eq!(last["usage"]["prompt_tokens"], INPUT_TOKENS);
    assert_eq!(
        last["usage"]["prompt_tokens_details"]["cached_tokens"],
        CACHED_TOKENS
    );
    assert!(
        server
            .wait_for_stderr(&format!("cached_tokens={CACHED_TOKENS}"), 2, SECS)
            .await,
        "{}",
        server.stderr()
    );

    // Anthropic's usage: the cached part apart from the rest.
    let messages = json!({"model": "gpt-6-luna", "max_tokens": 64,
        "messages": [{"role": "user", "content": "first question"}]});
    for _ in 0..2 {
        let resp = post(&server, "/v1/messages", &messages).await;
        assert_eq!(resp.status(), 200);
        last = resp.json().await.unwrap();
    }
    assert_eq!(last["usage"]["cache_read_input_tokens"], CACHED_TOKENS);
    assert_eq!(last["usage"]["input_tokens"], INPUT_TOKENS - CACHED_TOKENS);
}

/// Three accounts with different usage: the one with the most quota left serves a new
/// conversation; its live figures from the answer's headers count at once; a conversation
/// stays on its account; `route` says which account it would pick now and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headroom_picks_the_account_with_most_quota_left_and_conversations_stay() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    three_accounts(&ctx);
    // a: 10% left in its 5-hour window; b: 30% left of its week; c: 60% left.
    seed_usage(
        &ctx,
        &[("a", 90.0, 10.0), ("b", 5.0, 70.0), ("c", 20.0, 40.0)],
    );
    ctx.write_config(&config(&fake, "    accounts: [a, b, c]\n"));

    let route = ctx
        .cmd()
        .args(["route", "gpt-6-luna", "--json"])
        .output()
        .unwrap();
    assert!(route.status.success());
    let doc: Value = serde_json::from_slice(&route.stdout).unwrap();
    let pick = &doc["steps"][0]["pick"];
    assert_eq!(pick["account"], "c", "{doc}");
    assert_eq!(pick["why"], "most-headroom", "{doc}");
    let text = ctx.cmd().args(["route", "gpt-6-luna"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("would pick c") && text.contains("5h 80% left, weekly 60% left"),
        "{text}"
    );

    let status = ctx.cmd().arg("status").output().unwrap();
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.contains("openai-codex: a new conversation goes to c (it has the most quota left; strategy headroom)"),
        "{status}"
    );
    let status = ctx.cmd().args(["status", "--json"]).output().unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["picks"][0]["pick"]["account"], "c", "{status}");

    let server = ServeProcess::start(&ctx, &[]).await;
    // c's answer says it is nearly spent now.
    fake.set_quota("acc-c", 99.0, 50.0);
    let conversation = json!({"model": "gpt-6-luna", "input": "conversation one", "stream": true});
    let resp = post(&server, "/v1/responses", &conversation).await;
    assert_eq!(header(&resp, "x-bitrouter-account"), "c");
    assert_eq!(header(&resp, "x-codex-primary-used-percent"), "99");
    resp.text().await.unwrap();

    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "conversation two", "stream": true}),
    )
    .await;
    assert_eq!(header(&resp, "x-bitrouter-account"), "b");
    resp.text().await.unwrap();

    // The first conversation stays on c while c can serve it.
    let resp = post(&server, "/v1/responses", &conversation).await;
    assert_eq!(header(&resp, "x-bitrouter-account"), "c");
    resp.text().await.unwrap();

    // c hits its limit: the conversation moves on, to the best of the others.
    fake.push(Reply::usage_limit(now() + 600));
    let resp = post(&server, "/v1/responses", &conversation).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-bitrouter-account"), "b");
    resp.text().await.unwrap();
    let bearers = fake.post_bearers();
    assert_eq!(bearers, ["tok-c", "tok-b", "tok-c", "tok-c", "tok-b"]);
}

/// Before any output, a 503, a stream that dies and a `response.failed` for an overloaded
/// server are tried again — the same account once more, then the next — and the client sees
/// only the answer; when every try fails it sees the last failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hiccups_before_any_output_are_retried_unseen() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    three_accounts(&ctx);
    ctx.write_config(&config(
        &fake,
        "    accounts: [a, b]\n    strategy: failover\n",
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    let body = json!({"model": "gpt-6-luna", "input": "hi", "stream": true});

    // One 503: the same account again.
    fake.push(Reply::json(
        503,
        json!({"error": {"code": "server_is_overloaded", "message": "busy"}}),
    ));
    let resp = post(&server, "/v1/responses", &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-bitrouter-account"), "a");
    let text = resp.text().await.unwrap();
    assert!(
        text.contains(DEFAULT_TEXT) && !text.contains("event: error"),
        "{text}"
    );
    assert_eq!(fake.post_bearers(), ["tok-a", "tok-a"]);

    // Three hiccups of three kinds: a twice, then b, which fails once and then answers.
    let created = json!({"type": "response.created", "response": {"id": "r", "status": "in_progress", "output": []}});
    fake.push(Reply::json(502, json!({"detail": "bad gateway"})));
    fake.push(Reply::sse(vec![Step::Event(created.clone()), Step::Die]));
    fake.push(Reply::sse(vec![
        Step::Event(created),
        Step::Event(
            json!({"type": "response.failed", "response": {"id": "r", "status": "failed",
            "error": {"code": "server_is_overloaded", "message": "try again"}}}),
        ),
    ]));
    let resp = http_client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&json!({"model": "gpt-6-luna", "messages": [{"role": "user", "content": "hi"}], "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-bitrouter-account"), "b");
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("hi from") && !text.contains("\"error\""),
        "{text}"
    );
    assert_eq!(
        fake.post_bearers()[2..],
        ["tok-a", "tok-a", "tok-b", "tok-b"]
    );

    // Every try fails: the client gets the failure, after a bounded number of tries.
    for _ in 0..8 {
        fake.push(Reply::json(
            500,
            json!({"error": {"code": "server_error", "message": "boom"}}),
        ));
    }
    let before = fake.posts().len();
    let resp = post(&server, "/v1/responses", &body).await;
    assert_eq!(resp.status(), 502);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"]["message"].as_str().unwrap().contains("boom"),
        "{err}"
    );
    assert_eq!(
        fake.posts().len() - before,
        4,
        "two tries on each of two accounts"
    );
}

/// Once output has reached the client a failure is not retried (the client has part of the
/// answer): it ends the answer with an error in the client's own API's form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_output_reaches_the_client_in_its_own_form() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    three_accounts(&ctx);
    ctx.write_config(&config(&fake, ""));
    let server = ServeProcess::start(&ctx, &[]).await;
    let dies_midway = || {
        let mut steps = answer_events("partial answer");
        steps.truncate(4); // created, item added, part added, one delta
        steps.push(Step::Die);
        Reply::sse(steps)
    };

    fake.push(dies_midway());
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    let text = tokio::time::timeout(SECS, resp.text())
        .await
        .unwrap()
        .unwrap();
    assert!(text.contains("partial answer"), "{text}");
    assert!(text.contains("event: error"), "{text}");

    fake.push(dies_midway());
    let resp = post(
        &server,
        "/v1/chat/completions",
        &json!({"model": "gpt-6-luna", "messages": [{"role": "user", "content": "hi"}], "stream": true}),
    )
    .await;
    let text = tokio::time::timeout(SECS, resp.text())
        .await
        .unwrap()
        .unwrap();
    assert!(text.contains("partial answer"), "{text}");
    let error_chunk = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v.get("error").is_some())
        .unwrap_or_else(|| panic!("no error chunk in: {text}"));
    assert!(error_chunk["error"]["message"].is_string(), "{error_chunk}");

    fake.push(dies_midway());
    let resp = post(
        &server,
        "/v1/messages",
        &json!({"model": "gpt-6-luna", "max_tokens": 64, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    let text = tokio::time::timeout(SECS, resp.text())
        .await
        .unwrap()
        .unwrap();
    assert!(text.contains("partial answer"), "{text}");
    let error_event = text
        .split("\n\n")
        .find(|e| e.starts_with("event: error"))
        .unwrap_or_else(|| panic!("no error event in: {text}"));
    let data: Value = serde_json::from_str(
        error_event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["type"], "error", "{data}");
    assert!(data["error"]["type"].is_string(), "{data}");

    assert_eq!(fake.posts().len(), 3, "no request was sent twice");
}

/// Claude Code's convention: a Messages answer served by a Codex account carries Anthropic's
/// unified rate-limit headers, from that account's live quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_clients_get_the_serving_accounts_quota_in_their_headers() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    three_accounts(&ctx);
    ctx.write_config(&config(&fake, "    accounts: [a]\n"));
    let server = ServeProcess::start(&ctx, &[]).await;
    fake.set_quota("acc-a", 85.0, 42.0);
    let resp = post(
        &server,
        "/v1/messages",
        &json!({"model": "gpt-6-luna", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-5h-utilization"),
        "0.85"
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-7d-utilization"),
        "0.42"
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-status"),
        "allowed_warning"
    );
    assert_eq!(
        header(&resp, "anthropic-ratelimit-unified-representative-claim"),
        "five_hour"
    );
    assert!(!header(&resp, "anthropic-ratelimit-unified-5h-reset").is_empty());
    resp.text().await.unwrap();
}
