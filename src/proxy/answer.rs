//! Building the client's answer from a successful upstream response: a committed Codex stream
//! relayed as SSE or aggregated to JSON, a native upstream's body relayed as is, or a native
//! client error passed through verbatim. Every answer carries the `x-bitrouter-*` headers.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::body::Body;
use super::error::ApiError;
use super::inbound::Inbound;
use super::outbound::Served;
use super::record::LogCell;
use super::relay;
use crate::upstream::headers::relayable_response_headers;

/// An answer to the client.
pub type Response = http::Response<Body>;

/// A native upstream's client error, passed through as it came.
pub(super) fn verbatim(
    status: StatusCode,
    headers: &HeaderMap,
    body: Bytes,
    served: &Served,
) -> Response {
    let mut response = Response::new(Body::full(body));
    *response.status_mut() = status;
    response.headers_mut().extend(headers.clone());
    response.headers_mut().extend(served.headers());
    response
}

/// A committed Codex stream as the client asked for it: relayed as SSE, or aggregated to JSON.
pub(super) async fn codex_answer(
    committed: relay::Committed,
    mut headers: HeaderMap,
    client_stream: bool,
    served: &Served,
    log: &LogCell,
) -> Result<Response, ApiError> {
    headers.remove(header::CONTENT_TYPE);
    headers.remove(header::CONTENT_ENCODING);
    headers.extend(served.headers());
    let provider = served.provider.as_str();
    if client_stream {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        let mut response =
            Response::new(Body::stream(relay::relay(committed, provider, log.clone())));
        *response.headers_mut() = headers;
        return Ok(response);
    }
    let value = relay::aggregate(committed, provider, log).await?;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut response = Response::new(Body::full(value.to_string()));
    *response.headers_mut() = headers;
    Ok(response)
}

/// A native upstream's success, relayed as it arrives.
pub(super) fn native_answer(
    resp: crate::upstream::Response,
    inbound: Inbound,
    served: &Served,
    log: &LogCell,
) -> Response {
    let status = resp.status;
    let mut headers = relayable_response_headers(&resp.headers);
    headers.extend(served.headers());
    let sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let body = relay::relay_raw(
        resp.body,
        sse,
        inbound.flavor(),
        served.provider.as_str(),
        log.clone(),
    );
    let mut response = Response::new(Body::stream(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
