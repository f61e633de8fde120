//! aider (`aider --message`) with the setup `bitrouter connect aider` prints: `OPENAI_API_BASE`,
//! `OPENAI_API_KEY` and `--model openai/<model>`, streamed Chat Completions through LiteLLM.

use std::time::Duration;

use serde_json::json;

use super::Stage;
use crate::support::clients;
use crate::support::fake_upstream::{Reply, answer_events};

/// The model's answer: the whole new file, in aider's `whole` edit format.
const EDIT: &str = "greeting.py\n```\nprint(\"hello from bitrouter\")\n```\n";

/// aider sends the file and the request, reads the streamed answer, and applies the edit the
/// model wrote to the file on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aider"]
async fn aider_applies_an_edit_streamed_through_serve() {
    let aider = clients::aider();
    let stage = Stage::start().await;
    stage.fake.push(Reply::sse(answer_events(EDIT)));
    let work = stage.work_dir();
    std::fs::write(work.join("greeting.py"), "print(\"hello\")\n").unwrap();
    // aider asks the network for the context window of a model it does not know, unless
    // a metadata file names it (what aider's docs suggest for such models).
    let metadata = json!({"openai/gpt-6.1-sol": {"max_input_tokens": 272_000, "max_output_tokens": 128_000,
        "input_cost_per_token": 0, "output_cost_per_token": 0, "litellm_provider": "openai", "mode": "chat"}});
    std::fs::write(
        stage.ctx.home().join(".aider.model.metadata.json"),
        metadata.to_string(),
    )
    .unwrap();

    let mut cmd = tokio::process::Command::new(aider);
    cmd.env_clear()
        .envs(stage.ctx.env_pairs())
        .env("OPENAI_API_BASE", format!("{}/v1", stage.base()))
        .env("OPENAI_API_KEY", "bitrouter")
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .current_dir(&work)
        .args([
            "--model",
            "openai/gpt-6.1-sol",
            "--edit-format",
            "whole",
            "--message",
            "Make the greeting mention bitrouter.",
            "--yes-always",
            "--no-git",
            "--no-check-update",
            "--no-show-release-notes",
            "--analytics-disable",
            "--no-pretty",
            "--no-fancy-input",
            "greeting.py",
        ]);
    let out = clients::run("aider", cmd, &stage.server, Duration::from_secs(120)).await;

    assert!(
        out.stdout.contains("Applied edit to greeting.py"),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(work.join("greeting.py")).unwrap(),
        "print(\"hello from bitrouter\")\n"
    );
    let posts = stage.backend_posts();
    assert_eq!(posts.len(), 1);
    let body = posts[0].json();
    assert!(
        body["input"].to_string().contains("print(\\\"hello\\\")"),
        "aider sent the file: {body}"
    );
    let version = clients::pip_version("aider-venv", "aider_chat");
    stage.finish("aider", &version, "whole_file_edit", &stage.scrub());
}
