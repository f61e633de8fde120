//! [`super::shape_for_codex`] without building a JSON tree, for the request most clients send:
//! the body is read in place (its top-level values as raw text, each input item only probed for
//! `type`, `id` and `call_id`) and written out with the values it keeps copied as they came.
//! Whenever the body needs more than that (an input item with an `id`, an `item_reference`, a
//! tool output without its call, an `instructions` or `include` that is not as expected, a
//! repeated key) the fast path declines and the tree-building shaping runs, so both always
//! agree; the tests check that on every kind of body.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{ENCRYPTED_REASONING, STRIPPED_FIELDS};
use crate::translate::{input_message, input_text};

/// A body shaped in place.
#[derive(Debug, Clone, PartialEq)]
pub struct RawShaped {
    /// The body to send upstream.
    pub body: Vec<u8>,
    /// Whether the client asked for a stream.
    pub client_stream: bool,
    /// The fields that were removed, for logs.
    pub dropped: Vec<String>,
    /// The `prompt_cache_key`, when it is a string (it names the session).
    pub prompt_cache_key: Option<String>,
}

/// Shapes `body` for the Codex backend with `model` as its model, or `None` when the body needs
/// the full shaping (see the module documentation).
#[must_use]
pub fn shape_for_codex_raw(body: &[u8], model: &str) -> Option<RawShaped> {
    let Entries(entries) = serde_json::from_slice(body).ok()?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(body.len() + model.len() + 96);
    out.extend_from_slice(b"{\"model\":");
    serde_json::to_writer(&mut out, model).ok()?;
    let mut shaped = RawShaped {
        body: Vec::new(),
        client_stream: false,
        dropped: Vec::new(),
        prompt_cache_key: None,
    };
    let mut instructions = false;
    let mut input = None;
    let mut include = None;
    let mut reasoning = false;
    for (key, value) in &entries {
        if !seen.insert(key.as_ref()) {
            return None;
        }
        let raw = value.get();
        match key.as_ref() {
            "model" | "store" => continue,
            "stream" => {
                shaped.client_stream = raw == "true";
                continue;
            }
            "input" => {
                input = Some(*value);
                continue;
            }
            "include" => {
                include = Some(*value);
                continue;
            }
            "instructions" if raw == "null" => continue,
            "instructions" if !raw.starts_with('"') => return None,
            "instructions" => instructions = true,
            "reasoning" => reasoning = raw != "null",
            "prompt_cache_key" => {
                shaped.prompt_cache_key = serde_json::from_str::<String>(raw).ok();
            }
            name if STRIPPED_FIELDS.contains(&name) => {
                shaped.dropped.push(name.to_owned());
                continue;
            }
            _ => {}
        }
        out.push(b',');
        serde_json::to_writer(&mut out, key.as_ref()).ok()?;
        out.push(b':');
        out.extend_from_slice(raw.as_bytes());
    }
    out.extend_from_slice(b",\"stream\":true,\"store\":false");
    if !instructions {
        out.extend_from_slice(b",\"instructions\":\"\"");
    }
    out.extend_from_slice(b",\"input\":");
    write_input(&mut out, input?)?;
    write_include(&mut out, include, reasoning)?;
    out.push(b'}');
    shaped.body = out;
    Some(shaped)
}

/// `input` as the backend takes it: a string becomes one user message; a list is kept as it
/// is when no item needs changing.
fn write_input(out: &mut Vec<u8>, input: &RawValue) -> Option<()> {
    let raw = input.get();
    if raw.starts_with('"') {
        let text: String = serde_json::from_str(raw).ok()?;
        let message = input_message("user", vec![input_text(&text)]);
        return serde_json::to_writer(&mut *out, &[message]).ok();
    }
    let items: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
    let probes: Vec<Probe<'_>> = items
        .iter()
        .map(|item| serde_json::from_str(item.get()).ok())
        .collect::<Option<_>>()?;
    let calls: BTreeSet<&str> = probes
        .iter()
        .filter(|p| p.kind.as_deref().is_some_and(|t| t.ends_with("_call")))
        .filter_map(|p| p.call_id.as_deref())
        .collect();
    for probe in &probes {
        let kind = probe.kind.as_deref().unwrap_or("");
        let orphan = kind.ends_with("_call_output")
            && !calls.contains(probe.call_id.as_deref().unwrap_or(""));
        if probe.id.0.is_some() || kind == "item_reference" || orphan {
            return None;
        }
    }
    out.extend_from_slice(raw.as_bytes());
    Some(())
}

/// `include`, with the encrypted reasoning entry added when `reasoning` is set and it is
/// missing; as it came (or absent) when `reasoning` is not set.
fn write_include(out: &mut Vec<u8>, include: Option<&RawValue>, reasoning: bool) -> Option<()> {
    if !reasoning {
        if let Some(raw) = include {
            out.extend_from_slice(b",\"include\":");
            out.extend_from_slice(raw.get().as_bytes());
        }
        return Some(());
    }
    let raw = include.map(RawValue::get).filter(|r| *r != "null");
    out.extend_from_slice(b",\"include\":");
    let Some(raw) = raw else {
        serde_json::to_writer(&mut *out, &[ENCRYPTED_REASONING]).ok()?;
        return Some(());
    };
    let entries: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
    let listed = entries
        .iter()
        .any(|e| serde_json::from_str::<&str>(e.get()).ok() == Some(ENCRYPTED_REASONING));
    if listed {
        out.extend_from_slice(raw.as_bytes());
        return Some(());
    }
    out.push(b'[');
    for entry in &entries {
        out.extend_from_slice(entry.get().as_bytes());
        out.push(b',');
    }
    serde_json::to_writer(&mut *out, ENCRYPTED_REASONING).ok()?;
    out.push(b']');
    Some(())
}

/// What an input item is, read in place.
#[derive(serde::Deserialize)]
struct Probe<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    call_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Present<'a>,
}

/// A value that may be absent, where `null` counts as present.
#[derive(Default)]
struct Present<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Present<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(d).map(|raw| Present(Some(raw)))
    }
}

/// A JSON object's entries in order, values as raw text.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Collect;
        impl<'de> Visitor<'de> for Collect {
            type Value = Entries<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(key)) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Collect)
    }
}

/// An object key, borrowed unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::translate::responses::shape_for_codex;

    /// Both shapings of `body`: when the fast one answers, it must agree with the full one.
    fn agree(body: &str) -> bool {
        let fast = shape_for_codex_raw(body.as_bytes(), "gpt-x");
        let slow = serde_json::from_str::<Value>(body).ok().and_then(|mut v| {
            if let Value::Object(fields) = &mut v {
                fields.insert("model".into(), json!("gpt-x"));
            }
            shape_for_codex(v).ok()
        });
        let Some(fast) = fast else {
            return false;
        };
        let slow = slow
            .unwrap_or_else(|| panic!("the fast path took a body the full one refuses: {body}"));
        let fast_body: Value = serde_json::from_slice(&fast.body).unwrap();
        assert_eq!(fast_body, slow.body, "{body}");
        assert_eq!(fast.client_stream, slow.client_stream, "{body}");
        let mut dropped = fast.dropped.clone();
        let mut expected = slow.dropped.clone();
        dropped.sort();
        expected.sort();
        assert_eq!(dropped, expected, "{body}");
        assert_eq!(
            fast.prompt_cache_key.as_deref(),
            slow.body["prompt_cache_key"].as_str(),
            "{body}"
        );
        true
    }

    #[test]
    fn common_requests_take_the_fast_path_and_agree() {
        for body in [
            r#"{"model":"gpt-6.1-sol","stream":true,"store":false,"instructions":"","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#,
            r#"{"model":"m","stream":true,"input":[{"type":"message","role":"developer","content":[{"type":"input_text","text":"be brief"}]},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}],"tools":[{"type":"function","name":"f","parameters":{}}],"tool_choice":"auto","parallel_tool_calls":true,"reasoning":{"summary":"auto"},"store":false,"include":["reasoning.encrypted_content"],"prompt_cache_key":"conv-1","client_metadata":{"a":"b"}}"#,
            r#"{"model":"m","input":"hello \"you\"","stream":false,"temperature":0.2,"max_output_tokens":10,"metadata":{"x":1},"user":"u"}"#,
            r#"{"model":"m","input":[],"instructions":null,"reasoning":{"effort":"low"},"include":null}"#,
            r#"{"model":"m","input":[],"reasoning":{"effort":"low"},"include":["message.output_text.logprobs"]}"#,
            r#"{"model":"m","input":[],"include":null}"#,
            r#"{"model":"m","input":[],"reasoning":null,"include":[]}"#,
            r#"{"model":"m","inp\u0075t":[],"instructions":"x"}"#,
        ] {
            assert!(agree(body), "the fast path declined: {body}");
        }
    }

    #[test]
    fn bodies_that_need_rewriting_go_the_full_way() {
        for body in [
            r#"{"model":"m","input":[{"id":"msg_1","type":"message","role":"user","content":"a"}]}"#,
            r#"{"model":"m","input":[{"id":null,"type":"message","role":"user","content":"a"}]}"#,
            r#"{"model":"m","input":[{"type":"item_reference","id":"rs_1"}]}"#,
            r#"{"model":"m","input":[{"type":"function_call_output","call_id":"gone","output":"x"}]}"#,
            r#"{"model":"m","input":[5]}"#,
            r#"{"model":"m","input":5}"#,
            r#"{"model":"m"}"#,
            r#"{"model":"m","input":[],"instructions":1}"#,
            r#"{"model":"m","input":[],"reasoning":{},"include":"x"}"#,
            r#"{"model":"m","model":"n","input":[]}"#,
            r#"[1]"#,
            r#"not json"#,
        ] {
            assert!(!agree(body), "the fast path took {body}");
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(|n| json!(n)),
            "[a-z.\"_]{0,6}".prop_map(Value::String),
            Just(json!(["reasoning.encrypted_content"])),
            Just(json!(["x"])),
            Just(json!({"effort": "low"})),
        ]
    }

    fn arb_item() -> impl Strategy<Value = Value> {
        let kind = prop_oneof![
            Just("message"),
            Just("function_call"),
            Just("function_call_output"),
            Just("item_reference"),
            Just("reasoning"),
        ];
        (kind, proptest::option::of("c[12]"), any::<bool>()).prop_map(|(kind, call, id)| {
            let mut item = json!({"type": kind, "role": "user", "content": "x"});
            if let Some(call) = call {
                item["call_id"] = json!(call);
            }
            if id {
                item["id"] = json!("i1");
            }
            item
        })
    }

    proptest! {
        #[test]
        fn the_fast_path_agrees_with_the_full_shaping(
            fields in proptest::collection::btree_map(
                prop_oneof![
                    Just("stream"), Just("store"), Just("instructions"), Just("reasoning"),
                    Just("include"), Just("temperature"), Just("prompt_cache_key"), Just("tools"),
                    Just("metadata"), Just("text"),
                ],
                arb_value(),
                0..6,
            ),
            items in proptest::collection::vec(arb_item(), 0..4),
            string_input in any::<bool>(),
        ) {
            let mut body = serde_json::Map::new();
            body.insert("model".into(), json!("client-model"));
            for (k, v) in fields {
                body.insert(k.to_owned(), v);
            }
            body.insert(
                "input".into(),
                if string_input { json!("hi") } else { Value::Array(items) },
            );
            agree(&Value::Object(body).to_string());
        }
    }
}
