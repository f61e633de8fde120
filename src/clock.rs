//! The wall clock as unix seconds (and milliseconds): the one place that reads it for expiries,
//! cooldowns and timestamps (pure logic elsewhere takes `now` as an argument).

/// Seconds since the unix epoch (0 if the clock is before it).
#[must_use]
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Milliseconds since the unix epoch (0 if the clock is before it).
#[must_use]
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
