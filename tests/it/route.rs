//! `route` and `serve` use one resolver: for every grammar form and error, what `route --json`
//! says is what a running `serve` does with the same model id. Also the account states both
//! show, and the quota in `status` (from `usage.json`, or the usage endpoint with `--refresh`).

use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::fake_upstream::{FakeUpstream, Reply};
use crate::support::serve::{ServeProcess, Token, http_client, seed_tokens};

fn token(label: &'static str) -> Token<'static> {
    Token {
        provider: "openai-codex",
        label,
        token: label,
        account_id: Some("acc"),
    }
}

fn config(fake: &FakeUpstream) -> String {
    format!(
        "providers:\n  openai-codex:\n    base_url: {codex}\n    accounts: [work, home]\n  other:\n    base_url: {url}/other\n    api: openai_responses\n    api_key: sk-other\n    models: [other-model]\nroutes:\n  fast: [openai-codex@home:gpt-6.1-sol, other:other-model]\n  \"claude-*\": {{to: gpt-6-luna, effort: low}}\n",
        codex = fake.codex_base(),
        url = fake.url()
    )
}

/// `route --json`: Ok(first step's provider, model, first ready account) or Err(exit code).
fn route(ctx: &TestContext, model: &str) -> Result<(String, String, Option<String>), i32> {
    let out = ctx.cmd().args(["route", "--json", model]).output().unwrap();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("error: cannot route") && stderr.contains("hint:"),
            "{stderr}"
        );
        return Err(out.status.code().unwrap_or(-1));
    }
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let step = &doc["steps"][0];
    let account = step["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["state"] == "ready")
        .and_then(|a| match a["label"].as_str() {
            Some(label) => Some(label.to_owned()),
            // serve names the config file's key `config`
            None if a["credential"]
                .as_str()
                .is_some_and(|c| c.starts_with("api_key")) =>
            {
                Some("config".to_owned())
            }
            None => None,
        });
    Ok((
        step["provider"].as_str().unwrap().to_owned(),
        step["model"].as_str().unwrap().to_owned(),
        account,
    ))
}

/// The same id through `serve`: Ok(x-bitrouter-provider, x-bitrouter-model, x-bitrouter-account)
/// or Err(HTTP status).
async fn serve(
    server: &ServeProcess,
    model: &str,
) -> Result<(String, String, Option<String>), u16> {
    let resp = http_client()
        .post(format!("{}/v1/responses", server.url()))
        .json(&json!({"model": model, "input": "hi", "stream": false}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    if status != 200 {
        return Err(status);
    }
    let account = header("x-bitrouter-account").filter(|a| !a.is_empty() && a != "-");
    Ok((
        header("x-bitrouter-provider").unwrap(),
        header("x-bitrouter-model").unwrap(),
        account,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_and_serve_agree_on_every_form() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[token("work"), token("home")]);
    ctx.write_config(&config(&fake));
    let server = ServeProcess::start(&ctx, &[]).await;

    let ok_cases = [
        "gpt-6-luna",
        "openai-codex:gpt-6.1-sol",
        "openai-codex/gpt-6.1-sol",
        "openai-codex@home:gpt-6.1-sol",
        "other-model",
        "other/other-model",
        "fast",
        "claude-haiku-4-5",
        "gpt-6.1-sol+medium",
    ];
    for model in ok_cases {
        let routed = route(&ctx, model).unwrap_or_else(|code| panic!("{model}: route exit {code}"));
        let served = serve(&server, model)
            .await
            .unwrap_or_else(|s| panic!("{model}: serve {s}"));
        assert_eq!(routed, served, "{model}");
    }

    // --check sends a tiny request through the same path and reports who answered.
    let out = ctx
        .cmd()
        .args(["route", "--check", "--json", "fast"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["check"]["status"], 200, "{doc}");
    assert_eq!(doc["check"]["provider"], "openai-codex");
    assert_eq!(doc["check"]["account"], "home");
    assert_eq!(doc["check"]["model"], "gpt-6.1-sol");

    // Errors: route refuses with exit 2 where serve answers 4xx.
    for (model, status) in [
        ("nope:gpt-6", 404),
        ("openai-codex@ghost:gpt-6", 404),
        ("openai-codex@Bad:x", 400),
        ("gpt-6.1-sol+", 400),
        ("fast+low", 400),
    ] {
        assert_eq!(route(&ctx, model), Err(2), "{model}");
        assert_eq!(serve(&server, model).await, Err(status), "{model}");
    }
}

#[test]
fn route_without_accounts_says_to_log_in() {
    let ctx = TestContext::new();
    let out = ctx
        .cmd()
        .args(["route", "openai-codex:gpt-6.1-sol"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not logged in"), "{stderr}");
    assert!(
        stderr.contains("hint: run `bitrouter login openai-codex`"),
        "{stderr}"
    );
}

#[test]
fn route_shows_needs_login_and_cooldown_states() {
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[token("work"), token("home")]);
    // Mark `home` as needing a login and `work` as cooling down, as serve and refresh record them.
    let path = ctx.token_file();
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["credentials"][1]["needs_login"] = json!("refresh token was already used");
    std::fs::write(&path, doc.to_string()).unwrap();
    let until = 4_102_444_800_i64;
    std::fs::write(
        ctx.data_home().join("bitrouter/usage.json"),
        json!({"version": 1, "accounts": [{"provider": "openai-codex", "label": "work", "cooling_until": until, "updated_at": 1}]}).to_string(),
    )
    .unwrap();
    let out = ctx.cmd().args(["route", "gpt-6.1-sol"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("account work: cooling-down (until 2100-01-01T00:00:00Z)"),
        "{text}"
    );
    assert!(
        text.contains("account home: needs-login (refresh token was already used)"),
        "{text}"
    );
}

#[test]
fn status_shows_quota_and_cooldown_from_serve() {
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[token("work"), token("home")]);
    std::fs::write(
        ctx.data_home().join("bitrouter/usage.json"),
        json!({"version": 1, "accounts": [
            {"provider": "openai-codex", "label": "work", "cooling_until": 4_102_444_800_i64, "updated_at": 1},
            {"provider": "openai-codex", "label": "home", "primary_used_percent": 38.0, "primary_window_minutes": 300,
             "secondary_used_percent": 20.0, "secondary_window_minutes": 10080, "updated_at": 1}
        ]})
        .to_string(),
    )
    .unwrap();
    let out = ctx.cmd().arg("status").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("QUOTA"), "{text}");
    assert!(text.contains("5h 62% left, week 80% left"), "{text}");
    assert!(text.contains("cooling down, resets in"), "{text}");

    let out = ctx.cmd().args(["status", "--json"]).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let home = doc["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["label"] == "home")
        .unwrap();
    assert_eq!(home["quota"]["primary_left_percent"], 62.0);
    let work = doc["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["label"] == "work")
        .unwrap();
    assert_eq!(work["quota"]["cooling_until"], 4_102_444_800_i64);
}

/// Runs `bitrouter status` with `args` off the test's runtime: (exit code, stdout, stderr).
async fn status(ctx: &TestContext, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = tokio::process::Command::from(ctx.std_cmd());
    let out = cmd.arg("status").args(args).output().await.unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn codex_at(fake: &FakeUpstream) -> String {
    format!(
        "providers:\n  openai-codex:\n    base_url: {}\n",
        fake.codex_base()
    )
}

fn usage_file(ctx: &TestContext) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(ctx.data_home().join("bitrouter/usage.json")).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_refresh_reads_the_usage_endpoint_and_saves_it() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(
        &ctx,
        &[Token {
            provider: "openai-codex",
            label: "work",
            token: "tok-work",
            account_id: Some("acc-work"),
        }],
    );
    ctx.write_config(&codex_at(&fake));

    let (code, stdout, stderr) = status(&ctx, &["--refresh", "--json"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("tok-work") && !stderr.contains("tok-work"));
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let quota = &doc["accounts"][0]["quota"];
    assert_eq!(quota["primary_left_percent"], 62.0, "{doc}");
    assert_eq!(quota["primary_window_minutes"], 300);
    assert_eq!(quota["primary_reset_at"], 4_102_444_800_i64);
    assert_eq!(quota["secondary_left_percent"], 80.0);
    assert_eq!(quota["secondary_window_minutes"], 10_080);
    assert_eq!(quota["source"], "usage_endpoint");
    assert!(quota["checked_at"].as_i64().unwrap() > 1_790_000_000);

    let asked = fake.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let req = &asked[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/backend-api/wham/usage")
    );
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
        req.header("user-agent").unwrap().starts_with("bitrouter/"),
        "{:?}",
        req.header("user-agent")
    );

    // Saved in usage.json, so a plain `status` shows it without asking again.
    let saved = usage_file(&ctx);
    assert_eq!(
        saved["accounts"][0]["quota_source"], "usage_endpoint",
        "{saved}"
    );
    assert_eq!(saved["accounts"][0]["plan_type"], "plus");
    let (code, stdout, stderr) = status(&ctx, &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("5h 62% left, week 80% left"), "{stdout}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_refresh_failure_warns_and_keeps_the_saved_quota() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(
        &ctx,
        &[Token {
            provider: "openai-codex",
            label: "work",
            token: "tok-secret",
            account_id: None,
        }],
    );
    ctx.write_config(&codex_at(&fake));
    let saved = json!({"version": 1, "accounts": [
        {"provider": "openai-codex", "label": "work", "primary_used_percent": 10.0,
         "primary_window_minutes": 300, "secondary_used_percent": 30.0,
         "secondary_window_minutes": 10080, "updated_at": 1}
    ]});
    let path = ctx.data_home().join("bitrouter/usage.json");
    std::fs::write(&path, saved.to_string()).unwrap();

    for (reply, says) in [
        (
            Reply::json(500, json!({"detail": "Internal Server Error"})),
            "answered 500",
        ),
        (
            Reply::json(401, json!({"detail": "Unauthorized"})),
            "answered 401",
        ),
        (
            Reply::json(200, json!({"detail": "not a usage body"})),
            "without quota figures",
        ),
    ] {
        fake.push(reply);
        let (code, stdout, stderr) = status(&ctx, &["--refresh", "--json"]).await;
        assert_eq!(code, Some(0), "{stderr}");
        assert!(
            stderr.contains("cannot refresh the quota of openai-codex:work: "),
            "{stderr}"
        );
        assert!(stderr.contains(says), "{stderr}");
        assert!(stderr.contains("showing the last saved quota"), "{stderr}");
        assert!(!stderr.contains("tok-secret") && !stdout.contains("tok-secret"));
        let doc: Value = serde_json::from_str(&stdout).unwrap();
        let quota = &doc["accounts"][0]["quota"];
        assert_eq!(quota["primary_left_percent"], 90.0, "{doc}");
        assert_eq!(quota["secondary_left_percent"], 70.0, "{doc}");
        assert_eq!(quota["source"], Value::Null);
        assert_eq!(usage_file(&ctx), saved, "usage.json is left alone");
    }
    let asked = fake.requests();
    assert_eq!(asked.len(), 3);
    assert!(
        asked
            .iter()
            .all(|r| r.header("chatgpt-account-id").is_none()),
        "no account id is sent when none is known"
    );
}
