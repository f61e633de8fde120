//! The one place that decides what an attempt's result means for the request ([`classify`]):
//! answer the client, refresh the credential and send again, cool the account down and try
//! the next, wait and send the same again, fail over to the next credential or route entry,
//! give up, or answer with an error now. The walk only carries the decision out, and
//! [`Failures`] keeps what to say when nothing succeeded.
//!
//! The rules (contract, "Model ids"; spec §7.2, §8.5 item 15; issue 15):
//! - a usage limit (a 429 saying so, a 404 that mentions it, or `usage_limit_reached` in the
//!   stream before any output) cools the account down and tries the next one; it is never a
//!   reason to sign in again;
//! - a 401 for a stored account refreshes its token once and sends again; refused again, the
//!   account needs a new login and the next one is tried;
//! - a hiccup before any output (429, 408, 5xx including 529, timeouts, connection errors, a
//!   stream that broke or failed with a server error before any output) is retried as
//!   [`crate::retry::Retries`] says: the same account again after a jittered backoff (not after
//!   a 429), then the next account, then the next step of a `routes` chain, within a bounded
//!   number of attempts;
//! - errors the client caused are answered at once: a native upstream's verbatim, others in
//!   the client's error shape.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::codex::{self, UsageLimit};
use super::error::{ApiError, ErrorCode, ErrorKind};
use super::outbound::{Auth, Served, error_meta};
use super::relay::Committed;
use crate::config::ProviderConfig;
use crate::retry::{self, Next, Retries};
use crate::upstream::{self, TransportError};

/// What an attempt is, as far as the decision goes.
pub struct Attempt<'a> {
    /// The provider asked.
    pub provider: &'a ProviderConfig,
    /// Whether it is the Codex backend.
    pub is_codex: bool,
    /// Whether the request was translated to the provider's API.
    pub translated: bool,
    /// Whose credential it carried.
    pub auth: &'a Auth,
    /// Whether that credential was already refreshed after a 401.
    pub refreshed: bool,
}

/// What came back.
pub enum Observed {
    /// No answer: the connection failed or the answer did not begin in time.
    Transport(TransportError),
    /// An error status, with its (bounded) body.
    Refused {
        /// The status.
        status: StatusCode,
        /// The headers.
        headers: HeaderMap,
        /// The body, read up to a bound.
        body: Bytes,
    },
    /// A success whose stream reported a usage limit before any output.
    StreamLimit(UsageLimit),
    /// A success whose stream broke, ended, or failed with a server error before any output.
    StreamBroken(ApiError),
    /// A success to pass on.
    Success(Success),
}

/// A successful answer, ready to be passed on.
pub enum Success {
    /// A Responses stream whose output has begun, with the headers to relay.
    Stream {
        /// The stream.
        committed: Committed,
        /// The upstream's relayable headers.
        headers: HeaderMap,
    },
    /// A native upstream's answer, relayed as it is.
    Native(upstream::Response),
}

/// What to do next.
pub enum Outcome {
    /// Pass the answer on.
    Answer(Success),
    /// Refresh the account's token and send again.
    Refresh,
    /// A usage limit until this time: cool the account down and try the next credential (or,
    /// without an account, the next step).
    Cooldown(i64),
    /// This credential cannot serve (a new login is needed): try the next.
    NextCredential(ApiError),
    /// A hiccup before any output: wait, then send the same again.
    Again {
        /// How long to wait.
        wait: Duration,
        /// What went wrong, in case no later try succeeds.
        error: ApiError,
    },
    /// The provider failed on this credential: try the next credential, else the next step of
    /// the chain.
    Failover(ApiError),
    /// The provider failed and the tries are used up: answer with what went wrong.
    GiveUp(ApiError),
    /// The client's own mistake: answer with this error now.
    Fail(ApiError),
    /// A native upstream's own client error: pass it on as it came.
    Verbatim {
        /// The status.
        status: StatusCode,
        /// The relayable headers, with the content type.
        headers: HeaderMap,
        /// The body.
        body: Bytes,
    },
}

/// Decides what `observed` means for the request. `retries` is the request's retry state
/// (updated when a hiccup is retried) and `jitter`, in `[0, 1]`, spreads the backoff.
#[must_use]
pub fn classify(
    attempt: &Attempt<'_>,
    observed: Observed,
    retries: &mut Retries,
    now: i64,
    jitter: f64,
) -> Outcome {
    let provider = attempt.provider.id.as_str();
    match observed {
        Observed::Success(success) => Outcome::Answer(success),
        Observed::Transport(err) => {
            hiccup(ApiError::transport(provider, &err), None, retries, jitter)
        }
        Observed::StreamLimit(limit) => Outcome::Cooldown(limit.until(now)),
        Observed::StreamBroken(err) => hiccup(err, None, retries, jitter),
        Observed::Refused {
            status,
            headers,
            body,
        } => match refused(attempt, status, &headers, body, now) {
            Refusal::Decided(outcome) => outcome,
            Refusal::Hiccup(err) => hiccup(err, Some(status), retries, jitter),
        },
    }
}

/// A failure before any output that another try may get past: the same account again, the
/// next one, or none (the retry policy's call; never the same account after a 429).
fn hiccup(
    error: ApiError,
    status: Option<StatusCode>,
    retries: &mut Retries,
    jitter: f64,
) -> Outcome {
    tracing::debug!(
        status = status.map(|s| s.as_u16()),
        "upstream hiccup before any output: {}",
        error.message
    );
    match retries.after_failure(retry::same_account_after(status), jitter) {
        Next::Again(wait) => Outcome::Again { wait, error },
        Next::Move => Outcome::Failover(error),
        Next::GiveUp => Outcome::GiveUp(error),
    }
}

/// What an error status is: decided, or a hiccup for the retry policy.
enum Refusal {
    Decided(Outcome),
    Hiccup(ApiError),
}

/// An error status.
fn refused(
    attempt: &Attempt<'_>,
    status: StatusCode,
    headers: &HeaderMap,
    body: Bytes,
    now: i64,
) -> Refusal {
    let provider = &attempt.provider.id;
    let label = attempt.auth.label();
    if status == StatusCode::UNAUTHORIZED && label.is_some() && !attempt.refreshed {
        return Refusal::Decided(Outcome::Refresh);
    }
    if attempt.is_codex
        && let Some(limit) = codex::usage_limit_in_answer(status, &body)
    {
        return Refusal::Decided(Outcome::Cooldown(limit.until(now)));
    }
    if status == StatusCode::UNAUTHORIZED
        && let Some(label) = label
    {
        // Refreshed and still refused: this account needs a new login; others may work.
        return Refusal::Decided(Outcome::NextCredential(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Authentication,
            ErrorCode::LoginRequired,
            format!(
                "{provider} refused account `{label}` even after a refresh; run `bitrouter login {provider} --label {label}`"
            ),
        )));
    }
    let transient = retry::transient_status(status);
    let mut err = if attempt.is_codex {
        // Without a credential of ours, a 401/403 is the upstream's own answer.
        let not_ours = matches!(attempt.auth, Auth::Client | Auth::Nothing);
        codex::upstream_error(provider.as_str(), status, &body, not_ours)
    } else {
        let mut err = codex::upstream_error(provider.as_str(), status, &body, true);
        if transient {
            err.message = format!("{provider} answered {status}: {}", err.message);
        }
        err
    };
    err.headers.extend(error_meta(headers));
    if transient {
        return Refusal::Hiccup(err);
    }
    if !attempt.is_codex && !attempt.translated {
        let mut headers = (*err.headers).clone();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return Refusal::Decided(Outcome::Verbatim {
            status,
            headers,
            body,
        });
    }
    Refusal::Decided(Outcome::Fail(err))
}

/// What went wrong on the way, to answer honestly when nothing succeeded.
#[derive(Default)]
pub struct Failures {
    /// The last upstream failure (status or transport).
    pub upstream: Option<ApiError>,
    /// The earliest reset of the accounts found cooling down.
    cooling: Option<i64>,
    /// The first other problem (no translation, login needed).
    other: Option<ApiError>,
    /// What was tried last.
    pub served: Option<Served>,
}

impl Failures {
    /// An account cooling down until `until`.
    pub fn cool(&mut self, until: i64) {
        self.cooling = Some(self.cooling.map_or(until, |t| t.min(until)));
    }

    /// Another problem (kept if it is the first).
    pub fn other(&mut self, err: ApiError) {
        if self.other.is_none() {
            self.other = Some(err);
        }
    }

    /// The error to answer with: the last upstream failure, else a 429 when accounts were
    /// cooling down (with `retry-after` until the first reset), else the first other problem.
    #[must_use]
    pub fn into_error(self, now: i64) -> ApiError {
        let mut err = if let Some(err) = self.upstream {
            err
        } else if let Some(until) = self.cooling {
            let wait = u64::try_from((until - now).max(1)).unwrap_or(1);
            let mut err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::UsageLimit,
                ErrorCode::UsageLimitReached,
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
            ApiError::bad_gateway(ErrorCode::NoRoute, "no provider could serve this request")
        };
        if let Some(served) = &self.served {
            served.add_headers(&mut err.headers);
        }
        err
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::config::Config;
    use crate::env::Env;
    use crate::ids::ProviderId;
    use crate::retry::RetryPolicy;
    use crate::upstream::credentials::Access;

    fn account() -> Auth {
        Auth::Account {
            label: "work".parse().unwrap(),
            access: Access {
                token: SecretString::from("t").into(),
                account_id: None,
            },
        }
    }

    fn decide(
        config: &Config,
        id: &str,
        auth: &Auth,
        refreshed: bool,
        observed: Observed,
    ) -> Outcome {
        let mut retries = Retries::new(RetryPolicy::default());
        retries.sent();
        decide_with(config, id, auth, refreshed, observed, &mut retries)
    }

    fn decide_with(
        config: &Config,
        id: &str,
        auth: &Auth,
        refreshed: bool,
        observed: Observed,
        retries: &mut Retries,
    ) -> Outcome {
        let provider = config.provider(&id.parse::<ProviderId>().unwrap()).unwrap();
        let attempt = Attempt {
            provider,
            is_codex: provider.id.is_openai_codex(),
            translated: false,
            auth,
            refreshed,
        };
        classify(&attempt, observed, retries, 100, 0.5)
    }

    fn refused(status: u16, body: &'static str) -> Observed {
        Observed::Refused {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    fn native() -> Config {
        Config::parse(
            "providers:\n  native:\n    base_url: http://127.0.0.1:1/v1\n    api: openai_chat\n",
            &Env::default(),
        )
        .unwrap()
    }

    #[test]
    fn each_answer_gets_its_decision() {
        let config = native();
        let codex = "openai-codex";
        let limit = r#"{"error":{"type":"usage_limit_reached","resets_in_seconds":50}}"#;
        assert!(matches!(
            decide(&config, codex, &account(), false, refused(401, "")),
            Outcome::Refresh
        ));
        assert!(matches!(
            decide(&config, codex, &account(), true, refused(401, "")),
            Outcome::NextCredential(e) if e.has_code(ErrorCode::LoginRequired)
        ));
        assert!(matches!(
            decide(&config, codex, &account(), false, refused(429, limit)),
            Outcome::Cooldown(150)
        ));
        assert!(matches!(
            decide(&config, codex, &account(), false, refused(503, "busy")),
            Outcome::Again { error, .. } if error.status == 502
        ));
        assert!(matches!(
            decide(&config, codex, &account(), false, refused(400, r#"{"detail":"bad"}"#)),
            Outcome::Fail(e) if e.status == 400
        ));
        assert!(matches!(
            decide(&config, "native", &Auth::Nothing, false, refused(400, "{}")),
            Outcome::Verbatim { status, .. } if status == 400
        ));
        // A rate limit that is not a usage limit: not the same credential again.
        assert!(matches!(
            decide(&config, "native", &Auth::Nothing, false, refused(429, "{}")),
            Outcome::Failover(_)
        ));
        let timeout = TransportError {
            kind: upstream::TransportKind::Timeout,
            cause: "slow".into(),
        };
        assert!(matches!(
            decide(&config, codex, &account(), false, Observed::Transport(timeout)),
            Outcome::Again { error, .. } if error.status == 504
        ));
        let overloaded = ApiError::bad_gateway(ErrorCode::UpstreamFailed, "overloaded");
        assert!(matches!(
            decide(
                &config,
                codex,
                &account(),
                false,
                Observed::StreamBroken(overloaded)
            ),
            Outcome::Again { .. }
        ));
    }

    #[test]
    fn hiccups_retry_then_move_on_then_give_up() {
        let config = native();
        let policy = RetryPolicy {
            tries_per_account: 2,
            max_attempts: 3,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        let mut retries = Retries::new(policy);
        let next = |retries: &mut Retries| {
            retries.sent();
            decide_with(
                &config,
                "openai-codex",
                &account(),
                false,
                refused(502, ""),
                retries,
            )
        };
        // Equal jitter: half the step fixed, half scaled by 0.5.
        assert!(matches!(
            next(&mut retries),
            Outcome::Again { wait, .. } if wait == Duration::from_millis(75)
        ));
        assert!(matches!(next(&mut retries), Outcome::Failover(_)));
        retries.new_account();
        assert!(matches!(next(&mut retries), Outcome::GiveUp(e) if e.status == 502));
    }

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
        f.upstream = Some(ApiError::bad_gateway(ErrorCode::UpstreamFailed, "down"));
        assert_eq!(f.into_error(100).status, 502);
    }
}
