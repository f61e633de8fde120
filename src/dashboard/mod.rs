//! The dashboard `serve` shows at `GET /`: one page whose files are compiled into the binary
//! ([`assets`]: HTML, CSS, JS and an icon; no CDN, works offline), and the read-only JSON it
//! polls (`GET /api/dashboard`, built by [`api`] from the request history and the server's live
//! view of its accounts). Charts are drawn by the page's own small SVG code.
//!
//! Protection: the server's Host/Origin checks run before these routes (they sit behind the
//! same middleware as the API); the JSON also requires `server.api_key` when one is set (the
//! page asks for it and sends it as `x-bitrouter-key`), and is refused to cross-site fetches
//! (`Sec-Fetch-Site`). The page forbids framing and any script or connection but its own
//! (`Content-Security-Policy`). Nothing here writes, and no credential is ever part of an
//! answer.
//!
//! The server plugs in through [`DashboardSource`], so this module does not depend on it.

pub mod api;
mod assets;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

pub use api::AccountView;

use crate::clock::unix_now_ms;
use crate::history::Sink;

/// What the dashboard needs from the running server.
pub trait DashboardSource: Send + Sync + 'static {
    /// Whether the request may read the dashboard's data: it carries `server.api_key`, or none
    /// is set.
    fn authorized(&self, headers: &HeaderMap) -> bool;
    /// Every stored account with its live quota and cooldown.
    fn accounts(&self) -> Vec<AccountView>;
    /// The history sink (its database and counters).
    fn history(&self) -> Sink;
}

/// The path of the JSON the page polls.
pub const API_PATH: &str = "/api/dashboard";

/// The dashboard's routes over `source`, for any server state type.
pub fn router<S>(source: Arc<dyn DashboardSource>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(index))
        .route(assets::SCRIPT_PATH, get(script))
        .route(assets::STYLE_PATH, get(style))
        .route(assets::ICON_PATH, get(icon))
        .route(API_PATH, get(data))
        .with_state(source)
}

/// Headers every dashboard answer carries.
fn common(headers: &mut HeaderMap, content_type: &'static str) {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    common(response.headers_mut(), content_type);
    response
}

async fn index() -> Response {
    let mut response = asset(assets::INDEX, "text/html; charset=utf-8");
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn script() -> Response {
    asset(assets::SCRIPT, "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    asset(assets::STYLE, "text/css; charset=utf-8")
}

async fn icon() -> Response {
    asset(assets::ICON, "image/svg+xml")
}

/// An error answer in the server's OpenAI-style shape.
fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        json!({"error": {"message": message, "type": "invalid_request_error", "code": code}})
            .to_string(),
    )
        .into_response();
    common(response.headers_mut(), "application/json");
    response
}

async fn data(
    State(source): State<Arc<dyn DashboardSource>>,
    Query(query): Query<api::DataQuery>,
    headers: HeaderMap,
) -> Response {
    // A page on another site may not read this, even where the Origin check lets it through.
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return refuse(
            StatusCode::FORBIDDEN,
            "cross_site",
            "the dashboard's data is only for the dashboard page",
        );
    }
    if !source.authorized(&headers) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "missing_key",
            "missing or wrong bitrouter key: send server.api_key in x-bitrouter-key",
        );
    }
    let Some(range) = api::Range::parse(query.range.as_deref()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_range",
            "range must be 24h, 7d or 28d",
        );
    };
    let accounts = source.accounts();
    let history = source.history();
    let known = query.known;
    let built = tokio::task::spawn_blocking(move || {
        api::snapshot(&history, accounts, range, known, unix_now_ms())
    })
    .await;
    match built {
        Ok(value) => {
            let mut response = value.to_string().into_response();
            common(response.headers_mut(), "application/json");
            response
        }
        Err(e) => {
            tracing::warn!("dashboard: building the data failed: {e}");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "dashboard_failed",
                "the dashboard's data could not be built; see the server log",
            )
        }
    }
}
