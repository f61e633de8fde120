use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::fake_issuer::{FakeIssuer, now};

/// The Codex provider signing in at the fake issuer; its `base_url` is the fake's too, so
/// `status --refresh` asks the fake's usage endpoint, never the network.
fn codex_config(ctx: &TestContext, issuer: &FakeIssuer, extra: &str) {
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    oauth:\n      issuer: {}\n      callback_port: 0\n{extra}",
        issuer.codex_base(),
        issuer.url
    ));
}

/// A plain HTTP/1.1 GET (the tests' "browser"; no redirects followed).
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn get(url: &str) -> Resp {
    use std::io::Write;
    let url = url::Url::parse(url).unwrap();
    let port = url.port().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {}:{port}\r\nConnection: close\r\n\r\n",
        url.host_str().unwrap()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A running `bitrouter login` whose stderr lines arrive on a channel.
struct LoginChild {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl LoginChild {
    fn spawn(ctx: &TestContext, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = ctx.std_cmd();
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LoginChild {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line matching `pred`.
    fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no matching line; saw {:#?}", self.seen));
            self.seen.push(line.clone());
            if pred(&line) {
                return line;
            }
        }
    }

    /// Waits for exit; returns success and the whole stderr.
    fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "", "login prints nothing on stdout");
        (status.success(), self.seen.join("\n"))
    }
}

fn authorize_url(line: &str) -> String {
    line.trim().to_owned()
}

fn redirect_port(authorize: &str) -> u16 {
    let url = url::Url::parse(authorize).unwrap();
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .to_string();
    url::Url::parse(&redirect).unwrap().port().unwrap()
}

/// Plays the browser: follows the authorize URL to the loopback callback; returns the page.
fn play_browser(authorize: &str) -> (u16, String) {
    let resp = get(authorize);
    assert_eq!(resp.status, 302, "{}", resp.body);
    let location = resp.header("location").unwrap().to_owned();
    assert!(location.starts_with("http://localhost:"), "{location}");
    let resp = get(&location);
    assert_eq!(resp.header("connection"), Some("close"));
    (resp.status, resp.body)
}

fn login(ctx: &TestContext, label: &str) -> String {
    let mut child = LoginChild::spawn(
        ctx,
        &["login", "openai-codex", "--no-browser", "--label", label],
        &[],
    );
    let url = authorize_url(&child.wait_line(|l| l.contains("/oauth/authorize?")));
    let (status, page) = play_browser(&url);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Signed in"), "{page}");
    let (ok, stderr) = child.finish();
    assert!(ok, "{stderr}");
    stderr
}

fn status_json(ctx: &TestContext) -> Value {
    let out = ctx.cmd().args(["status", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn token_file(ctx: &TestContext) -> Value {
    serde_json::from_str(&std::fs::read_to_string(ctx.token_file()).unwrap()).unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// On a machine without a browser (no graphical session: the tests' environment has no
/// `DISPLAY`), a plain `login` prints the sign-in URL once, says no browser could be opened and
/// suggests `--device-auth`, with no launcher error, and still completes through the callback.
#[test]
fn login_without_a_browser_prints_the_url_once_and_suggests_device_auth() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    issuer.set_identity("work@example.com", "pro", "acc-work");
    codex_config(&ctx, &issuer, "");

    let mut child = LoginChild::spawn(&ctx, &["login", "openai-codex"], &[]);
    let url = authorize_url(&child.wait_line(|l| l.contains("/oauth/authorize?")));
    child.wait_line(|l| l.contains("--device-auth"));
    let (status, page) = play_browser(&url);
    assert_eq!(status, 200, "{page}");
    let (ok, stderr) = child.finish();
    assert!(ok, "{stderr}");
    assert_eq!(stderr.matches("/oauth/authorize?").count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "No browser could be opened here: open the URL above in one, or sign in with a code from any device instead: bitrouter login openai-codex --device-auth"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Launcher") && !stderr.contains("Could not open"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Logged in to openai-codex as work@example.com"),
        "{stderr}"
    );
}

#[test]
fn login_no_browser_stores_tokens_under_label() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    issuer.set_identity("work@example.com", "pro", "acc-work");
    codex_config(&ctx, &issuer, "");

    let mut child = LoginChild::spawn(
        &ctx,
        &["login", "openai-codex", "--no-browser", "--label", "work"],
        &[],
    );
    let url = authorize_url(&child.wait_line(|l| l.contains("/oauth/authorize?")));
    assert!(url.starts_with(&format!("{}/oauth/authorize?", issuer.url)));
    let port = redirect_port(&url);
    assert_ne!(port, 0, "the redirect URI names the port actually bound");

    // Stray requests do not end the login.
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(get(&format!("{base}/favicon.ico")).status, 404);
    let r = get(&format!("{base}/auth/callback?code=evil&state=wrong"));
    assert_eq!(r.status, 400);
    assert_eq!(r.body, "State mismatch");
    assert_eq!(get(&format!("{base}/auth/callback?code=evil")).status, 400);

    let (status, page) = play_browser(&url);
    assert_eq!(status, 200, "{page}");
    let (ok, stderr) = child.finish();
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(
            "Logged in to openai-codex as work@example.com (label work, plan pro), stored in file "
        ),
        "{stderr}"
    );
    assert_eq!(issuer.errors(), Vec::<String>::new());
    assert_eq!(issuer.counts().code_exchanges, 1);

    #[cfg(unix)]
    assert_eq!(mode(&ctx.token_file()), 0o600);
    let file = token_file(&ctx);
    assert_eq!(file["version"], 1);
    let cred = &file["credentials"][0];
    assert_eq!(cred["provider"], "openai-codex");
    assert_eq!(cred["label"], "work");
    assert_eq!(cred["kind"], "oauth");
    assert_eq!(cred["source"], "login");
    assert_eq!(cred["email"], "work@example.com");
    assert_eq!(cred["account_id"], "acc-work");
    assert!(
        cred["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("rt.fake-")
    );
    assert!(cred["expires_at"].as_i64().unwrap() > now());

    let status = status_json(&ctx);
    let account = &status["accounts"][0];
    assert_eq!(account["provider"], "openai-codex");
    assert_eq!(account["label"], "work");
    assert_eq!(account["email"], "work@example.com");
    assert_eq!(account["plan"], "pro");
    assert_eq!(account["account_id"], "acc-work");
    assert_eq!(account["store"], "file");
    assert_eq!(account["needs_login"], Value::Null);
    let text = status.to_string();
    assert!(!text.contains("rt.fake"), "status never shows a token");
    assert!(!text.contains(cred["access_token"].as_str().unwrap()));
}

#[test]
fn two_labels_side_by_side_and_logout_removes_exactly_one() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    codex_config(&ctx, &issuer, "");
    issuer.set_identity("work@example.com", "team", "acc-work");
    login(&ctx, "work");
    issuer.set_identity("me@example.com", "plus", "acc-me");
    login(&ctx, "personal");

    let status = status_json(&ctx);
    let labels: Vec<(String, String)> = status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["label"].as_str().unwrap().to_owned(),
                a["email"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("personal".to_owned(), "me@example.com".to_owned()),
            ("work".to_owned(), "work@example.com".to_owned())
        ]
    );
    let table = ctx.cmd().arg("status").output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("PROVIDER"), "{table}");
    assert!(table.contains("work@example.com"), "{table}");

    let rt_work = token_file(&ctx)["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == "work")
        .unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = ctx
        .cmd()
        .args(["logout", "openai-codex", "--label", "work"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Logged out of openai-codex (label work), removed from file "),
        "{stderr}"
    );
    assert_eq!(issuer.revoked(), [rt_work]);
    let status = status_json(&ctx);
    let accounts = status["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["label"], "personal");

    let out = ctx
        .cmd()
        .args(["logout", "openai-codex", "--label", "work"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not logged in to openai-codex with label work"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: stored labels for openai-codex: personal"),
        "{stderr}"
    );
}

#[test]
fn login_times_out_with_a_clear_message() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    codex_config(&ctx, &issuer, "");
    let out = ctx
        .cmd()
        .args(["login", "openai-codex", "--no-browser"])
        .env("BITROUTER_LOGIN_TIMEOUT", "0.5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: timed out after 0.5 seconds waiting for the browser sign-in"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: run the command again"), "{stderr}");
    assert!(!ctx.token_file().exists());
}

#[test]
fn busy_callback_port_names_the_likely_culprit() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    oauth:\n      issuer: {}\n      callback_port: {port}\n",
        issuer.url
    ));
    let out = ctx
        .cmd()
        .args(["login", "openai-codex", "--no-browser"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {port} on 127.0.0.1 is in use")),
        "{stderr}"
    );
    assert!(stderr.contains("codex login"), "{stderr}");
}

#[test]
fn device_code_login_polls_until_approved() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    codex_config(&ctx, &issuer, "");
    issuer.set_identity("dev@example.com", "plus", "acc-dev");
    issuer.set_device_pending(2);
    let out = ctx
        .cmd()
        .args(["login", "openai-codex", "--device-auth", "--label", "box"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}/codex/device", issuer.url)),
        "{stderr}"
    );
    assert!(stderr.contains("ABCD-1234"), "{stderr}");
    assert!(
        stderr.contains("Logged in to openai-codex as dev@example.com (label box, plan plus)"),
        "{stderr}"
    );
    let counts = issuer.counts();
    assert_eq!(counts.device_polls, 3);
    assert_eq!(counts.code_exchanges, 1);
    assert_eq!(issuer.errors(), Vec::<String>::new());
    assert_eq!(status_json(&ctx)["accounts"][0]["label"], "box");
}

#[test]
fn device_code_login_times_out() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    codex_config(&ctx, &issuer, "");
    issuer.set_device_pending(usize::MAX);
    let out = ctx
        .cmd()
        .args(["login", "openai-codex", "--device-auth"])
        .env("BITROUTER_LOGIN_TIMEOUT", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("timed out after 1 second waiting for the device code approval"),
        "{stderr}"
    );
    assert!(issuer.counts().device_polls >= 2);
}

#[test]
fn device_code_login_not_enabled() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    codex_config(&ctx, &issuer, "");
    issuer.set_device_enabled(false);
    let out = ctx
        .cmd()
        .args(["login", "openai-codex", "--device-auth"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("device code login is not enabled"),
        "{stderr}"
    );
}

#[test]
fn unknown_provider_is_a_usage_error_listing_providers() {
    let ctx = TestContext::new();
    let out = ctx.cmd().args(["login", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: unknown provider `nope`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: known providers: openai-codex"),
        "{stderr}"
    );
    let out = ctx
        .cmd()
        .args(["login", "openai-codex", "--label", "Bad Label"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn api_key_from_stdin_is_stored_for_a_key_provider() {
    let ctx = TestContext::new();
    ctx.write_config(
        "providers:\n  openai:\n    base_url: https://api.openai.com/v1\n    auth_mode: override\n",
    );
    let out = ctx
        .cmd()
        .args(["login", "openai", "--api-key-stdin", "--label", "team"])
        .write_stdin("sk-test-123\n")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Stored an API key for openai (label team)"),
        "{stderr}"
    );
    assert!(!stderr.contains("sk-test-123"));
    let cred = &token_file(&ctx)["credentials"][0];
    assert_eq!(cred["kind"], "api_key");
    assert_eq!(cred["source"], "api-key");
    assert_eq!(cred["access_token"], "sk-test-123");
    let status = status_json(&ctx);
    assert_eq!(status["accounts"][0]["kind"], "api_key");

    let out = ctx.cmd().args(["login", "openai"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api-key-stdin"));
}

fn write_private(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn corrupt_token_file_is_reported_and_not_overwritten() {
    let ctx = TestContext::new();
    let text = "{\"version\": 1, \"credentials\": [ oops";
    write_private(&ctx.token_file(), text);
    for args in [vec!["status"], vec!["logout", "openai-codex"]] {
        let out = ctx.cmd().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is corrupt"), "{stderr}");
        assert!(
            stderr.contains("hint: bitrouter will not overwrite it"),
            "{stderr}"
        );
    }
    ctx.write_config("providers:\n  openai:\n    base_url: https://api.openai.com/v1\n");
    let out = ctx
        .cmd()
        .args(["login", "openai", "--api-key-stdin"])
        .write_stdin("sk-x\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(ctx.token_file()).unwrap(), text);
}

#[cfg(unix)]
#[test]
fn world_readable_token_file_is_reported_and_not_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let ctx = TestContext::new();
    let text = r#"{"version": 1, "credentials": []}"#;
    write_private(&ctx.token_file(), text);
    std::fs::set_permissions(ctx.token_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    ctx.write_config("providers:\n  openai:\n    base_url: https://api.openai.com/v1\n");
    let out = ctx
        .cmd()
        .args(["login", "openai", "--api-key-stdin"])
        .write_stdin("sk-x\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("readable by other users (mode 644)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: make it private with `chmod 600"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(ctx.token_file()).unwrap(), text);
    assert_eq!(mode(&ctx.token_file()), 0o644);
}

/// Seeds an expired sign-in whose refresh token the fake issuer knows.
fn seed_expired(ctx: &TestContext, issuer: &FakeIssuer, labels: &[&str]) {
    let credentials: Vec<Value> = labels
        .iter()
        .map(|label| {
            let rt = format!("rt.seed-{label}");
            issuer.add_refresh_token(&rt);
            json!({
                "provider": "openai-codex", "label": label, "kind": "oauth",
                "access_token": issuer.make_access_token(now() - 60), "refresh_token": rt,
                "id_token": null, "expires_at": now() - 60, "account_id": "acc-default",
                "email": "you@example.com", "plan": "pro", "last_refresh": now() - 864_000,
                "source": "login", "needs_login": null
            })
        })
        .collect();
    write_private(
        &ctx.token_file(),
        &json!({"version": 1, "credentials": credentials}).to_string(),
    );
}

#[test]
fn two_processes_refreshing_at_once_refresh_once() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    codex_config(&ctx, &issuer, "");
    seed_expired(&ctx, &issuer, &["default"]);
    // Keep the first refresh in flight while the second process arrives.
    issuer.set_refresh_delay(Duration::from_millis(500));
    let spawn = || {
        ctx.std_cmd()
            .args(["status", "--refresh", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["accounts"][0]["needs_login"], Value::Null);
        assert!(status["accounts"][0]["expires_at"].as_i64().unwrap() > now());
    }
    let counts = issuer.counts();
    assert_eq!(counts.refreshes, 1, "{counts:?}");
    assert_eq!(counts.reused, 0);
    let cred = &token_file(&ctx)["credentials"][0];
    assert!(
        cred["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("rt.fake-")
    );
}

fn accounts(ctx: &TestContext, issuer: &FakeIssuer) -> bitrouter::auth::Accounts {
    let config = bitrouter::config::Config::parse(
        &format!(
            "providers:\n  openai-codex:\n    oauth:\n      issuer: {}\n    accounts: [work]\n",
            issuer.url
        ),
        &bitrouter::env::Env::default(),
    )
    .unwrap();
    let store = std::sync::Arc::new(bitrouter::store::FileStore::new(ctx.token_file()));
    bitrouter::auth::Accounts::with_store(&config, store).unwrap()
}

fn key(label: &str) -> bitrouter::store::CredentialKey {
    bitrouter::store::CredentialKey::new(
        bitrouter::ids::ProviderId::openai_codex(),
        label.parse().unwrap(),
    )
}

#[test]
fn twenty_tasks_share_one_refresh() {
    use secrecy::ExposeSecret;
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    seed_expired(&ctx, &issuer, &["default"]);
    issuer.set_refresh_delay(Duration::from_millis(200));
    let accounts = accounts(&ctx, &issuer);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let tokens: Vec<String> = rt.block_on(async {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let accounts = accounts.clone();
                let barrier = std::sync::Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    let access = accounts.access(&key("default")).await.unwrap();
                    assert_eq!(access.account_id.as_deref(), Some("acc-default"));
                    access.token.expose_secret().to_owned()
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(issuer.counts().refreshes, 1);
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "every task got the new token"
    );
    let stored = token_file(&ctx)["credentials"][0]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stored, tokens[0], "the rotated tokens were persisted first");
}

#[test]
fn reused_refresh_token_marks_needs_login_and_unauthorized_retry_refreshes_once() {
    use secrecy::ExposeSecret;
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    seed_expired(&ctx, &issuer, &["default", "work"]);
    let accounts = accounts(&ctx, &issuer);
    let rt = tokio::runtime::Runtime::new().unwrap();

    // `accounts: [work]` puts work first, then the rest sorted.
    let labels: Vec<String> = accounts
        .labels(&bitrouter::ids::ProviderId::openai_codex())
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(labels, ["work", "default"]);

    // A 401 on a fresh token forces exactly one refresh; a second 401 with the old token
    // returns the already-refreshed one.
    let first = rt.block_on(accounts.access(&key("work"))).unwrap();
    assert_eq!(issuer.counts().refreshes, 1);
    let second = rt
        .block_on(accounts.refresh_after_unauthorized(&key("work"), &first.token))
        .unwrap();
    assert_eq!(issuer.counts().refreshes, 2);
    let third = rt
        .block_on(accounts.refresh_after_unauthorized(&key("work"), &first.token))
        .unwrap();
    assert_eq!(issuer.counts().refreshes, 2);
    assert_eq!(second.token.expose_secret(), third.token.expose_secret());

    // Someone burned the `default` refresh token elsewhere: permanent failure.
    let http = bitrouter::auth::http_client().unwrap();
    let resp = rt
        .block_on(
            http.post(format!("{}/oauth/token", issuer.url))
                .json(&json!({"client_id": "app_EMoamEEZ73f0CkXaXp7hrann", "grant_type": "refresh_token", "refresh_token": "rt.seed-default"}))
                .send(),
        )
        .unwrap();
    assert!(resp.status().is_success());
    let err = rt.block_on(accounts.access(&key("default"))).unwrap_err();
    assert!(err.needs_login(), "{err}");
    assert!(err.to_string().contains("already used"), "{err}");
    let info = accounts.list().unwrap();
    let default = info.iter().find(|a| a.label.as_str() == "default").unwrap();
    assert!(
        default
            .needs_login
            .as_deref()
            .unwrap()
            .contains("already used")
    );
    // Marked: no further calls to the token endpoint.
    let before = issuer.counts().refreshes;
    assert!(rt.block_on(accounts.access(&key("default"))).is_err());
    assert_eq!(issuer.counts().refreshes, before);

    let missing = rt.block_on(accounts.access(&key("nobody"))).unwrap_err();
    assert!(matches!(
        missing,
        bitrouter::auth::AuthError::NotLoggedIn { .. }
    ));
}

#[test]
fn denied_or_cancelled_sign_in_ends_the_login_with_a_message() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    codex_config(&ctx, &issuer, "");

    let mut child = LoginChild::spawn(&ctx, &["login", "openai-codex", "--no-browser"], &[]);
    let url = authorize_url(&child.wait_line(|l| l.contains("/oauth/authorize?")));
    let state = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let page = get(&format!(
        "http://127.0.0.1:{}/auth/callback?state={state}&error=access_denied&error_description=missing_codex_entitlement",
        redirect_port(&url)
    ));
    assert_eq!(page.status, 400);
    assert_eq!(page.header("connection"), Some("close"));
    assert!(
        page.body
            .contains("Codex is not enabled for your workspace"),
        "{}",
        page.body
    );
    let (ok, stderr) = child.finish();
    assert!(!ok);
    assert!(
        stderr.contains("error: sign-in was refused: Codex is not enabled"),
        "{stderr}"
    );

    let mut child = LoginChild::spawn(&ctx, &["login", "openai-codex", "--no-browser"], &[]);
    let url = authorize_url(&child.wait_line(|l| l.contains("/oauth/authorize?")));
    let page = get(&format!("http://127.0.0.1:{}/cancel", redirect_port(&url)));
    assert_eq!((page.status, page.body.as_str()), (200, "Login cancelled"));
    let (ok, stderr) = child.finish();
    assert!(!ok);
    assert!(stderr.contains("error: login cancelled"), "{stderr}");
    assert!(!ctx.token_file().exists());
    assert_eq!(issuer.counts().code_exchanges, 0);
}
