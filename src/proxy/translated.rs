//! Answers for clients whose API the provider does not speak. The request is translated to a
//! Responses body, the pivot (see [`crate::translate`]): a Chat Completions or Messages request
//! by the client-side translators, shaped for the Codex backend or kept generic for any other
//! upstream ([`Backend`]); a Responses request as it is. [`super::pivot`] then turns that body
//! into the upstream's own API and the upstream's stream back into Responses events. Those are
//! translated back to the client's API event by event as they arrive (no buffering), relayed as
//! they are to a Responses client, or aggregated into one JSON answer for clients that did not
//! stream.

use std::borrow::Cow;
use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;

use super::answer::{Response, codex_answer, written_headers};
use super::body::{Body, ClientStream};
use super::error::{ApiError, ErrorCode};
use super::inbound::Inbound;
use super::outbound::Served;
use super::record::LogCell;
use super::relay::{self, Committed};
use super::state::Proxy;
use crate::config::Config;
use crate::history::Tokens;
use crate::ids::ProviderId;
use crate::jsonscan;
use crate::sse::{Block, SseEvent, SseReader, format_event};
use crate::translate::chat::{self, ChatRequest, ChatStream};
use crate::translate::messages::{self, MessagesRequest, MessagesStream};
use crate::translate::{Backend, TranslateError, UpstreamError};
use crate::upstream::ByteStream;

/// A client request translated to Responses, with what is needed to translate the answer back.
#[derive(Debug, Clone)]
pub enum Translation {
    /// A Chat Completions request.
    Chat(Box<ChatRequest>),
    /// An Anthropic Messages request, with the input token estimate for `message_start`.
    Messages(Box<MessagesRequest>, u64),
    /// A Responses request, for an upstream that speaks Chat Completions or Messages.
    Responses {
        /// The client's body.
        body: Box<Value>,
        /// Whether the client asked for a stream.
        stream: bool,
    },
}

impl Translation {
    /// Translates `json` for `inbound` to a Responses body for `backend`; `None` for the
    /// endpoints that have no translation (compaction, token counting). An owned `json` is
    /// translated in place of a copy.
    ///
    /// # Errors
    ///
    /// A malformed request (400 in the client's shape).
    pub fn new(
        inbound: Inbound,
        json: Cow<'_, Value>,
        backend: Backend,
    ) -> Result<Option<Self>, ApiError> {
        let translation = match inbound {
            Inbound::ChatCompletions => Translation::Chat(Box::new(
                chat::chat_to_responses_for(json.into_owned(), backend)
                    .map_err(|e| request_error(&e))?,
            )),
            Inbound::Messages => {
                let estimate = messages::input_estimate(&json);
                Translation::Messages(
                    Box::new(
                        messages::messages_to_responses_for(json.into_owned(), backend)
                            .map_err(|e| request_error(&e))?,
                    ),
                    estimate,
                )
            }
            Inbound::Responses => Translation::Responses {
                stream: json.get("stream").and_then(Value::as_bool) == Some(true),
                body: Box::new(json.into_owned()),
            },
            Inbound::Compact | Inbound::CountTokens => return Ok(None),
        };
        Ok(Some(translation))
    }

    /// The Responses body to send, with the target's model. It is taken, not copied: a
    /// translation is made for one step of the chain, which sends it once.
    #[must_use]
    pub fn take_body(&mut self, model: &str) -> Value {
        let body = match self {
            Translation::Chat(req) => &mut req.responses_body,
            Translation::Messages(req, _) => &mut req.responses_body,
            Translation::Responses { body, .. } => &mut **body,
        };
        let mut body = body.take();
        if let Value::Object(fields) = &mut body {
            fields.insert("model".into(), Value::String(model.to_owned()));
        }
        body
    }

    /// Whether the client asked for a stream.
    #[must_use]
    pub fn stream(&self) -> bool {
        match self {
            Translation::Chat(req) => req.stream,
            Translation::Messages(req, _) => req.stream,
            Translation::Responses { stream, .. } => *stream,
        }
    }
}

/// Fits a translated body's `reasoning.effort` to what the target model supports, from its
/// catalog entry (fetched first when the catalog has none yet): Anthropic's efforts and the
/// `none` that disabled thinking asks for may not all be levels this model has.
pub(super) async fn fit_effort(
    proxy: &Proxy,
    config: &Config,
    provider: &ProviderId,
    model: &str,
    body: &mut Value,
) {
    if body.pointer("/reasoning/effort").is_none() {
        return;
    }
    if proxy.catalogs.efforts(provider, model).is_none() {
        proxy.catalogs.refresh(config, proxy.sources(), None).await;
    }
    if let Some(levels) = proxy.catalogs.efforts(provider, model) {
        messages::thinking::fit_effort(body, &levels);
    }
}

/// A translation failure as a 400 for the client.
fn request_error(err: &TranslateError) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidRequest, err.to_string())
}

/// An [`ApiError`] (a broken upstream) as the translators' error type.
fn upstream_error(err: &ApiError) -> UpstreamError {
    UpstreamError {
        status: err.status.as_u16(),
        kind: err.kind.to_string(),
        code: err.code.as_deref().map(str::to_owned),
        message: err.message.clone(),
        param: None,
        resets_at: None,
        resets_in_seconds: None,
    }
}

/// The stream translator for one answer.
enum Translator {
    Chat(ChatStream),
    Messages(MessagesStream),
}

impl Translator {
    /// The translator back to the client's API; `None` for a Responses client, whose stream
    /// needs none.
    fn new(translation: &Translation) -> Option<Self> {
        Some(match translation {
            Translation::Chat(req) => Translator::Chat(ChatStream::new(
                req.model.clone(),
                req.include_usage,
                req.tool_names.clone(),
                req.stop.clone(),
            )),
            Translation::Messages(req, estimate) => Translator::Messages(
                MessagesStream::new(
                    req.model.clone(),
                    req.tool_names.clone(),
                    req.stop.clone(),
                    req.thinking,
                )
                .with_input_estimate(*estimate),
            ),
            Translation::Responses { .. } => return None,
        })
    }

    fn on_event(&mut self, event: &SseEvent) -> String {
        match self {
            Translator::Chat(s) => chat_wire(s.on_event(event)),
            Translator::Messages(s) => messages_wire(s.on_event(event)),
        }
    }

    fn finish(&mut self) -> String {
        match self {
            Translator::Chat(s) => chat_wire(s.finish()),
            Translator::Messages(s) => messages_wire(s.finish()),
        }
    }

    fn fail(&self, err: &ApiError) -> String {
        let err = upstream_error(err);
        match self {
            Translator::Chat(_) => format_event(None, &chat::chat_error_body(&err).to_string()),
            Translator::Messages(_) => format_event(
                Some("error"),
                &messages::messages_error_body(&err).to_string(),
            ),
        }
    }
}

fn chat_wire(payloads: Vec<String>) -> String {
    payloads.iter().map(|p| format_event(None, p)).collect()
}

fn messages_wire(events: Vec<SseEvent>) -> String {
    events.iter().map(SseEvent::to_wire).collect()
}

struct State {
    translator: Translator,
    queue: VecDeque<Bytes>,
    rest: ByteStream,
    reader: SseReader,
    done: bool,
    provider: String,
    log: LogCell,
}

impl State {
    /// Translates complete blocks; `None` when they produce nothing to send.
    fn take(&mut self, blocks: Vec<Block>) -> Option<Bytes> {
        let mut out = String::new();
        for block in blocks {
            let Some(event) = block.event() else { continue };
            note_usage(&self.log, &event.data);
            out.push_str(&self.translator.on_event(&event));
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// The end of the upstream body: any last block, then the translator's final word.
    fn end(&mut self) -> Option<Bytes> {
        let rest: Vec<Block> = self.reader.take_rest().into_iter().collect();
        let mut out = self.take(rest).map(|b| b.to_vec()).unwrap_or_default();
        let last = self.translator.finish();
        if !last.is_empty() {
            self.log
                .update(|f| f.error = Some(ErrorCode::StreamIncomplete.as_str().to_owned()));
        }
        out.extend_from_slice(last.as_bytes());
        self.done = true;
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

/// Records token usage from a terminal event's `response.usage` (read in place).
fn note_usage(log: &LogCell, data: &str) {
    if !log.is_enabled() || !data.contains("\"usage\"") {
        return;
    }
    let usage =
        jsonscan::field(data.as_bytes(), "response").and_then(|r| jsonscan::field(r, "usage"));
    if let Some(tokens) = usage.and_then(Tokens::from_usage_raw) {
        log.update(|f| f.tokens = tokens);
    }
}

/// A committed Responses stream translated back to the client's API event by event.
fn translate_stream(
    committed: Committed,
    translator: Translator,
    provider: &str,
    log: LogCell,
) -> ClientStream {
    let (blocks, reader, rest, ended) = committed.into_parts();
    let mut state = State {
        translator,
        queue: VecDeque::new(),
        rest,
        reader,
        done: false,
        provider: provider.to_owned(),
        log,
    };
    if let Some(first) = state.take(blocks) {
        state.queue.push_back(first);
    }
    if ended && let Some(last) = state.end() {
        state.queue.push_back(last);
    }
    stream::unfold(state, |mut state| async move {
        loop {
            if let Some(chunk) = state.queue.pop_front() {
                return Some((Ok(chunk), state));
            }
            if state.done {
                return None;
            }
            match state.rest.next().await {
                Some(Ok(chunk)) => {
                    let blocks = state.reader.feed(&chunk);
                    if let Some(bytes) = state.take(blocks) {
                        return Some((Ok(bytes), state));
                    }
                }
                Some(Err(e)) => {
                    let err = ApiError::stream_broke(&state.provider, &e);
                    state.done = true;
                    let code = err.code.as_deref().map(str::to_owned);
                    state.log.update(|f| f.error = code);
                    let bytes = Bytes::from(state.translator.fail(&err));
                    return Some((Ok(bytes), state));
                }
                None => return state.end().map(|bytes| (Ok(bytes), state)),
            }
        }
    })
    .boxed()
}

/// A committed Responses stream answered in the client's API: streamed, or aggregated to JSON.
///
/// # Errors
///
/// For non-streaming clients: the backend's failure or a broken stream.
pub(super) async fn translated_answer(
    committed: Committed,
    translation: &Translation,
    mut headers: HeaderMap,
    served: &Served,
    log: &LogCell,
) -> Result<Response, ApiError> {
    let Some(translator) = Translator::new(translation) else {
        // A Responses client: the pivot stream is its own API.
        return codex_answer(committed, headers, translation.stream(), served, log).await;
    };
    written_headers(&mut headers, served, translation.stream());
    let provider = served.provider.as_str();
    if translation.stream() {
        let body = translate_stream(committed, translator, provider, log.clone());
        let mut response = Response::new(Body::stream(body));
        *response.headers_mut() = headers;
        return Ok(response);
    }
    let value = relay::aggregate(committed, provider, log).await?;
    let answer = match translation {
        Translation::Chat(req) => {
            chat::chat_completion_from_response(&value, &req.model, &req.tool_names, &req.stop)
        }
        Translation::Messages(req, _) => messages::message_from_response(
            &value,
            &req.model,
            &req.tool_names,
            &req.stop,
            req.thinking,
        ),
        Translation::Responses { .. } => value,
    };
    let mut response = Response::new(Body::full(answer.to_string()));
    *response.status_mut() = StatusCode::OK;
    *response.headers_mut() = headers;
    Ok(response)
}

/// The `/v1/messages/count_tokens` answer for a provider that does not count tokens itself:
/// the request translated and counted with the `o200k_base` tokenizer, on a blocking thread
/// (the vocabulary loads on first use, and a long request takes milliseconds to count).
///
/// # Errors
///
/// A request that cannot be translated (400, as `/v1/messages` would answer).
pub(super) async fn count_tokens(json: &Value) -> Result<Response, ApiError> {
    let body = json.clone();
    let counted = tokio::task::spawn_blocking(move || messages::count_tokens_body(&body))
        .await
        .map_err(|e| {
            ApiError::bad_gateway(
                ErrorCode::CountFailed,
                format!("counting tokens failed: {e}"),
            )
        })?;
    let answer = counted.map_err(|e| request_error(&e))?;
    let mut response = Response::new(Body::full(answer.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use futures_util::stream;
    use serde_json::json;

    use super::*;
    use crate::proxy::relay::{Peek, peek};

    fn upstream(events: &[Value]) -> ByteStream {
        let frames: Vec<Result<Bytes, crate::upstream::TransportError>> = events
            .iter()
            .map(|v| {
                Ok(Bytes::from(format_event(
                    v["type"].as_str(),
                    &v.to_string(),
                )))
            })
            .collect();
        stream::iter(frames).boxed()
    }

    async fn translated(inbound: Inbound, request: Value, events: &[Value]) -> String {
        let translation = Translation::new(inbound, Cow::Owned(request), Backend::Codex)
            .unwrap()
            .unwrap();
        let Peek::Committed(c) = peek(upstream(events), "p").await else {
            panic!("expected a committed stream")
        };
        let translator = Translator::new(&translation).unwrap();
        let chunks: Vec<_> = translate_stream(c, translator, "p", LogCell::default())
            .collect()
            .await;
        chunks
            .into_iter()
            .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_cut_chat_stream_ends_with_an_error_payload() {
        let text = translated(
            Inbound::ChatCompletions,
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            &[
                json!({"type": "response.created", "response": {"id": "resp_1"}}),
                json!({"type": "response.output_text.delta", "item_id": "m1", "output_index": 0, "delta": "hel"}),
            ],
        )
        .await;
        assert!(text.contains("\"content\":\"hel\""), "{text}");
        assert!(text.contains("stream_incomplete"), "{text}");
        assert!(!text.contains("[DONE]"), "{text}");
    }

    #[tokio::test]
    async fn a_messages_stream_is_translated_to_anthropic_events() {
        let text = translated(
            Inbound::Messages,
            json!({"model": "m", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            &[
                json!({"type": "response.created", "response": {"id": "resp_1"}}),
                json!({"type": "response.output_item.added", "output_index": 0, "item": {"id": "m1", "type": "message", "role": "assistant", "content": []}}),
                json!({"type": "response.output_text.delta", "item_id": "m1", "output_index": 0, "content_index": 0, "delta": "hello"}),
                json!({"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "output": [], "usage": {"input_tokens": 3, "output_tokens": 1}}}),
            ],
        )
        .await;
        for needle in [
            "event: message_start\n",
            "event: content_block_delta\n",
            "hello",
            "event: message_delta\n",
            "event: message_stop\n",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
        assert!(!text.contains("event: error"), "{text}");
    }

    #[test]
    fn a_malformed_request_is_a_400() {
        let err = Translation::new(
            Inbound::Messages,
            Cow::Owned(json!({"model": "m"})),
            Backend::Codex,
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        for inbound in [Inbound::Compact, Inbound::CountTokens] {
            assert!(
                Translation::new(inbound, Cow::Owned(json!({})), Backend::Generic)
                    .unwrap()
                    .is_none()
            );
        }
    }
}
