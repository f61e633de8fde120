//! The Codex CLI's Responses WebSocket transport through `bitrouter serve`: the real program
//! with `supports_websockets = true`, and the transport's rules driven by a test client.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::clients::Stage;
use crate::support::clients;
use crate::support::fake_upstream::{DEFAULT_TEXT, FakeUpstream};
use crate::support::model::ToolLoop;
use crate::support::serve::codex_server;

/// The provider line that puts the Codex CLI on its WebSocket transport.
const WEBSOCKETS: &str = "supports_websockets = true\n";

/// `codex exec` on the WebSocket transport runs a tool loop: its warm-up is answered by
/// bitrouter, each turn reaches the backend over HTTP with the whole conversation (the CLI sends
/// only the new items after `previous_response_id`), and it never falls back to HTTP. What it
/// sent is kept as the `codex-cli/ws_tool_loop` fixture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Codex CLI"]
async fn codex_exec_runs_a_tool_loop_over_a_websocket() {
    let stage = Stage::start().await;
    let work = stage.work_dir();
    std::fs::write(work.join("secret.txt"), "the secret word is banana\n").unwrap();
    let tool_loop = ToolLoop::custom(
        "exec",
        "const r = await tools.exec_command({cmd: \"cat secret.txt\"}); text(r.output);",
        "banana",
    );
    stage.play(&tool_loop);
    clients::write_codex_config(&stage.ctx, &stage.base(), WEBSOCKETS);

    let cmd = clients::codex_exec(&stage.ctx, &work, "What is the secret word in secret.txt?");
    let out = clients::run("codex exec", cmd, &stage.server, Duration::from_secs(120)).await;
    assert!(
        out.stdout.contains(&tool_loop.final_text()),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(stage.tool_results().len(), 1, "{:?}", stage.tool_results());

    let sent = stage.recorder.sent();
    let handshakes: Vec<_> = sent.iter().filter(|r| r.method == "GET").collect();
    assert_eq!(handshakes.len(), 1, "one socket for the whole run");
    assert_eq!(handshakes[0].status, 101);
    assert_eq!(
        handshakes[0].headers["openai-beta"],
        "responses_websockets=2026-02-06"
    );
    assert!(
        !sent.iter().any(|r| r.method == "POST"),
        "the Codex CLI fell back to HTTP: {:?}",
        sent.iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    let messages: Vec<&Value> = sent
        .iter()
        .filter(|r| r.method == "WEBSOCKET")
        .map(|r| &r.body)
        .collect();
    assert_eq!(messages.len(), 3, "a warm-up and two turns: {messages:?}");
    assert_eq!(messages[0]["generate"], false);
    assert!(messages[2]["previous_response_id"].is_string());

    let posts = stage.backend_posts();
    assert_eq!(posts.len(), 2, "the warm-up stays in bitrouter");
    let last = posts[1].json();
    let kinds: Vec<&str> = last["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"custom_tool_call") && kinds.contains(&"custom_tool_call_output"),
        "the second turn reached the backend with the whole conversation: {kinds:?}"
    );
    assert!(
        last["input"].to_string().contains("secret.txt"),
        "the user's prompt is in the second turn's input"
    );
    assert!(last.get("previous_response_id").is_none());
    assert!(last.get("generate").is_none());
    for post in &posts {
        assert!(post.header("sec-websocket-key").is_none());
        assert!(post.header("session-id").is_some());
    }

    let scrub = stage
        .scrub()
        .pattern(r"\(([^;()]+); (x86_64|aarch64|arm64)\)", "($$OS; ${2})")
        .pattern(r#"("turn_started_at_unix_ms":)\d+"#, "${1}$$UNIX_MS")
        // The send time of a message, in Unix milliseconds.
        .pattern(r"^\d{13}$", "$$UNIX_MS")
        .pattern(r"Wall time [0-9.]+ seconds", "Wall time $$SECONDS seconds")
        .pattern(r"resp_bitrouter_warmup_[0-9a-f]+", "$$WARMUP_ID");
    let version = clients::npm_version("@openai/codex");
    stage.finish("codex-cli", &version, "ws_tool_loop", &scrub);
}

/// A test client's socket on bitrouter.
async fn connect(base: &str) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let addr = base.trim_start_matches("http://");
    let url = format!("ws://{addr}/v1/responses");
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "openai-beta",
        "responses_websockets=2026-02-06".parse().unwrap(),
    );
    request
        .headers_mut()
        .insert("session-id", "conv-ws".parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (socket, answer) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    assert_eq!(answer.status(), 101);
    socket
}

/// The events of one turn, up to its terminal event or an error.
async fn events<S>(socket: &mut S) -> Vec<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut out = Vec::new();
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
        let kind = event["type"].as_str().unwrap_or("").to_owned();
        out.push(event);
        if matches!(
            kind.as_str(),
            "response.completed" | "response.failed" | "error"
        ) {
            return out;
        }
    }
}

fn create(body: Value) -> Message {
    let mut message = json!({"type": "response.create"});
    message
        .as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    Message::text(message.to_string())
}

/// Several turns on one socket: each answered event by event from the backend, a
/// continuation spelled out in full, and bad messages answered with `error` frames carrying a
/// status, after which the socket still serves.
#[tokio::test]
async fn turns_on_one_socket_reach_the_backend_in_full() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = codex_server(&fake).await;
    let mut socket = connect(&server.url()).await;
    let user = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]});

    socket
        .send(create(
            json!({"model": "gpt-6-luna", "stream": true, "store": false,
            "instructions": "", "input": [user]}),
        ))
        .await
        .unwrap();
    let first = events(&mut socket).await;
    assert_eq!(first[0]["type"], "response.created");
    let completed = first.last().unwrap();
    assert_eq!(completed["type"], "response.completed", "{first:?}");
    assert!(
        first
            .iter()
            .any(|e| e["delta"].as_str() == Some(DEFAULT_TEXT)),
        "{first:?}"
    );
    let id = completed["response"]["id"].as_str().unwrap().to_owned();

    let next = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "again"}]});
    socket
        .send(create(
            json!({"model": "gpt-6-luna", "stream": true, "store": false,
            "instructions": "", "previous_response_id": id, "input": [next]}),
        ))
        .await
        .unwrap();
    let second = events(&mut socket).await;
    assert_eq!(second.last().unwrap()["type"], "response.completed");
    let posts: Vec<Value> = fake
        .posts()
        .iter()
        .filter(|r| r.path == "/backend-api/codex/responses")
        .map(|r| r.json())
        .collect();
    assert_eq!(posts.len(), 2);
    let input = posts[1]["input"].as_array().unwrap();
    assert_eq!(
        input.len(),
        3,
        "first input, its answer, the new input: {input:?}"
    );
    assert_eq!(input[0]["content"][0]["text"], "hi");
    assert_eq!(input[1]["role"], "assistant");
    assert_eq!(input[2]["content"][0]["text"], "again");
    assert!(posts[1].get("previous_response_id").is_none());
    assert_eq!(fake.rejections().len(), 0);

    socket
        .send(create(
            json!({"model": "gpt-6-luna", "previous_response_id": "resp_unknown", "input": []}),
        ))
        .await
        .unwrap();
    let refused = events(&mut socket).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["type"], "error");
    assert_eq!(refused[0]["status"], 400);
    assert_eq!(refused[0]["error"]["code"], "previous_response_not_found");

    socket
        .send(Message::text(r#"{"type":"response.cancel"}"#))
        .await
        .unwrap();
    let refused = events(&mut socket).await;
    assert_eq!(refused[0]["status"], 400);

    // A warm-up is answered at once, without the backend.
    socket
        .send(create(
            json!({"model": "gpt-6-luna", "generate": false, "input": []}),
        ))
        .await
        .unwrap();
    let warm = events(&mut socket).await;
    assert_eq!(
        warm.iter().map(|e| e["type"].clone()).collect::<Vec<_>>(),
        ["response.created", "response.completed"]
    );
    assert_eq!(
        fake.posts()
            .iter()
            .filter(|r| r.path == "/backend-api/codex/responses")
            .count(),
        2
    );
    socket.close(None).await.unwrap();
}

/// A GET that is not a WebSocket handshake still gets the 426 that sends a client to HTTP.
#[tokio::test]
async fn a_plain_get_is_told_to_upgrade_or_post() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = codex_server(&fake).await;
    let resp = crate::support::serve::http_client()
        .get(format!("{}/v1/responses", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 426);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "websocket_unsupported");
}

/// With `server.api_key` set, a handshake without the key is refused before any upgrade, and one
/// that carries it opens a socket whose turns are served.
#[tokio::test]
async fn a_handshake_needs_the_local_key_when_one_is_set() {
    use crate::support::TestContext;
    use crate::support::serve::{ServeProcess, Token, seed_tokens};
    let fake = FakeUpstream::start().await;
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
        "server:\n  api_key: k-local\nproviders:\n  openai-codex:\n    base_url: {}\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    let addr = server.url().trim_start_matches("http://").to_owned();

    let request = format!("ws://{addr}/v1/responses")
        .into_client_request()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    match tokio_tungstenite::client_async(request, tcp).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => {
            assert_eq!(answer.status(), 401)
        }
        other => panic!("expected a 401, got {:?}", other.map(|(_, a)| a.status())),
    }

    let mut request = format!("ws://{addr}/v1/responses")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("x-bitrouter-key", "k-local".parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    socket
        .send(create(
            json!({"model": "gpt-6-luna", "stream": true, "store": false,
            "instructions": "", "input": [{"type": "message", "role": "user", "content": "hi"}]}),
        ))
        .await
        .unwrap();
    let answer = events(&mut socket).await;
    assert_eq!(
        answer.last().unwrap()["type"],
        "response.completed",
        "{answer:?}"
    );
}

/// A socket closed for idleness while the Codex CLI runs a tool (`server.timeouts.idle` shorter
/// than the tool) costs nothing: the CLI opens a new socket for its next turn, and bitrouter,
/// which no longer has the old socket's conversation, gets it whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Codex CLI"]
async fn codex_exec_recovers_from_a_socket_closed_while_idle() {
    use crate::support::TestContext;
    use crate::support::serve::{ServeProcess, Token, seed_tokens};
    let fake = FakeUpstream::start().await;
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
        "server:\n  timeouts: {{ idle: 1 }}\nproviders:\n  openai-codex:\n    base_url: {}\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    let tool_loop = ToolLoop::custom(
        "exec",
        "const r = await tools.exec_command({cmd: \"sleep 3 && cat secret.txt\"}); text(r.output);",
        "banana",
    );
    fake.respond_with(tool_loop.clone().responder());
    let work = ctx.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("secret.txt"), "the secret word is banana\n").unwrap();
    clients::write_codex_config(&ctx, &server.url(), WEBSOCKETS);
    let cmd = clients::codex_exec(&ctx, &work, "What is the secret word in secret.txt?");
    let out = clients::run("codex exec", cmd, &server, Duration::from_secs(120)).await;
    assert!(
        out.stdout.contains(&tool_loop.final_text()),
        "stdout:\n{}\nstderr:\n{}\nbitrouter:\n{}",
        out.stdout,
        out.stderr,
        server.stderr()
    );
    let posts: Vec<Value> = fake
        .posts()
        .iter()
        .filter(|r| r.path == "/backend-api/codex/responses")
        .map(|r| r.json())
        .collect();
    let last = posts.last().unwrap();
    let kinds: Vec<&str> = last["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"custom_tool_call") && kinds.contains(&"custom_tool_call_output"),
        "{kinds:?}"
    );
    eprintln!(
        "backend posts: {}\nbitrouter:\n{}",
        posts.len(),
        server.stderr()
    );
}

/// On SIGTERM a turn under way on a socket finishes, then the socket is closed as going away
/// and the server exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_under_way_finishes_on_sigterm() {
    use crate::support::fake_upstream::{Reply, Step, answer_events};
    let fake = FakeUpstream::start().await;
    let (_ctx, mut server) = codex_server(&fake).await;
    let mut steps = answer_events("graceful");
    steps.insert(4, Step::Hold);
    fake.push(Reply::sse(steps));
    let mut socket = connect(&server.url()).await;
    socket
        .send(create(
            json!({"model": "gpt-6-luna", "stream": true, "store": false,
            "instructions": "", "input": [{"type": "message", "role": "user", "content": "hi"}]}),
        ))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|e: &Value| e.to_string().contains("graceful"))
    {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            panic!("the socket ended early: {seen:?}");
        };
        seen.push(serde_json::from_str(&text).unwrap());
    }
    server.signal("TERM");
    assert!(
        server
            .wait_for_stderr("shutting down", 1, Duration::from_secs(10))
            .await,
        "{}",
        server.stderr()
    );
    fake.release();
    let rest = events(&mut socket).await;
    assert_eq!(
        rest.last().unwrap()["type"],
        "response.completed",
        "{rest:?}"
    );
    match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
        Ok(Some(Ok(Message::Close(Some(frame))))) => {
            assert_eq!(u16::from(frame.code), 1001, "{frame:?}");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    let status = server
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("serve exits after the turn");
    assert!(status.success(), "{status}: {}", server.stderr());
}

/// With `auth_mode: passthrough`, the credential on the handshake (the Codex CLI's own login,
/// `requires_openai_auth = true`) goes upstream with every turn, as on HTTP.
#[tokio::test]
async fn the_handshakes_own_login_passes_through_on_every_turn() {
    use crate::support::TestContext;
    use crate::support::serve::ServeProcess;
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    auth_mode: passthrough\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    let addr = server.url().trim_start_matches("http://").to_owned();
    let mut request = format!("ws://{addr}/v1/responses")
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("authorization", "Bearer tok-client".parse().unwrap());
    headers.insert("chatgpt-account-id", "acc-client".parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    for _ in 0..2 {
        socket
            .send(create(json!({"model": "gpt-6-luna", "stream": true, "store": false,
                "instructions": "", "input": [{"type": "message", "role": "user", "content": "hi"}]})))
            .await
            .unwrap();
        let answer = events(&mut socket).await;
        assert_eq!(
            answer.last().unwrap()["type"],
            "response.completed",
            "{answer:?}"
        );
    }
    let posts: Vec<_> = fake
        .posts()
        .into_iter()
        .filter(|r| r.path == "/backend-api/codex/responses")
        .collect();
    assert_eq!(posts.len(), 2);
    for post in &posts {
        assert_eq!(
            post.header("authorization").as_deref(),
            Some("Bearer tok-client")
        );
        assert_eq!(
            post.header("chatgpt-account-id").as_deref(),
            Some("acc-client")
        );
    }
}
