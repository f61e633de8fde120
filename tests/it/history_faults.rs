//! The history under faults: a read-only database file, a full disk (a file-size limit on the
//! server), a database locked by another process, and a damaged file. Requests keep
//! succeeding, the trouble is warned about, nothing panics, and the history recovers where it
//! can.

use std::time::Duration;

use crate::support::TestContext;
use crate::support::fake_upstream::FakeUpstream;
use crate::support::history::{history_file, responses_body, rows, wait_rows};
use crate::support::serve::{ServeProcess, Token, http_client, seed_tokens};

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
        "providers:\n  openai-codex:\n    base_url: {}\n",
        fake.codex_base()
    ));
    ctx
}

/// Creates the history database as `serve` would.
fn create_history(ctx: &TestContext) {
    drop(bitrouter::history::db::open_for_writing(&history_file(ctx), 1).unwrap());
}

/// Sends `n` requests; each must succeed.
async fn requests_succeed(server: &ServeProcess, n: usize) {
    let client = http_client();
    for _ in 0..n {
        let response = client
            .post(format!("{}/v1/responses", server.url()))
            .header("user-agent", "curl/8.5.0")
            .json(&responses_body("openai-codex:gpt-6.1-sol", true, "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", server.stderr());
        let body = response.text().await.unwrap();
        assert!(body.contains("response.completed"), "{body}");
    }
}

/// Stops the server with SIGTERM and returns its stderr; it must exit cleanly, without a panic.
async fn stop(mut server: ServeProcess) -> String {
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(40)).await;
    let stderr = server.stderr();
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Whether this process runs as root (which writes read-only files anyway).
fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[tokio::test]
async fn a_read_only_history_file_does_not_fail_requests() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    create_history(&ctx);
    let path = history_file(&ctx);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    let server = if is_root() {
        // Root ignores file modes; without these capabilities it honours them.
        ServeProcess::start_wrapped(
            &ctx,
            &[
                "setpriv",
                "--bounding-set=-dac_override,-dac_read_search",
                "--",
            ],
        )
        .await
    } else {
        ServeProcess::start(&ctx, &[]).await
    };
    requests_succeed(&server, 5).await;
    assert!(
        server
            .wait_for_stderr("history: cannot write", 1, Duration::from_secs(10))
            .await,
        "{}",
        server.stderr()
    );
    let stderr = stop(server).await;
    // Warned once, and the lost records counted.
    assert_eq!(
        stderr.matches("history: cannot write").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("records were dropped in this run"),
        "{stderr}"
    );
    assert_eq!(rows(&ctx, "requests"), 0);
}

#[tokio::test]
async fn a_full_disk_does_not_fail_requests() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    // Files the server writes may not grow past 8 KiB (16 blocks of 512 bytes): too small for
    // the database. The limit's signal is ignored, so a write past it fails with EFBIG as a full
    // disk would fail with ENOSPC.
    let server = ServeProcess::start_wrapped(
        &ctx,
        &[
            "sh",
            "-c",
            "ulimit -f 16 && trap '' XFSZ && exec \"$0\" \"$@\"",
        ],
    )
    .await;
    requests_succeed(&server, 5).await;
    assert!(
        server
            .wait_for_stderr("history: ", 1, Duration::from_secs(10))
            .await,
        "{}",
        server.stderr()
    );
    let stderr = stop(server).await;
    assert!(
        stderr.contains("disk is full") || stderr.contains("disk I/O error"),
        "{stderr}"
    );
    assert!(
        stderr.contains("records were dropped in this run"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_database_locked_by_another_process_keeps_records_until_it_is_free() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    create_history(&ctx);
    let holder = rusqlite::Connection::open(history_file(&ctx)).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let server = ServeProcess::start(&ctx, &[]).await;
    requests_succeed(&server, 5).await;
    assert!(
        server
            .wait_for_stderr("is locked by another process", 1, Duration::from_secs(10))
            .await,
        "{}",
        server.stderr()
    );
    assert_eq!(rows(&ctx, "requests"), 0);
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    assert!(
        wait_rows(&ctx, "requests", 5, Duration::from_secs(15)).await,
        "{}",
        server.stderr()
    );
    let stderr = stop(server).await;
    assert!(stderr.contains("writing to"), "{stderr}");
    assert!(!stderr.contains("records were dropped"), "{stderr}");
}

#[tokio::test]
async fn a_damaged_history_file_is_moved_aside_and_a_new_one_started() {
    let fake = FakeUpstream::start().await;
    let ctx = world(&fake);
    let path = history_file(&ctx);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let garbage = b"SQLite format 3\0 but nothing after that is a database".repeat(100);
    std::fs::write(&path, &garbage).unwrap();

    let server = ServeProcess::start(&ctx, &[]).await;
    requests_succeed(&server, 3).await;
    assert!(
        wait_rows(&ctx, "requests", 3, Duration::from_secs(10)).await,
        "{}",
        server.stderr()
    );
    let stderr = stop(server).await;
    assert!(stderr.contains("was damaged; moved it to"), "{stderr}");
    let aside: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("history.sqlite3.corrupt-")
        })
        .map(|e| e.path())
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage);
}
