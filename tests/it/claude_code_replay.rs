//! Claude Code's recorded requests (`tests/fixtures/clients/claude-code/`, re-recorded with
//! `BITROUTER_RECORD=1`) replayed through the Messages translator in-process: each
//! `/v1/messages` request must translate to a body the strict Codex backend accepts, and each
//! `count_tokens` request must be counted. A Claude Code upgrade that sends something new
//! shows here, without running Claude Code.

use bitrouter::translate::messages::{count_tokens, messages_to_responses, thinking};
use serde_json::Value;

use crate::support::client_fixtures;
use crate::support::strict;

/// The fake's catalog, and the model its routes send Claude Code's requests to.
fn catalog() -> Value {
    serde_json::json!({"models": [
        {"slug": "gpt-6.1-sol", "supported_reasoning_levels": [{"effort": "low"}, {"effort": "medium"}]},
    ]})
}

#[test]
fn every_recorded_claude_code_request_translates_to_an_accepted_backend_request() {
    let requests = client_fixtures::load("claude-code");
    assert!(
        requests.len() >= 8,
        "only {} recorded requests",
        requests.len()
    );
    let mut counted = 0;
    for (scenario, request) in &requests {
        let path = request["path"].as_str().unwrap_or("");
        let body = &request["body"];
        if path.starts_with("/v1/messages/count_tokens") {
            let tokens = count_tokens(body)
                .unwrap_or_else(|e| panic!("{scenario}: count_tokens refused: {e}"));
            assert!(tokens > 100, "{scenario}: {tokens} tokens");
            counted += 1;
            continue;
        }
        assert!(path.starts_with("/v1/messages"), "{scenario}: {path}");
        let translated = messages_to_responses(body.clone())
            .unwrap_or_else(|e| panic!("{scenario}: {path} refused: {e}"));
        let mut upstream = translated.responses_body;
        upstream["model"] = "gpt-6.1-sol".into();
        thinking::fit_effort(&mut upstream, &["low".to_owned(), "medium".to_owned()]);
        if let Err(rejection) = strict::check(&upstream, &catalog()) {
            panic!(
                "{scenario}: the strict backend refuses it: {}",
                rejection.message()
            );
        }
    }
    assert!(counted > 0, "no count_tokens request was recorded");
}
