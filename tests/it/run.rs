//! `bitrouter run`, the background server (`serve --detach`, `stop`, the state directory's lock),
//! `doctor` and `service`, through the real binary: servers started on demand on a port the
//! kernel picks (`listen: 127.0.0.1:0`, found again through the state directory's record),
//! killed when the test's world is dropped.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::fake_upstream::FakeUpstream;
use crate::support::serve::{Token, http_client, seed_tokens};
use crate::support::{TestContext, clients};

/// A world with one signed-in account in front of the fake backend, whose server listens on a
/// port the kernel picks.
fn world(fake: &FakeUpstream) -> TestContext {
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
        "server:\n  listen: 127.0.0.1:0\nproviders:\n  openai-codex:\n    base_url: {}\nroutes:\n  claude-sonnet-4-5: [openai-codex:gpt-6.1-sol]\n  claude-haiku-4-5: [openai-codex:gpt-6-luna]\n",
        fake.codex_base()
    ));
    ctx
}

/// Runs bitrouter with `args` (off the async runtime), within 60 s.
async fn bitrouter(ctx: &TestContext, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::from(ctx.std_cmd());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("bitrouter finished within 60 s")
        .expect("run bitrouter")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `run -- sh -c 'echo …'`: the base URL the command saw.
async fn run_echo(ctx: &TestContext) -> (String, Output) {
    let out = bitrouter(
        ctx,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "echo \"$OPENAI_BASE_URL $OPENAI_API_BASE $ANTHROPIC_BASE_URL $OPENAI_API_KEY\"",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "run failed: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    (text(&out.stdout).trim().to_owned(), out)
}

/// Whether process `pid` is gone (or a zombie waiting for its parent to reap it).
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

async fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if is_gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    is_gone(pid)
}

/// The first `listening on` lines in the server log: one per server started.
fn starts_in_log(ctx: &TestContext) -> usize {
    std::fs::read_to_string(ctx.state_dir().join("serve.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("listening on "))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_starts_a_server_on_demand_then_reuses_it_and_passes_the_exit_status() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);

    let (seen, out) = run_echo(&ctx).await;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("started the server in the background"),
        "{stderr}"
    );
    let pid = ctx.recorded_server_pid().expect("a server holds the lock");
    let origin = seen
        .split(' ')
        .nth(2)
        .expect("ANTHROPIC_BASE_URL")
        .to_owned();
    assert_eq!(
        seen,
        format!("{origin}/v1 {origin}/v1 {origin} bitrouter"),
        "the generic setup"
    );
    let health: serde_json::Value = http_client()
        .get(format!("{origin}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["name"], "bitrouter");
    assert_eq!(health["pid"], pid);

    // The second run finds it: same address, no new start.
    let (again, out) = run_echo(&ctx).await;
    assert_eq!(again, seen);
    assert!(
        !text(&out.stderr).contains("started"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(ctx.recorded_server_pid(), Some(pid));
    assert_eq!(starts_in_log(&ctx), 1);

    // The command's exit status is run's.
    let out = bitrouter(&ctx, &["run", "--", "sh", "-c", "exit 7"]).await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));

    // `status` shows the server.
    let out = bitrouter(&ctx, &["status"]).await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("server: running, pid {pid}, {origin}, version ")),
        "{stdout}"
    );
    assert!(stdout.contains("serve.log"), "{stdout}");
    let out = bitrouter(&ctx, &["status", "--json"]).await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["server"]["running"], true);
    assert_eq!(doc["server"]["pid"], pid);
    assert_eq!(doc["server"]["address"], origin.as_str());
    assert_eq!(doc["server"]["answers"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_share_one_server() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let (a, b) = tokio::join!(run_echo(&ctx), run_echo(&ctx));
    assert_eq!(a.0, b.0, "both runs reached the same server");
    let started = [&a.1, &b.1]
        .iter()
        .filter(|o| text(&o.stderr).contains("started the server"))
        .count();
    assert_eq!(started, 1, "one of the two started it");
    assert_eq!(starts_in_log(&ctx), 1, "one server started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_server_and_leaves_no_process() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let out = bitrouter(&ctx, &["serve", "--detach"]).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("bitrouter runs in the background (pid "),
        "{stderr}"
    );
    assert!(stderr.contains("serve.log"), "{stderr}");
    let pid = ctx.recorded_server_pid().expect("a server");

    // A second detach finds it instead of starting another.
    let out = bitrouter(&ctx, &["serve", "--detach"]).await;
    assert!(
        text(&out.stderr).contains(&format!("already runs (pid {pid})")),
        "{}",
        text(&out.stderr)
    );
    // A foreground serve for the same state directory is refused: one server per directory.
    let out = bitrouter(&ctx, &["serve"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: a bitrouter server already runs for this state directory (pid {pid}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");

    let out = bitrouter(&ctx, &["stop"]).await;
    assert!(out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        format!("stopped bitrouter (pid {pid})")
    );
    assert!(
        wait_gone(pid, Duration::from_secs(10)).await,
        "pid {pid} still runs"
    );
    assert_eq!(ctx.recorded_server_pid(), None);
    assert!(
        !ctx.state_dir().join("serve.json").exists(),
        "a clean stop removes the record"
    );
    let log = std::fs::read_to_string(ctx.state_dir().join("serve.log")).unwrap();
    assert!(log.contains("bitrouter stopped"), "{log}");

    let out = bitrouter(&ctx, &["stop"]).await;
    assert!(out.status.success());
    assert_eq!(text(&out.stderr).trim(), "no bitrouter server is running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_with_sigkill_blocks_nothing() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let (first, _) = run_echo(&ctx).await;
    let pid = ctx.recorded_server_pid().expect("a server");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(wait_gone(pid, Duration::from_secs(10)).await);
    // Its record is left behind, but the lock went with the process.
    assert!(ctx.state_dir().join("serve.json").exists());
    assert_eq!(ctx.recorded_server_pid(), None);

    let (second, out) = run_echo(&ctx).await;
    assert!(
        text(&out.stderr).contains("started the server in the background"),
        "{}",
        text(&out.stderr)
    );
    let new_pid = ctx.recorded_server_pid().expect("a fresh server");
    assert_ne!(new_pid, pid);
    assert_ne!(first, second, "a new port from the kernel");
    assert_eq!(starts_in_log(&ctx), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_a_missing_client_a_missing_login_and_a_foreign_port() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    // PATH without the client.
    let empty = ctx.root().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = tokio::process::Command::from(ctx.std_cmd());
    cmd.env("PATH", &empty).args(["run", "claude", "-p", "hi"]);
    let out = cmd.output().await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("error:") || l.starts_with("hint:"))
            .collect::<Vec<_>>(),
        [
            "error: Claude Code (`claude`) is not installed, or not on PATH",
            "hint: install it: npm install -g @anthropic-ai/claude-code"
        ]
    );

    // No account: nothing is started.
    let lonely = TestContext::new();
    lonely.write_config("server:\n  listen: 127.0.0.1:0\n");
    let out = bitrouter(&lonely, &["run", "--", "true"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: no account is signed in"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: sign in first: `bitrouter login openai-codex`"),
        "{stderr}"
    );
    assert_eq!(lonely.recorded_server_pid(), None);

    // The configured port held by something that is not bitrouter.
    let foreign = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = foreign.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = foreign.accept().await else {
                return;
            };
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            // Read the request first: closing with unread data would reset the connection.
            let mut request = Vec::new();
            let mut buf = [0_u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = socket
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    let held = world(&fake);
    held.write_config(&format!(
        "server:\n  listen: 127.0.0.1:{port}\nproviders:\n  openai-codex:\n    base_url: {}\n",
        fake.codex_base()
    ));
    let out = bitrouter(&held, &["run", "--", "true"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: 127.0.0.1:{port} is held by a program that is not bitrouter (it answered: HTTP/1.1 404 Not Found)"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("hint: stop that program"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_server_that_fails_to_start_shows_its_log() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    // An address this machine does not have (TEST-NET-1; bound, never sent to): only the
    // child finds out, when it binds.
    ctx.write_config(&format!(
        "server:\n  api_key: local-secret\nproviders:\n  openai-codex:\n    base_url: {}\n",
        fake.codex_base()
    ));
    let out = bitrouter(&ctx, &["serve", "--detach", "--listen", "192.0.2.1:0"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: the background server exited (exit status: 1) before it answered; the end of its log"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  error: cannot listen on 192.0.2.1:0: "),
        "the log's own error line: {stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
    assert!(!stderr.contains("local-secret"), "{stderr}");
}

/// Claude Code's environment in tests: no update checks, telemetry or error reports (there is no
/// network), and a working directory of its own.
fn claude_env(cmd: &mut tokio::process::Command, ctx: &TestContext) {
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    cmd.env("PATH", clients::path_with_clients())
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_ERROR_REPORTING", "1")
        .current_dir(work);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Claude Code"]
async fn run_claude_print_starts_a_server_and_prints_the_backends_answer() {
    let Some(_) = clients::claude() else {
        return;
    };
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let mut cmd = tokio::process::Command::from(ctx.std_cmd());
    claude_env(&mut cmd, &ctx);
    cmd.args(["run", "claude", "-p", "say hi"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("claude -p finished within 120 s")
        .unwrap();
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    let log = std::fs::read_to_string(ctx.state_dir().join("serve.log")).unwrap_or_default();
    for r in fake.requests() {
        eprintln!("backend saw {} {} {:?}", r.method, r.path, r.query);
    }
    assert!(
        out.status.success(),
        "claude -p failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{log}",
        out.status
    );
    assert!(
        stderr.contains("started the server in the background"),
        "{stderr}"
    );
    assert!(
        stdout.contains(crate::support::fake_upstream::DEFAULT_TEXT),
        "stdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{log}"
    );
    let posts = fake.posts();
    let request = posts
        .iter()
        .find(|r| r.path == "/backend-api/codex/responses")
        .expect("the backend saw Claude Code's request");
    assert_eq!(
        request.header("authorization").as_deref(),
        Some("Bearer tok-work")
    );
    assert_eq!(request.json()["model"], "gpt-6.1-sol");
}

/// Runs `bitrouter run claude -p <prompt>` in `ctx`; its output, whatever the exit status.
async fn run_claude_print(ctx: &TestContext, prompt: &str) -> Output {
    let mut cmd = tokio::process::Command::from(ctx.std_cmd());
    claude_env(&mut cmd, ctx);
    cmd.args(["run", "claude", "-p", prompt])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("claude -p finished within 120 s")
        .unwrap()
}

/// What Claude Code 2.1.332 sends for gateway model discovery, recorded against the fake (not
/// bitrouter), so a change in a new release shows here: `GET /v1/models?limit=1000` with
/// `anthropic-version: 2023-06-01` and the bearer token from ANTHROPIC_AUTH_TOKEN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Claude Code"]
async fn claude_code_gateway_discovery_sends_an_anthropic_models_request() {
    let Some(claude) = clients::claude() else {
        return;
    };
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    let mut cmd = tokio::process::Command::new(claude);
    cmd.env_clear().envs(ctx.env_pairs());
    claude_env(&mut cmd, &ctx);
    cmd.env("ANTHROPIC_BASE_URL", fake.url())
        .env("ANTHROPIC_AUTH_TOKEN", "tok-discovery")
        .env("ANTHROPIC_MODEL", "claude-sonnet-4-5")
        .env("CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY", "1")
        .args(["-p", "hi"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let _ = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("claude -p finished within 120 s");
    let requests = fake.requests();
    let discovery = requests
        .iter()
        .find(|r| r.method == "GET" && r.path == "/v1/models")
        .unwrap_or_else(|| {
            panic!(
                "no discovery request; saw {:?}",
                requests
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.path))
                    .collect::<Vec<_>>()
            )
        });
    assert_eq!(discovery.query.as_deref(), Some("limit=1000"));
    assert_eq!(
        discovery.header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(
        discovery.header("authorization").as_deref(),
        Some("Bearer tok-discovery")
    );
    assert_eq!(discovery.header("x-api-key"), None);
    let ua = discovery.header("user-agent").unwrap_or_default();
    assert!(ua.starts_with("claude-code/2.1.332"), "{ua}");
}

/// `run claude` turns on gateway model discovery, and the server answers it in Anthropic's
/// shape: Claude Code caches the configured `claude-*` routes for its `/model` picker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Claude Code"]
async fn run_claude_lists_the_configured_claude_routes_for_its_model_picker() {
    let Some(_) = clients::claude() else {
        return;
    };
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let out = run_claude_print(&ctx, "hi").await;
    let cache = ctx.home().join(".claude/cache/gateway-models.json");
    let text_of_cache = std::fs::read_to_string(&cache).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nstdout:\n{}\nstderr:\n{}",
            cache.display(),
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    let cached: serde_json::Value = serde_json::from_str(&text_of_cache).unwrap();
    let ids: Vec<&str> = cached["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["claude-haiku-4-5", "claude-sonnet-4-5"], "{cached}");
    let pid = ctx.recorded_server_pid().expect("the server run started");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ctx.state_dir().join("serve.json")).unwrap())
            .unwrap();
    assert_eq!(record["pid"], pid);
    assert_eq!(
        cached["baseUrl"].as_str(),
        Some(format!("http://{}", record["listen"].as_str().unwrap()).as_str())
    );
}

/// `run codex exec` works through one-shot `-c` overrides, and the Codex CLI's own config file
/// stays byte for byte as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Codex CLI"]
async fn run_codex_exec_answers_and_leaves_config_toml_unchanged() {
    let Some(_) = clients::codex() else {
        return;
    };
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let config_toml = ctx.codex_home().join("config.toml");
    let original = b"# the user's own settings\nmodel = \"o3\"\napproval_policy = \"never\"\n\n[profiles.fast]\nmodel = \"gpt-5-mini\"\n";
    std::fs::write(&config_toml, original).unwrap();
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let mut cmd = tokio::process::Command::from(ctx.std_cmd());
    cmd.env("PATH", clients::path_with_clients())
        .current_dir(&work)
        .args([
            "run",
            "--model",
            "gpt-6-luna",
            "codex",
            "exec",
            "--skip-git-repo-check",
            "--ephemeral",
            "--sandbox",
            "read-only",
            "--color",
            "never",
            "say hi",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("codex exec finished within 120 s")
        .unwrap();
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "codex exec failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(crate::support::fake_upstream::DEFAULT_TEXT),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        std::fs::read(&config_toml).unwrap(),
        original,
        "config.toml changed"
    );
    let posts = fake.posts();
    let request = posts
        .iter()
        .find(|r| r.path == "/backend-api/codex/responses")
        .expect("the backend saw the Codex CLI's request");
    assert_eq!(request.json()["model"], "gpt-6-luna");
    assert_eq!(
        request.header("authorization").as_deref(),
        Some("Bearer tok-work")
    );
}

/// A tmux server of the test's own (its socket in the test's world), killed when dropped.
struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new("tmux");
        cmd.arg("-S").arg(&self.socket).arg("-f").arg("/dev/null");
        cmd
    }

    fn send(&self, keys: &[&str]) {
        let ok = self
            .cmd()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux send-keys {keys:?}");
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .unwrap();
        text(&out.stdout)
    }

    /// Waits until the screen shows `needle`; the screen when it does, or `None`.
    async fn wait_for(&self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let screen = self.screen();
            if screen.contains(needle) {
                return Some(screen);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// Interactive Claude Code under `bitrouter run`, driven in tmux as a person would: it shows the
/// backend's answer, and `/exit` ends it with status 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Claude Code and tmux"]
async fn run_claude_interactive_in_tmux_shows_the_answer_and_exits_cleanly() {
    let Some(_) = clients::claude() else {
        return;
    };
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    // A user who finished Claude Code's first-run screens and trusts this folder (the test's
    // own world; bitrouter changes none of this).
    std::fs::write(
        ctx.home().join(".claude.json"),
        serde_json::json!({
            "hasCompletedOnboarding": true,
            "theme": "dark",
            "projects": {work.display().to_string(): {"hasTrustDialogAccepted": true}},
        })
        .to_string(),
    )
    .unwrap();
    let exit_file = ctx.root().join("exit-status");
    let bitrouter_bin = assert_cmd::cargo::cargo_bin("bitrouter");
    let script = format!(
        "{} run claude; echo $? > {}",
        bitrouter_bin.display(),
        exit_file.display()
    );
    let tmux = Tmux {
        socket: ctx.root().join("tmux.sock"),
    };
    let mut start = tmux.cmd();
    start
        .env_clear()
        .envs(ctx.env_pairs())
        .env("PATH", clients::path_with_clients())
        .env("TERM", "xterm-256color")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_ERROR_REPORTING", "1")
        .args([
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "160",
            "-y",
            "50",
            "-c",
        ])
        .arg(&work)
        .arg(&script);
    assert!(start.status().unwrap().success(), "tmux new-session");

    // The input box is ready when its footer shows.
    let Some(_) = tmux
        .wait_for("shift+tab to cycle", Duration::from_secs(60))
        .await
    else {
        panic!("Claude Code's prompt did not appear:\n{}", tmux.screen());
    };
    tmux.send(&["say hi", "Enter"]);
    let answer = tmux
        .wait_for(
            crate::support::fake_upstream::DEFAULT_TEXT,
            Duration::from_secs(60),
        )
        .await;
    let screen = tmux.screen();
    tmux.send(&["/exit", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !exit_file.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = std::fs::read_to_string(&exit_file)
        .unwrap_or_else(|_| panic!("claude did not exit:\n{}", tmux.screen()));
    assert_eq!(status.trim(), "0", "{}", tmux.screen());
    let log = std::fs::read_to_string(ctx.state_dir().join("serve.log")).unwrap_or_default();
    assert!(
        answer.is_some(),
        "the answer did not appear:\n{screen}\nserver log:\n{log}"
    );
}

/// A directory holding executable scripts, for a PATH of fake programs.
fn fake_bin(ctx: &TestContext, scripts: &[(&str, &str)]) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = ctx.root().join("fake-bin");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in scripts {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

async fn doctor(ctx: &TestContext, path: &std::path::Path) -> (Option<i32>, String, String) {
    let mut cmd = tokio::process::Command::from(ctx.std_cmd());
    cmd.env("PATH", path).arg("doctor");
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("doctor finished")
        .unwrap();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_on_a_healthy_setup_says_so_and_shows_no_secret() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    ctx.write_config(&format!(
        "server:\n  listen: 127.0.0.1:0\n  api_key: local-secret-key\nproviders:\n  openai-codex:\n    base_url: {}\n",
        fake.codex_base()
    ));
    let out = bitrouter(&ctx, &["serve", "--detach"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = ctx.recorded_server_pid().unwrap();
    let bin = fake_bin(&ctx, &[("claude", "echo '9.9.9 (Claude Code)'")]);
    let (code, stdout, stderr) = doctor(&ctx, &bin).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with(&format!("bitrouter {} (", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    for expected in [
        format!("config: {} (ok)", ctx.default_config_path().display()),
        "openai-codex@work: signed in (login, plan plus)".to_owned(),
        format!("server: running, pid {pid}, http://127.0.0.1:"),
        format!("  claude    {}/claude (9.9.9 (Claude Code))", bin.display()),
        "  codex     not found (install: npm install -g @openai/codex)".to_owned(),
        "no problems found".to_owned(),
    ] {
        assert!(stdout.contains(&expected), "{expected}:\n{stdout}");
    }
    for secret in ["local-secret-key", "tok-work", "rt-work"] {
        assert!(!stdout.contains(secret), "{secret} in:\n{stdout}");
        assert!(!stderr.contains(secret), "{secret} in:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_a_missing_login_a_broken_config_and_a_stopped_server() {
    let fake = FakeUpstream::start().await;
    let bin_ctx = TestContext::new();
    let bin = fake_bin(&bin_ctx, &[]);

    // A stopped server (signed in, config fine).
    let ctx = world(&fake);
    let (code, stdout, stderr) = doctor(&ctx, &bin).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("server: not running"), "{stdout}");
    assert!(
        stdout.contains("  - no server runs: clients set up with `bitrouter connect` cannot reach bitrouter\n    fix: `bitrouter serve --detach`"),
        "{stdout}"
    );
    assert!(
        stderr.contains("error: doctor found 1 problem(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");

    // A missing login.
    let ctx = TestContext::new();
    let (code, stdout, _) = doctor(&ctx, &bin).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("  none signed in"), "{stdout}");
    assert!(
        stdout.contains("  - no account is signed in: every request will fail\n    fix: `bitrouter login openai-codex`"),
        "{stdout}"
    );

    // A broken config.
    let ctx = world(&fake);
    ctx.write_config("server:\n  listen: 127.0.0.1:0\n  colour: blue\n");
    let (code, stdout, _) = doctor(&ctx, &bin).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "config: {} (invalid)",
            ctx.default_config_path().display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("  - the config does not load: ") && stdout.contains("colour"),
        "{stdout}"
    );
}

/// `service install` writes a unit that `systemd-analyze verify` accepts, and asks the user's
/// systemd (a fake `systemctl` here) to enable and start it; `uninstall` undoes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs systemd-analyze"]
async fn service_install_writes_a_unit_systemd_accepts_and_uninstall_removes_it() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let calls = ctx.root().join("systemctl-calls");
    let bin = fake_bin(
        &ctx,
        &[(
            "systemctl",
            &format!(
                "echo \"$*\" >> {}\ncase \"$2\" in is-enabled) echo enabled;; is-active) echo active;; esac",
                calls.display()
            ),
        )],
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let service = |action: &'static str| {
        let mut cmd = tokio::process::Command::from(ctx.std_cmd());
        cmd.env("PATH", &path).args(["service", action]);
        cmd
    };
    let out = service("install").output().await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let unit_path = ctx.config_home().join("systemd/user/bitrouter.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let exe = std::fs::canonicalize(assert_cmd::cargo::cargo_bin("bitrouter")).unwrap();
    assert!(
        unit.contains(&format!("ExecStart=\"{}\" \"serve\"\n", exe.display())),
        "{unit}"
    );
    assert!(
        unit.contains(&format!(
            "Environment=\"XDG_STATE_HOME={}\"\n",
            ctx.state_home().display()
        )),
        "{unit}"
    );
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit_path)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "systemd-analyze verify: {}\n{unit}",
        text(&verify.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "--user daemon-reload\n--user enable --now bitrouter.service\n"
    );

    let out = service("status").output().await.unwrap();
    assert_eq!(
        text(&out.stdout),
        format!(
            "service: installed ({}): enabled, active\n",
            unit_path.display()
        )
    );

    let out = service("uninstall").output().await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!unit_path.exists());
    assert!(
        std::fs::read_to_string(&calls)
            .unwrap()
            .ends_with("--user disable --now bitrouter.service\n--user daemon-reload\n")
    );
}

/// After an upgrade (the binary replaced while its server runs), `run` and `status` say the
/// server is older and how to restart it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_older_than_the_binary_is_reported_with_the_restart_command() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let bin_dir = ctx.root().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let copy = bin_dir.join("bitrouter");
    std::fs::copy(assert_cmd::cargo::cargo_bin("bitrouter"), &copy).unwrap();
    let with_copy = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(&copy);
        cmd.env_clear().envs(ctx.env_pairs()).args(args);
        cmd
    };
    let out = with_copy(&["serve", "--detach"]).output().await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // "Upgrade": the binary on disk is newer than the running server.
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    // (Read-only: a running program cannot be opened for writing; its owner may set times.)
    std::fs::File::open(&copy)
        .unwrap()
        .set_modified(later)
        .unwrap();

    let out = with_copy(&["run", "--", "true"]).output().await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("the running server started before this bitrouter binary was installed; restart it to use this version: `bitrouter stop && bitrouter serve --detach`"),
        "{}",
        text(&out.stderr)
    );
    let out = with_copy(&["status"]).output().await.unwrap();
    assert!(
        text(&out.stdout).contains("restart it with `bitrouter stop && bitrouter serve --detach`"),
        "{}",
        text(&out.stdout)
    );
}

/// Anthropic clients get Anthropic's list shape from `GET /v1/models`: the routes first, each
/// saying what it reaches; OpenAI clients keep the OpenAI shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_answer_anthropic_clients_in_their_shape() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let (seen, _) = run_echo(&ctx).await;
    let origin = seen.split(' ').nth(2).unwrap().to_owned();
    let client = http_client();
    let doc: serde_json::Value = client
        .get(format!("{origin}/v1/models?limit=1000"))
        .header("anthropic-version", "2023-06-01")
        .header("authorization", "Bearer bitrouter")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["has_more"], false);
    assert_eq!(doc["first_id"], "claude-haiku-4-5");
    let data = doc["data"].as_array().unwrap();
    assert_eq!(
        data[0],
        serde_json::json!({
            "type": "model",
            "id": "claude-haiku-4-5",
            "display_name": "claude-haiku-4-5",
            "description": "bitrouter route to openai-codex:gpt-6-luna",
            "created_at": "1970-01-01T00:00:00Z",
        })
    );
    assert_eq!(data[1]["id"], "claude-sonnet-4-5");
    let ids: Vec<&str> = data.iter().filter_map(|m| m["id"].as_str()).collect();
    assert!(ids.contains(&"gpt-6.1-sol"), "the catalog too: {ids:?}");
    assert_eq!(doc["last_id"], *ids.last().unwrap());

    let openai: serde_json::Value = client
        .get(format!("{origin}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai["object"], "list");
}

/// With `server.api_key` set, `run` hands the key to the client's environment (and only there);
/// `connect` names the variable instead, and shows the running server's real port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_hands_the_local_key_to_the_client_and_connect_never_prints_it() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    ctx.write_config(&format!(
        "server:\n  listen: 127.0.0.1:0\n  api_key: local-secret-key\nproviders:\n  openai-codex:\n    base_url: {}\n",
        fake.codex_base()
    ));
    let (seen, out) = run_echo(&ctx).await;
    assert!(seen.ends_with(" local-secret-key"), "{seen}");
    assert!(!text(&out.stderr).contains("local-secret-key"));
    let origin = seen.split(' ').nth(2).unwrap().to_owned();

    let out = bitrouter(&ctx, &["connect", "claude"]).await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("export ANTHROPIC_BASE_URL={origin}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("export ANTHROPIC_AUTH_TOKEN=\"$BITROUTER_API_KEY\"\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("local-secret-key"), "{stdout}");
}
