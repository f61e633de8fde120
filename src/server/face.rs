//! The HTTP face beside the proxy endpoints: `GET /health`, `GET /v1/models`, the ChatGPT
//! backend endpoints the Codex CLI asks for its usage display ([`super::backend`]), the dashboard
//! (its routes from [`crate::dashboard`], which sees the server through
//! [`super::dashboard_view`]), and the JSON errors for unknown routes and methods. Not on the
//! hot path, so it uses axum's router.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::backend;
use super::routes::{ROUTES, flavor_of, method_not_allowed};
use super::state::AppState;
use crate::catalog;
use crate::dashboard;
use crate::proxy::{self, ApiError, ErrorCode, Flavor};
use crate::upstream::headers::has_local_key;

/// The face's routes over shared state.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/health", get(health))
        .route(
            "/backend-api/wham/accounts/check",
            get(backend::accounts_check),
        )
        .route("/backend-api/wham/usage", get(backend::usage))
        .route("/backend-api/codex/usage", get(backend::usage))
        .route("/api/codex/usage", get(backend::usage))
        .merge(dashboard::router(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .with_state(state)
}

/// An error as an answer in the envelope the path's clients understand.
fn answer(err: ApiError, flavor: Flavor) -> Response {
    err.into_response_as(flavor).map(axum::body::Body::new)
}

async fn not_found(method: Method, uri: Uri) -> Response {
    answer(
        ApiError::not_found(
            ErrorCode::UnknownRoute,
            format!("no route for {method} {}; routes: {ROUTES}", uri.path()),
        ),
        flavor_of(uri.path()),
    )
}

async fn not_allowed(method: Method, uri: Uri) -> Response {
    answer(
        method_not_allowed(&method, uri.path()),
        flavor_of(uri.path()),
    )
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let config = state.proxy.config();
    let inventory = state.proxy.inventory(&config);
    let accounts: usize = inventory.labels.values().map(Vec::len).sum();
    let providers: Vec<&str> = config.providers.keys().map(|p| p.as_str()).collect();
    (
        StatusCode::OK,
        axum::Json(json!({
            "name": "bitrouter",
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "started_at": state.started_at,
            "listen": state.local_addr.to_string(),
            "providers": providers,
            "accounts": accounts,
        })),
    )
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
struct ModelsQuery {
    client_version: Option<String>,
}

async fn list_models(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ModelsQuery>,
    headers: HeaderMap,
) -> Response {
    let proxy = &state.proxy;
    let config = proxy.config();
    if let Some(key) = &config.server.api_key
        && !has_local_key(&headers, key, true)
    {
        return answer(proxy::intake::missing_key(), Flavor::OpenAi);
    }
    proxy
        .catalogs
        .refresh(&config, proxy.sources(), Some(&headers))
        .await;
    let inventory = proxy.inventory(&config);
    // Anthropic clients (Claude Code's gateway model discovery, the SDKs) get their list shape.
    let doc = if headers.contains_key("anthropic-version") {
        catalog::anthropic_document(&config, &inventory)
    } else {
        proxy
            .catalogs
            .document(&config, &inventory, query.client_version.is_some())
    };
    (StatusCode::OK, axum::Json(doc)).into_response()
}
