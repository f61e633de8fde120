//! `bitrouter run`, the background server (`serve --detach`, `stop`, the state directory's lock),
//! `doctor` and `service`, through the real binary: servers started on demand on a port the
//! kernel picks (`listen: 127.0.0.1:0`, found again through the state directory's record),
//! killed when the test's world is dropped.

/// The real clients under `run`: Claude Code (print mode, interactive in tmux, gateway model
/// discovery) and the Codex CLI.
mod clients;
/// `doctor` and `service`.
mod doctor;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::TestContext;
use crate::support::fake_upstream::FakeUpstream;
use crate::support::serve::{Token, http_client, seed_tokens};

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
        // A zombie whose other threads have exited too (until they have, they still hold the
        // process's files, its lock among them).
        Ok(stat) => {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
                && std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count) <= 1
        }
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
