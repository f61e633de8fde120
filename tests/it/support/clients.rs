//! The real clients `scripts/install-clients.sh` installs into `target/clients/`: the Codex CLI
//! and a Python with the `openai` and `anthropic` SDKs. Missing under `CI` is a failure;
//! elsewhere the test says it is skipped and returns.

use std::path::PathBuf;

fn installed(relative: &str, what: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing: run scripts/install-clients.sh"
    );
    eprintln!("skipped: {what} is not installed (run scripts/install-clients.sh)");
    None
}

/// The Codex CLI binary.
pub fn codex() -> Option<PathBuf> {
    installed("target/clients/node_modules/.bin/codex", "the Codex CLI")
}

/// The Python that has the `openai` and `anthropic` SDKs.
pub fn python() -> Option<PathBuf> {
    installed("target/clients/venv/bin/python", "the Python SDKs")
}

/// Claude Code.
pub fn claude() -> Option<PathBuf> {
    installed("target/clients/node_modules/.bin/claude", "Claude Code")
}
