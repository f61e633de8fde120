//! `bitrouter usage` without a history or on a damaged file, and `history: off`.

use std::time::Duration;

use serde_json::Value;

use crate::support::TestContext;
use crate::support::fake_upstream::FakeUpstream;
use crate::support::history::{history_file, responses_body, send};
use crate::support::serve::{ServeProcess, Token, seed_tokens};

#[tokio::test]
async fn history_off_stores_nothing() {
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
        "providers:\n  openai-codex:\n    base_url: {}\nhistory: off\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    let status = send(
        &server,
        "/v1/responses",
        "curl/8.5.0",
        &[],
        &responses_body("openai-codex:gpt-6.1-sol", true, "hi"),
    )
    .await;
    assert_eq!(status, 200);
    // The access line is written when the answer ends; by then a row would have been queued.
    assert!(
        server
            .wait_for_stderr("request", 1, Duration::from_secs(10))
            .await
    );
    drop(server);
    assert!(!history_file(&ctx).exists());
    let out = ctx.cmd().arg("usage").output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("history is off"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_without_history_is_an_empty_report() {
    let ctx = TestContext::new();
    let out = ctx.cmd().args(["usage", "--json"]).output().unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["totals"]["requests"], 0);
    assert_eq!(doc["since"], "7d");
    assert!(
        !history_file(&ctx).exists(),
        "usage must not create the database"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("No requests recorded"), "{stderr}");

    let out = ctx.cmd().args(["usage", "--since", "5y"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown unit"), "{stderr}");
}

#[test]
fn usage_on_a_damaged_file_fails_with_a_hint_and_leaves_it() {
    let ctx = TestContext::new();
    let path = history_file(&ctx);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, vec![0x42_u8; 4096]).unwrap();
    let out = ctx.cmd().arg("usage").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is damaged"), "{stderr}");
    assert!(
        stderr.contains("hint: the next `bitrouter serve` moves"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), vec![0x42_u8; 4096]);
}
