//! What Claude Code 2.1 sends: system messages in place, per-turn effort, thinking signatures,
//! context management, deferred tools and tool changes, web search, metadata.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::super::*;

/// The input items of a translated request.
fn input_of(body: Value) -> Vec<Value> {
    messages_to_responses(body).unwrap().responses_body["input"]
        .as_array()
        .unwrap()
        .clone()
}

fn user_text(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

fn developer(text: &str) -> Value {
    json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": text}]})
}

#[test]
fn system_messages_become_developer_messages_in_place() {
    // Claude Code 2.1 sends its environment as a system message after the user's.
    let input = input_of(json!({
        "model": "m", "system": [{"type": "text", "text": "top", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "hello"},
            {"role": "system", "content": [{"type": "text", "text": "env", "cache_control": {"type": "ephemeral"}}],
                "output_config": {"effort": "high"}},
            {"role": "assistant", "content": "hi"},
            {"role": "system", "content": "only until the next user message", "clear_at": "next_user_message"},
            {"role": "user", "content": "again"},
            {"role": "system", "content": "still shown", "clear_at": "next_user_message"},
        ]
    }));
    assert_eq!(
        input,
        vec![
            developer("top"),
            user_text("hello"),
            developer("env"),
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}),
            user_text("again"),
            developer("still shown"),
        ]
    );
}

#[test]
fn effort_comes_from_the_turn_then_the_request_then_thinking() {
    let reasoning =
        |body: Value| messages_to_responses(body).unwrap().responses_body["reasoning"].clone();
    let base = |extra: Value| {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "thinking": {"type": "adaptive", "display": "omitted"}});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    assert_eq!(reasoning(base(json!({}))), json!({}));
    assert_eq!(
        reasoning(base(json!({"output_config": {"effort": "medium"}}))),
        json!({"effort": "medium"})
    );
    assert_eq!(
        reasoning(base(
            json!({"output_config": {"effort": "low"}, "messages": [
                {"role": "user", "content": "x"},
                {"role": "system", "content": "turn", "output_config": {"effort": "max"}}
            ]})
        )),
        json!({"effort": "max"})
    );
    assert_eq!(
        reasoning(base(
            json!({"thinking": {"type": "enabled", "budget_tokens": 2000, "display": "summarized"}})
        )),
        json!({"effort": "low", "summary": "auto"})
    );
    let bad =
        messages_to_responses(base(json!({"output_config": {"effort": "extreme"}}))).unwrap_err();
    assert_eq!(
        bad.to_string(),
        "invalid `output_config.effort`: must be one of low, medium, high, xhigh or max"
    );
}

#[test]
fn fit_effort_picks_the_nearest_supported_level_below() {
    let fit = |asked: &str, supported: &[&str]| {
        let mut body = json!({"reasoning": {"effort": asked}});
        let supported: Vec<String> = supported.iter().map(|s| (*s).to_owned()).collect();
        thinking::fit_effort(&mut body, &supported);
        body["reasoning"]["effort"].clone()
    };
    assert_eq!(fit("max", &["low", "medium", "high", "xhigh"]), "xhigh");
    assert_eq!(fit("high", &["low", "medium"]), "medium");
    assert_eq!(fit("none", &["low", "medium"]), "low");
    assert_eq!(fit("medium", &["low", "medium"]), "medium");
    assert_eq!(fit("medium", &[]), "medium");
}

#[test]
fn bitrouter_signatures_round_trip_and_foreign_ones_are_dropped() {
    let request = messages_to_responses(json!({
        "model": "m", "thinking": {"type": "adaptive"},
        "messages": [
            {"role": "user", "content": "run ls"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "", "signature": "bitrouter.reasoning.v1:gAAAA1"},
                {"type": "thinking", "thinking": "anthropic's", "signature": "EqQBCkgIARAB"},
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt"}]},
        ],
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]
    }))
    .unwrap();
    let input = request.responses_body["input"].as_array().unwrap().clone();
    assert_eq!(
        input[1],
        json!({"type": "reasoning", "summary": [], "encrypted_content": "gAAAA1"})
    );
    assert_eq!(input[2]["type"], "function_call");
    assert_eq!(input.len(), 4);
    assert!(
        request
            .dropped
            .contains(&"messages[1].content[1] (thinking)".to_owned())
    );
    assert!(
        request
            .dropped
            .contains(&"messages[1].content[2] (redacted_thinking)".to_owned())
    );
    assert_eq!(
        request.responses_body["include"],
        json!(["reasoning.encrypted_content"])
    );
}

#[test]
fn clear_thinking_keeps_the_latest_turns() {
    let signed = |n: u32| json!({"type": "thinking", "thinking": format!("t{n}"), "signature": format!("bitrouter.reasoning.v1:e{n}")});
    let body = |keep: Value| {
        json!({"model": "m", "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": keep}]},
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": [signed(1), {"type": "text", "text": "one"}]},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": [signed(2), {"type": "text", "text": "two"}]},
            {"role": "user", "content": "c"},
        ]})
    };
    let reasoning = |keep: Value| {
        input_of(body(keep))
            .into_iter()
            .filter(|i| i["type"] == "reasoning")
            .map(|i| i["encrypted_content"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(reasoning(json!("all")), ["e1", "e2"]);
    assert_eq!(
        reasoning(json!({"type": "thinking_turns", "value": 1})),
        ["e2"]
    );
    assert_eq!(
        reasoning(json!({"type": "thinking_turns", "value": 0})),
        Vec::<String>::new()
    );
    let other = messages_to_responses(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "context_management": {"edits": [{"type": "compact_20260112"}]}}),
    )
    .unwrap_err();
    assert!(other.to_string().contains("compact_20260112"), "{other}");
}

#[test]
fn tool_results_come_before_the_rest_of_their_message() {
    let input = input_of(json!({"model": "m", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "Read", "input": {"file_path": "/a"}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>note</system-reminder>"},
            {"type": "tool_result", "tool_use_id": "c1", "content": [
                {"type": "text", "text": "line 1"},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc body"}, "title": "notes.txt"},
                {"type": "search_result", "source": "https://example.com", "title": "Example", "content": [{"type": "text", "text": "found"}]}
            ]}
        ]},
    ], "tools": [{"name": "Read", "input_schema": {"type": "object"}}]}));
    assert_eq!(input[1]["type"], "function_call");
    assert_eq!(
        input[2],
        json!({"type": "function_call_output", "call_id": "c1",
            "output": "line 1\nnotes.txt\n\ndoc body\nExample\nSource: https://example.com\n\nfound"})
    );
    assert_eq!(
        input[3],
        user_text("<system-reminder>note</system-reminder>")
    );
}

#[test]
fn deferred_tools_load_when_referenced_and_tool_changes_apply() {
    let tools = |body: Value| {
        messages_to_responses(body).unwrap().responses_body["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .map(|t| t["name"].as_str().unwrap_or("web_search").to_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let declared = json!([
        {"name": "ToolSearch", "input_schema": {"type": "object"}},
        {"name": "DeferredToolPlaceholder", "input_schema": {"type": "object"}, "defer_loading": true},
        {"name": "WebFetch", "input_schema": {"type": "object"}, "defer_loading": true},
    ]);
    assert_eq!(
        tools(
            json!({"model": "m", "tools": declared, "messages": [{"role": "user", "content": "x"}]})
        ),
        ["ToolSearch"]
    );
    assert_eq!(
        tools(json!({"model": "m", "tools": declared, "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "ToolSearch", "input": {"query": "select:WebFetch"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": [{"type": "tool_reference", "tool_name": "WebFetch"}]}]},
        ]})),
        ["ToolSearch", "WebFetch"]
    );
    assert_eq!(
        tools(json!({"model": "m", "tools": declared, "messages": [
            {"role": "user", "content": "x"},
            {"role": "system", "content": [
                {"type": "tool_removal", "tool": {"type": "tool_reference", "name": "ToolSearch"}},
                {"type": "tool_addition", "tool": {"type": "tool_definition", "definition": {"name": "Inline", "input_schema": {"type": "object"}}}}
            ]},
        ]})),
        ["Inline"]
    );
    // A name declared twice is sent twice, with the later definition, as it always was: the
    // definitions move to the new body, and only the earlier place gets a copy.
    let twice = messages_to_responses(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [
        {"name": "Read", "description": "first", "input_schema": {"type": "object"}},
        {"name": "Read", "description": "second", "input_schema": {"type": "object", "properties": {}}},
    ]}))
    .unwrap();
    let sent = twice.responses_body["tools"].as_array().unwrap().clone();
    assert_eq!(sent.len(), 2);
    for tool in sent {
        assert_eq!(tool["description"], "second");
        assert_eq!(
            tool["parameters"],
            json!({"type": "object", "properties": {}})
        );
    }
}

#[test]
fn web_search_maps_to_the_backend_tool_and_back() {
    let request = messages_to_responses(json!({"model": "m",
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 8,
            "allowed_domains": ["example.com"], "user_location": {"type": "approximate", "city": "Paris", "country": "FR"}}],
        "tool_choice": {"type": "tool", "name": "web_search"},
        "messages": [
            {"role": "user", "content": "search"},
            {"role": "assistant", "content": [
                {"type": "server_tool_use", "id": "srvtoolu_ws_1", "name": "web_search", "input": {"query": "rust"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_ws_1", "content": []},
                {"type": "text", "text": "found it"}
            ]},
            {"role": "user", "content": "more"},
        ]}))
    .unwrap();
    let body = request.responses_body;
    assert_eq!(
        body["tools"],
        json!([{"type": "web_search", "filters": {"allowed_domains": ["example.com"]},
            "user_location": {"type": "approximate", "city": "Paris", "country": "FR"}}])
    );
    assert_eq!(body["tool_choice"], json!({"type": "web_search"}));
    assert_eq!(
        body["input"][1],
        json!({"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "rust"}})
    );
    let blocked = messages_to_responses(json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "blocked_domains": ["a.com"]}]}))
    .unwrap_err();
    assert!(
        blocked
            .to_string()
            .starts_with("unsupported `tools[0].blocked_domains`"),
        "{blocked}"
    );
    let bash = messages_to_responses(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "bash_20250124", "name": "bash"}]}),
    )
    .unwrap_err();
    assert!(
        bash.to_string()
            .starts_with("unsupported `tools[0].type`: the `bash_20250124` tool"),
        "{bash}"
    );
}

#[test]
fn metadata_speed_and_output_format_are_mapped() {
    let body = messages_to_responses(json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "metadata": {"user_id": "{\"device_id\":\"d\",\"account_uuid\":\"\",\"session_id\":\"s-1\"}"},
        "speed": "fast",
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        "cache_control": {"type": "ephemeral"}}))
    .unwrap()
    .responses_body;
    assert_eq!(body["prompt_cache_key"], "s-1");
    assert_eq!(body["service_tier"], "priority");
    assert_eq!(
        body["text"],
        json!({"format": {"type": "json_schema", "name": "output", "schema": {"type": "object"}, "strict": true}})
    );
}
