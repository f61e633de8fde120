//! The request history end to end: requests through the real `serve` against the fake backend
//! (several clients, a failover, a usage limit, errors) become rows; `usage` totals equal the
//! token counts the fake reported, exactly; quota snapshots are kept and `status` draws them;
//! `history: off` stores nothing. No row ever holds prompt or answer text or a token.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::fake_upstream::{FakeUpstream, Reply};
use crate::support::history::{
    answer_with, history_file, open, responses_body, rows, send, wait_rows, with_quota,
};
use crate::support::serve::{ServeProcess, Token, seed_tokens};

/// A world with two Codex accounts, `work` then `home`, in front of `fake`.
fn two_accounts(fake: &FakeUpstream) -> TestContext {
    let ctx = TestContext::new();
    seed_tokens(
        &ctx,
        &[
            Token {
                provider: "openai-codex",
                label: "work",
                token: "tok-work-secret",
                account_id: Some("acc-work"),
            },
            Token {
                provider: "openai-codex",
                label: "home",
                token: "tok-home-secret",
                account_id: Some("acc-home"),
            },
        ],
    );
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    accounts: [work, home]\n",
        fake.codex_base()
    ));
    ctx
}

fn usage_json(ctx: &TestContext, args: &[&str]) -> Value {
    let out = ctx
        .cmd()
        .arg("usage")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn requests_from_several_clients_become_rows_and_usage_totals_match_exactly() {
    let fake = FakeUpstream::start().await;
    let ctx = two_accounts(&fake);
    let server = ServeProcess::start(&ctx, &[]).await;
    let model = "openai-codex:gpt-6.1-sol";
    let prompt = "the secret prompt text";

    // 1. The openai Python SDK, streamed; the answer carries quota headers.
    fake.push(with_quota(
        answer_with("the secret answer", 100, 60, 20, 5),
        25,
        10,
    ));
    let s1 = send(
        &server,
        "/v1/responses",
        "OpenAI/Python 3.60.0",
        &[],
        &responses_body(model, true, prompt),
    )
    .await;
    // 2. Claude Code on the Messages API (translated), streamed.
    fake.push(Reply::sse(answer_with(
        "the secret answer",
        200,
        150,
        30,
        0,
    )));
    let messages = json!({"model": model, "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": prompt}]});
    let s2 = send(
        &server,
        "/v1/messages",
        "claude-cli/2.1.332 (external, cli)",
        &[],
        &messages,
    )
    .await;
    // 3. The Codex CLI (originator), not streamed.
    fake.push(Reply::sse(answer_with("the secret answer", 50, 0, 10, 2)));
    let s3 = send(
        &server,
        "/v1/responses",
        "codex_cli_rs/0.171.0 (Debian 12; x86_64)",
        &[("originator", "codex_cli_rs")],
        &responses_body(model, false, prompt),
    )
    .await;
    // 4. curl without a model: refused before any upstream request.
    let s4 = send(
        &server,
        "/v1/responses",
        "curl/8.5.0",
        &[],
        &json!({"input": prompt}),
    )
    .await;
    // 5. The Vercel AI SDK on Chat Completions, pinned to `work`; the backend fails, and again
    // on the retry (two tries on one account).
    for _ in 0..2 {
        fake.push(Reply::json(
            500,
            json!({"error": {"message": "the backend broke", "code": "server_error"}}),
        ));
    }
    let chat = json!({"model": model, "messages": [{"role": "user", "content": prompt}]});
    let s5 = send(
        &server,
        "/v1/chat/completions",
        "ai-sdk-openai/4.0.118 ai/7.0.173 runtime/node.js/v24",
        &[("x-bitrouter-account", "work")],
        &chat,
    )
    .await;
    // 6. A usage limit on `work`: `home` takes over.
    let far = 4_102_444_800_i64;
    fake.push(Reply::usage_limit(far));
    fake.push(Reply::sse(answer_with("the secret answer", 7, 0, 3, 0)));
    let s6 = send(
        &server,
        "/v1/responses",
        "OpenAI/Python 3.60.0",
        &[],
        &responses_body(model, true, prompt),
    )
    .await;
    // 7. `home` pinned and at its limit too: every account cools down, a 429.
    fake.push(Reply::usage_limit(far));
    let s7 = send(
        &server,
        "/v1/responses",
        "AsyncOpenAI/Python 3.60.0",
        &[("x-bitrouter-account", "home")],
        &responses_body(model, true, prompt),
    )
    .await;

    assert_eq!(
        [s1, s2, s3, s4, s6, s7],
        [200, 200, 200, 400, 200, 429],
        "{}",
        server.stderr()
    );
    assert!(s5 >= 500, "{s5}");
    assert!(
        wait_rows(&ctx, "requests", 7, Duration::from_secs(10)).await,
        "rows: {}\n{}",
        rows(&ctx, "requests"),
        server.stderr()
    );

    // Each row, in order.
    let conn = open(&ctx);
    let mut stmt = conn
        .prepare(
            "SELECT client, endpoint, model_asked, provider, model, account, tries, failovers,
                status, error_code, input_tokens, cached_tokens, output_tokens, reasoning_tokens,
                streamed, ttfb_ms IS NOT NULL, duration_ms >= 0
             FROM requests ORDER BY id",
        )
        .unwrap();
    let got: Vec<Value> = stmt
        .query_map([], |r| {
            Ok(json!([
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, Option<i64>>(10)?,
                r.get::<_, Option<i64>>(11)?,
                r.get::<_, Option<i64>>(12)?,
                r.get::<_, Option<i64>>(13)?,
                r.get::<_, bool>(14)?,
                r.get::<_, bool>(15)?,
                r.get::<_, bool>(16)?
            ]))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let m = "gpt-6.1-sol";
    let expected = vec![
        json!([
            "openai-python",
            "/v1/responses",
            model,
            "openai-codex",
            m,
            "work",
            1,
            0,
            200,
            null,
            100,
            60,
            20,
            5,
            true,
            true,
            true
        ]),
        json!([
            "claude-code",
            "/v1/messages",
            model,
            "openai-codex",
            m,
            "work",
            1,
            0,
            200,
            null,
            200,
            150,
            30,
            0,
            true,
            true,
            true
        ]),
        json!([
            "codex",
            "/v1/responses",
            model,
            "openai-codex",
            m,
            "work",
            1,
            0,
            200,
            null,
            50,
            0,
            10,
            2,
            false,
            true,
            true
        ]),
        json!([
            "curl",
            "/v1/responses",
            null,
            null,
            null,
            null,
            0,
            0,
            400,
            "missing_model",
            null,
            null,
            null,
            null,
            false,
            true,
            true
        ]),
        json!([
            "vercel-ai",
            "/v1/chat/completions",
            model,
            "openai-codex",
            m,
            "work",
            2,
            0,
            s5,
            got[4][9],
            null,
            null,
            null,
            null,
            false,
            true,
            true
        ]),
        json!([
            "openai-python",
            "/v1/responses",
            model,
            "openai-codex",
            m,
            "home",
            2,
            1,
            200,
            null,
            7,
            0,
            3,
            0,
            true,
            true,
            true
        ]),
        json!([
            "openai-python",
            "/v1/responses",
            model,
            "openai-codex",
            m,
            "home",
            1,
            0,
            429,
            "usage_limit_reached",
            null,
            null,
            null,
            null,
            false,
            true,
            true
        ]),
    ];
    assert_eq!(got, expected);
    assert!(
        got[4][9].is_string(),
        "the 5xx has an error code: {}",
        got[4]
    );
    let message: String = conn
        .query_row(
            "SELECT error_message FROM requests WHERE status = 429",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(message.contains("usage limit"), "{message}");

    // `usage --json` reads the database while serve runs: the fake's counts, exactly.
    let doc = usage_json(&ctx, &["--since", "1h"]);
    let totals = &doc["totals"];
    assert_eq!(totals["requests"], 7);
    assert_eq!(totals["errors"], 3);
    assert_eq!(totals["input_tokens"], 100 + 200 + 50 + 7);
    assert_eq!(totals["cached_tokens"], 60 + 150);
    assert_eq!(totals["output_tokens"], 20 + 30 + 10 + 3);
    assert_eq!(totals["reasoning_tokens"], 5 + 2);
    assert_eq!(totals["cache_hit_percent"], 58.8); // 210 of 357
    assert!(
        totals["p50_ms"].is_u64() && totals["p95_ms"].is_u64(),
        "{totals}"
    );

    let by_client = usage_json(&ctx, &["--by", "client"]);
    let counts: Vec<(String, u64)> = by_client["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("openai-python", 3),
            ("claude-code", 1),
            ("codex", 1),
            ("curl", 1),
            ("vercel-ai", 1)
        ]
        .map(|(k, n)| (k.to_owned(), n))
    );
    let by_account = usage_json(&ctx, &["--by", "account"]);
    assert_eq!(by_account["rows"][0]["key"], "openai-codex:work");
    assert_eq!(by_account["rows"][0]["requests"], 4);
    assert_eq!(by_account["rows"][1]["key"], "openai-codex:home");

    // CSV and the table.
    let out = ctx
        .cmd()
        .args(["usage", "--by", "model", "--csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("model,requests,errors,input_tokens,cached_tokens"),
        "{csv}"
    );
    assert!(
        lines[1].starts_with("gpt-6.1-sol,6,2,357,210,63,7,58.8,"),
        "{csv}"
    );
    // The request without a model.
    assert!(lines[2].starts_with("-,1,1,0,0,0,0,,"), "{csv}");
    let out = ctx.cmd().args(["usage", "--by", "day"]).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("DAY"), "{table}");
    assert!(
        table.lines().last().unwrap().starts_with("total"),
        "{table}"
    );

    // Quota: the snapshot from the answer's headers is kept, and `status` draws it.
    assert!(wait_rows(&ctx, "quota_snapshots", 1, Duration::from_secs(10)).await);
    let (account, used): (String, f64) = open(&ctx)
        .query_row(
            "SELECT account, primary_used_percent FROM quota_snapshots ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((account.as_str(), used), ("work", 25.0));
    let out = ctx.cmd().arg("status").output().unwrap();
    let status = String::from_utf8(out.stdout).unwrap();
    assert!(status.contains("openai-codex:work (plus)"), "{status}");
    // The windows reset an hour and four days after the answer (a second may have passed).
    assert!(
        status.contains("5h    ███████████████░░░░░   75% left  resets in "),
        "{status}"
    );
    assert!(
        status.contains("week  ██████████████████░░   90% left  resets in "),
        "{status}"
    );

    // Nothing secret was stored: no prompt, no answer, no token.
    drop(server);
    let mut bytes = std::fs::read(history_file(&ctx)).unwrap();
    if let Ok(wal) = std::fs::read(history_file(&ctx).with_extension("sqlite3-wal")) {
        bytes.extend(wal);
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in [
        "secret prompt",
        "secret answer",
        "tok-work-secret",
        "tok-home-secret",
    ] {
        assert!(!text.contains(secret), "{secret} is in the history");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(history_file(&ctx))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

// Two threads: the fake answers while the test waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_refresh_stores_the_quota_it_read() {
    let fake = FakeUpstream::start().await;
    let ctx = two_accounts(&fake);
    ctx.cmd().args(["status", "--refresh"]).assert().success();
    let conn = open(&ctx);
    let stored: Vec<(String, String, f64)> = conn
        .prepare(
            "SELECT account, source, primary_used_percent FROM quota_snapshots ORDER BY account",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        stored,
        vec![
            ("home".to_owned(), "usage_endpoint".to_owned(), 38.0),
            ("work".to_owned(), "usage_endpoint".to_owned(), 38.0),
        ]
    );
    // No request was made through a server: the request table is there but empty.
    assert_eq!(rows(&ctx, "requests"), 0);
}

#[tokio::test]
async fn answers_passed_on_untouched_report_their_tokens() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    ctx.write_config(&format!(
        "providers:\n  chat:\n    base_url: {url}/v1\n    api: openai_chat\n    auth_mode: none\n    models: [chat-model]\n  anth:\n    base_url: {url}/v1\n    api: anthropic_messages\n    auth_mode: none\n    models: [claude-model]\n",
        url = fake.url()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    let chat = |stream: bool| {
        json!({"model": "chat:chat-model", "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
    };
    let messages = json!({"model": "anth:claude-model", "max_tokens": 10, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let ua = "OpenAI/JS 7.60.0";
    assert_eq!(
        send(&server, "/v1/chat/completions", ua, &[], &chat(true)).await,
        200
    );
    assert_eq!(
        send(&server, "/v1/chat/completions", ua, &[], &chat(false)).await,
        200
    );
    assert_eq!(
        send(
            &server,
            "/v1/messages",
            "Anthropic/JS 0.70.0",
            &[],
            &messages
        )
        .await,
        200
    );
    assert!(wait_rows(&ctx, "requests", 3, Duration::from_secs(10)).await);
    let conn = open(&ctx);
    let got: Vec<(String, Option<i64>, Option<i64>)> = conn
        .prepare("SELECT client, input_tokens, output_tokens FROM requests ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // What the fake reported: a Chat stream's usage chunk, a Chat JSON answer's usage, and an
    // Anthropic stream's message_start input with message_delta output.
    assert_eq!(
        got,
        vec![
            ("openai-node".to_owned(), Some(11), Some(7)),
            ("openai-node".to_owned(), Some(3), Some(5)),
            ("anthropic-node".to_owned(), Some(11), Some(7)),
        ]
    );
}
