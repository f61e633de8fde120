use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        "[a-z\"\\\\\n\u{e9}{}\\[\\],:]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z\"\\\\]{0,5}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn ranges_agree_with_serde(value in arb_json(), pretty in any::<bool>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            value.to_string()
        };
        let bytes = text.as_bytes();
        // Compared with serde's own reading of the text (floats may not round-trip).
        let value: Value = serde_json::from_slice(bytes).unwrap();
        let range = value_at(bytes, 0).unwrap();
        prop_assert_eq!(serde_json::from_slice::<Value>(&bytes[range.clone()]).unwrap(), value.clone());
        if let Value::Object(map) = &value {
            // Read to the end, the entries know where the object ends: where value_at says.
            let mut all = entries(bytes).unwrap();
            all.by_ref().for_each(drop);
            prop_assert_eq!(all.end(), Some(range.end));
            // Keys with the values left to the caller: the same entries, the same end.
            let mut keyed = entries(bytes).unwrap();
            let mut by_key = Vec::new();
            while let Some(entry) = keyed.next_key() {
                let (key, start) = entry.unwrap();
                let value = value_at(bytes, start).unwrap();
                keyed.resume_at(value.end);
                by_key.push((key, value));
            }
            let plain: Vec<_> = entries(bytes).unwrap().map(Result::unwrap).collect();
            prop_assert_eq!(by_key, plain);
            prop_assert_eq!(keyed.end(), Some(range.end));
            let found: Vec<(String, Value)> = entries(bytes)
                .unwrap()
                .map(|e| {
                    let (key, range) = e.unwrap();
                    let key = string(&[b"\"", key, b"\""].concat()).unwrap().into_owned();
                    (key, serde_json::from_slice(&bytes[range]).unwrap())
                })
                .collect();
            let expected: Vec<(String, Value)> =
                map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(found, expected);
            // Each key's value starts where field_start says (the first entry of a name).
            for key in map.keys().filter(|k| !k.contains(['"', '\\'])) {
                let start = field_range(bytes, key).map(|r| r.start);
                prop_assert_eq!(field_start(bytes, key), start);
            }
        }
        if let Value::Array(list) = &value {
            let found: Vec<Value> = items(bytes)
                .unwrap()
                .map(|r| serde_json::from_slice(&bytes[r.unwrap()]).unwrap())
                .collect();
            prop_assert_eq!(&found, list);
        }
    }

    #[test]
    fn malformed_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = value_at(&bytes, 0);
        if let Some(e) = entries(&bytes) {
            for _ in e {}
        }
        if let Some(i) = items(&bytes) {
            for _ in i {}
        }
        let _ = string(&bytes);
    }
}

#[test]
fn fields_and_strings_read_in_place() {
    let doc = br#" {"a": 1, "b\u0073": "x\"y", "c": {"d": [1, {"e": null}]}} "#;
    assert_eq!(field(doc, "a"), Some(&b"1"[..]));
    assert_eq!(field(doc, "bs").map(string), Some(Some("x\"y".into())));
    assert_eq!(field(doc, "c"), Some(&br#"{"d": [1, {"e": null}]}"#[..]));
    assert_eq!(field(doc, "z"), None);
    let [c, z, a] = field_ranges(doc, ["c", "z", "a"]);
    assert_eq!(
        (c, z, a),
        (field_range(doc, "c"), None, field_range(doc, "a"))
    );
    // The first of two entries with one name, as `field` reads it.
    let twice = br#"{"a": 1, "a": 2}"#;
    assert_eq!(field_ranges(twice, ["a"]), [field_range(twice, "a")]);
    assert_eq!(string(b"\"plain\""), Some(Cow::Borrowed("plain")));
    // Strings around the word and vectorised search boundaries, with escapes on both
    // sides of each.
    for text in [7, 8, 9, 31, 32, 33, 80].map(|n| "z".repeat(n)) {
        for at in [0, 7, 8, 9, 23, 31, 32, 33, 80].map(|at: usize| at.min(text.len())) {
            let mut value = text.clone();
            value.insert_str(at, "\"\\");
            let doc = serde_json::to_vec(&json!({"k": value, "after": 1})).unwrap();
            assert_eq!(field(&doc, "k").and_then(string), Some(Cow::Owned(value)));
            assert_eq!(field(&doc, "after"), Some(&b"1"[..]));
        }
    }
    assert_eq!(
        value_at(b"\"unterminated and longer than twenty-four", 0),
        None
    );
    assert_eq!(string(b"5"), None);
}

#[test]
fn the_first_quote_or_backslash_is_found_at_every_position() {
    for len in 0..80 {
        let plain = vec![b'a'; len];
        assert_eq!(quote_or_backslash(&plain), None, "len {len}");
        for at in 0..len {
            for (first, later) in [(b'"', b'\\'), (b'\\', b'"')] {
                let mut text = plain.clone();
                text[at] = first;
                // A later one, and bytes one off from the ones looked for, change nothing.
                for i in (at + 1..len).step_by(3) {
                    text[i] = [later, b'"' + 1, b'\\' - 1][i % 3];
                }
                assert_eq!(quote_or_backslash(&text), Some(at), "len {len}, at {at}");
            }
        }
    }
}

#[test]
fn an_escape_is_seen_at_every_position_of_every_length() {
    for len in 0..80 {
        // Bytes one off from the ones looked for, and bytes with the top bit set, are plain.
        let plain: Vec<u8> = (0..len)
            .map(|i| [b'a', b'"' + 1, b'\\' - 1, 0xe9][i % 4])
            .collect();
        assert!(!has_escape(&plain), "len {len}");
        for at in 0..len {
            for mark in [b'"', b'\\'] {
                let mut text = plain.clone();
                text[at] = mark;
                assert!(has_escape(&text), "len {len}, at {at}");
            }
        }
    }
}

#[test]
fn unsigned_reads_whole_numbers_only() {
    assert_eq!(unsigned(b"0"), Some(0));
    assert_eq!(unsigned(b"1234"), Some(1234));
    assert_eq!(unsigned(b"18446744073709551615"), Some(u64::MAX));
    for not in [
        &b""[..],
        b"18446744073709551616",
        b"1.5",
        b"1e3",
        b"-1",
        b"+1",
        b"12a",
        b" 1",
    ] {
        assert_eq!(unsigned(not), None, "{}", String::from_utf8_lossy(not));
    }
}

#[test]
fn counts_are_read_where_they_stand() {
    let s = br#"{"a": 42 , "b":7}"#;
    assert_eq!(unsigned_at(s, 5), Some((Some(42), 8)));
    assert_eq!(unsigned_at(s, 15), Some((Some(7), 16)));
    assert_eq!(unsigned_at(b"12", 0), Some((Some(12), 2)));
    // Other values are walked to their end and hold no count.
    assert_eq!(unsigned_at(br#"1.5}"#, 0), Some((None, 3)));
    assert_eq!(unsigned_at(br#"-3,"#, 0), Some((None, 2)));
    assert_eq!(unsigned_at(br#""9"}"#, 0), Some((None, 3)));
    assert_eq!(unsigned_at(br#"{"x":[1]},"#, 0), Some((None, 9)));
    assert_eq!(unsigned_at(b"99999999999999999999,", 0), Some((None, 20)));
    // No value at all.
    assert_eq!(unsigned_at(b"  ", 0), None);
    assert_eq!(unsigned_at(br#""cut"#, 0), None);
}

/// `value` without the entries of `dropped`, at every depth, as a tree.
fn without(value: &Value, dropped: &[&str]) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(k, _)| !dropped.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), without(v, dropped)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| without(v, dropped)).collect()),
        other => other.clone(),
    }
}

fn compacted(raw: &[u8], dropped: &[&str]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    compact_without(raw, dropped, &mut out).map(|()| out)
}

proptest! {
    #[test]
    fn compacting_drops_exactly_the_keys_asked_and_all_whitespace(
        value in arb_json(),
        pretty in any::<bool>(),
    ) {
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            value.to_string()
        };
        // With nothing dropped, the compact form is serde's own, byte for byte.
        prop_assert_eq!(
            compacted(text.as_bytes(), &[]).unwrap(),
            value.to_string().into_bytes()
        );
        // Compared with serde's own reading of the text (floats may not round-trip).
        let value: Value = serde_json::from_slice(text.as_bytes()).unwrap();
        let dropped = ["id", "a", ""];
        let out = compacted(text.as_bytes(), &dropped).unwrap();
        let read: Value = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(read, without(&value, &dropped));
    }

    #[test]
    fn compacting_malformed_input_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = compacted(&bytes, &["id"]);
    }
}

#[test]
fn compacting_keeps_what_is_written_and_refuses_what_it_cannot_follow() {
    let raw = br#" { "b" : [ 1.0e2 , "x\u0041 \"y\"" , { "id" : { "deep" : [ 1 ] } , "c" : null } ] , "i\u0064" : 5 , "id" : 6 } "#;
    assert_eq!(
        compacted(raw, &["id"]).unwrap(),
        br#"{"b":[1.0e2,"x\u0041 \"y\"",{"c":null}]}"#
    );
    assert_eq!(compacted(b"{}", &["id"]).unwrap(), b"{}");
    assert_eq!(compacted(b" [ ] ", &[]).unwrap(), b"[]");
    for bad in [
        &b"{"[..],
        b"[1,",
        b"{\"a\" 1}",
        b"{\"a\":1,}",
        b"[1 2]",
        b"{1:2}",
        b"[] []",
        b"\"open",
        b"",
    ] {
        assert_eq!(
            compacted(bad, &[]),
            None,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
    assert!(compacted(deep.as_bytes(), &[]).is_some());
    let deeper = format!("{}{}", "[".repeat(129), "]".repeat(129));
    assert_eq!(compacted(deeper.as_bytes(), &[]), None);
}
