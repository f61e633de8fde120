//! The request path of the proxy endpoints, in the order a request takes it:
//!
//! 1. [`intake`]: the local key, the content type, the body read and parsed once;
//! 2. [`plan`]: the chain from the one resolver, the conversation's key (see
//!    [`crate::affinity`]), and what each step sends (native, shaped for the Codex backend, or
//!    translated through the Responses pivot) with which credentials, in the picker's order
//!    (see [`crate::picker`]);
//! 3. [`walk`]: each step, each credential, one attempt at a time, with [`outbound`] building
//!    the upstream headers and [`outcome`] deciding what each result means (answer, refresh,
//!    cool down, retry after a backoff, fail over);
//! 4. the answer: a Responses stream relayed ([`relay`]) or translated back to the client's API
//!    ([`translated`], [`pivot`]), a native body passed on, or an error in the client's shape
//!    ([`error`]).
//!
//! [`Proxy`] is the state the path shares; [`record`] is what it learns for the access log and
//! the request history. [`socket`] serves the Codex CLI's WebSocket transport by sending each of
//! its messages down this same path.

pub mod answer;
pub mod body;
pub mod codex;
pub mod error;
pub mod inbound;
pub mod intake;
pub mod outbound;
pub mod outcome;
pub mod patch;
pub mod pivot;
pub mod plan;
pub mod record;
pub mod relay;
pub mod socket;
pub mod state;
pub mod translated;
pub mod walk;

use bytes::Bytes;
use http::request::Parts;

pub use answer::Response;
pub use body::Body;
pub use error::{ApiError, ErrorCode, ErrorKind, Flavor};
pub use inbound::Inbound;
pub use record::{LogCell, LogFields};
pub use state::Proxy;

/// Handles one proxy request; every error becomes the inbound API's error envelope.
pub async fn handle<B>(
    proxy: &Proxy,
    inbound: Inbound,
    parts: Parts,
    body: B,
    log: &LogCell,
) -> Response
where
    B: http_body::Body<Data = Bytes>,
{
    match run(proxy, inbound, parts, body, log).await {
        Ok(response) => response,
        Err(err) => {
            log.update(|f| {
                f.error = err.code.as_deref().map(str::to_owned);
                f.error_message = Some(err.message.clone());
            });
            err.into_response_as(inbound.flavor())
        }
    }
}

async fn run<B>(
    proxy: &Proxy,
    inbound: Inbound,
    parts: Parts,
    body: B,
    log: &LogCell,
) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes>,
{
    let config = proxy.config();
    let mut request = intake::read(&config, inbound, parts, body, log).await?;
    let plan = plan::resolve(proxy, &config, &request)?;
    request.conversation = plan::conversation(&config, inbound, &request, &plan);
    walk::walk(proxy, &config, inbound, request, &plan, log).await
}
