//! The device-code login (spec §2), for machines without a browser: ask for a user code, show
//! the verification page and the code, poll every `interval` seconds (403/404 mean "not yet")
//! for at most 15 minutes, then exchange the server-made authorization code and verifier with
//! the redirect URI `{issuer}/deviceauth/callback`.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::oauth::{CLIENT_ID, OAuthClient, OAuthError, TokenSet, send};
use super::{LoginError, human_duration};

/// How long a device code stays valid, and so how long bitrouter polls by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Poll interval when the server names none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// What to show the user.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    /// The page where the user enters the code (`{issuer}/codex/device`).
    pub verification_url: String,
    /// The code to enter.
    pub user_code: String,
    device_auth_id: String,
    interval: Duration,
}

#[derive(Deserialize)]
struct RawUserCode {
    device_auth_id: String,
    #[serde(alias = "usercode")]
    user_code: String,
    #[serde(default)]
    interval: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawApproval {
    authorization_code: String,
    code_verifier: String,
}

/// Step 1: request a user code.
pub async fn request_code(
    client: &OAuthClient,
    http: &reqwest::Client,
) -> Result<DeviceCode, LoginError> {
    let url = client.endpoint("api/accounts/deviceauth/usercode");
    let request = http
        .post(&url)
        .timeout(Duration::from_secs(30))
        .json(&serde_json::json!({ "client_id": CLIENT_ID }));
    let body = match send(&url, request).await {
        Ok(body) => body,
        Err(OAuthError::Status { status: 404, .. }) => return Err(LoginError::DeviceNotEnabled),
        Err(e) => return Err(LoginError::Device(e)),
    };
    let raw: RawUserCode = serde_json::from_slice(&body).map_err(|_| {
        LoginError::Device(OAuthError::Invalid {
            url: url.clone(),
            message: "the user-code response is not the expected JSON".into(),
        })
    })?;
    // `interval` is a string of seconds ("5"); accept a number too.
    let interval = raw
        .interval
        .and_then(|v| match v {
            serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
            serde_json::Value::Number(n) => n.as_f64(),
            _ => None,
        })
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(DEFAULT_INTERVAL);
    Ok(DeviceCode {
        verification_url: client.endpoint("codex/device"),
        user_code: raw.user_code,
        device_auth_id: raw.device_auth_id,
        interval,
    })
}

/// Steps 3 and 4: poll until approved (or `timeout`), then exchange for tokens.
pub async fn complete(
    client: &OAuthClient,
    http: &reqwest::Client,
    code: &DeviceCode,
    timeout: Duration,
) -> Result<TokenSet, LoginError> {
    let url = client.endpoint("api/accounts/deviceauth/token");
    let body = serde_json::json!({
        "device_auth_id": code.device_auth_id,
        "user_code": code.user_code,
    });
    let started = tokio::time::Instant::now();
    // Never spin: a zero interval still waits a little between polls.
    let interval = code.interval.max(Duration::from_millis(100));
    let approval = loop {
        let request = http.post(&url).timeout(Duration::from_secs(30)).json(&body);
        match send(&url, request).await {
            Ok(body) => {
                break serde_json::from_slice::<RawApproval>(&body).map_err(|_| {
                    LoginError::Device(OAuthError::Invalid {
                        url: url.clone(),
                        message: "the approval response is not the expected JSON".into(),
                    })
                })?;
            }
            Err(OAuthError::Status {
                status: 403 | 404, ..
            }) => {}
            Err(e) => return Err(LoginError::Device(e)),
        }
        if started.elapsed() + interval > timeout {
            return Err(LoginError::Timeout {
                what: "device code approval",
                after: timeout,
            });
        }
        tokio::time::sleep(interval).await;
    };
    let redirect_uri = client.endpoint("deviceauth/callback");
    client
        .exchange_code(
            &approval.authorization_code,
            &redirect_uri,
            &SecretString::from(approval.code_verifier),
        )
        .await
        .map_err(LoginError::Exchange)
}

/// The instructions shown on stderr.
#[must_use]
pub fn instructions(code: &DeviceCode, timeout: Duration) -> String {
    format!(
        "To sign in, open {} in a browser on any device and enter this code:\n\n    {}\n\n\
         The code expires in {}. Device codes are a common phishing target: never share this code.",
        code.verification_url,
        code.user_code,
        human_duration(timeout)
    )
}
