//! What went wrong while walking a request's plan ([`Failures`]), to answer honestly when
//! nothing succeeded: the last upstream failure, else a `429` with `retry-after` when accounts
//! were cooling down, else the first other problem.

use axum::http::StatusCode;

use super::error::ApiError;
use super::outbound::Served;

/// What went wrong on the way, to answer honestly when nothing succeeded.
#[derive(Default)]
pub(super) struct Failures {
    /// The last upstream failure (status or transport).
    pub(super) upstream: Option<ApiError>,
    /// The earliest reset of the accounts found cooling down.
    cooling: Option<i64>,
    /// The first other problem (no translation, login needed).
    other: Option<ApiError>,
    /// What was tried last.
    pub(super) served: Option<Served>,
}

impl Failures {
    pub(super) fn cool(&mut self, until: i64) {
        self.cooling = Some(self.cooling.map_or(until, |t| t.min(until)));
    }

    pub(super) fn other(&mut self, err: ApiError) {
        if self.other.is_none() {
            self.other = Some(err);
        }
    }

    pub(super) fn into_error(self, now: i64) -> ApiError {
        let mut err = if let Some(err) = self.upstream {
            err
        } else if let Some(until) = self.cooling {
            let wait = u64::try_from((until - now).max(1)).unwrap_or(1);
            let mut err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "usage_limit_reached",
                Some("usage_limit_reached"),
                format!(
                    "every account that could serve this request has hit its usage limit; the first resets in {wait} s"
                ),
            );
            if let Some(other) = &self.other {
                err.message = format!("{}; also: {}", err.message, other.message);
            }
            err.retry_after = Some(wait);
            err
        } else if let Some(err) = self.other {
            err
        } else {
            ApiError::bad_gateway("no_route", "no provider could serve this request")
        };
        if let Some(served) = &self.served {
            err.headers.extend(served.headers());
        }
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_cooling_is_a_429_with_retry_after() {
        let mut f = Failures::default();
        f.cool(200);
        f.cool(150);
        let e = f.into_error(100);
        assert_eq!(e.status, 429);
        assert_eq!(e.retry_after, Some(50));
    }

    #[test]
    fn an_upstream_failure_wins_over_cooling() {
        let mut f = Failures::default();
        f.cool(200);
        f.upstream = Some(ApiError::bad_gateway("upstream_503", "down"));
        assert_eq!(f.into_error(100).status, 502);
    }
}
