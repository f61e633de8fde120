//! The `Date` header of the answers written by [`super::h1`], made at most once a second on
//! each thread.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// The second it was made for, and the header's value then.
    static NOW: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

/// `f` on the current `Date` value (IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn with<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    NOW.with_borrow_mut(|(at, value)| {
        if *at != secs || value.is_empty() {
            *at = secs;
            *value = format_date(secs);
        }
        f(value.as_bytes())
    })
}

fn format_date(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdate() {
        assert_eq!(format_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        with(|now| assert_eq!(now.len(), 29));
    }
}
