//! Where bitrouter's files live: the configuration file and the data directory. XDG variables win
//! on every platform; otherwise the platform's directories (through the `directories` crate).

use std::path::PathBuf;

use crate::env::{self, Env};

/// The application directory name under the config and data bases.
const APP: &str = "bitrouter";
/// The configuration file name inside the config directory.
const CONFIG_FILE: &str = "bitrouter.yaml";

/// Where the configuration file is looked for, and why that place was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigLocation {
    /// Given with `--config`: must exist.
    Flag(PathBuf),
    /// Given with `$BITROUTER_CONFIG`: must exist.
    EnvVar(PathBuf),
    /// The default location: may be absent, and then built-in defaults apply.
    Default(PathBuf),
    /// No home directory could be found, so there is no default location.
    None,
}

impl ConfigLocation {
    /// The path, if there is one.
    #[must_use]
    pub fn path(&self) -> Option<&PathBuf> {
        match self {
            ConfigLocation::Flag(p) | ConfigLocation::EnvVar(p) | ConfigLocation::Default(p) => {
                Some(p)
            }
            ConfigLocation::None => None,
        }
    }

    /// Whether a missing file at this location is an error (it was named explicitly).
    #[must_use]
    pub fn is_explicit(&self) -> bool {
        matches!(self, ConfigLocation::Flag(_) | ConfigLocation::EnvVar(_))
    }
}

/// Resolves the config file location: `--config`, else `$BITROUTER_CONFIG`, else
/// `$XDG_CONFIG_HOME/bitrouter/bitrouter.yaml`, else the platform config dir. Never the working
/// directory.
#[must_use]
pub fn config_location(flag: Option<PathBuf>, env: &Env) -> ConfigLocation {
    if let Some(path) = flag {
        return ConfigLocation::Flag(path);
    }
    if let Some(path) = env.get(env::BITROUTER_CONFIG).filter(|v| !v.is_empty()) {
        return ConfigLocation::EnvVar(PathBuf::from(path));
    }
    match config_dir(env) {
        Some(dir) => ConfigLocation::Default(dir.join(CONFIG_FILE)),
        None => ConfigLocation::None,
    }
}

/// bitrouter's configuration directory.
#[must_use]
pub fn config_dir(env: &Env) -> Option<PathBuf> {
    if let Some(base) = env.absolute_path(env::XDG_CONFIG_HOME) {
        return Some(base.join(APP));
    }
    platform_dirs().map(|d| d.config_dir().to_path_buf())
}

/// bitrouter's data directory (the token file lives here).
#[must_use]
pub fn data_dir(env: &Env) -> Option<PathBuf> {
    if let Some(base) = env.absolute_path(env::XDG_DATA_HOME) {
        return Some(base.join(APP));
    }
    platform_dirs().map(|d| d.data_dir().to_path_buf())
}

/// bitrouter's state directory (the background server's lock, record and log): `$XDG_STATE_HOME`,
/// else the platform's state directory, else the data directory (macOS and Windows have no
/// state directory).
#[must_use]
pub fn state_dir(env: &Env) -> Option<PathBuf> {
    if let Some(base) = env.absolute_path(env::XDG_STATE_HOME) {
        return Some(base.join(APP));
    }
    platform_dirs()
        .and_then(|d| d.state_dir().map(std::path::Path::to_path_buf))
        .or_else(|| data_dir(env))
}

/// The user's home directory: `$HOME` when set, else what the platform says.
#[must_use]
pub fn home_dir(env: &Env) -> Option<PathBuf> {
    env.absolute_path(env::HOME)
        .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()))
}

fn platform_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", APP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_env_beats_xdg() {
        let env = Env::from_pairs([
            (env::BITROUTER_CONFIG, "/env/b.yaml"),
            (env::XDG_CONFIG_HOME, "/xdg"),
        ]);
        assert_eq!(
            config_location(Some("/flag.yaml".into()), &env),
            ConfigLocation::Flag("/flag.yaml".into())
        );
        assert_eq!(
            config_location(None, &env),
            ConfigLocation::EnvVar("/env/b.yaml".into())
        );
        let env = Env::from_pairs([(env::XDG_CONFIG_HOME, "/xdg")]);
        assert_eq!(
            config_location(None, &env),
            ConfigLocation::Default("/xdg/bitrouter/bitrouter.yaml".into())
        );
    }

    #[test]
    fn state_dir_follows_xdg_state_home() {
        let env = Env::from_pairs([(env::XDG_STATE_HOME, "/s"), (env::XDG_DATA_HOME, "/d")]);
        assert_eq!(state_dir(&env), Some(PathBuf::from("/s/bitrouter")));
    }

    #[test]
    fn relative_xdg_is_ignored() {
        let env = Env::from_pairs([(env::XDG_DATA_HOME, "relative/data")]);
        assert_ne!(
            data_dir(&env),
            Some(PathBuf::from("relative/data/bitrouter"))
        );
    }
}
