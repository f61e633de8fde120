//! Upstreams that speak Chat Completions or Anthropic Messages, seen through the Responses
//! pivot: which API a translated request is sent in ([`target_api`]), its body in that API
//! ([`upstream_body`]), and the upstream's stream turned into Responses events as it arrives
//! ([`as_responses`]), so the rest of the path (peek, relay, aggregation, the client-side
//! translators) handles one kind of stream. The conversions themselves are the pure ones in
//! [`crate::translate::chat_upstream`] and [`crate::translate::messages_upstream`].

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use serde_json::Value;

use super::error::{ApiError, ErrorCode};
use crate::config::{Api, ProviderConfig};
use crate::sse::{SseEvent, SseReader};
use crate::translate::chat_upstream::{ChatUpstreamStream, responses_to_chat};
use crate::translate::messages_upstream::{MessagesUpstreamStream, responses_to_messages};
use crate::upstream::ByteStream;

/// The API a translated request goes out in: Responses when the provider speaks it (one hop),
/// else the first API it lists. `None` for a provider that lists none.
#[must_use]
pub(super) fn target_api(provider: &ProviderConfig) -> Option<Api> {
    let apis = provider.apis();
    if apis.contains(&Api::OpenaiResponses) {
        Some(Api::OpenaiResponses)
    } else {
        apis.first().copied()
    }
}

/// The path appended to the provider's `base_url` for an API.
#[must_use]
pub(super) fn upstream_path(api: Api) -> &'static str {
    match api {
        Api::OpenaiResponses => "responses",
        Api::OpenaiChat => "chat/completions",
        Api::AnthropicMessages => "messages",
    }
}

/// A Responses body (the pivot) as the body to send in `api`.
///
/// # Errors
///
/// A 400 when the request cannot be expressed in that API.
pub(super) fn upstream_body(responses_body: Value, api: Api) -> Result<Value, ApiError> {
    let translated = match api {
        Api::OpenaiResponses => return Ok(responses_body),
        Api::OpenaiChat => responses_to_chat(&responses_body),
        Api::AnthropicMessages => responses_to_messages(&responses_body),
    }
    .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRequest, e.to_string()))?;
    if !translated.dropped.is_empty() {
        tracing::debug!(api = api.as_str(), dropped = ?translated.dropped, "request parts the upstream API cannot carry were left out");
    }
    Ok(translated.body)
}

/// The stream translator for one upstream API.
enum Decoder {
    Chat(ChatUpstreamStream),
    Messages(MessagesUpstreamStream),
}

impl Decoder {
    fn on_event(&mut self, event: &SseEvent) -> Vec<SseEvent> {
        match self {
            Decoder::Chat(d) => d.on_event(event),
            Decoder::Messages(d) => d.on_event(event),
        }
    }

    fn finish(&mut self) -> Vec<SseEvent> {
        match self {
            Decoder::Chat(d) => d.finish(),
            Decoder::Messages(d) => d.finish(),
        }
    }
}

struct State {
    rest: ByteStream,
    reader: SseReader,
    decoder: Decoder,
    done: bool,
}

impl State {
    /// Translates the events completed by `chunk` (or, at the end, the last partial one and the
    /// decoder's final word) into Responses wire bytes.
    fn translate(&mut self, events: Vec<SseEvent>, end: bool) -> Option<Bytes> {
        let mut out = String::new();
        for event in events {
            for translated in self.decoder.on_event(&event) {
                out.push_str(&translated.to_wire());
            }
        }
        if end {
            for translated in self.decoder.finish() {
                out.push_str(&translated.to_wire());
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

/// An upstream body in `api` as a Responses event stream, translated event by event as it
/// arrives. Responses bodies pass as they are; a transport error passes through (and ends the
/// stream) so the consumer reports it as it would for any upstream.
#[must_use]
pub(super) fn as_responses(rest: ByteStream, api: Api) -> ByteStream {
    let decoder = match api {
        Api::OpenaiResponses => return rest,
        Api::OpenaiChat => Decoder::Chat(ChatUpstreamStream::new()),
        Api::AnthropicMessages => Decoder::Messages(MessagesUpstreamStream::new()),
    };
    let state = State {
        rest,
        reader: SseReader::new(),
        decoder,
        done: false,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if state.done {
                return None;
            }
            match state.rest.next().await {
                Some(Ok(chunk)) => {
                    let events = state.reader.events(&chunk);
                    if let Some(bytes) = state.translate(events, false) {
                        return Some((Ok(bytes), state));
                    }
                }
                Some(Err(e)) => {
                    state.done = true;
                    return Some((Err(e), state));
                }
                None => {
                    state.done = true;
                    let last: Vec<_> = state.reader.finish().into_iter().collect();
                    return state.translate(last, true).map(|bytes| (Ok(bytes), state));
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    async fn through(api: Api, wire: &str) -> String {
        // Split the body at an awkward place to check events are reassembled across chunks.
        let (a, b) = wire.split_at(wire.len() / 2);
        let frames: Vec<Result<Bytes, crate::upstream::TransportError>> =
            vec![Ok(Bytes::from(a.to_owned())), Ok(Bytes::from(b.to_owned()))];
        let out: Vec<_> = as_responses(stream::iter(frames).boxed(), api)
            .collect()
            .await;
        out.into_iter()
            .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_chat_stream_becomes_responses_events() {
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        let wire = format!(
            "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
            chunk(
                json!({"role": "assistant", "content": "hello"}),
                Value::Null
            ),
            chunk(json!({}), json!("stop")),
        );
        let text = through(Api::OpenaiChat, &wire).await;
        assert!(text.starts_with("event: response.created\n"), "{text}");
        assert!(text.contains("\"delta\":\"hello\""), "{text}");
        assert!(text.contains("event: response.completed\n"), "{text}");
    }

    #[tokio::test]
    async fn a_cut_messages_stream_has_no_terminal_event() {
        let wire = format!(
            "event: message_start\ndata: {}\n\nevent: content_block_start\ndata: {}\n\n",
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "c", "usage": {"input_tokens": 2, "output_tokens": 0}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        );
        let text = through(Api::AnthropicMessages, &wire).await;
        assert!(
            text.contains("event: response.output_item.added\n"),
            "{text}"
        );
        assert!(!text.contains("response.completed"), "{text}");
    }

    #[test]
    fn responses_is_preferred_as_the_target() {
        let config = crate::config::Config::parse(
            "providers:\n  a:\n    base_url: http://127.0.0.1:1/v1\n    api: [anthropic_messages, openai_responses]\n  b:\n    base_url: http://127.0.0.1:1/v1\n    api: [anthropic_messages, openai_chat]\n",
            &crate::env::Env::default(),
        )
        .unwrap();
        let api = |id: &str| target_api(config.provider(id).unwrap());
        assert_eq!(api("a"), Some(Api::OpenaiResponses));
        assert_eq!(api("b"), Some(Api::AnthropicMessages));
    }
}
