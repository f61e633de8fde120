//! `cargo bench --bench history`: what the request history costs `serve`, measured in one run.
//!
//! The setting is the proxy benchmark's (`benches/proxy`, whose process and measuring code this
//! program shares): an nginx serves a canned 5-event Responses stream, here with the Codex
//! backend's quota headers on every answer as the real backend sends them (so `serve` reads a
//! quota snapshot per answer and runs the `usage.json` writer, as in real use), and `wrk` drives
//! the release `bitrouter serve` in front of it at 32 connections with a client `User-Agent`.
//!
//! Each phase starts a fresh server with the history on (the default) or `history: off`,
//! alternating which goes first, for several rounds; a phase warms up for a second, then loads
//! the server for the phase's length. The table gives each configuration's median throughput,
//! p50 latency and CPU time per request (the server's user + system time over the requests it
//! answered, the history writer thread's part shown apart), and the history's cost in percent.
//! The table ends with the median and the mean (with its 95 % interval) of the rounds' own
//! costs: each round's two phases ran back to back.
//! After the run the history database is read back: every request answered must be a row.
//! It measures; it asserts only that every answer was a 200.
//!
//! Environment: `BITROUTER_BENCH_ROUNDS` (24) and `BITROUTER_BENCH_SECS` (seconds per phase, 4);
//! `BITROUTER_BENCH_QUICK=1` (2 rounds of 3 s); `BITROUTER_BENCH_PIN=1` runs the server alone on
//! the first CPU and wrk and nginx on the others: the server is then the bottleneck, its
//! throughput is its own and the rounds vary far less (on a 2-core machine the default run, all
//! sharing both cores, varies by ±10 % and more from round to round);
//! `BITROUTER_BENCH_AA=1` runs both configurations
//! with the history off, which shows the benchmark's own noise; `BITROUTER_BENCH_BIN=/path` (the
//! binary under test instead of this build's); `BITROUTER_BENCH_ONLY=on|off` runs one phase of
//! `BITROUTER_BENCH_SECS` and prints the server's pid first (for `perf`);
//! `BITROUTER_BENCH_ONLY=writer` runs the history writer thread alone, in this process
//! (`BITROUTER_BENCH_BATCHES` batches of 3,500 records, 80), and prints its CPU per row.

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

#[allow(
    dead_code,
    reason = "shared with the proxy benchmark, which uses all of it"
)]
#[path = "../proxy/measure.rs"]
mod measure;
#[allow(
    dead_code,
    reason = "shared with the proxy benchmark, which uses all of it"
)]
#[path = "../proxy/procs.rs"]
mod procs;

use std::path::{Path, PathBuf};

mod writer;

use measure::{Load, wrk, wrk_script};
use procs::{pin_apart, spawn_bitrouter, spawn_canned_upstream_with, world};

/// SSE events of one short streamed response, with usage that has cached and reasoning tokens.
pub(crate) const EVENTS: [&str; 5] = [
    "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"created_at\":1,\"model\":\"gpt-6.1-sol\",\"output\":null}}\n\n",
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[]}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello\"}\n\n",
    "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello\"}]}}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":50,\"input_tokens_details\":{\"cached_tokens\":40},\"output_tokens\":5,\"output_tokens_details\":{\"reasoning_tokens\":2},\"total_tokens\":55}}}\n\n",
];

/// The request body the load sends (`measure` asks for it by this name).
pub(crate) fn request_body() -> &'static str {
    REQUEST
}

/// Where the load sends it (`measure` asks for it by this name).
pub(crate) fn request_path() -> &'static str {
    "/v1/responses"
}

/// The request every client sends: a small streamed Responses request.
pub(crate) const REQUEST: &str = r#"{"model":"gpt-6.1-sol","stream":true,"store":false,"instructions":"","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#;

/// The quota headers the Codex backend sends with every answer.
const QUOTA_HEADERS: [(&str, &str); 6] = [
    ("x-codex-primary-used-percent", "12"),
    ("x-codex-primary-window-minutes", "300"),
    ("x-codex-primary-reset-after-seconds", "3600"),
    ("x-codex-secondary-used-percent", "3"),
    ("x-codex-secondary-window-minutes", "10080"),
    ("x-codex-secondary-reset-after-seconds", "500000"),
];

const CONNECTIONS: usize = 32;

fn main() {
    // reqwest (the health check) uses rustls without a default provider (as the binary does).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

/// One phase's figures.
struct Phase {
    load: Load,
    /// CPU microseconds per request of the history writer thread.
    writer_us: f64,
}

/// The CPU time (user + system) of the process's threads called `name`, in seconds.
fn thread_cpu_secs(pid: u32, name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ticks: u64 = tasks
        .filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .map(|stat| {
            // After the command name: state(0) ... utime(11) stime(12).
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|f| f.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum();
    // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ).
    ticks as f64 / 100.0
}

/// The mean of `v` and the half width of its 95 % confidence interval (normal approximation;
/// the rounds are independent runs).
fn mean_and_ci(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.len() < 2 {
        return (v.first().copied().unwrap_or(f64::NAN), f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n;
    let variance = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, 1.96 * (variance / n).sqrt())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A server's home; with the history off when `off`.
fn home(upstream: std::net::SocketAddr, off: bool) -> tempfile::TempDir {
    let dir = world(upstream, 1);
    if off {
        let config = dir.path().join("config/bitrouter/bitrouter.yaml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str("history: off\n");
        std::fs::write(&config, text).unwrap();
    }
    dir
}

/// One phase: a fresh server, warmed up, then loaded for `secs`; stopped gracefully after (so
/// the writer stores what is queued). Returns the figures and the requests answered in all.
async fn phase(bin: &Path, home: &Path, script: &Path, secs: u64) -> (Phase, u64) {
    let (server, addr, _) = spawn_bitrouter(bin, home).await;
    let url = format!("http://{addr}/v1/responses");
    let pid = server.pid();
    let warm = wrk(script, &url, CONNECTIONS, 1, pid);
    let writer_before = thread_cpu_secs(pid, "history");
    let load = wrk(script, &url, CONNECTIONS, secs, pid);
    let writer = thread_cpu_secs(pid, "history") - writer_before;
    drop(server);
    let writer_us = writer * 1e6 / load.requests.max(1) as f64;
    (Phase { load, writer_us }, warm.requests + load.requests)
}

async fn bench() {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let quick = var("BITROUTER_BENCH_QUICK").is_some();
    let number =
        |name: &str, default: u64| var(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    // Many short rounds rather than a few long ones: this kind of VM drifts from one phase to
    // the next, and only more pairs narrow the interval (40 rounds of 4 s gave ±1.5 % pinned,
    // where 10 gave ±3-5 %).
    let rounds = number("BITROUTER_BENCH_ROUNDS", if quick { 2 } else { 24 });
    let secs = number("BITROUTER_BENCH_SECS", if quick { 3 } else { 4 });
    if var("BITROUTER_BENCH_ONLY").as_deref() == Some("writer") {
        let dir = tempfile::tempdir().unwrap();
        writer::run(dir.path(), number("BITROUTER_BENCH_BATCHES", 80));
        return;
    }
    let aa = var("BITROUTER_BENCH_AA").is_some();
    let pinned = var("BITROUTER_BENCH_PIN").is_some();
    if pinned {
        pin_apart();
    }
    let bin = var("BITROUTER_BENCH_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_bitrouter")),
        PathBuf::from,
    );

    let dir = tempfile::tempdir().unwrap();
    let script = wrk_script(dir.path(), &[("User-Agent", "OpenAI/Python 3.60.0")]);
    let (_upstream, upstream) = spawn_canned_upstream_with(dir.path(), &QUOTA_HEADERS).await;
    let on_home = home(upstream, aa);
    let off_home = home(upstream, true);

    if let Some(only) = var("BITROUTER_BENCH_ONLY") {
        let home = if only == "on" { &on_home } else { &off_home };
        let (server, addr, _) = spawn_bitrouter(&bin, home.path()).await;
        eprintln!("history {only}: pid {}", server.pid());
        let url = format!("http://{addr}/v1/responses");
        let load = wrk(&script, &url, CONNECTIONS, secs, server.pid());
        println!(
            "history {only}: {:.0} req/s, p50 {:.3} ms, {:.1} us CPU per request",
            load.rps,
            load.p50_us / 1000.0,
            load.cpu_us
        );
        return;
    }
    let (mut on, mut off) = (Vec::new(), Vec::new());
    let mut answered_on = 0;
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for history_on in order {
            let home = if history_on { &on_home } else { &off_home };
            let (p, answered) = phase(&bin, home.path(), &script, secs).await;
            if history_on {
                answered_on += answered;
                on.push(p);
            } else {
                off.push(p);
            }
        }
        let (a, b) = (on.last().unwrap(), off.last().unwrap());
        eprintln!(
            "round {}: history on {:.0} req/s {:.1} us CPU/req (writer {:.1}), off {:.0} req/s {:.1} us CPU/req",
            round + 1,
            a.load.rps,
            a.load.cpu_us,
            a.writer_us,
            b.load.rps,
            b.load.cpu_us
        );
    }

    let db = on_home.path().join("data/bitrouter/history.sqlite3");
    let rows: i64 = rusqlite::Connection::open(&db)
        .and_then(|conn| conn.query_row("SELECT count(*) FROM requests", [], |r| r.get(0)))
        .unwrap_or(0);

    let of = |phases: &[Phase], f: fn(&Phase) -> f64| median(phases.iter().map(f).collect());
    let (on_rps, off_rps) = (of(&on, |p| p.load.rps), of(&off, |p| p.load.rps));
    let (on_cpu, off_cpu) = (of(&on, |p| p.load.cpu_us), of(&off, |p| p.load.cpu_us));
    let (on_p50, off_p50) = (of(&on, |p| p.load.p50_us), of(&off, |p| p.load.p50_us));
    let writer = of(&on, |p| p.writer_us);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "\nhistory cost{}, {CONNECTIONS} connections, {rounds} rounds of {secs} s, {cores} cores{} (medians)",
        if aa {
            " (A/A: both with history off)"
        } else {
            ""
        },
        if pinned {
            ", the server alone on the first"
        } else {
            ""
        }
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
        "{:<40} {:>12.3} {:>12.3} {:>9.1}%",
        "p50 latency (ms)",
        off_p50 / 1000.0,
        on_p50 / 1000.0,
        (on_p50 / off_p50 - 1.0) * 100.0
    );
    println!(
        "{:<40} {:>12.1} {:>12.1} {:>9.1}%",
        "serve CPU per request (us)",
        off_cpu,
        on_cpu,
        (on_cpu / off_cpu - 1.0) * 100.0
    );
    println!(
        "{:<40} {:>12} {:>12.1}",
        "  of which the history writer thread (us)", "-", writer
    );
    // Each round's two phases ran back to back: their ratio cancels the slower drifts of a
    // shared machine that the medians above keep.
    let mut paired: Vec<f64> = on
        .iter()
        .zip(&off)
        .map(|(a, b)| (1.0 - a.load.rps / b.load.rps) * 100.0)
        .collect();
    let (mean, half_width) = mean_and_ci(&paired);
    paired.sort_by(f64::total_cmp);
    println!(
        "{:<40} {:>12} {:>12} {:>9.1}%   (rounds: {})",
        "throughput cost, median of rounds",
        "",
        "",
        median(paired.clone()),
        paired
            .iter()
            .map(|c| format!("{c:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<40} {:>12} {:>12} {:>9.1}% ± {half_width:.1}% (95 %)",
        "throughput cost, mean of rounds", "", "", mean
    );
    if !aa {
        // wrk does not count the requests still in flight when it stops; the server may finish
        // and store them.
        println!(
            "rows stored: {rows} for {answered_on} requests wrk saw answered (target: all, plus at most {} in flight)",
            2 * rounds as usize * CONNECTIONS
        );
    }
}
