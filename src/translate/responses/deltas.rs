//! The stream's delta events read in place. Text, refusal, reasoning summary and function
//! argument deltas are nearly every event of an answer, and a translator needs four of their
//! members: reading those from the event's bytes instead of building a JSON tree of the whole
//! event is most of what translating an answer costs.
//!
//! The reading agrees with the tree's: the same members, the same defaults for a missing or
//! mistyped one. What the scanner cannot vouch for goes the tree's way (`None` here): an event
//! whose `type` is absent or not a delta, a repeated member, a string whose escapes do not
//! decode, an object that does not end where the data does. Numbers and literals in members not
//! read here are not validated, as the scanner does not validate them.

use std::borrow::Cow;
use std::ops::Range;

use super::{ItemRef, ResponsesEvent};
use crate::jsonscan;

/// The members read, in this order.
const MEMBERS: [&str; 5] = ["type", "item_id", "output_index", "delta", "summary_index"];

/// A delta event read from `data` (an event's JSON); `None` when it is not one, or when the
/// JSON tree must decide (see the module documentation).
pub(super) fn read(data: &str) -> Option<ResponsesEvent> {
    let bytes = data.as_bytes();
    let mut entries = jsonscan::entries(bytes)?;
    let mut found: [Option<Range<usize>>; 5] = Default::default();
    for entry in &mut entries {
        let (key, range) = entry.ok()?;
        let key = jsonscan::key_bytes(key)?;
        if let Some(i) = MEMBERS.iter().position(|m| *key == *m.as_bytes()) {
            if found[i].is_some() {
                return None;
            }
            found[i] = Some(range);
        }
    }
    let end = entries.end()?;
    if jsonscan::skip_space(bytes, end) != bytes.len() {
        return None;
    }
    let [kind, item_id, output_index, delta, summary_index] = found.map(|r| r.map(|r| &bytes[r]));
    let kind = jsonscan::string(kind?)?;
    let at = ItemRef {
        item_id: text(item_id)?.map(Cow::into_owned),
        output_index: output_index.and_then(jsonscan::unsigned),
    };
    let delta = text(delta)?.map(Cow::into_owned).unwrap_or_default();
    Some(match kind.as_ref() {
        "response.output_text.delta" => ResponsesEvent::TextDelta { at, delta },
        "response.refusal.delta" => ResponsesEvent::RefusalDelta { at, delta },
        "response.reasoning_summary_text.delta" => ResponsesEvent::ReasoningSummaryDelta {
            at,
            summary_index: summary_index.and_then(jsonscan::unsigned).unwrap_or(0),
            delta,
        },
        "response.function_call_arguments.delta" => ResponsesEvent::ArgumentsDelta { at, delta },
        _ => return None,
    })
}

/// A member that is a string, as text (`Some(None)` when it is missing or another type, as a
/// tree's `as_str` reads it); `None` when it is a string that does not decode.
fn text(raw: Option<&[u8]>) -> Option<Option<Cow<'_, str>>> {
    match raw {
        Some(raw) if raw.first() == Some(&b'"') => jsonscan::string(raw).map(Some),
        _ => Some(None),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;

    /// The event as the JSON tree reads it.
    fn by_tree(data: &str) -> ResponsesEvent {
        let value: Value = serde_json::from_str(data).unwrap();
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        ResponsesEvent::from_json(&kind, value)
    }

    #[test]
    fn the_backends_deltas_are_read_in_place_as_the_tree_reads_them() {
        let events = [
            r#"{"type":"response.output_text.delta","sequence_number":7,"item_id":"msg_1","output_index":0,"content_index":0,"delta":" a \"quoted\" word\n","logprobs":[],"obfuscation":"Xq3"}"#,
            r#"{"type":"response.refusal.delta","item_id":"msg_1","output_index":1,"delta":"no"}"#,
            r#"{"type":"response.reasoning_summary_text.delta","item_id":"rs_1","output_index":0,"summary_index":2,"delta":"**Plan**"}"#,
            r#"{"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":3,"delta":"{\"path\":"}"#,
            r#" { "delta" : "\u00e9" , "type" : "response.output_text.delta" } "#,
        ];
        for data in events {
            assert_eq!(read(data), Some(by_tree(data)), "{data}");
        }
    }

    #[test]
    fn what_the_scanner_cannot_vouch_for_goes_the_trees_way() {
        for data in [
            r#"{"item_id":"m","delta":"x"}"#,
            r#"{"type":"response.output_text.done","text":"x"}"#,
            r#"{"type":"response.created","response":{}}"#,
            r#"{"type":5,"delta":"x"}"#,
            r#"{"type":"response.output_text.delta","delta":"a","delta":"b"}"#,
            r#"{"type":"response.output_text.delta","delta":"bad \u12"}"#,
            r#"{"type":"response.output_text.delta","delta":"x"} trailing"#,
            r#"{"type":"response.output_text.delta","delta":"x""#,
            "not json",
        ] {
            assert_eq!(read(data), None, "{data}");
        }
    }

    fn member() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            any::<String>().prop_map(|s| Some(json!(s))),
            "[a-z_]{0,8}".prop_map(|s| Some(json!(s))),
            any::<u64>().prop_map(|n| Some(json!(n))),
            any::<i64>().prop_map(|n| Some(json!(n))),
            Just(Some(json!(1.5))),
            Just(Some(Value::Null)),
            Just(Some(json!({"nested": ["x", 1]}))),
        ]
    }

    fn kind() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(Some(json!("response.output_text.delta"))),
            Just(Some(json!("response.refusal.delta"))),
            Just(Some(json!("response.reasoning_summary_text.delta"))),
            Just(Some(json!("response.function_call_arguments.delta"))),
            Just(Some(json!("response.output_item.done"))),
            member(),
        ]
    }

    proptest! {
        #[test]
        fn whatever_is_read_in_place_reads_as_the_tree_reads_it(
            kind in kind(),
            item_id in member(),
            output_index in member(),
            delta in member(),
            summary_index in member(),
            extra in member(),
            pretty in any::<bool>(),
        ) {
            let mut object = Map::new();
            for (key, value) in [
                ("type", kind),
                ("item_id", item_id),
                ("output_index", output_index),
                ("delta", delta),
                ("summary_index", summary_index),
                ("obfuscation", extra),
            ] {
                if let Some(value) = value {
                    object.insert(key.to_owned(), value);
                }
            }
            let value = Value::Object(object);
            let data = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                value.to_string()
            };
            if let Some(fast) = read(&data) {
                prop_assert_eq!(fast, by_tree(&data));
            }
        }
    }
}
