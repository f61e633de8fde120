//! Effort and speed variants of a model: the reasoning-effort levels and service tiers bitrouter
//! knows, and the `+` suffix that makes a variant a model id of its own: `gpt-6.1-sol+high`,
//! `gpt-6.1-sol+fast`, `gpt-6.1-sol+high+fast`.
//!
//! Why `+`: real model ids are letters, digits, `.`, `-` and `_` (with `:`, `/` and `@` taken by
//! bitrouter's provider and account syntax), so a `+` can only be ours. And it survives every
//! place a model name travels: unquoted in bash, zsh and fish; in URL paths (a literal
//! sub-delimiter); in YAML, TOML and JSON strings and environment variables; in the model fields
//! of Claude Code, opencode, aider (LiteLLM splits on `/` only), `llm` and the SDKs. The
//! alternatives each break somewhere: `#` starts a URL fragment and, with zsh's
//! `extendedglob`, is a glob operator; `(…)` needs shell quoting; Claude Code strips a trailing
//! `[1m]`-style bracket from model names; `-high` could be part of a real id (`gpt-5.4-mini`).
//! The one caveat: in a URL *query string* or form body `+` means a space (write `%2B` there).
//!
//! This module is a leaf: the config validates pins with it, the resolver checks suffixes with
//! it, and nothing here knows about either.

use std::fmt;

/// Separates a model id from its variant words.
pub const SEPARATOR: char = '+';

/// The suffix word for the fast (priority) tier.
pub const FAST: &str = "fast";

/// Reasoning-effort levels bitrouter knows, least effort first (spec §6.3: the Codex catalog's
/// `supported_reasoning_levels` use these names). A live catalog may list others; those are
/// accepted for the models it lists them for.
pub const KNOWN_EFFORTS: &[&str] = &[
    "none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra",
];

/// Why a variant suffix or a pinned value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantError {
    /// `model+` or `model++high`.
    #[error("empty variant after `+`")]
    Empty,
    /// A word that is not lowercase letters.
    #[error("invalid variant `{0}`: variants are lowercase words such as `high` or `fast`")]
    BadWord(String),
    /// Two efforts, or `fast` twice.
    #[error("`{first}` and `{second}` both set the {what}; keep one")]
    Twice {
        /// What both set (`reasoning effort`, `service tier`).
        what: &'static str,
        /// The first word.
        first: String,
        /// The second word.
        second: String,
    },
    /// A pinned effort that is not a known level.
    #[error("unknown effort `{0}` (known: {known})", known = KNOWN_EFFORTS.join(", "))]
    UnknownEffort(String),
    /// A pinned service tier that is not `priority`/`fast` or `default`.
    #[error("unknown service tier `{0}` (use `priority`, also written `fast`, or `default`)")]
    UnknownTier(String),
}

/// A service tier a route can pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceTier {
    /// Priority processing: what the Codex CLI calls Fast (it sends `service_tier: "priority"`).
    Priority,
    /// Standard processing: no `service_tier` is sent, whatever the client asked for.
    Default,
}

impl ServiceTier {
    /// Parses a config value: `priority` (or `fast`) and `default`.
    ///
    /// # Errors
    ///
    /// [`VariantError::UnknownTier`] for anything else.
    pub fn parse(s: &str) -> Result<ServiceTier, VariantError> {
        match s {
            "priority" | FAST => Ok(ServiceTier::Priority),
            "default" => Ok(ServiceTier::Default),
            other => Err(VariantError::UnknownTier(other.to_owned())),
        }
    }

    /// The config spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceTier::Priority => "priority",
            ServiceTier::Default => "default",
        }
    }

    /// The `service_tier` value sent upstream; `None` means "send none".
    #[must_use]
    pub fn wire(self) -> Option<&'static str> {
        match self {
            ServiceTier::Priority => Some("priority"),
            ServiceTier::Default => None,
        }
    }
}

impl fmt::Display for ServiceTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ServiceTier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Checks a pinned effort against [`KNOWN_EFFORTS`].
///
/// # Errors
///
/// [`VariantError::UnknownEffort`] for anything else.
pub fn known_effort(s: &str) -> Result<&str, VariantError> {
    if KNOWN_EFFORTS.contains(&s) {
        Ok(s)
    } else {
        Err(VariantError::UnknownEffort(s.to_owned()))
    }
}

/// The variant words of a model id, parsed but not yet checked against any model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suffix {
    /// The effort word, if any (any lowercase word other than `fast`).
    pub effort: Option<String>,
    /// Whether `fast` was given.
    pub fast: bool,
}

impl Suffix {
    /// Whether there are no variant words.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.effort.is_none() && !self.fast
    }
}

/// Splits `id` at its first `+` into the id proper and the variant words after it, if any.
#[must_use]
pub fn split(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SEPARATOR) {
        Some((base, words)) => (base, Some(words)),
        None => (id, None),
    }
}

/// Splits `id` and parses its variant words: `gpt-6.1-sol+high+fast` is `gpt-6.1-sol` with
/// effort `high` and the fast tier. The words may come in any order.
///
/// # Errors
///
/// An empty word, a word that is not lowercase letters, or two words for the same setting.
pub fn parse(id: &str) -> Result<(&str, Suffix), VariantError> {
    let (base, words) = split(id);
    let mut suffix = Suffix::default();
    let Some(words) = words else {
        return Ok((base, suffix));
    };
    for word in words.split(SEPARATOR) {
        if word.is_empty() {
            return Err(VariantError::Empty);
        }
        if !word.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(VariantError::BadWord(word.to_owned()));
        }
        if word == FAST {
            if suffix.fast {
                return Err(VariantError::Twice {
                    what: "service tier",
                    first: FAST.to_owned(),
                    second: FAST.to_owned(),
                });
            }
            suffix.fast = true;
        } else if let Some(first) = &suffix.effort {
            return Err(VariantError::Twice {
                what: "reasoning effort",
                first: first.clone(),
                second: word.to_owned(),
            });
        } else {
            suffix.effort = Some(word.to_owned());
        }
    }
    Ok((base, suffix))
}

/// A variant's id in canonical order: `model+effort+fast`.
#[must_use]
pub fn variant_id(model: &str, effort: Option<&str>, fast: bool) -> String {
    let mut id = model.to_owned();
    for word in effort.into_iter().chain(fast.then_some(FAST)) {
        id.push(SEPARATOR);
        id.push_str(word);
    }
    id
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn suffix(effort: Option<&str>, fast: bool) -> Suffix {
        Suffix {
            effort: effort.map(str::to_owned),
            fast,
        }
    }

    #[test]
    fn ids_split_at_the_first_plus() {
        assert_eq!(split("gpt-6.1-sol"), ("gpt-6.1-sol", None));
        assert_eq!(split("gpt-6.1-sol+high"), ("gpt-6.1-sol", Some("high")));
        assert_eq!(
            split("openai-codex@work:gpt-6.1-sol+high+fast"),
            ("openai-codex@work:gpt-6.1-sol", Some("high+fast"))
        );
        assert_eq!(split("m+"), ("m", Some("")));
    }

    #[test]
    fn suffixes_parse_in_any_order() {
        let cases = [
            ("m", suffix(None, false)),
            ("m+high", suffix(Some("high"), false)),
            ("m+fast", suffix(None, true)),
            ("m+high+fast", suffix(Some("high"), true)),
            ("m+fast+xhigh", suffix(Some("xhigh"), true)),
            // Unknown words parse; whether a model offers them is the resolver's question.
            ("m+extreme", suffix(Some("extreme"), false)),
        ];
        for (id, want) in cases {
            assert_eq!(parse(id), Ok(("m", want)), "{id}");
        }
    }

    #[test]
    fn bad_suffixes_say_why() {
        let twice = |what, a: &str, b: &str| VariantError::Twice {
            what,
            first: a.to_owned(),
            second: b.to_owned(),
        };
        let cases = [
            ("m+", VariantError::Empty),
            ("m+high+", VariantError::Empty),
            ("m++high", VariantError::Empty),
            ("m+HIGH", VariantError::BadWord("HIGH".into())),
            ("m+x-high", VariantError::BadWord("x-high".into())),
            ("m+high+low", twice("reasoning effort", "high", "low")),
            ("m+fast+fast", twice("service tier", "fast", "fast")),
        ];
        for (id, want) in cases {
            assert_eq!(parse(id), Err(want), "{id}");
        }
    }

    #[test]
    fn variant_ids_are_canonical() {
        assert_eq!(variant_id("m", Some("high"), true), "m+high+fast");
        assert_eq!(variant_id("m", None, true), "m+fast");
        assert_eq!(variant_id("m", Some("low"), false), "m+low");
        assert_eq!(variant_id("m", None, false), "m");
        let (base, parsed) = parse("m+high+fast").unwrap();
        assert_eq!(
            variant_id(base, parsed.effort.as_deref(), parsed.fast),
            "m+high+fast"
        );
    }

    #[test]
    fn pinned_values_are_checked() {
        assert_eq!(known_effort("xhigh"), Ok("xhigh"));
        assert_eq!(
            known_effort("extreme"),
            Err(VariantError::UnknownEffort("extreme".into()))
        );
        assert_eq!(ServiceTier::parse("fast"), Ok(ServiceTier::Priority));
        assert_eq!(ServiceTier::parse("priority"), Ok(ServiceTier::Priority));
        assert_eq!(ServiceTier::parse("default"), Ok(ServiceTier::Default));
        assert_eq!(
            ServiceTier::parse("flex"),
            Err(VariantError::UnknownTier("flex".into()))
        );
        assert_eq!(ServiceTier::Priority.wire(), Some("priority"));
        assert_eq!(ServiceTier::Default.wire(), None);
    }
}
