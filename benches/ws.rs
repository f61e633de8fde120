//! `cargo bench --bench ws`: time to first event over the Codex Responses WebSocket transport
//! against HTTP, on each side of bitrouter.
//!
//! An in-process upstream answers the canned request (`benches/proxy/canned.rs`) both ways: a
//! `POST …/codex/responses` with the 5 events as one SSE body, and a `response.create` message
//! on a WebSocket with the 5 events as 5 text frames. Two `bitrouter serve` processes (this
//! build's release binary) sit in front of it, one with `websocket: false` and one with
//! `websocket: true` on `openai-codex`. Each row sends the canned request sequentially
//! (`BITROUTER_BENCH_REQUESTS`, default 300, after 20 warm-up requests) and reports the time to
//! the first event and to `response.completed`, p50 and p99: over HTTP a new request on a
//! kept-alive connection, over a WebSocket a new message on one open socket (as the Codex CLI
//! sends its turns), all of one conversation (one `session-id`), so bitrouter keeps its socket
//! to the upstream between them. It measures; it asserts only that every answer completed.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs,
    reason = "a benchmark program: failures should stop it loudly"
)]

#[path = "proxy/canned.rs"]
mod canned;
#[path = "proxy/measure.rs"]
#[allow(
    dead_code,
    reason = "the load and memory measures are the proxy bench's"
)]
mod measure;
#[path = "proxy/procs.rs"]
#[allow(
    dead_code,
    reason = "the nginx and holding upstreams are the proxy bench's"
)]
mod procs;

pub(crate) use canned::{EVENTS, REQUEST, request_body, request_path};

use measure::{ms, percentile};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The conversation every request belongs to (its `session-id`, as the Codex CLI sends it).
const SESSION: &str = "bench-conversation";

/// Requests measured per row (after the warm-up).
const DEFAULT_REQUESTS: usize = 300;
const WARM_UP: usize = 20;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench_main());
}

async fn bench_main() {
    let n = std::env::var("BITROUTER_BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_REQUESTS);
    let bin = std::env::var("BITROUTER_BENCH_BIN").map_or_else(
        |_| PathBuf::from(env!("CARGO_BIN_EXE_bitrouter")),
        PathBuf::from,
    );
    let upstream = start_upstream().await;
    let http_world = procs::world(upstream, 1);
    let ws_world = procs::world(upstream, 1);
    enable_websocket(ws_world.path());
    let (_http_proc, http_addr, _) = procs::spawn_bitrouter(&bin, http_world.path()).await;
    let (_ws_proc, ws_addr, _) = procs::spawn_bitrouter(&bin, ws_world.path()).await;

    println!("time to first event and to response.completed, ms, {n} sequential requests each");
    println!("| client → bitrouter → upstream | first event p50 | p99 | completed p50 | p99 |");
    println!("|---|---:|---:|---:|---:|");
    let direct = format!("http://{upstream}/codex/responses");
    let rows: [(&str, Target); 6] = [
        ("direct HTTP (no bitrouter)", Target::Http(direct.clone())),
        (
            "direct WebSocket (no bitrouter)",
            Target::Ws(upstream, "/codex/responses"),
        ),
        (
            "HTTP → HTTP",
            Target::Http(format!("http://{http_addr}/v1/responses")),
        ),
        (
            "HTTP → WebSocket",
            Target::Http(format!("http://{ws_addr}/v1/responses")),
        ),
        ("WebSocket → HTTP", Target::Ws(http_addr, "/v1/responses")),
        (
            "WebSocket → WebSocket",
            Target::Ws(ws_addr, "/v1/responses"),
        ),
    ];
    for (name, target) in rows {
        let (mut first, mut done) = match target {
            Target::Http(url) => over_http(&url, n).await,
            Target::Ws(addr, path) => over_ws(addr, path, n).await,
        };
        println!(
            "| {name} | {} | {} | {} | {} |",
            ms_of(percentile(&mut first, 0.5)),
            ms_of(percentile(&mut first, 0.99)),
            ms_of(percentile(&mut done, 0.5)),
            ms_of(percentile(&mut done, 0.99)),
        );
    }
}

fn ms_of(d: Duration) -> String {
    ms(d.as_secs_f64() * 1e6)
}

enum Target {
    Http(String),
    Ws(SocketAddr, &'static str),
}

/// Turns on `websocket: true` in a world's config.
fn enable_websocket(world: &Path) {
    let path = world.join("config/bitrouter/bitrouter.yaml");
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str("    websocket: true\n");
    std::fs::write(&path, config).unwrap();
}

/// `n` requests on one kept-alive HTTP connection: time to the first body chunk and to the end.
async fn over_http(url: &str, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let (mut first, mut done) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + WARM_UP {
        let start = Instant::now();
        let mut resp = client
            .post(url)
            .header("content-type", "application/json")
            .header("session-id", SESSION)
            .body(REQUEST)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
        let mut first_at = None;
        let mut seen = Vec::new();
        while let Some(chunk) = resp.chunk().await.unwrap() {
            first_at.get_or_insert_with(|| start.elapsed());
            seen.extend_from_slice(&chunk);
        }
        assert!(
            seen.windows(18).any(|w| w == b"response.completed"),
            "{url}: no response.completed"
        );
        if i >= WARM_UP {
            first.push(first_at.unwrap_or_default());
            done.push(start.elapsed());
        }
    }
    (first, done)
}

/// `n` messages on one open socket: time to the first frame and to `response.completed`.
async fn over_ws(addr: SocketAddr, path: &str, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    request.headers_mut().insert(
        "openai-beta",
        "responses_websockets=2026-02-06".parse().unwrap(),
    );
    request
        .headers_mut()
        .insert("session-id", SESSION.parse().unwrap());
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    let message = format!("{{\"type\":\"response.create\",{}", &REQUEST[1..]);
    let (mut first, mut done) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + WARM_UP {
        let start = Instant::now();
        socket.send(Message::text(message.clone())).await.unwrap();
        let mut first_at = None;
        loop {
            let Some(Ok(Message::Text(text))) = socket.next().await else {
                panic!("ws://{addr}{path}: the socket ended before response.completed");
            };
            first_at.get_or_insert_with(|| start.elapsed());
            assert!(
                !text.starts_with("{\"type\":\"error\""),
                "ws://{addr}{path}: {text}"
            );
            if text.contains("\"response.completed\"") {
                break;
            }
        }
        if i >= WARM_UP {
            first.push(first_at.unwrap_or_default());
            done.push(start.elapsed());
        }
    }
    (first, done)
}

/// The upstream: the canned answer over HTTP and over WebSockets, on 127.0.0.1:0.
async fn start_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(upstream);
    // As a real server does: small writes (frames) go out at once.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn upstream(mut req: Request) -> Response {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from(EVENTS.concat()))
            .unwrap();
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = on_upgrade.await.unwrap();
        let mut socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let frames: Vec<String> = EVENTS
            .iter()
            .map(|e| e.split("data: ").nth(1).unwrap().trim_end().to_owned())
            .collect();
        while let Some(Ok(message)) = socket.next().await {
            if !message.is_text() {
                continue;
            }
            for frame in &frames {
                if socket.send(Message::text(frame.clone())).await.is_err() {
                    return;
                }
            }
        }
    });
    Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .body(Body::empty())
        .unwrap()
}
