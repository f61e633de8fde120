//! The token file: a damaged or exposed file is refused and left untouched, and concurrent
//! refreshes (processes, tasks, a reused refresh token) refresh once.

use pretty_assertions::assert_eq;

use super::*;

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
