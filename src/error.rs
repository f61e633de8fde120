//! The one error path of the command line: which exit status an error means, and which `hint:`
//! line goes with it. Module errors stay typed; this is the single place that looks at them.

use std::process::ExitCode;

use crate::auth::codex::CodexError;
use crate::auth::{AuthError, LoginError};
use crate::config::ConfigError;
use crate::store::StoreError;

/// Exit status for an operation that failed at run time.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for a usage or configuration error (as clap uses).
pub const EXIT_USAGE: u8 = 2;

/// An error that is the user's to fix (exit 2), with an optional hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl UsageError {
    /// A usage error with a hint.
    #[must_use]
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// A run-time failure that carries a hint (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// What failed.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with a hint.
    #[must_use]
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// How an error is reported: its exit status and an optional hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The process exit status.
    pub exit: u8,
    /// The `hint:` line, if any.
    pub hint: Option<String>,
}

impl Report {
    /// The exit code to return from `main`.
    #[must_use]
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit)
    }
}

/// Classifies an error by the first cause that says what it means.
#[must_use]
pub fn classify(err: &anyhow::Error) -> Report {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<UsageError>() {
            return Report {
                exit: EXIT_USAGE,
                hint: e.hint.clone(),
            };
        }
        if let Some(e) = cause.downcast_ref::<Failure>() {
            return Report {
                exit: EXIT_FAILURE,
                hint: e.hint.clone(),
            };
        }
        if let Some(e) = cause.downcast_ref::<ConfigError>() {
            let hint = match e {
                ConfigError::NotFound { .. } => {
                    "create the file, or drop --config / BITROUTER_CONFIG to use the default location"
                }
                ConfigError::Read { .. } => "check the file's permissions",
                ConfigError::Invalid { .. } => {
                    "fix the key named above; the README lists every configuration key"
                }
            };
            return Report {
                exit: EXIT_USAGE,
                hint: Some(hint.to_owned()),
            };
        }
        if let Some(hint) = cause
            .downcast_ref::<AuthError>()
            .and_then(auth_hint)
            .or_else(|| cause.downcast_ref::<LoginError>().map(login_hint))
            .or_else(|| cause.downcast_ref::<StoreError>().map(store_hint))
            .or_else(|| cause.downcast_ref::<CodexError>().map(codex_hint))
        {
            return Report {
                exit: EXIT_FAILURE,
                hint: Some(hint),
            };
        }
    }
    Report {
        exit: EXIT_FAILURE,
        hint: None,
    }
}

fn auth_hint(e: &AuthError) -> Option<String> {
    match e {
        AuthError::NotLoggedIn { key } | AuthError::NeedsLogin { key, .. } => Some(format!(
            "run `bitrouter login {} --label {}`",
            key.provider, key.label
        )),
        AuthError::RefreshFailed { .. } => {
            Some("check the network connection and try again in a moment".into())
        }
        AuthError::NoOAuth(_) => Some("check `providers:` in the config".into()),
        AuthError::Store(e) => Some(store_hint(e)),
        AuthError::Codex { source, .. } => Some(codex_hint(source)),
        AuthError::Task(_) | AuthError::Http(_) => None,
    }
}

fn login_hint(e: &LoginError) -> String {
    match e {
        LoginError::PortInUse { .. } => "is `codex login` (or another `bitrouter login`) waiting in another terminal? finish or cancel it, or use --device-auth".into(),
        LoginError::Bind { .. } => "use --device-auth to sign in without a local callback".into(),
        LoginError::Timeout { .. } => "run the command again; on a machine without a browser use --device-auth, or --no-browser to paste the redirect URL".into(),
        LoginError::Cancelled | LoginError::Denied(_) | LoginError::MissingCode => {
            "run the command again to start a new sign-in".into()
        }
        LoginError::Exchange(_) | LoginError::Device(_) => {
            "run the command again; if it keeps failing, check the network and `oauth.issuer` in the config".into()
        }
        LoginError::DeviceNotEnabled => "enable device code sign-in in ChatGPT's security settings, or sign in with the browser".into(),
        LoginError::Save(e) => store_hint(e),
    }
}

fn codex_hint(e: &CodexError) -> String {
    match e {
        CodexError::NoHome | CodexError::NoSession { .. } => {
            "sign in to the Codex CLI first (`codex login`), set CODEX_HOME, or sign in directly with `bitrouter login openai-codex`".into()
        }
        CodexError::ApiKeySession { .. } => {
            "bitrouter shares ChatGPT sign-ins only: sign in with `bitrouter login openai-codex`".into()
        }
        CodexError::Unsupported { .. } => {
            "bitrouter cannot read that store: sign in with `bitrouter login openai-codex` instead".into()
        }
        CodexError::Malformed { .. } | CodexError::Io { .. } => {
            "sign in to the Codex CLI again (`codex login`), or sign in directly with `bitrouter login openai-codex`".into()
        }
        CodexError::Keyring(e) => store_hint(e),
    }
}

fn store_hint(e: &StoreError) -> String {
    match e {
        StoreError::Corrupt { path, .. } | StoreError::Version { path, .. } => format!(
            "bitrouter will not overwrite it: fix it by hand, or move it away (e.g. `mv {0} {0}.bak`) and sign in again",
            path.display()
        ),
        StoreError::Permissions { path, .. } => format!(
            "make it private with `chmod 600 {}` (and check who could have read it)",
            path.display()
        ),
        StoreError::Io { .. } => "check the permissions of the data directory".into(),
        StoreError::NoDataDir => "set XDG_DATA_HOME or HOME".into(),
        StoreError::Keyring { .. } | StoreError::KeyringTimeout { .. } => {
            "unlock the OS keyring, or set `store: file` in the config".into()
        }
        StoreError::KeyringCorrupt { account, .. } => format!(
            "remove the keyring entry (service bitrouter, account {account}) and sign in again"
        ),
    }
}
