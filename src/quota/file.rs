//! `$XDG_DATA_HOME/bitrouter/usage.json`: each account's cooldown and latest quota snapshot, as
//! the running server last saw them, so `bitrouter status` and `route` (other processes) can
//! show them and a restarted server keeps honouring cooldowns.
//!
//! The server writes it atomically (temp file + rename), debounced, from a background task
//! ([`super::writer`]): never on a request's path. Other commands read it with [`load`];
//! `status --refresh` also writes the quota it read from the backend's usage endpoint, with the
//! same atomic [`save`].
//!
//! ```json
//! {"version":1,"accounts":[{"provider":"openai-codex","label":"work","cooling_until":1790000000,
//!   "primary_used_percent":100.0,"primary_window_minutes":300,"primary_reset_at":1790000000,
//!   "secondary_used_percent":40.0,"secondary_window_minutes":10080,"secondary_reset_at":1790500000,
//!   "plan_type":"plus","quota_source":"headers","quota_checked_at":1789990000,
//!   "updated_at":1789990000}]}
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::headers::{Snapshot, Window};
use crate::history::{QuotaRecord, QuotaWindow};
use crate::ids::{Label, ProviderId};

/// The file name inside the data directory.
pub const USAGE_FILE: &str = "usage.json";
/// The current format version.
pub const VERSION: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageFile {
    /// Format version.
    pub version: u32,
    /// One entry per (provider, label) the server has seen.
    #[serde(default)]
    pub accounts: Vec<AccountUsage>,
}

impl UsageFile {
    /// The entry for one account.
    #[must_use]
    pub fn get(&self, provider: &ProviderId, label: &Label) -> Option<&AccountUsage> {
        self.accounts
            .iter()
            .find(|a| &a.provider == provider && &a.label == label)
    }
}

/// One account's state. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountUsage {
    /// The provider.
    pub provider: ProviderId,
    /// The account label.
    pub label: Label,
    /// Cooling down after a usage limit until then (skipped by the server); `None` when usable.
    /// A time in the past means the cooldown is over.
    #[serde(default)]
    pub cooling_until: Option<i64>,
    /// Percent of the primary window used.
    #[serde(default)]
    pub primary_used_percent: Option<f64>,
    /// Primary window length in minutes.
    #[serde(default)]
    pub primary_window_minutes: Option<i64>,
    /// When the primary window resets.
    #[serde(default)]
    pub primary_reset_at: Option<i64>,
    /// Percent of the secondary (weekly) window used.
    #[serde(default)]
    pub secondary_used_percent: Option<f64>,
    /// Secondary window length in minutes.
    #[serde(default)]
    pub secondary_window_minutes: Option<i64>,
    /// When the secondary window resets.
    #[serde(default)]
    pub secondary_reset_at: Option<i64>,
    /// The plan the backend reported.
    #[serde(default)]
    pub plan_type: Option<String>,
    /// Where the quota figures came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_source: Option<QuotaSource>,
    /// When the quota figures were read (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_checked_at: Option<i64>,
    /// When this entry last changed.
    #[serde(default)]
    pub updated_at: i64,
}

/// Where an account's quota figures came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaSource {
    /// The `x-codex-*` headers of an answer `serve` relayed.
    Headers,
    /// The backend's usage endpoint, asked by `status --refresh`.
    UsageEndpoint,
}

impl QuotaSource {
    /// The name in the file and in the request history.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaSource::Headers => "headers",
            QuotaSource::UsageEndpoint => "usage_endpoint",
        }
    }
}

impl AccountUsage {
    /// The quota figures as a snapshot; `None` when there are none.
    #[must_use]
    pub fn snapshot(&self) -> Option<Snapshot> {
        let window = |used, minutes, reset| {
            let w = Window {
                used_percent: used,
                window_minutes: minutes,
                reset_at: reset,
            };
            (w != Window::default()).then_some(w)
        };
        let snapshot = Snapshot {
            primary: window(
                self.primary_used_percent,
                self.primary_window_minutes,
                self.primary_reset_at,
            ),
            secondary: window(
                self.secondary_used_percent,
                self.secondary_window_minutes,
                self.secondary_reset_at,
            ),
            plan_type: self.plan_type.clone(),
            ..Snapshot::default()
        };
        (snapshot != Snapshot::default()).then_some(snapshot)
    }

    /// Whether the account is cooling down at `now`.
    #[must_use]
    pub fn is_cooling(&self, now: i64) -> bool {
        self.cooling_until.is_some_and(|t| t > now)
    }

    /// The primary (5-hour) window, when any figure of it is known.
    #[must_use]
    pub fn primary(&self) -> Option<QuotaWindow> {
        window(
            self.primary_used_percent,
            self.primary_window_minutes,
            self.primary_reset_at,
        )
    }

    /// The secondary (weekly) window, when any figure of it is known.
    #[must_use]
    pub fn secondary(&self) -> Option<QuotaWindow> {
        window(
            self.secondary_used_percent,
            self.secondary_window_minutes,
            self.secondary_reset_at,
        )
    }

    /// The saved quota as a request-history row; `None` when it has no quota figures.
    #[must_use]
    pub fn quota_record(&self) -> Option<QuotaRecord> {
        let checked_at = self.quota_checked_at?;
        let (primary, secondary) = (self.primary(), self.secondary());
        if primary.is_none() && secondary.is_none() {
            return None;
        }
        Some(QuotaRecord {
            at_ms: checked_at.saturating_mul(1000),
            provider: self.provider.to_string(),
            account: self.label.to_string(),
            source: self
                .quota_source
                .unwrap_or(QuotaSource::Headers)
                .as_str()
                .to_owned(),
            plan: self.plan_type.clone(),
            primary,
            secondary,
        })
    }
}

/// A history window from the saved figures; `None` when none is known.
fn window(
    used_percent: Option<f64>,
    window_minutes: Option<i64>,
    reset_at: Option<i64>,
) -> Option<QuotaWindow> {
    let w = QuotaWindow {
        used_percent,
        window_minutes,
        reset_at,
    };
    (w != QuotaWindow::default()).then_some(w)
}

/// Why the file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a usage file.
    #[error("{path} is not a valid usage file")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Reads `data_dir/usage.json`; an absent file is an empty one.
///
/// # Errors
///
/// When the file exists but cannot be read or parsed.
pub fn load(data_dir: &Path) -> Result<UsageFile, UsageError> {
    let path = data_dir.join(USAGE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(UsageFile {
                version: VERSION,
                accounts: Vec::new(),
            });
        }
        Err(source) => return Err(UsageError::Read { path, source }),
    };
    serde_json::from_str(&text).map_err(|source| UsageError::Invalid { path, source })
}

/// Writes the file atomically (temp file in the same directory, then rename).
///
/// # Errors
///
/// When the directory or file cannot be written.
pub fn save(data_dir: &Path, file: &UsageFile) -> Result<(), UsageError> {
    let path = data_dir.join(USAGE_FILE);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(data_dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(data_dir)?;
        let text = serde_json::to_string_pretty(file).map_err(std::io::Error::other)?;
        tmp.write_all(text.as_bytes())?;
        tmp.write_all(b"\n")?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|source| UsageError::Write {
        path: path.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().accounts.is_empty());
    }

    #[test]
    fn save_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = UsageFile {
            version: VERSION,
            accounts: vec![AccountUsage {
                provider: ProviderId::openai_codex(),
                label: "work".parse().unwrap(),
                cooling_until: Some(10),
                primary_used_percent: Some(100.0),
                primary_window_minutes: Some(300),
                primary_reset_at: Some(10),
                secondary_used_percent: None,
                secondary_window_minutes: None,
                secondary_reset_at: None,
                plan_type: Some("plus".into()),
                quota_source: Some(QuotaSource::UsageEndpoint),
                quota_checked_at: Some(5),
                updated_at: 5,
            }],
        };
        let sub = dir.path().join("bitrouter");
        save(&sub, &file).unwrap();
        let back = load(&sub).unwrap();
        assert_eq!(back, file);
        assert!(back.accounts[0].is_cooling(9));
        assert!(!back.accounts[0].is_cooling(10));
        assert!(
            back.get(&ProviderId::openai_codex(), &"work".parse().unwrap())
                .is_some()
        );
    }

    #[test]
    fn garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(USAGE_FILE), "nope").unwrap();
        assert!(matches!(load(dir.path()), Err(UsageError::Invalid { .. })));
    }
}
