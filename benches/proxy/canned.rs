//! The canned exchange every benchmark measures: a small streamed Responses request as the Codex
//! CLI sends it, and the 5 events of its answer as the Codex backend streams them.

/// SSE events of one short streamed response.
pub(crate) const EVENTS: [&str; 5] = [
    "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"created_at\":1,\"model\":\"gpt-6.1-sol\",\"output\":null}}\n\n",
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[]}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello\"}\n\n",
    "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello\"}]}}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1,\"total_tokens\":6}}}\n\n",
];

/// The request every client sends: a small streamed Responses request, as the Codex CLI sends it.
pub(crate) const REQUEST: &str = r#"{"model":"gpt-6.1-sol","stream":true,"store":false,"instructions":"","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#;

/// The request every client sends: the canned one, or the one the file `BITROUTER_BENCH_BODY`
/// names, to see what a real client's request costs: a JSON body (sent to `/v1/responses`), or
/// a recorded client fixture (`tests/fixtures/clients/<client>/<test>.json`), whose first
/// request's body is sent to its path (Claude Code's to `/v1/messages?beta=true`, say). A
/// fixture request that is not a Responses request asks for `openai-codex:gpt-6.1-sol`, as
/// `bitrouter connect` sets such clients up.
fn request() -> &'static (String, String) {
    static REQUEST_SENT: std::sync::LazyLock<(String, String)> =
        std::sync::LazyLock::new(|| match std::env::var("BITROUTER_BENCH_BODY") {
            Ok(path) if !path.is_empty() => {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("BITROUTER_BENCH_BODY={path}: {e}"));
                let json: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("BITROUTER_BENCH_BODY={path}: {e}"));
                let Some(first) = json.pointer("/requests/0") else {
                    return (RESPONSES_PATH.to_owned(), text);
                };
                let route = first["path"].as_str().unwrap_or(RESPONSES_PATH).to_owned();
                let mut body = first["body"].clone();
                if route != RESPONSES_PATH {
                    body["model"] = serde_json::json!("openai-codex:gpt-6.1-sol");
                }
                (route, body.to_string())
            }
            _ => (RESPONSES_PATH.to_owned(), REQUEST.to_owned()),
        });
    &REQUEST_SENT
}

const RESPONSES_PATH: &str = "/v1/responses";

/// The body of the request every client sends ([`request`]).
pub(crate) fn request_body() -> &'static str {
    &request().1
}

/// Where every client sends it ([`request`]): a path on bitrouter and on the nginx proxy.
pub(crate) fn request_path() -> &'static str {
    &request().0
}
