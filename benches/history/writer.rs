//! `BITROUTER_BENCH_ONLY=writer`: the history writer thread alone, in this process. Batches of
//! request records go to a sink at the rate the full benchmark's load makes them, and the
//! writer thread's CPU time per stored row is read from its `schedstat` (the full benchmark
//! shows it only as a part of a loaded server's time, which varies far more).

use std::path::Path;
use std::time::{Duration, Instant};

use bitrouter::history::{RequestRecord, Tokens, writer};

/// Records per batch, and the time between batches: some 32,000 requests a second, which the
/// writer's linger gathers into batches of this size, as under the full benchmark's load.
const PER_BATCH: u64 = 3_500;
const EVERY: Duration = Duration::from_millis(110);

/// Stores `batches` batches in a new database under `dir` and prints the writer's CPU per row.
pub(crate) fn run(dir: &Path, batches: u64) {
    let (sink, writer) = writer::start(writer::WriterOptions {
        path: dir.join("history.sqlite3"),
        keep_days: 90,
        capacity: writer::CHANNEL_CAPACITY,
    })
    .unwrap();
    let start_ms = 1_780_000_000_000_i64;
    let record = RequestRecord {
        at_ms: start_ms,
        user_agent: Some("OpenAI/Python 3.60.0".into()),
        originator: None,
        endpoint: "/v1/responses",
        model_asked: Some("gpt-6.1-sol".into()),
        provider: Some("openai-codex".into()),
        model: Some("gpt-6.1-sol".into()),
        account: Some("work".into()),
        tries: 1,
        failovers: 0,
        status: 200,
        error_code: None,
        error_message: None,
        ttfb_ms: Some(0),
        duration_ms: 1,
        tokens: Tokens {
            input: Some(50),
            cached: Some(40),
            output: Some(5),
            reasoning: Some(2),
        },
        streamed: true,
    };
    let before = cpu_ns("history");
    let mut sent = 0_u64;
    for batch in 0..batches {
        let began = Instant::now();
        for i in 0..PER_BATCH {
            let mut r = record.clone();
            // Arrival times a batch's length apart, some 32 a millisecond within one.
            r.at_ms = start_ms + (batch * 110 + i / 32) as i64;
            sink.request(r);
            sent += 1;
        }
        std::thread::sleep(EVERY.saturating_sub(began.elapsed()));
    }
    while sink.stats().written() + sink.stats().dropped() < sent {
        std::thread::sleep(Duration::from_millis(10));
    }
    let cpu = cpu_ns("history") - before;
    println!(
        "history writer alone: {sent} rows in batches of {PER_BATCH} every {} ms, {} dropped, {:.3} us of the writer's CPU per row",
        EVERY.as_millis(),
        sink.stats().dropped(),
        cpu as f64 / 1000.0 / sent as f64
    );
    drop(sink);
    writer.stop(Duration::from_secs(10));
}

/// CPU nanoseconds so far of this process's threads named `name`.
fn cpu_ns(name: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(path.join("schedstat")).unwrap();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap();
        }
    }
    total
}
