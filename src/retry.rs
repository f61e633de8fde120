//! Retrying an upstream hiccup before the answer has begun: what counts as one
//! ([`transient_status`], [`transient_code`]) and what to do after it ([`Retries`]): send the
//! same request to the same account again after a jittered exponential backoff, move to the
//! next account when it fails again, and give up after a bounded number of attempts — the
//! client then sees the last failure. Nothing here sleeps or draws random numbers: the walk
//! passes the jitter in and does the waiting.
//!
//! Usage limits are not hiccups (they cool the account down), nor are errors the client caused
//! (they are answered at once), nor a failure after output has begun (the client already has
//! part of the answer; it gets the error in its API's form).

use std::time::Duration;

use http::StatusCode;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries on one account before moving to the next (1 = never the same twice).
    pub tries_per_account: u32,
    /// Tries in all, over every account and route entry.
    pub max_attempts: u32,
    /// The first backoff; each further one doubles.
    pub base: Duration,
    /// The longest backoff.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// Two tries per account, six in all, 250 ms doubling up to 2 s (the Codex CLI itself
    /// retries 5xx with a 200 ms exponential backoff).
    fn default() -> Self {
        RetryPolicy {
            tries_per_account: 2,
            max_attempts: 6,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first), "equal jitter": half the
    /// exponential step fixed, half scaled by `jitter` in `[0, 1]`.
    #[must_use]
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(1_u32 << retry.min(16))
            .min(self.cap);
        let half = step / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// What to do after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait, then send to the same account again.
    Again(Duration),
    /// Move to the next account (or route entry).
    Move,
    /// No attempts left: answer with the failure.
    GiveUp,
}

/// One request's retry state.
#[derive(Debug, Clone)]
pub struct Retries {
    policy: RetryPolicy,
    attempts: u32,
    on_this_account: u32,
    retries: u32,
}

impl Retries {
    /// A fresh state.
    #[must_use]
    pub fn new(policy: RetryPolicy) -> Self {
        Retries {
            policy,
            attempts: 0,
            on_this_account: 0,
            retries: 0,
        }
    }

    /// An attempt is about to be sent to a different account than the last one.
    pub fn new_account(&mut self) {
        self.on_this_account = 0;
    }

    /// Whether another attempt may be sent at all.
    #[must_use]
    pub fn may_send(&self) -> bool {
        self.attempts < self.policy.max_attempts
    }

    /// An attempt was sent.
    pub fn sent(&mut self) {
        self.attempts += 1;
        self.on_this_account += 1;
    }

    /// The attempt just sent failed transiently; `same_account_allowed` is false when the
    /// failure says this account should not be asked again now (a rate limit).
    pub fn after_failure(&mut self, same_account_allowed: bool, jitter: f64) -> Next {
        if !self.may_send() {
            return Next::GiveUp;
        }
        if same_account_allowed && self.on_this_account < self.policy.tries_per_account {
            let wait = self.policy.backoff(self.retries, jitter);
            self.retries += 1;
            return Next::Again(wait);
        }
        Next::Move
    }

    /// Attempts sent so far.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// Whether an upstream status before any output is worth another try: 5xx (including 529,
/// "overloaded") and 408. A 429 that is not a usage limit is too, but on another account (see
/// [`same_account_after`]).
#[must_use]
pub fn transient_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Whether the same account may be asked again after this transient status (not after a rate
/// limit: it says "not now").
#[must_use]
pub fn same_account_after(status: Option<StatusCode>) -> bool {
    status != Some(StatusCode::TOO_MANY_REQUESTS)
}

/// Whether an error code or type in a failed stream event (`response.failed`, `error`) names a
/// server-side hiccup rather than a problem with the request.
#[must_use]
pub fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "server_error"
            | "internal_error"
            | "internal_server_error"
            | "server_is_overloaded"
            | "overloaded"
            | "overloaded_error"
            | "slow_down"
            | "service_unavailable"
            | "api_error"
            | "timeout"
            | "rate_limit_exceeded"
    )
}

/// A jitter in `[0, 1)` from the standard library's per-process random hash keys (good enough
/// to spread retries; nothing depends on its quality).
#[must_use]
pub fn jitter() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    #[expect(
        clippy::cast_precision_loss,
        reason = "53 bits of a random u64 make a uniform f64 in [0, 1)"
    )]
    let unit = (bits >> 11) as f64 / (1_u64 << 53) as f64;
    unit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            tries_per_account: 2,
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(350),
        }
    }

    #[test]
    fn backoff_doubles_is_jittered_and_capped() {
        let p = policy();
        assert_eq!(p.backoff(0, 0.0), Duration::from_millis(50));
        assert_eq!(p.backoff(0, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(1, 0.5), Duration::from_millis(150));
        assert_eq!(p.backoff(2, 1.0), Duration::from_millis(350));
        assert_eq!(p.backoff(40, 1.0), Duration::from_millis(350));
        assert_eq!(p.backoff(0, 7.0), Duration::from_millis(100));
    }

    #[test]
    fn same_account_once_more_then_the_next_then_give_up() {
        let mut r = Retries::new(policy());
        r.sent();
        assert!(matches!(r.after_failure(true, 0.0), Next::Again(_)));
        r.sent();
        assert_eq!(r.after_failure(true, 0.0), Next::Move);
        r.new_account();
        r.sent();
        // A rate limit moves on at once.
        assert_eq!(r.after_failure(false, 0.0), Next::Move);
        r.new_account();
        r.sent();
        assert!(matches!(r.after_failure(true, 0.0), Next::Again(_)));
        r.sent();
        assert_eq!(r.attempts(), 5);
        assert!(!r.may_send());
        assert_eq!(r.after_failure(true, 0.0), Next::GiveUp);
    }

    #[test]
    fn what_counts_as_transient() {
        for s in [500, 502, 503, 504, 529, 408, 429] {
            assert!(transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        assert!(!same_account_after(Some(StatusCode::TOO_MANY_REQUESTS)));
        assert!(same_account_after(Some(StatusCode::BAD_GATEWAY)));
        assert!(same_account_after(None));
        assert!(transient_code("server_is_overloaded"));
        assert!(!transient_code("context_length_exceeded"));
        assert!(!transient_code("invalid_prompt"));
    }

    #[test]
    fn jitter_is_a_unit_fraction() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
