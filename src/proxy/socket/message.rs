//! One `response.create` message of the WebSocket transport, turned into the body the HTTP
//! transport would have posted: the message's `type` and `generate` go, an input that continues
//! `previous_response_id` is spelled out in full from the socket's [`History`], and the
//! transport's own entries of `client_metadata` become the request headers they stand for. The
//! body is rewritten in place from its bytes (see [`crate::jsonscan`]), never as a JSON tree.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::history::History;
use crate::jsonscan;
use crate::proxy::error::{ApiError, ErrorCode};

/// The only message type the transport takes.
pub const CREATE: &str = "response.create";

/// `client_metadata` entries named so are request headers on the WebSocket transport: the
/// rest of the name is the header's, `_` for `-` (the Codex CLI 0.171 sends
/// `ws_request_header_x_openai_internal_codex_responses_lite`).
const HEADER_PREFIX: &str = "ws_request_header_";
/// `client_metadata` entries the Codex CLI also sends as headers on HTTP.
const CODEX_PREFIX: &str = "x-codex-";
/// `client_metadata` entries only the WebSocket transport has (a send time).
const CODEX_WS_PREFIX: &str = "x-codex-ws-";

/// A message taken apart.
#[derive(Debug)]
pub struct Create {
    /// The body, as the HTTP transport would have posted it.
    pub body: Bytes,
    /// Headers the message carries for this request (from `client_metadata`).
    pub headers: HeaderMap,
    /// `generate: false`: warm up only; nothing is generated.
    pub prewarm: bool,
    /// The `model` it names, for a warm-up's answer.
    pub model: Option<String>,
}

/// Reads one message against the socket's history.
///
/// # Errors
///
/// A message that is not a JSON object of type `response.create` (400), or that continues a
/// response this socket did not answer last (400 `previous_response_not_found`).
pub fn read(message: &[u8], history: &History) -> Result<Create, ApiError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(message).map_err(|e| {
        ApiError::bad_request(
            ErrorCode::InvalidJson,
            format!("the message is not valid JSON: {e}"),
        )
    })?;
    let entries = jsonscan::entries(message).ok_or_else(|| not_create(None))?;
    let mut kind = None;
    let mut prewarm = false;
    let mut previous = None;
    let mut model = None;
    let mut kept = Vec::new();
    let mut input = None;
    let mut metadata = None;
    for entry in entries {
        let (key, range) = entry.map_err(|()| not_create(None))?;
        let raw = &message[range.clone()];
        match jsonscan::key(key).as_deref() {
            Some("type") => kind = jsonscan::string(raw).map(|k| k.into_owned()),
            Some("generate") => prewarm = raw == b"false",
            Some("previous_response_id") => {
                previous = jsonscan::string(raw).map(|id| id.into_owned());
            }
            Some("input") => input = Some(range),
            Some("client_metadata") => metadata = Some((key, range)),
            Some(name) => {
                if name == "model" {
                    model = jsonscan::string(raw).map(|m| m.into_owned());
                }
                kept.push((key, range));
            }
            None => kept.push((key, range)),
        }
    }
    if kind.as_deref() != Some(CREATE) {
        return Err(not_create(kind.as_deref()));
    }
    let earlier = match previous {
        None => &[][..],
        Some(id) => history.items_of(&id).ok_or_else(|| not_found(&id))?,
    };

    let mut body = BytesMut::with_capacity(message.len() + history.len_hint(earlier));
    body.extend_from_slice(b"{");
    for (key, range) in &kept {
        entry_to(&mut body, key, &message[range.clone()]);
    }
    if input.is_some() || !earlier.is_empty() {
        body.extend_from_slice(b"\"input\":");
        splice_input(&mut body, earlier, input.map(|r| &message[r]))?;
        body.extend_from_slice(b",");
    }
    let mut headers = HeaderMap::new();
    if let Some((key, range)) = metadata {
        let filtered = metadata_to(&message[range], &mut headers);
        entry_to(&mut body, key, &filtered);
    }
    if body.ends_with(b",") {
        body.truncate(body.len() - 1);
    }
    body.extend_from_slice(b"}");
    Ok(Create {
        body: body.freeze(),
        headers,
        prewarm,
        model,
    })
}

/// Writes `"key":value,`.
fn entry_to(out: &mut BytesMut, key: &[u8], value: &[u8]) {
    out.extend_from_slice(b"\"");
    out.extend_from_slice(key);
    out.extend_from_slice(b"\":");
    out.extend_from_slice(value);
    out.extend_from_slice(b",");
}

/// Writes the input array: the items of the response this one continues, then its own.
fn splice_input(out: &mut BytesMut, earlier: &[Bytes], own: Option<&[u8]>) -> Result<(), ApiError> {
    out.extend_from_slice(b"[");
    let mut first = true;
    let mut item = |out: &mut BytesMut, raw: &[u8]| {
        if !first {
            out.extend_from_slice(b",");
        }
        first = false;
        out.extend_from_slice(raw);
    };
    for raw in earlier {
        item(out, raw);
    }
    if let Some(own) = own {
        let items = jsonscan::items(own).ok_or_else(|| {
            ApiError::bad_request(ErrorCode::InvalidRequest, "`input` must be a list")
        })?;
        for range in items {
            let range = range.map_err(|()| {
                ApiError::bad_request(ErrorCode::InvalidRequest, "`input` is malformed")
            })?;
            item(out, &own[range]);
        }
    }
    out.extend_from_slice(b"]");
    Ok(())
}

/// `client_metadata` without the transport's own entries; those that stand for headers are
/// put in `headers`. Anything but an object passes as it is.
fn metadata_to(raw: &[u8], headers: &mut HeaderMap) -> Vec<u8> {
    let Some(entries) = jsonscan::entries(raw) else {
        return raw.to_vec();
    };
    let mut out = Vec::with_capacity(raw.len());
    out.push(b'{');
    for entry in entries {
        let Ok((key, range)) = entry else {
            return raw.to_vec();
        };
        let value = &raw[range];
        let name = jsonscan::key(key).unwrap_or_default();
        let text = jsonscan::string(value);
        if let Some(header) = name.strip_prefix(HEADER_PREFIX) {
            add_header(headers, &header.replace('_', "-"), text.as_deref());
            continue;
        }
        if name.starts_with(CODEX_WS_PREFIX) {
            continue;
        }
        if name.starts_with(CODEX_PREFIX) {
            add_header(headers, &name, text.as_deref());
        }
        if out.len() > 1 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(key);
        out.extend_from_slice(b"\":");
        out.extend_from_slice(value);
    }
    out.push(b'}');
    out
}

fn add_header(headers: &mut HeaderMap, name: &str, value: Option<&str>) {
    let (Ok(name), Some(Ok(value))) = (
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
        value.map(HeaderValue::from_str),
    ) else {
        return;
    };
    headers.insert(name, value);
}

fn not_create(kind: Option<&str>) -> ApiError {
    let got = kind.map_or_else(|| "no `type`".to_owned(), |k| format!("`{k}`"));
    ApiError::bad_request(
        ErrorCode::InvalidRequest,
        format!("a message on this WebSocket must be a JSON object of type `{CREATE}`; got {got}"),
    )
}

fn not_found(id: &str) -> ApiError {
    ApiError::bad_request(
        ErrorCode::PreviousResponseNotFound,
        format!(
            "previous_response_id `{id}` is not the last response on this WebSocket; send the whole input"
        ),
    )
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn body(create: &Create) -> Value {
        serde_json::from_slice(&create.body).unwrap()
    }

    #[test]
    fn a_first_message_becomes_the_http_body() {
        let message = json!({"type": "response.create", "model": "gpt-6-luna", "stream": true,
            "input": [{"type": "message", "role": "user", "content": "hi"}], "store": false});
        let create = read(message.to_string().as_bytes(), &History::default()).unwrap();
        assert!(!create.prewarm);
        assert_eq!(create.model.as_deref(), Some("gpt-6-luna"));
        assert_eq!(
            body(&create),
            json!({"model": "gpt-6-luna", "stream": true, "store": false,
                "input": [{"type": "message", "role": "user", "content": "hi"}]})
        );
    }

    #[test]
    fn a_warm_up_is_marked_and_keeps_its_input() {
        let message =
            json!({"type": "response.create", "model": "m", "generate": false, "input": []});
        let create = read(message.to_string().as_bytes(), &History::default()).unwrap();
        assert!(create.prewarm);
        assert_eq!(body(&create), json!({"model": "m", "input": []}));
    }

    #[test]
    fn a_continuation_gets_the_earlier_input_and_output() {
        let mut history = History::default();
        history.begin(
            &json!({"input": [{"type": "message", "role": "user", "content": "a"}]})
                .to_string()
                .into(),
        );
        history.output(Bytes::from(
            r#"{"type":"custom_tool_call","call_id":"c1","name":"exec","input":"x"}"#,
        ));
        history.answered("resp_1".to_owned());
        let message = json!({"type": "response.create", "model": "m", "previous_response_id": "resp_1",
            "input": [{"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"}]});
        let create = read(message.to_string().as_bytes(), &history).unwrap();
        assert_eq!(
            body(&create)["input"],
            json!([{"type": "message", "role": "user", "content": "a"},
                {"type": "custom_tool_call", "call_id": "c1", "name": "exec", "input": "x"},
                {"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"}])
        );
        assert!(body(&create).get("previous_response_id").is_none());
    }

    #[test]
    fn an_unknown_previous_response_is_refused() {
        let message = json!({"type": "response.create", "model": "m", "previous_response_id": "resp_9", "input": []});
        let err = read(message.to_string().as_bytes(), &History::default()).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.code.as_deref(), Some("previous_response_not_found"));
    }

    #[test]
    fn other_messages_are_refused() {
        for message in [
            "[]",
            "{\"type\":\"response.cancel\"}",
            "{\"model\":\"m\"}",
            "{nope",
        ] {
            let err = read(message.as_bytes(), &History::default()).unwrap_err();
            assert_eq!(err.status, 400, "{message}");
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z\"\\\\\n\u{e9}{}\\[\\],:]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z\"\\\\]{0,5}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_create_message_becomes_its_body_without_the_transport_fields(
            extra in proptest::collection::btree_map("[a-z_\"\\\\]{1,8}", arb_json(), 0..6),
            input in proptest::collection::vec(arb_json(), 0..4),
            generate in any::<Option<bool>>(),
            pretty in any::<bool>(),
        ) {
            let mut expected: serde_json::Map<String, Value> = extra
                .into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "type" | "generate" | "previous_response_id" | "client_metadata" | "input"))
                .collect();
            let mut message = expected.clone();
            expected.insert("input".to_owned(), Value::Array(input.clone()));
            message.insert("type".to_owned(), json!(CREATE));
            message.insert("input".to_owned(), Value::Array(input));
            if let Some(generate) = generate {
                message.insert("generate".to_owned(), json!(generate));
            }
            let message = Value::Object(message);
            let text = if pretty {
                serde_json::to_string_pretty(&message).unwrap()
            } else {
                message.to_string()
            };
            let create = read(text.as_bytes(), &History::default()).unwrap();
            prop_assert_eq!(body(&create), Value::Object(expected));
            prop_assert_eq!(create.prewarm, generate == Some(false));
        }

        #[test]
        fn any_bytes_are_taken_or_refused_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(create) = read(&bytes, &History::default()) {
                prop_assert!(serde_json::from_slice::<Value>(&create.body).is_ok());
            }
        }
    }

    #[test]
    fn transport_metadata_becomes_headers() {
        let message = json!({"type": "response.create", "model": "m", "input": [],
            "client_metadata": {"session_id": "s1", "x-codex-turn-metadata": "{\"turn_id\":\"t1\"}",
                "x-codex-ws-stream-request-start-ms": "1", "ws_request_header_x_openai_lite": "true"}});
        let create = read(message.to_string().as_bytes(), &History::default()).unwrap();
        assert_eq!(
            body(&create)["client_metadata"],
            json!({"session_id": "s1", "x-codex-turn-metadata": "{\"turn_id\":\"t1\"}"})
        );
        assert_eq!(
            create.headers["x-codex-turn-metadata"],
            "{\"turn_id\":\"t1\"}"
        );
        assert_eq!(create.headers["x-openai-lite"], "true");
        assert_eq!(create.headers.len(), 2);
    }
}
