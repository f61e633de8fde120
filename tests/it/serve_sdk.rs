use std::path::PathBuf;
use std::time::Duration;

use crate::support::TestContext;
use crate::support::fake_upstream::{DEFAULT_TEXT, FakeUpstream};
use crate::support::serve::{ServeProcess, Token, seed_tokens};

/// The Python with the `openai` SDK installed by `scripts/install-clients.sh`, if it is there.
fn python() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/clients/venv/bin/python");
    path.exists().then_some(path)
}

const SCRIPT: &str = r#"
import os, sys
from openai import OpenAI
client = OpenAI(base_url=os.environ["BASE_URL"], api_key="unused", max_retries=0)
r = client.responses.create(model="gpt-6-luna", input="say hi")
print("plain:", r.output_text)
with client.responses.stream(model="gpt-6-luna", input="say hi") as stream:
    for _ in stream:
        pass
    final = stream.get_final_response()
print("stream:", final.output_text, final.usage.output_tokens)
"#;

/// The `openai` Python SDK reads bitrouter's Responses answers, streamed and not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_reads_responses_through_serve() {
    let Some(python) = python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the openai SDK is missing: run scripts/install-clients.sh"
        );
        eprintln!("skipped: the openai SDK is not installed (run scripts/install-clients.sh)");
        return;
    };
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
        "providers:\n  openai-codex:\n    base_url: {}\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    let mut cmd = tokio::process::Command::new(python);
    cmd.env_clear()
        .envs(ctx.env_pairs())
        .env("BASE_URL", format!("{}/v1", server.url()))
        .args(["-c", SCRIPT])
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the SDK finished within 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains(&format!("plain: {DEFAULT_TEXT}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("stream: {DEFAULT_TEXT} 7")),
        "{stdout}"
    );
    assert_eq!(fake.post_bearers(), vec!["tok-work", "tok-work"]);
}
