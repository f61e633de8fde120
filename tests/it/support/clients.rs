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

/// Claude Code's binary.
pub fn claude() -> Option<PathBuf> {
    installed("target/clients/node_modules/.bin/claude", "Claude Code")
}

/// A PATH with the installed clients and their Node.js first, then the test's own PATH (for
/// `bitrouter run <client>`, which finds clients on PATH).
pub fn path_with_clients() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/clients");
    let mut dirs = vec![
        root.join("node/node_modules/.bin"),
        root.join("node_modules/.bin"),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs)
        .expect("a PATH")
        .to_string_lossy()
        .into_owned()
}

/// The Codex CLI binary.
pub fn codex() -> Option<PathBuf> {
    installed("target/clients/node_modules/.bin/codex", "the Codex CLI")
}

/// The Python that has the `openai` and `anthropic` SDKs.
pub fn python() -> Option<PathBuf> {
    installed("target/clients/venv/bin/python", "the Python SDKs")
}
