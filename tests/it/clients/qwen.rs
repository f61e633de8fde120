//! qwen-code (`qwen -p`) on its OpenAI-compatible auth: `OPENAI_BASE_URL`, `OPENAI_API_KEY` and
//! `OPENAI_MODEL`, streamed Chat Completions.

use std::time::Duration;

use serde_json::json;

use super::Stage;
use crate::support::clients;
use crate::support::model::ToolLoop;

/// qwen-code reads a file with its `read_file` tool at the model's request, sends the content
/// back and prints the final answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs qwen-code"]
async fn qwen_code_runs_a_tool_loop_through_serve() {
    let qwen = clients::qwen();
    let stage = Stage::start().await;
    let work = stage.work_dir();
    let secret = work.join("secret.txt");
    std::fs::write(&secret, "the secret word is banana\n").unwrap();
    let tool_loop = ToolLoop::new(
        "read_file",
        json!({"file_path": secret.display().to_string()}),
        "banana",
    );
    stage.play(&tool_loop);
    // No usage statistics (they go to a telemetry host) and no update check: no network.
    let settings_dir = stage.ctx.home().join(".qwen");
    std::fs::create_dir_all(&settings_dir).unwrap();
    let settings = json!({
        "privacy": {"usageStatisticsEnabled": false},
        "general": {"disableAutoUpdate": true, "disableUpdateNag": true},
        "telemetry": {"enabled": false}
    });
    std::fs::write(settings_dir.join("settings.json"), settings.to_string()).unwrap();

    let mut cmd = tokio::process::Command::new(qwen);
    cmd.env_clear()
        .envs(clients::node_env(&stage.ctx))
        .env("OPENAI_BASE_URL", format!("{}/v1", stage.base()))
        .env("OPENAI_API_KEY", "bitrouter")
        .env("OPENAI_MODEL", "gpt-6.1-sol")
        .current_dir(&work)
        .args(["-p", "What is the secret word in secret.txt?"]);
    let out = clients::run("qwen-code", cmd, &stage.server, Duration::from_secs(120)).await;

    assert!(
        out.stdout.contains(&tool_loop.final_text()),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let results = stage.tool_results();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(
        results[0].contains("the secret word is banana"),
        "{results:?}"
    );
    let version = clients::npm_version("@qwen-code/qwen-code");
    stage.finish("qwen-code", &version, "read_file_tool_loop", &stage.scrub());
}
