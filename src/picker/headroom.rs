//! An account's headroom: the share of quota left in its tightest window, from the latest
//! snapshot of its 5-hour and weekly windows. A window whose reset time has passed counts as
//! unused; an account never seen counts as having all of it (using it is also how its figures
//! are learned).

use crate::quota::{Snapshot, Window};

/// How much quota an account has left.
#[derive(Debug, Clone, PartialEq)]
pub struct Headroom {
    /// Percent left in the tightest window (0–100).
    pub percent: f64,
    /// Whether any figures were known (else `percent` is an assumption of 100).
    pub known: bool,
    /// The windows read, as `(name, percent left)`, primary first.
    pub windows: Vec<(String, f64)>,
}

impl Headroom {
    /// The headroom a snapshot gives at `now`.
    #[must_use]
    pub fn of(snapshot: Option<&Snapshot>, now: i64) -> Headroom {
        let windows: Vec<(String, f64)> = snapshot
            .into_iter()
            .flat_map(|s| [(&s.primary, "primary"), (&s.secondary, "secondary")])
            .filter_map(|(w, fallback)| {
                let w = w.as_ref()?;
                Some((window_name(w, fallback), left(w, now)?))
            })
            .collect();
        let percent = windows
            .iter()
            .map(|(_, left)| *left)
            .fold(100.0_f64, f64::min);
        Headroom {
            percent,
            known: !windows.is_empty(),
            windows,
        }
    }

    /// [`Headroom::of`]'s `percent` alone, without naming the windows (nothing allocated: the
    /// request path orders accounts by it).
    #[must_use]
    pub fn percent_left(snapshot: Option<&Snapshot>, now: i64) -> f64 {
        snapshot
            .into_iter()
            .flat_map(|s| [&s.primary, &s.secondary])
            .filter_map(|w| left(w.as_ref()?, now))
            .fold(100.0_f64, f64::min)
    }

    /// `5h 62% left, weekly 80% left`, or `no quota figures yet`.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.windows.is_empty() {
            return "no quota figures yet".to_owned();
        }
        self.windows
            .iter()
            .map(|(name, left)| format!("{name} {}% left", left.round()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Percent left in a window at `now`; `None` when the window gives no usage figure.
fn left(window: &Window, now: i64) -> Option<f64> {
    let used = window.used_percent?;
    if window.reset_at.is_some_and(|reset| reset <= now) {
        return Some(100.0);
    }
    Some((100.0 - used).clamp(0.0, 100.0))
}

/// `5h`, `weekly`, `daily`, else the window's length in minutes, else its position.
pub fn window_name(window: &Window, fallback: &str) -> String {
    match window.window_minutes {
        Some(300) => "5h".to_owned(),
        Some(1440) => "daily".to_owned(),
        Some(10080) => "weekly".to_owned(),
        Some(m) if m % 60 == 0 => format!("{}h", m / 60),
        Some(m) => format!("{m}min"),
        None => fallback.to_owned(),
    }
}
