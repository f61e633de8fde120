use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestContext;
use crate::support::fake_upstream::{DEFAULT_TEXT, FakeUpstream, Reply, Step, answer_events};
use crate::support::serve::{ServeProcess, Token, http_client, seed_tokens};

/// The connections that never finish their headers.
const SLOW: usize = 2_000;

fn token() -> Token<'static> {
    Token {
        provider: "openai-codex",
        label: "work",
        token: "tok-work",
        account_id: Some("acc-work"),
    }
}

/// A server whose Codex provider is the fake, with `server` settings and provider `timeouts`.
async fn start(fake: &FakeUpstream, server: &str, timeouts: &str) -> (TestContext, ServeProcess) {
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[token()]);
    ctx.write_config(&format!(
        "server:\n{server}providers:\n  openai-codex:\n    base_url: {}\n    timeouts: {timeouts}\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    (ctx, server)
}

/// Lets this process (and the server it starts) open enough sockets.
fn raise_open_file_limit(needed: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= needed,
        "this test needs {needed} open files, and the hard limit is {hard}: raise it (ulimit -Hn)"
    );
    if limit.current.is_some_and(|c| c < needed) {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(needed.min(hard)),
                maximum: limit.maximum,
            },
        )
        .unwrap();
    }
}

/// A connection that sent the start of a request and then nothing.
async fn unfinished(addr: SocketAddr) -> (TcpStream, Instant) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!(
            "POST /v1/responses HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    (tcp, Instant::now())
}

/// How long until the server closes `tcp` (it sends nothing first), at most `within`.
async fn closed_after(tcp: &mut TcpStream, within: Duration) -> Option<Instant> {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(within, tcp.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => Some(Instant::now()),
        Ok(Ok(n)) => panic!(
            "the server answered an unfinished request: {}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(_) => None,
    }
}

/// A real request through the proxy path, and how long it took.
async fn real_request(client: &reqwest::Client, url: &str) -> Duration {
    let start = Instant::now();
    let resp = client
        .post(format!("{url}/v1/responses"))
        .json(&json!({"model": "gpt-6-luna", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["output"][0]["content"][0]["text"], DEFAULT_TEXT);
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unfinished_headers_are_closed_after_the_header_timeout_while_real_requests_are_served() {
    raise_open_file_limit(3 * SLOW as u64 + 512);
    let fake = FakeUpstream::start().await;
    // A header timeout well above what a real request takes on a busy machine, so a request
    // that waited for the slow connections (as long as the timeout) stands apart from one that
    // met a slow moment (the 2,000 connections closing at once, a SYN retried after 1 s).
    let (_ctx, server) = start(&fake, "  timeouts: {header: 3}\n", "{connect: 2, idle: 10}").await;
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();

    // Real requests go on the whole time, each through a fresh connection.
    let done = Arc::new(AtomicBool::new(false));
    let real = {
        let done = done.clone();
        let url = server.url();
        tokio::spawn(async move {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let mut slowest = Duration::ZERO;
            let mut served = 0;
            while !done.load(Ordering::Relaxed) {
                slowest = slowest.max(real_request(&client, &url).await);
                served += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (served, slowest)
        })
    };

    // Each is watched from the moment it sent its partial headers; at most 200 connect at once
    // (the rest queue here, not in the kernel's accept queue).
    let connecting = Arc::new(tokio::sync::Semaphore::new(200));
    let slow: Vec<_> = (0..SLOW)
        .map(|_| {
            let connecting = connecting.clone();
            tokio::spawn(async move {
                let permit = connecting.acquire_owned().await.unwrap();
                let (mut tcp, sent) = unfinished(addr).await;
                drop(permit);
                let closed = closed_after(&mut tcp, Duration::from_secs(15)).await;
                closed.map(|at| at.duration_since(sent))
            })
        })
        .collect();
    let mut waited = Vec::with_capacity(SLOW);
    for task in slow {
        waited.push(
            task.await
                .unwrap()
                .expect("a connection left open after 15 s"),
        );
    }
    done.store(true, Ordering::Relaxed);
    let (served, slowest) = real.await.unwrap();

    let shortest = waited.iter().min().unwrap();
    let longest = waited.iter().max().unwrap();
    assert!(
        *shortest >= Duration::from_millis(2_800),
        "a connection was closed after {shortest:?}, before the 3 s header timeout"
    );
    assert!(
        *longest <= Duration::from_secs(7),
        "a connection was closed only after {longest:?}"
    );
    assert!(
        served >= 10,
        "only {served} real requests were served meanwhile"
    );
    assert!(
        slowest < Duration::from_millis(2_500),
        "a real request took {slowest:?}: it waited for the slow connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_new_clients_wait_and_the_server_says_so_once() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = start(
        &fake,
        "  max_connections: 20\n  timeouts: {header: 2}\n",
        "{connect: 2, idle: 10}",
    )
    .await;
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(unfinished(addr).await);
    }
    // Every slot is taken: this client waits until the slow ones are closed, then is served.
    let client = http_client();
    let took = real_request(&client, &server.url()).await;
    assert!(
        took >= Duration::from_millis(500),
        "the request was served at once ({took:?}) though every slot was taken"
    );
    for _ in 0..2 {
        let more: Vec<_> = (0..20).map(|_| unfinished(addr)).collect();
        for f in more {
            slow.push(f.await);
        }
        real_request(&client, &server.url()).await;
    }
    let line = "client connections are open, the most allowed (server.max_connections)";
    assert!(
        server
            .wait_for_stderr(line, 1, Duration::from_secs(5))
            .await,
        "no log line about the cap:\n{}",
        server.stderr()
    );
    assert_eq!(
        server.count_in_stderr(line),
        1,
        "the cap was logged more than once:\n{}",
        server.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_gets_the_idle_timeout_not_the_header_timeout() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = start(
        &fake,
        "  timeouts: {header: 1, idle: 3}\n",
        "{connect: 2, idle: 10}",
    )
    .await;
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\"status\":\"ok\"") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    let answered = Instant::now();
    // Past the 1 s header timeout, the idle connection is still open...
    assert!(
        closed_after(&mut tcp, Duration::from_millis(1_800))
            .await
            .is_none(),
        "an idle kept-alive connection was closed by the header timeout"
    );
    // ...and the 3 s idle timeout closes it.
    let closed = closed_after(&mut tcp, Duration::from_secs(5))
        .await
        .expect("the idle connection was never closed");
    let idle = closed.duration_since(answered);
    assert!(
        idle >= Duration::from_millis(2_800) && idle <= Duration::from_secs(5),
        "closed after {idle:?} idle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_answers_gets_the_first_byte_timeout_and_a_slow_stream_does_not() {
    let fake = FakeUpstream::start().await;
    let (_ctx, server) = start(&fake, "", "{connect: 2, first_byte: 1, idle: 10}").await;
    let client = http_client();

    // A timeout before any output is retried once on the one account (issue 15): both stall.
    fake.push(Reply::Stall);
    fake.push(Reply::Stall);
    let start = Instant::now();
    let resp = client
        .post(format!("{}/v1/responses", server.url()))
        .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout");
    assert_eq!(fake.posts().len(), 2, "one try and one retry");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "two first-byte timeouts took {:?}",
        start.elapsed()
    );

    // A stream that has begun may pause longer than the first-byte timeout.
    let mut steps = answer_events("slow but steady");
    steps.insert(3, Step::Hold);
    fake.push(Reply::sse(steps));
    let resp = client
        .post(format!("{}/v1/responses", server.url()))
        .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let release = async {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        fake.release();
    };
    let (text, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(10), resp.text()),
        release
    );
    let text = text.expect("the stream ended").unwrap();
    assert!(text.contains("response.completed"), "{text}");
    assert!(!text.contains("upstream_timeout"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_http_share_the_port_and_a_silent_client_gets_the_header_timeout() {
    let fake = FakeUpstream::start().await;
    let (ctx, server) = start(&fake, "  timeouts: {header: 1, idle: 3}\n", "{connect: 2}").await;
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let ca = std::fs::read(ctx.data_home().join("bitrouter/tls/ca.pem")).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let https = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    // The usage display's endpoint over HTTPS, signed by the local CA...
    let usage: Value = https
        .get(format!("https://{addr}/backend-api/wham/usage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(usage["rate_limit"].is_object(), "{usage}");
    // ...and a proxied request over HTTPS and over plain HTTP on the same port.
    for base in [format!("https://{addr}"), server.url()] {
        let resp = https
            .post(format!("{base}/v1/responses"))
            .json(&json!({"model": "gpt-6-luna", "input": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{base}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["output"][0]["content"][0]["text"], DEFAULT_TEXT,
            "{base}"
        );
    }
    // A client that opens a TLS handshake and stalls, or sends nothing at all, is closed after
    // the header timeout like one that stalls in its headers.
    let mut stalled_tls = TcpStream::connect(addr).await.unwrap();
    stalled_tls.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let opened = Instant::now();
    for tcp in [&mut stalled_tls, &mut silent] {
        let closed = closed_after(tcp, Duration::from_secs(5))
            .await
            .expect("the connection was never closed");
        let waited = closed.duration_since(opened);
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
            "closed after {waited:?}"
        );
    }
}
