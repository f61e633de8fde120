//! Real clients holding 5-turn conversations through `bitrouter serve`: every request of one
//! conversation reaches the fake Codex backend with one `prompt_cache_key` and one
//! `session-id`, a second conversation gets another, and the backend's cached tokens show in
//! the client's own output. The Codex CLI sends its thread id, Claude Code its session id, and
//! the `openai` SDK nothing (bitrouter derives the key from the conversation's opening).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::TestContext;
use crate::support::clients;
use crate::support::fake_upstream::{CACHED_TOKENS, FakeUpstream, Recorded};
use crate::support::serve::{ServeProcess, codex_server};

const TURNS: usize = 5;

/// The Codex requests the fake answered, with their cache key and session header.
fn codex_posts(fake: &FakeUpstream) -> Vec<(String, String, Recorded)> {
    fake.posts()
        .into_iter()
        .filter(|r| r.path == "/backend-api/codex/responses")
        .map(|r| {
            let key = r.json()["prompt_cache_key"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let session = r.header("session-id").unwrap_or_default();
            (key, session, r)
        })
        .collect()
}

/// Runs a client to completion within a minute: the test's environment with the clients'
/// Node.js first on `PATH`, plus `env`.
async fn run(
    program: &Path,
    ctx: &TestContext,
    server: &ServeProcess,
    cwd: &Path,
    env: &[(&str, String)],
    args: &[&str],
) -> String {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear()
        .envs(clients::node_env(ctx))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(cwd)
        .args(args);
    let what = format!("{} {args:?}", program.display());
    clients::run(&what, cmd, server, Duration::from_secs(60))
        .await
        .stdout
}

/// Five `codex exec` turns of one thread (the first, then `resume --last`), then a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Codex CLI"]
async fn codex_cli_keeps_one_cache_key_per_thread() {
    let codex = clients::codex();
    let fake = FakeUpstream::start().await;
    fake.simulate_prompt_cache();
    let (ctx, server) = codex_server(&fake).await;
    clients::write_codex_config(&ctx, &server.url(), "");
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let common = ["--skip-git-repo-check", "--sandbox", "read-only", "--json"];
    let mut outputs = Vec::new();
    for turn in 1..=TURNS {
        let prompt = format!("turn {turn}");
        let mut args = vec!["exec"];
        args.extend(common);
        if turn > 1 {
            args.extend(["resume", "--last"]);
        }
        args.push(&prompt);
        outputs.push(run(&codex, &ctx, &server, &work, &[], &args).await);
    }
    let mut args = vec!["exec"];
    args.extend(common);
    args.push("another thread");
    run(&codex, &ctx, &server, &work, &[], &args).await;

    let posts = codex_posts(&fake);
    assert_eq!(posts.len(), TURNS + 1, "{}", server.stderr());
    let first: BTreeSet<_> = posts[..TURNS].iter().map(|(k, s, _)| (k, s)).collect();
    assert_eq!(
        first.len(),
        1,
        "one key and session for the thread: {first:?}"
    );
    let (key, session, _) = &posts[0];
    assert!(!key.is_empty());
    assert_eq!(key, session);
    assert_ne!(&posts[TURNS].0, key, "a new thread, a new key");
    // The CLI's own output reports the thread's cached tokens: every later turn adds its own.
    for (turn, out) in outputs.iter().enumerate().skip(1) {
        let usage = out
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["type"] == "turn.completed")
            .map(|e| e["usage"].clone())
            .unwrap_or_else(|| panic!("no turn.completed in: {out}"));
        let cached = CACHED_TOKENS * u64::try_from(turn).unwrap();
        assert_eq!(usage["cached_input_tokens"], cached, "{out}");
    }
}

/// Five `claude -p` turns of one session (`--session-id`, then `--resume`), then a new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Claude Code"]
async fn claude_code_keeps_one_cache_key_per_session() {
    let claude = clients::claude();
    let fake = FakeUpstream::start().await;
    fake.simulate_prompt_cache();
    let ctx = TestContext::new();
    crate::support::serve::seed_tokens(
        &ctx,
        &[crate::support::serve::Token {
            provider: "openai-codex",
            label: "work",
            token: "tok-work",
            account_id: Some("acc-work"),
        }],
    );
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\nroutes:\n  \"claude-*\": {{ to: openai-codex:gpt-6-luna, effort: medium }}\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let env = claude_env(&server);
    let session = "7d3c1a52-8f0e-4b6a-9c1d-2e5f6a7b8c9d";
    let mut outputs = Vec::new();
    for turn in 1..=TURNS {
        let prompt = format!("turn {turn}");
        let mut args = vec![
            "-p",
            &prompt,
            "--output-format",
            "json",
            "--model",
            "claude-sonnet-4-5",
        ];
        if turn == 1 {
            args.extend(["--session-id", session]);
        } else {
            args.extend(["--resume", session]);
        }
        outputs.push(run(&claude, &ctx, &server, &work, &env, &args).await);
    }
    let before_other = codex_posts(&fake).len();
    run(
        &claude,
        &ctx,
        &server,
        &work,
        &env,
        &[
            "-p",
            "another session",
            "--output-format",
            "json",
            "--model",
            "claude-sonnet-4-5",
        ],
    )
    .await;

    let posts = codex_posts(&fake);
    let keys: BTreeSet<&str> = posts[..before_other]
        .iter()
        .map(|(k, _, _)| k.as_str())
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "one key for the session: {keys:?}\n{}",
        server.stderr()
    );
    assert!(keys.contains(session), "{keys:?}");
    let sessions: BTreeSet<&str> = posts[..before_other]
        .iter()
        .map(|(_, s, _)| s.as_str())
        .collect();
    assert_eq!(sessions, keys);
    let later: BTreeSet<&str> = posts[before_other..]
        .iter()
        .map(|(k, _, _)| k.as_str())
        .collect();
    assert!(!later.is_empty() && !later.contains(session), "{later:?}");
    for out in &outputs[1..] {
        let result: Value =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(
            result["usage"]["cache_read_input_tokens"], CACHED_TOKENS,
            "{out}"
        );
    }
}

/// Claude Code's environment for bitrouter: its base URL, a placeholder key, no telemetry.
fn claude_env(server: &ServeProcess) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_BASE_URL", server.url()),
        ("ANTHROPIC_API_KEY", "unused".to_owned()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
        ("DISABLE_AUTOUPDATER", "1".to_owned()),
    ]
}

/// A five-turn Chat Completions conversation with the `openai` SDK, then another one.
const SDK_SCRIPT: &str = r#"
import os
from openai import OpenAI
client = OpenAI(base_url=os.environ["BASE_URL"] + "/v1", api_key="unused", max_retries=0)
messages = [{"role": "system", "content": "You are terse."}]
for turn in range(1, 6):
    messages.append({"role": "user", "content": f"turn {turn}"})
    if turn % 2:
        r = client.chat.completions.create(model="gpt-6-luna", messages=messages)
        usage, text = r.usage, r.choices[0].message.content
    else:
        stream = client.chat.completions.create(model="gpt-6-luna", messages=messages,
            stream=True, stream_options={"include_usage": True})
        text, usage = "", None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage:
                usage = chunk.usage
    print(f"turn {turn}: cached={usage.prompt_tokens_details.cached_tokens}")
    messages.append({"role": "assistant", "content": text})
other = client.chat.completions.create(model="gpt-6-luna",
    messages=[{"role": "user", "content": "another conversation"}])
print("other:", other.usage.prompt_tokens_details.cached_tokens)
"#;

/// The `openai` SDK sends no ids: bitrouter's key, derived from the opening, holds for all
/// five turns, streamed or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the openai Python SDK"]
async fn openai_sdk_conversation_gets_one_derived_key() {
    let fake = FakeUpstream::start().await;
    fake.simulate_prompt_cache();
    let (ctx, server) = codex_server(&fake).await;
    let stdout = crate::serve_sdk::run_python(&ctx, &server, SDK_SCRIPT).await;
    for turn in 2..=TURNS {
        assert!(
            stdout.contains(&format!("turn {turn}: cached={CACHED_TOKENS}")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("turn 1: cached=0"), "{stdout}");
    assert!(stdout.contains("other: 0"), "{stdout}");
    let posts = codex_posts(&fake);
    assert_eq!(posts.len(), TURNS + 1);
    let keys: BTreeSet<(&str, &str)> = posts[..TURNS]
        .iter()
        .map(|(k, s, _)| (k.as_str(), s.as_str()))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (key, session) = keys.iter().next().unwrap();
    assert_eq!(key, session);
    assert_eq!(posts[0].2.header("session_id").as_deref(), Some(*key));
    assert_ne!(posts[TURNS].0, *key);
}
