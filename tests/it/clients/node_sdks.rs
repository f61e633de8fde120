//! The OpenAI Node SDK and the Vercel AI SDK (`ai` with `@ai-sdk/openai`, `-openai-compatible`
//! and `-anthropic`), each a script in `scripts/` run on the clients' Node.js.

use std::time::Duration;

use super::Stage;
use crate::support::clients;
use crate::support::fake_upstream::DEFAULT_TEXT;
use crate::support::model::{REASONING, ToolLoop};

/// Runs `script` (ES module text) beside a `node_modules` link to the installed packages, with
/// `BASE_URL` set to bitrouter's address; returns what it printed.
async fn run_node(stage: &Stage, package: &str, file: &str, script: &str) -> String {
    let work = stage.work_dir();
    let modules = work.join("node_modules");
    if !modules.exists() {
        std::os::unix::fs::symlink(clients::node_modules(package), &modules).unwrap();
    }
    std::fs::write(work.join(file), script).unwrap();
    let mut cmd = tokio::process::Command::new(clients::node());
    cmd.env_clear()
        .envs(stage.ctx.env_pairs())
        .env("BASE_URL", stage.base())
        .current_dir(&work)
        .arg(file);
    clients::run(file, cmd, &stage.server, Duration::from_secs(60))
        .await
        .stdout
}

/// The backend's tool loop for both scripts: a `secret_word` function with no arguments.
fn secret_word() -> ToolLoop {
    ToolLoop::new("secret_word", serde_json::json!({}), "banana")
}

/// The OpenAI Node SDK: Responses and Chat Completions, whole and streamed, an image on each,
/// the chat tool loop of its `runTools` helper (streamed) and a Responses tool loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OpenAI Node SDK"]
async fn openai_node_sdk_through_serve() {
    let stage = Stage::start().await;
    let tool_loop = secret_word();
    stage.play(&tool_loop);
    let stdout = run_node(
        &stage,
        "openai",
        "openai_node.mjs",
        include_str!("scripts/openai_node.mjs"),
    )
    .await;
    let final_text = tool_loop.final_text();
    for line in [
        format!("responses plain: {DEFAULT_TEXT}"),
        format!("responses stream: {DEFAULT_TEXT} 7"),
        format!("chat plain: {DEFAULT_TEXT} stop"),
        format!("chat stream: {DEFAULT_TEXT} 7"),
        format!("images: {DEFAULT_TEXT} / {DEFAULT_TEXT}"),
        format!("chat tools: {final_text}"),
        format!("responses tools: secret_word -> {final_text}"),
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no `{line}` in:\n{stdout}"
        );
    }
    let results = stage.tool_results();
    assert_eq!(results.len(), 2, "{results:?}");
    let version = clients::npm_version("openai");
    stage.finish(
        "openai-node",
        &version,
        "responses_and_chat",
        &stage.scrub(),
    );
}

/// The Vercel AI SDK streams a plain answer, runs a tool loop with two parallel calls (and
/// reasoning; Anthropic with thinking on), sends an image and asks for structured output,
/// through each provider package: `@ai-sdk/openai` (Responses and chat),
/// `@ai-sdk/openai-compatible`, `@ai-sdk/anthropic`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Vercel AI SDK"]
async fn vercel_ai_sdk_through_serve() {
    let stage = Stage::start().await;
    let tool_loop = secret_word().parallel(2);
    stage.play(&tool_loop);
    for package in [
        "@ai-sdk/openai",
        "@ai-sdk/openai-compatible",
        "@ai-sdk/anthropic",
    ] {
        clients::node_modules(package);
    }
    let stdout = run_node(
        &stage,
        "ai",
        "ai_sdk.mjs",
        include_str!("scripts/ai_sdk.mjs"),
    )
    .await;
    let final_text = tool_loop.final_text();
    // `@ai-sdk/openai`'s chat model reads no reasoning from Chat Completions (OpenAI's API has
    // none there); the others get the model's reasoning summary.
    for provider in ["openai-responses", "openai-compatible", "anthropic"] {
        let line = format!("{provider} reasoning: {REASONING}");
        assert!(
            stdout.lines().any(|l| l == line),
            "no `{line}` in:\n{stdout}"
        );
    }
    for provider in [
        "openai-responses",
        "openai-chat",
        "openai-compatible",
        "anthropic",
    ] {
        for line in [
            format!("{provider} plain: {DEFAULT_TEXT} 7"),
            format!("{provider} tools: secret_word,secret_word -> {final_text}"),
            format!("{provider} image: {DEFAULT_TEXT}"),
            format!(r#"{provider} object: {{"word":"hi"}}"#),
        ] {
            assert!(
                stdout.lines().any(|l| l == line),
                "no `{line}` in:\n{stdout}"
            );
        }
    }
    let paths: Vec<String> = stage
        .recorder
        .sent()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    for path in ["/v1/responses", "/v1/chat/completions", "/v1/messages"] {
        assert!(paths.iter().any(|p| p == path), "{paths:?}");
    }
    assert_eq!(stage.tool_results().len(), 8);
    let version = [
        "ai",
        "@ai-sdk/openai",
        "@ai-sdk/openai-compatible",
        "@ai-sdk/anthropic",
    ]
    .map(|p| format!("{p} {}", clients::npm_version(p)))
    .join(", ");
    stage.finish("vercel-ai-sdk", &version, "every_provider", &stage.scrub());
}
