//! Taking a proxy request in: the local key, the content type, the body (bounded by
//! `server.max_body_bytes`) checked to be JSON, the model it names, the ids in it that can name
//! a conversation ([`BodyIds`]) and the account the `x-bitrouter-account` header pins; and
//! resolver errors as HTTP errors. A Responses body is read in place, in one pass, to find the
//! model and the ids; it becomes a JSON tree only if a step of the chain needs one
//! ([`Body::value`]), at most once. Any other body becomes its tree at once, as every route
//! needs it.

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

use super::error::{ApiError, ErrorCode, ErrorKind};
use super::inbound::Inbound;
use super::record::LogCell;
use crate::affinity::{Affinity, BodyIds, OpeningFields};
use crate::config::{AuthMode, Config};
use crate::routing::{Plan, RouteError};
use crate::upstream::headers::{ACCOUNT_HEADER, has_local_key};

/// A request taken in: its headers, its body, the model it asks for, the ids that can name its
/// conversation and the account its header pins.
#[derive(Debug)]
pub struct Request {
    /// The client's headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Body,
    /// The `model` it names.
    pub model: String,
    /// The `x-bitrouter-account` header.
    pub account: Option<String>,
    /// The body's conversation ids.
    pub ids: BodyIds,
    /// The conversation's key, once the plan needs one (see [`super::plan::conversation`]).
    pub conversation: Option<Affinity>,
}

/// A request body known to be JSON: its bytes, and its tree once something needed it.
#[derive(Debug)]
pub struct Body {
    raw: Bytes,
    value: Option<Value>,
}

impl Body {
    /// The bytes as the client sent them.
    #[must_use]
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The body as a JSON tree, parsed on first use.
    ///
    /// # Errors
    ///
    /// None in practice: the body was checked to be JSON when it was taken in.
    pub fn value(&mut self) -> Result<&Value, ApiError> {
        if self.value.is_none() {
            self.value = Some(parse(&self.raw)?);
        }
        Ok(self.value.get_or_insert(Value::Null))
    }

    /// The body as a JSON tree, owned: the last user takes it instead of copying it.
    ///
    /// # Errors
    ///
    /// As [`Body::value`].
    pub fn take_value(&mut self) -> Result<Value, ApiError> {
        match self.value.take() {
            Some(value) => Ok(value),
            None => parse(&self.raw),
        }
    }
}

fn parse(raw: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(raw).map_err(not_json)
}

fn not_json(e: serde_json::Error) -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidJson,
        format!("the request body is not valid JSON: {e}"),
    )
}

/// Reads and checks a proxy request for `inbound`. A body that every route makes a JSON tree
/// of (any but a Responses request, which the Codex backend's in-place shaping takes as text)
/// is parsed into its tree here, in the one pass that also checks it; any other is checked
/// and read in place.
///
/// # Errors
///
/// A missing local key (401), a body that is not JSON, too large or names no model (400/413).
pub async fn read<B>(
    config: &Config,
    inbound: Inbound,
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
    let (model, ids, value) = if inbound == Inbound::Responses {
        let scanned: Scanned<'_> = serde_json::from_slice(&bytes).map_err(not_json)?;
        let ids = BodyIds {
            opening: scanned.opening_in(&bytes),
            ..scanned.ids
        };
        (scanned.model, ids, None)
    } else {
        let value = parse(&bytes)?;
        let model = value
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let ids = BodyIds::of_tree(&value);
        (model, ids, Some(value))
    };
    let model = model.ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::MissingModel,
            "missing `model`: name the model to use, e.g. `openai-codex:gpt-6.1-sol`",
        )
    })?;
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
        body: Body { raw: bytes, value },
        model,
        account,
        ids,
        conversation: None,
    })
}

/// The `model` of a JSON document when it is an object with a string `model` (the last one,
/// as a JSON tree would keep), its conversation ids and the text of the fields its
/// conversation's opening is made of ([`OpeningFields::FIELDS`], in that order), read without
/// building the tree; the whole document is still checked to be JSON.
struct Scanned<'a> {
    model: Option<String>,
    ids: BodyIds,
    opening: [Option<&'a str>; OpeningFields::FIELDS.len()],
}

impl<'a> Scanned<'a> {
    fn nothing() -> Scanned<'a> {
        Scanned {
            model: None,
            ids: BodyIds::default(),
            opening: [None; OpeningFields::FIELDS.len()],
        }
    }

    /// Where the opening's fields lie in `body`, the document this was read from (their text
    /// is borrowed from it); `None` if a text lies outside it, which borrowing rules out (the
    /// opening then finds its fields itself).
    fn opening_in(&self, body: &[u8]) -> Option<OpeningFields> {
        let base = body.as_ptr().addr();
        let mut fields = OpeningFields::default();
        for (field, text) in OpeningFields::FIELDS.iter().zip(self.opening) {
            if let Some(text) = text {
                let start = text.as_ptr().addr().checked_sub(base)?;
                let end = start + text.len();
                if end > body.len() {
                    return None;
                }
                fields.note(field, start..end);
            }
        }
        Some(fields)
    }
}

impl<'de> serde::Deserialize<'de> for Scanned<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        use serde_json::value::RawValue;

        struct Find;
        impl<'de> Visitor<'de> for Find {
            type Value = Scanned<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scanned<'de>, A::Error> {
                let mut found = Scanned::nothing();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if key == "model" {
                        let raw: &RawValue = map.next_value()?;
                        found.model = serde_json::from_str::<String>(raw.get()).ok();
                    } else if BodyIds::FIELDS.contains(&key.as_ref()) {
                        let raw: &RawValue = map.next_value()?;
                        found.ids.note(&key, raw.get().as_bytes());
                    } else if let Some(i) = OpeningFields::FIELDS.iter().position(|f| *f == key) {
                        let raw: &'de RawValue = map.next_value()?;
                        found.opening[i] = Some(raw.get());
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(found)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scanned<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scanned::nothing())
            }

            fn visit_bool<E>(self, _: bool) -> Result<Scanned<'de>, E> {
                Ok(Scanned::nothing())
            }

            fn visit_i64<E>(self, _: i64) -> Result<Scanned<'de>, E> {
                Ok(Scanned::nothing())
            }

            fn visit_u64<E>(self, _: u64) -> Result<Scanned<'de>, E> {
                Ok(Scanned::nothing())
            }

            fn visit_f64<E>(self, _: f64) -> Result<Scanned<'de>, E> {
                Ok(Scanned::nothing())
            }

            fn visit_str<E>(self, _: &str) -> Result<Scanned<'de>, E> {
                Ok(Scanned::nothing())
            }

            fn visit_unit<E>(self) -> Result<Scanned<'de>, E> {
                Ok(Scanned::nothing())
            }
        }
        d.deserialize_any(Find)
    }
}

/// An object key, borrowed from the body unless it has escapes. (serde's own `Cow<str>` always
/// copies: a new `String` for each key of every request.)
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(key.to_owned())))
            }

            fn visit_string<E>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(key)))
            }
        }
        d.deserialize_str(Text)
    }
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
        // Looked for in place: a lowered copy and a substring searcher cost some 400
        // instructions a request.
        Some(Ok(ct))
            if ct
                .as_bytes()
                .windows(4)
                .any(|w| w.eq_ignore_ascii_case(b"json")) =>
        {
            Ok(())
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(body: &str) -> Result<Scanned<'_>, serde_json::Error> {
        serde_json::from_str(body)
    }

    #[test]
    fn a_body_is_taken_as_json_by_any_content_type_that_names_json() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            check_content_type(&headers).is_ok()
        };
        assert!(check_content_type(&HeaderMap::new()).is_ok());
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
            "text/Json",
        ] {
            assert!(with(ok), "{ok}");
        }
        for refused in ["text/plain", "application/jso", "multipart/form-data", ""] {
            assert!(!with(refused), "{refused}");
        }
    }

    #[test]
    fn one_pass_finds_the_model_and_the_conversation_ids() {
        let found = scan(
            r#"{"input":[{"role":"user","content":"hi","user":"inner"}],"model":"a","prompt_cache_key":"conv-1","metadata":{"user_id":"u-7"},"model":"b","user":"me"}"#,
        )
        .unwrap();
        // The last `model`, as a JSON tree keeps; nested fields are not the body's.
        assert_eq!(found.model.as_deref(), Some("b"));
        assert_eq!(
            found.ids,
            BodyIds {
                prompt_cache_key: Some("conv-1".into()),
                user: Some("me".into()),
                metadata_user_id: Some("u-7".into()),
                opening: None,
            }
        );
        let none = scan(r#"{"model":5,"user":null,"metadata":[1]}"#).unwrap();
        assert_eq!(none.model, None);
        assert_eq!(none.ids, BodyIds::default());
        assert!(scan("[1,2]").unwrap().model.is_none());
        // The whole document is still checked.
        assert!(scan(r#"{"model":"a","user":"me""#).is_err());
        assert!(scan(r#"{"model":"a"} trailing"#).is_err());
    }

    #[test]
    fn the_opening_fields_are_noted_where_they_lie() {
        let body = r#"{ "instructions" : "be brief", "tools":[], "model":"m",
            "inp\u0075t" :[{"role":"user","content":"hi"}], "tools" : [ {"type":"function"} ] }"#;
        let scanned = scan(body).unwrap();
        let noted = scanned.opening_in(body.as_bytes()).unwrap();
        let mut expected = OpeningFields::default();
        for (field, text) in [
            ("instructions", r#""be brief""#),
            ("input", r#"[{"role":"user","content":"hi"}]"#),
            // The last of repeated keys, as a JSON tree keeps.
            ("tools", r#"[ {"type":"function"} ]"#),
        ] {
            let start = body.find(text).unwrap();
            expected.note(field, start..start + text.len());
        }
        assert_eq!(noted, expected);
        assert_eq!(
            scan(r#"{"model":"m"}"#).unwrap().opening_in(b""),
            Some(OpeningFields::default())
        );
        // Text that is not the given body's is not noted.
        assert_eq!(scanned.opening_in(b"{}"), None);
    }

    #[test]
    fn keys_with_escapes_are_read_as_their_text() {
        let found = scan(r#"{"mod\u0065l":"a","us\u0065r":"me","m\"x":1}"#).unwrap();
        assert_eq!(found.model.as_deref(), Some("a"));
        assert_eq!(found.ids.user.as_deref(), Some("me"));
        // A key that is not a string is no object.
        assert!(scan(r#"{1:"a"}"#).is_err());
    }
}
