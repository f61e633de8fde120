//! Puts a resolved target's reasoning effort and service tier into the body that goes upstream,
//! in the field the upstream's API uses, after any translation (so a route's pin overrides
//! whatever the translators derived from the client's own parameters, e.g. Anthropic `thinking`):
//!
//! | API | effort | service tier |
//! |---|---|---|
//! | `openai_responses` | `reasoning.effort` | `service_tier` |
//! | `openai_chat` | `reasoning_effort` | `service_tier` |
//! | `anthropic_messages` | `output_config.effort` | `service_tier` (`default` → `standard_only`; no priority tier) |
//!
//! A pinned setting (from a route) replaces the client's value; a suffix's fills in only where
//! the client sent none. `service_tier: default` pinned removes the client's tier (standard
//! processing). For the Codex backend, a `reasoning` object always asks for the encrypted
//! reasoning in `include`, as the backend needs with `store: false` (spec §6.3).

use serde_json::{Map, Value, json};

use super::{Setting, Target};
use crate::config::Api;
use crate::translate::responses::ENCRYPTED_REASONING;
use crate::variant::ServiceTier;

/// A setting the upstream's API cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The fast tier to an Anthropic Messages upstream.
    #[error(
        "`{model}` is reached through anthropic_messages here, which has no priority (fast) tier"
    )]
    NoPriorityTier {
        /// The upstream model.
        model: String,
    },
}

/// Applies `target`'s effort and tier to `body`, a request in `api`. `codex` says the upstream
/// is the Codex backend.
///
/// # Errors
///
/// [`ApplyError::NoPriorityTier`] when the fast tier would go to an Anthropic upstream.
pub fn apply(body: &mut Value, api: Api, target: &Target, codex: bool) -> Result<(), ApplyError> {
    let Value::Object(fields) = body else {
        return Ok(());
    };
    if let Some(effort) = &target.effort {
        apply_effort(fields, api, effort, codex);
    }
    if let Some(tier) = &target.service_tier {
        apply_tier(fields, api, tier, &target.model)?;
    }
    Ok(())
}

fn apply_effort(fields: &mut Map<String, Value>, api: Api, effort: &Setting<String>, codex: bool) {
    let (parent, key) = match api {
        Api::OpenaiResponses => (Some("reasoning"), "effort"),
        Api::OpenaiChat => (None, "reasoning_effort"),
        Api::AnthropicMessages => (Some("output_config"), "effort"),
    };
    let holder = match parent {
        Some(parent) => {
            let slot = fields.entry(parent).or_insert_with(|| json!({}));
            if !slot.is_object() {
                *slot = json!({});
            }
            let Value::Object(holder) = slot else { return };
            holder
        }
        None => &mut *fields,
    };
    let client_set = holder.get(key).is_some_and(|v| !v.is_null());
    if client_set && !effort.is_pinned() {
        return;
    }
    holder.insert(key.to_owned(), Value::String(effort.value.clone()));
    if api == Api::OpenaiResponses && effort.value == "none" {
        // Nothing to summarise without reasoning (spec §6.3: summary omitted with `none`).
        holder.remove("summary");
    }
    if api == Api::OpenaiResponses && codex {
        let include = fields.entry("include").or_insert_with(|| json!([]));
        if !include.is_array() {
            *include = json!([]);
        }
        if let Value::Array(list) = include
            && !list.iter().any(|v| v.as_str() == Some(ENCRYPTED_REASONING))
        {
            list.push(Value::String(ENCRYPTED_REASONING.to_owned()));
        }
    }
}

fn apply_tier(
    fields: &mut Map<String, Value>,
    api: Api,
    tier: &Setting<ServiceTier>,
    model: &str,
) -> Result<(), ApplyError> {
    let client_set = fields.get("service_tier").is_some_and(|v| !v.is_null());
    if client_set && !tier.is_pinned() {
        return Ok(());
    }
    match (tier.value, api) {
        (ServiceTier::Priority, Api::AnthropicMessages) => {
            return Err(ApplyError::NoPriorityTier {
                model: model.to_owned(),
            });
        }
        (ServiceTier::Default, Api::AnthropicMessages) => {
            fields.insert("service_tier".to_owned(), json!("standard_only"));
        }
        (value, Api::OpenaiResponses | Api::OpenaiChat) => match value.wire() {
            Some(wire) => {
                fields.insert("service_tier".to_owned(), json!(wire));
            }
            None => {
                fields.remove("service_tier");
            }
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::ids::ProviderId;
    use crate::routing::Origin;

    fn target(effort: Option<(&str, bool)>, tier: Option<(ServiceTier, bool)>) -> Target {
        let origin = |pinned: bool| {
            if pinned {
                Origin::Route("alias".into())
            } else {
                Origin::Suffix
            }
        };
        Target {
            provider: ProviderId::openai_codex(),
            model: "gpt-6.1-sol".into(),
            credentials: Vec::new(),
            pinned: false,
            effort: effort.map(|(v, p)| Setting {
                value: v.to_owned(),
                origin: origin(p),
            }),
            service_tier: tier.map(|(v, p)| Setting {
                value: v,
                origin: origin(p),
            }),
        }
    }

    fn applied(body: Value, api: Api, target: &Target, codex: bool) -> Value {
        let mut body = body;
        apply(&mut body, api, target, codex).unwrap();
        body
    }

    #[test]
    fn a_pin_beats_the_client_and_a_suffix_does_not() {
        let client =
            json!({"reasoning": {"effort": "low", "summary": "auto"}, "service_tier": "flex"});
        let pinned = target(Some(("high", true)), Some((ServiceTier::Priority, true)));
        assert_eq!(
            applied(client.clone(), Api::OpenaiResponses, &pinned, false),
            json!({"reasoning": {"effort": "high", "summary": "auto"}, "service_tier": "priority"})
        );
        let suffix = target(Some(("high", false)), Some((ServiceTier::Priority, false)));
        assert_eq!(
            applied(client.clone(), Api::OpenaiResponses, &suffix, false),
            client
        );
        // A suffix fills in what the client left out.
        assert_eq!(
            applied(
                json!({"reasoning": {"summary": "auto"}}),
                Api::OpenaiResponses,
                &suffix,
                false
            ),
            json!({"reasoning": {"effort": "high", "summary": "auto"}, "service_tier": "priority"})
        );
    }

    #[test]
    fn each_api_gets_its_own_fields() {
        let t = target(Some(("high", true)), Some((ServiceTier::Priority, true)));
        assert_eq!(
            applied(
                json!({"reasoning_effort": "low"}),
                Api::OpenaiChat,
                &t,
                false
            ),
            json!({"reasoning_effort": "high", "service_tier": "priority"})
        );
        let effort_only = target(Some(("high", true)), None);
        assert_eq!(
            applied(
                json!({"max_tokens": 10}),
                Api::AnthropicMessages,
                &effort_only,
                false
            ),
            json!({"max_tokens": 10, "output_config": {"effort": "high"}})
        );
        assert_eq!(
            apply(&mut json!({}), Api::AnthropicMessages, &t, false),
            Err(ApplyError::NoPriorityTier {
                model: "gpt-6.1-sol".into()
            })
        );
    }

    #[test]
    fn codex_bodies_ask_for_encrypted_reasoning() {
        let t = target(Some(("medium", false)), None);
        assert_eq!(
            applied(json!({"input": []}), Api::OpenaiResponses, &t, true),
            json!({"input": [], "reasoning": {"effort": "medium"}, "include": [ENCRYPTED_REASONING]})
        );
        assert_eq!(
            applied(
                json!({"include": [ENCRYPTED_REASONING]}),
                Api::OpenaiResponses,
                &t,
                true
            ),
            json!({"include": [ENCRYPTED_REASONING], "reasoning": {"effort": "medium"}})
        );
        assert_eq!(
            applied(json!({}), Api::OpenaiResponses, &t, false),
            json!({"reasoning": {"effort": "medium"}})
        );
    }

    #[test]
    fn effort_none_drops_the_summary_and_default_tier_drops_the_clients() {
        let t = target(Some(("none", true)), Some((ServiceTier::Default, true)));
        assert_eq!(
            applied(
                json!({"reasoning": {"effort": "high", "summary": "auto"}, "service_tier": "priority"}),
                Api::OpenaiResponses,
                &t,
                false
            ),
            json!({"reasoning": {"effort": "none"}})
        );
        let tier_only = target(None, Some((ServiceTier::Default, true)));
        assert_eq!(
            applied(
                json!({"service_tier": "auto"}),
                Api::AnthropicMessages,
                &tier_only,
                false
            ),
            json!({"service_tier": "standard_only"})
        );
    }
}
