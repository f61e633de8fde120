//! Faults and load through the real `bitrouter` binary: thousands of requests with a failing
//! upstream, stalled and unreachable upstreams, clients that walk away mid-stream, SIGKILL while
//! the token file is being rewritten, and malformed client input. Every test is bounded in time
//! and count, binds only port 0, and sets environment only on child processes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use bitrouter::sse::format_event;

use crate::support::fake_issuer::{FakeIssuer, now};
use crate::support::fake_upstream::{FakeUpstream, Reply, Step, answer_events};
use crate::support::serve::{ServeProcess, Token, http_client, seed_tokens};
use crate::support::{TestContext, sse_events};

const SECS: Duration = Duration::from_secs(10);

fn work_token() -> Token<'static> {
    Token {
        provider: "openai-codex",
        label: "work",
        token: "tok-work",
        account_id: Some("acc-work"),
    }
}

async fn start(ctx: &TestContext, base_url: &str, extra: &str) -> ServeProcess {
    ctx.write_config(&format!(
        "{extra}providers:\n  openai-codex:\n    base_url: {base_url}\n    timeouts: {{connect: 1, idle: 1}}\n"
    ));
    ServeProcess::start(ctx, &[]).await
}

/// `VmRSS` of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// A lean fake Codex backend for load: raw HTTP/1.1 with keep-alive, one precomputed SSE answer,
// and every `FAIL_EVERY`th request failing in one of four ways.

const FAIL_EVERY: usize = 50;

/// How the lean upstream answered, by kind.
#[derive(Default)]
struct LeanStats {
    requests: AtomicUsize,
    ok: AtomicUsize,
    http_500: AtomicUsize,
    reset: AtomicUsize,
    closed: AtomicUsize,
    truncated: AtomicUsize,
}

fn sse_body() -> String {
    answer_events("load")
        .into_iter()
        .map(|step| match step {
            Step::Event(v) => format_event(v["type"].as_str(), &v.to_string()),
            _ => String::new(),
        })
        .collect()
}

async fn lean_upstream() -> (SocketAddr, Arc<LeanStats>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(LeanStats::default());
    let body: Arc<str> = sse_body().into();
    let task_stats = stats.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(lean_connection(sock, task_stats.clone(), body.clone()));
        }
    });
    (addr, stats)
}

/// Reads one request (head and `content-length` body); `None` at EOF.
async fn read_request(sock: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + length);
    Some(head)
}

async fn lean_connection(mut sock: tokio::net::TcpStream, stats: Arc<LeanStats>, body: Arc<str>) {
    let mut buf = Vec::new();
    while let Some(head) = read_request(&mut sock, &mut buf).await {
        if head.starts_with("GET ") {
            let doc = r#"{"models":[]}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{doc}",
                doc.len()
            );
            if sock.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        let n = stats.requests.fetch_add(1, Ordering::Relaxed);
        let failure = (n % FAIL_EVERY == FAIL_EVERY - 1).then_some((n / FAIL_EVERY) % 4);
        match failure {
            None => {
                stats.ok.fetch_add(1, Ordering::Relaxed);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if sock.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
            Some(0) => {
                stats.http_500.fetch_add(1, Ordering::Relaxed);
                let doc = r#"{"error":{"type":"server_error","message":"scripted failure"}}"#;
                let reply = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{doc}",
                    doc.len()
                );
                if sock.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
            Some(1) => {
                // Connection reset before any header: RST instead of FIN.
                stats.reset.fetch_add(1, Ordering::Relaxed);
                let _ = sock.set_zero_linger();
                return;
            }
            Some(2) => {
                // Connection closed before any header.
                stats.closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Some(_) => {
                // Headers and half the events, then the connection closes: no response.completed.
                stats.truncated.fetch_add(1, Ordering::Relaxed);
                let cut = body.len() / 2;
                let cut = body[..cut].rfind("\n\n").map_or(cut, |i| i + 2);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{}",
                    body.len(),
                    &body[..cut]
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.flush().await;
                return;
            }
        }
    }
}

/// What a client got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Answer {
    /// An SSE stream ending with `response.completed`.
    CompleteStream,
    /// An SSE stream ending with an `error` event.
    ErrorEvent,
    /// A JSON response object (non-streaming client).
    CompleteJson,
    /// An OpenAI-shaped JSON error with a 4xx/5xx status.
    ErrorJson,
}

/// Classifies one answer, or says why it is malformed.
fn classify(status: u16, content_type: &str, body: &[u8]) -> Result<Answer, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("not utf-8: {e}"))?;
    if content_type.starts_with("text/event-stream") {
        if status != 200 {
            return Err(format!("stream with status {status}"));
        }
        if let Some(line) = text.lines().find(|l| {
            !l.is_empty()
                && !l.starts_with("event: ")
                && !l.starts_with("data: ")
                && !l.starts_with(':')
        }) {
            return Err(format!("bad sse line {line:?}"));
        }
        let mut last = None;
        for event in sse_events(body) {
            let data: Value = serde_json::from_str(&event.data)
                .map_err(|e| format!("bad sse data: {e}: {}", event.data))?;
            last = Some((event.event, data));
        }
        return match last {
            Some((Some(name), data)) if name == "response.completed" => (data["response"]["status"]
                == "completed")
                .then_some(Answer::CompleteStream)
                .ok_or_else(|| format!("completed without status: {data}")),
            Some((Some(name), data)) if name == "error" => data["error"]["message"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(|_| Answer::ErrorEvent)
                .ok_or_else(|| format!("error event without message: {data}")),
            other => Err(format!("stream ends with {other:?}")),
        };
    }
    if !content_type.starts_with("application/json") {
        return Err(format!("content-type {content_type:?}"));
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("bad json: {e}: {text}"))?;
    if status == 200 {
        return (doc["object"] == "response" && doc["status"] == "completed")
            .then_some(Answer::CompleteJson)
            .ok_or_else(|| format!("200 json that is no completed response: {doc}"));
    }
    let message_ok = doc["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty());
    if (400..600).contains(&status) && message_ok && doc["error"]["type"].is_string() {
        Ok(Answer::ErrorJson)
    } else {
        Err(format!("error answer {status} {doc}"))
    }
}

/// 10,000 requests at 64 concurrent through `bitrouter serve` to an upstream where 2% fail in
/// four ways. Every answer is well formed, nothing hangs, memory returns near its baseline and
/// nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_with_failing_upstream_answers_every_request_well_formed() {
    const REQUESTS: usize = 10_000;
    const CONCURRENCY: usize = 64;
    const WARMUP: usize = 500;

    let (addr, stats) = lean_upstream().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &format!("http://{addr}/backend-api/codex"), "").await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let url = format!("{}/v1/responses", server.url());

    let run = |count: usize| {
        let client = client.clone();
        let url = url.clone();
        async move {
            futures_util::stream::iter(0..count)
                .map(|i| {
                    let client = client.clone();
                    let url = url.clone();
                    async move {
                        // Three in four stream; the others are aggregated into one JSON object.
                        let body = json!({"model": "openai-codex:gpt-6-luna", "input": "hi", "stream": i % 4 != 0});
                        let fetch = async {
                            let resp = client.post(&url).json(&body).send().await?;
                            let status = resp.status().as_u16();
                            let content_type = resp
                                .headers()
                                .get("content-type")
                                .map(|v| v.to_str().unwrap_or("").to_owned())
                                .unwrap_or_default();
                            let bytes = resp.bytes().await?;
                            Ok::<_, reqwest::Error>((status, content_type, bytes))
                        };
                        match tokio::time::timeout(Duration::from_secs(20), fetch).await {
                            Err(_) => Err(format!("request {i} hung")),
                            Ok(Err(e)) => Err(format!("request {i} failed at the client: {e}")),
                            Ok(Ok((status, ct, bytes))) => classify(status, &ct, &bytes)
                                .map_err(|e| format!("request {i} malformed: {e}")),
                        }
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect::<Vec<_>>()
                .await
        }
    };

    let warm = run(WARMUP).await;
    assert!(warm.iter().all(Result::is_ok), "warm-up failed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = rss_kib(server.pid());

    let started = Instant::now();
    let results = run(REQUESTS).await;
    let elapsed = started.elapsed();

    let mut counts = std::collections::BTreeMap::new();
    let mut bad = Vec::new();
    for r in results {
        match r {
            Ok(class) => *counts.entry(class).or_insert(0usize) += 1,
            Err(e) => bad.push(e),
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(server.pid());
    eprintln!(
        "load: {REQUESTS} requests at {CONCURRENCY} concurrent in {elapsed:?} ({:.0}/s); answers {counts:?}; \
         upstream ok {} 500 {} reset {} closed {} truncated {}; RSS baseline {baseline} KiB, after {after} KiB",
        REQUESTS as f64 / elapsed.as_secs_f64(),
        stats.ok.load(Ordering::Relaxed),
        stats.http_500.load(Ordering::Relaxed),
        stats.reset.load(Ordering::Relaxed),
        stats.closed.load(Ordering::Relaxed),
        stats.truncated.load(Ordering::Relaxed),
    );
    assert!(
        bad.is_empty(),
        "{} bad answers, e.g. {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert_eq!(counts.values().sum::<usize>(), REQUESTS);
    let failures = stats.http_500.load(Ordering::Relaxed)
        + stats.reset.load(Ordering::Relaxed)
        + stats.closed.load(Ordering::Relaxed)
        + stats.truncated.load(Ordering::Relaxed);
    assert!(
        failures >= REQUESTS / FAIL_EVERY,
        "the upstream failed only {failures} times"
    );
    let errors = counts.get(&Answer::ErrorEvent).unwrap_or(&0)
        + counts.get(&Answer::ErrorJson).unwrap_or(&0);
    assert!(errors > 0, "no failure reached a client: {counts:?}");
    assert!(
        after < baseline + 20 * 1024,
        "RSS grew from {baseline} KiB to {after} KiB"
    );
    let log = server.stderr();
    assert!(!log.contains("panicked"), "{log}");
    // Still serving.
    let resp = client
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

// ---------------------------------------------------------------------------------------------

/// A loopback address whose connects hang: a listener with a backlog of one that never accepts,
/// its queue filled first (Linux then drops further SYNs instead of refusing them).
fn blackhole() -> (
    tokio::net::TcpListener,
    Vec<std::net::TcpStream>,
    SocketAddr,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => return (listener, fillers, addr),
        }
    }
    panic!("could not fill the backlog of {addr}");
}

/// An upstream that never completes the TCP handshake: 504 JSON after the connect timeout,
/// not a hang and not the idle timeout's wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_to_an_unreachable_upstream_is_a_504() {
    let (_listener, _fillers, addr) = blackhole();
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: http://{addr}/backend-api/codex\n    timeouts: {{connect: 1, idle: 30}}\n"
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    for stream in [true, false] {
        let started = Instant::now();
        let resp = tokio::time::timeout(
            SECS,
            http_client()
                .post(format!("{}/v1/responses", server.url()))
                .json(&json!({"model": "openai-codex:gpt-6-luna", "input": "hi", "stream": stream}))
                .send(),
        )
        .await
        .expect("no hang")
        .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(resp.status(), 504, "stream {stream}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "upstream_timeout", "{body}");
        eprintln!("connect timeout answered in {elapsed:?}");
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }
}

/// Idle timeouts not covered by `serve_times_out_a_stalled_upstream`: headers sent but no event
/// yet, and a non-streaming client whose upstream stalls mid-stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_after_headers_and_for_aggregated_clients() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &fake.codex_base(), "").await;
    let client = http_client();
    let url = format!("{}/v1/responses", server.url());

    // 200 and headers, then silence (twice: it is tried again once): the client still gets a
    // well-formed answer.
    fake.push(Reply::sse(vec![Step::Stall]));
    fake.push(Reply::sse(vec![Step::Stall]));
    let resp = tokio::time::timeout(
        SECS,
        client
            .post(&url)
            .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": true}))
            .send(),
    )
    .await
    .expect("no hang")
    .unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let body = tokio::time::timeout(SECS, resp.bytes())
        .await
        .expect("no hang")
        .unwrap();
    let class = classify(status, &ct, &body).unwrap();
    eprintln!("stall after headers: {status} {class:?}");
    assert!(matches!(class, Answer::ErrorEvent | Answer::ErrorJson));
    assert!(String::from_utf8_lossy(&body).contains("upstream_timeout"));

    // A non-streaming client whose upstream stalls after the first events: 504 JSON.
    let mut steps = answer_events("slow");
    steps.truncate(3);
    steps.push(Step::Stall);
    fake.push(Reply::sse(steps));
    let resp = tokio::time::timeout(
        SECS,
        client
            .post(&url)
            .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": false}))
            .send(),
    )
    .await
    .expect("no hang")
    .unwrap();
    assert_eq!(resp.status(), 504);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout", "{body}");
    assert!(!server.stderr().contains("panicked"));
}

// ---------------------------------------------------------------------------------------------

/// 50 clients walk away mid-stream: every upstream stream is released, and the server keeps
/// answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_disconnecting_mid_stream_release_every_upstream() {
    const N: usize = 50;
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    timeouts: {{connect: 2, idle: 30}}\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    for _ in 0..N {
        let mut steps = answer_events("before-disconnect");
        steps.truncate(4);
        steps.push(Step::Hold);
        steps.push(Step::Trickle);
        fake.push(Reply::sse(steps));
    }
    let client = http_client();
    let url = format!("{}/v1/responses", server.url());
    let opened = futures_util::future::join_all((0..N).map(|_| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let mut resp = client
                .post(&url)
                .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": true}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let mut seen = String::new();
            while !seen.contains("before-disconnect") {
                let chunk = tokio::time::timeout(SECS, resp.chunk())
                    .await
                    .expect("first events arrive")
                    .unwrap()
                    .expect("stream open");
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            resp
        }
    }))
    .await;
    assert_eq!(opened.len(), N);
    drop(opened);
    for _ in 0..N {
        fake.release();
    }
    assert!(
        fake.wait_dropped(N, SECS).await,
        "not every upstream stream was released after its client left"
    );
    // Still serving, streams and JSON alike.
    for stream in [true, false] {
        let resp = client
            .post(&url)
            .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": stream}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        let body = resp.bytes().await.unwrap();
        assert!(classify(200, &ct, &body).is_ok());
    }
    assert!(!server.stderr().contains("panicked"));
}

// ---------------------------------------------------------------------------------------------

/// The `n` claim of a fake issuer access token (which refresh it came from).
fn access_n(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["n"].as_u64()
}

/// Seeds expired sign-ins for `labels` with refresh tokens the issuer knows.
fn seed_expired(ctx: &TestContext, issuer: &FakeIssuer, labels: &[&str], round: usize) {
    let credentials: Vec<Value> = labels
        .iter()
        .map(|label| {
            let rt = format!("rt.seed-{label}-{round}");
            issuer.add_refresh_token(&rt);
            json!({
                "provider": "openai-codex", "label": label, "kind": "oauth",
                "access_token": issuer.make_access_token(now() - 60), "refresh_token": rt,
                "id_token": null, "expires_at": now() - 60, "account_id": "acc-default",
                "email": "you@example.com", "plan": "pro", "last_refresh": now() - 864_000,
                "source": "login", "needs_login": null
            })
        })
        .collect();
    let path = ctx.token_file();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        json!({"version": 1, "credentials": credentials}).to_string(),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// `bitrouter status --refresh` rewrites the token file (three labels, every access token
/// already expired); SIGKILL lands at random moments until 30 runs died in flight. After each
/// kill the file is whole: valid JSON, `version: 1`, each credential an old or a new token
/// pair, never a mix; and interrupted writes leave at most a few temp files behind.
#[test]
fn sigkill_during_token_refresh_writes_never_leaves_a_partial_file() {
    const KILLS: usize = 30;
    let labels = ["a", "b", "c"];
    let ctx = TestContext::new();
    let issuer = FakeIssuer::start();
    issuer.set_access_ttl(0);
    // `status --refresh` also asks the usage endpoint: the fake issuer answers it.
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    oauth:\n      issuer: {}\n      callback_port: 0\n",
        issuer.codex_base(),
        issuer.url
    ));
    let mut round = 0;
    seed_expired(&ctx, &issuer, &labels, round);
    let dir = ctx.token_file().parent().unwrap().to_owned();

    // Time uninterrupted runs (the fastest of three) to aim the kills inside one.
    let mut run_time = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let out = ctx
            .std_cmd()
            .args(["status", "--refresh", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        run_time = run_time.min(started.elapsed());
    }
    let written: Value = serde_json::from_slice(&std::fs::read(ctx.token_file()).unwrap()).unwrap();
    assert!(
        written["credentials"][0]["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("rt.fake-")
    );

    let mut seed = u64::from(std::process::id()) ^ now().unsigned_abs();
    let mut next = move || {
        // xorshift64*
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    // Kills land uniformly over the first three quarters of the fastest run; a run that ends
    // before its kill does not count, so the loop goes on until KILLS runs died in flight (a
    // busy machine can make runs faster or slower than the timed ones).
    let window = (u64::try_from(run_time.as_micros()).unwrap() * 3 / 4).max(1_000);
    let (mut killed, mut finished, mut reseeded) = (0, 0, 0);
    let mut max_tmp = 0;
    while killed < KILLS && killed + finished < 4 * KILLS {
        let before = std::fs::read_to_string(ctx.token_file()).unwrap();
        let mut child = ctx
            .std_cmd()
            .args(["status", "--refresh", "--json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(next() % window));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        } else {
            finished += 1;
        }
        child.wait().unwrap();

        let text = std::fs::read_to_string(ctx.token_file()).unwrap();
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("token file is not JSON after a kill: {e}: {text:?}"));
        assert_eq!(doc["version"], 1, "{doc}");
        let old: Value = serde_json::from_str(&before).unwrap();
        let creds = doc["credentials"].as_array().unwrap();
        assert_eq!(creds.len(), labels.len(), "{doc}");
        for cred in creds {
            let label = cred["label"].as_str().unwrap();
            let rt = cred["refresh_token"].as_str().unwrap();
            let at = cred["access_token"].as_str().unwrap();
            let unchanged = old["credentials"].as_array().unwrap().iter().any(|o| {
                o["label"] == label && o["refresh_token"] == rt && o["access_token"] == at
            });
            let fresh_pair = rt
                .strip_prefix("rt.fake-")
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| access_n(at) == Some(n));
            assert!(
                unchanged || fresh_pair,
                "credential {label} is neither the old nor a new pair: {cred}"
            );
        }
        let tmp = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        max_tmp = max_tmp.max(tmp);
        assert!(tmp <= 1, "{tmp} temp files left in {}", dir.display());

        // A kill between the issuer's rotation and the write leaves a spent refresh token: the
        // next run marks the account for a new sign-in. Start a fresh chain then.
        if creds.iter().any(|c| !c["needs_login"].is_null()) {
            round += 1;
            reseeded += 1;
            seed_expired(&ctx, &issuer, &labels, round);
        }
    }
    eprintln!(
        "sigkill: one run takes {run_time:?}; {killed} killed, {finished} finished first, \
         {reseeded} chains restarted, at most {max_tmp} temp files, {} refreshes",
        issuer.counts().refreshes
    );
    assert!(
        killed >= KILLS / 2,
        "only {killed} of {} runs were killed in flight",
        killed + finished
    );
}

// ---------------------------------------------------------------------------------------------

/// Malformed client input not covered by `serve_health_unknown_paths_and_request_errors`: each
/// is a 4xx with a JSON message, nothing reaches the upstream, and `/health` still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_4xx_and_the_server_keeps_answering() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(
        &ctx,
        &fake.codex_base(),
        "server:\n  max_body_bytes: 2000\n",
    )
    .await;
    let client = http_client();
    let json_ct = "application/json";
    let garbage: Vec<u8> = (0..=255u8).cycle().take(700).collect();
    let big_stream = futures_util::stream::iter(
        (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1000]))),
    );
    let cases: Vec<(&str, &str, Option<&str>, reqwest::Body)> = vec![
        (
            "garbage bytes",
            "/v1/responses",
            Some(json_ct),
            garbage.clone().into(),
        ),
        (
            "garbage bytes (chat)",
            "/v1/chat/completions",
            Some(json_ct),
            garbage.clone().into(),
        ),
        (
            "garbage bytes (messages)",
            "/v1/messages",
            Some(json_ct),
            garbage.into(),
        ),
        (
            "invalid utf-8",
            "/v1/responses",
            Some(json_ct),
            b"{\"model\":\"\xff\xfe\"}".to_vec().into(),
        ),
        (
            "truncated json",
            "/v1/responses",
            Some(json_ct),
            "{\"model\":\"gpt-6-luna\",\"input\":".into(),
        ),
        ("empty body", "/v1/responses", Some(json_ct), "".into()),
        (
            "chunked body over the limit",
            "/v1/responses",
            Some(json_ct),
            reqwest::Body::wrap_stream(big_stream),
        ),
        (
            "form content type",
            "/v1/responses",
            Some("application/x-www-form-urlencoded"),
            "model=gpt-6-luna".into(),
        ),
        ("json array", "/v1/responses", Some(json_ct), "[1,2]".into()),
        (
            "json string",
            "/v1/chat/completions",
            Some(json_ct),
            "\"hello\"".into(),
        ),
        ("json number", "/v1/messages", Some(json_ct), "42".into()),
        ("json null", "/v1/responses", Some(json_ct), "null".into()),
        (
            "model not a string",
            "/v1/responses",
            Some(json_ct),
            r#"{"model":42,"input":"x"}"#.into(),
        ),
        (
            "empty model",
            "/v1/responses",
            Some(json_ct),
            r#"{"model":"","input":"x"}"#.into(),
        ),
        (
            "missing model (chat)",
            "/v1/chat/completions",
            Some(json_ct),
            r#"{"messages":[{"role":"user","content":"x"}]}"#.into(),
        ),
        (
            "missing model (messages)",
            "/v1/messages",
            Some(json_ct),
            r#"{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#.into(),
        ),
        (
            "unknown provider with unknown fields",
            "/v1/responses",
            Some(json_ct),
            r#"{"model":"nope:x","input":"x","bogus":{"deep":[1]}}"#.into(),
        ),
    ];
    let mut report = Vec::new();
    for (name, path, content_type, body) in cases {
        let mut req = client.post(format!("{}{path}", server.url())).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = tokio::time::timeout(SECS, req.send())
            .await
            .unwrap_or_else(|_| panic!("{name}: hung"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let status = resp.status().as_u16();
        if status == 413 {
            // The unread rest of the body ends the connection: the client must not reuse it.
            assert_eq!(resp.headers()["connection"], "close", "{name}");
        }
        let text = resp.text().await.unwrap();
        assert!((400..500).contains(&status), "{name}: {status} {text}");
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {text}"));
        let message = doc["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{name}: no message: {doc}");
        report.push(format!("{name}: {status} {message}"));
        let health = client
            .get(format!("{}/health", server.url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: /health after it: {e:?}"));
        assert_eq!(health.status(), 200, "{name}: /health after it");
    }
    eprintln!("{}", report.join("\n"));

    // Unknown fields on a routable request: the Responses API is forwarded, so the backend is
    // the judge; bitrouter must neither choke nor hang.
    let resp = client
        .post(format!("{}/v1/responses", server.url()))
        .json(&json!({"model": "gpt-6-luna", "input": "x", "stream": true, "bogus_field": {"deep": [1, null]}}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let body = resp.bytes().await.unwrap();
    classify(status, &ct, &body).unwrap();

    assert!(
        fake.posts().len() <= 1,
        "malformed requests reached the upstream"
    );
    assert!(!server.stderr().contains("panicked"));
}
