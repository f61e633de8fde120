//! opencode (`opencode run`) with a provider in its config file: the one `bitrouter connect
//! opencode` prints (the `@ai-sdk/openai-compatible` package on `/v1/chat/completions`), and
//! the `@ai-sdk/openai` package on the Responses API.

use std::time::Duration;

use serde_json::json;

use super::Stage;
use crate::support::clients;
use crate::support::model::ToolLoop;

/// opencode reads a file with its `read` tool, twice in parallel, at the model's request and
/// prints the final answer, streamed; its title request (no tools) is answered plainly on the
/// side.
async fn read_tool_loop(npm: &str, scenario: &str) {
    let opencode = clients::opencode();
    let stage = Stage::start().await;
    let work = stage.work_dir();
    let secret = work.join("secret.txt");
    std::fs::write(&secret, "the secret word is banana\n").unwrap();
    let tool_loop = ToolLoop::new(
        "read",
        json!({"filePath": secret.display().to_string()}),
        "banana",
    )
    .parallel(2);
    stage.play(&tool_loop);

    let config_dir = stage.ctx.config_home().join("opencode");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = json!({
        "$schema": "https://opencode.ai/config.json",
        "provider": {"bitrouter": {
            "npm": npm,
            "name": "bitrouter",
            "options": {"baseURL": format!("{}/v1", stage.base()), "apiKey": "bitrouter"},
            "models": {"gpt-6.1-sol": {"name": "gpt-6.1-sol (bitrouter)"}}
        }},
        "model": "bitrouter/gpt-6.1-sol"
    });
    std::fs::write(
        config_dir.join("opencode.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();

    let mut cmd = tokio::process::Command::new(opencode);
    cmd.env_clear()
        .envs(clients::node_env(&stage.ctx))
        // No network: no models.dev catalog, no update check, no plugin install from npm.
        .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
        .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
        .env("npm_config_offline", "true")
        .current_dir(&work)
        .args(["run", "What is the secret word in secret.txt?"]);
    let out = clients::run("opencode", cmd, &stage.server, Duration::from_secs(120)).await;

    assert!(
        out.stdout.contains(&tool_loop.final_text()),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let results = stage.tool_results();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| r.contains("the secret word is banana")),
        "{results:?}"
    );
    let scrub = stage
        .scrub()
        .pattern(r"\bses_[0-9A-Za-z]{20,}", "$$SESSION_ID");
    let version = clients::npm_version("opencode-ai");
    stage.finish("opencode", &version, scenario, &scrub);
}

/// With the provider `bitrouter connect opencode` prints (Chat Completions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs opencode"]
async fn opencode_runs_a_tool_loop_through_serve() {
    read_tool_loop("@ai-sdk/openai-compatible", "chat_read_tool_loop").await;
}

/// With `@ai-sdk/openai` as the provider package (the Responses API).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs opencode"]
async fn opencode_on_the_responses_api_runs_a_tool_loop_through_serve() {
    read_tool_loop("@ai-sdk/openai", "responses_read_tool_loop").await;
}
