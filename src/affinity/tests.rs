use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::*;

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    h
}

/// [`of`] on a body given as a JSON tree, its ids read as the intake reads them; the same key
/// whether the opening's fields were noted when the body was taken in or are found by [`of`].
fn of_value(api: Api, h: &HeaderMap, body: &Value) -> Option<Affinity> {
    let raw = body.to_string();
    let ids = BodyIds::scan(raw.as_bytes());
    let walked = of(api, h, &ids, raw.as_bytes());
    let noted = BodyIds {
        opening: Some(noted_opening(raw.as_bytes())),
        ..ids
    };
    assert_eq!(of(api, h, &noted, raw.as_bytes()), walked, "{raw}");
    walked
}

/// The opening's fields of `body`, noted as the intake notes them.
fn noted_opening(body: &[u8]) -> OpeningFields {
    let mut fields = OpeningFields::default();
    for (field, range) in top_level(body) {
        fields.note(&field, range);
    }
    fields
}

#[test]
fn noted_fields_outside_the_body_are_found_again() {
    let body = br#"{"input":"hi"}"#;
    let mut far = OpeningFields::default();
    far.note("input", 100..104);
    let ids = BodyIds {
        opening: Some(far),
        ..BodyIds::default()
    };
    let none = HeaderMap::new();
    assert_eq!(
        of(Api::OpenaiResponses, &none, &ids, body),
        of(Api::OpenaiResponses, &none, &BodyIds::default(), body)
    );
}

fn key(api: Api, h: &HeaderMap, body: &Value) -> Affinity {
    of_value(api, h, body).expect("a key")
}

fn is_uuid_shaped(s: &str) -> bool {
    let groups: Vec<usize> = s.split('-').map(str::len).collect();
    groups == [8, 4, 4, 4, 12] && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[test]
fn the_clients_own_ids_win_in_order() {
    let body = json!({"prompt_cache_key": "thread-1", "input": "hi"});
    let h = headers(&[("session-id", "sess-2")]);
    assert_eq!(
        key(Api::OpenaiResponses, &h, &body),
        Affinity {
            key: "thread-1".into(),
            source: Source::CacheKey
        }
    );
    let body = json!({"input": "hi"});
    assert_eq!(key(Api::OpenaiResponses, &h, &body).key, "sess-2");
    let h = headers(&[("session_id", "legacy-3")]);
    assert_eq!(key(Api::OpenaiResponses, &h, &body).key, "legacy-3");
    let h = headers(&[(
        "x-claude-code-session-id",
        "6f1f3e0c-5d2a-4c1b-9a63-0d9f4f1b2c3d",
    )]);
    let got = key(Api::AnthropicMessages, &h, &json!({"messages": []}));
    assert_eq!(got.key, "6f1f3e0c-5d2a-4c1b-9a63-0d9f4f1b2c3d");
    assert_eq!(got.source, Source::SessionHeader);
}

#[test]
fn claude_codes_metadata_session_is_read_in_both_forms() {
    let none = HeaderMap::new();
    let json_form = json!({"metadata": {"user_id": "{\"device_id\":\"d1\",\"account_uuid\":\"a1\",\"session_id\":\"s-json\"}"},
        "messages": [{"role": "user", "content": "hi"}]});
    let got = key(Api::AnthropicMessages, &none, &json_form);
    assert_eq!(got.key, "s-json");
    assert_eq!(got.source, Source::ClaudeCodeMetadata);
    let legacy = json!({"metadata": {"user_id": "user_abc_account_def_session_s-legacy"},
        "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(key(Api::AnthropicMessages, &none, &legacy).key, "s-legacy");
    // Metadata without a session is a user id, as OpenAI's `user` is.
    let other = json!({"metadata": {"user_id": "just-a-user"}, "messages": [{"role": "user", "content": "hi"}]});
    let got = key(Api::AnthropicMessages, &none, &other);
    assert_eq!(got.source, Source::User);
    assert_eq!(
        got.key,
        key(Api::OpenaiChat, &none, &json!({"user": "just-a-user"})).key
    );
}

#[test]
fn user_is_hashed_and_long_ids_are_hashed() {
    let none = HeaderMap::new();
    let a = key(
        Api::OpenaiChat,
        &none,
        &json!({"user": "alice@example.com", "messages": []}),
    );
    assert_eq!(a.source, Source::User);
    assert!(is_uuid_shaped(&a.key), "{}", a.key);
    assert!(!a.key.contains("alice"));
    let long = "x".repeat(65);
    let b = key(
        Api::OpenaiResponses,
        &none,
        &json!({"prompt_cache_key": long, "input": "hi"}),
    );
    assert!(is_uuid_shaped(&b.key));
    let spaced = key(
        Api::OpenaiResponses,
        &none,
        &json!({"prompt_cache_key": "has space", "input": "hi"}),
    );
    assert!(is_uuid_shaped(&spaced.key));
}

/// A Claude Code-like conversation: the system prompt and tools repeat, `cache_control`
/// moves to the newest turn, and the history grows.
#[test]
fn a_conversation_keeps_its_key_as_it_grows() {
    let none = HeaderMap::new();
    let system = json!([{"type": "text", "text": "You are helpful."}]);
    let tools = json!([{"name": "read", "input_schema": {"type": "object"}}]);
    let turn1 = json!({"system": system, "tools": tools, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}
    ]});
    let turn2 = json!({"system": system, "tools": tools, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hello"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "hi there"}]},
        {"role": "user", "content": [{"type": "text", "text": "more", "cache_control": {"type": "ephemeral"}}]}
    ]});
    let a = key(Api::AnthropicMessages, &none, &turn1);
    let b = key(Api::AnthropicMessages, &none, &turn2);
    assert_eq!(a, b);
    assert_eq!(a.source, Source::Opening);
    assert!(is_uuid_shaped(&a.key));

    // Chat: string and part content are the same turn; the history may grow.
    let c1 = json!({"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "q1"}]});
    let c2 = json!({"messages": [{"role": "system", "content": [{"type": "text", "text": "sys"}]},
        {"role": "user", "content": [{"type": "text", "text": "q1"}]},
        {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}]});
    assert_eq!(
        key(Api::OpenaiChat, &none, &c1),
        key(Api::OpenaiChat, &none, &c2)
    );

    // Responses: a string input and its one-message form, item ids dropped.
    let r1 = json!({"instructions": "be brief", "input": "q1"});
    let r2 = json!({"instructions": "be brief", "input": [
        {"type": "message", "role": "user", "id": "msg_1", "content": [{"type": "input_text", "text": "q1"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a1"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q2"}]}
    ]});
    assert_eq!(
        key(Api::OpenaiResponses, &none, &r1),
        key(Api::OpenaiResponses, &none, &r2)
    );
}

#[test]
fn different_openings_get_different_keys() {
    let none = HeaderMap::new();
    let base = json!({"messages": [{"role": "user", "content": "first question"}]});
    let other_turn = json!({"messages": [{"role": "user", "content": "another question"}]});
    let other_system = json!({"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "first question"}]});
    let other_tools = json!({"tools": [{"type": "function", "function": {"name": "f"}}],
        "messages": [{"role": "user", "content": "first question"}]});
    let k = |b: &Value| key(Api::OpenaiChat, &none, b).key;
    let keys = [k(&base), k(&other_turn), k(&other_system), k(&other_tools)];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // The same opening through different APIs is still one conversation per API shape, and
    // a user id never equals an opening of the same text.
    let as_user = key(Api::OpenaiChat, &none, &json!({"user": "first question"})).key;
    assert_ne!(as_user, k(&base));
}

#[test]
fn nothing_to_key_on_is_none() {
    let none = HeaderMap::new();
    assert_eq!(
        of_value(Api::OpenaiResponses, &none, &json!({"model": "m"})),
        None
    );
    assert_eq!(
        of_value(Api::AnthropicMessages, &none, &json!({"messages": []})),
        None
    );
    assert_eq!(
        of_value(Api::OpenaiChat, &none, &json!("not an object")),
        None
    );
}

#[test]
fn body_ids_are_read_from_their_fields_only() {
    let ids = BodyIds::scan(
        br#"{"user":" u1 ","input":{"user":"nested"},"prompt_cache_key":5,"metadata":{"user_id":"m1","x":[1]},"user":"u2"}"#,
    );
    assert_eq!(
        ids,
        BodyIds {
            prompt_cache_key: None,
            user: Some("u2".into()),
            metadata_user_id: Some("m1".into()),
            opening: None,
        }
    );
    let mut ids = BodyIds::default();
    ids.note("prompt_cache_key", br#""  ""#);
    ids.note("model", br#""m""#);
    ids.note("metadata", b"null");
    assert_eq!(ids, BodyIds::default());
    ids.note("prompt_cache_key", br#""a\u0062c""#);
    assert_eq!(ids.prompt_cache_key.as_deref(), Some("abc"));
}

#[test]
fn the_opening_ignores_what_follows_the_first_user_turn() {
    let none = HeaderMap::new();
    // A later item that is not even a message does not change the key.
    let a = br#"{"input":[{"type":"message","role":"user","content":"q1"}]}"#;
    let b = br#"{"input":[{"type":"message","role":"user","content":"q1"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"message","role":"user","content":"q2"}]}"#;
    let key_of = |raw: &[u8]| of(Api::OpenaiResponses, &none, &BodyIds::scan(raw), raw);
    assert_eq!(key_of(a), key_of(b));
    assert_eq!(key_of(a).map(|a| a.source), Some(Source::Opening));
    // Keys written with escapes are the same keys.
    let escaped = br#"{"inp\u0075t":[{"type":"message","r\u006fle":"user","content":"q1"}]}"#;
    assert_eq!(key_of(a), key_of(escaped));
}

#[test]
fn non_text_parts_and_tools_count_without_the_keys_clients_vary() {
    let none = HeaderMap::new();
    let k = |b: &Value| key(Api::AnthropicMessages, &none, b).key;
    let image = |cache: bool| {
        let mut part = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}});
        if cache {
            part["cache_control"] = json!({"type": "ephemeral"});
        }
        json!({"tools": [{"name": "read", "id": "t1", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": [part, {"type": "text", "text": "what is this"}]}]})
    };
    assert_eq!(k(&image(false)), k(&image(true)));
    let mut other_tool_id = image(false);
    other_tool_id["tools"][0]["id"] = json!("t2");
    assert_eq!(k(&image(false)), k(&other_tool_id));
    let mut other_image = image(false);
    other_image["messages"][0]["content"][0]["source"]["data"] = json!("BBBB");
    assert_ne!(k(&image(false)), k(&other_image));
    let text_only = json!({"tools": image(false)["tools"].clone(),
        "messages": [{"role": "user", "content": "what is this"}]});
    assert_ne!(k(&image(false)), k(&text_only));
    // A part whose `text` is no string is not text.
    let odd = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]});
    let plain = json!({"messages": [{"role": "user", "content": "5"}]});
    assert_ne!(k(&odd), k(&plain));
}

#[test]
fn stamp_sets_the_cache_key() {
    let mut body = json!({"model": "m", "prompt_cache_key": "old"});
    stamp(
        &mut body,
        &Affinity {
            key: "k".into(),
            source: Source::Opening,
        },
    );
    assert_eq!(body["prompt_cache_key"], "k");
    let mut not_object = json!([1]);
    stamp(
        &mut not_object,
        &Affinity {
            key: "k".into(),
            source: Source::Opening,
        },
    );
    assert_eq!(not_object, json!([1]));
}

proptest::proptest! {
    /// One pass over the headers finds the session a look-up per name, in order, finds: the
    /// first value of the first name whose first value is non-blank text.
    #[test]
    fn the_session_header_pass_matches_a_look_up_per_name(
        sent in proptest::collection::vec((0_usize..6, 0_usize..5), 0..8),
    ) {
        let names = [
            "session-id",
            "session_id",
            "conversation_id",
            "x-claude-code-session-id",
            "user-agent",
            "x-other",
        ];
        let values: [&[u8]; 5] = [b"", b"  ", b"a", b" b ", b"\xff"];
        let mut h = HeaderMap::new();
        for (name, value) in &sent {
            h.append(
                HeaderName::from_static(names[*name]),
                HeaderValue::from_bytes(values[*value]).unwrap(),
            );
        }
        let by_look_up = SESSION_HEADERS.iter().find_map(|name| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|s| !s.is_empty())
        });
        proptest::prop_assert_eq!(session_header(&h), by_look_up);
    }

    /// Any body, any API: deriving never panics, and a key is always a non-empty header-safe
    /// token.
    #[test]
    fn keys_are_header_safe(text in ".{0,80}", pick in 0_u8..3) {
        let api = [Api::OpenaiResponses, Api::OpenaiChat, Api::AnthropicMessages][usize::from(pick)];
        for body in [
            json!({"prompt_cache_key": text}),
            json!({"user": text, "messages": [{"role": "user", "content": text}]}),
            json!({"input": text, "instructions": text}),
            json!({"metadata": {"user_id": text}, "messages": [{"role": "user", "content": text}]}),
        ] {
            if let Some(a) = of_value(api, &HeaderMap::new(), &body) {
                proptest::prop_assert!(!a.key.is_empty());
                proptest::prop_assert!(HeaderValue::try_from(a.key.as_str()).is_ok());
            }
        }
    }

    /// A body parsed into a tree gives the ids its text gives.
    #[test]
    fn ids_read_from_a_tree_are_the_ids_read_from_text(
        key in proptest::option::of(".{0,12}"),
        user in proptest::option::of(prop_oneof_value()),
        user_id in proptest::option::of(prop_oneof_value()),
        metadata_is_object in proptest::bool::ANY,
    ) {
        let mut body = serde_json::Map::new();
        if let Some(key) = key {
            body.insert("prompt_cache_key".into(), json!(key));
        }
        if let Some(user) = user.clone() {
            body.insert("user".into(), user);
        }
        if let Some(user_id) = user_id {
            let metadata = if metadata_is_object { json!({"user_id": user_id, "x": [1]}) } else { user_id };
            body.insert("metadata".into(), metadata);
        }
        let body = Value::Object(body);
        proptest::prop_assert_eq!(BodyIds::of_tree(&body), BodyIds::scan(body.to_string().as_bytes()));
    }
}

/// A member's value: text (blank, padded or escaped), or another type.
fn prop_oneof_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    prop_oneof![
        ".{0,12}".prop_map(|s| json!(s)),
        Just(json!("  padded \n ")),
        any::<i64>().prop_map(|n| json!(n)),
        Just(Value::Null),
        Just(json!({"user_id": "inner"})),
    ]
}

#[test]
fn text_counts_as_written_in_either_form() {
    let none = HeaderMap::new();
    let key_of = |raw: &[u8]| of(Api::OpenaiChat, &none, &BodyIds::scan(raw), raw).unwrap();
    // A plain string and a list of text parts holding the same written text are one opening,
    // escapes and all.
    let plain = br#"{"messages":[{"role":"system","content":"line\none \"q\""},{"role":"user","content":"caf\u00e9"}]}"#;
    let parts = br#"{"messages":[{"role":"system","content":[{"type":"text","text":"line\none \"q\""}]},{"role":"user","content":[{"type":"text","text":"caf\u00e9","cache_control":{"type":"ephemeral"}}]}]}"#;
    assert_eq!(key_of(plain), key_of(parts));
    assert_eq!(key_of(plain).source, Source::Opening);
    // Other text is another opening.
    let other = br#"{"messages":[{"role":"system","content":"line\none \"q\""},{"role":"user","content":"cafe"}]}"#;
    assert_ne!(key_of(plain), key_of(other));
}
