//! Device-code sign-in, API keys read from stdin, and unknown providers.

use pretty_assertions::assert_eq;

use super::*;

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
