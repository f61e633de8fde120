//! Glob aliases, their pins, and `+effort`/`+fast` variant ids through the real binary: what the
//! upstream body carries (a route's pin beats the request, the request beats a suffix), what
//! `/v1/models`, `models` and `route` show, and refusals (unsupported variants, bad config).

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::fake_upstream::FakeUpstream;
use crate::support::serve::{ServeProcess, Token, http_client, seed_tokens};

/// The fake's catalog: `gpt-6.1-sol` (efforts low and medium, the priority tier) and
/// `gpt-6-luna` (low and medium only).
fn config(fake: &FakeUpstream) -> String {
    format!(
        r#"providers:
  openai-codex:
    base_url: {codex}
routes:
  "claude-*": openai-codex:gpt-6-luna
  "claude-sonnet-*": {{to: openai-codex:gpt-6.1-sol, effort: medium, service_tier: fast}}
  luna-low: gpt-6-luna+low
  standard: {{to: gpt-6.1-sol, service_tier: default}}
"#,
        codex = fake.codex_base()
    )
}

async fn start(fake: &FakeUpstream) -> (TestContext, ServeProcess) {
    let ctx = TestContext::new();
    seed_tokens(
        &ctx,
        &[Token {
            provider: "openai-codex",
            label: "work",
            token: "tok-work",
            account_id: Some("acc-work"),
        }],
    );
    ctx.write_config(&config(fake));
    let server = ServeProcess::start(&ctx, &[]).await;
    (ctx, server)
}

async fn post(server: &ServeProcess, path: &str, body: &Value) -> reqwest::Response {
    http_client()
        .post(format!("{}{path}", server.url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn models(server: &ServeProcess) -> Value {
    http_client()
        .get(format!("{}/v1/models", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Sends one request and returns the body the fake backend received for it.
async fn upstream_body(
    server: &ServeProcess,
    fake: &FakeUpstream,
    path: &str,
    body: Value,
) -> Value {
    let before = fake.posts().len();
    let resp = post(server, path, &body).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{path} {body}: {text}");
    let posts = fake.posts();
    assert_eq!(posts.len(), before + 1, "one upstream request for {body}");
    posts[before].json()
}

/// (model, reasoning.effort, service_tier) of an upstream Responses body.
fn seen(body: &Value) -> (String, Option<String>, Option<String>) {
    (
        body["model"].as_str().unwrap().to_owned(),
        body["reasoning"]["effort"].as_str().map(str::to_owned),
        body["service_tier"].as_str().map(str::to_owned),
    )
}

fn want(
    model: &str,
    effort: Option<&str>,
    tier: Option<&str>,
) -> (String, Option<String>, Option<String>) {
    (
        model.to_owned(),
        effort.map(str::to_owned),
        tier.map(str::to_owned),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_beat_the_request_and_the_request_beats_a_suffix() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = start(&fake).await;
    let input = json!([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]);
    let responses = |model: &str, extra: Value| {
        let mut body = json!({"model": model, "input": input, "stream": false});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        // The glob alias pins effort and tier: the request's own effort is replaced.
        (
            responses("claude-sonnet-4-5", json!({"reasoning": {"effort": "low"}})),
            want("gpt-6.1-sol", Some("medium"), Some("priority")),
        ),
        (
            responses("claude-sonnet-4-5", json!({"service_tier": "flex"})),
            want("gpt-6.1-sol", Some("medium"), Some("priority")),
        ),
        // A less specific glob, without pins: the request passes as it is.
        (
            responses("claude-haiku-4-5", json!({"reasoning": {"effort": "low"}})),
            want("gpt-6-luna", Some("low"), None),
        ),
        // Suffixes fill in what the request leaves out...
        (
            responses("gpt-6.1-sol+low+fast", json!({})),
            want("gpt-6.1-sol", Some("low"), Some("priority")),
        ),
        // ...and the request's own parameters win over them.
        (
            responses(
                "gpt-6.1-sol+low+fast",
                json!({"reasoning": {"effort": "medium"}, "service_tier": "flex"}),
            ),
            want("gpt-6.1-sol", Some("medium"), Some("flex")),
        ),
        // A route to a suffixed id keeps the suffix a default.
        (
            responses("luna-low", json!({"reasoning": {"effort": "medium"}})),
            want("gpt-6-luna", Some("medium"), None),
        ),
        (
            responses("luna-low", json!({})),
            want("gpt-6-luna", Some("low"), None),
        ),
        // `service_tier: default` pinned sends standard processing whatever the client asked.
        (
            responses("standard", json!({"service_tier": "priority"})),
            want("gpt-6.1-sol", None, None),
        ),
    ];
    for (request, expected) in cases {
        let body = upstream_body(&server, &fake, "/v1/responses", request.clone()).await;
        assert_eq!(seen(&body), expected, "{request}");
        if body["reasoning"].is_object() {
            assert!(
                body["include"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("reasoning.encrypted_content")),
                "{body}"
            );
        }
    }

    // Translated requests get the pin after translation: Chat's `reasoning_effort` and
    // Anthropic's `thinking` budget are both replaced by the alias's effort.
    let chat = upstream_body(
        &server,
        &fake,
        "/v1/chat/completions",
        json!({"model": "claude-sonnet-4-5", "reasoning_effort": "low",
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(
        seen(&chat),
        want("gpt-6.1-sol", Some("medium"), Some("priority"))
    );
    let chat = upstream_body(
        &server,
        &fake,
        "/v1/chat/completions",
        json!({"model": "gpt-6.1-sol+low", "reasoning_effort": "medium",
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(seen(&chat), want("gpt-6.1-sol", Some("medium"), None));
    let messages = upstream_body(
        &server,
        &fake,
        "/v1/messages",
        json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(
        seen(&messages),
        want("gpt-6.1-sol", Some("medium"), Some("priority"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_lists_catalog_variants_and_named_routes() {
    let fake = FakeUpstream::start().await;
    let (ctx, server) = start(&fake).await;
    let doc = models(&server).await;
    let data = doc["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "gpt-6-luna",
            "gpt-6-luna+low",
            "gpt-6-luna+medium",
            "gpt-6.1-sol",
            "gpt-6.1-sol+low",
            "gpt-6.1-sol+medium",
            "gpt-6.1-sol+fast",
            "gpt-6.1-sol+low+fast",
            "gpt-6.1-sol+medium+fast",
            "luna-low",
            "standard",
        ]
    );
    let find = |id: &str| data.iter().find(|m| m["id"] == id).unwrap();
    assert_eq!(
        find("gpt-6.1-sol+medium+fast")["metadata"],
        json!({"provider": {"id": "openai-codex"},
            "variant": {"model": "gpt-6.1-sol", "effort": "medium", "service_tier": "priority"}})
    );
    assert_eq!(find("luna-low")["owned_by"], "openai-codex");
    assert_eq!(
        find("standard")["metadata"]["route"],
        json!({"to": ["gpt-6.1-sol"], "effort": null, "service_tier": "default"})
    );

    // `bitrouter models` shows the same, with the variant words per model and the glob routes.
    let out = ctx.cmd().arg("models").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&"gpt-6.1-sol  openai-codex  +low +medium +fast"),
        "{text}"
    );
    assert!(
        lines.contains(&"gpt-6-luna   openai-codex  +low +medium"),
        "{text}"
    );
    assert!(
        text.contains(
            "claude-sonnet-*  openai-codex:gpt-6.1-sol  (pins effort medium, service_tier priority)"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variants_the_catalog_does_not_offer_are_refused() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = start(&fake).await;
    // Listing fetches the catalog, so the server knows what each model offers.
    models(&server).await;
    let input = json!([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]);
    let posts = fake.posts().len();
    for (model, status, code, needle) in [
        (
            "gpt-6-luna+fast",
            404,
            "unsupported_variant",
            "openai-codex:gpt-6-luna does not offer `+fast` (it offers +low, +medium)",
        ),
        (
            "gpt-6-luna+high",
            404,
            "unsupported_variant",
            "does not offer `+high`",
        ),
        (
            "gpt-6-luna+",
            400,
            "invalid_variant",
            "empty variant after `+`",
        ),
        (
            "claude-sonnet-4-5+low",
            400,
            "variant_of_route",
            "variants apply to models, and `claude-sonnet-*` is a route",
        ),
    ] {
        let resp = post(
            &server,
            "/v1/responses",
            &json!({"model": model, "input": input}),
        )
        .await;
        assert_eq!(resp.status().as_u16(), status, "{model}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{model}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{model}: {message}");
    }
    // Anthropic clients get the same refusal in their own shape.
    let resp = post(
        &server,
        "/v1/messages",
        &json!({"model": "gpt-6-luna+fast", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("it offers +low, +medium"),
        "{body}"
    );
    assert_eq!(
        fake.posts().len(),
        posts,
        "nothing refused reached the backend"
    );
}

#[test]
fn route_shows_what_a_pin_or_suffix_sets() {
    let ctx = TestContext::new();
    seed_tokens(
        &ctx,
        &[Token {
            provider: "openai-codex",
            label: "work",
            token: "tok-work",
            account_id: None,
        }],
    );
    ctx.write_config(
        "routes:\n  \"claude-*\": gpt-6-luna+low\n  \"claude-sonnet-*\": {to: gpt-6.1-sol, effort: medium}\n",
    );
    let out = ctx
        .cmd()
        .args(["route", "--json", "claude-sonnet-4-5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["route"], "claude-sonnet-*");
    assert_eq!(
        doc["steps"][0]["effort"],
        json!({"value": "medium", "pinned": true, "from": "route", "route": "claude-sonnet-*"})
    );
    assert_eq!(doc["steps"][0]["service_tier"], Value::Null);

    let out = ctx
        .cmd()
        .args(["route", "claude-haiku-4-5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("claude-haiku-4-5 matches route claude-*:\n"),
        "{text}"
    );
    assert!(
        text.contains("effort low (from the +low suffix: the client's own wins)"),
        "{text}"
    );
}

#[test]
fn bad_routes_are_refused_at_load_with_key_and_line() {
    let cases = [
        (
            "routes:\n  \"claude-*\": a\n  \"*-4-5\": b\n  \"gpt-*\": c\n",
            "routes.\"gpt-*\": `*-4-5` and `gpt-*` are equally specific",
        ),
        (
            "routes:\n  sonnet:\n    to: gpt-6.1-sol\n    effort: extreme\n",
            "routes.sonnet.effort: unknown effort `extreme`",
        ),
        (
            "routes:\n  sonnet: []\n",
            "routes.sonnet: list at least one model",
        ),
        ("routes:\n  \"claude-[0-9]\": x\n", "only `*` is a wildcard"),
    ];
    for (text, needle) in cases {
        let ctx = TestContext::new();
        ctx.write_config(text);
        for args in [
            &["route", "x"][..],
            &["serve", "--listen", "127.0.0.1:0"][..],
        ] {
            let out = ctx.cmd().args(args).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?} {text}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(needle), "{stderr}");
            assert!(stderr.contains("at line"), "{stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_reach_chat_and_anthropic_upstreams_in_their_own_fields() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    ctx.write_config(&format!(
        r#"providers:
  chatonly:
    base_url: {url}/chat/v1
    api: openai_chat
    api_key: sk-chat
    models: [chat-model]
  anth:
    base_url: {url}/anth/v1
    api: anthropic_messages
    authorization: x-api-key
    api_key: sk-ant
    models: [claude-model]
routes:
  chatty: {{to: chatonly:chat-model, effort: high, service_tier: fast}}
  thinker: {{to: anth:claude-model, effort: low}}
"#,
        url = fake.url()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    let responses = |model: &str| json!({"model": model, "input": "hi", "stream": false});

    let chat = upstream_body(&server, &fake, "/v1/responses", responses("chatty")).await;
    assert_eq!(chat["reasoning_effort"], "high", "{chat}");
    assert_eq!(chat["service_tier"], "priority", "{chat}");
    // A configured provider has no catalog: a known effort goes upstream as it is.
    let chat = upstream_body(
        &server,
        &fake,
        "/v1/chat/completions",
        json!({"model": "chat-model+xhigh", "stream": false,
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(chat["reasoning_effort"], "xhigh", "{chat}");

    let messages = upstream_body(
        &server,
        &fake,
        "/v1/messages",
        json!({"model": "thinker", "max_tokens": 64, "output_config": {"effort": "high"},
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(messages["output_config"]["effort"], "low", "{messages}");

    // Anthropic's API has no priority tier: refused before anything is sent.
    let before = fake.posts().len();
    let resp = post(
        &server,
        "/v1/messages",
        &json!({"model": "claude-model+fast", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("speaks only anthropic_messages"),
        "{body}"
    );
    assert_eq!(fake.posts().len(), before);
}
