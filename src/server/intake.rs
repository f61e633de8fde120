//! Taking a proxy request in: the local key, the content type, the body (bounded by
//! `server.max_body_bytes`), and resolver errors as HTTP errors.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::error::ApiError;
use super::security;
use crate::config::{AuthMode, Config};
use crate::routing::{Plan, RouteError};

/// The 401 for a missing or wrong local key.
pub(super) fn missing_key() -> ApiError {
    ApiError::unauthorized(
        "missing or wrong bitrouter key: send it in x-bitrouter-key (or Authorization: Bearer / x-api-key)",
    )
}

/// With a passthrough target, `Authorization`/`x-api-key` hold the client's own upstream
/// credential, so only `x-bitrouter-key` counts as the local key.
pub(super) fn check_local_key(
    config: &Config,
    plan: &Plan,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(key) = &config.server.api_key else {
        return Ok(());
    };
    let passthrough = plan.steps.iter().any(|s| {
        config
            .provider(&s.target.provider)
            .is_some_and(|p| p.auth_mode == AuthMode::Passthrough)
    });
    if security::has_local_key(headers, key, !passthrough) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "missing or wrong bitrouter key: this model goes to a passthrough provider, so send the bitrouter key in x-bitrouter-key",
        ))
    }
}

/// A resolver error as an HTTP error, with its hint in the message.
pub(super) fn route_error(err: RouteError) -> ApiError {
    let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let (kind, code) = match &err {
        RouteError::EmptyModel => ("invalid_request_error", "missing_model"),
        RouteError::UnknownProvider { .. } => ("not_found_error", "unknown_provider"),
        RouteError::BadLabel(_) => ("invalid_request_error", "invalid_account"),
        RouteError::UnknownAccount { .. } => ("not_found_error", "unknown_account"),
        RouteError::NotLoggedIn { .. } => ("authentication_error", "not_logged_in"),
        RouteError::ConflictingAccounts { .. } => ("invalid_request_error", "conflicting_accounts"),
        RouteError::Ambiguous { .. } => ("invalid_request_error", "ambiguous_model"),
        RouteError::RouteLoop(_) => ("server_error", "route_loop"),
        RouteError::BadVariant { .. } => ("invalid_request_error", "invalid_variant"),
        RouteError::VariantOfRoute { .. } => ("invalid_request_error", "variant_of_route"),
        RouteError::UnsupportedVariant { .. } => ("not_found_error", "unsupported_variant"),
    };
    ApiError::new(status, kind, Some(code), format!("{err} ({})", err.hint()))
}

/// Refuses a body that is declared as something other than JSON.
pub(super) fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE).map(HeaderValue::to_str) {
        None => Ok(()),
        Some(Ok(ct)) if ct.to_ascii_lowercase().contains("json") => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "invalid_content_type",
            "send the request body as JSON with content-type: application/json",
        )),
    }
}

/// Reads the body, refusing more than `limit` bytes with a 413. The rest of the body is left
/// unread, so the server closes the connection after the answer; `connection: close` tells the
/// client not to reuse it (a pooled client would otherwise send its next request into a closed
/// socket).
pub(super) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("request_too_large"),
            format!("the request body is larger than server.max_body_bytes ({limit} bytes)"),
        )
        .with_header(header::CONNECTION, HeaderValue::from_static("close"))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::bad_request("invalid_body", "the request body could not be read")
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
