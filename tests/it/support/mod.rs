//! Shared test plumbing: an isolated home per test (temp dirs for HOME and the XDG bases), and a
//! `bitrouter` command whose environment is set only on the child process.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the harness"
)]

pub mod client_fixtures;
pub mod clients;
pub mod fake_events;
pub mod fake_issuer;
pub mod fake_replies;
pub mod fake_tls;
pub mod fake_upstream;
pub mod fake_ws;
pub mod fixtures;
pub mod history;
pub mod model;
pub mod recorder;
pub mod recorder_ws;
pub mod serve;
pub mod strict;
pub mod webdriver;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use bitrouter::sse::{SseEvent, SseReader};
use tempfile::TempDir;

/// The events of a whole SSE body, read with bitrouter's own reader (the one production uses).
pub fn sse_events(body: &[u8]) -> Vec<SseEvent> {
    let mut reader = SseReader::new();
    let mut events = reader.events(body);
    events.extend(reader.finish());
    events
}

/// One test's private world: a home directory with XDG config and data bases inside it.
pub struct TestContext {
    root: TempDir,
}

impl TestContext {
    /// A fresh, empty world.
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("create temp dir");
        for dir in ["home", "config", "data", "state", "codex"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("create dir");
        }
        TestContext { root }
    }

    /// The temp root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `$HOME`.
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    /// `$XDG_CONFIG_HOME`.
    pub fn config_home(&self) -> PathBuf {
        self.root().join("config")
    }

    /// `$XDG_DATA_HOME`.
    pub fn data_home(&self) -> PathBuf {
        self.root().join("data")
    }

    /// `$XDG_STATE_HOME`.
    pub fn state_home(&self) -> PathBuf {
        self.root().join("state")
    }

    /// bitrouter's state directory (`$XDG_STATE_HOME/bitrouter`): serve.lock, serve.json,
    /// serve.log.
    pub fn state_dir(&self) -> PathBuf {
        self.state_home().join("bitrouter")
    }

    /// The pid of the server this world's state directory records, while it holds its lock.
    pub fn recorded_server_pid(&self) -> Option<u32> {
        let lock = std::fs::File::open(self.state_dir().join("serve.lock")).ok()?;
        match lock.try_lock_shared() {
            Err(std::fs::TryLockError::WouldBlock) => {}
            _ => return None,
        }
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.state_dir().join("serve.json")).ok()?)
                .ok()?;
        record["pid"].as_u64().and_then(|p| u32::try_from(p).ok())
    }

    /// `$CODEX_HOME`.
    pub fn codex_home(&self) -> PathBuf {
        self.root().join("codex")
    }

    /// The default config file path (`$XDG_CONFIG_HOME/bitrouter/bitrouter.yaml`).
    pub fn default_config_path(&self) -> PathBuf {
        self.config_home().join("bitrouter").join("bitrouter.yaml")
    }

    /// The token file (`$XDG_DATA_HOME/bitrouter/oauth-tokens.json`).
    pub fn token_file(&self) -> PathBuf {
        self.data_home().join("bitrouter").join("oauth-tokens.json")
    }

    /// Writes the default config file.
    pub fn write_config(&self, text: &str) -> PathBuf {
        let path = self.default_config_path();
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// A `bitrouter` command with a clean environment pointing into this world.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("bitrouter").expect("binary built");
        self.apply_env(&mut cmd);
        cmd
    }

    /// A `std::process::Command` for the binary (for long-running children such as `serve`).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("bitrouter"));
        cmd.env_clear();
        for (k, v) in self.env_pairs() {
            cmd.env(k, v);
        }
        cmd
    }

    fn apply_env(&self, cmd: &mut Command) {
        cmd.env_clear();
        for (k, v) in self.env_pairs() {
            cmd.env(k, v);
        }
    }

    /// The environment every child gets.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![
            ("HOME".to_owned(), self.home().display().to_string()),
            (
                "XDG_CONFIG_HOME".to_owned(),
                self.config_home().display().to_string(),
            ),
            (
                "XDG_DATA_HOME".to_owned(),
                self.data_home().display().to_string(),
            ),
            (
                "XDG_STATE_HOME".to_owned(),
                self.state_home().display().to_string(),
            ),
            (
                "CODEX_HOME".to_owned(),
                self.codex_home().display().to_string(),
            ),
            ("NO_COLOR".to_owned(), "1".to_owned()),
        ];
        if let Ok(path) = std::env::var("PATH") {
            pairs.push(("PATH".to_owned(), path));
        }
        pairs
    }
}

/// A background server started in this world (by `run` or `serve --detach`) ends with the test,
/// even a failed one.
impl Drop for TestContext {
    fn drop(&mut self) {
        if let Some(pid) = self.recorded_server_pid() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}
