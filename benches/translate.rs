//! `cargo bench --bench translate`: what translating a real client's request costs `serve`,
//! in process, step by step.
//!
//! Each recorded client fixture (`tests/fixtures/clients/*/*.json`) whose first request goes
//! through a translator (Anthropic Messages or Chat Completions to the Codex backend's
//! Responses) is taken the way the request path takes it: parsed into a JSON tree, translated
//! (`proxy::translated::Translation`: for Messages also the input token estimate for
//! `message_start`), and written out. The floor
//! beside it is the JSON round trip alone (parse and write the client's body unchanged), which
//! any path that rewrites a body as a tree pays. Times are medians of `BITROUTER_BENCH_ROUNDS`
//! (15) rounds of `BITROUTER_BENCH_REQUESTS` (300) requests each, in microseconds per request,
//! with the allocator `serve` uses.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    missing_docs,
    reason = "a benchmark program: failures should stop it loudly"
)]

use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, Instant};

use bitrouter::proxy::Inbound;
use bitrouter::proxy::translated::Translation;
use bitrouter::translate::Backend;
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One request's steps, in the order the request path runs them.
#[derive(Default, Clone, Copy)]
struct Steps {
    parse: Duration,
    translate: Duration,
    write: Duration,
}

impl Steps {
    fn total(&self) -> Duration {
        self.parse + self.translate + self.write
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn translate_once(inbound: Inbound, raw: &[u8]) -> Steps {
    let a = Instant::now();
    let json: Value = serde_json::from_slice(raw).unwrap();
    let b = Instant::now();
    let mut translation = Translation::new(inbound, Cow::Owned(json), Backend::Codex)
        .unwrap()
        .unwrap();
    let body = translation.take_body("gpt-6.1-sol");
    let c = Instant::now();
    let mut out = Vec::with_capacity(raw.len() + 1024);
    serde_json::to_writer(&mut out, &body).unwrap();
    let d = Instant::now();
    std::hint::black_box((out, translation));
    Steps {
        parse: b - a,
        translate: c - b,
        write: d - c,
    }
}

fn round_trip_once(raw: &[u8]) -> Duration {
    let a = Instant::now();
    let json: Value = serde_json::from_slice(raw).unwrap();
    let mut out = Vec::with_capacity(raw.len() + 1024);
    serde_json::to_writer(&mut out, &json).unwrap();
    std::hint::black_box(out);
    a.elapsed()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn micros(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let rounds = env_number("BITROUTER_BENCH_ROUNDS", 15);
    let requests = env_number("BITROUTER_BENCH_REQUESTS", 300);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clients");
    let mut fixtures: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|client| client.is_dir())
        .flat_map(|client| std::fs::read_dir(client).unwrap())
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    fixtures.sort();
    println!(
        "{:<44} {:>7} {:>7} {:>9} {:>7} {:>7} {:>10}",
        "fixture (first request)", "bytes", "parse", "translate", "write", "total", "round trip"
    );
    for path in fixtures {
        let fixture: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let first = &fixture["requests"][0];
        let route = first["path"].as_str().unwrap_or("");
        let inbound = if route.starts_with("/v1/messages") && !route.contains("count_tokens") {
            Inbound::Messages
        } else if route.starts_with("/v1/chat/completions") {
            Inbound::ChatCompletions
        } else {
            continue;
        };
        let raw = serde_json::to_vec(&first["body"]).unwrap();
        let mut rows: [Vec<f64>; 5] = Default::default();
        for _ in 0..rounds {
            let mut sum = Steps::default();
            let mut trip = Duration::ZERO;
            for _ in 0..requests {
                let s = translate_once(inbound, &raw);
                sum.parse += s.parse;
                sum.translate += s.translate;
                sum.write += s.write;
                trip += round_trip_once(&raw);
            }
            for (row, d) in
                rows.iter_mut()
                    .zip([sum.parse, sum.translate, sum.write, sum.total(), trip])
            {
                row.push(micros(d, requests));
            }
        }
        let [parse, translate, write, total, trip] = rows.map(median);
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        println!(
            "{name:<44} {:>7} {parse:>7.1} {translate:>9.1} {write:>7.1} {total:>7.1} {trip:>10.1}",
            raw.len()
        );
    }
}
