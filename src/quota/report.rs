//! What clients are told about the serving account's quota, in each client's own convention:
//!
//! - [`usage_body`]: the Codex backend's usage document (`GET /backend-api/wham/usage`), which
//!   the Codex CLI reads for its `/status` card and status line when it runs in ChatGPT login
//!   mode (its `chatgpt_base_url` pointed at bitrouter);
//! - [`accounts_check_body`]: the one-workspace answer to the Codex CLI's workspace routing
//!   discovery (`GET /backend-api/wham/accounts/check`), which it asks before anything else;
//! - [`anthropic_headers`]: Anthropic's unified rate-limit headers
//!   (`anthropic-ratelimit-unified-5h-utilization`, `-7d-…`, `-status`, `-reset`,
//!   `-representative-claim`) that Claude Code reads for its usage warnings.
//!
//! (The Codex CLI's own `x-codex-*` headers are relayed from the backend as they came.) All
//! pure: the snapshot and the time are arguments.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::{Snapshot, Window};

/// Used percent from which Claude Code is told `allowed_warning`.
const WARNING_PERCENT: f64 = 80.0;

/// A window's used percent at `now`: 0 once its reset time has passed.
fn used(window: &Window, now: i64) -> Option<f64> {
    let used = window.used_percent?;
    if window.reset_at.is_some_and(|reset| reset <= now) {
        return Some(0.0);
    }
    Some(used.clamp(0.0, 100.0))
}

/// The snapshot's windows as (5-hour, weekly), placed by their length when it is known, else
/// primary as the 5-hour and secondary as the weekly one.
fn five_hour_and_weekly(snapshot: &Snapshot) -> (Option<&Window>, Option<&Window>) {
    let mut five = None;
    let mut week = None;
    for (window, is_primary) in [(&snapshot.primary, true), (&snapshot.secondary, false)] {
        let Some(w) = window.as_ref() else { continue };
        let weekly = match w.window_minutes {
            Some(minutes) => minutes > 24 * 60,
            None => !is_primary,
        };
        let slot = if weekly { &mut week } else { &mut five };
        if slot.is_none() {
            *slot = Some(w);
        }
    }
    (five, week)
}

/// Plans the Codex CLI's usage model knows; another plan string is sent as `plus` so the
/// document still parses (the CLI shows the plan from its own login, not from here).
const CODEX_PLANS: &[&str] = &[
    "guest",
    "free",
    "go",
    "plus",
    "pro",
    "prolite",
    "free_workspace",
    "team",
    "business",
    "education",
    "quorum",
    "k12",
    "enterprise",
    "edu",
];

/// The usage document for an account's snapshot (`None`: no figures yet, so no windows).
#[must_use]
pub fn usage_body(snapshot: Option<&Snapshot>, now: i64) -> Value {
    let plan = snapshot
        .and_then(|s| s.plan_type.as_deref())
        .filter(|p| CODEX_PLANS.contains(p))
        .unwrap_or("plus");
    let window = |w: Option<&Window>| -> Value {
        let Some(w) = w else { return Value::Null };
        let Some(used) = used(w, now) else {
            return Value::Null;
        };
        let reset_at = w.reset_at.filter(|r| *r > now).unwrap_or(now);
        // The Codex CLI reads these as 32-bit integers: a later time would fail the whole
        // document, so it is clamped.
        json!({
            "used_percent": percent_int(used),
            "limit_window_seconds": i32_clamped(w.window_minutes.unwrap_or(0).saturating_mul(60)),
            "reset_after_seconds": i32_clamped(reset_at - now),
            "reset_at": i32_clamped(reset_at),
        })
    };
    let primary = window(snapshot.and_then(|s| s.primary.as_ref()));
    let secondary = window(snapshot.and_then(|s| s.secondary.as_ref()));
    let reached = [&primary, &secondary]
        .iter()
        .any(|w| w["used_percent"].as_i64().is_some_and(|p| p >= 100));
    let mut rate_limit = json!({"allowed": !reached, "limit_reached": reached});
    for (name, w) in [("primary_window", primary), ("secondary_window", secondary)] {
        if !w.is_null() {
            rate_limit[name] = w;
        }
    }
    let mut body = json!({"plan_type": plan, "rate_limit": rate_limit});
    if let Some(s) = snapshot
        && let (Some(has), Some(unlimited)) = (s.has_credits, s.unlimited_credits)
    {
        body["credits"] = json!({"has_credits": has, "unlimited": unlimited, "balance": null});
    }
    body
}

/// `v` within the 32-bit range.
fn i32_clamped(v: i64) -> i64 {
    v.clamp(0, i64::from(i32::MAX))
}

/// A percentage as the whole number the usage document carries.
fn percent_int(p: f64) -> i64 {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "clamped to 0..=100 before rounding"
    )]
    let whole = p.clamp(0.0, 100.0).round() as i64;
    whole
}

/// The workspace routing answer: one personal workspace, the client's own account id (the CLI
/// checks the answer names the account it is signed in to), no backend constraint (so the CLI
/// keeps the `chatgpt_base_url` it was given).
#[must_use]
pub fn accounts_check_body(account_id: &str) -> Value {
    json!({
        "accounts": [{
            "id": account_id,
            "workspace_backend_origin": "NO_CONSTRAINT",
            "account_routing_override": "NO_CONSTRAINT",
            "structure": "personal"
        }],
        "account_ordering": [account_id],
        "default_account_id": account_id
    })
}

/// Anthropic's unified rate-limit headers for an account's snapshot; empty when it holds no
/// usage figures.
#[must_use]
pub fn anthropic_headers(snapshot: &Snapshot, now: i64) -> HeaderMap {
    let mut out = HeaderMap::new();
    let (five, week) = five_hour_and_weekly(snapshot);
    let mut worst: Option<(f64, &str, Option<i64>)> = None;
    for (window, short, claim) in [(five, "5h", "five_hour"), (week, "7d", "seven_day")] {
        let Some(w) = window else { continue };
        let Some(used) = used(w, now) else { continue };
        let reset = w.reset_at.filter(|r| *r > now);
        put(
            &mut out,
            &format!("anthropic-ratelimit-unified-{short}-utilization"),
            &format!("{:.2}", used / 100.0),
        );
        if let Some(reset) = reset {
            put(
                &mut out,
                &format!("anthropic-ratelimit-unified-{short}-reset"),
                &reset.to_string(),
            );
        }
        put(
            &mut out,
            &format!("anthropic-ratelimit-unified-{short}-status"),
            status(used),
        );
        if worst.is_none_or(|(u, _, _)| used > u) {
            worst = Some((used, claim, reset));
        }
    }
    if let Some((used, claim, reset)) = worst {
        put(&mut out, "anthropic-ratelimit-unified-status", status(used));
        put(
            &mut out,
            "anthropic-ratelimit-unified-representative-claim",
            claim,
        );
        if let Some(reset) = reset {
            put(
                &mut out,
                "anthropic-ratelimit-unified-reset",
                &reset.to_string(),
            );
        }
    }
    out
}

/// `allowed`, `allowed_warning` or `rejected` for a used percent.
fn status(used: f64) -> &'static str {
    if used >= 100.0 {
        "rejected"
    } else if used >= WARNING_PERCENT {
        "allowed_warning"
    } else {
        "allowed"
    }
}

fn put(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            primary: Some(Window {
                used_percent: Some(37.4),
                window_minutes: Some(300),
                reset_at: Some(1_000),
            }),
            secondary: Some(Window {
                used_percent: Some(84.0),
                window_minutes: Some(10080),
                reset_at: Some(9_000),
            }),
            plan_type: Some("pro".into()),
            has_credits: Some(false),
            unlimited_credits: Some(false),
            ..Snapshot::default()
        }
    }

    #[test]
    fn usage_body_has_every_field_the_codex_cli_requires() {
        let body = usage_body(Some(&snapshot()), 400);
        assert_eq!(body["plan_type"], "pro");
        assert_eq!(body["rate_limit"]["allowed"], true);
        assert_eq!(body["rate_limit"]["limit_reached"], false);
        assert_eq!(
            body["rate_limit"]["primary_window"],
            json!({"used_percent": 37, "limit_window_seconds": 18000, "reset_after_seconds": 600, "reset_at": 1000})
        );
        assert_eq!(body["rate_limit"]["secondary_window"]["used_percent"], 84);
        assert_eq!(
            body["credits"],
            json!({"has_credits": false, "unlimited": false, "balance": null})
        );
        // Times past 2038 are clamped to what the CLI can read.
        let mut far = snapshot();
        if let Some(w) = far.primary.as_mut() {
            w.reset_at = Some(4_102_444_800);
        }
        let body = usage_body(Some(&far), 400);
        assert_eq!(body["rate_limit"]["primary_window"]["reset_at"], i32::MAX);
        // After the 5-hour reset, that window is unused again.
        let later = usage_body(Some(&snapshot()), 2_000);
        assert_eq!(later["rate_limit"]["primary_window"]["used_percent"], 0);
        assert_eq!(
            later["rate_limit"]["primary_window"]["reset_after_seconds"],
            0
        );
    }

    #[test]
    fn usage_body_without_figures_or_with_a_spent_window() {
        let empty = usage_body(None, 0);
        assert_eq!(empty["plan_type"], "plus");
        assert!(empty["rate_limit"].get("primary_window").is_none());
        let mut spent = snapshot();
        spent.plan_type = Some("some-new-plan".into());
        if let Some(w) = spent.primary.as_mut() {
            w.used_percent = Some(100.0);
        }
        let body = usage_body(Some(&spent), 400);
        assert_eq!(body["plan_type"], "plus");
        assert_eq!(body["rate_limit"]["limit_reached"], true);
        assert_eq!(body["rate_limit"]["allowed"], false);
    }

    #[test]
    fn accounts_check_names_the_clients_account() {
        let body = accounts_check_body("acc-1");
        assert_eq!(body["accounts"][0]["id"], "acc-1");
        assert_eq!(body["account_ordering"], json!(["acc-1"]));
        assert_eq!(body["default_account_id"], "acc-1");
    }

    #[test]
    fn anthropic_headers_carry_both_windows_and_the_tighter_claim() {
        let h = anthropic_headers(&snapshot(), 400);
        assert_eq!(h["anthropic-ratelimit-unified-5h-utilization"], "0.37");
        assert_eq!(h["anthropic-ratelimit-unified-5h-reset"], "1000");
        assert_eq!(h["anthropic-ratelimit-unified-5h-status"], "allowed");
        assert_eq!(h["anthropic-ratelimit-unified-7d-utilization"], "0.84");
        assert_eq!(
            h["anthropic-ratelimit-unified-7d-status"],
            "allowed_warning"
        );
        assert_eq!(h["anthropic-ratelimit-unified-status"], "allowed_warning");
        assert_eq!(
            h["anthropic-ratelimit-unified-representative-claim"],
            "seven_day"
        );
        assert_eq!(h["anthropic-ratelimit-unified-reset"], "9000");
        assert!(anthropic_headers(&Snapshot::default(), 0).is_empty());
    }

    #[test]
    fn a_weekly_primary_is_the_7d_window() {
        // On some plans the primary window is the weekly one and there is no secondary.
        let s = Snapshot {
            primary: Some(Window {
                used_percent: Some(100.0),
                window_minutes: Some(10080),
                reset_at: Some(5_000),
            }),
            ..Snapshot::default()
        };
        let h = anthropic_headers(&s, 0);
        assert!(
            h.get("anthropic-ratelimit-unified-5h-utilization")
                .is_none()
        );
        assert_eq!(h["anthropic-ratelimit-unified-7d-utilization"], "1.00");
        assert_eq!(h["anthropic-ratelimit-unified-status"], "rejected");
    }
}
