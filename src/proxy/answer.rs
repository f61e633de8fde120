//! Building the client's answer from a successful upstream response: a committed Codex stream
//! relayed as SSE or aggregated to JSON, a native upstream's body relayed as is, or a native
//! client error passed through verbatim. Every answer carries the `x-bitrouter-*` headers.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::body::{Body, ClientStream};
use super::error::{ApiError, ErrorCode, Flavor};
use super::inbound::Inbound;
use super::outbound::Served;
use super::record::LogCell;
use super::relay;
use crate::history::scan::UsageScan;
use crate::sse::format_event;
use crate::upstream::ByteStream;
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
    served.add_headers(response.headers_mut());
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
    written_headers(&mut headers, served, client_stream);
    let provider = served.provider.as_str();
    let body = if client_stream {
        Body::stream(relay::relay(committed, provider, log.clone()))
    } else {
        Body::full(
            relay::aggregate(committed, provider, log)
                .await?
                .to_string(),
        )
    };
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    Ok(response)
}

/// The headers of an answer bitrouter writes from a committed stream (relayed, translated or
/// aggregated): the upstream's relayable ones less their content encoding, the `x-bitrouter-*`
/// ones, and the type of what goes out, an event stream that is not to be cached or JSON.
pub(super) fn written_headers(headers: &mut HeaderMap, served: &Served, stream: bool) {
    headers.remove(header::CONTENT_ENCODING);
    served.add_headers(headers);
    if stream {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    } else {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
}

/// A native upstream's success, relayed as it arrives.
pub(super) fn native_answer(
    resp: crate::upstream::Response,
    inbound: Inbound,
    served: &Served,
    log: &LogCell,
) -> Response {
    let status = resp.status;
    let mut headers = relayable_response_headers(resp.headers);
    served.add_headers(&mut headers);
    let sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let body = relay_raw(
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

/// Forwards a native upstream body unchanged, noting the token usage it reports on the way
/// ([`UsageScan`], only when the request's record is kept). When it breaks: an SSE body ends
/// with an `error` event in the client's flavour; any other body is cut (the client sees a
/// truncated answer rather than a silently short one).
#[must_use]
fn relay_raw(
    rest: ByteStream,
    sse: bool,
    flavor: Flavor,
    provider: &str,
    log: LogCell,
) -> ClientStream {
    let provider = provider.to_owned();
    let scan = log.is_enabled().then(|| UsageScan::new(sse));
    stream::unfold((rest, false, scan), move |(mut rest, done, mut scan)| {
        let provider = provider.clone();
        let log = log.clone();
        async move {
            if done {
                return None;
            }
            match rest.next().await {
                Some(Ok(chunk)) => {
                    if let Some(scan) = &mut scan {
                        scan.feed(&chunk);
                    }
                    Some((Ok(chunk), (rest, false, scan)))
                }
                Some(Err(e)) => {
                    let mut err = ApiError::transport(&provider, &e);
                    if !err.has_code(ErrorCode::UpstreamTimeout) {
                        err.code = Some(ErrorCode::UpstreamDisconnected.as_str().into());
                    }
                    let code = err.code.as_deref().map(str::to_owned);
                    log.update(|f| f.error = code);
                    if sse {
                        let wire = match flavor {
                            Flavor::Anthropic => err.sse_event(Flavor::Anthropic),
                            // Chat Completions streams carry errors as a data-only event.
                            Flavor::OpenAi => {
                                format_event(None, &err.body(Flavor::OpenAi).to_string())
                            }
                        };
                        Some((Ok(Bytes::from(wire)), (rest, true, None)))
                    } else {
                        Some((Err(std::io::Error::other(err.message)), (rest, true, None)))
                    }
                }
                None => {
                    if let Some(tokens) = scan.and_then(UsageScan::finish) {
                        log.update(|f| f.tokens = tokens);
                    }
                    None
                }
            }
        }
    })
    .boxed()
}
