//! Which variants a model offers and whether a resolved target may carry its effort and tier.
//!
//! The live catalog decides where it speaks: the Codex backend's `/models` lists each model's
//! `supported_reasoning_levels` and its `service_tiers` (older catalogs: `additional_speed_tiers`),
//! so `gpt-6-luna+xhigh` is refused when the catalog lists only `low` and `medium`. Where no
//! catalog says (a configured provider whose `/models` lists bare ids, or a catalog not fetched
//! yet), any known effort is accepted and sent, and the fast tier is accepted for providers that
//! speak an OpenAI API (where `service_tier: "priority"` exists); the upstream has the last word.
//! A provider that speaks only `anthropic_messages` has no priority tier, so `+fast` is refused.

use serde_json::Value;

use super::{Origin, RouteError, Setting, Target};
use crate::config::{Api, Config};
use crate::variant::{self, KNOWN_EFFORTS, ServiceTier};

/// What one catalog model supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Its reasoning efforts, in the catalog's order.
    pub efforts: Vec<String>,
    /// Whether it offers the priority ("Fast") tier.
    pub fast: bool,
}

impl Capabilities {
    /// Reads one entry of the Codex catalog (`{"models": [entry, …]}`): its slug and what it
    /// supports. `None` for an entry without a slug.
    #[must_use]
    pub fn from_codex_entry(entry: &Value) -> Option<(String, Capabilities)> {
        let slug = entry
            .get("slug")
            .or_else(|| entry.get("id"))
            .and_then(Value::as_str)?;
        let strings = |key: &str, field: Option<&str>| -> Vec<String> {
            entry
                .get(key)
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|v| match field {
                            Some(f) => v.get(f).and_then(Value::as_str),
                            None => v.as_str(),
                        })
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let efforts = strings("supported_reasoning_levels", Some("effort"));
        let is_fast = |tier: &String| {
            tier.eq_ignore_ascii_case("priority") || tier.eq_ignore_ascii_case(variant::FAST)
        };
        let fast = strings("service_tiers", Some("id")).iter().any(is_fast)
            || strings("additional_speed_tiers", None).iter().any(is_fast);
        Some((slug.to_owned(), Capabilities { efforts, fast }))
    }

    /// Every variant it offers as (effort, fast), in listing order: each effort, then fast,
    /// then each effort with fast.
    #[must_use]
    pub fn variants(&self) -> Vec<(Option<&str>, bool)> {
        let efforts = self.efforts.iter().map(|e| (Some(e.as_str()), false));
        let fast = self.fast.then_some((None, true));
        let both = self
            .efforts
            .iter()
            .filter(|_| self.fast)
            .map(|e| (Some(e.as_str()), true));
        efforts.chain(fast).chain(both).collect()
    }

    /// The variant suffixes it offers, for messages: `+low, +medium, +fast`.
    #[must_use]
    pub fn suffixes(&self) -> String {
        let words: Vec<String> = self
            .efforts
            .iter()
            .map(String::as_str)
            .chain(self.fast.then_some(variant::FAST))
            .map(|w| format!("+{w}"))
            .collect();
        words.join(", ")
    }
}

/// Checks the target's effort and tier against what its model offers. Returns whether the live
/// catalog was there to check with.
pub(super) fn check(
    config: &Config,
    inventory: &super::Inventory,
    target: &Target,
) -> Result<bool, RouteError> {
    let caps = inventory.capabilities_of(&target.provider, &target.model);
    let wants_fast = target
        .service_tier
        .as_ref()
        .filter(|t| t.value == ServiceTier::Priority);
    if target.effort.is_none() && wants_fast.is_none() {
        return Ok(caps.is_some());
    }
    let refuse = |asked: String, offered: String| RouteError::UnsupportedVariant {
        model: format!("{}:{}", target.provider, target.model),
        asked,
        offered,
    };
    let offered_by = |caps: &Capabilities| {
        if caps.efforts.is_empty() && !caps.fast {
            "its catalog entry lists no variants".to_owned()
        } else {
            format!("it offers {}", caps.suffixes())
        }
    };
    if let Some(effort) = &target.effort {
        let ok = match caps {
            Some(caps) => caps.efforts.contains(&effort.value),
            None => KNOWN_EFFORTS.contains(&effort.value.as_str()),
        };
        if !ok {
            let offered = match caps {
                Some(caps) => offered_by(caps),
                None => format!("known efforts: {}", KNOWN_EFFORTS.join(", ")),
            };
            return Err(refuse(asked(effort, "effort", &effort.value), offered));
        }
    }
    if let Some(tier) = wants_fast {
        match caps {
            Some(caps) if !caps.fast => {
                return Err(refuse(asked(tier, "tier", "priority"), offered_by(caps)));
            }
            Some(_) => {}
            None => {
                let provider = config.provider(&target.provider);
                let speaks_openai = provider.is_none_or(|p| {
                    p.apis()
                        .iter()
                        .any(|a| matches!(a, Api::OpenaiResponses | Api::OpenaiChat))
                });
                if !speaks_openai {
                    return Err(refuse(
                        asked(tier, "tier", "priority"),
                        "it speaks only anthropic_messages, which has no priority tier".into(),
                    ));
                }
            }
        }
    }
    Ok(caps.is_some())
}

/// How a refused setting is named: the suffix as written, or the pin and its route.
fn asked<T>(setting: &Setting<T>, what: &str, value: &str) -> String {
    match &setting.origin {
        Origin::Suffix if what == "tier" => format!("`+{}`", variant::FAST),
        Origin::Suffix => format!("`+{value}`"),
        Origin::Route(key) => format!("{what} `{value}`, pinned by route `{key}`"),
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;

    #[test]
    fn codex_entries_say_what_they_support() {
        let entry = json!({
            "slug": "gpt-6.1-sol",
            "supported_reasoning_levels": [{"effort": "low"}, {"effort": "high"}],
            "service_tiers": [{"id": "priority", "name": "Fast", "description": "faster"}]
        });
        assert_eq!(
            Capabilities::from_codex_entry(&entry),
            Some((
                "gpt-6.1-sol".to_owned(),
                Capabilities {
                    efforts: vec!["low".into(), "high".into()],
                    fast: true
                }
            ))
        );
        let older = json!({"slug": "m", "additional_speed_tiers": ["fast"]});
        assert_eq!(
            Capabilities::from_codex_entry(&older).map(|(_, c)| c.fast),
            Some(true)
        );
        let plain = json!({"slug": "m", "service_tiers": [], "supported_reasoning_levels": []});
        assert_eq!(
            Capabilities::from_codex_entry(&plain).map(|(_, c)| c),
            Some(Capabilities::default())
        );
        assert_eq!(Capabilities::from_codex_entry(&json!({"x": 1})), None);
    }

    #[test]
    fn variants_are_listed_efforts_then_fast_then_both() {
        let caps = Capabilities {
            efforts: vec!["low".into(), "high".into()],
            fast: true,
        };
        assert_eq!(
            caps.variants(),
            vec![
                (Some("low"), false),
                (Some("high"), false),
                (None, true),
                (Some("low"), true),
                (Some("high"), true),
            ]
        );
        assert_eq!(caps.suffixes(), "+low, +high, +fast");
        let slow = Capabilities {
            efforts: vec!["low".into()],
            fast: false,
        };
        assert_eq!(slow.variants(), vec![(Some("low"), false)]);
    }
}
