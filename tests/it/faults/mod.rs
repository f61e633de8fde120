//! Faults and load through the real `bitrouter` binary: thousands of requests with a failing
//! upstream, stalled and unreachable upstreams, clients that walk away mid-stream, SIGKILL while
//! the token file is being rewritten, and malformed client input. Every test is bounded in time
//! and count, binds only port 0, and sets environment only on child processes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use bitrouter::sse::format_event;

use crate::support::fake_issuer::{FakeIssuer, now};
use crate::support::fake_upstream::{FakeUpstream, Reply, Step, answer_events};
use crate::support::serve::{ServeProcess, Token, http_client, seed_tokens};
use crate::support::{TestContext, sse_events};

mod input;
mod load;
mod tokens;
mod upstreams;
mod wire;

const SECS: Duration = Duration::from_secs(10);

fn work_token() -> Token<'static> {
    Token {
        provider: "openai-codex",
        label: "work",
        token: "tok-work",
        account_id: Some("acc-work"),
    }
}

async fn start(ctx: &TestContext, base_url: &str, extra: &str) -> ServeProcess {
    ctx.write_config(&format!(
        "{extra}providers:\n  openai-codex:\n    base_url: {base_url}\n    timeouts: {{connect: 1, idle: 1}}\n"
    ));
    ServeProcess::start(ctx, &[]).await
}

/// A `hi` to the Codex provider through `/v1/responses`, its answer's head within [`SECS`]
/// (`None` if it did not come in time).
async fn ask_codex(server: &ServeProcess, stream: bool) -> Option<reqwest::Response> {
    let sent = http_client()
        .post(format!("{}/v1/responses", server.url()))
        .json(&json!({"model": "openai-codex:gpt-6-luna", "input": "hi", "stream": stream}))
        .send();
    Some(tokio::time::timeout(SECS, sent).await.ok()?.unwrap())
}

/// What a client got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Answer {
    /// An SSE stream ending with `response.completed`.
    CompleteStream,
    /// An SSE stream ending with an `error` event.
    ErrorEvent,
    /// A JSON response object (non-streaming client).
    CompleteJson,
    /// An OpenAI-shaped JSON error with a 4xx/5xx status.
    ErrorJson,
}

/// Classifies one answer, or says why it is malformed.
fn classify(status: u16, content_type: &str, body: &[u8]) -> Result<Answer, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("not utf-8: {e}"))?;
    if content_type.starts_with("text/event-stream") {
        if status != 200 {
            return Err(format!("stream with status {status}"));
        }
        if let Some(line) = text.lines().find(|l| {
            !l.is_empty()
                && !l.starts_with("event: ")
                && !l.starts_with("data: ")
                && !l.starts_with(':')
        }) {
            return Err(format!("bad sse line {line:?}"));
        }
        let mut last = None;
        for event in sse_events(body) {
            let data: Value = serde_json::from_str(&event.data)
                .map_err(|e| format!("bad sse data: {e}: {}", event.data))?;
            last = Some((event.event, data));
        }
        return match last {
            Some((Some(name), data)) if name == "response.completed" => (data["response"]["status"]
                == "completed")
                .then_some(Answer::CompleteStream)
                .ok_or_else(|| format!("completed without status: {data}")),
            Some((Some(name), data)) if name == "error" => data["error"]["message"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(|_| Answer::ErrorEvent)
                .ok_or_else(|| format!("error event without message: {data}")),
            other => Err(format!("stream ends with {other:?}")),
        };
    }
    if !content_type.starts_with("application/json") {
        return Err(format!("content-type {content_type:?}"));
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("bad json: {e}: {text}"))?;
    if status == 200 {
        return (doc["object"] == "response" && doc["status"] == "completed")
            .then_some(Answer::CompleteJson)
            .ok_or_else(|| format!("200 json that is no completed response: {doc}"));
    }
    let message_ok = doc["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty());
    if (400..600).contains(&status) && message_ok && doc["error"]["type"].is_string() {
        Ok(Answer::ErrorJson)
    } else {
        Err(format!("error answer {status} {doc}"))
    }
}
