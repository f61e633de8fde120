//! The few ChatGPT backend endpoints bitrouter answers itself, for the Codex CLI in ChatGPT
//! login mode with its `chatgpt_base_url` pointed here (over HTTPS, see [`crate::tls`]):
//!
//! - `GET /backend-api/wham/accounts/check`: its workspace routing discovery, asked before
//!   anything else — one workspace, the client's own account id;
//! - `GET /backend-api/wham/usage` (also `/backend-api/codex/usage` and `/api/codex/usage`):
//!   the quota of the account a new conversation would be served by now, which the CLI shows
//!   in `/status` and its status line.
//!
//! In `passthrough` mode with the client's own login, the usage is that login's, asked from the
//! backend with the client's credential; otherwise it is the serving account's live quota (from
//! the answers' `x-codex-*` headers, else asked from the backend's usage endpoint once). Other
//! `/backend-api/*` paths (plugins, analytics, settings) get the usual 404, which the CLI
//! tolerates; no request is forwarded to the real backend from here except the usage question.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

use super::error::ApiError;
use super::security;
use super::state::AppState;
use super::usage::QuotaSource;
use super::usage_endpoint::UsageEndpoint;
use crate::clock::unix_now;
use crate::config::{AuthMode, ProviderConfig};
use crate::ids::{Label, ProviderId};
use crate::picker;
use crate::quota::{Snapshot, report};
use crate::routing::account_order;
use crate::server::credentials::Access;

/// `GET /backend-api/wham/accounts/check`.
pub(super) async fn accounts_check(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = check_key(&state, &headers) {
        return e.into_response();
    }
    let account = headers
        .get("chatgpt-account-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("bitrouter");
    axum::Json(report::accounts_check_body(account)).into_response()
}

/// `GET /backend-api/wham/usage`.
pub(super) async fn usage(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = check_key(&state, &headers) {
        return e.into_response();
    }
    let config = state.config();
    let Some(provider) = config.provider(&ProviderId::openai_codex()) else {
        return axum::Json(report::usage_body(None, unix_now())).into_response();
    };
    let snapshot = if provider.auth_mode == AuthMode::Passthrough
        && security::has_client_credentials(&headers, config.server.api_key.as_ref())
    {
        clients_own(provider, &headers).await
    } else {
        serving_accounts(&state, provider, &headers).await
    };
    axum::Json(report::usage_body(snapshot.as_ref(), unix_now())).into_response()
}

/// The local key, when one is set (as for `/v1/models`).
fn check_key(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match &state.config().server.api_key {
        Some(key) if !security::has_local_key(headers, key, true) => Err(ApiError::unauthorized(
            "missing or wrong bitrouter key: send it in x-bitrouter-key (or Authorization: Bearer / x-api-key)",
        )),
        _ => Ok(()),
    }
}

/// The quota of the client's own login, asked from the backend with its credential.
async fn clients_own(provider: &ProviderConfig, headers: &HeaderMap) -> Option<Snapshot> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    let access = Access {
        token: SecretString::from(token.to_owned()),
        account_id: headers
            .get("chatgpt-account-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    ask(provider, &access).await
}

/// The quota of the account a new conversation would be served by now (the one named by
/// `x-bitrouter-account`, if any): known figures, else asked from the backend once.
async fn serving_accounts(
    state: &AppState,
    provider: &ProviderConfig,
    headers: &HeaderMap,
) -> Option<Snapshot> {
    let stored = state.credentials.labels(&provider.id).ok()?;
    let pinned = headers
        .get(security::ACCOUNT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Label>().ok())
        .filter(|l| stored.contains(l));
    let now = unix_now();
    let label = match pinned {
        Some(label) => label,
        None => {
            let order = account_order(provider, &stored);
            let snapshots: Vec<_> = order
                .iter()
                .map(|l| state.book.snapshot(&provider.id, l))
                .collect();
            let accounts: Vec<picker::Account<'_>> = order
                .iter()
                .zip(&snapshots)
                .map(|(label, snapshot)| picker::Account {
                    label,
                    snapshot: snapshot.as_ref(),
                    cooling_until: state.book.cooling_until(&provider.id, label, now),
                })
                .collect();
            picker::order(provider.strategy, &accounts, None, 0, now)
                .order
                .into_iter()
                .next()?
        }
    };
    if let Some(known) = state.book.snapshot(&provider.id, &label) {
        return Some(known);
    }
    let access = state.credentials.access(&provider.id, &label).await.ok()?;
    let asked = ask(provider, &access).await?;
    state.book.record_snapshot(
        &provider.id,
        &label,
        asked.clone(),
        QuotaSource::UsageEndpoint,
        now,
    );
    Some(asked)
}

async fn ask(provider: &ProviderConfig, access: &Access) -> Option<Snapshot> {
    let endpoint = UsageEndpoint::new(provider)
        .map_err(|e| tracing::debug!("cannot ask for quota: {e}"))
        .ok()?;
    endpoint
        .fetch(access, unix_now())
        .await
        .map_err(|e| tracing::debug!("cannot ask for quota: {e}"))
        .ok()
}
