//! `cargo bench --bench proxy`: bitrouter against a direct upstream, measured in one run.
//!
//! Three processes share the machine, as in real use: a fast fake Responses upstream (this
//! program re-executed with `--fake-upstream`), `bitrouter serve` (the release binary), and this
//! program as the load generator. Every scenario drives the same requests at the upstream
//! directly and through bitrouter, interleaved, and prints the difference. It measures; it
//! asserts nothing.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "a benchmark program: failures should stop it loudly"
)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::{get, post};
use tokio::sync::Semaphore;

/// SSE events of one short streamed response.
const EVENTS: [&str; 5] = [
    "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"created_at\":1,\"model\":\"gpt-6.1-sol\",\"output\":null}}\n\n",
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[]}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello\"}\n\n",
    "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello\"}]}}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1,\"total_tokens\":6}}}\n\n",
];

const REQUEST: &str = r#"{"model":"gpt-6.1-sol","stream":true,"store":false,"instructions":"","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--fake-upstream") {
        fake_upstream_main();
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--bare-proxy") {
        bare_proxy_main(args[i + 1].parse().unwrap());
        return;
    }
    // reqwest uses rustls without a default provider (as the binary does).
    let _ = rustls::crypto::ring::default_provider().install_default();
    // `cargo bench` passes `--bench`; anything else is a filter we ignore.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench_main());
}

// ---------------------------------------------------------------------------------------------
// The fake upstream

fn fake_upstream_main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let held = Arc::new(tokio::sync::Semaphore::new(0));
        let app = Router::new()
            .route(
                "/codex/responses",
                post({
                    let held = held.clone();
                    move |body: bytes::Bytes| responses(body, held.clone())
                }),
            )
            .route(
                "/release",
                post({
                    let held = held.clone();
                    move || async move {
                        // Every held stream, now and later, may finish.
                        held.add_permits(1 << 20);
                        "released"
                    }
                }),
            )
            .route(
                "/codex/models",
                get(|| async { axum::Json(serde_json::json!({"models": []})) }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
}

/// A short stream at once, or (for model `hold`) a stream held open until `/release`.
async fn responses(body: bytes::Bytes, held: Arc<tokio::sync::Semaphore>) -> Response {
    if body.windows(14).any(|w| w == b"\"model\":\"hold\"") {
        return hold(held).await;
    }
    let chunks = EVENTS
        .iter()
        .map(|e| Ok::<_, std::io::Error>(bytes::Bytes::from_static(e.as_bytes())));
    sse(Body::from_stream(futures_util::stream::iter(chunks)))
}

/// Sends the first output (bitrouter forwards a stream once output begins), then holds the
/// stream open until `/release`.
async fn hold(held: Arc<tokio::sync::Semaphore>) -> Response {
    let first = bytes::Bytes::from(EVENTS[..3].concat());
    let rest = bytes::Bytes::from(EVENTS[3..].concat());
    let stream = futures_util::stream::unfold(0u8, move |state| {
        let held = held.clone();
        let (first, rest) = (first.clone(), rest.clone());
        async move {
            match state {
                0 => Some((Ok::<_, std::io::Error>(first), 1)),
                1 => {
                    if let Ok(permit) = held.acquire().await {
                        permit.forget();
                    }
                    Some((Ok(rest), 2))
                }
                _ => None,
            }
        }
    });
    sse(Body::from_stream(stream))
}

fn sse(body: Body) -> Response {
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(body)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The bare proxy: the floor any axum + reqwest proxy pays on this machine

/// The least a proxy built on the same stack can do: take the body, send it upstream, stream
/// the answer back untouched. No routing, credentials, parsing or logging; it shows how much of
/// bitrouter's cost is the HTTP stack and the kernel rather than bitrouter's own work.
fn bare_proxy_main(upstream: SocketAddr) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .unwrap();
        let url = format!("http://{upstream}/codex/responses");
        let app = Router::new().route(
            "/v1/responses",
            post(move |body: bytes::Bytes| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let resp = client
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    sse(Body::from_stream(resp.bytes_stream()))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// Processes

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_fake_upstream() -> (Proc, SocketAddr) {
    spawn_helper(&["--fake-upstream".to_owned()])
}

fn spawn_bare_proxy(upstream: SocketAddr) -> (Proc, SocketAddr) {
    spawn_helper(&["--bare-proxy".to_owned(), upstream.to_string()])
}

/// This program re-executed in a helper role; it prints its address on the first line.
fn spawn_helper(args: &[String]) -> (Proc, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Proc { child }, line.trim().parse().unwrap())
}

fn bitrouter_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bitrouter"))
}

fn world(upstream: SocketAddr) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config/bitrouter");
    let data = dir.path().join("data/bitrouter");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    std::fs::write(
        config.join("bitrouter.yaml"),
        format!("providers:\n  openai-codex:\n    base_url: http://{upstream}/codex\n"),
    )
    .unwrap();
    let token_file = data.join("oauth-tokens.json");
    std::fs::write(
        &token_file,
        serde_json::json!({"version": 1, "credentials": [{
            "provider": "openai-codex", "label": "default", "kind": "oauth",
            "access_token": "bench-access-token", "refresh_token": "bench-refresh",
            "expires_at": 4_102_444_800_i64, "account_id": "acct-bench", "source": "login"
        }]})
        .to_string(),
    )
    .unwrap();
    set_private(&token_file);
    dir
}

#[cfg(unix)]
fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn bitrouter_cmd(world: &Path) -> Command {
    let mut cmd = Command::new(bitrouter_exe());
    cmd.env_clear()
        .env("HOME", world.join("home"))
        .env("XDG_CONFIG_HOME", world.join("config"))
        .env("XDG_DATA_HOME", world.join("data"))
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts `bitrouter serve` and returns it with its address and the time until `/health`
/// answered 200.
async fn spawn_bitrouter(world: &Path) -> (Proc, SocketAddr, Duration) {
    let started = Instant::now();
    let mut child = bitrouter_cmd(world)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on http://").nth(1)
                && let Some(tx) = tx.take()
            {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("bitrouter printed its address")
        .parse()
        .unwrap();
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(format!("http://{addr}/health")).send().await
            && r.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (Proc { child }, addr, started.elapsed())
}

// ---------------------------------------------------------------------------------------------
// Measurements

#[derive(Clone, Copy)]
struct Sample {
    total: Duration,
    first_event: Duration,
}

async fn one_request(client: &reqwest::Client, url: &str) -> Sample {
    let start = Instant::now();
    let mut resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(REQUEST)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    let mut first_event = None;
    let mut seen = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        if first_event.is_none() {
            first_event = Some(start.elapsed());
        }
        seen.extend_from_slice(&chunk);
    }
    assert!(
        seen.windows(18).any(|w| w == b"response.completed"),
        "{url}: stream ended without response.completed"
    );
    Sample {
        total: start.elapsed(),
        first_event: first_event.unwrap_or_default(),
    }
}

/// Runs `rounds` rounds; each round sends `concurrency` requests at once to one target,
/// alternating direct and proxied so both see the same machine state.
async fn latency(
    direct: &str,
    proxied: &str,
    concurrency: usize,
    rounds: usize,
) -> (Vec<Sample>, Vec<Sample>) {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let (mut d, mut p) = (Vec::new(), Vec::new());
    // Warm up connections and caches.
    for _ in 0..3 {
        round(&client, direct, concurrency).await;
        round(&client, proxied, concurrency).await;
    }
    for i in 0..rounds {
        if i % 2 == 0 {
            d.extend(round(&client, direct, concurrency).await);
            p.extend(round(&client, proxied, concurrency).await);
        } else {
            p.extend(round(&client, proxied, concurrency).await);
            d.extend(round(&client, direct, concurrency).await);
        }
    }
    (d, p)
}

async fn round(client: &reqwest::Client, url: &str, concurrency: usize) -> Vec<Sample> {
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            tokio::spawn(async move { one_request(&client, &url).await })
        })
        .collect();
    let mut out = Vec::with_capacity(concurrency);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn throughput(url: &str, concurrency: usize, duration: Duration) -> f64 {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            let done = done.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    one_request(&client, &url).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx.min(samples.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn signed_ms(a: Duration, b: Duration) -> String {
    format!("{:+.3}", (a.as_secs_f64() - b.as_secs_f64()) * 1000.0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Row {
    what: String,
    direct: String,
    proxied: String,
    diff: String,
    target: &'static str,
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<44} {:>12} {:>12} {:>12}  target",
        "measure", "direct", "bitrouter", "difference"
    );
    println!("{}", "-".repeat(100));
    for r in rows {
        println!(
            "{:<44} {:>12} {:>12} {:>12}  {}",
            r.what, r.direct, r.proxied, r.diff, r.target
        );
    }
}

async fn bench_main() {
    let quick = std::env::var_os("BITROUTER_BENCH_QUICK").is_some();
    let (_upstream, upstream) = spawn_fake_upstream();
    let world = world(upstream);
    let (bitrouter, addr, health_after) = spawn_bitrouter(world.path()).await;
    let pid = bitrouter.child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = rss_kib(pid);

    let direct = format!("http://{upstream}/codex/responses");
    let proxied = format!("http://{addr}/v1/responses");
    if let Ok(only) = std::env::var("BITROUTER_BENCH_ONLY") {
        // For profiling: only one throughput phase (`proxied` or `direct`), for
        // `BITROUTER_BENCH_SECS` seconds (20).
        let secs = std::env::var("BITROUTER_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20);
        // The bare proxy runs only when it is measured.
        let bare = (only == "bare").then(|| spawn_bare_proxy(upstream));
        let url = match (&bare, only.as_str()) {
            (Some((_, addr)), _) => format!("http://{addr}/v1/responses"),
            (None, "direct") => direct,
            (None, _) => proxied,
        };
        match &bare {
            Some((proc, _)) => eprintln!(
                "bitrouter pid {pid}; bare proxy pid {}; {only} throughput for {secs} s",
                proc.child.id()
            ),
            None => eprintln!("bitrouter pid {pid}; {only} throughput for {secs} s"),
        }
        let rps = throughput(&url, 64, Duration::from_secs(secs)).await;
        println!("{only} throughput, 64 clients: {rps:.0} req/s");
        return;
    }
    let mut rows = Vec::new();

    for (concurrency, rounds) in [
        (1, if quick { 200 } else { 2000 }),
        (32, if quick { 10 } else { 100 }),
    ] {
        let (mut d, mut p) = latency(&direct, &proxied, concurrency, rounds).await;
        let mut d_total: Vec<_> = d.iter().map(|s| s.total).collect();
        let mut p_total: Vec<_> = p.iter().map(|s| s.total).collect();
        for (label, q, target) in [
            ("p50", 0.50, "added <= 0.3 ms"),
            ("p99", 0.99, "added <= 1 ms"),
        ] {
            let (a, b) = (percentile(&mut p_total, q), percentile(&mut d_total, q));
            rows.push(Row {
                what: format!("stream latency {label}, {concurrency} client(s)"),
                direct: ms(b),
                proxied: ms(a),
                diff: signed_ms(a, b),
                target,
            });
        }
        let mut d_first: Vec<_> = d.iter_mut().map(|s| s.first_event).collect();
        let mut p_first: Vec<_> = p.iter_mut().map(|s| s.first_event).collect();
        let (a, b) = (
            percentile(&mut p_first, 0.99),
            percentile(&mut d_first, 0.99),
        );
        rows.push(Row {
            what: format!("time to first event p99, {concurrency} client(s)"),
            direct: ms(b),
            proxied: ms(a),
            diff: signed_ms(a, b),
            target: "added <= 1 ms",
        });
    }

    let secs = if quick { 2 } else { 10 };
    let d_rps = throughput(&direct, 64, Duration::from_secs(secs)).await;
    let p_rps = throughput(&proxied, 64, Duration::from_secs(secs)).await;
    rows.push(Row {
        what: "throughput, 64 clients (req/s)".into(),
        direct: format!("{d_rps:.0}"),
        proxied: format!("{p_rps:.0}"),
        diff: format!("x{:.2}", p_rps / d_rps),
        target: ">= x0.5",
    });
    // The floor: the same load through a bare axum + reqwest pass-through proxy.
    let (bare, bare_addr) = spawn_bare_proxy(upstream);
    let b_rps = throughput(
        &format!("http://{bare_addr}/v1/responses"),
        64,
        Duration::from_secs(secs),
    )
    .await;
    drop(bare);
    rows.push(Row {
        what: "  reference: bare pass-through proxy (req/s)".into(),
        direct: format!("{d_rps:.0}"),
        proxied: format!("{b_rps:.0}"),
        diff: format!("x{:.2}", b_rps / d_rps),
        target: "(no target; the stack's floor)",
    });

    rows.push(Row {
        what: "bitrouter RSS idle (MB)".into(),
        direct: "-".into(),
        proxied: format!("{:.1}", idle_rss as f64 / 1024.0),
        diff: "-".into(),
        target: "<= 15 MB",
    });
    let open = if quick { 200 } else { 1000 };
    let held_rss = open_streams(addr, upstream, open, pid).await;
    rows.push(Row {
        what: format!("bitrouter RSS, {open} open streams (MB)"),
        direct: "-".into(),
        proxied: format!("{:.1}", held_rss as f64 / 1024.0),
        diff: "-".into(),
        target: "<= 64 MB",
    });

    let mut route_times = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        let out = bitrouter_cmd(world.path())
            .args(["route", "openai-codex:gpt-6.1-sol"])
            .output()
            .unwrap();
        route_times.push(start.elapsed());
        assert!(
            out.status.success(),
            "route failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    rows.push(Row {
        what: "`bitrouter route` wall time, median (ms)".into(),
        direct: "-".into(),
        proxied: ms(percentile(&mut route_times, 0.5)),
        diff: "-".into(),
        target: "<= 10 ms",
    });
    rows.push(Row {
        what: "`serve` start to /health 200 (ms)".into(),
        direct: "-".into(),
        proxied: ms(health_after),
        diff: "-".into(),
        target: "<= 100 ms",
    });
    let size = std::fs::metadata(bitrouter_exe())
        .map(|m| m.len())
        .unwrap_or(0);
    rows.push(Row {
        what: "binary size (MB, bench profile = release)".into(),
        direct: "-".into(),
        proxied: format!("{:.1}", size as f64 / 1_048_576.0),
        diff: "-".into(),
        target: "<= 12 MB stripped",
    });
    print_table(&rows);
    drop(bitrouter);
}

/// Opens `n` streams that the upstream holds open, reads bitrouter's RSS, then releases them.
async fn open_streams(addr: SocketAddr, upstream: SocketAddr, n: usize, pid: u32) -> u64 {
    // The fake upstream holds every stream whose model is `hold` until `/release`.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let gate = Arc::new(Semaphore::new(128));
    let opened = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let client = client.clone();
        let gate = gate.clone();
        let opened = opened.clone();
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let mut resp = client
                .post(format!("http://{addr}/v1/responses"))
                .header("content-type", "application/json")
                .body(REQUEST.replace("gpt-6.1-sol", "hold"))
                .send()
                .await
                .unwrap();
            let _ = resp.chunk().await;
            opened.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            while let Ok(Some(_)) = resp.chunk().await {}
        }));
    }
    while opened.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rss = rss_kib(pid);
    reqwest::Client::new()
        .post(format!("http://{upstream}/release"))
        .send()
        .await
        .unwrap();
    for t in tasks {
        let _ = t.await;
    }
    rss
}
