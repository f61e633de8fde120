//! When a token is due for a refresh (spec §3.3), as a pure function of the clock: within five
//! minutes of the access token's `exp`; or, when there is no `exp`, once `last_refresh` is more
//! than eight days old. With neither, never proactively (a 401 still triggers one).

/// Refresh this long before `exp` (newer Codex: 5 minutes).
pub const REFRESH_WINDOW_SECS: i64 = 5 * 60;
/// Without `exp`, refresh tokens older than this (Codex's `TOKEN_REFRESH_INTERVAL`, 8 days).
pub const REFRESH_INTERVAL_SECS: i64 = 8 * 24 * 60 * 60;

/// Whether a token with this expiry and last refresh (unix seconds) should be refreshed at `now`.
#[must_use]
pub fn needs_refresh(expires_at: Option<i64>, last_refresh: Option<i64>, now: i64) -> bool {
    match (expires_at, last_refresh) {
        (Some(exp), _) => exp <= now.saturating_add(REFRESH_WINDOW_SECS),
        (None, Some(last)) => now.saturating_sub(last) > REFRESH_INTERVAL_SECS,
        (None, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_window_boundary() {
        let now = 1_000_000;
        assert!(needs_refresh(Some(now), None, now));
        assert!(needs_refresh(Some(now + 300), None, now));
        assert!(!needs_refresh(Some(now + 301), None, now));
        assert!(
            needs_refresh(Some(now - 10), Some(now), now),
            "exp wins over a fresh refresh"
        );
    }

    #[test]
    fn last_refresh_boundary_without_exp() {
        let now = 10_000_000;
        let eight_days = 8 * 24 * 3600;
        assert!(!needs_refresh(None, Some(now - eight_days), now));
        assert!(needs_refresh(None, Some(now - eight_days - 1), now));
        assert!(!needs_refresh(None, None, now));
    }
}
