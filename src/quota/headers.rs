//! The Codex backend's quota headers (spec §7.3: `x-codex-primary-used-percent`, …) read into a
//! snapshot, defensively: missing, empty or non-numeric values are simply absent.

use http::HeaderMap;
use serde::{Deserialize, Serialize};

/// One rate-limit window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Percent of the window used.
    pub used_percent: Option<f64>,
    /// Window length in minutes (300 = 5 h, 10080 = a week).
    pub window_minutes: Option<i64>,
    /// Unix seconds when the window resets.
    pub reset_at: Option<i64>,
}

impl Window {
    fn is_empty(&self) -> bool {
        self.used_percent.is_none() && self.window_minutes.is_none() && self.reset_at.is_none()
    }
}

/// What the latest answer said about an account's quota.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The primary window.
    pub primary: Option<Window>,
    /// The secondary (weekly) window.
    pub secondary: Option<Window>,
    /// The plan (`plus`, `pro`, …).
    pub plan_type: Option<String>,
    /// Whether the account has credits.
    pub has_credits: Option<bool>,
    /// Whether credits are unlimited.
    pub unlimited_credits: Option<bool>,
    /// The id of the limit that applies.
    pub active_limit: Option<String>,
}

impl Snapshot {
    /// Reads the `x-codex-*` headers; `None` when there are none worth keeping. `now` converts
    /// `reset-after-seconds` into an absolute time.
    #[must_use]
    pub fn from_headers(headers: &HeaderMap, now: i64) -> Option<Snapshot> {
        // Most answers carry none: skip the lookups then.
        if !headers.keys().any(|k| k.as_str().starts_with("x-codex-")) {
            return None;
        }
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let window = |[used, minutes, reset_at, reset_after]: [&str; 4]| {
            let used_percent = text(used)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite());
            let window_minutes = text(minutes).and_then(parse_int).filter(|m| *m > 0);
            let reset_at = text(reset_at)
                .and_then(parse_int)
                .filter(|t| *t > 0)
                .or_else(|| {
                    text(reset_after)
                        .and_then(parse_int)
                        .filter(|s| *s >= 0)
                        .map(|s| now.saturating_add(s))
                });
            let w = Window {
                used_percent,
                window_minutes,
                reset_at,
            };
            (!w.is_empty()).then_some(w)
        };
        let snapshot = Snapshot {
            primary: window(PRIMARY),
            secondary: window(SECONDARY),
            plan_type: text("x-codex-plan-type").map(str::to_owned),
            has_credits: text("x-codex-credits-has-credits").and_then(parse_bool),
            unlimited_credits: text("x-codex-credits-unlimited").and_then(parse_bool),
            active_limit: text("x-codex-active-limit").map(str::to_owned),
        };
        (snapshot != Snapshot::default()).then_some(snapshot)
    }
}

/// The primary window's headers: used percent, window minutes, reset time, seconds to reset.
const PRIMARY: [&str; 4] = [
    "x-codex-primary-used-percent",
    "x-codex-primary-window-minutes",
    "x-codex-primary-reset-at",
    "x-codex-primary-reset-after-seconds",
];

/// The secondary window's headers, in the order of [`PRIMARY`].
const SECONDARY: [&str; 4] = [
    "x-codex-secondary-used-percent",
    "x-codex-secondary-window-minutes",
    "x-codex-secondary-reset-at",
    "x-codex-secondary-reset-after-seconds",
];

/// An integer, also when written as a float (`300.0`).
fn parse_int(v: &str) -> Option<i64> {
    v.parse::<i64>().ok().or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && f.abs() < 9.0e15)
            .map(|f| {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "bounded above; header values are whole seconds or minutes"
                )]
                let i = f.round() as i64;
                i
            })
    })
}

/// `true`/`false`/`1`/`0`, any case.
fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn reads_both_windows_and_plan() {
        let h = headers(&[
            ("x-codex-primary-used-percent", "42.5"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-at", "1790000000"),
            ("x-codex-secondary-used-percent", "7"),
            ("x-codex-secondary-window-minutes", "10080"),
            ("x-codex-secondary-reset-after-seconds", "60"),
            ("x-codex-plan-type", "pro"),
            ("x-codex-credits-has-credits", "False"),
            ("x-codex-credits-unlimited", "1"),
        ]);
        let s = Snapshot::from_headers(&h, 1000).unwrap();
        assert_eq!(
            s.primary,
            Some(Window {
                used_percent: Some(42.5),
                window_minutes: Some(300),
                reset_at: Some(1_790_000_000)
            })
        );
        assert_eq!(s.secondary.unwrap().reset_at, Some(1060));
        assert_eq!(s.plan_type.as_deref(), Some("pro"));
        assert_eq!(s.has_credits, Some(false));
        assert_eq!(s.unlimited_credits, Some(true));
    }

    #[test]
    fn garbage_is_ignored() {
        let h = headers(&[
            ("x-codex-primary-used-percent", "lots"),
            ("x-codex-primary-window-minutes", ""),
            ("x-codex-secondary-used-percent", "NaN"),
            ("x-codex-credits-has-credits", "maybe"),
        ]);
        assert_eq!(Snapshot::from_headers(&h, 0), None);
        assert_eq!(Snapshot::from_headers(&HeaderMap::new(), 0), None);
    }

    #[test]
    fn float_minutes_are_accepted() {
        let h = headers(&[("x-codex-primary-window-minutes", "10080.0")]);
        assert_eq!(
            Snapshot::from_headers(&h, 0)
                .unwrap()
                .primary
                .unwrap()
                .window_minutes,
            Some(10080)
        );
    }
}
