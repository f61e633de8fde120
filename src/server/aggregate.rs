//! One JSON response assembled from a Responses stream, for clients that asked for
//! `stream: false` (the backend only streams, spec §8.3): the `response` of the terminal event,
//! with `output` rebuilt from the `response.output_item.done` items when the backend left it
//! empty or null (spec §7.1 quirk, §8.5 item 11).
//!
//! Overlaps `translate::responses::Aggregator`; the integrator may replace this with it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::codex;
use super::error::ApiError;
use super::sse::SseEvent;

/// Collects events until a terminal one.
#[derive(Debug, Default)]
pub struct Aggregator {
    items: BTreeMap<(u64, u64), Value>,
    unindexed: u64,
    outcome: Option<Result<Value, ApiError>>,
}

impl Aggregator {
    /// An empty aggregator.
    #[must_use]
    pub fn new() -> Self {
        Aggregator::default()
    }

    /// Whether a terminal or failure event has arrived.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.outcome.is_some()
    }

    /// Takes one event.
    pub fn push(&mut self, event: &SseEvent) {
        if self.outcome.is_some() {
            return;
        }
        let Some(data) = event.json() else { return };
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| event.event.clone())
            .unwrap_or_default();
        match kind.as_str() {
            "response.output_item.done" => {
                let Some(item) = data.get("item").cloned() else {
                    return;
                };
                let key = match data.get("output_index").and_then(Value::as_u64) {
                    Some(i) => (i, 0),
                    None => {
                        self.unindexed += 1;
                        (u64::MAX, self.unindexed)
                    }
                };
                self.items.insert(key, item);
            }
            "response.completed" | "response.incomplete" | "response.done" => {
                let response = data.get("response").cloned().unwrap_or(Value::Null);
                self.outcome = Some(Ok(self.with_output(response)));
            }
            "response.failed" | "error" => {
                self.outcome = Some(Err(codex::stream_failure(&data)));
            }
            _ => {}
        }
    }

    /// The response object, or the failure.
    ///
    /// # Errors
    ///
    /// The backend's failure, or a 502 when the stream ended without a terminal event.
    pub fn finish(self) -> Result<Value, ApiError> {
        self.outcome.unwrap_or_else(|| {
            Err(ApiError::bad_gateway(
                "stream_incomplete",
                "upstream stream ended before response.completed",
            ))
        })
    }

    fn with_output(&self, mut response: Value) -> Value {
        let empty = match response.get("output") {
            None | Some(Value::Null) => true,
            Some(Value::Array(items)) => items.is_empty(),
            Some(_) => false,
        };
        if empty && let Value::Object(fields) = &mut response {
            fields.insert(
                "output".to_owned(),
                Value::Array(self.items.values().cloned().collect()),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ev(v: &Value) -> SseEvent {
        SseEvent {
            event: v["type"].as_str().map(str::to_owned),
            data: v.to_string(),
        }
    }

    #[test]
    fn output_is_rebuilt_from_done_items() {
        let mut a = Aggregator::new();
        for v in [
            json!({"type":"response.created","response":{"id":"r1","output":null}}),
            json!({"type":"response.output_item.done","output_index":1,"item":{"id":"b"}}),
            json!({"type":"response.output_item.done","output_index":0,"item":{"id":"a"}}),
            json!({"type":"response.completed","response":{"id":"r1","output":[],"usage":{"output_tokens":3}}}),
        ] {
            a.push(&ev(&v));
        }
        assert!(a.is_done());
        let r = a.finish().unwrap();
        assert_eq!(r["output"], json!([{"id":"a"},{"id":"b"}]));
        assert_eq!(r["usage"]["output_tokens"], 3);
    }

    #[test]
    fn a_full_output_is_kept() {
        let mut a = Aggregator::new();
        a.push(&ev(
            &json!({"type":"response.output_item.done","output_index":0,"item":{"id":"x"}}),
        ));
        a.push(&ev(
            &json!({"type":"response.completed","response":{"output":[{"id":"y"}]}}),
        ));
        assert_eq!(a.finish().unwrap()["output"], json!([{"id":"y"}]));
    }

    #[test]
    fn failures_and_truncation_are_errors() {
        let mut a = Aggregator::new();
        a.push(&ev(&json!({"type":"response.failed","response":{"error":{"code":"usage_limit_reached","message":"limit"}}})));
        assert_eq!(a.finish().unwrap_err().status, 429);
        let a = Aggregator::new();
        assert_eq!(a.finish().unwrap_err().status, 502);
    }
}
