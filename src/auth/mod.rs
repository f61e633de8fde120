//! Signing in and staying signed in: PKCE and the OAuth client of the Codex CLI, the loopback
//! callback and device-code login flows, refresh timing, and [`Accounts`] — the service the
//! server calls for a usable token (refreshing single-flight across tasks and processes).

mod accounts;
pub mod browser;
pub mod callback;
pub mod codex;
pub mod device;
pub mod jwt;
pub mod oauth;
pub mod pkce;
pub mod refresh;

use std::time::Duration;

pub use accounts::{Access, AccountInfo, Accounts};

use crate::ids::ProviderId;
use crate::store::{CredentialKey, StoreError};

/// Why [`Accounts`] could not hand out a token. The server maps these to HTTP statuses:
/// `NotLoggedIn` and `NeedsLogin` are the user's to fix (sign in), `RefreshFailed` is transient
/// (upstream or network), `Store` is local.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credential is stored under this key.
    #[error("not logged in to {} with label {}", .key.provider, .key.label)]
    NotLoggedIn {
        /// The missing credential.
        key: CredentialKey,
    },
    /// The credential is permanently unusable (refresh token expired, reused or revoked).
    #[error("{} (label {}) needs a new sign-in: {reason}", .key.provider, .key.label)]
    NeedsLogin {
        /// The credential.
        key: CredentialKey,
        /// Why, in the words the Codex CLI uses.
        reason: String,
    },
    /// A refresh failed for a reason that may pass (network, 5xx, throttling).
    #[error("cannot refresh the token of {} (label {})", .key.provider, .key.label)]
    RefreshFailed {
        /// The credential.
        key: CredentialKey,
        /// The cause.
        #[source]
        source: Box<oauth::OAuthError>,
    },
    /// The linked Codex CLI session could not be read or written.
    #[error("cannot use the Codex CLI session linked to {} (label {})", .key.provider, .key.label)]
    Codex {
        /// The linked credential.
        key: CredentialKey,
        /// The cause.
        #[source]
        source: codex::CodexError,
    },
    /// The HTTP client could not be built.
    #[error("cannot create the HTTP client")]
    Http(#[source] reqwest::Error),
    /// The provider is not configured, or does not sign in with OAuth.
    #[error("provider `{0}` is not configured for OAuth sign-in")]
    NoOAuth(ProviderId),
    /// The credential store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking store task could not run.
    #[error("internal task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl AuthError {
    /// Whether the user must sign in (again) before this credential can be used.
    #[must_use]
    pub fn needs_login(&self) -> bool {
        matches!(
            self,
            AuthError::NotLoggedIn { .. } | AuthError::NeedsLogin { .. }
        )
    }
}

/// Why an interactive login did not complete.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The loopback port (and its fallback) are taken.
    #[error("cannot listen for the sign-in callback: port {ports} on 127.0.0.1 is in use")]
    PortInUse {
        /// The port(s) tried, e.g. `1455 (and 1457)`.
        ports: String,
    },
    /// The loopback listener could not be started.
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        /// The port.
        port: u16,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Nobody completed the sign-in in time.
    #[error("timed out after {} waiting for the {what}", human_duration(*.after))]
    Timeout {
        /// What was awaited (`browser sign-in`, `device code approval`).
        what: &'static str,
        /// The limit.
        after: Duration,
    },
    /// `/cancel` was requested.
    #[error("login cancelled")]
    Cancelled,
    /// The issuer redirected back with an error.
    #[error("sign-in was refused: {0}")]
    Denied(String),
    /// The callback carried no code.
    #[error("the sign-in callback carried no authorization code")]
    MissingCode,
    /// Exchanging the code for tokens failed.
    #[error("token exchange failed")]
    Exchange(#[source] oauth::OAuthError),
    /// Device-code login is not enabled for this account or server.
    #[error(
        "device code login is not enabled for this Codex server; use the browser login or verify the server URL"
    )]
    DeviceNotEnabled,
    /// The device-code endpoints failed.
    #[error("device code login failed")]
    Device(#[source] oauth::OAuthError),
    /// Saving the new credential failed.
    #[error("sign-in completed but the credentials could not be saved")]
    Save(#[source] StoreError),
}

/// `5 minutes`, `90 seconds`, `1.5 seconds`.
#[must_use]
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 && secs < 60 {
        format!("{:.1} seconds", d.as_secs_f64())
    } else if secs >= 60 && secs.is_multiple_of(60) {
        let m = secs / 60;
        format!("{m} minute{}", if m == 1 { "" } else { "s" })
    } else {
        format!("{secs} second{}", if secs == 1 { "" } else { "s" })
    }
}

/// The HTTP client for the auth endpoints: rustls with the ring provider, no redirects (OAuth
/// token endpoints must not be redirected), connect timeout, bitrouter's User-Agent.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    // Installing twice is refused harmlessly; another part of the program may have done it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(format!(
            "bitrouter/{} ({}; {})",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH
        ))
        .build()
}

/// Now, in unix seconds.
pub use crate::clock::unix_now;
