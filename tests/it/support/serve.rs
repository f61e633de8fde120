//! A `bitrouter serve` child process on 127.0.0.1:0: started with the test's private
//! environment, its port read from the `listening on http://…` line, its stderr collected, and
//! killed when dropped. Plus seeding of the token file the server reads.

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::TestContext;

/// One stored credential for the token file.
pub struct Token<'a> {
    pub provider: &'a str,
    pub label: &'a str,
    pub token: &'a str,
    pub account_id: Option<&'a str>,
}

/// Writes `$XDG_DATA_HOME/bitrouter/oauth-tokens.json` with these credentials.
pub fn seed_tokens(ctx: &TestContext, tokens: &[Token<'_>]) {
    let credentials: Vec<_> = tokens
        .iter()
        .map(|t| {
            json!({
                "provider": t.provider, "label": t.label, "kind": "oauth",
                "access_token": t.token, "refresh_token": format!("rt-{}", t.label),
                "id_token": null, "expires_at": 4_102_444_800_i64, "account_id": t.account_id,
                "email": format!("{}@example.com", t.label), "plan": "plus",
                "last_refresh": 1_790_000_000, "source": "login", "needs_login": null
            })
        })
        .collect();
    let path = ctx.token_file();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json!({"version": 1, "credentials": credentials})).unwrap(),
    )
    .unwrap();
    // The store refuses token files other users could read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// A running `bitrouter serve`.
pub struct ServeProcess {
    child: Child,
    pub port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// Starts `bitrouter serve --listen 127.0.0.1:0` plus `args` and waits for its port.
    pub async fn start(ctx: &TestContext, args: &[&str]) -> ServeProcess {
        let mut cmd = ctx.std_cmd();
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(args);
        ServeProcess::spawn(cmd).await
    }

    /// Starts `bitrouter serve --listen 127.0.0.1:0` through a wrapper program (`wrapper[0]`
    /// with `wrapper[1..]`, then the binary and its arguments), e.g. to run it with fewer
    /// capabilities or a resource limit, and waits for its port.
    pub async fn start_wrapped(ctx: &TestContext, wrapper: &[&str]) -> ServeProcess {
        let mut cmd = std::process::Command::new(wrapper[0]);
        cmd.env_clear();
        for (k, v) in ctx.env_pairs() {
            cmd.env(k, v);
        }
        cmd.args(&wrapper[1..])
            .arg(assert_cmd::cargo::cargo_bin("bitrouter"))
            .args(["serve", "--listen", "127.0.0.1:0"]);
        ServeProcess::spawn(cmd).await
    }

    /// Starts `cmd` (a `bitrouter serve` command line) and waits for its port.
    pub async fn spawn(mut cmd: std::process::Command) -> ServeProcess {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn bitrouter serve");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let found = lines.lock().unwrap().iter().find_map(|l| {
                l.strip_prefix("listening on http://127.0.0.1:")
                    .and_then(|p| p.trim().parse::<u16>().ok())
            });
            if let Some(port) = found {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "bitrouter serve exited with {status}:\n{}",
                    lines.lock().unwrap().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "bitrouter serve did not print its address:\n{}",
                lines.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        ServeProcess { child, port, lines }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// How many stderr lines contain `needle`.
    pub fn count_in_stderr(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until at least `n` stderr lines contain `needle`.
    pub async fn wait_for_stderr(&self, needle: &str, n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.count_in_stderr(needle) >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Sends a signal (`TERM`, `HUP`, …).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client for tests (no proxy, no pooling surprises).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A running bitrouter in front of the fake Codex backend, with one signed-in account `work`
/// (access token `tok-work`, account id `acc-work`).
pub async fn codex_server(
    fake: &super::fake_upstream::FakeUpstream,
) -> (TestContext, ServeProcess) {
    let ctx = codex_world(fake);
    let server = ServeProcess::start(&ctx, &[]).await;
    (ctx, server)
}

/// The world of [`codex_server`], before its server starts.
pub fn codex_world(fake: &super::fake_upstream::FakeUpstream) -> TestContext {
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
    ctx
}
