//! Replays every request real clients sent bitrouter (`tests/fixtures/clients/*/`) through the
//! production translators, without the clients, and checks each translated body against the
//! strict Codex backend's rules: a translator change that breaks what a client sends, or a
//! re-recorded client that sends something new, fails here in milliseconds.

use serde_json::Value;

use bitrouter::translate::chat::chat_to_responses_for;
use bitrouter::translate::messages::messages_to_responses_for;
use bitrouter::translate::responses::shape_for_codex;
use bitrouter::translate::{Backend, TranslateError};

use crate::support::fake_upstream::codex_catalog;
use crate::support::fixtures;
use crate::support::strict;

/// What the server sends the Codex backend for one inbound request, as far as translation
/// goes; `None` for the endpoints that are not translated (token counting, compaction).
fn translate(path: &str, body: Value) -> Option<Result<Value, TranslateError>> {
    let path = path.split('?').next().unwrap_or(path);
    let translated = match path {
        "/v1/chat/completions" => {
            chat_to_responses_for(body, Backend::Codex).map(|r| r.responses_body)
        }
        "/v1/messages" => messages_to_responses_for(body, Backend::Codex).map(|r| r.responses_body),
        "/v1/responses" => shape_for_codex(body).map(|s| s.body),
        _ => return None,
    };
    Some(translated)
}

/// The model the backend gets: routing (not translation) maps a client's model name, so a
/// name outside the fake's catalog (e.g. an alias) is replaced by one in it.
fn routed(mut body: Value, catalog: &Value) -> Value {
    let known = catalog["models"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["slug"] == body["model"]);
    if !known {
        body["model"] = Value::String("gpt-6.1-sol".to_owned());
    }
    body
}

/// Every recorded request of every client translates, and the backend would accept the result.
#[test]
fn every_recorded_client_request_translates_to_a_body_the_backend_accepts() {
    let catalog = codex_catalog();
    let mut failures = Vec::new();
    let mut checked = 0;
    let clients = fixtures::clients();
    assert!(!clients.is_empty(), "no recorded clients");
    for client in &clients {
        for (scenario, request) in fixtures::load(client) {
            // WebSocket messages continue earlier responses whose output is not recorded, so
            // they cannot be spelled out here; `codex_cli` checks them against the backend.
            if request["method"] != "POST" {
                continue;
            }
            let name = format!("{client}/{scenario} {}", request["path"]);
            let path = request["path"].as_str().unwrap_or("");
            let Some(translated) = translate(path, request["body"].clone()) else {
                continue;
            };
            checked += 1;
            match translated {
                Err(e) => failures.push(format!("{name}: bitrouter refuses it: {e}")),
                Ok(body) => {
                    if let Err(rejection) = strict::check(&routed(body, &catalog), &catalog) {
                        failures.push(format!(
                            "{name}: the backend would answer {}: {}",
                            rejection.status,
                            rejection.message()
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 0, "no translatable fixtures");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The check above can fail: a recorded Chat Completions body sent to the backend untranslated
/// is refused.
#[test]
fn the_backend_rules_refuse_an_untranslated_client_body() {
    let catalog = codex_catalog();
    let (_, request) = fixtures::load("opencode").into_iter().next().unwrap();
    assert_eq!(request["path"], "/v1/chat/completions");
    let mut body = request["body"].clone();
    body["store"] = Value::Bool(false);
    assert!(strict::check(&body, &catalog).is_err());
}
