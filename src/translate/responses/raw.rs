//! [`super::shape_for_codex`] without building a JSON tree, for the request most clients send:
//! the body is read in place (its top-level values as raw text, each input item only probed for
//! `type`, `id` and `call_id`) and written out with the values it keeps copied as they came,
//! less each input item's `id` (the Codex CLI gives every item one, and the backend refuses
//! them without `store`). Whenever the body needs more than that (an `item_reference`, a tool
//! output without its call, a field the OpenAI SDKs' parsing helpers add, an `instructions` or
//! `include` that is not as expected, a repeated key) the fast path declines and the
//! tree-building shaping runs, so both always agree; the tests check that on every kind of body.

use std::borrow::Cow;
use std::ops::Range;

use super::{ENCRYPTED_REASONING, STRIPPED_FIELDS};
use crate::jsonscan;
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
/// the full shaping (see the module documentation). With `cache_key`, the body's
/// `prompt_cache_key` becomes that key (added when the body has none).
#[must_use]
pub fn shape_for_codex_raw(body: &[u8], model: &str, cache_key: Option<&str>) -> Option<RawShaped> {
    // Room for a usual body's fields: growing from empty reallocated twice a request.
    let mut seen: Vec<Cow<'_, str>> = Vec::with_capacity(16);
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
    let mut entries = jsonscan::entries(body)?;
    while let Some(entry) = entries.next_key() {
        let (key, start) = entry.ok()?;
        let name = jsonscan::key(key)?;
        if seen.contains(&name) {
            return None;
        }
        // The input, the bulk of a body, is read in the same walk that finds its end.
        if name == "input" {
            let read = read_input(body, start)?;
            entries.resume_at(read.range.end);
            input = Some(read);
            seen.push(name);
            continue;
        }
        let range = jsonscan::value_at(body, start)?;
        entries.resume_at(range.end);
        let raw = &body[range];
        match name.as_ref() {
            "model" | "store" => {}
            // Replaced by the key given.
            "prompt_cache_key" if cache_key.is_some() => {}
            "stream" => shaped.client_stream = raw == b"true",
            "include" => include = Some(raw),
            "instructions" if raw == b"null" => {}
            "instructions" if !raw.starts_with(b"\"") => return None,
            other if STRIPPED_FIELDS.contains(&other) => shaped.dropped.push(other.to_owned()),
            other => {
                match other {
                    "instructions" => instructions = true,
                    "reasoning" => reasoning = raw != b"null",
                    "prompt_cache_key" => {
                        shaped.prompt_cache_key = jsonscan::string(raw).map(Cow::into_owned);
                    }
                    _ => {}
                }
                out.extend_from_slice(b",\"");
                out.extend_from_slice(key);
                out.extend_from_slice(b"\":");
                out.extend_from_slice(raw);
            }
        }
        seen.push(name);
    }
    if let Some(key) = cache_key {
        out.extend_from_slice(b",\"prompt_cache_key\":");
        serde_json::to_writer(&mut out, key).ok()?;
        shaped.prompt_cache_key = Some(key.to_owned());
    }
    out.extend_from_slice(b",\"stream\":true,\"store\":false");
    if !instructions {
        out.extend_from_slice(b",\"instructions\":\"\"");
    }
    out.extend_from_slice(b",\"input\":");
    write_input(&mut out, body, &input?, &mut shaped.dropped)?;
    write_include(&mut out, include, reasoning)?;
    out.push(b'}');
    shaped.body = out;
    Some(shaped)
}

/// A body's `input`, read in place.
struct Input<'a> {
    /// Where it lies in the body.
    range: Range<usize>,
    /// For a list, each item's range in the body and what it is; `None` for a string.
    items: Option<Vec<(Range<usize>, Probe<'a>)>>,
}

/// Reads the `input` whose value starts at or after `start` in `body`: a string, or a list
/// whose items are each walked once (probing an item finds where it ends). `None` when it is
/// neither, or an item is not as [`probe`] needs.
fn read_input(body: &[u8], start: usize) -> Option<Input<'_>> {
    let open = jsonscan::skip_space(body, start);
    match body.get(open)? {
        b'"' => {
            let range = jsonscan::value_at(body, open)?;
            return Some(Input { range, items: None });
        }
        b'[' => {}
        _ => return None,
    }
    let mut items = Vec::new();
    let mut at = open + 1;
    loop {
        at = jsonscan::skip_space(body, at);
        match body.get(at)? {
            b']' => break,
            b',' if !items.is_empty() => at = jsonscan::skip_space(body, at + 1),
            _ => {}
        }
        let (probe, len) = probe(&body[at..])?;
        items.push((at..at + len, probe));
        at += len;
    }
    Some(Input {
        range: open..at + 1,
        items: Some(items),
    })
}

/// `input` as the backend takes it: a string becomes one user message; a list is kept as it
/// is, less its items' `id`s (each noted in `dropped`).
fn write_input(
    out: &mut Vec<u8>,
    body: &[u8],
    input: &Input<'_>,
    dropped: &mut Vec<String>,
) -> Option<()> {
    let raw = &body[input.range.clone()];
    let Some(items) = &input.items else {
        let text = jsonscan::string(raw)?;
        let message = input_message("user", vec![input_text(&text)]);
        return serde_json::to_writer(&mut *out, &[message]).ok();
    };
    if has_sdk_field(raw) {
        return None;
    }
    let calls: Vec<&str> = items
        .iter()
        .filter(|(_, p)| p.kind.as_deref().is_some_and(|t| t.ends_with("_call")))
        .filter_map(|(_, p)| p.call_id.as_deref())
        .collect();
    for (_, probe) in items {
        let kind = probe.kind.as_deref().unwrap_or("");
        let orphan = kind.ends_with("_call_output")
            && !calls.contains(&probe.call_id.as_deref().unwrap_or(""));
        if kind == "item_reference" || orphan {
            return None;
        }
    }
    if items.iter().all(|(_, p)| p.id.is_none()) {
        out.extend_from_slice(raw);
        return Some(());
    }
    out.push(b'[');
    for (i, (range, probe)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let item = &body[range.clone()];
        match &probe.id {
            Some(id) => {
                write_without(out, item, id.clone());
                dropped.push(format!("input[{i}].id"));
            }
            None => out.extend_from_slice(item),
        }
    }
    out.push(b']');
    Some(())
}

/// Writes the object `item` without the entry at `entry` (from its key's opening quote to its
/// value's end), and without the comma that joined it to the others.
fn write_without(out: &mut Vec<u8>, item: &[u8], entry: Range<usize>) {
    let after = jsonscan::skip_space(item, entry.end);
    if item.get(after) == Some(&b',') {
        out.extend_from_slice(&item[..entry.start]);
        out.extend_from_slice(&item[after + 1..]);
        return;
    }
    // The last entry: the comma before it goes, if there is one.
    let before = item[..entry.start]
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match before {
        Some(comma) if item[comma] == b',' => out.extend_from_slice(&item[..comma]),
        _ => out.extend_from_slice(&item[..entry.start]),
    }
    out.extend_from_slice(&item[entry.end..]);
}

/// Whether `input` may hold a field the OpenAI SDKs' parsing helpers add (`parsed_arguments`
/// of a function call, `parsed` of an output text part): a key of that name anywhere in it.
/// Text that merely says `"parsed"` is escaped in JSON (`\"parsed\"`), so it does not count; a
/// key of that name elsewhere (in a tool's schema) only sends the body the full way.
fn has_sdk_field(input: &[u8]) -> bool {
    // Built once: a searcher's set-up costs more than a search through a short input.
    static PARSED: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"parsed"));
    PARSED.find_iter(input).any(|at| {
        let rest = &input[at + b"\"parsed".len()..];
        let Some(after) = rest
            .strip_prefix(b"\"")
            .or_else(|| rest.strip_prefix(b"_arguments\""))
        else {
            return false;
        };
        after.get(jsonscan::skip_space(after, 0)) == Some(&b':')
    })
}

/// `include`, with the encrypted reasoning entry added when `reasoning` is set and it is
/// missing; as it came (or absent) when `reasoning` is not set.
fn write_include(out: &mut Vec<u8>, include: Option<&[u8]>, reasoning: bool) -> Option<()> {
    if !reasoning {
        if let Some(raw) = include {
            out.extend_from_slice(b",\"include\":");
            out.extend_from_slice(raw);
        }
        return Some(());
    }
    out.extend_from_slice(b",\"include\":");
    let Some(raw) = include.filter(|r| *r != b"null") else {
        serde_json::to_writer(&mut *out, &[ENCRYPTED_REASONING]).ok()?;
        return Some(());
    };
    let mut entries = Vec::new();
    for entry in jsonscan::items(raw)? {
        entries.push(&raw[entry.ok()?]);
    }
    let listed = entries
        .iter()
        .any(|e| jsonscan::string(e).as_deref() == Some(ENCRYPTED_REASONING));
    if listed {
        out.extend_from_slice(raw);
        return Some(());
    }
    out.push(b'[');
    for entry in &entries {
        out.extend_from_slice(entry);
        out.push(b',');
    }
    serde_json::to_writer(&mut *out, ENCRYPTED_REASONING).ok()?;
    out.push(b']');
    Some(())
}

/// What the input item at the start of `item` is, read in place: its `type`, its `call_id`,
/// and where its `id` entry is (even `null`); with the item's length. `None` when the item is
/// not an object, its `type` or `call_id` is there but not a string, or a key repeats (the full
/// shaping decides about those).
fn probe(item: &[u8]) -> Option<(Probe<'_>, usize)> {
    let mut probe = Probe {
        kind: None,
        call_id: None,
        id: None,
    };
    let mut seen = [false; 3];
    let mut entries = jsonscan::entries(item)?;
    for entry in &mut entries {
        let (key, range) = entry.ok()?;
        let raw = &item[range.clone()];
        let slot = match jsonscan::key_bytes(key)?.as_ref() {
            b"type" => {
                probe.kind = Some(jsonscan::string(raw)?);
                0
            }
            b"call_id" => {
                if raw != b"null" {
                    probe.call_id = Some(jsonscan::string(raw)?);
                }
                1
            }
            b"id" => {
                // The key's opening quote: `key` is the text between the quotes.
                let quote = key.as_ptr() as usize - item.as_ptr() as usize - 1;
                probe.id = Some(quote..range.end);
                2
            }
            _ => continue,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
    }
    Some((probe, entries.end()?))
}

/// What an input item is.
struct Probe<'a> {
    kind: Option<Cow<'a, str>>,
    call_id: Option<Cow<'a, str>>,
    /// Where its `id` entry lies in the item, from the key's opening quote to the value's end.
    id: Option<Range<usize>>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::translate::responses::shape_for_codex;

    /// Both shapings of `body`: when the fast one answers, it must agree with the full one.
    fn agree(body: &str) -> bool {
        let fast = shape_for_codex_raw(body.as_bytes(), "gpt-x", None);
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
    fn item_ids_are_cut_out_wherever_they_stand() {
        for body in [
            r#"{"model":"m","input":[{"id":"msg_1","type":"message","role":"user","content":"a"}]}"#,
            r#"{"model":"m","input":[{"type":"message","id":"msg_1","role":"user","content":"a"}]}"#,
            r#"{"model":"m","input":[{"type":"message","role":"user","content":"a","id":"msg_1"}]}"#,
            r#"{"model":"m","input":[{"id":null,"type":"message","role":"user","content":"a"}]}"#,
            r#"{"model":"m","input":[{"i\u0064":"x","type":"message","role":"user","content":"a"}]}"#,
            r#"{"model":"m","input":[{"id":"only"}]}"#,
            r#"{"model":"m","input":[ { "type" : "message" , "content" : "a" , "id" : "m1" } , {"id" : {"nested":[1,"}"]} ,"type":"reasoning","summary":[]}]}"#,
            r#"{"model":"m","input":[{"type":"message","content":"a"},{"type":"message","content":"b","id":"m2"}]}"#,
            r#"{"model":"m","input":[{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"parsed\":1}","id":"fc_1"},{"type":"function_call_output","call_id":"c1","output":"said \"parsed\": yes","id":"o1"}]}"#,
        ] {
            assert!(agree(body), "the fast path declined: {body}");
            let shaped = shape_for_codex_raw(body.as_bytes(), "gpt-x", None).unwrap();
            let value: Value = serde_json::from_slice(&shaped.body).unwrap();
            for item in value["input"].as_array().unwrap() {
                assert!(item.get("id").is_none(), "{body}");
            }
        }
    }

    #[test]
    fn bodies_that_need_rewriting_go_the_full_way() {
        for body in [
            r#"{"model":"m","input":[{"type":"item_reference","id":"rs_1"}]}"#,
            r#"{"model":"m","input":[{"id":"a","id":"b","type":"message","content":"a"}]}"#,
            r#"{"model":"m","input":[{"type":"function_call","call_id":"c1","name":"f","arguments":"{}","parsed_arguments":{}}]}"#,
            r#"{"model":"m","input":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"a","parsed" :{}}]}]}"#,
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

    #[test]
    fn a_cache_key_replaces_or_joins_the_bodys() {
        for body in [
            r#"{"model":"m","input":[],"prompt_cache_key":"client"}"#,
            r#"{"model":"m","input":[]}"#,
            r#"{"model":"m","input":[],"prompt_cache_key":null}"#,
        ] {
            let shaped = shape_for_codex_raw(body.as_bytes(), "gpt-x", Some("conv-9")).unwrap();
            let value: Value = serde_json::from_slice(&shaped.body).unwrap();
            assert_eq!(value["prompt_cache_key"], "conv-9", "{body}");
            assert_eq!(shaped.prompt_cache_key.as_deref(), Some("conv-9"));
            // The rest is what the shaping without a key makes.
            let mut plain: Value = serde_json::from_slice(
                &shape_for_codex_raw(body.as_bytes(), "gpt-x", None)
                    .unwrap()
                    .body,
            )
            .unwrap();
            plain["prompt_cache_key"] = json!("conv-9");
            assert_eq!(value, plain, "{body}");
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
        (
            kind,
            proptest::option::of("c[12]"),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(kind, call, id, parsed)| {
                let mut item = json!({"type": kind, "role": "user", "content": "x"});
                if let Some(call) = call {
                    item["call_id"] = json!(call);
                }
                if id {
                    item["id"] = json!("i1");
                }
                if parsed {
                    item["parsed_arguments"] = json!({});
                    item["content"] = json!([{"type": "output_text", "text": "x", "parsed": {}}]);
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
