//! `cargo bench --bench run`: what `bitrouter run` costs before the client starts.
//!
//! - **overhead**: `bitrouter run -- true` with a server already running (config, the lock
//!   check, one `/health` probe, exec), against `true` started directly;
//! - **cold start**: `bitrouter run -- true` with no server, so it starts one in the background
//!   and waits for its first `/health` answer; the server is stopped between runs.
//!
//! It uses the bench-profile binary in a private temporary home, on a port the kernel picks
//! (`listen: 127.0.0.1:0`). It measures; it asserts nothing.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "a benchmark program: failures should stop it loudly"
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let quick = std::env::var_os("BITROUTER_BENCH_QUICK").is_some();
    let (warm_runs, cold_runs) = if quick { (20, 5) } else { (100, 20) };
    let home = tempfile::tempdir().unwrap();
    let root = home.path();
    for dir in ["home", "config/bitrouter", "data", "state"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    // Passthrough needs no stored sign-in, so `run` starts a server without one.
    std::fs::write(
        root.join("config/bitrouter/bitrouter.yaml"),
        "server:\n  listen: 127.0.0.1:0\nproviders:\n  openai-codex:\n    auth_mode: passthrough\n",
    )
    .unwrap();

    let direct = time_runs(warm_runs, || {
        let ok = Command::new("true").status().unwrap().success();
        assert!(ok);
    });

    let mut cold = Vec::with_capacity(cold_runs);
    for _ in 0..cold_runs {
        let started = Instant::now();
        run_true(root);
        cold.push(started.elapsed());
        stop(root);
    }

    run_true(root); // a server for the warm runs
    let warm = time_runs(warm_runs, || run_true(root));
    stop(root);

    println!(
        "bitrouter run, {} (release profile)",
        env!("CARGO_PKG_VERSION")
    );
    println!("{:<52} {:>9} {:>9} {:>9}", "", "p50", "p95", "max");
    row("`true` started directly", &direct);
    row("`bitrouter run -- true`, server running", &warm);
    row("`bitrouter run -- true`, server started on demand", &cold);
    println!(
        "run's own overhead (p50, running server): {:.1} ms (target < 20 ms)",
        ms(percentile(&warm, 50)) - ms(percentile(&direct, 50))
    );
    println!(
        "cold start to first /health and exec (p50): {:.1} ms (target < 300 ms)",
        ms(percentile(&cold, 50))
    );
}

fn bitrouter(root: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bitrouter"));
    cmd.env_clear()
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("config"))
        .env("XDG_DATA_HOME", root.join("data"))
        .env("XDG_STATE_HOME", root.join("state"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn run_true(root: &Path) {
    let ok = bitrouter(root)
        .args(["run", "--", "true"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "bitrouter run -- true failed");
}

fn stop(root: &Path) {
    let ok = bitrouter(root).arg("stop").status().unwrap().success();
    assert!(ok, "bitrouter stop failed");
}

fn time_runs(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect()
}

fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let i = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(name: &str, samples: &[Duration]) {
    println!(
        "{name:<52} {:>7.1}ms {:>7.1}ms {:>7.1}ms",
        ms(percentile(samples, 50)),
        ms(percentile(samples, 95)),
        ms(percentile(samples, 100))
    );
}
