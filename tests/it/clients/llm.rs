//! `llm` (Simon Willison's CLI) with its OpenAI plugin pointed at bitrouter through
//! `extra-openai-models.yaml` in its user directory: one model on Chat Completions, one on the
//! Responses API (`responses: true`), both with tools, image attachments and schemas.

use std::time::Duration;

use super::Stage;
use crate::support::clients;
use crate::support::fake_upstream::DEFAULT_TEXT;
use crate::support::model::ToolLoop;

/// A Python function `llm --functions` offers the model as a tool.
const FUNCTION: &str =
    "def secret_word() -> str:\n    \"The secret word.\"\n    return 'the secret word is banana'\n";

/// A 1×1 PNG.
const PIXEL_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// For each API, `llm` prints a streamed plain answer; runs a tool loop (the model calls the
/// function, `llm` runs it and sends its result, and prints the final answer); sends an image
/// attachment; and prints the JSON a `--schema` asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs llm"]
async fn llm_answers_and_runs_tools_through_serve() {
    let llm = clients::llm();
    let stage = Stage::start().await;
    let tool_loop = ToolLoop::new("secret_word", serde_json::json!({}), "banana");
    stage.play(&tool_loop);
    let user_dir = stage.ctx.root().join("llm");
    std::fs::create_dir_all(&user_dir).unwrap();
    std::fs::write(
        user_dir.join("extra-openai-models.yaml"),
        format!(
            "- model_id: bitrouter\n  model_name: gpt-6.1-sol\n  api_base: {base}/v1\n  {capabilities}\n\
             - model_id: bitrouter-responses\n  model_name: gpt-6.1-sol\n  api_base: {base}/v1\n  {capabilities}\n  responses: true\n",
            base = stage.base(),
            capabilities = "supports_tools: true\n  supports_schema: true\n  vision: true"
        ),
    )
    .unwrap();
    let pixel = stage.work_dir().join("pixel.png");
    std::fs::write(
        &pixel,
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, PIXEL_PNG).unwrap(),
    )
    .unwrap();
    let pixel = pixel.display().to_string();

    let run = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(&llm);
        cmd.env_clear()
            .envs(stage.ctx.env_pairs())
            .env("LLM_USER_PATH", &user_dir)
            .args(args);
        clients::run("llm", cmd, &stage.server, Duration::from_secs(60))
    };
    for model in ["bitrouter", "bitrouter-responses"] {
        let out = run(&["-m", model, "say hi"]).await;
        assert_eq!(out.stdout.trim(), DEFAULT_TEXT, "{model}: {out:?}");
        let out = run(&[
            "-m",
            model,
            "--functions",
            FUNCTION,
            "What is the secret word?",
        ])
        .await;
        assert!(
            out.stdout.contains(&tool_loop.final_text()),
            "{model}: {out:?}"
        );
        let out = run(&["-m", model, "What is in this image?", "-a", &pixel]).await;
        assert_eq!(out.stdout.trim(), DEFAULT_TEXT, "{model}: {out:?}");
        let out = run(&[
            "-m",
            model,
            "--schema",
            "word str, count int",
            "Say a word.",
        ])
        .await;
        let answer: serde_json::Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("{model}: not JSON ({e}): {out:?}"));
        assert_eq!(
            answer,
            serde_json::json!({"word": "hi", "count": 1}),
            "{model}"
        );
    }
    let images: Vec<serde_json::Value> = stage
        .backend_posts()
        .iter()
        .flat_map(|p| p.json()["input"].as_array().cloned().unwrap_or_default())
        .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
        .filter(|part| part["type"] == "input_image")
        .collect();
    assert_eq!(images.len(), 2, "{images:?}");
    for image in &images {
        assert!(
            image["image_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("data:image/png;base64,")),
            "{image}"
        );
    }
    let results = stage.tool_results();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results.iter().all(|r| r.contains("banana")), "{results:?}");
    let version = clients::pip_version("llm-venv", "llm");
    stage.finish("llm", &version, "chat_and_responses", &stage.scrub());
}
