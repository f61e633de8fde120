//! LangChain (Python): `ChatOpenAI` from langchain-openai on Chat Completions and on the
//! Responses API, `ChatAnthropic` from langchain-anthropic on Messages.

use std::time::Duration;

use super::Stage;
use crate::support::clients;
use crate::support::fake_upstream::DEFAULT_TEXT;
use crate::support::model::ToolLoop;

/// Each LangChain chat model streams a plain answer, runs a tool loop (`bind_tools`, the tool's
/// result sent back as a `ToolMessage`), sends an image and fills a `with_structured_output`
/// model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs LangChain"]
async fn langchain_chat_models_through_serve() {
    let stage = Stage::start().await;
    let tool_loop = ToolLoop::new("secret_word", serde_json::json!({}), "banana");
    stage.play(&tool_loop);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/clients/scripts/langchain_chat.py"
    );
    let mut cmd = tokio::process::Command::new(clients::python());
    cmd.env_clear()
        .envs(stage.ctx.env_pairs())
        .env("BASE_URL", stage.base())
        .current_dir(stage.work_dir())
        .arg(script);
    let out = clients::run("LangChain", cmd, &stage.server, Duration::from_secs(120)).await;
    let final_text = tool_loop.final_text();
    for model in ["openai-chat", "openai-responses", "anthropic"] {
        for line in [
            format!("{model} plain: {DEFAULT_TEXT} 7"),
            format!("{model} tools: secret_word -> {final_text}"),
            format!("{model} image: {DEFAULT_TEXT}"),
            format!("{model} object: hi"),
        ] {
            assert!(
                out.stdout.lines().any(|l| l == line),
                "no `{line}` in:\n{}\n{}",
                out.stdout,
                out.stderr
            );
        }
    }
    assert_eq!(stage.tool_results().len(), 3);
    let version = ["langchain_openai", "langchain_anthropic"]
        .map(|d| format!("{d} {}", clients::pip_version("venv", d)))
        .join(", ");
    stage.finish("langchain", &version, "chat_models", &stage.scrub());
}
