//! The local server behind `bitrouter serve`: the route table, the checks every request passes
//! (Host, Origin), `/health`, `/v1/models`, the proxy endpoints (in `dispatch`) and serving
//! with `TCP_NODELAY` and a bounded graceful shutdown.

mod access_log;
pub mod accounts;
mod answer;
mod backend;
mod candidates;
mod codex;
pub mod credentials;
mod dispatch;
mod error;
mod failures;
mod intake;
pub mod models;
mod outbound;
mod pivot;
mod relay;
pub mod reload;
mod security;
mod sse;
mod state;
mod translated;
mod upstream;
pub mod usage;
pub mod usage_endpoint;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::tls::{self, LocalTls};

pub use dispatch::Inbound;
pub use error::{ApiError, Flavor};
pub use state::AppState;

/// How long open streams may run on after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The routes, for the 404 message.
const ROUTES: &str = "POST /v1/responses, POST /v1/responses/compact, POST /v1/chat/completions, POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, GET /backend-api/wham/usage, GET /backend-api/wham/accounts/check, GET /health";

/// The router over shared state.
pub fn router(state: Arc<AppState>) -> Router {
    let proxy = |inbound: Inbound| {
        move |State(state): State<Arc<AppState>>, req: Request| {
            dispatch::handle(state, inbound, req)
        }
    };
    Router::new()
        .route(
            "/v1/responses",
            post(proxy(Inbound::Responses)).get(websocket_refused),
        )
        .route(
            "/v1/chat/completions",
            post(proxy(Inbound::ChatCompletions)),
        )
        .route("/v1/responses/compact", post(proxy(Inbound::Compact)))
        .route("/v1/messages", post(proxy(Inbound::Messages)))
        .route(
            "/v1/messages/count_tokens",
            post(proxy(Inbound::CountTokens)),
        )
        .route("/v1/models", get(list_models))
        .route(
            "/backend-api/wham/accounts/check",
            get(backend::accounts_check),
        )
        .route("/backend-api/wham/usage", get(backend::usage))
        .route("/backend-api/codex/usage", get(backend::usage))
        .route("/api/codex/usage", get(backend::usage))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::from_fn(access_log::layer))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::HeaderName::from_static("x-api-key"),
            header::HeaderName::from_static(security::LOCAL_KEY_HEADER),
            header::COOKIE,
        ]))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled, then lets open streams finish for up to
/// [`SHUTDOWN_GRACE`]. With `tls`, the same port also answers HTTPS (see [`crate::tls`]).
///
/// # Errors
///
/// When accepting connections fails.
pub async fn serve(
    listener: TcpListener,
    tls: Option<LocalTls>,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    match tls {
        Some(tls) => {
            serve_on(
                tls::listener::Listener::new(listener, tls)?,
                state,
                shutdown,
            )
            .await
        }
        None => {
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("cannot set TCP_NODELAY: {e}");
                }
            });
            serve_on(listener, state, shutdown).await
        }
    }
}

async fn serve_on<L>(
    listener: L,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let app = router(state);
    let signal = shutdown.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        signal.cancelled().await;
    });
    let grace = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result,
        () = grace => {
            tracing::warn!("open streams did not finish within {} s; closing them", SHUTDOWN_GRACE.as_secs());
            Ok(())
        }
    }
}

/// Host and Origin checks for every request (DNS rebinding, cross-site pages).
async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let config = state.config();
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}"));
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|h| h.to_str().unwrap_or("\u{fffd}"));
    let checked = security::check_host(host, state.local_addr)
        .and_then(|()| security::check_origin(origin, &config.server.allowed_origins));
    let allowed_origin = origin
        .filter(|_| checked.is_ok())
        .and_then(|o| header::HeaderValue::try_from(o).ok());
    match checked {
        Ok(()) => match allowed_origin {
            // A page on an allowed origin: answer the CORS preflight, and let it read answers.
            Some(origin) if req.method() == Method::OPTIONS => preflight(&origin, req.headers()),
            Some(origin) => {
                let mut response = next.run(req).await;
                let headers = response.headers_mut();
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                headers.insert(header::VARY, header::HeaderValue::from_static("origin"));
                headers.insert(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    header::HeaderValue::from_static(EXPOSED),
                );
                response
            }
            None => next.run(req).await,
        },
        Err(err) => {
            tracing::debug!(path = %req.uri().path(), "refused: {}", err.message);
            err.into_response_as(flavor_of(req.uri().path()))
        }
    }
}

/// Response headers a page on an allowed origin may read.
const EXPOSED: &str = "x-bitrouter-provider, x-bitrouter-account, x-bitrouter-model, retry-after";

/// The answer to a CORS preflight from an allowed origin.
fn preflight(origin: &header::HeaderValue, request: &HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        header::HeaderValue::from_static("600"),
    );
    headers.insert(header::VARY, header::HeaderValue::from_static("origin"));
    response
}

fn flavor_of(path: &str) -> Flavor {
    if path.starts_with("/v1/messages") {
        Flavor::Anthropic
    } else {
        Flavor::OpenAi
    }
}

/// Newer Codex CLIs try a WebSocket first; 426 makes them fall back to HTTP at once.
async fn websocket_refused() -> Response {
    ApiError::new(
        StatusCode::UPGRADE_REQUIRED,
        "invalid_request_error",
        Some("websocket_unsupported"),
        "bitrouter speaks HTTP, not WebSocket, on /v1/responses: send POST /v1/responses",
    )
    .into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::not_found(
        "unknown_route",
        format!("no route for {method} {}; routes: {ROUTES}", uri.path()),
    )
    .into_response_as(flavor_of(uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        Some("method_not_allowed"),
        format!(
            "{method} is not allowed on {}; routes: {ROUTES}",
            uri.path()
        ),
    )
    .into_response_as(flavor_of(uri.path()))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let config = state.config();
    let inventory = state.inventory(&config);
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
    let config = state.config();
    if let Some(key) = &config.server.api_key
        && !security::has_local_key(&headers, key, true)
    {
        return ApiError::unauthorized(
            "missing or wrong bitrouter key: send it in x-bitrouter-key (or Authorization: Bearer / x-api-key)",
        )
        .into_response();
    }
    models::refresh(&state, &config, Some(&headers)).await;
    let doc = if headers.contains_key("anthropic-version") {
        models::anthropic_document(&state, &config)
    } else {
        models::document(&state, &config, query.client_version.is_some())
    };
    (StatusCode::OK, axum::Json(doc)).into_response()
}

/// Warms the model catalogs in the background (so bare names route to the right provider).
pub fn warm_catalogs(state: &Arc<AppState>) {
    let state = state.clone();
    tokio::spawn(async move {
        let config = state.config();
        models::refresh(&state, &config, None).await;
    });
}

/// The address a `serve` process prints, for humans and tests.
#[must_use]
pub fn url_of(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
