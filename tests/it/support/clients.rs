//! The real clients `scripts/install-clients.sh` installs into `target/clients/`, and running
//! one of them to completion. A test that needs one is `#[ignore = "needs <client>"]`; when it
//! runs (`--include-ignored`, as CI does) and the client is missing, it fails and says how to
//! install it.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use super::TestContext;
use super::serve::ServeProcess;

/// `target/clients/`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/clients")
}

/// `target/clients/<relative>`; panics with how to install it when it is missing.
fn installed(relative: &str, what: &str) -> PathBuf {
    let path = dir().join(relative);
    assert!(
        path.exists(),
        "{what} is not installed ({} is missing): run `bash scripts/install-clients.sh`",
        path.display()
    );
    path
}

/// Claude Code.
pub fn claude() -> PathBuf {
    installed("node_modules/.bin/claude", "Claude Code")
}

/// The Codex CLI.
pub fn codex() -> PathBuf {
    installed("node_modules/.bin/codex", "the Codex CLI")
}

/// opencode.
pub fn opencode() -> PathBuf {
    installed("node_modules/.bin/opencode", "opencode")
}

/// qwen-code.
pub fn qwen() -> PathBuf {
    installed("node_modules/.bin/qwen", "qwen-code")
}

/// The Python with the `openai` and `anthropic` SDKs and LangChain.
pub fn python() -> PathBuf {
    installed("venv/bin/python", "the Python SDKs")
}

/// aider (in its own virtualenv).
pub fn aider() -> PathBuf {
    installed("aider-venv/bin/aider", "aider")
}

/// `llm` (in its own virtualenv).
pub fn llm() -> PathBuf {
    installed("llm-venv/bin/llm", "llm")
}

/// The Node.js the npm clients run on.
pub fn node() -> PathBuf {
    installed("node/node_modules/.bin/node", "Node.js 24")
}

/// The npm packages (the OpenAI Node SDK, the Vercel AI SDK): `target/clients/node_modules`,
/// checked to hold `package`.
pub fn node_modules(package: &str) -> PathBuf {
    installed(&format!("node_modules/{package}/package.json"), package);
    dir().join("node_modules")
}

/// The installed version of the npm package `package`.
pub fn npm_version(package: &str) -> String {
    let manifest = node_modules(package).join(package).join("package.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    doc["version"].as_str().unwrap_or("unknown").to_owned()
}

/// The installed version of the Python distribution `dist` (e.g. `langchain_openai`) in the
/// virtualenv `venv` (`venv`, `aider-venv`, `llm-venv`), from its `.dist-info` directory.
pub fn pip_version(venv: &str, dist: &str) -> String {
    let lib = installed(&format!("{venv}/lib"), venv);
    let prefix = format!("{dist}-");
    std::fs::read_dir(&lib)
        .unwrap()
        .filter_map(|python| std::fs::read_dir(python.ok()?.path().join("site-packages")).ok())
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .find_map(|name| {
            let version = name.strip_prefix(&prefix)?.strip_suffix(".dist-info")?;
            Some(version.to_owned())
        })
        .unwrap_or_else(|| panic!("{dist} is not installed in {}", lib.display()))
}

/// The directory of the Node.js the npm clients run on, to put first on `PATH`.
pub fn node_bin_dir() -> PathBuf {
    node().parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The test's environment with the clients' Node.js first on `PATH` (npm clients start
/// `node` through their `#!/usr/bin/env node` line).
pub fn node_env(ctx: &TestContext) -> Vec<(String, String)> {
    let node_bin = node_bin_dir();
    ctx.env_pairs()
        .into_iter()
        .map(|(k, v)| {
            if k == "PATH" {
                (k, format!("{}:{v}", node_bin.display()))
            } else {
                (k, v)
            }
        })
        .collect()
}

/// What a client printed.
#[derive(Debug)]
pub struct ClientOutput {
    /// How it exited.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs a client (its command built by the caller: program, arguments, environment, directory)
/// with no stdin, until it exits or `within` passes. Panics, showing the client's output and
/// bitrouter's log, when it times out or exits with a failure.
pub async fn run(
    what: &str,
    mut cmd: tokio::process::Command,
    server: &ServeProcess,
    within: Duration,
) -> ClientOutput {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let out = tokio::time::timeout(within, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{what} did not finish within {within:?}\nbitrouter:\n{}",
                server.stderr()
            )
        })
        .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
    let output = ClientOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        output.status.success(),
        "{what} failed: {}\nstdout:\n{}\nstderr:\n{}\nbitrouter:\n{}",
        output.status,
        output.stdout,
        output.stderr,
        server.stderr()
    );
    output
}

/// Writes the Codex CLI's `config.toml` in `ctx`'s `$CODEX_HOME`: a `bitrouter` provider at
/// `base` (the server's URL) on the Responses API, the default model `gpt-6-luna`, and `extra`
/// lines in the provider's table (e.g. `supports_websockets = true`).
pub fn write_codex_config(ctx: &TestContext, base: &str, extra: &str) {
    std::fs::write(
        ctx.codex_home().join("config.toml"),
        format!(
            "model = \"gpt-6-luna\"\nmodel_provider = \"bitrouter\"\n\n[model_providers.bitrouter]\nname = \"bitrouter\"\nbase_url = \"{base}/v1\"\nwire_api = \"responses\"\n{extra}"
        ),
    )
    .unwrap();
}

/// `codex exec <prompt>` in `work`, with `ctx`'s environment (Node 24 first on PATH), read-only,
/// ephemeral and without colours.
pub fn codex_exec(ctx: &TestContext, work: &Path, prompt: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(codex());
    cmd.env_clear().envs(node_env(ctx)).current_dir(work).args([
        "exec",
        "--skip-git-repo-check",
        "--ephemeral",
        "--sandbox",
        "read-only",
        "--color",
        "never",
        prompt,
    ]);
    cmd
}
