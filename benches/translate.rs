//! `cargo bench --bench translate`: what translating a real client's request costs `serve`,
//! in process, step by step.
//!
//! Each recorded client fixture (`tests/fixtures/clients/*/*.json`) whose first request goes
//! to the Codex backend (Anthropic Messages and Chat Completions through a translator,
//! Responses as it is) is taken the way the request path takes it: taken in
//! (`proxy::intake::read`: the body checked to be JSON, its model and ids found, for Messages
//! and Chat Completions its JSON tree built), its conversation's key derived (`affinity::of`:
//! for a client that names no session, from the opening: instructions or system prompt, tools
//! and first user turn), translated (`proxy::translated::Translation`: for Messages also the
//! input token estimate for `message_start`) and written out, or for Responses shaped for the
//! backend (`shape_for_codex_raw`, in place and written as it goes, so its write is in the
//! `translate` column). The floor beside it is the JSON round trip alone (parse and write the
//! client's body unchanged), which any path that rewrites a body as a tree pays.
//!
//! Then the way back: a streamed answer of 500 text deltas, as the Codex backend sends them, read
//! in 4 KB chunks and translated to Anthropic Messages events and to Chat Completions chunks,
//! beside the floor of passing its events on unchanged (read, split into events, handed on).
//!
//! Times are medians of `BITROUTER_BENCH_ROUNDS` (15) rounds of `BITROUTER_BENCH_REQUESTS`
//! (300) requests (a tenth as many answers) each, in microseconds, with the allocator `serve`
//! uses.

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

use bitrouter::config::Config;
use bitrouter::proxy::translated::Translation;
use bitrouter::proxy::{Inbound, LogCell, intake};
use bitrouter::sse::SseReader;
use bitrouter::translate::Backend;
use bitrouter::translate::chat::ChatStream;
use bitrouter::translate::messages::MessagesStream;
use bitrouter::translate::names::ToolNameMap;
use bitrouter::translate::responses::{shape_for_codex, shape_for_codex_raw};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;
use tokio::runtime::Runtime;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One request's steps, in the order the request path runs them.
#[derive(Default, Clone, Copy)]
struct Steps {
    intake: Duration,
    affinity: Duration,
    translate: Duration,
    write: Duration,
}

impl Steps {
    fn total(&self) -> Duration {
        self.intake + self.affinity + self.translate + self.write
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn translate_once(rt: &Runtime, config: &Config, inbound: Inbound, raw: &Bytes) -> Steps {
    let a = Instant::now();
    let (parts, body) = http::Request::post(inbound.route())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(raw.clone()))
        .unwrap()
        .into_parts();
    let mut request = rt
        .block_on(intake::read(
            config,
            inbound,
            parts,
            body,
            &LogCell::disabled(),
        ))
        .unwrap();
    let key_at = Instant::now();
    let key = bitrouter::affinity::of(
        inbound.api(),
        &request.headers,
        &request.ids,
        request.body.raw(),
    );
    let b = Instant::now();
    if inbound == Inbound::Responses {
        // Shaped as the request path shapes it: in place, written as it goes, or as a tree
        // when the in-place shaping declines.
        let cache_key = key.as_ref().map(|k| k.key.as_str());
        let out = match shape_for_codex_raw(request.body.raw(), "gpt-6.1-sol", cache_key) {
            Some(shaped) => shaped.body,
            None => {
                let shaped = shape_for_codex(request.body.take_value().unwrap()).unwrap();
                serde_json::to_vec(&shaped.body).unwrap()
            }
        };
        let c = Instant::now();
        std::hint::black_box((out, key));
        return Steps {
            intake: key_at - a,
            affinity: b - key_at,
            translate: c - b,
            write: Duration::ZERO,
        };
    }
    std::hint::black_box(key);
    let json = request.body.take_value().unwrap();
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
        intake: key_at - a,
        affinity: b - key_at,
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

/// A streamed answer as the Codex backend sends it: `deltas` text deltas of a few words each
/// (with the backend's `obfuscation` padding), between its opening and closing events.
fn answer_stream(deltas: usize) -> String {
    let mut out = String::new();
    let mut event = |name: &str, data: String| {
        out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    event("response.created", r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","created_at":1764900000,"status":"in_progress","model":"gpt-6.1-sol","output":[]}}"#.to_owned());
    event("response.output_item.added", r#"{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}}"#.to_owned());
    event("response.content_part.added", r#"{"type":"response.content_part.added","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}"#.to_owned());
    for i in 0..deltas {
        event(
            "response.output_text.delta",
            format!(
                r#"{{"type":"response.output_text.delta","sequence_number":{},"item_id":"msg_1","output_index":0,"content_index":0,"delta":" some words {i}","logprobs":[],"obfuscation":"Xq3b9Lk"}}"#,
                i + 3
            ),
        );
    }
    event("response.output_item.done", r#"{"type":"response.output_item.done","sequence_number":9998,"output_index":0,"item":{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"...","annotations":[]}]}}"#.to_owned());
    event("response.completed", r#"{"type":"response.completed","sequence_number":9999,"response":{"id":"resp_1","status":"completed","output":[],"usage":{"input_tokens":12000,"input_tokens_details":{"cached_tokens":11000},"output_tokens":900,"output_tokens_details":{"reasoning_tokens":100},"total_tokens":12900}}}"#.to_owned());
    out
}

/// One streamed answer read as the request path reads it (in 4 KB chunks) and written back:
/// unchanged (`None`, a relay's floor), or through a client API's translator.
fn answer_once(stream: &str, translator: Option<Inbound>) -> Duration {
    let a = Instant::now();
    let mut reader = SseReader::new();
    let mut messages = MessagesStream::new(
        "claude-sonnet-4-5",
        ToolNameMap::default(),
        Vec::new(),
        false,
    );
    let mut chat = ChatStream::new("gpt-6.1-sol", true, ToolNameMap::default(), Vec::new());
    let mut out = 0;
    for chunk in stream.as_bytes().chunks(4096) {
        for block in reader.feed(chunk) {
            if translator.is_none() {
                out += block.raw().len();
                continue;
            }
            let Some(event) = block.event() else { continue };
            out += match translator {
                None => 0,
                Some(Inbound::Messages) => messages
                    .on_event(&event)
                    .iter()
                    .map(|e| e.to_wire().len())
                    .sum(),
                Some(_) => chat
                    .on_event(&event)
                    .iter()
                    .map(|p| bitrouter::sse::format_event(None, p).len())
                    .sum(),
            };
        }
    }
    std::hint::black_box(out);
    a.elapsed()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let config = Config::default();
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
        "{:<44} {:>7} {:>7} {:>8} {:>9} {:>7} {:>7} {:>10}",
        "fixture (first request)",
        "bytes",
        "intake",
        "affinity",
        "translate",
        "write",
        "total",
        "round trip"
    );
    for path in fixtures {
        let fixture: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let first = &fixture["requests"][0];
        let route = first["path"].as_str().unwrap_or("");
        let inbound = if route.starts_with("/v1/messages") && !route.contains("count_tokens") {
            Inbound::Messages
        } else if route.starts_with("/v1/chat/completions") {
            Inbound::ChatCompletions
        } else if route == "/v1/responses" && first["method"] == "POST" {
            Inbound::Responses
        } else {
            continue;
        };
        let raw = Bytes::from(serde_json::to_vec(&first["body"]).unwrap());
        let mut rows: [Vec<f64>; 6] = Default::default();
        for _ in 0..rounds {
            let mut sum = Steps::default();
            let mut trip = Duration::ZERO;
            for _ in 0..requests {
                let s = translate_once(&rt, &config, inbound, &raw);
                sum.intake += s.intake;
                sum.affinity += s.affinity;
                sum.translate += s.translate;
                sum.write += s.write;
                trip += round_trip_once(&raw);
            }
            let steps = [
                sum.intake,
                sum.affinity,
                sum.translate,
                sum.write,
                sum.total(),
                trip,
            ];
            for (row, d) in rows.iter_mut().zip(steps) {
                row.push(micros(d, requests));
            }
        }
        let [intake, affinity, translate, write, total, trip] = rows.map(median);
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        println!(
            "{name:<44} {:>7} {intake:>7.1} {affinity:>8.1} {translate:>9.1} {write:>7.1} {total:>7.1} {trip:>10.1}",
            raw.len()
        );
    }
    let deltas = 500;
    let stream = answer_stream(deltas);
    println!(
        "\nanswer: {deltas} text deltas, {} bytes; µs per answer (per event)",
        stream.len()
    );
    for (name, translator) in [
        ("relayed unchanged", None),
        ("to Messages", Some(Inbound::Messages)),
        ("to Chat Completions", Some(Inbound::ChatCompletions)),
    ] {
        let per_round: Vec<f64> = (0..rounds)
            .map(|_| {
                let n = (requests / 10).max(1);
                let total: Duration = (0..n).map(|_| answer_once(&stream, translator)).sum();
                micros(total, n)
            })
            .collect();
        let us = median(per_round);
        println!("{name:<24} {us:>9.1} ({:.2})", us / (deltas + 4) as f64);
    }
}
