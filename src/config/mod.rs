//! The configuration file (`bitrouter.yaml`): its model, where it is found, and how it is loaded
//! and validated. Unknown keys are refused, and every error names the key path and line.

mod expand;
mod history;
mod locate;
mod provider;
mod routes;
mod value;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub use expand::{ExpandError, expand};
use history::RawHistory;
pub use history::{DEFAULT_KEEP_DAYS, HistoryConfig};
use provider::RawProvider;
pub use provider::{
    Api, AuthMode, Authorization, CODEX_BASE_URL, CODEX_CALLBACK_PORT, CODEX_ISSUER, OAuthConfig,
    ProviderConfig, ProviderKind, Strategy, Timeouts, is_loopback,
};
use routes::RawRoute;
pub use routes::{Route, Routes};
use value::{Parsed, Text};

use crate::env::Env;
use crate::ids::ProviderId;
use crate::paths::ConfigLocation;

/// The default listen address of `bitrouter serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4356";

/// Where credentials are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// A 0600 JSON file in the data directory.
    #[default]
    File,
    /// The OS credential store.
    Keyring,
    /// The OS credential store when it works, else the file (and say so).
    Auto,
}

impl StoreKind {
    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::File => "file",
            StoreKind::Keyring => "keyring",
            StoreKind::Auto => "auto",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Parsed<SocketAddr>>,
    api_key: Option<Text>,
    #[serde(default)]
    allowed_origins: Vec<Text>,
    max_body_bytes: Option<Parsed<usize>>,
    max_connections: Option<Parsed<usize>>,
    timeouts: Option<RawServerTimeouts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServerTimeouts {
    /// Seconds a client may take to send a request's headers.
    header: Option<Parsed<f64>>,
    /// Seconds a kept-alive connection may wait for its next request.
    idle: Option<Parsed<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: Option<RawServer>,
    #[serde(default)]
    store: Option<StoreKind>,
    default_provider: Option<ProviderId>,
    #[serde(default)]
    providers: Option<BTreeMap<ProviderId, Option<RawProvider>>>,
    #[serde(default)]
    routes: Option<BTreeMap<Text, RawRoute>>,
    #[serde(default)]
    history: Option<RawHistory>,
}

/// `server:` settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// The local API key clients must present, when set.
    pub api_key: Option<SecretString>,
    /// Browser origins allowed to call the server (none by default).
    pub allowed_origins: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The most client connections open at once; more wait until one closes.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (and each piece of its body).
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

/// Default request body limit: 32 MiB (Codex requests with images and long histories are large).
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Default cap on open client connections (lowered to what the file-descriptor limit allows).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default time a client has to send a request's headers.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a kept-alive connection may wait for its next request: longer than the idle
/// time of client connection pools (90 s in hyper and reqwest), so a client does not send into
/// a connection the server is closing.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The whole, validated configuration with defaults applied.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// Server settings.
    pub server: ServerConfig,
    /// Credential store backend.
    pub store: StoreKind,
    /// Where bare model names go when no provider declares them.
    pub default_provider: ProviderId,
    /// Every provider, the built-in `openai-codex` included.
    pub providers: BTreeMap<ProviderId, ProviderConfig>,
    /// Aliases and fallback chains, with glob keys and pinned variants.
    pub routes: Routes,
    /// The request history.
    pub history: HistoryConfig,
}

impl Default for Config {
    fn default() -> Self {
        let codex = ProviderConfig::builtin_openai_codex();
        Config {
            source: None,
            server: ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 4356)),
                api_key: None,
                allowed_origins: Vec::new(),
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                max_connections: DEFAULT_MAX_CONNECTIONS,
                header_timeout: DEFAULT_HEADER_TIMEOUT,
                idle_timeout: DEFAULT_IDLE_TIMEOUT,
            },
            store: StoreKind::File,
            default_provider: ProviderId::openai_codex(),
            providers: BTreeMap::from([(codex.id.clone(), codex)]),
            routes: Routes::default(),
            history: HistoryConfig::default(),
        }
    }
}

/// Why the configuration could not be used. All of these are the user's to fix (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` or `$BITROUTER_CONFIG` does not exist.
    #[error("config file {path} does not exist")]
    NotFound {
        /// The path that was named.
        path: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML, or not a valid configuration.
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The file (or `<inline>`).
        path: PathBuf,
        /// What is wrong, with the key path and line.
        message: String,
    },
}

impl Config {
    /// Loads the configuration from `location` (built-in defaults when the default file is
    /// absent), expanding `${VAR}` references with `env`.
    pub fn load(location: &ConfigLocation, env: &Env) -> Result<Config, ConfigError> {
        let Some(path) = location.path() else {
            return Ok(Config::default());
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !location.is_explicit() => {
                return Ok(Config::default());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::NotFound { path: path.clone() });
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.clone(),
                    source,
                });
            }
        };
        let mut config = Config::parse(&text, env).map_err(|message| ConfigError::Invalid {
            path: path.clone(),
            message,
        })?;
        config.source = Some(path.clone());
        Ok(config)
    }

    /// Parses configuration text. The error is a message naming the key path and line.
    pub fn parse(text: &str, env: &Env) -> Result<Config, String> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            expand::with_env(env, || {
                let de = serde_yaml::Deserializer::from_str(text);
                serde_path_to_error::deserialize::<_, Option<RawConfig>>(de)
            })
            .map_err(|e| describe_parse_error(text, &e))?
            .unwrap_or_default()
        };
        Config::from_raw(raw).map_err(|(path, message)| {
            let line = locate::line_of(text, &path)
                .map(|l| format!(" at line {l}"))
                .unwrap_or_default();
            format!("{path}: {message}{line}")
        })
    }

    fn from_raw(raw: RawConfig) -> Result<Config, (String, String)> {
        let mut config = Config::default();
        if let Some(server) = raw.server {
            if let Some(Parsed(listen)) = server.listen {
                config.server.listen = listen;
            }
            config.server.api_key = server
                .api_key
                .map(|Text(k)| k)
                .filter(|k| !k.is_empty())
                .map(SecretString::from);
            config.server.allowed_origins = server
                .allowed_origins
                .into_iter()
                .map(|Text(o)| o)
                .collect();
            if let Some(Parsed(limit)) = server.max_body_bytes {
                config.server.max_body_bytes = limit;
            }
            if let Some(Parsed(limit)) = server.max_connections {
                if limit == 0 {
                    return Err((
                        "server.max_connections".to_owned(),
                        "expected at least 1".to_owned(),
                    ));
                }
                config.server.max_connections = limit;
            }
            let timeouts = server.timeouts.unwrap_or_default();
            for (key, value, slot) in [
                (
                    "server.timeouts.header",
                    timeouts.header,
                    &mut config.server.header_timeout,
                ),
                (
                    "server.timeouts.idle",
                    timeouts.idle,
                    &mut config.server.idle_timeout,
                ),
            ] {
                if let Some(Parsed(secs)) = value {
                    *slot = Duration::try_from_secs_f64(secs)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            (
                                key.to_owned(),
                                "expected a positive number of seconds".to_owned(),
                            )
                        })?;
                }
            }
        }
        if let Some(store) = raw.store {
            config.store = store;
        }
        for (id, raw) in raw.providers.unwrap_or_default() {
            let provider = raw
                .unwrap_or_default()
                .validate(id.clone())
                .map_err(|(key, msg)| {
                    let path = if key.is_empty() {
                        format!("providers.{id}")
                    } else {
                        format!("providers.{id}.{key}")
                    };
                    (path, msg)
                })?;
            config.providers.insert(id, provider);
        }
        if let Some(default_provider) = raw.default_provider {
            if !config.providers.contains_key(&default_provider) {
                return Err((
                    "default_provider".into(),
                    format!(
                        "`{default_provider}` is not a provider (known: {})",
                        config.provider_names()
                    ),
                ));
            }
            config.default_provider = default_provider;
        }
        config.routes = Routes::from_raw(raw.routes.unwrap_or_default())?;
        if let Some(history) = raw.history {
            config.history = history.validate()?;
        }
        if !config.server.listen.ip().is_loopback() && config.server.api_key.is_none() {
            return Err((
                "server.listen".into(),
                format!(
                    "`{}` is reachable from other machines; set server.api_key too, or listen on 127.0.0.1",
                    config.server.listen
                ),
            ));
        }
        Ok(config)
    }

    /// The provider with this id, given as a [`ProviderId`] or as its name (a name is looked
    /// up as it is: no id is made for it).
    #[must_use]
    pub fn provider<Q>(&self, id: &Q) -> Option<&ProviderConfig>
    where
        ProviderId: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.providers.get(id)
    }

    /// Every provider id, comma-separated (for messages).
    #[must_use]
    pub fn provider_names(&self) -> String {
        self.providers
            .keys()
            .map(ProviderId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The file the config came from, for messages.
    #[must_use]
    pub fn source_display(&self) -> String {
        self.source.as_deref().map_or_else(
            || "built-in defaults".to_owned(),
            |p| p.display().to_string(),
        )
    }
}

/// A parser's key path as text, with keys that hold dots or stars quoted ([`locate::segment`]).
fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&locate::segment(key));
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    if out.is_empty() { ".".to_owned() } else { out }
}

/// Formats a parse error as `key.path: message at line N`, using the exact key line when the
/// parser only knows the enclosing mapping.
fn describe_parse_error(text: &str, e: &serde_path_to_error::Error<serde_yaml::Error>) -> String {
    let inner = e.inner();
    let mut message = inner.to_string();
    // serde_yaml appends " at line L column C" and sometimes prefixes its own path: keep only
    // the message, and give our own (fuller) path and line.
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    let path = render_path(e.path());
    if let Some((prefix, rest)) = message.split_once(": ")
        && !prefix.contains(' ')
        && path.replace('"', "").starts_with(prefix)
    {
        message = rest.to_owned();
    }
    let line = locate::line_of(text, &path)
        .filter(|_| !message.starts_with("unknown field"))
        .or_else(|| inner.location().map(|l| l.line()));
    let line = line.map(|l| format!(" at line {l}")).unwrap_or_default();
    if path == "." || path.is_empty() {
        format!("{message}{line}")
    } else {
        format!("{path}: {message}{line}")
    }
}

#[cfg(test)]
mod tests;
