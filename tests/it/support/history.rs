//! Reading a test world's request history (`history.sqlite3`) directly, waiting for the server's
//! writer to store rows, and fake answers that report chosen token counts.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

use super::TestContext;
use super::fake_upstream::{Reply, Step, answer_events};
use super::serve::{ServeProcess, http_client};

/// `$XDG_DATA_HOME/bitrouter/history.sqlite3`.
pub fn history_file(ctx: &TestContext) -> PathBuf {
    ctx.data_home().join("bitrouter").join("history.sqlite3")
}

/// Opens the history read-only.
pub fn open(ctx: &TestContext) -> Connection {
    Connection::open_with_flags(history_file(ctx), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the history")
}

/// Rows in `table` (0 while the file or the table does not exist yet).
pub fn rows(ctx: &TestContext, table: &str) -> i64 {
    let Ok(conn) = Connection::open_with_flags(history_file(ctx), OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap_or(0)
}

/// Waits until `table` has at least `n` rows.
pub async fn wait_rows(ctx: &TestContext, table: &str, n: i64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if rows(ctx, table) >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A complete Responses answer saying `text` that reports these token counts.
pub fn answer_with(text: &str, input: u64, cached: u64, output: u64, reasoning: u64) -> Vec<Step> {
    let mut steps = answer_events(text);
    if let Some(Step::Event(last)) = steps.last_mut() {
        last["response"]["usage"] = json!({
            "input_tokens": input, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input + output
        });
    }
    steps
}

/// A 200 SSE reply with the given steps and `x-codex-*` quota headers: `primary` and
/// `secondary` percent used, resetting in an hour and in four days.
pub fn with_quota(steps: Vec<Step>, primary: u32, secondary: u32) -> Reply {
    Reply::Sse {
        status: 200,
        headers: vec![
            ("x-codex-primary-used-percent".into(), primary.to_string()),
            ("x-codex-primary-window-minutes".into(), "300".into()),
            ("x-codex-primary-reset-after-seconds".into(), "3600".into()),
            (
                "x-codex-secondary-used-percent".into(),
                secondary.to_string(),
            ),
            ("x-codex-secondary-window-minutes".into(), "10080".into()),
            (
                "x-codex-secondary-reset-after-seconds".into(),
                "345600".into(),
            ),
            ("x-codex-plan-type".into(), "plus".into()),
        ],
        steps,
        no_content_type: false,
    }
}

/// A Responses request body for `model`, streamed or not, with a user message.
pub fn responses_body(model: &str, stream: bool, text: &str) -> Value {
    json!({"model": model, "stream": stream, "input": [{"role": "user", "content": text}]})
}

/// Sends `body` to `path` as the client with this `User-Agent` (and `originator`), and reads
/// the whole answer; returns the status.
pub async fn send(
    server: &ServeProcess,
    path: &str,
    user_agent: &str,
    extra: &[(&str, &str)],
    body: &Value,
) -> u16 {
    let mut request = http_client()
        .post(format!("{}{path}", server.url()))
        .header("user-agent", user_agent)
        .json(body);
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let _ = response.bytes().await.unwrap();
    status
}
