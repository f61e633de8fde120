//! The strict backend's rules, one by one: each refusal with the backend's status and message,
//! and a body of every kind bitrouter sends accepted.

use serde_json::{Value, json};

use super::{Rejection, check};

fn catalog() -> Value {
    json!({"models": [
        {"slug": "gpt-6-luna", "supported_reasoning_levels": [{"effort": "low"}, {"effort": "medium"}]},
    ]})
}

/// A body the backend accepts, with `patch` merged into it at the top level.
fn body(patch: Value) -> Value {
    let mut base = json!({
        "model": "gpt-6-luna",
        "stream": true,
        "store": false,
        "instructions": "",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
    });
    if let (Value::Object(base), Value::Object(patch)) = (&mut base, patch) {
        base.extend(patch);
    }
    base
}

fn refused(body: &Value) -> Rejection {
    check(body, &catalog()).expect_err("the strict backend accepted it")
}

fn input(items: Value) -> Value {
    body(json!({"input": items}))
}

fn user(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

#[test]
fn a_full_translated_body_is_accepted() {
    let accepted = body(json!({
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]},
            {"role": "system", "content": "plain string content"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
                {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AAAA"},
            ]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}], "encrypted_content": "gAAA"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
            {"type": "function_call", "call_id": "c1", "name": "Bash", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "Read", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"type": "function_call_output", "call_id": "c2", "output": [
                {"type": "input_text", "text": "file"},
                {"type": "input_image", "image_url": "https://example.com/a.png"},
            ]},
            user("thanks"),
        ],
        "tools": [
            {"type": "function", "name": "Bash", "description": "run", "parameters": {"type": "object", "properties": {}}, "strict": false},
            {"type": "function", "name": "Read", "parameters": {"type": "object"}},
            {"type": "web_search"},
        ],
        "tool_choice": {"type": "function", "name": "Bash"},
        "parallel_tool_calls": true,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "session-1",
        "text": {"verbosity": "medium"},
    }));
    assert_eq!(check(&accepted, &catalog()), Ok(()));
    // The real Codex CLI omits `instructions`.
    let mut without = body(json!({}));
    without.as_object_mut().unwrap().remove("instructions");
    assert_eq!(check(&without, &catalog()), Ok(()));
}

#[test]
fn the_backends_own_rules_answer_with_detail() {
    let cases = [
        (body(json!({"stream": false})), "Stream must be set to true"),
        (body(json!({"store": true})), "Store must be set to false"),
        (body(json!({"input": "hi"})), "Input must be a list"),
        (
            body(json!({"max_output_tokens": 10})),
            "Unsupported parameter: max_output_tokens",
        ),
        (
            body(json!({"temperature": 0.5})),
            "Unsupported parameter: temperature",
        ),
        (
            body(json!({"metadata": {"user_id": "u"}})),
            "Unsupported parameter: metadata",
        ),
        (
            body(json!({"model": "claude-sonnet-4-5"})),
            "The 'claude-sonnet-4-5' model is not supported when using Codex with a ChatGPT account.",
        ),
    ];
    for (body, message) in cases {
        let rejection = refused(&body);
        assert_eq!(rejection.status, 400);
        assert_eq!(rejection.body, json!({"detail": message}));
    }
    let mut no_store = body(json!({}));
    no_store.as_object_mut().unwrap().remove("store");
    assert_eq!(refused(&no_store).message(), "Store must be set to false");
}

#[test]
fn unknown_roles_item_types_and_fields_are_refused() {
    let role = refused(&input(json!([
        {"type": "message", "role": "tool", "content": "x"}
    ])));
    assert_eq!(role.body["error"]["param"], "input[0].role");
    assert_eq!(role.body["error"]["code"], "invalid_value");
    assert!(
        role.message().starts_with("Invalid value: 'tool'."),
        "{}",
        role.message()
    );

    let kind = refused(&input(json!([{"type": "thinking", "thinking": "x"}])));
    assert_eq!(kind.body["error"]["param"], "input[0].type");

    let field = refused(&input(json!([
        {"type": "message", "role": "user", "content": "x", "cache_control": {"type": "ephemeral"}}
    ])));
    assert_eq!(
        field.message(),
        "Unknown parameter: 'input[0].cache_control'."
    );
    assert_eq!(field.body["error"]["code"], "unknown_parameter");

    // The real Codex CLI sends its own message ids.
    let with_id =
        input(json!([{"type": "message", "id": "msg_1", "role": "user", "content": "x"}]));
    assert_eq!(check(&with_id, &catalog()), Ok(()));

    let missing = refused(&input(
        json!([{"type": "function_call", "name": "f", "arguments": "{}"}]),
    ));
    assert_eq!(
        missing.message(),
        "Missing required parameter: 'input[0].call_id'."
    );

    let args = refused(&input(json!([
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": {}},
        {"type": "function_call_output", "call_id": "c", "output": "x"},
    ])));
    assert_eq!(args.body["error"]["code"], "invalid_type");
}

#[test]
fn content_parts_must_suit_the_role() {
    let assistant_input = refused(&input(json!([
        {"type": "message", "role": "assistant", "content": [{"type": "input_text", "text": "x"}]}
    ])));
    assert_eq!(
        assistant_input.message(),
        "Invalid value: 'input_text'. Supported values are: 'output_text', 'refusal'."
    );
    for role in ["user", "system", "developer"] {
        let output_part = refused(&input(json!([
            {"type": "message", "role": role, "content": [{"type": "output_text", "text": "x"}]}
        ])));
        assert_eq!(
            output_part.body["error"]["param"],
            "input[0].content[0].type"
        );
    }
    let unknown_part = refused(&input(json!([
        {"type": "message", "role": "user", "content": [{"type": "image", "source": {}}]}
    ])));
    assert_eq!(unknown_part.body["error"]["code"], "invalid_value");
    let part_field = refused(&input(json!([
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x", "cache_control": {}}]}
    ])));
    assert_eq!(
        part_field.body["error"]["param"],
        "input[0].content[0].cache_control"
    );
    let bad_image = refused(&input(json!([
        {"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": "data:;base64,"}]}
    ])));
    assert_eq!(
        bad_image.body["error"]["param"],
        "input[0].content[0].image_url"
    );
    let phase = refused(&input(json!([
        {"type": "message", "role": "user", "phase": "final_answer", "content": "x"}
    ])));
    assert_eq!(phase.body["error"]["code"], "unknown_parameter");
    let bad_output = refused(&input(json!([
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": [{"type": "output_text", "text": "x"}]},
    ])));
    assert_eq!(bad_output.body["error"]["param"], "input[1].output[0].type");
}

#[test]
fn calls_and_outputs_must_pair_up() {
    let orphan = refused(&input(json!([
        user("hi"),
        {"type": "function_call_output", "call_id": "c9", "output": "x"},
    ])));
    assert_eq!(
        orphan.message(),
        "No tool call found for function call output with call_id c9."
    );
    let unanswered = refused(&input(json!([
        user("hi"),
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        user("again"),
    ])));
    assert_eq!(
        unanswered.message(),
        "No tool output found for function call c1."
    );
    let last = refused(&input(json!([
        user("hi"),
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
    ])));
    assert_eq!(last.message(), "No tool output found for function call c1.");
    let before_call = refused(&input(json!([
        {"type": "function_call_output", "call_id": "c1", "output": "x"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
    ])));
    assert!(
        before_call.message().starts_with("No tool call found"),
        "{}",
        before_call.message()
    );
    let custom = refused(&input(json!([
        {"type": "custom_tool_call", "call_id": "p1", "name": "apply_patch", "input": "x"},
    ])));
    assert_eq!(
        custom.message(),
        "No tool output found for custom tool call p1."
    );
}

#[test]
fn tools_need_a_known_type_a_valid_name_and_an_object_schema() {
    let kind = refused(&body(
        json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
    ));
    assert_eq!(kind.body["error"]["param"], "tools[0].type");
    let nested = refused(&body(json!({"tools": [
        {"type": "function", "function": {"name": "f"}}
    ]})));
    assert_eq!(nested.body["error"]["param"], "tools[0].name");
    let long = "x".repeat(65);
    let long_name = refused(&body(
        json!({"tools": [{"type": "function", "name": long}]}),
    ));
    assert_eq!(long_name.body["error"]["param"], "tools[0].name");
    let not_object = refused(&body(json!({"tools": [
        {"type": "function", "name": "f", "parameters": {"type": "string"}}
    ]})));
    assert_eq!(
        not_object.message(),
        "Invalid schema for function 'f': schema must be a JSON Schema of 'type: \"object\"', got 'type: \"string\"'."
    );
    let combinator = refused(&body(json!({"tools": [
        {"type": "function", "name": "f", "parameters": {"type": "object", "anyOf": []}}
    ]})));
    assert_eq!(
        combinator.body["error"]["code"],
        "invalid_function_parameters"
    );
    let extra = refused(&body(json!({"tools": [
        {"type": "function", "name": "f", "input_schema": {"type": "object"}}
    ]})));
    assert_eq!(
        extra.message(),
        "Unknown parameter: 'tools[0].input_schema'."
    );
}

#[test]
fn tool_choice_must_name_a_tool_that_exists() {
    let tools = json!([{"type": "function", "name": "f", "parameters": {"type": "object"}}]);
    for choice in [
        json!("auto"),
        json!("none"),
        json!("required"),
        json!({"type": "function", "name": "f"}),
    ] {
        assert_eq!(
            check(
                &body(json!({"tools": tools, "tool_choice": choice})),
                &catalog()
            ),
            Ok(())
        );
    }
    let missing = refused(&body(
        json!({"tools": tools, "tool_choice": {"type": "function", "name": "g"}}),
    ));
    assert_eq!(
        missing.message(),
        "Tool choice 'function' not found in 'tools' parameter."
    );
    let any = refused(&body(json!({"tool_choice": "any"})));
    assert_eq!(any.body["error"]["code"], "invalid_value");
    let anthropic = refused(&body(json!({"tool_choice": {"type": "tool", "name": "f"}})));
    assert_eq!(anthropic.body["error"]["param"], "tool_choice.type");
}

#[test]
fn reasoning_effort_must_be_one_the_model_supports() {
    let high = refused(&body(json!({"reasoning": {"effort": "high"}})));
    assert_eq!(
        high.message(),
        "Unsupported value: 'high' is not supported with the 'gpt-6-luna' model. Supported values are: 'low', 'medium'."
    );
    assert_eq!(high.body["error"]["param"], "reasoning.effort");
    let budget = refused(&body(
        json!({"reasoning": {"effort": "low", "budget_tokens": 10}}),
    ));
    assert_eq!(
        budget.message(),
        "Unknown parameter: 'reasoning.budget_tokens'."
    );
    let summary = refused(&body(json!({"reasoning": {"summary": "verbose"}})));
    assert_eq!(summary.body["error"]["param"], "reasoning.summary");
}

#[test]
fn scalars_have_their_types() {
    let include = refused(&body(json!({"include": ["reasoning.summary"]})));
    assert_eq!(include.body["error"]["param"], "include[0]");
    let parallel = refused(&body(json!({"parallel_tool_calls": "yes"})));
    assert_eq!(parallel.body["error"]["code"], "invalid_type");
    let instructions = refused(&body(json!({"instructions": [{"type": "text"}]})));
    assert_eq!(instructions.body["error"]["param"], "instructions");
}

/// The fake Codex backend answers a refused body with the backend's 400 before any scripted
/// reply, and keeps it for the test to inspect.
#[tokio::test]
async fn the_fake_backend_refuses_before_replying() {
    use crate::support::fake_upstream::{FakeUpstream, Reply};
    use crate::support::serve::http_client;

    let fake = FakeUpstream::start().await;
    fake.push(Reply::json(200, json!({"scripted": true})));
    let url = format!("{}/responses", fake.codex_base());
    let refused = http_client()
        .post(&url)
        .json(&body(json!({"stream": false})))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        json!({"detail": "Stream must be set to true"})
    );
    assert_eq!(fake.rejections().len(), 1);
    let accepted = http_client()
        .post(&url)
        .json(&body(json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(
        accepted.json::<Value>().await.unwrap(),
        json!({"scripted": true})
    );
}
