//! Autostart: what `bitrouter service` writes so the service manager runs `bitrouter serve` at
//! login and restarts it when it fails: a systemd user unit on Linux ([`systemd`]) and a launchd
//! agent on macOS ([`launchd`]). The definition carries the binary's absolute path, the config
//! file named on the command line, and the bitrouter-related variables of the installing shell
//! (config, data, state and Codex homes), so the service uses the same files as the CLI. Never a
//! secret: the unit and the agent are plain files.

pub mod launchd;
pub mod systemd;

use std::path::PathBuf;

use crate::env::{self, Env};

/// The variables a service definition carries over from the installing shell.
const CARRIED: [&str; 5] = [
    env::BITROUTER_CONFIG,
    env::XDG_CONFIG_HOME,
    env::XDG_DATA_HOME,
    env::XDG_STATE_HOME,
    env::CODEX_HOME,
];

/// What a service definition runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The program and its arguments (`/path/bitrouter [--config P] serve`).
    pub argv: Vec<String>,
    /// Environment variables to set.
    pub env: Vec<(String, String)>,
    /// The log file (launchd writes the server's output there; systemd uses the journal).
    pub log: Option<PathBuf>,
}

impl ServiceSpec {
    /// The spec for `exe`, with the config file named on the command line and the carried
    /// variables of `env`.
    #[must_use]
    pub fn new(
        exe: &std::path::Path,
        config: Option<&std::path::Path>,
        env: &Env,
        log: Option<PathBuf>,
    ) -> Self {
        let mut argv = vec![exe.display().to_string()];
        if let Some(config) = config {
            argv.push("--config".to_owned());
            argv.push(config.display().to_string());
        }
        argv.push("serve".to_owned());
        let env = CARRIED
            .iter()
            .filter_map(|name| {
                env.get(name)
                    .filter(|v| !v.is_empty())
                    .map(|v| ((*name).to_owned(), v.to_owned()))
            })
            .collect();
        ServiceSpec { argv, env, log }
    }
}
