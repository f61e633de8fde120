//! Passing upstream bodies on. For the Codex backend: [`peek`] reads the stream's preamble
//! (`response.created`, `response.in_progress`, keepalives) until the first real event, so a
//! usage limit reported inside a 200 stream before any output can still fail over to another
//! account; then [`relay`] forwards each event as soon as it is complete (no buffering), byte
//! for byte except the `output: null` fixes SDKs need, counts tokens from
//! `response.completed`, and ends a broken or truncated stream with an SSE `error` event instead
//! of hanging. [`aggregate`] builds one JSON answer for clients that did
//! not ask to stream (with `translate::responses::Aggregator`).
//!
//! Dropping a relay stream drops the upstream response, which closes the upstream connection:
//! a client that goes away cancels the upstream request.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::stream;
use futures_util::{FutureExt, StreamExt};
use serde_json::Value;

use super::body::ClientStream;
use super::codex::{self, UsageLimit};
use super::error::{ApiError, ErrorCode, Flavor};
use super::patch::Patcher;
use super::record::LogCell;
use crate::history::Tokens;
use crate::sse::{Block, SseReader};
use crate::translate::responses::Aggregator;
use crate::upstream::ByteStream;

/// What the preamble of a Codex stream said.
pub enum Peek {
    /// Output started (or a failure that is not a usage limit): relay it.
    Committed(Committed),
    /// The account hit its usage limit before any output.
    UsageLimit(UsageLimit),
    /// The stream broke, ended, or failed with a server-side hiccup before any output: nothing
    /// reached the client, so it may be tried again.
    Broken(ApiError),
}

/// A stream whose first blocks were read during [`peek`].
pub struct Committed {
    blocks: Vec<Block>,
    reader: SseReader,
    rest: ByteStream,
    ended: bool,
}

impl Committed {
    /// The parts: blocks read during [`peek`], the reader holding any partial block, the rest of
    /// the upstream body, and whether it already ended.
    pub(super) fn into_parts(self) -> (Vec<Block>, SseReader, ByteStream, bool) {
        (self.blocks, self.reader, self.rest, self.ended)
    }
}

/// Events that do not commit to a stream.
fn is_preamble(kind: Option<&str>) -> bool {
    matches!(
        kind,
        None | Some("response.created" | "response.in_progress" | "response.queued" | "keepalive")
    )
}

/// The block's event type: its `event:` name, or (parsing the JSON only then) its data's
/// `type`; `None` for a block that holds no event.
fn kind_of(block: &Block) -> Option<std::borrow::Cow<'_, str>> {
    if let Some(name) = block.name() {
        return Some(std::borrow::Cow::Borrowed(name));
    }
    block.event()?.kind().map(std::borrow::Cow::Owned)
}

/// How long a finished stream's remainder (usually just the chunked-encoding terminator) may
/// take to arrive before its connection is given up.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads what is left of an upstream body after its final event, in the background, so the
/// connection goes back to the pool instead of being closed; the client's answer has already
/// ended and does not wait for it.
fn release(mut rest: ByteStream) {
    // Usually the body has already ended (its end came with the final event): nothing to wait
    // for.
    if let Some(None) = rest.next().now_or_never() {
        return;
    }
    tokio::spawn(async move {
        let drain = async { while let Some(Ok(_)) = rest.next().await {} };
        let _ = tokio::time::timeout(DRAIN_LIMIT, drain).await;
    });
}

/// Reads a Codex stream until its first non-preamble event.
pub async fn peek(mut stream: ByteStream, provider: &str) -> Peek {
    let mut reader = SseReader::new();
    let mut blocks = Vec::new();
    loop {
        let (new_blocks, ended) = match stream.next().await {
            Some(Ok(chunk)) => (reader.feed(&chunk), false),
            Some(Err(e)) => return Peek::Broken(ApiError::transport(provider, &e)),
            None => (reader.take_rest().into_iter().collect(), true),
        };
        let mut committed = reader.overflowed();
        for block in new_blocks.iter().filter(|b| b.is_event()) {
            if committed {
                break;
            }
            let kind = kind_of(block);
            if !is_preamble(kind.as_deref()) {
                if matches!(kind.as_deref(), Some("response.failed" | "error"))
                    && let Some(json) = block.event().and_then(|e| e.json())
                {
                    if let Some(limit) = codex::usage_limit_in_event(&json) {
                        return Peek::UsageLimit(limit);
                    }
                    if let Some(code) = codex::transient_failure_in_event(&json) {
                        return Peek::Broken(ApiError::bad_gateway(
                            ErrorCode::UpstreamFailed,
                            format!("{provider} failed before any output ({code})"),
                        ));
                    }
                }
                committed = true;
            }
        }
        // A stream that commits in its first read (the usual case) keeps that read's list as
        // it is: pushing its events one by one into a new list reallocated it twice.
        if blocks.is_empty() {
            blocks = new_blocks;
        } else {
            blocks.extend(new_blocks);
        }
        if committed {
            return Peek::Committed(Committed {
                blocks,
                reader,
                rest: stream,
                ended,
            });
        }
        if ended {
            return Peek::Broken(ApiError::bad_gateway(
                ErrorCode::StreamIncomplete,
                format!("{provider} closed the stream before any output"),
            ));
        }
    }
}

struct RelayState {
    queue: VecDeque<Bytes>,
    rest: ByteStream,
    reader: SseReader,
    patcher: Patcher,
    done: bool,
    provider: String,
}

impl RelayState {
    fn take(&mut self, blocks: Vec<Block>) -> Option<Bytes> {
        let parts: Vec<Bytes> = blocks
            .into_iter()
            .map(|b| self.patcher.process(b))
            .collect();
        match parts.len() {
            0 => None,
            1 => parts.into_iter().next(),
            _ => Some(Bytes::from(parts.concat())),
        }
    }

    /// After the final event: end the client's stream with it, in the same write as the body's
    /// terminator, rather than wait for the upstream's own end, which is drained elsewhere.
    fn finish_early(&mut self) {
        self.done = true;
        release(std::mem::replace(&mut self.rest, stream::empty().boxed()));
    }

    fn fail(&mut self, err: &ApiError) -> Bytes {
        self.done = true;
        let code = err.code.as_deref().map(str::to_owned);
        self.patcher.log.update(|f| f.error = code);
        Bytes::from(err.sse_event(Flavor::OpenAi))
    }

    fn end(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        if let Some(block) = self.reader.take_rest() {
            out.push(self.patcher.process(block));
        }
        if !self.patcher.terminal {
            let err = ApiError::bad_gateway(
                ErrorCode::StreamIncomplete,
                format!(
                    "{} closed the stream before response.completed",
                    self.provider
                ),
            );
            out.push(self.fail(&err));
        }
        self.done = true;
        (!out.is_empty()).then(|| Bytes::from(out.concat()))
    }
}

/// Forwards a committed Codex stream to a streaming client, event by event.
#[must_use]
pub fn relay(committed: Committed, provider: &str, log: LogCell) -> ClientStream {
    let mut state = RelayState {
        queue: VecDeque::new(),
        rest: committed.rest,
        reader: committed.reader,
        patcher: Patcher::new(log),
        done: false,
        provider: provider.to_owned(),
    };
    if let Some(first) = state.take(committed.blocks) {
        state.queue.push_back(first);
    }
    if committed.ended
        && let Some(last) = state.end()
    {
        state.queue.push_back(last);
    } else if state.patcher.finished {
        state.finish_early();
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
                    let bytes = state.take(blocks);
                    if state.patcher.finished {
                        state.finish_early();
                    }
                    if let Some(bytes) = bytes {
                        return Some((Ok(bytes), state));
                    }
                }
                Some(Err(e)) => {
                    let err = ApiError::stream_broke(&state.provider, &e);
                    let bytes = state.fail(&err);
                    return Some((Ok(bytes), state));
                }
                None => return state.end().map(|bytes| (Ok(bytes), state)),
            }
        }
    })
    .boxed()
}

/// Reads a committed Codex stream to its end and builds one response object.
///
/// # Errors
///
/// The backend's failure, a broken stream (502/504), or a stream without a terminal event.
pub async fn aggregate(
    committed: Committed,
    provider: &str,
    log: &LogCell,
) -> Result<Value, ApiError> {
    let mut aggregator = Aggregator::new();
    for event in committed.blocks.iter().filter_map(Block::event) {
        aggregator.on_sse(&event);
    }
    let mut reader = committed.reader;
    let mut rest = committed.rest;
    let mut ended = committed.ended;
    while !aggregator.is_done() && !ended {
        match rest.next().await {
            Some(Ok(chunk)) => {
                for event in reader.events(&chunk) {
                    aggregator.on_sse(&event);
                }
            }
            Some(Err(e)) => return Err(ApiError::transport(provider, &e)),
            None => {
                if let Some(event) = reader.finish() {
                    aggregator.on_sse(&event);
                }
                ended = true;
            }
        }
    }
    if !ended {
        release(rest);
    }
    let response = aggregator.finish().map_err(|e| ApiError::from(&e))?;
    if let Some(tokens) = response.get("usage").and_then(Tokens::from_usage) {
        log.update(|f| f.tokens = tokens);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn frames(events: &[Value]) -> Vec<Result<Bytes, crate::upstream::TransportError>> {
        events
            .iter()
            .map(|v| {
                Ok(Bytes::from(crate::sse::format_event(
                    v["type"].as_str(),
                    &v.to_string(),
                )))
            })
            .collect()
    }

    fn upstream(events: &[Value]) -> ByteStream {
        stream::iter(frames(events)).boxed()
    }

    async fn collect(s: ClientStream) -> String {
        let chunks: Vec<_> = s.collect().await;
        chunks
            .into_iter()
            .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn usage_limit_in_the_preamble_is_caught() {
        let s = upstream(&[
            json!({"type":"response.created","response":{"id":"r"}}),
            json!({"type":"response.failed","response":{"error":{"type":"usage_limit_reached","resets_at":99}}}),
        ]);
        match peek(s, "openai-codex").await {
            Peek::UsageLimit(limit) => assert_eq!(limit.resets_at, Some(99)),
            _ => panic!("expected a usage limit"),
        }
    }

    #[tokio::test]
    async fn a_server_failure_in_the_preamble_may_be_tried_again_and_a_request_failure_is_relayed()
    {
        let s = upstream(&[
            json!({"type":"response.created","response":{"id":"r"}}),
            json!({"type":"response.failed","response":{"error":{"code":"server_is_overloaded"}}}),
        ]);
        match peek(s, "openai-codex").await {
            Peek::Broken(e) => assert!(e.message.contains("server_is_overloaded"), "{}", e.message),
            _ => panic!("expected a retryable failure"),
        }
        // The client's own mistake is its answer: the stream commits and carries it.
        let s = upstream(&[
            json!({"type":"response.created","response":{"id":"r"}}),
            json!({"type":"response.failed","response":{"error":{"code":"context_length_exceeded"}}}),
        ]);
        assert!(matches!(peek(s, "openai-codex").await, Peek::Committed(_)));
    }

    #[tokio::test]
    async fn output_commits_and_everything_is_relayed() {
        let events = [
            json!({"type":"response.created","response":{"id":"r"}}),
            json!({"type":"response.output_text.delta","delta":"hi"}),
            json!({"type":"response.completed","response":{"id":"r","usage":{"input_tokens":5,"output_tokens":2}}}),
        ];
        let Peek::Committed(c) = peek(upstream(&events), "p").await else {
            panic!("expected a committed stream")
        };
        let log = LogCell::default();
        let text = collect(relay(c, "p", log.clone())).await;
        let expected: String = frames(&events)
            .into_iter()
            .map(|b| String::from_utf8(b.unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(text, expected);
        let mut seen = None;
        log.update(|f| seen = Some((f.tokens.input, f.tokens.output)));
        assert_eq!(seen, Some((Some(5), Some(2))));
    }

    #[tokio::test]
    async fn the_stream_ends_with_the_final_event_even_if_the_body_lingers() {
        let events = [
            json!({"type":"response.created","response":{"id":"r"}}),
            json!({"type":"response.output_text.delta","delta":"hi"}),
            json!({"type":"response.completed","response":{"id":"r"}}),
        ];
        // The body never ends after `response.completed` (its terminator has not arrived yet).
        let body = stream::iter(frames(&events))
            .chain(stream::pending())
            .boxed();
        let Peek::Committed(c) = peek(body, "p").await else {
            panic!("expected a committed stream")
        };
        let text = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            collect(relay(c, "p", LogCell::default())),
        )
        .await
        .expect("the relay ended at response.completed");
        assert!(text.ends_with("\n\n") && text.contains("response.completed"));
        assert!(!text.contains("stream_incomplete"));
    }

    #[tokio::test]
    async fn null_outputs_are_fixed_for_sdk_accumulators() {
        let events = [
            json!({"type":"response.created","response":{"id":"r","output":null}}),
            json!({"type":"response.output_item.done","output_index":0,"item":{"id":"m"}}),
            json!({"type":"response.completed","response":{"id":"r","output":[]}}),
        ];
        let mut chunks = frames(&events);
        chunks.insert(1, Ok(Bytes::from_static(b": keepalive\n\n")));
        let Peek::Committed(c) = peek(stream::iter(chunks).boxed(), "p").await else {
            panic!("expected a committed stream")
        };
        let text = collect(relay(c, "p", LogCell::default())).await;
        let mut reader = SseReader::new();
        let blocks = reader.feed(text.as_bytes());
        assert_eq!(blocks.len(), 4);
        assert_eq!(&blocks[1].raw()[..], b": keepalive\n\n");
        let data = |i: usize| blocks[i].event().unwrap().json().unwrap();
        assert_eq!(data(0)["response"]["output"], json!([]));
        assert_eq!(blocks[0].name(), Some("response.created"));
        assert_eq!(data(3)["response"]["output"], json!([{"id":"m"}]));
    }

    #[tokio::test]
    async fn a_truncated_stream_ends_with_an_error_event() {
        let events = [json!({"type":"response.output_text.delta","delta":"hi"})];
        let Peek::Committed(c) = peek(upstream(&events), "p").await else {
            panic!("expected a committed stream")
        };
        let text = collect(relay(c, "p", LogCell::default())).await;
        assert!(text.ends_with("\n\n"));
        assert!(text.contains("event: error\n"), "{text}");
        assert!(text.contains("stream_incomplete"));
    }

    #[tokio::test]
    async fn an_empty_stream_is_broken() {
        let s = upstream(&[json!({"type":"response.created"})]);
        assert!(matches!(peek(s, "p").await, Peek::Broken(_)));
    }

    #[tokio::test]
    async fn aggregation_reads_to_the_terminal_event() {
        let events = [
            json!({"type":"response.created","response":{"id":"r","output":null}}),
            json!({"type":"response.output_item.done","output_index":0,"item":{"type":"message","content":[{"type":"output_text","text":"hi"}]}}),
            json!({"type":"response.completed","response":{"id":"r","output":null,"usage":{"input_tokens":1,"output_tokens":1}}}),
        ];
        let Peek::Committed(c) = peek(upstream(&events), "p").await else {
            panic!("expected a committed stream")
        };
        let r = aggregate(c, "p", &LogCell::default()).await.unwrap();
        assert_eq!(r["output"][0]["content"][0]["text"], "hi");
    }
}
