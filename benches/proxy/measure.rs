//! What a run reads: wrk's figures, CPU time and resident memory from `/proc`, time to first
//! event from this program's own client, and memory with streams held open.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::procs::{Side, command, require};
use crate::{request_body, request_path};

/// CPU time (user + system) of a process and its children (nginx workers), in seconds.
pub(crate) fn cpu_secs(pid: u32) -> f64 {
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

pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One wrk run's summary.
#[derive(Clone, Copy)]
pub(crate) struct Load {
    /// Requests answered.
    #[allow(
        dead_code,
        reason = "read by the history benchmark, which shares this file"
    )]
    pub(crate) requests: u64,
    pub(crate) rps: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    /// CPU microseconds per request of the measured proxy (or upstream, for direct).
    pub(crate) cpu_us: f64,
}

/// The Lua script that makes wrk POST the request (with these headers too) and print its
/// figures in microseconds.
pub(crate) fn wrk_script(dir: &Path, headers: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("post.lua");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("wrk.headers[\"{name}\"] = \"{value}\"\n"))
        .collect();
    let body = request_body();
    assert!(
        !body.contains("]==]"),
        "the request body cannot be quoted for Lua"
    );
    let script = format!(
        "wrk.method = \"POST\"\nwrk.body = [==[{body}]==]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n{extra}\
         done = function(summary, latency, requests)\n  local e = summary.errors\n  \
         io.write(string.format(\"BENCH %d %d %d %d %d\\n\", summary.requests, summary.duration, \
         latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))\nend\n"
    );
    std::fs::write(&path, script).unwrap();
    path
}

/// Runs wrk against `url` for `secs` with `conns` connections; `cpu_pid` is the process whose
/// CPU time per request is reported.
pub(crate) fn wrk(script: &Path, url: &str, conns: usize, secs: u64, cpu_pid: u32) -> Load {
    let threads = conns.min(2);
    let before = cpu_secs(cpu_pid);
    let out = command(require("wrk", "wrk"), Side::Load)
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
        requests: requests as u64,
        rps: requests / (duration_us / 1e6),
        p50_us: p50,
        p99_us: p99,
        cpu_us: cpu * 1e6 / requests.max(1.0),
    }
}

/// Time to first body byte and to the end of the stream for `n` sequential requests.
pub(crate) async fn first_event(url: &str, n: usize) -> (Vec<Duration>, Vec<Duration>) {
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
            .body(request_body())
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
        // The end of a Responses stream, or of one translated to Messages or Chat Completions.
        let ends = [&b"response.completed"[..], b"message_stop", b"[DONE]"];
        assert!(
            ends.iter()
                .any(|end| seen.windows(end.len()).any(|w| w == *end)),
            "{url}: the stream ended without its last event"
        );
        // The first 20 warm connections and caches.
        if i >= 20 {
            first.push(first_at.unwrap_or_default());
            total.push(start.elapsed());
        }
    }
    (first, total)
}

pub(crate) fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx.min(samples.len() - 1)]
}

pub(crate) fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

pub(crate) fn signed_ms(us: f64) -> String {
    format!("{:+.3}", us / 1000.0)
}

/// Opens `n` streams through `addr` that the holding upstream keeps open, reads the RSS of
/// `pid`, then releases them.
pub(crate) async fn open_streams(
    addr: SocketAddr,
    upstream: SocketAddr,
    n: usize,
    pid: u32,
) -> u64 {
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
                .post(format!("http://{addr}{}", request_path()))
                .header("content-type", "application/json")
                .body(request_body())
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
