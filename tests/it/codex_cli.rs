use std::process::Stdio;
use std::time::Duration;

use crate::clients::Stage;
use crate::support::TestContext;
use crate::support::clients;
use crate::support::fake_upstream::{DEFAULT_TEXT, FakeUpstream};
use crate::support::model::ToolLoop;
use crate::support::serve::{ServeProcess, Token, codex_server, seed_tokens};

/// The real Codex CLI, with no login of its own, works through `bitrouter serve`: it
/// sends no credentials, bitrouter attaches the stored subscription token (spec §10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Codex CLI"]
async fn codex_cli_answers_through_serve_without_a_login_of_its_own() {
    let fake = FakeUpstream::start().await;
    let (ctx, server) = codex_server(&fake).await;

    clients::write_codex_config(&ctx, &server.url(), "");
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let mut cmd = clients::codex_exec(&ctx, &work, "say hi");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().expect("start codex");
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("codex exec finished within 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "codex exec failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}\nbitrouter:\n{}",
        out.status,
        server.stderr()
    );
    assert!(
        stdout.contains(DEFAULT_TEXT),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    for r in fake.requests() {
        eprintln!("backend saw {} {} {:?}", r.method, r.path, r.query);
    }
    eprintln!(
        "codex stdout:\n{stdout}\ncodex stderr:\n{stderr}\nbitrouter:\n{}",
        server.stderr()
    );
    let posts = fake.posts();
    let req = posts
        .iter()
        .find(|r| r.path == "/backend-api/codex/responses")
        .expect("the backend saw the Codex CLI's request");
    assert_eq!(
        req.header("authorization").as_deref(),
        Some("Bearer tok-work")
    );
    assert_eq!(
        req.header("chatgpt-account-id").as_deref(),
        Some("acc-work")
    );
    assert_eq!(req.header("originator").as_deref(), Some("codex_exec"));
    assert!(req.header("session-id").is_some());
    let body = req.json();
    assert_eq!(body["model"], "gpt-6-luna");
    assert_eq!(body["stream"], true);
    assert_eq!(body["store"], false);
    assert!(body["instructions"].is_string());
}

/// `codex exec` runs a shell command at the model's request, sends its output back, and prints
/// the final answer; what it sent bitrouter is kept as the `codex-cli` fixtures. The Codex CLI
/// offers its tools in "code mode": one custom `exec` tool (in an `additional_tools` input item)
/// whose JavaScript input calls the nested `exec_command`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Codex CLI"]
async fn codex_exec_runs_a_tool_loop_through_serve() {
    let stage = Stage::start().await;
    let work = stage.work_dir();
    std::fs::write(work.join("secret.txt"), "the secret word is banana\n").unwrap();
    let tool_loop = ToolLoop::custom(
        "exec",
        "const r = await tools.exec_command({cmd: \"cat secret.txt\"}); text(r.output);",
        "banana",
    );
    stage.play(&tool_loop);
    clients::write_codex_config(&stage.ctx, &stage.base(), "");

    let cmd = clients::codex_exec(&stage.ctx, &work, "What is the secret word in secret.txt?");
    let out = clients::run("codex exec", cmd, &stage.server, Duration::from_secs(120)).await;
    assert!(
        out.stdout.contains(&tool_loop.final_text()),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let results = stage.tool_results();
    assert_eq!(results.len(), 1, "{results:?}");
    let scrub = stage
        .scrub()
        // The Codex CLI's user agent names the OS it runs on.
        .pattern(r"\(([^;()]+); (x86_64|aarch64|arm64)\)", "($$OS; ${2})")
        .pattern(r#"("turn_started_at_unix_ms":)\d+"#, "${1}$$UNIX_MS")
        .pattern(r"Wall time [0-9.]+ seconds", "Wall time $$SECONDS seconds");
    let version = clients::npm_version("@openai/codex");
    stage.finish("codex-cli", &version, "exec_tool_loop", &scrub);
}

/// An unsigned JWT with these claims (the Codex CLI accepts unsigned tokens in auth.json).
fn unsigned_jwt(claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.sig",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims.to_string())
    )
}

/// With `requires_openai_auth = true` and `auth_mode: passthrough`, the Codex CLI's own ChatGPT
/// login travels upstream unchanged; bitrouter answers its model-catalog request itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Codex CLI"]
async fn codex_cli_own_login_passes_through_serve() {
    let codex = clients::codex();
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
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    auth_mode: passthrough\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;

    let auth = serde_json::json!({"chatgpt_account_id": "acc-cli", "chatgpt_plan_type": "plus", "chatgpt_user_id": "user-cli"});
    let id_token = unsigned_jwt(
        &serde_json::json!({"email": "cli@example.com", "exp": 4_102_444_800_i64, "https://api.openai.com/auth": auth}),
    );
    let access_token = unsigned_jwt(
        &serde_json::json!({"exp": 4_102_444_800_i64, "https://api.openai.com/auth": auth}),
    );
    let now = chrono_like_now();
    std::fs::write(
        ctx.codex_home().join("auth.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "auth_mode": "chatgpt", "OPENAI_API_KEY": null,
            "tokens": {"id_token": id_token, "access_token": access_token, "refresh_token": "rt-cli", "account_id": "acc-cli"},
            "last_refresh": now
        }))
        .unwrap(),
    )
    .unwrap();
    clients::write_codex_config(&ctx, &server.url(), "requires_openai_auth = true\n");
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let mut cmd = tokio::process::Command::new(codex);
    cmd.env_clear()
        .envs(clients::node_env(&ctx))
        .current_dir(&work)
        .args([
            "exec",
            "--skip-git-repo-check",
            "--ephemeral",
            "--sandbox",
            "read-only",
            "--color",
            "never",
            // ChatGPT sign-ins enable connectors that call chatgpt.com directly: no network here.
            "--disable",
            "apps",
            "say hi",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        cmd.spawn().unwrap().wait_with_output(),
    )
    .await
    .expect("codex exec finished within 60 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for r in fake.requests() {
        eprintln!("backend saw {} {} {:?}", r.method, r.path, r.query);
    }
    eprintln!(
        "codex stdout:\n{stdout}\ncodex stderr:\n{stderr}\nbitrouter:\n{}",
        server.stderr()
    );
    assert!(out.status.success(), "codex exec failed: {}", out.status);
    assert!(stdout.contains(DEFAULT_TEXT));
    assert!(
        !stderr.contains("failed to decode models"),
        "the Codex CLI could not read bitrouter's /v1/models answer"
    );
    assert!(
        !stderr.contains("chatgpt.com"),
        "the Codex CLI went to the network"
    );

    let req = fake
        .posts()
        .into_iter()
        .find(|r| r.path == "/backend-api/codex/responses")
        .expect("the backend saw the Codex CLI's request");
    assert_eq!(
        req.header("authorization").as_deref(),
        Some(format!("Bearer {access_token}").as_str())
    );
    assert_eq!(req.header("chatgpt-account-id").as_deref(), Some("acc-cli"));
    assert!(
        server.stderr().contains("path=/v1/models"),
        "the Codex CLI asked bitrouter for models"
    );
}

/// Now as an RFC 3339 UTC timestamp (what `last_refresh` holds).
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
