//! The one error path of the command line: which exit status an error means, and which `hint:`
//! line goes with it. Module errors stay typed; this is the single place that looks at them.

use std::process::ExitCode;

use crate::config::ConfigError;

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
    }
    Report {
        exit: EXIT_FAILURE,
        hint: None,
    }
}
