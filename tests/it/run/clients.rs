//! The real clients under `bitrouter run`: Claude Code (print mode on an on-demand server,
//! interactive in tmux, gateway model discovery) and the Codex CLI with one-shot overrides.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use std::path::PathBuf;

use super::{text, world};
use crate::support::TestContext;
use crate::support::fake_upstream::FakeUpstream;

/// `target/clients/`, where `scripts/install-clients.sh` installs the real clients.
fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/clients")
}

/// An installed client; the test fails, saying how to install it, when it is missing.
fn installed(relative: &str) -> PathBuf {
    let path = clients_dir().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/install-clients.sh`",
        path.display()
    );
    path
}

/// A PATH with the installed clients and their Node.js first, then the test's own PATH, for
/// `bitrouter run <client>`, which finds clients on PATH.
fn path_with_clients() -> String {
    let mut dirs = vec![
        clients_dir().join("node/node_modules/.bin"),
        clients_dir().join("node_modules/.bin"),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs)
        .expect("a PATH")
        .to_string_lossy()
        .into_owned()
}

/// Claude Code's environment in tests: no update checks, telemetry or error reports (there is no
/// network), and a working directory of its own.
fn claude_env(cmd: &mut tokio::process::Command, ctx: &TestContext) {
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    cmd.env("PATH", path_with_clients())
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_ERROR_REPORTING", "1")
        .current_dir(work);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Claude Code"]
async fn run_claude_print_starts_a_server_and_prints_the_backends_answer() {
    installed("node_modules/.bin/claude");
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
    let claude = installed("node_modules/.bin/claude");
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
    installed("node_modules/.bin/claude");
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
    installed("node_modules/.bin/codex");
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let config_toml = ctx.codex_home().join("config.toml");
    let original = b"# the user's own settings\nmodel = \"o3\"\napproval_policy = \"never\"\n\n[profiles.fast]\nmodel = \"gpt-5-mini\"\n";
    std::fs::write(&config_toml, original).unwrap();
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let mut cmd = tokio::process::Command::from(ctx.std_cmd());
    cmd.env("PATH", path_with_clients())
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
    installed("node_modules/.bin/claude");
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
        .env("PATH", path_with_clients())
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

/// Runs `bitrouter run <args>` with the installed clients on PATH, no stdin, within 120 s.
async fn run_client(ctx: &TestContext, extra_path: &[PathBuf], args: &[&str]) -> Output {
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut path: Vec<PathBuf> = extra_path.to_vec();
    path.extend(std::env::split_paths(&path_with_clients()));
    let mut cmd = tokio::process::Command::from(ctx.std_cmd());
    cmd.env("PATH", std::env::join_paths(path).unwrap())
        .current_dir(&work)
        .args(["run"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the client finished within 120 s")
        .unwrap()
}

/// The other command-line clients answer through `run`'s setup alone (no config file written):
/// opencode (`OPENCODE_CONFIG_CONTENT`), qwen-code (`OPENAI_*`), aider (`OPENAI_API_BASE`,
/// `AIDER_MODEL`) and llm (`OPENAI_BASE_URL`, `LLM_MODEL`, with the one-time registry entry
/// `connect llm` shows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs opencode, qwen-code, aider and llm"]
async fn run_starts_the_other_cli_clients_with_their_setup() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let aider_bin = installed("aider-venv/bin/aider")
        .parent()
        .unwrap()
        .to_path_buf();
    let llm_bin = installed("llm-venv/bin/llm")
        .parent()
        .unwrap()
        .to_path_buf();
    // The one-time registry entry `connect llm` prints (no address or key in it).
    let llm_dir = ctx.config_home().join("io.datasette.llm");
    std::fs::create_dir_all(&llm_dir).unwrap();
    std::fs::write(
        llm_dir.join("extra-openai-models.yaml"),
        "- model_id: gpt-6.1-sol\n  model_name: gpt-6.1-sol\n",
    )
    .unwrap();
    installed("node_modules/.bin/opencode");
    installed("node_modules/.bin/qwen");
    let cases: [(&str, Vec<PathBuf>, Vec<&str>); 4] = [
        ("opencode", vec![], vec!["opencode", "run", "say hi"]),
        ("qwen", vec![], vec!["qwen", "-p", "say hi"]),
        (
            "aider",
            vec![aider_bin],
            vec![
                "aider",
                "--message",
                "say hi",
                "--yes-always",
                "--no-git",
                "--no-check-update",
                "--no-show-model-warnings",
                "--no-analytics",
            ],
        ),
        ("llm", vec![llm_bin], vec!["llm", "say hi"]),
    ];
    let mut failures = Vec::new();
    for (name, extra, args) in cases {
        let out = run_client(&ctx, &extra, &args).await;
        let stdout = text(&out.stdout);
        if !out.status.success() || !stdout.contains(crate::support::fake_upstream::DEFAULT_TEXT) {
            failures.push(format!(
                "{name}: {}\nstdout:\n{stdout}\nstderr:\n{}",
                out.status,
                text(&out.stderr)
            ));
        }
    }
    let log = std::fs::read_to_string(ctx.state_dir().join("serve.log")).unwrap_or_default();
    assert!(
        failures.is_empty(),
        "{}\nserver log:\n{log}",
        failures.join("\n\n")
    );
}

/// The SDK clients run `python3`/`node` with their SDK's variables: a program that names no
/// address or key reaches bitrouter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python and Node SDKs"]
async fn run_starts_the_sdk_clients_with_their_setup() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let venv_bin = installed("venv/bin/python").parent().unwrap().to_path_buf();
    installed("node_modules/openai/package.json");
    installed("node_modules/@ai-sdk/openai/package.json");
    let cases: [(&str, &str); 5] = [
        (
            "openai-python",
            "from openai import OpenAI; print(OpenAI().responses.create(model='gpt-6.1-sol', input='hi').output_text)",
        ),
        (
            "anthropic-python",
            "from anthropic import Anthropic; print(Anthropic().messages.create(model='gpt-6.1-sol', max_tokens=64, messages=[{'role': 'user', 'content': 'hi'}]).content[0].text)",
        ),
        (
            "langchain",
            "from langchain_openai import ChatOpenAI; print(ChatOpenAI(model='gpt-6.1-sol').invoke('hi').content)",
        ),
        (
            "openai-node",
            "const OpenAI = require('openai'); new OpenAI().responses.create({model: 'gpt-6.1-sol', input: 'hi'}).then(r => console.log(r.output_text));",
        ),
        (
            "vercel-ai",
            "const {generateText} = require('ai'); const {openai} = require('@ai-sdk/openai'); generateText({model: openai('gpt-6.1-sol'), prompt: 'hi'}).then(r => console.log(r.text));",
        ),
    ];
    let mut failures = Vec::new();
    for (client, program) in cases {
        let flag = if client.ends_with("-node") || client == "vercel-ai" {
            "-e"
        } else {
            "-c"
        };
        let mut path = vec![venv_bin.clone()];
        path.extend(std::env::split_paths(&path_with_clients()));
        let mut cmd = tokio::process::Command::from(ctx.std_cmd());
        cmd.env("PATH", std::env::join_paths(path).unwrap())
            .env("NODE_PATH", clients_dir().join("node_modules"))
            .args(["run", client, flag, program])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("the SDK finished within 120 s")
            .unwrap();
        let stdout = text(&out.stdout);
        if !out.status.success() || !stdout.contains(crate::support::fake_upstream::DEFAULT_TEXT) {
            failures.push(format!(
                "{client}: {}\nstdout:\n{stdout}\nstderr:\n{}",
                out.status,
                text(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
