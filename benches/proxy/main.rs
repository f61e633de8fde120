//! `cargo bench --bench proxy`: what one proxy hop through bitrouter costs, against the floor.
//!
//! One run measures five targets side by side on the same machine, interleaved:
//!
//! - **direct**: a canned Responses stream (5 SSE events, as the Codex backend sends them)
//!   served by nginx (Debian `nginx-light`);
//! - **nginx proxy**: a second nginx, a plain reverse proxy in front of the first (keep-alive
//!   upstream pool, no buffering): the practical floor of a proxy hop;
//! - **hyper proxy**: the minimal Rust proxy on hyper (`floor`: body parsed and rewritten, token
//!   attached, stream relayed, nothing else), the floor of a hop on bitrouter's own stack;
//! - **raw proxy**: the same proxy with HTTP/1.1 written by hand on tokio's sockets (`raw`):
//!   what hyper itself costs;
//! - **bitrouter**: `bitrouter serve` (this build's release binary) in front of the first, with a
//!   stored `openai-codex` account, so every request takes the real path: Host check, body
//!   parsed and shaped, model resolved, credential attached, the stream peeked and relayed.
//!
//! The load generator is `wrk` (Debian `wrk`, a POST body from a small Lua script) at 1, 32 and
//! 256 connections. A cell is several rounds; each round loads every target in turn, starting
//! one target later than the round before, so no target is always measured first or right
//! after the same other one. Each cell prints, as medians over its rounds, requests per second,
//! the ratio to direct, p50 and p99 latency and what the hop adds to them (ratios and additions
//! taken within a round), and the CPU time the proxy process spent per request (user + system,
//! from `/proc`). Time to first event comes from this program's own client at
//! one connection; resident memory from `/proc` with the server idle and with 1,000 streams held
//! open by a second upstream (this program re-executed with `--hold-upstream`).
//!
//! Environment: `BITROUTER_BENCH_QUICK=1` (short cells, one round), `BITROUTER_BENCH_SECS=N`
//! (seconds per target and cell, 10), `BITROUTER_BENCH_ROUNDS=N` (rounds per cell, 5; each round
//! loads a target for `SECS / ROUNDS` seconds), `BITROUTER_BENCH_BASELINE=/path/to/bitrouter` (one
//! more row: another build, e.g. the previous release, measured in the same run),
//! `BITROUTER_BENCH_BIN=/path` (the binary under test instead of this build's),
//! `BITROUTER_BENCH_ONLY=direct|nginx|hyper|raw|bitrouter` with `BITROUTER_BENCH_CONNS=N` (one
//! target under load for `BITROUTER_BENCH_SECS`, printing its pid, for `perf`; with
//! `BITROUTER_BENCH_REQUESTS=N`, exactly N+20 sequential requests instead, for instruction counts
//! with `BITROUTER_BENCH_BIN` pointing at a script that runs bitrouter under `valgrind
//! --tool=callgrind`), `BITROUTER_BENCH_ACCOUNTS=N` (N stored accounts instead of one, so each
//! request's account is chosen by the picker), `BITROUTER_BENCH_BODY=/path` (the request body to
//! send instead of the canned one, or a recorded client fixture whose first request is sent to its
//! own path, e.g. Claude Code's Messages request, translated by bitrouter; the nginx proxy forwards
//! any `/v1/` path to the upstream). It measures; it asserts only that every answer was a 200.

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

/// The allocator `bitrouter serve` uses, for the hyper proxy this program becomes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod canned;
mod floor;
mod measure;
mod procs;
mod raw;

pub(crate) use canned::{EVENTS, request_body, request_path};

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use measure::{
    Load, first_event, ms, open_streams, percentile, rss_kib, signed_ms, wrk, wrk_script,
};
use procs::{
    bitrouter_cmd, hold_upstream_main, spawn_bitrouter, spawn_canned_upstream, spawn_floor_proxy,
    spawn_hold_upstream, spawn_nginx_proxy, world,
};

/// The connection counts of the load cells.
const CONNECTIONS: [usize; 3] = [1, 32, 256];

/// Where bitrouter's row is among the targets (direct, nginx proxy, hyper proxy, raw proxy,
/// bitrouter, then the baseline build if any).
const OURS: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--hold-upstream") {
        hold_upstream_main();
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--hyper-proxy") {
        floor::hyper_proxy_main(&args[at + 1]);
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--raw-proxy") {
        raw::raw_proxy_main(&args[at + 1]);
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
    /// Rounds per load cell (each target loaded `secs / rounds` seconds a round).
    rounds: usize,
    quick: bool,
    bin: PathBuf,
    baseline: Option<PathBuf>,
    only: Option<String>,
    only_conns: usize,
    /// With `only`: send exactly this many requests with this program's client instead of
    /// running wrk for a time (for instruction counts under valgrind).
    only_requests: Option<usize>,
    /// Stored `openai-codex` accounts in each bitrouter's home.
    accounts: usize,
}

impl Settings {
    /// Seconds each target is loaded in one round of a cell (whole seconds, for wrk).
    fn round_secs(&self) -> u64 {
        (self.secs / self.rounds as u64).max(1)
    }

    fn from_env() -> Settings {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let quick = var("BITROUTER_BENCH_QUICK").is_some();
        Settings {
            secs: var("BITROUTER_BENCH_SECS")
                .and_then(|s| s.parse().ok())
                .unwrap_or(if quick { 3 } else { 10 }),
            rounds: var("BITROUTER_BENCH_ROUNDS")
                .and_then(|s| s.parse().ok())
                .filter(|&r| r > 0)
                .unwrap_or(if quick { 1 } else { 5 }),
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
            accounts: var("BITROUTER_BENCH_ACCOUNTS")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1),
        }
    }
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
    let script = wrk_script(dir.path(), &[]);
    let (upstream_proc, upstream) = spawn_canned_upstream(dir.path()).await;
    let (proxy_proc, proxy) = spawn_nginx_proxy(dir.path(), upstream).await;
    let (hyper_proc, hyper) = spawn_floor_proxy("hyper", upstream);
    let (raw_proc, raw) = spawn_floor_proxy("raw", upstream);
    let home = world(upstream, settings.accounts);
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
            url: format!("http://{proxy}{}", request_path()),
            pid: proxy_proc.pid(),
        },
        Target {
            name: "hyper proxy".into(),
            url: format!("http://{hyper}{}", request_path()),
            pid: hyper_proc.pid(),
        },
        Target {
            name: "raw proxy".into(),
            url: format!("http://{raw}{}", request_path()),
            pid: raw_proc.pid(),
        },
        Target {
            name: "bitrouter".into(),
            url: format!("http://{addr}{}", request_path()),
            pid: bitrouter.pid(),
        },
    ];
    let baseline = match &settings.baseline {
        Some(bin) => {
            let home = world(upstream, settings.accounts);
            let (proc, addr, _) = spawn_bitrouter(bin, home.path()).await;
            targets.push(Target {
                name: "baseline bitrouter".into(),
                url: format!("http://{addr}{}", request_path()),
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
            "{}: {} requests, {:.0} req/s, p50 {} ms, p99 {} ms, {:.1} us CPU per request",
            target.name,
            load.requests,
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
        let cell = measure_cell(&targets, &script, conns, &settings);
        for (t, l) in targets.iter().zip(&cell) {
            let first = t.pid == targets[0].pid;
            let _ = writeln!(
                table,
                "{:<24} {:>5} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9.1}",
                t.name,
                conns,
                l.load.rps,
                if first {
                    "-".to_owned()
                } else {
                    format!("x{:.2}", l.ratio)
                },
                ms(l.load.p50_us),
                if first {
                    "-".to_owned()
                } else {
                    signed_ms(l.added_p50_us)
                },
                ms(l.load.p99_us),
                if first {
                    "-".to_owned()
                } else {
                    signed_ms(l.added_p99_us)
                },
                l.load.cpu_us
            );
        }
        let ours = cell[OURS];
        let ratio = ours.ratio;
        let (added50, added99) = (ours.added_p50_us / 1000.0, ours.added_p99_us / 1000.0);
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
    if let Some(base) = firsts.get(OURS + 1) {
        let added = (firsts[OURS].as_secs_f64() - base.as_secs_f64()) * 1000.0;
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
    let hold_home = world(holder, settings.accounts);
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
    drop(hyper_proc);
    drop(raw_proc);
    drop(upstream_proc);
}

/// One target's figures in one load cell: medians over the cell's rounds.
#[derive(Clone, Copy)]
struct CellRow {
    load: Load,
    /// Its throughput over direct's in the same round.
    ratio: f64,
    /// Its p50 and p99 minus direct's in the same round.
    added_p50_us: f64,
    added_p99_us: f64,
}

/// Loads every target at `conns` connections for `settings.rounds` rounds, each target once a
/// round, each round starting one target later (so none is always measured first, right after
/// another's load, or last), and gives each target's medians. A ratio or an added latency is
/// taken within a round, against direct's figures of that round, before the median.
fn measure_cell(
    targets: &[Target],
    script: &std::path::Path,
    conns: usize,
    settings: &Settings,
) -> Vec<CellRow> {
    let n = targets.len();
    let mut rounds: Vec<Vec<Load>> = Vec::with_capacity(settings.rounds);
    for round in 0..settings.rounds {
        let mut loads: Vec<Option<Load>> = vec![None; n];
        for i in (0..n).map(|k| (round + k) % n) {
            let t = &targets[i];
            loads[i] = Some(wrk(script, &t.url, conns, settings.round_secs(), t.pid));
        }
        rounds.push(loads.into_iter().map(Option::unwrap).collect());
    }
    let median = |f: &dyn Fn(&[Load]) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(|r| f(r)).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (0..n)
        .map(|i| CellRow {
            load: Load {
                requests: rounds.iter().map(|r| r[i].requests).sum(),
                rps: median(&|r| r[i].rps),
                p50_us: median(&|r| r[i].p50_us),
                p99_us: median(&|r| r[i].p99_us),
                cpu_us: median(&|r| r[i].cpu_us),
            },
            ratio: median(&|r| r[i].rps / r[0].rps),
            added_p50_us: median(&|r| r[i].p50_us - r[0].p50_us),
            added_p99_us: median(&|r| r[i].p99_us - r[0].p99_us),
        })
        .collect()
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
        "bitrouter proxy benchmark\n  machine: {cpu}, {cores} cores (load average at start: {})\n  load: {} (-t min(2, conns)), {} rounds of {} s per target and cell, POST {} streamed, {} B request\n  upstream: {}, a canned 5-event Responses stream ({} B)\n  bitrouter: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        tool("wrk", "-v")
            .split(" Copyright")
            .next()
            .unwrap_or_default(),
        settings.rounds,
        settings.round_secs(),
        request_path(),
        request_body().len(),
        tool("nginx", "-v"),
        EVENTS.concat().len(),
        settings.bin.display()
    )
}
