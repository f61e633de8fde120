//! Browser sign-in: the printed URL, tokens stored under a label, two labels side by side,
//! timeouts, a busy callback port, a denied or cancelled sign-in.

use pretty_assertions::assert_eq;

use super::*;

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
