//! Thinking and effort, both ways: Anthropic's `thinking` and `output_config.effort` (top level
//! or per turn on a system message) become the Responses `reasoning` object, and the backend's
//! encrypted reasoning travels back to the client inside a thinking block's `signature`, made
//! by bitrouter and recognisable by [`SIGNATURE_PREFIX`], so that a later turn turns it back
//! into a `reasoning` input item. Signatures bitrouter did not make (Anthropic's own) are never
//! forwarded.
//!
//! The effort mapping (documented in the README):
//!
//! | Anthropic | Responses `reasoning.effort` |
//! |---|---|
//! | `output_config.effort` `low`, `medium`, `high`, `xhigh`, `max` (the last system message's per-turn one wins over the top-level one) | the same name |
//! | `thinking: {type: enabled, budget_tokens: n}` without an effort | n < 4,096 `low`; < 16,384 `medium`; < 32,768 `high`; else `xhigh` |
//! | `thinking: {type: disabled}` without an effort | `none` |
//! | `thinking: {type: adaptive}` or `between_tools` without an effort, or no `thinking` | not sent (the model's default) |
//!
//! The server then fits the effort to what the model's catalog entry supports
//! ([`fit_effort`]): the highest supported level not above the one asked for, else the lowest.
//! `thinking.display: omitted` asks for no reasoning summary (thinking blocks come back with
//! empty text and a signature); `summarized` and `updates` ask for `summary: auto`.

use serde_json::{Map, Value, json};

use crate::translate::{TranslateError, type_of};

/// The start of every signature bitrouter makes; the rest is the backend's
/// `encrypted_content`.
pub const SIGNATURE_PREFIX: &str = "bitrouter.reasoning.v1:";

/// Budgets below this many tokens ask for `low` effort.
const LOW_BUDGET_BELOW: u64 = 4_096;
/// Budgets below this many tokens (and not low) ask for `medium` effort.
const MEDIUM_BUDGET_BELOW: u64 = 16_384;
/// Budgets below this many tokens (and not medium) ask for `high` effort; larger ones `xhigh`.
const HIGH_BUDGET_BELOW: u64 = 32_768;

/// Effort levels Anthropic accepts.
const ANTHROPIC_EFFORTS: &[&str] = &["low", "medium", "high", "xhigh", "max"];

/// Every Responses effort level, least first.
const EFFORT_ORDER: &[&str] = &[
    "none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra",
];

/// What the client asked for about thinking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinkingPlan {
    /// The Responses `reasoning` object to send, if any.
    pub reasoning: Option<Value>,
    /// Whether reasoning comes back as thinking blocks.
    pub blocks: bool,
}

/// Reads `thinking`, the top-level `output_config` and the per-turn effort (the last system
/// message's `output_config.effort`).
///
/// # Errors
///
/// An unknown thinking type, a missing `budget_tokens`, or an unknown effort.
pub fn plan(
    thinking: Option<&Value>,
    output_config: Option<&Value>,
    turn_effort: Option<&str>,
) -> Result<ThinkingPlan, TranslateError> {
    let top_effort = effort_of(output_config, "output_config.effort")?;
    let effort = turn_effort.map(str::to_owned).or(top_effort);
    let thinking = thinking.filter(|t| !t.is_null());
    let (blocks, default_effort, summary) = match thinking.map(type_of) {
        None => (false, None, false),
        Some("disabled") => (false, Some("none".to_owned()), false),
        Some(kind @ ("enabled" | "adaptive" | "between_tools")) => {
            let thinking = thinking.unwrap_or(&Value::Null);
            let budget = if kind == "enabled" {
                let budget = thinking
                    .get("budget_tokens")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| TranslateError::Missing("thinking.budget_tokens".to_owned()))?;
                Some(budget_effort(budget).to_owned())
            } else {
                None
            };
            let summary = match thinking.get("display").and_then(Value::as_str) {
                None | Some("summarized" | "updates") => true,
                Some("omitted") => false,
                Some(other) => {
                    return Err(TranslateError::invalid(
                        "thinking.display",
                        format!(
                            "unknown display `{other}`; expected summarized, omitted or updates"
                        ),
                    ));
                }
            };
            (true, budget, summary)
        }
        Some(other) => {
            return Err(TranslateError::invalid(
                "thinking.type",
                format!(
                    "unknown type `{other}`; expected enabled, adaptive, between_tools or disabled"
                ),
            ));
        }
    };
    let effort = effort.or(default_effort);
    let mut reasoning = Map::new();
    if let Some(effort) = effort {
        reasoning.insert("effort".to_owned(), json!(effort));
    }
    if summary {
        reasoning.insert("summary".to_owned(), json!("auto"));
    }
    // With thinking on, `reasoning` is sent even when empty: it asks the Codex backend for the
    // encrypted reasoning that later turns send back.
    let reasoning = (blocks || !reasoning.is_empty()).then_some(Value::Object(reasoning));
    Ok(ThinkingPlan { reasoning, blocks })
}

/// The effort a thinking budget stands for.
fn budget_effort(budget: u64) -> &'static str {
    if budget < LOW_BUDGET_BELOW {
        "low"
    } else if budget < MEDIUM_BUDGET_BELOW {
        "medium"
    } else if budget < HIGH_BUDGET_BELOW {
        "high"
    } else {
        "xhigh"
    }
}

/// The `effort` of an `output_config` object, checked.
///
/// # Errors
///
/// When it is not one of Anthropic's levels.
pub fn effort_of(
    output_config: Option<&Value>,
    field: &str,
) -> Result<Option<String>, TranslateError> {
    match output_config.and_then(|c| c.get("effort")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(effort)) if ANTHROPIC_EFFORTS.contains(&effort.as_str()) => {
            Ok(Some(effort.clone()))
        }
        Some(_) => Err(TranslateError::invalid(
            field,
            "must be one of low, medium, high, xhigh or max",
        )),
    }
}

/// Fits `reasoning.effort` in a Responses body to the levels the model supports: the highest
/// supported level not above the requested one, else the lowest supported level. Unknown
/// levels and an empty list leave the body unchanged.
pub fn fit_effort(body: &mut Value, supported: &[String]) {
    let Some(effort) = body.pointer_mut("/reasoning/effort") else {
        return;
    };
    let Some(asked) = effort.as_str().map(str::to_owned) else {
        return;
    };
    if supported.is_empty() || supported.contains(&asked) {
        return;
    }
    let rank = |level: &str| EFFORT_ORDER.iter().position(|l| *l == level);
    let Some(asked_rank) = rank(&asked) else {
        return;
    };
    let mut ranked: Vec<(usize, &String)> = supported
        .iter()
        .filter_map(|level| rank(level).map(|r| (r, level)))
        .collect();
    ranked.sort();
    let below = ranked.iter().rev().find(|(r, _)| *r <= asked_rank);
    if let Some((_, level)) = below.or(ranked.first()) {
        *effort = json!(level);
    }
}

/// The signature of a thinking block for the backend's encrypted reasoning.
#[must_use]
pub fn signature_for(encrypted_content: &str) -> String {
    format!("{SIGNATURE_PREFIX}{encrypted_content}")
}

/// The encrypted reasoning a bitrouter signature carries; `None` for any other signature.
#[must_use]
pub fn encrypted_content_of(signature: &str) -> Option<&str> {
    signature
        .strip_prefix(SIGNATURE_PREFIX)
        .filter(|rest| !rest.is_empty())
}

/// A thinking block from an earlier turn → a `reasoning` input item, when bitrouter made its
/// signature; `None` (dropped) otherwise.
#[must_use]
pub fn reasoning_item(block: &Value) -> Option<Value> {
    let signature = block.get("signature").and_then(Value::as_str)?;
    let encrypted = encrypted_content_of(signature)?;
    let text = block.get("thinking").and_then(Value::as_str).unwrap_or("");
    let summary = if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "summary_text", "text": text})]
    };
    Some(json!({"type": "reasoning", "summary": summary, "encrypted_content": encrypted}))
}

/// How many of the latest assistant turns keep their thinking, from
/// `context_management.edits[].clear_thinking_20251015.keep`: `None` keeps all.
///
/// # Errors
///
/// A malformed `keep`.
pub fn thinking_turns_kept(edit: &Value, field: &str) -> Result<Option<usize>, TranslateError> {
    match edit.get("keep") {
        // Anthropic's default keeps the thinking of the last assistant turn.
        None | Some(Value::Null) => Ok(Some(1)),
        Some(Value::String(all)) if all == "all" => Ok(None),
        Some(keep) if type_of(keep) == "all" => Ok(None),
        Some(keep) if type_of(keep) == "thinking_turns" => keep
            .get("value")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                TranslateError::invalid(format!("{field}.keep.value"), "must be a whole number")
            }),
        Some(_) => Err(TranslateError::invalid(
            format!("{field}.keep"),
            "must be \"all\" or {\"type\": \"thinking_turns\", \"value\": n}",
        )),
    }
}
