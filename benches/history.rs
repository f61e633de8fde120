//! `cargo bench --bench history`: what the request history costs `serve`, measured in one run.
//!
//! Release `bitrouter serve` processes stand in front of the same fast fake Responses upstream
//! (this program re-executed with `--fake-upstream`, sending the Codex backend's quota headers
//! with every answer), with the history on (the default) or with `history: off`. The same streamed-request load at 32 connections is driven
//! at each in turn, alternating which goes first, for several rounds; the table gives each one's
//! median throughput and its CPU time per request (the server's user + system time over the
//! requests it answered, the writer thread included and also shown apart), and the history's
//! cost in percent. After
//! the run the history database is read back: every request answered must be a row. It measures;
//! it asserts nothing but that.
//!
//! Each phase starts a fresh server (history on or off, alternating which goes first), so no
//! configuration keeps a process slot of its own. `BITROUTER_BENCH_AA=1` runs both with the
//! history off, which shows the benchmark's own noise. `BITROUTER_BENCH_QUICK=1` runs shorter
//! rounds; `BITROUTER_BENCH_ROUNDS` and `BITROUTER_BENCH_SECS` set the rounds (6) and the
//! seconds per phase (5).

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
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::post;

/// One short streamed answer, with usage that has cached and reasoning tokens.
const EVENTS: [&str; 4] = [
    "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"created_at\":1,\"model\":\"gpt-6.1-sol\",\"output\":null}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello\"}\n\n",
    "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello\"}]}}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":50,\"input_tokens_details\":{\"cached_tokens\":40},\"output_tokens\":5,\"output_tokens_details\":{\"reasoning_tokens\":2},\"total_tokens\":55}}}\n\n",
];

const REQUEST: &str = r#"{"model":"gpt-6.1-sol","stream":true,"store":false,"instructions":"","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#;

const CONNECTIONS: usize = 32;

fn main() {
    if std::env::args().any(|a| a == "--fake-upstream") {
        fake_upstream();
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}

fn fake_upstream() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = Router::new().route(
            "/codex/responses",
            post(|| async {
                let chunks = EVENTS
                    .iter()
                    .map(|e| Ok::<_, std::io::Error>(bytes::Bytes::from_static(e.as_bytes())));
                // Quota headers on every answer, as the Codex backend sends them.
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .header("x-codex-primary-used-percent", "12")
                    .header("x-codex-primary-window-minutes", "300")
                    .header("x-codex-primary-reset-after-seconds", "3600")
                    .header("x-codex-secondary-used-percent", "3")
                    .header("x-codex-secondary-window-minutes", "10080")
                    .header("x-codex-secondary-reset-after-seconds", "500000")
                    .body(Body::from_stream(futures_util::stream::iter(chunks)))
                    .unwrap()
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

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_fake_upstream() -> (Proc, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--fake-upstream")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Proc(child), line.trim().parse().unwrap())
}

/// A private world for one server: config (with `extra` lines), a token, empty dirs.
fn world(upstream: SocketAddr, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config/bitrouter");
    let data = dir.path().join("data/bitrouter");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    std::fs::write(
        config.join("bitrouter.yaml"),
        format!("providers:\n  openai-codex:\n    base_url: http://{upstream}/codex\n{extra}"),
    )
    .unwrap();
    let tokens = data.join("oauth-tokens.json");
    std::fs::write(
        &tokens,
        serde_json::json!({"version": 1, "credentials": [{
            "provider": "openai-codex", "label": "default", "kind": "oauth",
            "access_token": "bench-access-token", "refresh_token": "bench-refresh",
            "expires_at": 4_102_444_800_i64, "account_id": "acct-bench", "source": "login"
        }]})
        .to_string(),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    dir
}

fn spawn_bitrouter(world: &Path) -> (Proc, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bitrouter"))
        .env_clear()
        .env("HOME", world.join("home"))
        .env("XDG_CONFIG_HOME", world.join("config"))
        .env("XDG_DATA_HOME", world.join("data"))
        .env("RUST_LOG", "warn")
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
            if let Some(addr) = line.strip_prefix("listening on http://")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr.trim().to_owned());
            } else if line.contains("WARN") {
                eprintln!("bitrouter: {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("bitrouter printed its address")
        .parse()
        .unwrap();
    (Proc(child), addr)
}

/// The process's user + system CPU time.
fn cpu_time(pid: u32) -> Duration {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// The CPU time of the process's thread called `name`.
fn thread_cpu(pid: u32, name: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .map(|t| stat_cpu(&t.path().join("stat").display().to_string()))
        .sum()
}

/// User + system time from a `stat` file.
fn stat_cpu(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    let ticks: u64 = fields.iter().sum();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

async fn one_request(client: &reqwest::Client, url: &str) {
    let mut resp = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "OpenAI/Python 3.60.0")
        .body(REQUEST)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    while resp.chunk().await.unwrap().is_some() {}
}

/// Drives `CONNECTIONS` clients at `url` for `duration`; returns requests answered.
async fn load(url: &str, duration: Duration) -> usize {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (client, url, done) = (client.clone(), url.to_owned(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    one_request(&client, &url).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed)
}

/// One phase's result.
struct Phase {
    rps: f64,
    cpu_per_request: Duration,
    runtime_per_request: Duration,
    writer_per_request: Duration,
}

async fn phase(url: &str, pid: u32, duration: Duration) -> (Phase, usize) {
    let (cpu, writer) = (cpu_time(pid), thread_cpu(pid, "history"));
    let runtime = thread_cpu(pid, "bitrouter");
    let start = Instant::now();
    let n = load(url, duration).await;
    let elapsed = start.elapsed();
    let used = cpu_time(pid).saturating_sub(cpu);
    let writer_used = thread_cpu(pid, "history").saturating_sub(writer);
    let runtime_used = thread_cpu(pid, "bitrouter").saturating_sub(runtime);
    let n32 = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    (
        Phase {
            rps: n as f64 / elapsed.as_secs_f64(),
            cpu_per_request: used / n32,
            runtime_per_request: runtime_used / n32,
            writer_per_request: writer_used / n32,
        },
        n,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

async fn bench() {
    let quick = std::env::var_os("BITROUTER_BENCH_QUICK").is_some();
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = number("BITROUTER_BENCH_ROUNDS", if quick { 2 } else { 6 });
    let secs = number("BITROUTER_BENCH_SECS", if quick { 2 } else { 5 });

    let (_upstream, upstream) = spawn_fake_upstream();
    // `BITROUTER_BENCH_AA=1`: both servers with history off, to see the benchmark's own noise.
    let aa = std::env::var_os("BITROUTER_BENCH_AA").is_some();
    let on_world = world(upstream, if aa { "history: off\n" } else { "" });
    let off_world = world(upstream, "history: off\n");

    // Each phase gets a fresh server, started and stopped in turn, so neither configuration
    // keeps a process slot (measured: two long-lived servers of the same configuration differed
    // by up to 8 us of CPU per request).
    let duration = Duration::from_secs(secs);
    let warm = Duration::from_millis(500);
    let mut answered_on = 0;
    let (mut on_phases, mut off_phases) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for history_on in order {
            let world = if history_on { &on_world } else { &off_world };
            let (server, addr) = spawn_bitrouter(world.path());
            let url = format!("http://{addr}/v1/responses");
            let warmed = load(&url, warm).await;
            let (p, n) = phase(&url, server.0.id(), duration).await;
            // Stop cleanly, so the writer stores what is queued.
            let _ = Command::new("kill")
                .args(["-TERM", &server.0.id().to_string()])
                .status();
            let mut server = server;
            let _ = server.0.wait();
            if history_on {
                answered_on += warmed + n;
                on_phases.push(p);
            } else {
                off_phases.push(p);
            }
        }
        eprintln!(
            "round {}: history on {:.0} req/s, off {:.0} req/s",
            round + 1,
            on_phases.last().map_or(0.0, |p| p.rps),
            off_phases.last().map_or(0.0, |p| p.rps)
        );
    }

    let db = on_world.path().join("data/bitrouter/history.sqlite3");
    let rows: i64 = rusqlite::Connection::open(&db)
        .and_then(|conn| conn.query_row("SELECT count(*) FROM requests", [], |r| r.get(0)))
        .unwrap_or(0);

    let rps = |phases: &[Phase]| median(phases.iter().map(|p| p.rps).collect());
    let cpu = |phases: &[Phase]| {
        median(
            phases
                .iter()
                .map(|p| p.cpu_per_request.as_secs_f64() * 1e6)
                .collect(),
        )
    };
    let runtime = |phases: &[Phase]| {
        median(
            phases
                .iter()
                .map(|p| p.runtime_per_request.as_secs_f64() * 1e6)
                .collect(),
        )
    };
    let writer_cpu = median(
        on_phases
            .iter()
            .map(|p| p.writer_per_request.as_secs_f64() * 1e6)
            .collect(),
    );
    let (on_rps, off_rps) = (rps(&on_phases), rps(&off_phases));
    let (on_cpu, off_cpu) = (cpu(&on_phases), cpu(&off_phases));
    println!(
        "\nhistory cost, {CONNECTIONS} connections, {rounds} rounds of {secs} s each (medians)"
    );
    println!("{}", "-".repeat(78));
    println!(
        "{:<40} {:>12} {:>12} {:>10}",
        "measure", "history off", "history on", "cost"
    );
    println!(
        "{:<40} {:>12.0} {:>12.0} {:>9.1}%",
        "throughput (req/s)",
        off_rps,
        on_rps,
        (1.0 - on_rps / off_rps) * 100.0
    );
    println!(
        "{:<40} {:>12.1} {:>12.1} {:>9.1}%",
        "serve CPU per request (us)",
        off_cpu,
        on_cpu,
        (on_cpu / off_cpu - 1.0) * 100.0
    );
    println!(
        "{:<40} {:>12.1} {:>12.1}",
        "  of which the runtime thread (us)",
        runtime(&off_phases),
        runtime(&on_phases)
    );
    println!(
        "{:<40} {:>12} {:>12.1}",
        "  of which the history writer thread (us)", "-", writer_cpu
    );
    println!(
        "rows stored {rows} of {answered_on} requests answered by the history server (target: all)"
    );
}
