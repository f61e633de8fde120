//! The `history:` key: `history: off` (or `false`) turns the request history off; a mapping
//! sets `keep_days` (default 90); an absent or empty key keeps the defaults.

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::expand::expand_current;
use super::value::Parsed;

/// How long history is kept by default, in days.
pub const DEFAULT_KEEP_DAYS: u32 = 90;

/// `history:` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Whether `serve` records requests and quota snapshots.
    pub enabled: bool,
    /// Rows older than this many days are deleted.
    pub keep_days: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            enabled: true,
            keep_days: DEFAULT_KEEP_DAYS,
        }
    }
}

/// The key as written.
#[derive(Debug, Default)]
pub(super) struct RawHistory {
    enabled: Option<bool>,
    keep_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistoryMap {
    keep_days: Option<Parsed<u32>>,
}

impl<'de> Deserialize<'de> for RawHistory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(d)?;
        let switch = |on: bool| RawHistory {
            enabled: Some(on),
            keep_days: None,
        };
        match value {
            serde_yaml::Value::Null => Ok(RawHistory::default()),
            serde_yaml::Value::Bool(on) => Ok(switch(on)),
            serde_yaml::Value::String(text) => {
                let text = expand_current(&text).map_err(de::Error::custom)?;
                match text.trim().to_ascii_lowercase().as_str() {
                    "off" | "false" | "no" => Ok(switch(false)),
                    "on" | "true" | "yes" => Ok(switch(true)),
                    other => Err(de::Error::custom(format!(
                        "expected `off` or a mapping with `keep_days`, found `{other}`"
                    ))),
                }
            }
            mapping @ serde_yaml::Value::Mapping(_) => {
                let map = RawHistoryMap::deserialize(mapping).map_err(de::Error::custom)?;
                Ok(RawHistory {
                    enabled: None,
                    keep_days: map.keep_days.map(|Parsed(days)| days),
                })
            }
            _ => Err(de::Error::custom(
                "expected `off` or a mapping with `keep_days`",
            )),
        }
    }
}

impl RawHistory {
    /// The settings, or the key path and what is wrong.
    pub(super) fn validate(self) -> Result<HistoryConfig, (String, String)> {
        let mut config = HistoryConfig::default();
        if let Some(enabled) = self.enabled {
            config.enabled = enabled;
        }
        if let Some(days) = self.keep_days {
            if days == 0 {
                return Err((
                    "history.keep_days".into(),
                    "keep at least 1 day, or turn history off with `history: off`".into(),
                ));
            }
            config.keep_days = days;
        }
        Ok(config)
    }
}
