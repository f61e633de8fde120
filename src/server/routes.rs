//! The route table and what every request passes through: credentials in the request marked
//! sensitive, the Host/Origin checks ([`super::guard`]), the access log and history row
//! ([`super::access_log`]), and then either the request path (`POST` to a proxy endpoint,
//! handed to [`crate::proxy`] straight from hyper) or the rest of the HTTP face (`/health`,
//! `/v1/models`, the dashboard, errors for unknown routes, in [`super::face`]).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderName, Method, Request, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use tower::ServiceExt;

use super::access_log::{self, Entry};
use super::activity::Activity;
use super::guard::{self, Verdict};
use super::socket;
use super::state::AppState;
use crate::proxy::{self, ApiError, ErrorCode, ErrorKind, Flavor, Inbound};
use crate::upstream::headers::LOCAL_KEY_HEADER;

/// The routes, for the 404 and 405 messages.
pub const ROUTES: &str = "POST /v1/responses, GET /v1/responses (WebSocket), POST /v1/responses/compact, POST /v1/chat/completions, POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, GET /backend-api/wham/usage, GET /backend-api/wham/accounts/check, GET /health, GET / (the dashboard)";

/// The error of an answer's body.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Handles one request on a connection, its body read by hyper or by [`super::h1`].
///
/// # Errors
///
/// Never: every failure is an answer.
pub async fn handle<B>(
    state: Arc<AppState>,
    face: axum::Router,
    activity: Arc<Activity>,
    mut req: Request<B>,
) -> Result<Response<Body>, Infallible>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BodyError>,
{
    activity.busy();
    mark_sensitive(req.headers_mut());
    let (mut entry, log) = access_log::start(&req, &state.history);
    let config = state.proxy.config();
    let verdict = guard::check(
        req.method(),
        req.headers(),
        state.local_addr,
        &config.server.allowed_origins,
    );
    drop(config);
    let response = match verdict {
        Verdict::Refuse(err) => {
            if let Some(entry) = &mut entry {
                entry.refused();
            }
            tracing::debug!(path = %req.uri().path(), "refused: {}", err.message);
            error(err, flavor_of(req.uri().path()))
        }
        Verdict::Preflight(headers) => {
            let mut response = Response::new(Inner::Proxy(proxy::Body::empty()));
            *response.status_mut() = guard::PREFLIGHT_STATUS;
            *response.headers_mut() = headers;
            response
        }
        Verdict::Serve(origin) => {
            // Boxed: the request path's future is some 5 KB, and hyper keeps room for this
            // one in every connection for as long as the connection lives, idle or not. Made
            // in its box: `Box::pin` made it on the stack, then copied all of it there.
            let route = Box::write(Box::new_uninit(), route(&state, &activity, face, req, &log));
            let mut response = Box::into_pin(route).await;
            if let Some(origin) = origin {
                guard::allow_origin(response.headers_mut(), origin);
            }
            response
        }
    };
    let status = response.status().as_u16();
    if let Some(entry) = &mut entry {
        entry.answered(response.headers());
    }
    Ok(response.map(|inner| Body {
        inner,
        ended: Some(Ended {
            entry,
            status,
            activity,
            state,
        }),
    }))
}

/// Sends the request where its method and path lead.
async fn route<B>(
    state: &Arc<AppState>,
    activity: &Arc<Activity>,
    face: axum::Router,
    req: Request<B>,
    log: &proxy::LogCell,
) -> Response<Inner>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BodyError>,
{
    let path = req.uri().path();
    if let Some(inbound) = Inbound::at(path) {
        if req.method() == Method::POST {
            let (parts, body) = req.into_parts();
            return proxy::handle(&state.proxy, inbound, parts, body, log)
                .await
                .map(Inner::Proxy);
        }
        if inbound == Inbound::Responses && req.method() == Method::GET {
            // The Codex CLI's WebSocket transport; anything else gets a 426, which makes a
            // client that tried a WebSocket fall back to HTTP at once.
            if !socket::is_upgrade(req.headers()) {
                return error(socket::not_upgrade(), Flavor::OpenAi);
            }
            return match socket::accept(state, activity, req) {
                Ok(response) => response.map(Inner::Proxy),
                Err(err) => error(err, Flavor::OpenAi),
            };
        }
        return error(method_not_allowed(req.method(), path), inbound.flavor());
    }
    match face.oneshot(req.map(axum::body::Body::new)).await {
        Ok(response) => response.map(Inner::Face),
        Err(never) => match never {},
    }
}

/// The 405 for a route that exists with another method.
#[must_use]
pub fn method_not_allowed(method: &Method, path: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::InvalidRequest,
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {path}; routes: {ROUTES}"),
    )
}

/// The envelope the clients of a path understand.
#[must_use]
pub fn flavor_of(path: &str) -> Flavor {
    if path.starts_with("/v1/messages") {
        Flavor::Anthropic
    } else {
        Flavor::OpenAi
    }
}

fn error(err: ApiError, flavor: Flavor) -> Response<Inner> {
    err.into_response_as(flavor).map(Inner::Proxy)
}

/// Request headers that carry credentials: marked sensitive so no `Debug` output shows them.
const SENSITIVE: [HeaderName; 4] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
    LOCAL_KEY_HEADER,
    header::COOKIE,
];

/// One pass over a request's few headers, rather than a hashed look-up per name.
fn mark_sensitive(headers: &mut http::HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if SENSITIVE.contains(name) {
            value.set_sensitive(true);
        }
    }
}

/// An answer's body: from the request path or from the rest of the face.
pub enum Inner {
    /// The request path's.
    Proxy(proxy::Body),
    /// The face's (axum).
    Face(axum::body::Body),
}

/// What happens when an answer's body ends (or is dropped): its access-log line and history
/// row, and the connection waits for its next request.
struct Ended {
    entry: Option<Entry>,
    status: u16,
    activity: Arc<Activity>,
    /// The request's own handle on the server state (its history sink finishes the entry; a
    /// clone of the sink per request would be one more count that every core writes).
    state: Arc<AppState>,
}

impl Drop for Ended {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            entry.finish(self.status, &self.state.history);
        }
        self.activity.idle();
    }
}

/// The body hyper sends.
pub struct Body {
    inner: Inner,
    ended: Option<Ended>,
}

#[cfg(test)]
impl Body {
    /// A body of the request path's that ends with nothing to record.
    pub fn for_tests(inner: proxy::Body) -> Body {
        Body {
            inner: Inner::Proxy(inner),
            ended: None,
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = match &mut self.inner {
            Inner::Proxy(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Inner::Face(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        };
        match &polled {
            Poll::Ready(None) => {
                self.ended.take();
            }
            Poll::Ready(Some(Ok(_))) => {
                if let Some(Ended {
                    entry: Some(entry), ..
                }) = &mut self.ended
                {
                    entry.body_began();
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Proxy(body) => body.is_end_stream(),
            Inner::Face(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Proxy(body) => body.size_hint(),
            Inner::Face(body) => body.size_hint(),
        }
    }
}
