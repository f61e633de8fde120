//! `login --import` against a fake CODEX_HOME. The end-to-end check with the real Codex CLI
//! sharing the linked session across refreshes is in `codex_share`.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use pretty_assertions::assert_eq;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use bitrouter::auth::codex::{self, CodexHome, Location};
use bitrouter::auth::{Accounts, AuthError};
use bitrouter::config::Config;
use bitrouter::env::Env;
use bitrouter::ids::ProviderId;
use bitrouter::store::{CredentialKey, CredentialStore, FileStore};

use crate::support::TestContext;
use crate::support::fake_issuer::{FakeIssuer, jwt, now};

/// The Codex provider signing in at the fake issuer; its `base_url` is the fake's too, so
/// `status --refresh` asks the fake's usage endpoint, never the network.
fn codex_config(ctx: &TestContext, issuer: &FakeIssuer) {
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    oauth:\n      issuer: {}\n",
        issuer.codex_base(),
        issuer.url
    ));
}

/// An auth.json as the Codex CLI writes it, plus keys bitrouter does not know.
fn auth_doc(issuer: &FakeIssuer, exp: i64, refresh: &str) -> Value {
    issuer.add_refresh_token(refresh);
    json!({
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": jwt(&json!({
                "email": "codex@example.com",
                "https://api.openai.com/auth": {"chatgpt_account_id": "acc-default", "chatgpt_plan_type": "plus"}
            })),
            "access_token": issuer.make_access_token(exp),
            "refresh_token": refresh,
            "account_id": "acc-default",
            "future_token_field": "kept"
        },
        "last_refresh": "2026-08-07T10:11:12.123456789Z",
        "agent_identity": {"something": [1, 2, 3]}
    })
}

fn write_auth(dir: &Path, doc: &Value) {
    std::fs::write(
        dir.join("auth.json"),
        serde_json::to_string_pretty(doc).unwrap(),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("auth.json"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
}

fn read_auth(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("auth.json")).unwrap()).unwrap()
}

fn status_json(ctx: &TestContext, refresh: bool) -> Value {
    let mut cmd = ctx.cmd();
    cmd.args(["status", "--json"]);
    if refresh {
        cmd.arg("--refresh");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn import_from_auth_json_links_without_copying_tokens() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    codex_config(&ctx, &issuer);
    write_auth(
        &ctx.codex_home(),
        &auth_doc(&issuer, now() + 3600, "rt.codex-1"),
    );
    let out = ctx
        .cmd()
        .args(["login", "openai-codex", "--import", "--label", "shared"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Logged in to openai-codex as codex@example.com (label shared, plan pro), linked to the Codex CLI session in "),
        "{stderr}"
    );
    assert!(stderr.contains("auth.json, stored in file "), "{stderr}");

    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.token_file()).unwrap()).unwrap();
    let cred = &file["credentials"][0];
    assert_eq!(cred["source"], "codex:auth.json");
    assert!(cred.get("access_token").is_none(), "{cred}");
    assert_eq!(cred["refresh_token"], Value::Null);
    assert!(cred["codex_home"].as_str().unwrap().ends_with("codex"));

    let status = status_json(&ctx, false);
    let account = &status["accounts"][0];
    assert_eq!(account["source"], "codex:auth.json");
    assert_eq!(account["email"], "codex@example.com");
    assert_eq!(account["account_id"], "acc-default");
    assert_eq!(account["needs_login"], Value::Null);
    assert_eq!(issuer.counts().refreshes, 0);

    // Logging out unlinks; the Codex CLI session itself is left alone and not revoked.
    let out = ctx
        .cmd()
        .args(["logout", "openai-codex", "--label", "shared"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("unlinked; the Codex CLI session itself is untouched"),
        "{stderr}"
    );
    assert!(ctx.codex_home().join("auth.json").exists());
    assert_eq!(issuer.counts().revokes, 0);
}

#[test]
fn refresh_of_a_linked_session_is_written_back_with_unknown_keys_intact() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    codex_config(&ctx, &issuer);
    write_auth(
        &ctx.codex_home(),
        &auth_doc(&issuer, now() - 60, "rt.codex-1"),
    );
    let out = ctx
        .cmd()
        .args(["login", "openai-codex", "--import"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Two processes at once: one refresh, no reuse.
    let spawn = || {
        ctx.std_cmd()
            .args(["status", "--refresh", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    issuer.set_refresh_delay(std::time::Duration::from_millis(300));
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let counts = issuer.counts();
    assert_eq!((counts.refreshes, counts.reused), (1, 0), "{counts:?}");

    let doc = read_auth(&ctx.codex_home());
    assert_eq!(doc["auth_mode"], "chatgpt");
    assert_eq!(doc["OPENAI_API_KEY"], Value::Null);
    assert_eq!(doc["agent_identity"], json!({"something": [1, 2, 3]}));
    assert_eq!(doc["tokens"]["future_token_field"], "kept");
    assert_eq!(doc["tokens"]["account_id"], "acc-default");
    assert!(
        doc["tokens"]["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("rt.fake-")
    );
    let last = doc["last_refresh"].as_str().unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(last)
        .unwrap()
        .timestamp();
    assert!((now() - last).abs() < 60, "last_refresh updated");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ctx.codex_home().join("auth.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let status = status_json(&ctx, false);
    assert!(status["accounts"][0]["expires_at"].as_i64().unwrap() > now());
    // bitrouter's own file still holds no Codex tokens.
    let ours = std::fs::read_to_string(ctx.token_file()).unwrap();
    assert!(!ours.contains("rt.fake-"), "{ours}");
}

fn accounts(ctx: &TestContext, issuer: &FakeIssuer) -> Accounts {
    let config = Config::parse(
        &format!(
            "providers:\n  openai-codex:\n    oauth:\n      issuer: {}\n",
            issuer.url
        ),
        &Env::default(),
    )
    .unwrap();
    let store = Arc::new(FileStore::new(ctx.token_file()));
    Accounts::with_store(&config, store).unwrap()
}

fn key(label: &str) -> CredentialKey {
    CredentialKey::new(ProviderId::openai_codex(), label.parse().unwrap())
}

fn link(ctx: &TestContext, home: &CodexHome, label: &str) {
    let session = home.find().unwrap();
    let credential = codex::linked_credential(key(label), home, &session);
    let store = FileStore::new(ctx.token_file());
    let lock = store.lock().unwrap();
    store.save(&lock, &credential).unwrap();
}

#[test]
fn linked_session_follows_rewrites_by_the_codex_cli_without_refreshing() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    write_auth(
        &ctx.codex_home(),
        &auth_doc(&issuer, now() + 3600, "rt.codex-1"),
    );
    let home = CodexHome::at(ctx.codex_home());
    link(&ctx, &home, "default");
    let accounts = accounts(&ctx, &issuer);
    let rt = tokio::runtime::Runtime::new().unwrap();

    let first = rt.block_on(accounts.access(&key("default"))).unwrap();
    let doc = read_auth(&ctx.codex_home());
    assert_eq!(
        first.token.expose_secret(),
        doc["tokens"]["access_token"].as_str().unwrap()
    );
    assert_eq!(first.account_id.as_deref(), Some("acc-default"));

    // The Codex CLI refreshed on its own and rewrote the file.
    write_auth(
        &ctx.codex_home(),
        &auth_doc(&issuer, now() + 7200, "rt.codex-2"),
    );
    let second = rt.block_on(accounts.access(&key("default"))).unwrap();
    assert_ne!(first.token.expose_secret(), second.token.expose_secret());
    assert_eq!(
        second.token.expose_secret(),
        read_auth(&ctx.codex_home())["tokens"]["access_token"]
            .as_str()
            .unwrap()
    );
    // A 401 for the old token is answered with the new one, still without a refresh.
    let third = rt
        .block_on(accounts.refresh_after_unauthorized(&key("default"), &first.token))
        .unwrap();
    assert_eq!(third.token.expose_secret(), second.token.expose_secret());
    assert_eq!(issuer.counts().refreshes, 0);

    // Another account signed in to the Codex CLI: say so.
    let mut other = auth_doc(&issuer, now() + 3600, "rt.codex-3");
    other["tokens"]["account_id"] = json!("acc-someone-else");
    write_auth(&ctx.codex_home(), &other);
    let err = rt.block_on(accounts.access(&key("default"))).unwrap_err();
    assert!(matches!(err, AuthError::NeedsLogin { .. }), "{err}");
    assert!(err.to_string().contains("another account"), "{err}");

    // `codex logout` removed the session: say so.
    std::fs::remove_file(ctx.codex_home().join("auth.json")).unwrap();
    let err = rt.block_on(accounts.access(&key("default"))).unwrap_err();
    assert!(err.to_string().contains("is gone"), "{err}");
    assert!(
        err.to_string().contains("bitrouter login openai-codex"),
        "{err}"
    );
    let info = accounts.list().unwrap();
    assert!(info[0].needs_login.as_deref().unwrap().contains("is gone"));
}

#[test]
fn import_via_the_keyring_and_refresh_writes_back_to_it() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    std::fs::write(
        ctx.codex_home().join("config.toml"),
        "model = \"gpt-6-luna\"\ncli_auth_credentials_store = \"keyring\"\n",
    )
    .unwrap();
    let backend: bitrouter::store::Backend = keyring_core::mock::Store::new().unwrap();
    let home = CodexHome::at(ctx.codex_home()).with_keyring(Arc::clone(&backend));
    let account = home.keyring_account();
    let entry = backend.build("Codex Auth", &account, None).unwrap();
    entry
        .set_password(&auth_doc(&issuer, now() - 60, "rt.kr-1").to_string())
        .unwrap();

    let session = home.find().unwrap();
    assert_eq!(session.location, Location::Keyring(account.clone()));
    link(&ctx, &home, "default");
    let accounts = accounts(&ctx, &issuer);
    accounts.set_codex_keyring(Arc::clone(&backend));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let access = rt.block_on(accounts.access(&key("default"))).unwrap();
    assert_eq!(issuer.counts().refreshes, 1);

    let doc: Value = serde_json::from_str(&entry.get_password().unwrap()).unwrap();
    assert_eq!(
        doc["tokens"]["access_token"].as_str().unwrap(),
        access.token.expose_secret()
    );
    assert!(
        doc["tokens"]["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("rt.fake-")
    );
    assert_eq!(doc["agent_identity"], json!({"something": [1, 2, 3]}));
    let info = accounts.list().unwrap();
    assert_eq!(info[0].source, "codex:keyring");
    assert!(!ctx.codex_home().join("auth.json").exists());
}

#[test]
fn auto_mode_falls_back_to_auth_json() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    std::fs::write(
        ctx.codex_home().join("config.toml"),
        "cli_auth_credentials_store = \"auto\"\n",
    )
    .unwrap();
    write_auth(&ctx.codex_home(), &auth_doc(&issuer, now() + 3600, "rt.a"));
    let backend: bitrouter::store::Backend = keyring_core::mock::Store::new().unwrap();
    let home = CodexHome::at(ctx.codex_home()).with_keyring(backend);
    assert!(matches!(home.find().unwrap().location, Location::File(_)));
}

fn import_error(ctx: &TestContext) -> String {
    let out = ctx
        .cmd()
        .args(["login", "openai-codex", "--import"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!ctx.token_file().exists(), "nothing was stored");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn import_refuses_missing_api_key_and_malformed_sessions() {
    let ctx = TestContext::new();
    let stderr = import_error(&ctx);
    assert!(
        stderr.contains("error: no Codex CLI session in "),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: sign in to the Codex CLI first"),
        "{stderr}"
    );

    write_auth(
        &ctx.codex_home(),
        &json!({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-secret-key"}),
    );
    let stderr = import_error(&ctx);
    assert!(
        stderr.contains("uses an API key, not a ChatGPT sign-in"),
        "{stderr}"
    );
    assert!(stderr.contains("bitrouter login openai-codex"), "{stderr}");
    assert!(!stderr.contains("sk-secret-key"));

    // Legacy file without auth_mode: an API key and no tokens is an API-key session too.
    write_auth(
        &ctx.codex_home(),
        &json!({"OPENAI_API_KEY": "sk-secret-key"}),
    );
    let stderr = import_error(&ctx);
    assert!(stderr.contains("uses an API key"), "{stderr}");

    std::fs::write(
        ctx.codex_home().join("auth.json"),
        "{ \"tokens\": sk-secret",
    )
    .unwrap();
    let stderr = import_error(&ctx);
    assert!(stderr.contains("is malformed: not valid JSON"), "{stderr}");
    assert!(!stderr.contains("sk-secret"));

    std::fs::write(
        ctx.codex_home().join("config.toml"),
        "[features]\nsecret_auth_storage = true\n",
    )
    .unwrap();
    let stderr = import_error(&ctx);
    assert!(
        stderr.contains("`secret_auth_storage` is not supported"),
        "{stderr}"
    );
}

#[test]
fn legacy_auth_json_without_auth_mode_is_accepted() {
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    codex_config(&ctx, &issuer);
    let mut doc = auth_doc(&issuer, now() + 3600, "rt.legacy");
    doc.as_object_mut().unwrap().remove("auth_mode");
    write_auth(&ctx.codex_home(), &doc);
    let out = ctx
        .cmd()
        .args(["login", "openai-codex", "--import"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
