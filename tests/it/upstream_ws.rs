//! `websocket: true` on `openai-codex`: Responses streams go to the backend over its WebSocket
//! transport (the fake speaking it, see `support::fake_ws`), and to HTTP when the upgrade is
//! refused.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestContext;
use crate::support::clients;
use crate::support::fake_replies::Reply;
use crate::support::fake_upstream::{DEFAULT_TEXT, FakeUpstream, Recorded};
use crate::support::fake_ws::TRANSPORT_HEADER;
use crate::support::model::ToolLoop;
use crate::support::serve::{ServeProcess, Token, http_client, seed_tokens};

/// bitrouter with one stored account, `websocket: true` on the fake backend.
async fn ws_server(fake: &FakeUpstream) -> (TestContext, ServeProcess) {
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
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    websocket: true\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    (ctx, server)
}

fn handshakes(fake: &FakeUpstream) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/backend-api/codex/responses")
        .collect()
}

fn responses(fake: &FakeUpstream) -> Vec<Recorded> {
    fake.posts()
        .into_iter()
        .filter(|r| r.path == "/backend-api/codex/responses")
        .collect()
}

/// A request of one conversation (its `session-id` header, as the Codex CLI sends it).
async fn ask(server: &ServeProcess, stream: bool) -> reqwest::Response {
    http_client()
        .post(format!("{}/v1/responses", server.url()))
        .header("session-id", "conv-a")
        .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": stream}))
        .send()
        .await
        .unwrap()
}

/// A streamed and a whole Responses request reach the backend over WebSockets with the
/// account's credential and the transport's beta header, and come back as over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_go_to_the_backend_over_a_websocket() {
    let fake = FakeUpstream::start().await;
    fake.speak_websocket();
    let (_ctx, server) = ws_server(&fake).await;

    let resp = ask(&server, true).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("event: response.created"), "{text}");
    assert!(text.contains(DEFAULT_TEXT), "{text}");
    assert!(text.contains("event: response.completed"), "{text}");

    let resp = ask(&server, false).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["output"][0]["content"][0]["text"], DEFAULT_TEXT,
        "{body}"
    );

    let shakes = handshakes(&fake);
    // One socket per serving thread the two requests landed on (the client's second request
    // may come on a new connection); the next test pins a conversation to one thread.
    assert!(matches!(shakes.len(), 1 | 2), "{} handshakes", shakes.len());
    for shake in &shakes {
        assert_eq!(
            shake.header("openai-beta").as_deref(),
            Some("responses_websockets=2026-02-06")
        );
        assert_eq!(
            shake.header("authorization").as_deref(),
            Some("Bearer tok-work")
        );
        assert_eq!(
            shake.header("chatgpt-account-id").as_deref(),
            Some("acc-work")
        );
    }
    let posts = responses(&fake);
    assert_eq!(posts.len(), 2);
    for post in &posts {
        assert_eq!(post.header(TRANSPORT_HEADER).as_deref(), Some("websocket"));
        assert_eq!(post.json()["stream"], true);
    }
    assert!(fake.rejections().is_empty());
}

/// The backend's `codex.rate_limits` event before the answer is the quota an HTTP answer
/// carries in headers: the client gets the `x-codex-*` headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_events_become_the_quota_headers() {
    let fake = FakeUpstream::start().await;
    fake.speak_websocket();
    fake.set_quota("acc-work", 12.0, 40.0);
    let (_ctx, server) = ws_server(&fake).await;
    let resp = ask(&server, true).await;
    assert_eq!(resp.status(), 200);
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header("x-codex-primary-used-percent").as_deref(),
        Some("12.0")
    );
    assert_eq!(
        header("x-codex-secondary-used-percent").as_deref(),
        Some("40.0")
    );
    assert_eq!(header("x-codex-plan-type").as_deref(), Some("plus"));
    let text = resp.text().await.unwrap();
    assert!(!text.contains("codex.rate_limits"), "{text}");
    assert!(text.contains(DEFAULT_TEXT));
}

/// One turn of conversation `session` on a socket of its own to bitrouter (a client socket
/// is served by one thread, as are the upstream sockets it uses), answered in full.
async fn turns_on_a_client_socket(server: &ServeProcess, session: &str, turns: usize) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let addr = server.url().trim_start_matches("http://").to_owned();
    let mut request = format!("ws://{addr}/v1/responses")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("session-id", session.parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    let create = json!({"type": "response.create", "model": "gpt-6-luna", "stream": true,
        "store": false, "instructions": "", "input": [{"type": "message", "role": "user", "content": "hi"}]});
    for _ in 0..turns {
        socket
            .send(Message::text(create.to_string()))
            .await
            .unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("an event within 10 s")
                .expect("the socket stays open")
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let event: Value = serde_json::from_str(&text).unwrap();
            assert_ne!(event["type"], "error", "{event}");
            if event["type"] == "response.completed" {
                break;
            }
        }
    }
}

/// A conversation's requests share one socket to the backend and another conversation gets a
/// socket of its own; a parked socket the backend closed meanwhile is replaced by a new one
/// without the client noticing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_are_kept_per_conversation_and_replaced_when_closed() {
    let fake = FakeUpstream::start().await;
    fake.speak_websocket();
    let (_ctx, server) = ws_server(&fake).await;
    turns_on_a_client_socket(&server, "conv-a", 2).await;
    assert_eq!(handshakes(&fake).len(), 1, "one conversation, one socket");
    turns_on_a_client_socket(&server, "conv-b", 1).await;
    assert_eq!(handshakes(&fake).len(), 2, "two conversations, two sockets");

    fake.close_websockets_after_one_answer();
    turns_on_a_client_socket(&server, "conv-c", 2).await;
    assert_eq!(handshakes(&fake).len(), 4, "the closed socket was replaced");
    assert_eq!(responses(&fake).len(), 5);
}

/// `n` streamed requests of conversation `session` on one HTTP connection (so one serving
/// thread): each answer's headers and body.
async fn on_one_connection(
    server: &ServeProcess,
    session: &str,
    n: usize,
) -> Vec<(http::HeaderMap, String)> {
    use http_body_util::BodyExt;
    let addr = server.url().trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut out = Vec::new();
    for _ in 0..n {
        let body = json!({"model": "gpt-6-luna", "input": "hi", "stream": true}).to_string();
        let request = http::Request::post("/v1/responses")
            .header("host", &addr)
            .header("content-type", "application/json")
            .header("session-id", session)
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        sender.ready().await.unwrap();
        let answer = sender.send_request(request).await.unwrap();
        assert_eq!(answer.status(), 200);
        let (parts, body) = answer.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        out.push((parts.headers, String::from_utf8_lossy(&body).into_owned()));
    }
    out
}

/// Requests of one conversation on one connection share one socket to the backend, and every
/// answer carries what the backend said on the socket's handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_socket_answers_with_its_handshakes_headers() {
    let fake = FakeUpstream::start().await;
    fake.speak_websocket();
    let (_ctx, server) = ws_server(&fake).await;
    let answers = on_one_connection(&server, "conv-a", 3).await;
    assert_eq!(handshakes(&fake).len(), 1);
    for (headers, body) in &answers {
        assert_eq!(headers["x-models-etag"], "fake-models-etag");
        assert!(body.contains(DEFAULT_TEXT), "{body}");
    }
}

/// An upstream that answers the upgrade with `426` gets HTTP at once, and from then on without
/// asking again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upgrade_falls_back_to_http() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = ws_server(&fake).await;
    for _ in 0..2 {
        let resp = ask(&server, true).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains(DEFAULT_TEXT));
    }
    assert_eq!(handshakes(&fake).len(), 1, "the refusal is remembered");
    let posts = responses(&fake);
    assert_eq!(posts.len(), 2);
    assert!(posts.iter().all(|p| p.header(TRANSPORT_HEADER).is_none()));
}

/// The backend's error frame (its status, error and quota headers) is the same answer as over
/// HTTP: a usage limit cools the account and the client gets the 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_frame_is_answered_like_the_http_error() {
    let fake = FakeUpstream::start().await;
    fake.speak_websocket();
    let (_ctx, server) = ws_server(&fake).await;
    fake.push(Reply::usage_limit(4_102_444_800));
    let resp = ask(&server, true).await;
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "usage_limit_reached", "{body}");
    assert_eq!(handshakes(&fake).len(), 1);
}

/// The real Codex CLI on WebSockets to bitrouter, and bitrouter on WebSockets to the backend:
/// a tool loop, each turn over both sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Codex CLI"]
async fn codex_exec_over_websockets_both_ways() {
    let fake = FakeUpstream::start().await;
    fake.speak_websocket();
    let (ctx, server) = ws_server(&fake).await;
    let tool_loop = ToolLoop::custom(
        "exec",
        "const r = await tools.exec_command({cmd: \"cat secret.txt\"}); text(r.output);",
        "banana",
    );
    fake.respond_with(tool_loop.clone().responder());
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("secret.txt"), "the secret word is banana\n").unwrap();
    clients::write_codex_config(&ctx, &server.url(), "supports_websockets = true\n");
    let cmd = clients::codex_exec(&ctx, &work, "What is the secret word in secret.txt?");
    let out = clients::run("codex exec", cmd, &server, Duration::from_secs(120)).await;
    assert!(
        out.stdout.contains(&tool_loop.final_text()),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let posts = responses(&fake);
    assert_eq!(posts.len(), 2, "two turns (the warm-up stays in bitrouter)");
    assert!(
        posts
            .iter()
            .all(|p| p.header(TRANSPORT_HEADER).as_deref() == Some("websocket"))
    );
    assert_eq!(handshakes(&fake).len(), 1, "both turns on one socket");
    assert!(fake.rejections().is_empty());
}
