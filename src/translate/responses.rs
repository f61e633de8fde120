//! The Responses API on both sides of the Codex backend: shaping a client's request body to the
//! backend's rules (spec §6.3), reading the backend's stream events (spec §7.1), and aggregating
//! a stream into one response object for clients that did not ask to stream (spec §8.3).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::sse::SseEvent;
use super::{TranslateError, UpstreamError, input_message, input_text};

mod deltas;
mod raw;

pub use raw::{RawShaped, shape_for_codex_raw};

/// Top-level fields the backend refuses or cannot honour with `store: false` (spec §6.3).
/// `truncation` is kept: the spec lists it among the fields LiteLLM's allow-list forwards.
const STRIPPED_FIELDS: &[&str] = &[
    "max_output_tokens",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "previous_response_id",
    "prompt_cache_retention",
    "safety_identifier",
    "stream_options",
    "generate",
    "metadata",
    "user",
];

/// The `include` entry that carries reasoning across turns when nothing is stored.
pub const ENCRYPTED_REASONING: &str = "reasoning.encrypted_content";

/// A request body ready for the Codex backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Shaped {
    /// The body to send upstream.
    pub body: Value,
    /// Whether the client asked for a stream (`"stream": true`); if not, aggregate the answer.
    pub client_stream: bool,
    /// What was removed, for logs: field names, and `input[i].id` / `input[i]` entries.
    pub dropped: Vec<String>,
}

/// Shapes a client's Responses request body for the Codex backend.
///
/// Forces `stream: true` and `store: false`; makes `instructions` a string (`""` when absent);
/// turns a string `input` into one user message; strips the fields in the spec's "rejected"
/// table and every input item's `id`; drops `item_reference` items; turns a tool output whose
/// call is not in the input into a user message; adds `reasoning.encrypted_content` to
/// `include` when `reasoning` is set.
///
/// # Errors
///
/// When the body is not an object, `input` is missing or neither a string nor a list, an input
/// item is not an object, or `instructions` is neither a string nor null.
pub fn shape_for_codex(body: Value) -> Result<Shaped, TranslateError> {
    let Value::Object(mut body) = body else {
        return Err(TranslateError::NotAnObject);
    };
    let client_stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    let mut dropped = Vec::new();
    for field in STRIPPED_FIELDS {
        if body.remove(*field).is_some() {
            dropped.push((*field).to_owned());
        }
    }
    body.insert("stream".to_owned(), Value::Bool(true));
    body.insert("store".to_owned(), Value::Bool(false));
    shape_instructions(&mut body)?;
    let input = body
        .remove("input")
        .ok_or_else(|| TranslateError::Missing("input".to_owned()))?;
    let input = shape_input(input, &mut dropped)?;
    body.insert("input".to_owned(), Value::Array(input));
    if body.get("reasoning").is_some_and(|r| !r.is_null()) {
        ensure_encrypted_reasoning(&mut body)?;
    }
    Ok(Shaped {
        body: Value::Object(body),
        client_stream,
        dropped,
    })
}

/// Makes `instructions` a string, `""` when absent or null.
fn shape_instructions(body: &mut Map<String, Value>) -> Result<(), TranslateError> {
    match body.get("instructions") {
        None | Some(Value::Null) => {
            body.insert("instructions".to_owned(), Value::String(String::new()));
            Ok(())
        }
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err(TranslateError::invalid("instructions", "must be a string")),
    }
}

/// Turns `input` into the list the backend accepts.
fn shape_input(input: Value, dropped: &mut Vec<String>) -> Result<Vec<Value>, TranslateError> {
    let items = match input {
        Value::String(text) => return Ok(vec![input_message("user", vec![input_text(&text)])]),
        Value::Array(items) => items,
        _ => {
            return Err(TranslateError::invalid(
                "input",
                "must be a string or a list of items",
            ));
        }
    };
    let call_ids = call_ids(&items);
    let mut shaped = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(mut item) = item else {
            return Err(TranslateError::invalid(
                format!("input[{i}]"),
                "must be an object",
            ));
        };
        if item.get("type").and_then(Value::as_str) == Some("item_reference") {
            dropped.push(format!("input[{i}] (item_reference)"));
            continue;
        }
        if item.remove("id").is_some() {
            dropped.push(format!("input[{i}].id"));
        }
        strip_sdk_fields(&mut item, i, dropped);
        if is_orphaned_output(&item, &call_ids) {
            dropped.push(format!(
                "input[{i}] (tool output without its call, sent as a message)"
            ));
            shaped.push(orphan_to_message(&item));
            continue;
        }
        shaped.push(Value::Object(item));
    }
    Ok(shaped)
}

/// Fields the OpenAI SDKs' parsing helpers add to output items, which the API never defined
/// and refuses ("Unknown parameter"): an answer's `output` passed back as the next request's
/// input carries them, e.g. from the Node SDK's `responses.stream(...).finalResponse()`.
const SDK_ITEM_FIELDS: &[(&str, &str)] = &[("function_call", "parsed_arguments")];
/// The same for content parts of assistant messages (`output_text.parsed`, structured output).
const SDK_PART_FIELDS: &[(&str, &str)] = &[("output_text", "parsed")];

/// Removes [`SDK_ITEM_FIELDS`] and [`SDK_PART_FIELDS`] from input item `i`.
fn strip_sdk_fields(item: &mut Map<String, Value>, i: usize, dropped: &mut Vec<String>) {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    for (_, field) in SDK_ITEM_FIELDS.iter().filter(|(k, _)| *k == kind) {
        if item.remove(*field).is_some() {
            dropped.push(format!("input[{i}].{field}"));
        }
    }
    let Some(Value::Array(parts)) = item.get_mut("content") else {
        return;
    };
    for (j, part) in parts.iter_mut().enumerate() {
        let Value::Object(part) = part else { continue };
        let kind = part
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        for (_, field) in SDK_PART_FIELDS.iter().filter(|(k, _)| *k == kind) {
            if part.remove(*field).is_some() {
                dropped.push(format!("input[{i}].content[{j}].{field}"));
            }
        }
    }
}

/// The `call_id`s of every tool call in the input (`function_call`, `custom_tool_call`, …).
fn call_ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .filter(|item| {
            item.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("_call"))
        })
        .filter_map(|item| item.get("call_id").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Whether an item is a tool output (`*_call_output`) whose call is not in the input; the
/// backend refuses those (spec §8.5 item 7).
fn is_orphaned_output(item: &Map<String, Value>, call_ids: &BTreeSet<String>) -> bool {
    let is_output = item
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("_call_output"));
    let call_id = item.get("call_id").and_then(Value::as_str).unwrap_or("");
    is_output && !call_ids.contains(call_id)
}

/// A user message carrying an orphaned tool output: its text, or its content parts when the
/// output is a list of parts (`input_text`, `input_image`, …).
fn orphan_to_message(item: &Map<String, Value>) -> Value {
    let content = match item.get("output") {
        Some(Value::String(text)) => vec![input_text(text)],
        Some(Value::Array(parts)) => parts.clone(),
        Some(other) if !other.is_null() => vec![input_text(&other.to_string())],
        _ => vec![input_text("")],
    };
    input_message("user", content)
}

/// Adds `reasoning.encrypted_content` to `include` unless it is there.
fn ensure_encrypted_reasoning(body: &mut Map<String, Value>) -> Result<(), TranslateError> {
    let include = body
        .entry("include")
        .or_insert_with(|| Value::Array(Vec::new()));
    if include.is_null() {
        *include = Value::Array(Vec::new());
    }
    let Value::Array(list) = include else {
        return Err(TranslateError::invalid("include", "must be a list"));
    };
    if !list.iter().any(|v| v.as_str() == Some(ENCRYPTED_REASONING)) {
        list.push(Value::String(ENCRYPTED_REASONING.to_owned()));
    }
    Ok(())
}

/// Where a stream event belongs: the output item's id and position, as far as the event says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemRef {
    /// `item_id`, or the item's own `id`.
    pub item_id: Option<String>,
    /// `output_index`.
    pub output_index: Option<u64>,
}

/// One backend stream event, reduced to what the translators use.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponsesEvent {
    /// `response.created`: the response skeleton (`id`, `created_at`, `model`).
    Created(Value),
    /// `response.output_item.added`.
    ItemAdded {
        /// Position of the item.
        at: ItemRef,
        /// The item as announced (for a `function_call`: `call_id`, `name`).
        item: Value,
    },
    /// `response.output_item.done`: the finished item.
    ItemDone {
        /// Position of the item.
        at: ItemRef,
        /// The finished item.
        item: Value,
    },
    /// `response.output_text.delta`.
    TextDelta {
        /// The message item.
        at: ItemRef,
        /// The text fragment.
        delta: String,
    },
    /// `response.refusal.delta`.
    RefusalDelta {
        /// The message item.
        at: ItemRef,
        /// The refusal fragment.
        delta: String,
    },
    /// `response.reasoning_summary_text.delta`.
    ReasoningSummaryDelta {
        /// The reasoning item.
        at: ItemRef,
        /// Which summary part.
        summary_index: u64,
        /// The summary fragment.
        delta: String,
    },
    /// `response.function_call_arguments.delta`.
    ArgumentsDelta {
        /// The function-call item.
        at: ItemRef,
        /// The arguments fragment.
        delta: String,
    },
    /// `response.completed` or `response.incomplete`: the final response object.
    Terminal(Value),
    /// `response.failed` or `error`: the classified failure.
    Failed(UpstreamError),
    /// Any other event (lifecycle, `.done` events, keepalives, unknown types).
    Other,
}

impl ResponsesEvent {
    /// Reads one backend event. The JSON `type` decides (the `event:` name when it is absent);
    /// data that is not JSON is [`ResponsesEvent::Other`].
    #[must_use]
    pub fn parse(event: &SseEvent) -> Self {
        if let Some(delta) = deltas::read(&event.data) {
            return delta;
        }
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            tracing::debug!(event = ?event.event, "ignoring an upstream event whose data is not json");
            return ResponsesEvent::Other;
        };
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("")
            .to_owned();
        Self::from_json(&kind, data)
    }

    /// Builds the event from its type and parsed data.
    fn from_json(kind: &str, data: Value) -> Self {
        let text = |key: &str| {
            data.get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let at = item_ref(&data);
        match kind {
            "response.created" => ResponsesEvent::Created(response_of(&data)),
            "response.output_item.added" | "response.output_item.done" => {
                let item = data.get("item").cloned().unwrap_or(Value::Null);
                let at = ItemRef {
                    item_id: at.item_id.or_else(|| string_field(&item, "id")),
                    ..at
                };
                if kind.ends_with("added") {
                    ResponsesEvent::ItemAdded { at, item }
                } else {
                    ResponsesEvent::ItemDone { at, item }
                }
            }
            "response.output_text.delta" => ResponsesEvent::TextDelta {
                at,
                delta: text("delta"),
            },
            "response.refusal.delta" => ResponsesEvent::RefusalDelta {
                at,
                delta: text("delta"),
            },
            "response.reasoning_summary_text.delta" => ResponsesEvent::ReasoningSummaryDelta {
                summary_index: data
                    .get("summary_index")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                at,
                delta: text("delta"),
            },
            "response.function_call_arguments.delta" => ResponsesEvent::ArgumentsDelta {
                at,
                delta: text("delta"),
            },
            "response.completed" | "response.incomplete" => {
                ResponsesEvent::Terminal(response_of(&data))
            }
            "response.failed" => {
                let error = data
                    .pointer("/response/error")
                    .cloned()
                    .unwrap_or(Value::Null);
                ResponsesEvent::Failed(UpstreamError::from_error_object(&error))
            }
            "error" => {
                let error = data.get("error").filter(|e| e.is_object()).unwrap_or(&data);
                ResponsesEvent::Failed(UpstreamError::from_error_object(error))
            }
            _ => ResponsesEvent::Other,
        }
    }
}

/// The `response` member of an event, or null.
fn response_of(data: &Value) -> Value {
    data.get("response").cloned().unwrap_or(Value::Null)
}

/// A string member of a JSON value.
fn string_field(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The `item_id` and `output_index` of an event.
fn item_ref(data: &Value) -> ItemRef {
    ItemRef {
        item_id: string_field(data, "item_id"),
        output_index: data.get("output_index").and_then(Value::as_u64),
    }
}

/// Collects a backend stream into the final response object, for clients that did not ask to
/// stream.
///
/// The result is the `response` of `response.completed` / `response.incomplete`, with `output`
/// rebuilt from the `response.output_item.done` items (ordered by `output_index`) when the
/// backend sent it empty or null (spec §7.1 quirk, §8.5 item 11). Events after the first
/// terminal or failure event are ignored.
#[derive(Debug, Clone, Default)]
pub struct Aggregator {
    /// Finished items by `output_index` (items without one go after the indexed ones).
    items: BTreeMap<(u64, u64), Value>,
    /// Items seen without an `output_index`, to keep their order.
    unindexed: u64,
    /// The outcome, once a terminal or failure event arrived.
    outcome: Option<Result<Value, UpstreamError>>,
}

impl Aggregator {
    /// An empty aggregator.
    #[must_use]
    pub fn new() -> Self {
        Aggregator::default()
    }

    /// Takes one raw stream event.
    pub fn on_sse(&mut self, event: &SseEvent) {
        self.on_event(ResponsesEvent::parse(event));
    }

    /// Takes one parsed stream event.
    pub fn on_event(&mut self, event: ResponsesEvent) {
        if self.outcome.is_some() {
            return;
        }
        match event {
            ResponsesEvent::ItemDone { at, item } => {
                let key = match at.output_index {
                    Some(index) => (index, 0),
                    None => {
                        self.unindexed += 1;
                        (u64::MAX, self.unindexed)
                    }
                };
                self.items.insert(key, item);
            }
            ResponsesEvent::Terminal(response) => {
                self.outcome = Some(Ok(self.with_output(response)));
            }
            ResponsesEvent::Failed(error) => self.outcome = Some(Err(error)),
            ResponsesEvent::Created(_)
            | ResponsesEvent::ItemAdded { .. }
            | ResponsesEvent::TextDelta { .. }
            | ResponsesEvent::RefusalDelta { .. }
            | ResponsesEvent::ReasoningSummaryDelta { .. }
            | ResponsesEvent::ArgumentsDelta { .. }
            | ResponsesEvent::Other => {}
        }
    }

    /// Whether a terminal or failure event has arrived (the rest of the stream can be skipped).
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.outcome.is_some()
    }

    /// The final response object.
    ///
    /// # Errors
    ///
    /// The backend's failure, or [`UpstreamError::stream_incomplete`] when the stream ended
    /// without a terminal event.
    #[expect(
        clippy::result_large_err,
        reason = "returned once per request; a box would only add an allocation"
    )]
    pub fn finish(self) -> Result<Value, UpstreamError> {
        match self.outcome {
            Some(outcome) => outcome,
            None => Err(UpstreamError::stream_incomplete()),
        }
    }

    /// `response` with `output` rebuilt from the finished items when it is empty or null.
    fn with_output(&self, mut response: Value) -> Value {
        let empty = match response.get("output") {
            None | Some(Value::Null) => true,
            Some(Value::Array(items)) => items.is_empty(),
            Some(_) => false,
        };
        if empty && let Value::Object(fields) = &mut response {
            let items: Vec<Value> = self.items.values().cloned().collect();
            fields.insert("output".to_owned(), Value::Array(items));
        }
        response
    }
}

/// Aggregates a whole list of events (a convenience for tests and buffered bodies).
///
/// # Errors
///
/// As [`Aggregator::finish`].
#[expect(
    clippy::result_large_err,
    reason = "returned once per request; a box would only add an allocation"
)]
pub fn aggregate<'a>(
    events: impl IntoIterator<Item = &'a SseEvent>,
) -> Result<Value, UpstreamError> {
    let mut aggregator = Aggregator::new();
    for event in events {
        aggregator.on_sse(event);
    }
    aggregator.finish()
}

#[cfg(test)]
mod tests;
