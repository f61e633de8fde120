//! Taking a proxy request in: the local key, the content type, the body (bounded by
//! `server.max_body_bytes`) parsed once, the model it names and the account the
//! `x-bitrouter-account` header pins; and resolver errors as HTTP errors.

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

use super::error::{ApiError, ErrorCode, ErrorKind};
use super::record::LogCell;
use crate::config::{AuthMode, Config};
use crate::routing::{Plan, RouteError};
use crate::upstream::headers::{ACCOUNT_HEADER, has_local_key};

/// A request taken in: its headers, its body parsed, the model it asks for and the account its
/// header pins.
#[derive(Debug)]
pub struct Request {
    /// The client's headers.
    pub headers: HeaderMap,
    /// The body.
    pub json: Value,
    /// The `model` it names.
    pub model: String,
    /// The `x-bitrouter-account` header.
    pub account: Option<String>,
}

/// Reads and checks a proxy request.
///
/// # Errors
///
/// A missing local key (401), a body that is not JSON, too large or names no model (400/413).
pub async fn read<B>(
    config: &Config,
    parts: Parts,
    body: B,
    log: &LogCell,
) -> Result<Request, ApiError>
where
    B: http_body::Body<Data = Bytes>,
{
    let headers = parts.headers;
    if let Some(key) = &config.server.api_key
        && !has_local_key(&headers, key, true)
    {
        return Err(missing_key());
    }
    check_content_type(&headers)?;
    let bytes = read_body(body, &headers, config.server.max_body_bytes).await?;
    let json: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            ErrorCode::InvalidJson,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    let model = json
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::MissingModel,
                "missing `model`: name the model to use, e.g. `openai-codex:gpt-6.1-sol`",
            )
        })?
        .to_owned();
    log.update(|f| f.model = Some(model.clone()));
    let account = match headers.get(ACCOUNT_HEADER) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::bad_request(
                        ErrorCode::InvalidAccount,
                        "x-bitrouter-account is not valid text",
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
    Ok(Request {
        headers,
        json,
        model,
        account,
    })
}

/// The 401 for a missing or wrong local key.
#[must_use]
pub fn missing_key() -> ApiError {
    ApiError::unauthorized(
        "missing or wrong bitrouter key: send it in x-bitrouter-key (or Authorization: Bearer / x-api-key)",
    )
}

/// With a passthrough target, `Authorization`/`x-api-key` hold the client's own upstream
/// credential, so only `x-bitrouter-key` counts as the local key.
///
/// # Errors
///
/// A 401 when the key is missing or wrong.
pub fn check_local_key(config: &Config, plan: &Plan, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &config.server.api_key else {
        return Ok(());
    };
    let passthrough = plan.steps.iter().any(|s| {
        config
            .provider(&s.target.provider)
            .is_some_and(|p| p.auth_mode == AuthMode::Passthrough)
    });
    if has_local_key(headers, key, !passthrough) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "missing or wrong bitrouter key: this model goes to a passthrough provider, so send the bitrouter key in x-bitrouter-key",
        ))
    }
}

/// A resolver error as an HTTP error, with its hint in the message.
#[must_use]
pub fn route_error(err: &RouteError) -> ApiError {
    let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let (kind, code) = match err {
        RouteError::EmptyModel => (ErrorKind::InvalidRequest, ErrorCode::MissingModel),
        RouteError::UnknownProvider { .. } => (ErrorKind::NotFound, ErrorCode::UnknownProvider),
        RouteError::BadLabel(_) => (ErrorKind::InvalidRequest, ErrorCode::InvalidAccount),
        RouteError::UnknownAccount { .. } => (ErrorKind::NotFound, ErrorCode::UnknownAccount),
        RouteError::NotLoggedIn { .. } => (ErrorKind::Authentication, ErrorCode::NotLoggedIn),
        RouteError::ConflictingAccounts { .. } => {
            (ErrorKind::InvalidRequest, ErrorCode::ConflictingAccounts)
        }
        RouteError::Ambiguous { .. } => (ErrorKind::InvalidRequest, ErrorCode::AmbiguousModel),
        RouteError::RouteLoop(_) => (ErrorKind::Server, ErrorCode::RouteLoop),
        RouteError::BadVariant { .. } => (ErrorKind::InvalidRequest, ErrorCode::InvalidVariant),
        RouteError::VariantOfRoute { .. } => (ErrorKind::InvalidRequest, ErrorCode::VariantOfRoute),
        RouteError::UnsupportedVariant { .. } => {
            (ErrorKind::NotFound, ErrorCode::UnsupportedVariant)
        }
    };
    ApiError::new(status, kind, code, format!("{err} ({})", err.hint()))
}

/// Refuses a body that is declared as something other than JSON.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE).map(HeaderValue::to_str) {
        None => Ok(()),
        Some(Ok(ct)) if ct.to_ascii_lowercase().contains("json") => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            ErrorCode::InvalidContentType,
            "send the request body as JSON with content-type: application/json",
        )),
    }
}

/// Reads the body, refusing more than `limit` bytes with a 413. The rest of the body is left
/// unread, so the server closes the connection after the answer; `connection: close` tells the
/// client not to reuse it (a pooled client would otherwise send its next request into a closed
/// socket).
async fn read_body<B>(body: B, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes>,
{
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::InvalidRequest,
            ErrorCode::RequestTooLarge,
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
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0));
    let mut only: Option<Bytes> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            ApiError::bad_request(ErrorCode::InvalidBody, "the request body could not be read")
        })?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        let len = only.as_ref().map_or(0, Bytes::len) + buf.len() + chunk.len();
        if len > limit {
            return Err(too_large());
        }
        // One chunk, the usual case, is kept as it came; more are joined.
        match only.take() {
            None if buf.is_empty() => only = Some(chunk),
            None => buf.extend_from_slice(&chunk),
            Some(first) => {
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&chunk);
            }
        }
    }
    Ok(only.unwrap_or_else(|| buf.freeze()))
}
