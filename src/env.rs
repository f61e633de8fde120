//! Every environment variable bitrouter reads, named once, and the snapshot of the environment
//! taken at start-up. Nothing else in the crate reads the process environment: commands get an
//! [`Env`], so tests can hand in their own.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Path of the configuration file (after `--config`, before the XDG default).
pub const BITROUTER_CONFIG: &str = "BITROUTER_CONFIG";
/// Base directory for configuration files (XDG Base Directory spec).
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// Base directory for data files such as the token store (XDG Base Directory spec).
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
/// Base directory for state files such as the background server's lock, pid and log (XDG Base
/// Directory spec).
pub const XDG_STATE_HOME: &str = "XDG_STATE_HOME";
/// The program search path (`run` and `doctor` look clients up on it).
pub const PATH: &str = "PATH";
/// Where the Codex CLI keeps its session (default `~/.codex`).
pub const CODEX_HOME: &str = "CODEX_HOME";
/// Seconds a login waits for the browser or the device-code approval (default 300 and 900;
/// mostly for tests and scripts).
pub const BITROUTER_LOGIN_TIMEOUT: &str = "BITROUTER_LOGIN_TIMEOUT";
/// The user's home directory.
pub const HOME: &str = "HOME";
/// The X11 display; with [`WAYLAND_DISPLAY`], [`BROWSER`] and [`WSL_DISTRO_NAME`], how `login`
/// tells whether a browser can be opened on Linux and the BSDs.
pub const DISPLAY: &str = "DISPLAY";
/// The Wayland display (see [`DISPLAY`]).
pub const WAYLAND_DISPLAY: &str = "WAYLAND_DISPLAY";
/// The browser the user chose (see [`DISPLAY`]).
pub const BROWSER: &str = "BROWSER";
/// Set inside WSL, which can open the Windows browser (see [`DISPLAY`]).
pub const WSL_DISTRO_NAME: &str = "WSL_DISTRO_NAME";
/// Log filter for diagnostics (`tracing_subscriber::EnvFilter` syntax).
pub const RUST_LOG: &str = "RUST_LOG";

/// A snapshot of the environment variables bitrouter may read.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Captures the current process environment (non-UTF-8 values are skipped).
    #[must_use]
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment made of exactly these pairs (for tests and embedding).
    #[must_use]
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name`, if set.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The value of `name` as an absolute path; relative paths are ignored, as the XDG spec says.
    #[must_use]
    pub fn absolute_path(&self, name: &str) -> Option<PathBuf> {
        let value = self.get(name).filter(|v| !v.is_empty())?;
        let path = PathBuf::from(value);
        path.is_absolute().then_some(path)
    }
}
