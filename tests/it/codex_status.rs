//! The real Codex CLI's `/status` through bitrouter, driven in a terminal (tmux): in ChatGPT
//! login mode with `chatgpt_base_url` on bitrouter's HTTPS (trusting bitrouter's local CA), it
//! asks bitrouter for its workspace and usage and shows the serving account's 5-hour and weekly
//! quota — in the `/status` card and in its status line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::TestContext;
use crate::support::clients;
use crate::support::fake_upstream::FakeUpstream;
use crate::support::serve::{ServeProcess, Token, seed_tokens};

/// A tmux server of the test's own (its socket in the test's directory), killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "codex", "-S", "-200"])
    }

    fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", "codex", "-l", text]);
        std::thread::sleep(Duration::from_millis(300));
        self.enter();
    }

    fn enter(&self) {
        self.run(&["send-keys", "-t", "codex", "Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// An unsigned JWT (the Codex CLI accepts them in auth.json).
fn unsigned_jwt(claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.sig",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims.to_string())
    )
}

/// A ChatGPT sign-in of the Codex CLI's own (the mode in which it shows usage).
fn write_codex_login(codex_home: &Path) {
    let auth = serde_json::json!({"chatgpt_account_id": "acc-cli", "chatgpt_plan_type": "plus", "chatgpt_user_id": "user-cli"});
    let id_token = unsigned_jwt(
        &serde_json::json!({"email": "cli@example.com", "exp": 4_102_444_800_i64, "https://api.openai.com/auth": auth}),
    );
    let access_token = unsigned_jwt(
        &serde_json::json!({"exp": 4_102_444_800_i64, "https://api.openai.com/auth": auth}),
    );
    std::fs::write(
        codex_home.join("auth.json"),
        serde_json::json!({
            "auth_mode": "chatgpt", "OPENAI_API_KEY": null,
            "tokens": {"id_token": id_token, "access_token": access_token, "refresh_token": "rt-cli", "account_id": "acc-cli"},
            "last_refresh": "2026-11-30T00:00:00Z"
        })
        .to_string(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Codex CLI and tmux"]
async fn codex_cli_status_shows_the_serving_accounts_quota() {
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
        "providers:\n  openai-codex:\n    base_url: {}\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    let ca = ctx.data_home().join("bitrouter/tls/ca.pem");
    assert!(ca.is_file(), "serve made its local CA: {}", server.stderr());

    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    write_codex_login(&ctx.codex_home());
    std::fs::write(
        ctx.codex_home().join("config.toml"),
        format!(
            "model = \"gpt-6-luna\"\nmodel_provider = \"bitrouter\"\nchatgpt_base_url = \"https://127.0.0.1:{port}/backend-api/\"\n\n[model_providers.bitrouter]\nname = \"bitrouter\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nwire_api = \"responses\"\nrequires_openai_auth = true\n\n[projects.\"{work}\"]\ntrust_level = \"trusted\"\n\n[tui]\nstatus_line = [\"five-hour-limit\", \"weekly-limit\"]\n",
            port = server.port,
            work = work.display()
        ),
    )
    .unwrap();

    let tmux = Tmux {
        socket: ctx.root().join("tmux.sock"),
    };
    let mut env = clients::node_env(&ctx);
    env.push(("CODEX_CA_CERTIFICATE".to_owned(), ca.display().to_string()));
    env.push(("TERM".to_owned(), "xterm-256color".to_owned()));
    let mut args: Vec<String> = vec![
        "new-session".into(),
        "-d".into(),
        "-s".into(),
        "codex".into(),
        "-x".into(),
        "160".into(),
        "-y".into(),
        "50".into(),
        "-c".into(),
        work.display().to_string(),
    ];
    for (k, v) in &env {
        args.push("-e".into());
        args.push(format!("{k}={v}"));
    }
    // `--no-daemon`: no background app server outlives the test.
    args.push(format!("{} --no-daemon --disable apps", codex.display()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tmux.run(&args);

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_status = Instant::now() - Duration::from_secs(10);
    let screen = loop {
        let screen = tmux.screen();
        if screen.contains("5h limit:") && screen.contains("Weekly limit:") {
            break screen;
        }
        assert!(
            Instant::now() < deadline,
            "no limits on the screen:\n{screen}\nbitrouter:\n{}",
            server.stderr()
        );
        if last_status.elapsed() > Duration::from_secs(3) {
            if screen.contains("Ask Codex") {
                tmux.type_line("/status");
                last_status = Instant::now();
            } else if screen.lines().any(|l| l.trim_end() == "› /status") {
                // Typed but not sent: on a busy machine the Enter can come before the command
                // popup takes keys, and the command then waits in the composer.
                tmux.enter();
                last_status = Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // The fake account's usage: 38% of the 5-hour window and 20% of the week used.
    let line = |label: &str| {
        screen
            .lines()
            .rev()
            .find(|l| l.contains(label))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("5h limit:").contains("62% left"), "{screen}");
    assert!(line("Weekly limit:").contains("80% left"), "{screen}");
    assert!(
        screen.contains("5h 62% left") && screen.contains("weekly 80% left"),
        "the status line shows them too:\n{screen}"
    );
    let asked: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        asked.contains(&"GET /backend-api/wham/usage".to_owned()),
        "bitrouter asked the backend for the serving account's usage: {asked:?}"
    );
    let usage = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/backend-api/wham/usage")
        .unwrap();
    assert_eq!(
        usage.header("authorization").as_deref(),
        Some("Bearer tok-work")
    );
    assert!(server.stderr().contains("path=/backend-api/wham/usage"));
}
