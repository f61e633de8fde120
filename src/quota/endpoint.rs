//! The Codex backend's usage endpoint (spec §6.5), asked by `status --refresh`: where it is
//! (derived from the provider's `base_url`), one authenticated `GET`, and its body read into the
//! same [`Snapshot`] the `x-codex-*` headers give. The body is read liberally: unknown keys are
//! ignored and missing or mistyped values are simply absent. The bearer token is sent as a
//! sensitive header and never appears in an error.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, header};
use serde_json::Value;
use url::Url;

use super::headers::{Snapshot, Window};
use crate::config::{Authorization, ProviderConfig};
use crate::upstream::attach::attach_access;
use crate::upstream::credentials::Access;
use crate::upstream::headers::ORIGINATOR;
use crate::upstream::{build_client, root_cause, user_agent};

/// The longest a usage request may take in all (a status command should not hang on it).
const MAX_WAIT: Duration = Duration::from_secs(20);

/// Why the usage endpoint gave no quota.
#[derive(Debug, thiserror::Error)]
pub enum UsageEndpointError {
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The request did not complete (connection, timeout).
    #[error("the request to {url} failed: {cause}")]
    Transport {
        /// The usage URL.
        url: Url,
        /// The innermost cause.
        cause: String,
    },
    /// The endpoint answered with an error status.
    #[error("{url} answered {status}")]
    Status {
        /// The usage URL.
        url: Url,
        /// The HTTP status.
        status: u16,
    },
    /// The answer was not JSON, or held no quota figures.
    #[error("{url} answered without quota figures")]
    NoQuota {
        /// The usage URL.
        url: Url,
    },
}

/// The usage URL for a Codex `base_url`: `…/backend-api/wham/usage` when the base has a
/// `backend-api` segment (`https://chatgpt.com/backend-api/codex` gives
/// `https://chatgpt.com/backend-api/wham/usage`), else `…/api/codex/usage` under the base with a
/// trailing `/codex` (and then `/api`) removed, as the Codex CLI's backend client does.
#[must_use]
pub fn usage_url(base: &Url) -> Url {
    let segments: Vec<&str> = base.path().split('/').filter(|s| !s.is_empty()).collect();
    let mut path: Vec<&str> = if let Some(at) = segments.iter().position(|s| *s == "backend-api") {
        let mut p = segments[..=at].to_vec();
        p.extend(["wham", "usage"]);
        p
    } else {
        let mut p = segments;
        if p.last() == Some(&"codex") {
            p.pop();
        }
        if p.last() == Some(&"api") {
            p.pop();
        }
        p.extend(["api", "codex", "usage"]);
        p
    };
    path.insert(0, "");
    let mut url = base.clone();
    url.set_path(&path.join("/"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Reads a usage body (`plan_type`, `rate_limit.primary_window` / `secondary_window`,
/// `credits`); `None` when it holds nothing worth keeping. `now` turns `reset_after_seconds`
/// into a time when `reset_at` is missing.
#[must_use]
pub fn snapshot_from_body(body: &Value, now: i64) -> Option<Snapshot> {
    let limits = body.get("rate_limit");
    let window = |name: &str| {
        let w = limits?.get(name)?;
        let window = Window {
            used_percent: number(w.get("used_percent")),
            window_minutes: integer(w.get("limit_window_seconds"))
                .filter(|s| *s > 0)
                .map(|s| (s + 30) / 60)
                .filter(|m| *m > 0),
            reset_at: integer(w.get("reset_at")).filter(|t| *t > 0).or_else(|| {
                integer(w.get("reset_after_seconds"))
                    .filter(|s| *s >= 0)
                    .map(|s| now.saturating_add(s))
            }),
        };
        (window != Window::default()).then_some(window)
    };
    let credits = body.get("credits");
    let snapshot = Snapshot {
        primary: window("primary_window"),
        secondary: window("secondary_window"),
        plan_type: body
            .get("plan_type")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
        has_credits: boolean(credits.and_then(|c| c.get("has_credits"))),
        unlimited_credits: boolean(credits.and_then(|c| c.get("unlimited"))),
        active_limit: None,
    };
    (snapshot != Snapshot::default()).then_some(snapshot)
}

/// A finite number, also when written as a string.
fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// A whole number (seconds), also when written as a float or a string.
fn integer(v: Option<&Value>) -> Option<i64> {
    if let Some(i) = v.and_then(Value::as_i64) {
        return Some(i);
    }
    number(v).filter(|f| f.abs() < 9.0e15).map(|f| {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "bounded above; the values are whole seconds"
        )]
        let i = f.round() as i64;
        i
    })
}

/// `true`/`false`, also as a string or 0/1.
fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().and_then(|i| match i {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The usage endpoint of one Codex provider, with its client and fixed headers.
#[derive(Debug)]
pub struct UsageEndpoint {
    url: Url,
    http: reqwest::Client,
    headers: HeaderMap,
}

impl UsageEndpoint {
    /// The endpoint for `provider` (its `base_url`, timeouts and `headers:`).
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new(provider: &ProviderConfig) -> Result<Self, UsageEndpointError> {
        let http = build_client(provider.timeouts)
            .map_err(|e| UsageEndpointError::Client(root_cause(&e)))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(ORIGINATOR, HeaderValue::from_static("bitrouter"));
        if let Ok(ua) = HeaderValue::try_from(user_agent()) {
            headers.insert(header::USER_AGENT, ua);
        }
        for (name, value) in &provider.headers {
            headers.insert(name.clone(), value.clone());
        }
        Ok(UsageEndpoint {
            url: usage_url(&provider.base_url),
            http,
            headers,
        })
    }

    /// The URL it asks.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Asks for the quota of the account `access` belongs to.
    ///
    /// # Errors
    ///
    /// On a transport failure, an error status, or an answer without quota figures.
    pub async fn fetch(&self, access: &Access, now: i64) -> Result<Snapshot, UsageEndpointError> {
        let mut headers = self.headers.clone();
        attach_access(&mut headers, Authorization::Bearer, access);
        let transport = |e: &reqwest::Error| UsageEndpointError::Transport {
            url: self.url.clone(),
            cause: root_cause(e),
        };
        let answer = self
            .http
            .get(self.url.clone())
            .headers(headers)
            .timeout(MAX_WAIT)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(UsageEndpointError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
            });
        }
        let body = answer.bytes().await.map_err(|e| transport(&e))?;
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| snapshot_from_body(&v, now))
            .ok_or_else(|| UsageEndpointError::NoQuota {
                url: self.url.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn url_for(base: &str) -> String {
        usage_url(&Url::parse(base).unwrap()).to_string()
    }

    #[test]
    fn usage_url_follows_the_base() {
        assert_eq!(
            url_for("https://chatgpt.com/backend-api/codex"),
            "https://chatgpt.com/backend-api/wham/usage"
        );
        assert_eq!(
            url_for("https://chatgpt.com/backend-api/codex/"),
            "https://chatgpt.com/backend-api/wham/usage"
        );
        assert_eq!(
            url_for("http://127.0.0.1:9/prefix/backend-api/codex?x=1"),
            "http://127.0.0.1:9/prefix/backend-api/wham/usage"
        );
        assert_eq!(
            url_for("https://chatgpt.com/backend-api"),
            "https://chatgpt.com/backend-api/wham/usage"
        );
        assert_eq!(
            url_for("http://localhost:8080/api/codex"),
            "http://localhost:8080/api/codex/usage"
        );
        assert_eq!(
            url_for("http://localhost:8080/codex"),
            "http://localhost:8080/api/codex/usage"
        );
        assert_eq!(
            url_for("http://localhost:8080"),
            "http://localhost:8080/api/codex/usage"
        );
        assert_eq!(
            url_for("http://localhost:8080/backend-apix/codex"),
            "http://localhost:8080/backend-apix/api/codex/usage"
        );
    }

    #[test]
    fn full_body_gives_both_windows_plan_and_credits() {
        let body = json!({
            "plan_type": "plus",
            "rate_limit": {
                "allowed": true,
                "limit_reached": false,
                "primary_window": {"used_percent": 38, "limit_window_seconds": 18000,
                    "reset_after_seconds": 7200, "reset_at": 1_790_007_200},
                "secondary_window": {"used_percent": 20.5, "limit_window_seconds": 604_800,
                    "reset_after_seconds": 100, "reset_at": null}
            },
            "credits": {"has_credits": false, "unlimited": false, "balance": "0"},
            "rate_limit_reached_type": null,
            "promo": null,
            "something_new": {"nested": [1, 2]}
        });
        let s = snapshot_from_body(&body, 1000).unwrap();
        assert_eq!(
            s,
            Snapshot {
                primary: Some(Window {
                    used_percent: Some(38.0),
                    window_minutes: Some(300),
                    reset_at: Some(1_790_007_200),
                }),
                secondary: Some(Window {
                    used_percent: Some(20.5),
                    window_minutes: Some(10_080),
                    reset_at: Some(1100),
                }),
                plan_type: Some("plus".into()),
                has_credits: Some(false),
                unlimited_credits: Some(false),
                active_limit: None,
            }
        );
    }

    #[test]
    fn partial_body_keeps_what_is_there() {
        let body = json!({
            "rate_limit": {"primary_window": {"used_percent": "99.5"}, "secondary_window": null}
        });
        let s = snapshot_from_body(&body, 0).unwrap();
        assert_eq!(
            s.primary,
            Some(Window {
                used_percent: Some(99.5),
                window_minutes: None,
                reset_at: None,
            })
        );
        assert_eq!(s.secondary, None);
        assert_eq!(s.plan_type, None);

        let plan_only = snapshot_from_body(&json!({"plan_type": "pro"}), 0).unwrap();
        assert_eq!(plan_only.plan_type.as_deref(), Some("pro"));
        assert_eq!(plan_only.primary, None);
    }

    #[test]
    fn garbage_gives_nothing() {
        for body in [
            json!(null),
            json!("nope"),
            json!([1, 2, 3]),
            json!({}),
            json!({"rate_limit": "full"}),
            json!({"rate_limit": {"primary_window": {"used_percent": "lots", "limit_window_seconds": -5}}}),
            json!({"plan_type": "", "credits": {"has_credits": "maybe"}}),
        ] {
            assert_eq!(snapshot_from_body(&body, 0), None, "{body}");
        }
    }
}
