//! The dashboard: its page and JSON over HTTP (headers, the local key, cross-site refusals),
//! `bitrouter dashboard`, and the page itself in real headless Chromium: it loads without
//! console errors, shows the account's quota and the right numbers in its tiles, charts and
//! tables, and shows a new request without a reload.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::fake_upstream::{FakeUpstream, Reply};
use crate::support::history::{answer_with, responses_body, wait_rows, with_quota};
use crate::support::serve::{ServeProcess, Token, http_client, seed_tokens};
use crate::support::webdriver::Browser;

/// A world with the Codex account `work` in front of `fake`, plus `extra` config lines.
fn world(fake: &FakeUpstream, extra: &str) -> TestContext {
    let ctx = TestContext::new();
    seed_tokens(
        &ctx,
        &[Token {
            provider: "openai-codex",
            label: "work",
            token: "tok-work-secret",
            account_id: Some("acc-work"),
        }],
    );
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n{extra}",
        fake.codex_base()
    ));
    ctx
}

async fn request(server: &ServeProcess, user_agent: &str) {
    let response = http_client()
        .post(format!("{}/v1/responses", server.url()))
        .header("user-agent", user_agent)
        .json(&responses_body("openai-codex:gpt-6.1-sol", true, "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await.unwrap();
}

#[tokio::test]
async fn dashboard_page_and_data_are_served_read_only_and_guarded() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake, "");
    let server = ServeProcess::start(&ctx, &[]).await;
    assert!(
        server
            .stderr()
            .contains(&format!("dashboard: {}/", server.url())),
        "{}",
        server.stderr()
    );
    let client = http_client();

    let page = client
        .get(format!("{}/", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains("/dashboard/dashboard.js"), "{html}");
    for asset in [
        "/dashboard/dashboard.js",
        "/dashboard/dashboard.css",
        "/dashboard/icon.svg",
    ] {
        let r = client
            .get(format!("{}{asset}", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }

    fake.push(with_quota(answer_with("hi", 11, 4, 7, 1), 30, 5));
    request(&server, "OpenAI/Python 3.60.0").await;
    assert!(wait_rows(&ctx, "requests", 1, Duration::from_secs(10)).await);
    assert!(wait_rows(&ctx, "quota_snapshots", 1, Duration::from_secs(10)).await);
    let doc: Value = client
        .get(format!("{}/api/dashboard?range=7d", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["range"], "7d");
    assert_eq!(doc["totals"]["requests"], 1);
    assert_eq!(doc["totals"]["cached_tokens"], 4);
    assert_eq!(doc["by_client"][0]["key"], "openai-python");
    assert_eq!(doc["recent"][0]["account"], "work");
    assert_eq!(doc["accounts"][0]["label"], "work");
    assert_eq!(doc["accounts"][0]["primary"]["used_percent"], 30.0);
    assert_eq!(doc["quota_history"][0]["primary_used_percent"], 30.0);
    assert_eq!(doc["history"]["enabled"], true);
    assert!(!doc.to_string().contains("tok-work-secret"));
    // Nothing new: the answer leaves the history part out.
    let last = doc["history"]["last_id"].as_i64().unwrap();
    let idle: Value = client
        .get(format!("{}/api/dashboard?known={last}", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(idle["unchanged"], true);
    assert!(idle.get("recent").is_none());

    // Read-only, same-site only, and not from other pages.
    let post = client
        .post(format!("{}/api/dashboard", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    let cross = client
        .get(format!("{}/api/dashboard", server.url()))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let origin = client
        .get(format!("{}/api/dashboard", server.url()))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(origin.status(), 403);
    let bad = client
        .get(format!("{}/api/dashboard?range=1y", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn dashboard_data_needs_the_local_key_when_one_is_set() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake, "server:\n  api_key: local-key-123\n");
    let server = ServeProcess::start(&ctx, &[]).await;
    let client = http_client();
    // The page itself holds no data.
    let page = client
        .get(format!("{}/", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let url = format!("{}/api/dashboard", server.url());
    let refused = client.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let wrong = client
        .get(&url)
        .header("x-bitrouter-key", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let allowed = client
        .get(&url)
        .header("x-bitrouter-key", "local-key-123")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let text = allowed.text().await.unwrap();
    assert!(!text.contains("local-key-123"));
}

// Two threads: the server answers while the test waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_command_prints_the_url_or_says_no_server_runs() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake, "");
    let server = ServeProcess::start(&ctx, &[]).await;
    let listen = format!("127.0.0.1:{}", server.port);
    let out = ctx
        .cmd()
        .args(["dashboard", "--no-browser", "--listen", &listen])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("http://{listen}/\n")
    );
    drop(server);

    let out = ctx
        .cmd()
        .args(["dashboard", "--no-browser", "--listen", &listen])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no bitrouter server answers"), "{stderr}");
    assert!(
        stderr.contains("hint: start one with `bitrouter serve`"),
        "{stderr}"
    );
}

/// Sums a data attribute over the elements a selector finds, in the page.
fn sum_of(selector: &str, attribute: &str) -> String {
    format!(
        "return [...document.querySelectorAll('{selector}')].reduce((a, e) => a + Number(e.dataset.{attribute} || 0), 0);"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver"]
async fn dashboard_in_headless_chromium_shows_accounts_numbers_and_live_requests() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake, "");
    let server = ServeProcess::start(&ctx, &[]).await;
    fake.push(with_quota(answer_with("hi", 100, 60, 20, 5), 25, 10));
    request(&server, "OpenAI/Python 3.60.0").await;
    fake.push(Reply::sse(answer_with("hi", 200, 150, 30, 0)));
    request(&server, "claude-cli/2.1.332 (external, cli)").await;
    assert!(wait_rows(&ctx, "requests", 2, Duration::from_secs(10)).await);
    assert!(wait_rows(&ctx, "quota_snapshots", 1, Duration::from_secs(10)).await);

    let browser = Browser::start().await;
    browser.open(&format!("{}/", server.url())).await;
    let long = Duration::from_secs(20);
    let total = "return document.getElementById('total-requests').dataset.value;";
    assert_eq!(browser.wait_for(total, &json!("2"), long).await, json!("2"));
    // A mark that a reload would wipe.
    browser.eval("window.__stayed = true; return true;").await;

    // The tiles.
    let value = |id: &str| format!("return document.getElementById('{id}').dataset.value;");
    assert_eq!(browser.eval(&value("total-input")).await, json!("300"));
    assert_eq!(browser.eval(&value("total-cached")).await, json!("210"));
    assert_eq!(browser.eval(&value("total-output")).await, json!("50"));
    assert_eq!(browser.eval(&value("total-reasoning")).await, json!("5"));
    assert_eq!(browser.eval(&value("total-cache-hit")).await, json!("70"));
    // The account, its meters and countdowns.
    let card = "document.querySelector('[data-account=\"openai-codex:work\"]')";
    let left = browser
        .eval(&format!(
            "return [...{card}.querySelectorAll('.meter .left')].map(e => e.dataset.value);"
        ))
        .await;
    assert_eq!(left, json!(["75", "90"]));
    let resets = browser
        .eval(&format!(
            "return [...{card}.querySelectorAll('.meter .reset')].map(e => e.textContent);"
        ))
        .await;
    let resets: Vec<&str> = resets
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(resets[0].starts_with("resets in "), "{resets:?}");
    assert!(
        resets[1].starts_with("resets in 3d") || resets[1].starts_with("resets in 4d"),
        "{resets:?}"
    );
    // The charts add up to the totals.
    assert_eq!(
        browser
            .eval(&sum_of("#chart-requests g.bar", "requests"))
            .await,
        json!(2)
    );
    assert_eq!(
        browser.eval(&sum_of("#chart-tokens g.bar", "input")).await,
        json!(300)
    );
    assert_eq!(
        browser.eval(&sum_of("#chart-tokens g.bar", "output")).await,
        json!(50)
    );
    // The breakdowns and the recent requests.
    let clients = browser
        .eval("return [...document.querySelectorAll('#by-client tbody tr')].map(r => [r.dataset.key, r.querySelector('td.share').dataset.value]);")
        .await;
    assert_eq!(
        clients,
        json!([["claude-code", "1"], ["openai-python", "1"]])
    );
    let rows = "return document.querySelectorAll('#recent tbody tr[data-id]').length;";
    assert_eq!(browser.eval(rows).await, json!(2));

    // A new request shows up without a reload.
    fake.push(Reply::sse(answer_with("hi", 1, 0, 1, 0)));
    request(&server, "curl/8.5.0").await;
    assert_eq!(browser.wait_for(rows, &json!(3), long).await, json!(3));
    assert_eq!(browser.wait_for(total, &json!("3"), long).await, json!("3"));
    assert_eq!(
        browser.eval("return window.__stayed === true;").await,
        json!(true)
    );
    let newest = browser
        .eval("const r = document.querySelector('#recent tbody tr'); return [r.children[1].textContent, r.className];")
        .await;
    assert_eq!(newest, json!(["curl", "new"]));

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    browser.screenshot(&shot).await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    let console = browser.console().await;
    let errors: Vec<_> = console
        .iter()
        .filter(|(level, _)| level == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
