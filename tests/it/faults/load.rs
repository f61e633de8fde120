//! Load with a failing upstream: a lean fake upstream that fails one request in fifty, and
//! thousands of requests through `serve`, every answer well formed, memory bounded.

use super::*;

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
pub(super) async fn read_request(
    sock: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> Option<String> {
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
