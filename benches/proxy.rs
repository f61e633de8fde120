//! `cargo bench --bench proxy`: what one proxy hop through bitrouter costs, against the floor.
//!
//! One run measures three targets side by side on the same machine, interleaved:
//!
//! - **direct**: a canned Responses stream (5 SSE events, as the Codex backend sends them)
//!   served by nginx (Debian `nginx-light`);
//! - **nginx proxy**: a second nginx, a plain reverse proxy in front of the first (keep-alive
//!   upstream pool, no buffering): the practical floor of a proxy hop;
//! - **bitrouter**: `bitrouter serve` (this build's release binary) in front of the first, with a
//!   stored `openai-codex` account, so every request takes the real path: Host check, body
//!   parsed and shaped, model resolved, credential attached, the stream peeked and relayed.
//!
//! The load generator is `wrk` (Debian `wrk`, a POST body from a small Lua script) at 1, 32 and
//! 256 connections. Each cell prints requests per second, its ratio to direct, p50 and p99
//! latency and what the hop adds to them, and the CPU time the proxy process spent per request
//! (user + system, from `/proc`). Time to first event comes from this program's own client at
//! one connection; resident memory from `/proc` with the server idle and with 1,000 streams held
//! open by a second upstream (this program re-executed with `--hold-upstream`).
//!
//! Environment: `BITROUTER_BENCH_QUICK=1` (short cells), `BITROUTER_BENCH_SECS=N` (seconds per
//! cell), `BITROUTER_BENCH_BASELINE=/path/to/bitrouter` (one more row: another build, e.g. the
//! previous release, measured in the same run), `BITROUTER_BENCH_BIN=/path` (the binary under
//! test instead of this build's), `BITROUTER_BENCH_ONLY=direct|nginx|bitrouter` with
//! `BITROUTER_BENCH_CONNS=N` (one target under load for `BITROUTER_BENCH_SECS`, printing its pid,
//! for `perf`; with `BITROUTER_BENCH_REQUESTS=N`, exactly N+20 sequential requests instead, for
//! instruction counts with `BITROUTER_BENCH_BIN` pointing at a script that runs bitrouter under
//! `valgrind --tool=callgrind`). It measures; it asserts only that every answer was a 200.

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

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::post;
use tokio::sync::Semaphore;

/// SSE events of one short streamed response.
const EVENTS: [&str; 5] = [
    "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"created_at\":1,\"model\":\"gpt-6.1-sol\",\"output\":null}}\n\n",
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[]}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello\"}\n\n",
    "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello\"}]}}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1,\"total_tokens\":6}}}\n\n",
];

/// The request every client sends: a small streamed Responses request, as the Codex CLI sends it.
const REQUEST: &str = r#"{"model":"gpt-6.1-sol","stream":true,"store":false,"instructions":"","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#;

/// The connection counts of the load cells.
const CONNECTIONS: [usize; 3] = [1, 32, 256];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--hold-upstream") {
        hold_upstream_main();
        return;
    }
    // reqwest uses rustls without a default provider (as the binary does).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench_main());
}

// ---------------------------------------------------------------------------------------------
// Settings

struct Settings {
    secs: u64,
    quick: bool,
    bin: PathBuf,
    baseline: Option<PathBuf>,
    only: Option<String>,
    only_conns: usize,
    /// With `only`: send exactly this many requests with this program's client instead of
    /// running wrk for a time (for instruction counts under valgrind).
    only_requests: Option<usize>,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let quick = var("BITROUTER_BENCH_QUICK").is_some();
        Settings {
            secs: var("BITROUTER_BENCH_SECS")
                .and_then(|s| s.parse().ok())
                .unwrap_or(if quick { 3 } else { 10 }),
            quick,
            bin: var("BITROUTER_BENCH_BIN").map_or_else(
                || PathBuf::from(env!("CARGO_BIN_EXE_bitrouter")),
                PathBuf::from,
            ),
            baseline: var("BITROUTER_BENCH_BASELINE").map(PathBuf::from),
            only: var("BITROUTER_BENCH_ONLY"),
            only_conns: var("BITROUTER_BENCH_CONNS")
                .and_then(|s| s.parse().ok())
                .unwrap_or(32),
            only_requests: var("BITROUTER_BENCH_REQUESTS").and_then(|s| s.parse().ok()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A child process, stopped when dropped (SIGTERM for nginx so its workers go too).
struct Proc {
    child: Child,
    graceful: bool,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.graceful {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (nginx needs its port in its config file).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require(program: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return path;
        }
    }
    panic!("`{program}` not found: install it first (Debian: apt-get install {package})");
}

/// An nginx instance in `dir` with this `http` block, listening on 127.0.0.1:`port`.
async fn spawn_nginx(dir: &Path, name: &str, port: u16, http: &str) -> Proc {
    let nginx = require("nginx", "nginx-light");
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    let r = root.display();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes auto;\npid {r}/nginx.pid;\nerror_log {r}/error.log warn;\nworker_rlimit_nofile 20000;\nevents {{ worker_connections 8192; multi_accept on; }}\nhttp {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n  client_body_temp_path {r}/tmp/body;\n  proxy_temp_path {r}/tmp/proxy;\n  fastcgi_temp_path {r}/tmp/fastcgi;\n  uwsgi_temp_path {r}/tmp/uwsgi;\n  scgi_temp_path {r}/tmp/scgi;\n{http}\n}}\n"
    );
    let path = root.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(nginx)
        .args([
            "-p",
            &root.display().to_string(),
            "-c",
            &path.display().to_string(),
        ])
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let proc = Proc {
        child,
        graceful: true,
    };
    wait_listening(SocketAddr::from(([127, 0, 0, 1], port))).await;
    proc
}

async fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The canned upstream: every `POST /codex/responses` gets the same 5-event stream.
async fn spawn_canned_upstream(dir: &Path) -> (Proc, SocketAddr) {
    let port = free_port();
    let body: String = EVENTS
        .concat()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    let http = format!(
        "  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    location = /codex/responses {{ default_type text/event-stream; return 200 \"{body}\"; }}\n    location / {{ return 404; }}\n  }}"
    );
    let proc = spawn_nginx(dir, "upstream", port, &http).await;
    (proc, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// nginx as a plain reverse proxy in front of `upstream`, as one would set it up for SSE.
async fn spawn_nginx_proxy(dir: &Path, upstream: SocketAddr) -> (Proc, SocketAddr) {
    let port = free_port();
    let http = format!(
        "  upstream codex {{ server {upstream}; keepalive 512; }}\n  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    location = /v1/responses {{\n      proxy_pass http://codex/codex/responses;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n    }}\n  }}"
    );
    let proc = spawn_nginx(dir, "proxy", port, &http).await;
    (proc, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// This program re-executed as the holding upstream; it prints its address on the first line.
fn spawn_hold_upstream() -> (Proc, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--hold-upstream")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (
        Proc {
            child,
            graceful: false,
        },
        line.trim().parse().unwrap(),
    )
}

/// A home for one bitrouter: config pointing `openai-codex` at `upstream`, one stored account.
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

fn bitrouter_cmd(bin: &Path, world: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("HOME", world.join("home"))
        .env("XDG_CONFIG_HOME", world.join("config"))
        .env("XDG_DATA_HOME", world.join("data"))
        .env("XDG_STATE_HOME", world.join("state"))
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts `bitrouter serve` and returns it with its address and the time until `/health`
/// answered 200.
async fn spawn_bitrouter(bin: &Path, world: &Path) -> (Proc, SocketAddr, Duration) {
    let started = Instant::now();
    let mut child = bitrouter_cmd(bin, world)
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
            } else if tx.is_none() && (line.contains("WARN") || line.contains("ERROR")) {
                eprintln!("bitrouter: {line}");
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(120))
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
    // SIGTERM: a graceful stop, so a wrapper such as valgrind writes its results.
    let proc = Proc {
        child,
        graceful: true,
    };
    (proc, addr, started.elapsed())
}

// ---------------------------------------------------------------------------------------------
// The holding upstream (for memory with open streams)

fn hold_upstream_main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let held = Arc::new(Semaphore::new(0));
        let app = Router::new()
            .route(
                "/codex/responses",
                post({
                    let held = held.clone();
                    move || hold(held.clone())
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
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
}

/// Sends the first output (bitrouter forwards a stream once output begins), then holds the
/// stream open until `/release`.
async fn hold(held: Arc<Semaphore>) -> Response {
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
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// CPU time (user + system) of a process and its children (nginx workers), in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let mut pids = vec![pid];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if stat_fields(child).and_then(|f| f.get(1).and_then(|p| p.parse::<u32>().ok()))
                == Some(pid)
            {
                pids.push(child);
            }
        }
    }
    let ticks: u64 = pids
        .iter()
        .filter_map(|p| stat_fields(*p))
        .map(|f| {
            // Fields after the command: state(0) ppid(1) ... utime(11) stime(12).
            f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        })
        .sum();
    // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ).
    ticks as f64 / 100.0
}

/// `/proc/<pid>/stat` after the command name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One wrk run's summary.
#[derive(Clone, Copy)]
struct Load {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    /// CPU microseconds per request of the measured proxy (or upstream, for direct).
    cpu_us: f64,
}

/// The Lua script that makes wrk POST the request and print its figures in microseconds.
fn wrk_script(dir: &Path) -> PathBuf {
    let path = dir.join("post.lua");
    let script = format!(
        "wrk.method = \"POST\"\nwrk.body = '{REQUEST}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
         done = function(summary, latency, requests)\n  local e = summary.errors\n  \
         io.write(string.format(\"BENCH %d %d %d %d %d\\n\", summary.requests, summary.duration, \
         latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))\nend\n"
    );
    std::fs::write(&path, script).unwrap();
    path
}

/// Runs wrk against `url` for `secs` with `conns` connections; `cpu_pid` is the process whose
/// CPU time per request is reported.
fn wrk(script: &Path, url: &str, conns: usize, secs: u64, cpu_pid: u32) -> Load {
    let threads = conns.min(2);
    let before = cpu_secs(cpu_pid);
    let out = Command::new(require("wrk", "wrk"))
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &conns.to_string(),
            "-d",
            &format!("{secs}s"),
            "--timeout",
            "10s",
            "-s",
            &script.display().to_string(),
            url,
        ])
        .output()
        .unwrap();
    let cpu = cpu_secs(cpu_pid) - before;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .unwrap_or_else(|| panic!("wrk printed no summary for {url}: {text}"));
    let n: Vec<f64> = line
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let (requests, duration_us, p50, p99, errors) = (n[0], n[1], n[2], n[3], n[4]);
    assert!(
        errors == 0.0,
        "{url}: {errors} failed requests (non-2xx, timeouts or socket errors) of {requests}"
    );
    Load {
        rps: requests / (duration_us / 1e6),
        p50_us: p50,
        p99_us: p99,
        cpu_us: cpu * 1e6 / requests.max(1.0),
    }
}

/// Time to first body byte and to the end of the stream for `n` sequential requests.
async fn first_event(url: &str, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let (mut first, mut total) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n + 20 {
        let start = Instant::now();
        let mut resp = client
            .post(url)
            .header("content-type", "application/json")
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
            "{url}: the stream ended without response.completed"
        );
        // The first 20 warm connections and caches.
        if i >= 20 {
            first.push(first_at.unwrap_or_default());
            total.push(start.elapsed());
        }
    }
    (first, total)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx.min(samples.len() - 1)]
}

fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

fn signed_ms(us: f64) -> String {
    format!("{:+.3}", us / 1000.0)
}

/// Opens `n` streams through `addr` that the holding upstream keeps open, reads the RSS of
/// `pid`, then releases them.
async fn open_streams(addr: SocketAddr, upstream: SocketAddr, n: usize, pid: u32) -> u64 {
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
                .body(REQUEST)
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "held stream: {}", resp.status());
            let _ = resp.chunk().await;
            opened.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            while let Ok(Some(_)) = resp.chunk().await {}
        }));
    }
    while opened.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
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

// ---------------------------------------------------------------------------------------------
// The run

/// One measured target.
struct Target {
    name: String,
    url: String,
    /// The process whose CPU time is charged to this target.
    pid: u32,
}

async fn bench_main() {
    let settings = Settings::from_env();
    let dir = tempfile::tempdir().unwrap();
    let script = wrk_script(dir.path());
    let (upstream_proc, upstream) = spawn_canned_upstream(dir.path()).await;
    let (proxy_proc, proxy) = spawn_nginx_proxy(dir.path(), upstream).await;
    let home = world(upstream);
    let (bitrouter, addr, health_after) = spawn_bitrouter(&settings.bin, home.path()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = rss_kib(bitrouter.pid());

    let mut targets = vec![
        Target {
            name: "direct (nginx upstream)".into(),
            url: format!("http://{upstream}/codex/responses"),
            pid: upstream_proc.pid(),
        },
        Target {
            name: "nginx proxy".into(),
            url: format!("http://{proxy}/v1/responses"),
            pid: proxy_proc.pid(),
        },
        Target {
            name: "bitrouter".into(),
            url: format!("http://{addr}/v1/responses"),
            pid: bitrouter.pid(),
        },
    ];
    let baseline = match &settings.baseline {
        Some(bin) => {
            let home = world(upstream);
            let (proc, addr, _) = spawn_bitrouter(bin, home.path()).await;
            targets.push(Target {
                name: "baseline bitrouter".into(),
                url: format!("http://{addr}/v1/responses"),
                pid: proc.pid(),
            });
            Some((proc, home))
        }
        None => None,
    };

    if let Some(only) = &settings.only {
        let target = targets
            .iter()
            .find(|t| t.name.starts_with(only.as_str()))
            .unwrap_or_else(|| panic!("BITROUTER_BENCH_ONLY={only}: no such target"));
        if let Some(n) = settings.only_requests {
            eprintln!("{} pid {}; {n} requests", target.name, target.pid);
            let (_, mut total) = first_event(&target.url, n).await;
            println!(
                "{}: {n} requests, p50 {} ms",
                target.name,
                ms(percentile(&mut total, 0.5).as_secs_f64() * 1e6)
            );
            return;
        }
        eprintln!(
            "{} pid {}; {} connections for {} s",
            target.name, target.pid, settings.only_conns, settings.secs
        );
        let load = wrk(
            &script,
            &target.url,
            settings.only_conns,
            settings.secs,
            target.pid,
        );
        println!(
            "{}: {:.0} req/s, p50 {} ms, p99 {} ms, {:.1} us CPU per request",
            target.name,
            load.rps,
            ms(load.p50_us),
            ms(load.p99_us),
            load.cpu_us
        );
        return;
    }

    println!("{}", header(&settings));
    // Warm every target (connections, caches, the catalog fetch).
    for t in &targets {
        wrk(&script, &t.url, 32, 1, t.pid);
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "\n{:<24} {:>5} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "target", "conns", "req/s", "x direct", "p50 ms", "+p50", "p99 ms", "+p99", "CPU us/req"
    );
    let mut verdicts = Vec::new();
    for conns in CONNECTIONS {
        let loads: Vec<Load> = targets
            .iter()
            .map(|t| wrk(&script, &t.url, conns, settings.secs, t.pid))
            .collect();
        let direct = loads[0];
        for (t, l) in targets.iter().zip(&loads) {
            let first = t.pid == targets[0].pid;
            let _ = writeln!(
                table,
                "{:<24} {:>5} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9.1}",
                t.name,
                conns,
                l.rps,
                if first {
                    "-".to_owned()
                } else {
                    format!("x{:.2}", l.rps / direct.rps)
                },
                ms(l.p50_us),
                if first {
                    "-".to_owned()
                } else {
                    signed_ms(l.p50_us - direct.p50_us)
                },
                ms(l.p99_us),
                if first {
                    "-".to_owned()
                } else {
                    signed_ms(l.p99_us - direct.p99_us)
                },
                l.cpu_us
            );
        }
        let ours = loads[2];
        let ratio = ours.rps / direct.rps;
        let (added50, added99) = (
            (ours.p50_us - direct.p50_us) / 1000.0,
            (ours.p99_us - direct.p99_us) / 1000.0,
        );
        match conns {
            1 => verdicts.push(verdict(
                format!("1 connection: added p50 {added50:+.3} ms"),
                "<= 0.1 ms",
                added50 <= 0.1,
            )),
            _ => {
                verdicts.push(verdict(
                    format!("{conns} connections: x{ratio:.2} of direct"),
                    ">= x0.5",
                    ratio >= 0.5,
                ));
                if conns == 32 {
                    verdicts.push(verdict(
                        format!("{conns} connections: added p50 {added50:+.3} ms"),
                        "<= 0.5 ms",
                        added50 <= 0.5,
                    ));
                    verdicts.push(verdict(
                        format!("{conns} connections: added p99 {added99:+.3} ms"),
                        "<= 1 ms",
                        added99 <= 1.0,
                    ));
                }
            }
        }
        table.push('\n');
    }
    println!("{table}");

    // Time to first event, one connection, this program's own client.
    let n = if settings.quick { 300 } else { 2000 };
    println!("time to first event and whole stream, 1 connection, {n} sequential requests (ms):");
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9}",
        "target", "first p50", "first p99", "all p50", "all p99"
    );
    let mut firsts = Vec::new();
    for t in &targets {
        let (mut first, mut total) = first_event(&t.url, n).await;
        let row = [
            percentile(&mut first, 0.5),
            percentile(&mut first, 0.99),
            percentile(&mut total, 0.5),
            percentile(&mut total, 0.99),
        ];
        println!(
            "{:<24} {:>9} {:>9} {:>9} {:>9}",
            t.name,
            ms(row[0].as_secs_f64() * 1e6),
            ms(row[1].as_secs_f64() * 1e6),
            ms(row[2].as_secs_f64() * 1e6),
            ms(row[3].as_secs_f64() * 1e6)
        );
        firsts.push(row[0]);
    }
    if let Some(base) = firsts.get(3) {
        let added = (firsts[2].as_secs_f64() - base.as_secs_f64()) * 1000.0;
        verdicts.push(verdict(
            format!("first event p50 against the baseline build: {added:+.3} ms"),
            "unchanged (<= +0.05 ms)",
            added <= 0.05,
        ));
    }
    drop(baseline);

    // Memory: idle, and with streams held open by the holding upstream.
    let open = if settings.quick { 200 } else { 1000 };
    let (_holder, holder) = spawn_hold_upstream();
    let hold_home = world(holder);
    let (held_bitrouter, held_addr, _) = spawn_bitrouter(&settings.bin, hold_home.path()).await;
    let held_rss = open_streams(held_addr, holder, open, held_bitrouter.pid()).await;
    println!(
        "\nbitrouter resident memory: idle {:.1} MB; with {open} open streams {:.1} MB",
        idle_rss as f64 / 1024.0,
        held_rss as f64 / 1024.0
    );
    if open >= 1000 {
        verdicts.push(verdict(
            format!(
                "RSS with {open} open streams {:.1} MB",
                held_rss as f64 / 1024.0
            ),
            "<= 64 MB",
            held_rss <= 64 * 1024,
        ));
    }

    // The command line.
    let mut route_times = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        let out = bitrouter_cmd(&settings.bin, home.path())
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
    let size = std::fs::metadata(&settings.bin).map_or(0, |m| m.len());
    println!(
        "`bitrouter route` median {} ms; `serve` start to /health 200 {} ms; binary {:.1} MB",
        ms(percentile(&mut route_times, 0.5).as_secs_f64() * 1e6),
        ms(health_after.as_secs_f64() * 1e6),
        size as f64 / 1_048_576.0
    );

    println!("\ntargets (bitrouter against direct, same run):");
    for v in &verdicts {
        println!("  {v}");
    }
    drop(bitrouter);
    drop(proxy_proc);
    drop(upstream_proc);
}

fn verdict(what: String, target: &str, met: bool) -> String {
    format!(
        "{what:<56} target {target:<24} {}",
        if met { "met" } else { "MISSED" }
    )
}

/// What was measured, on what: enough to compare runs.
fn header(settings: &Settings) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let tool = |p: &str, arg: &str| {
        Command::new(p)
            .arg(arg)
            .output()
            .map(|o| {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                text.lines().next().unwrap_or_default().trim().to_owned()
            })
            .unwrap_or_default()
    };
    format!(
        "bitrouter proxy benchmark\n  machine: {cpu}, {cores} cores (load average at start: {})\n  load: {} (-t min(2, conns)), {} s per cell, POST /v1/responses streamed, {} B request\n  upstream: {}, a canned 5-event Responses stream ({} B)\n  bitrouter: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        tool("wrk", "-v")
            .split(" Copyright")
            .next()
            .unwrap_or_default(),
        settings.secs,
        REQUEST.len(),
        tool("nginx", "-v"),
        EVENTS.concat().len(),
        settings.bin.display()
    )
}
