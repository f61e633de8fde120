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
//! Not on the hot path: these sit on the face's axum router.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

use super::state::AppState;
use crate::clock::unix_now;
use crate::config::{AuthMode, ProviderConfig};
use crate::ids::{Label, ProviderId};
use crate::proxy::{self, Flavor, Proxy, plan};
use crate::quota::endpoint::UsageEndpoint;
use crate::quota::{QuotaSource, Snapshot, report};
use crate::routing::account_order;
use crate::upstream::credentials::Access;
use crate::upstream::headers::{ACCOUNT_HEADER, has_client_credentials, has_local_key};

/// `GET /backend-api/wham/accounts/check`.
pub async fn accounts_check(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(refused) = check_key(&state.proxy, &headers) {
        return refused;
    }
    let account = headers
        .get("chatgpt-account-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("bitrouter");
    axum::Json(report::accounts_check_body(account)).into_response()
}

/// `GET /backend-api/wham/usage` and its other spellings.
pub async fn usage(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let proxy = &state.proxy;
    if let Some(refused) = check_key(proxy, &headers) {
        return refused;
    }
    let config = proxy.config();
    let Some(provider) = config.provider(&ProviderId::openai_codex()) else {
        return axum::Json(report::usage_body(None, unix_now())).into_response();
    };
    let snapshot = if provider.auth_mode == AuthMode::Passthrough
        && has_client_credentials(&headers, config.server.api_key.as_ref())
    {
        clients_own(provider, &headers).await
    } else {
        serving_accounts(proxy, provider, &headers).await
    };
    axum::Json(report::usage_body(snapshot.as_ref(), unix_now())).into_response()
}

/// The 401 when a local key is set and the request lacks it (as for `/v1/models`).
fn check_key(proxy: &Proxy, headers: &HeaderMap) -> Option<Response> {
    match &proxy.config().server.api_key {
        Some(key) if !has_local_key(headers, key, true) => Some(
            proxy::intake::missing_key()
                .into_response_as(Flavor::OpenAi)
                .map(axum::body::Body::new),
        ),
        _ => None,
    }
}

/// The quota of the client's own login, asked from the backend with its credential.
async fn clients_own(provider: &ProviderConfig, headers: &HeaderMap) -> Option<Snapshot> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))?;
    let access = Access {
        token: Arc::new(SecretString::from(token.to_owned())),
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
    proxy: &Proxy,
    provider: &ProviderConfig,
    headers: &HeaderMap,
) -> Option<Snapshot> {
    let stored = proxy.credentials.labels(&provider.id).ok()?;
    let pinned = headers
        .get(ACCOUNT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Label>().ok())
        .filter(|l| stored.contains(l));
    let now = unix_now();
    let label = match pinned {
        Some(label) => label,
        None => {
            let order = account_order(provider, &stored);
            let labels: Vec<&Label> = order.iter().collect();
            // A look, not a request: the round-robin position stays where it is.
            plan::pick(proxy, provider, &labels, None, 0, now)
                .order
                .into_iter()
                .next()?
        }
    };
    if let Some(known) = proxy.book.snapshot(&provider.id, &label) {
        return Some(known);
    }
    let access = proxy.credentials.access(&provider.id, &label).await.ok()?;
    let asked = ask(provider, &access).await?;
    proxy.book.record_snapshot(
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
