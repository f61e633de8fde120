//! Validated identifiers: provider ids and account labels. Once parsed they are known to be safe
//! to use as keyring accounts, file keys and parts of a model id (`provider@label:model`). Each
//! shares its text (`Arc<str>`), so the copies the request path makes of them allocate nothing.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A label outside `[a-z0-9_-]{1,32}`.
    #[error("invalid label `{0}`: labels are 1 to 32 characters of a-z, 0-9, `_` and `-`")]
    Label(String),
    /// A provider id outside `[a-z0-9][a-z0-9_.-]{0,63}`.
    #[error(
        "invalid provider id `{0}`: use lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit"
    )]
    Provider(String),
}

/// An account label such as `work` or `personal`: `[a-z0-9_-]{1,32}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(Arc<str>);

impl Label {
    /// The label every command uses when `--label` is not given.
    pub const DEFAULT: &'static str = "default";

    /// The `default` label.
    #[must_use]
    pub fn default_label() -> Self {
        Label(Arc::from(Self::DEFAULT))
    }

    /// The label as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The label's text, shared.
    #[must_use]
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl FromStr for Label {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Label(Arc::from(s)))
        } else {
            Err(IdError::Label(s.to_owned()))
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A provider id such as `openai-codex` or `openai`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProviderId(Arc<str>);

impl ProviderId {
    /// The id of the built-in ChatGPT-subscription provider.
    pub const OPENAI_CODEX: &'static str = "openai-codex";

    /// The built-in `openai-codex` provider id.
    #[must_use]
    pub fn openai_codex() -> Self {
        ProviderId(Arc::from(Self::OPENAI_CODEX))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's text, shared.
    #[must_use]
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// Whether this is the built-in ChatGPT Codex provider.
    #[must_use]
    pub fn is_openai_codex(&self) -> bool {
        &*self.0 == Self::OPENAI_CODEX
    }
}

/// Provider maps are looked up by name without making an id: an id orders, compares and hashes
/// as its text does (the derives above go through `Arc<str>` to `str`).
impl std::borrow::Borrow<str> for ProviderId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for ProviderId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = s.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
        if first_ok && rest_ok && s.len() <= 64 {
            Ok(ProviderId(Arc::from(s)))
        } else {
            Err(IdError::Provider(s.to_owned()))
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for ProviderId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ProviderId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_accepts_the_contract_alphabet() {
        for ok in ["default", "work", "a", "my_acct-2", &"x".repeat(32)] {
            assert!(ok.parse::<Label>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn label_refuses_everything_else() {
        for bad in ["", "Work", "a b", "a:b", "a@b", "é", &"x".repeat(33)] {
            assert!(bad.parse::<Label>().is_err(), "{bad}");
        }
    }

    #[test]
    fn provider_id_refuses_separators() {
        assert!("openai-codex".parse::<ProviderId>().is_ok());
        assert!("local.llama_3".parse::<ProviderId>().is_ok());
        for bad in ["", "-x", "a:b", "a/b", "a@b", "Open"] {
            assert!(bad.parse::<ProviderId>().is_err(), "{bad}");
        }
    }
}
