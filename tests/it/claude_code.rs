//! The real Claude Code (`claude -p`) through `bitrouter serve` against the strict fake Codex
//! backend: plain text, a Bash tool loop that carries encrypted reasoning across the turn, Read
//! of a long file (which makes Claude Code count tokens) and of an image, and a web search.
//! A recording proxy between Claude Code and bitrouter keeps what Claude Code sent; with
//! `BITROUTER_RECORD=1` it is written to `tests/fixtures/clients/claude-code/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::client_fixtures;
use crate::support::clients;
use crate::support::fake_upstream::{
    DEFAULT_TEXT, FakeUpstream, Reply, answer_events, call_events, search_events,
};
use crate::support::recorder::{Recorder, Sent};
use crate::support::serve::{ServeProcess, Token, seed_tokens};

/// The Claude Code version the fixtures come from (scripts/install-clients.sh pins it).
const VERSION: &str = "2.1.332";
/// The model Claude Code is told to use; bitrouter routes it to the fake's catalog.
const MODEL: &str = "claude-opus-5-5";
/// The small/fast model Claude Code is given.
const SMALL_MODEL: &str = "claude-haiku-4-5";

/// A fake backend, bitrouter in front of it, a recorder in front of bitrouter, and a working
/// directory for Claude Code.
struct World {
    fake: FakeUpstream,
    ctx: TestContext,
    server: ServeProcess,
    recorder: Recorder,
    work: PathBuf,
}

impl World {
    async fn start() -> World {
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
            "providers:\n  openai-codex:\n    base_url: {}\nroutes:\n  {MODEL}: [openai-codex:gpt-6.1-sol]\n  {SMALL_MODEL}: [openai-codex:gpt-6-luna]\n",
            fake.codex_base()
        ));
        let server = ServeProcess::start(&ctx, &[]).await;
        let recorder = Recorder::start(&server.url()).await;
        let work = ctx.root().join("work");
        std::fs::create_dir_all(&work).unwrap();
        World {
            fake,
            ctx,
            server,
            recorder,
            work,
        }
    }

    /// Runs `claude -p <prompt>` with the tools it may use; returns stdout, failing the test
    /// when Claude Code fails.
    async fn claude(&self, prompt: &str, tools: &[&str]) -> String {
        let path = format!(
            "{}:{}",
            clients::node_bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = tokio::process::Command::new(clients::claude());
        cmd.env_clear()
            .envs(self.ctx.env_pairs())
            .env("PATH", path)
            .env("ANTHROPIC_BASE_URL", self.recorder.url())
            .env("ANTHROPIC_API_KEY", "sk-ant-placeholder")
            .env("ANTHROPIC_DEFAULT_HAIKU_MODEL", SMALL_MODEL)
            .env("DISABLE_AUTOUPDATER", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_TELEMETRY", "1")
            .env("DISABLE_ERROR_REPORTING", "1")
            .current_dir(&self.work)
            .args(["-p", prompt, "--model", MODEL])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if !tools.is_empty() {
            cmd.arg("--allowedTools").args(tools);
        }
        let child = cmd.spawn().expect("start claude");
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("claude finished within 120 s")
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let rejections: Vec<String> = self
            .fake
            .rejections()
            .iter()
            .map(|r| r.rejection.message())
            .collect();
        assert!(
            out.status.success(),
            "claude failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}\nstrict backend refused: {rejections:?}\nbitrouter:\n{}",
            out.status,
            self.server.stderr()
        );
        assert!(
            rejections.is_empty(),
            "the strict backend refused: {rejections:?}"
        );
        stdout
    }

    /// Writes the scenario's fixture when re-recording.
    fn record(&self, scenario: &str) {
        let replace = client_fixtures::placeholders(self.ctx.root(), &self.ctx.home(), &self.work);
        client_fixtures::record("claude-code", VERSION, scenario, &self.sent(), &replace);
    }

    fn sent(&self) -> Vec<Sent> {
        self.recorder.sent()
    }

    /// The Codex requests the fake answered.
    fn codex_bodies(&self) -> Vec<Value> {
        self.fake
            .posts()
            .iter()
            .filter(|r| r.path.ends_with("/codex/responses"))
            .map(|r| r.json())
            .collect()
    }
}

/// The input items of a Responses body.
fn input(body: &Value) -> Vec<Value> {
    body["input"].as_array().cloned().unwrap_or_default()
}

/// Whether any user message of a Responses body contains `text`.
fn user_says(body: &Value, text: &str) -> bool {
    input(body)
        .iter()
        .filter(|i| i["role"] == "user")
        .any(|i| i["content"].to_string().contains(text))
}

/// The output the body carries for `call_id`, if any.
fn output_for(body: &Value, call_id: &str) -> Option<Value> {
    input(body)
        .into_iter()
        .find(|i| i["type"] == "function_call_output" && i["call_id"] == call_id)
        .map(|i| i["output"].clone())
}

fn has_web_search_tool(body: &Value) -> bool {
    body["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["type"] == "web_search"))
}

fn sse(steps: Vec<crate::support::fake_upstream::Step>) -> Reply {
    Reply::sse(steps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs claude"]
async fn claude_code_prints_the_backends_answer() {
    let world = World::start().await;
    let stdout = world.claude("hello", &[]).await;
    assert!(stdout.contains(DEFAULT_TEXT), "stdout:\n{stdout}");
    let bodies = world.codex_bodies();
    let body = bodies.last().expect("the backend was asked");
    assert_eq!(body["model"], "gpt-6.1-sol");
    // Claude Code's environment arrives as a system message after the user's: it stays there,
    // as a developer message.
    let items = input(body);
    let roles: Vec<&str> = items.iter().filter_map(|i| i["role"].as_str()).collect();
    assert_eq!(roles.first(), Some(&"developer"));
    let user_at = roles.iter().position(|r| *r == "user").unwrap();
    assert!(roles[user_at..].contains(&"developer"), "{roles:?}");
    assert!(body["prompt_cache_key"].is_string());
    world.record("hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs claude"]
async fn claude_code_runs_a_bash_tool_loop_and_sends_its_reasoning_back() {
    let world = World::start().await;
    std::fs::write(world.work.join("notes.txt"), "hello notes\n").unwrap();
    world.fake.when(
        |b| user_says(b, "run ls") && output_for(b, "call_ls").is_none(),
        sse(call_events(
            "gAAAA-reasoning-for-ls",
            "call_ls",
            "Bash",
            &json!({"command": "ls", "description": "List files"}),
        )),
    );
    world.fake.when(
        |b| output_for(b, "call_ls").is_some(),
        sse(answer_events("the folder holds one file")),
    );
    let stdout = world.claude("run ls", &["Bash"]).await;
    assert!(
        stdout.contains("the folder holds one file"),
        "stdout:\n{stdout}"
    );

    let bodies = world.codex_bodies();
    let last = bodies
        .iter()
        .find(|b| output_for(b, "call_ls").is_some())
        .expect("the backend got the tool's output");
    let output = output_for(last, "call_ls").unwrap();
    assert!(output.to_string().contains("notes.txt"), "{output}");
    // The reasoning the backend sent came back in the next turn, before the call.
    let items = input(last);
    let reasoning = items
        .iter()
        .position(|i| i["type"] == "reasoning")
        .expect("reasoning item");
    assert_eq!(
        items[reasoning]["encrypted_content"],
        "gAAAA-reasoning-for-ls"
    );
    assert_eq!(items[reasoning + 1]["type"], "function_call");
    assert_eq!(items[reasoning + 1]["name"], "Bash");
    world.record("bash_tool_loop");
}

/// A 1 × 1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// Long enough that Claude Code counts its tokens before sending it.
fn long_text(path: &Path) {
    let words = ["alpha", "beta", "gamma", "delta", "omega", "zeta"];
    let lines: Vec<String> = (0..5_000)
        .map(|i| format!("{} {} {}", words[i % 6], words[(i / 6) % 6], i))
        .collect();
    std::fs::write(path, lines.join("\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs claude"]
async fn claude_code_reads_a_long_file_and_an_image() {
    use base64::Engine as _;
    let world = World::start().await;
    long_text(&world.work.join("notes.txt"));
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap();
    std::fs::write(world.work.join("dot.png"), png).unwrap();
    let notes = world.work.join("notes.txt").display().to_string();
    let image = world.work.join("dot.png").display().to_string();
    world.fake.when(
        |b| user_says(b, "read the files") && output_for(b, "call_read").is_none(),
        sse(call_events(
            "gAAAA-r1",
            "call_read",
            "Read",
            &json!({"file_path": notes}),
        )),
    );
    world.fake.when(
        |b| output_for(b, "call_read").is_some() && output_for(b, "call_img").is_none(),
        sse(call_events(
            "gAAAA-r2",
            "call_img",
            "Read",
            &json!({"file_path": image}),
        )),
    );
    world.fake.when(
        |b| output_for(b, "call_img").is_some(),
        sse(answer_events("a text and a dot")),
    );
    let stdout = world.claude("read the files", &["Read"]).await;
    assert!(stdout.contains("a text and a dot"), "stdout:\n{stdout}");

    let sent = world.sent();
    let counts: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.path.starts_with("/v1/messages/count_tokens"))
        .collect();
    assert!(!counts.is_empty(), "Claude Code counted no tokens");
    assert!(
        counts.iter().all(|s| s.status == 200),
        "count_tokens failed"
    );

    let bodies = world.codex_bodies();
    let last = bodies
        .iter()
        .find(|b| output_for(b, "call_img").is_some())
        .unwrap();
    let text = output_for(last, "call_read").unwrap().to_string();
    assert!(text.contains("omega"), "{}", &text[..text.len().min(300)]);
    let image = output_for(last, "call_img").unwrap();
    let parts = image
        .as_array()
        .expect("an image result is a list of parts");
    assert!(
        parts.iter().any(|p| p["type"] == "input_image"
            && p["image_url"]
                .as_str()
                .unwrap_or("")
                .starts_with("data:image/png;base64,")),
        "{image}"
    );
    world.record("read_file_and_image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs claude"]
async fn claude_code_searches_the_web_through_the_backends_search() {
    let world = World::start().await;
    world.fake.when(
        |b| user_says(b, "search the web") && output_for(b, "call_ts").is_none(),
        sse(call_events(
            "gAAAA-s1",
            "call_ts",
            "ToolSearch",
            &json!({"query": "select:WebSearch"}),
        )),
    );
    world.fake.when(
        |b| {
            output_for(b, "call_ts").is_some()
                && output_for(b, "call_ws").is_none()
                && !has_web_search_tool(b)
        },
        sse(call_events(
            "gAAAA-s2",
            "call_ws",
            "WebSearch",
            &json!({"query": "rust language"}),
        )),
    );
    world.fake.when(
        has_web_search_tool,
        sse(search_events(
            "rust language",
            "https://www.rust-lang.org/",
            "Rust is a language",
        )),
    );
    world.fake.when(
        |b| output_for(b, "call_ws").is_some(),
        sse(answer_events("searched and found")),
    );
    let stdout = world
        .claude("search the web", &["WebSearch", "ToolSearch"])
        .await;
    assert!(stdout.contains("searched and found"), "stdout:\n{stdout}");

    let bodies = world.codex_bodies();
    let search = bodies
        .iter()
        .find(|b| has_web_search_tool(b))
        .expect("a web search request");
    assert!(user_says(search, "rust language"), "{search}");
    let last = bodies
        .iter()
        .find(|b| output_for(b, "call_ws").is_some())
        .unwrap();
    let output = output_for(last, "call_ws").unwrap().to_string();
    assert!(output.contains("rust-lang.org"), "{output}");
    assert!(output.contains("Rust is a language"), "{output}");
    // WebSearch was a deferred tool: it reached the backend only once ToolSearch loaded it.
    let names = |b: &Value| b["tools"].to_string();
    assert!(!names(&bodies[0]).contains("\"WebSearch\""));
    assert!(names(last).contains("\"WebSearch\""));
    world.record("web_search");
}
