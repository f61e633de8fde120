//! The helpers the `serve` tests share; the tests themselves are grouped by what they exercise in
//! the modules below.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::fake_issuer::FakeIssuer;
use crate::support::fake_upstream::{DEFAULT_TEXT, FakeUpstream, Reply, Step, answer_events};
use crate::support::serve::{ServeProcess, Token, http_client, seed_tokens};

mod accounts;
mod face;
mod forwarding;
mod streams;
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

/// A config with the Codex provider pointed at the fake, plus `extra` YAML under the provider.
fn codex_config(fake: &FakeUpstream, extra: &str) -> String {
    format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    timeouts: {{connect: 2, idle: 10}}\n{extra}",
        fake.codex_base()
    )
}

async fn start(ctx: &TestContext, config: &str) -> ServeProcess {
    ctx.write_config(config);
    ServeProcess::start(ctx, &[]).await
}

/// Reads the response body until `needle` appears (or the stream ends / `within` passes).
async fn read_until(
    resp: &mut reqwest::Response,
    seen: &mut String,
    needle: &str,
    within: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !seen.contains(needle) {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None) | Err(_)) | Err(_) => return seen.contains(needle),
        }
    }
    true
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn post(server: &ServeProcess, path: &str, body: &Value) -> reqwest::Response {
    http_client()
        .post(format!("{}{path}", server.url()))
        .json(body)
        .send()
        .await
        .unwrap()
}
