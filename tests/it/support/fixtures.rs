//! The requests real clients sent bitrouter, kept under `tests/fixtures/clients/<client>/` (the
//! format is described in that directory's README.md): one JSON file per request, credentials
//! removed, machine-specific text (temp paths, ports, ids, dates, the OS) replaced by
//! placeholders, in a stable order.
//!
//! A real-client test hands what its [`super::recorder::Recorder`] saw to [`check`]. With
//! `BITROUTER_RECORD=1` that rewrites the client's fixtures; otherwise it compares the
//! requests' *shape* (keys, value types, array lengths, and the strings that name things:
//! `type`, `role`, `model`, `name`) with the fixtures', so a client upgrade that changes what it
//! sends fails the test and asks for a re-record, while prompt wording and machine details do
//! not. The fixtures themselves are replayed through the translators by fast tests.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::{Map, Value, json};

use super::TestContext;
use super::recorder::Inbound;

/// The switch that rewrites fixtures instead of comparing with them.
pub const RECORD: &str = "BITROUTER_RECORD";

/// `tests/fixtures/clients`.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clients")
}

/// Headers never kept: credentials and what belongs to one connection.
const DROPPED_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "x-bitrouter-key",
    "cookie",
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "accept-encoding",
];

/// Headers kept with their value replaced: they describe the machine, not the client.
const MACHINE_HEADERS: &[&str] = &[
    "x-stainless-os",
    "x-stainless-arch",
    "x-stainless-runtime-version",
];

/// Object keys whose string values are part of a request's shape.
const NAMING_KEYS: &[&str] = &["type", "role", "model", "name"];

/// What to replace in every string of a recorded request.
pub struct Scrub {
    literals: Vec<(String, String)>,
    patterns: Vec<(Regex, String)>,
}

impl Scrub {
    /// The replacements every client needs: the test's temp root, the repository, the kernel
    /// release, UUIDs, loopback ports, and dates.
    pub fn new(ctx: &TestContext) -> Self {
        let mut scrub = Scrub {
            literals: Vec::new(),
            patterns: Vec::new(),
        };
        for root in [ctx.root().to_path_buf(), canonical(ctx.root())] {
            let root = root.display().to_string();
            scrub = scrub.literal(&root, "<tmp>");
            // Clients that keep per-project state name it after the path, e.g. `-tmp--tmpAbc`.
            scrub = scrub.literal(&root.replace(['/', '.'], "-"), "<tmp-slug>");
        }
        scrub = scrub.literal(env!("CARGO_MANIFEST_DIR"), "<repo>");
        if let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
            scrub = scrub.literal(release.trim(), "<kernel>");
        }
        scrub
            .pattern(
                r"(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "<uuid>",
            )
            .pattern(r"\b(127\.0\.0\.1|localhost):\d+", "$1:<port>")
            .pattern(
                r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
                "<datetime>",
            )
            .pattern(r"\b\d{4}-\d{2}-\d{2}\b", "<date>")
            .pattern(
                r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{1,2},? \d{4}\b",
                "<date>",
            )
    }

    /// Also replaces `from` (exactly) with `to`. Longer literals are replaced first.
    pub fn literal(mut self, from: &str, to: &str) -> Self {
        if !from.is_empty() {
            self.literals.push((from.to_owned(), to.to_owned()));
            self.literals
                .sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        }
        self
    }

    /// Also replaces matches of the regular expression `pattern` with `to` (`$1` refers to a
    /// group). Patterns run after the literals, in the order added.
    pub fn pattern(mut self, pattern: &str, to: &str) -> Self {
        let re = Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern}: {e}"));
        self.patterns.push((re, to.to_owned()));
        self
    }

    /// `text` with every replacement made.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (from, to) in &self.literals {
            out = out.replace(from.as_str(), to);
        }
        for (re, to) in &self.patterns {
            out = re.replace_all(&out, to.as_str()).into_owned();
        }
        out
    }

    /// `value` with every string (and object key) scrubbed.
    pub fn json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.text(k), self.json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// One recorded request as a fixture document.
pub fn fixture(req: &Inbound, scrub: &Scrub) -> Value {
    let mut headers = Map::new();
    for (name, value) in &req.headers {
        let name = name.as_str();
        if DROPPED_HEADERS.contains(&name) {
            continue;
        }
        let value = if MACHINE_HEADERS.contains(&name) {
            "<machine>".to_owned()
        } else {
            scrub.text(value.to_str().unwrap_or("<binary>"))
        };
        headers.insert(name.to_owned(), Value::String(value));
    }
    let body = match serde_json::from_slice::<Value>(&req.body) {
        Ok(json) => scrub.json(&json),
        Err(_) if req.body.is_empty() => Value::Null,
        Err(_) => Value::String(scrub.text(&String::from_utf8_lossy(&req.body))),
    };
    json!({
        "method": req.method,
        "path": req.path,
        "query": req.query.as_deref().map(|q| scrub.text(q)),
        "headers": headers,
        "body": body,
    })
}

/// The shape of a fixture: its structure and naming strings, with every other string
/// replaced by `"<string>"`.
pub fn shape(value: &Value) -> Value {
    shape_under(value, None)
}

fn shape_under(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::String(s) if key.is_some_and(|k| NAMING_KEYS.contains(&k)) => {
            Value::String(s.clone())
        }
        Value::String(_) => Value::String("<string>".to_owned()),
        Value::Array(items) => Value::Array(items.iter().map(|v| shape_under(v, key)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shape_under(v, Some(k))))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A client's POST requests as fixtures, in a stable order (by shape, then content), so
/// concurrent requests do not reorder the files between recordings.
fn documents(requests: &[Inbound], scrub: &Scrub) -> Vec<Value> {
    let mut docs: Vec<Value> = requests
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| fixture(r, scrub))
        .collect();
    docs.sort_by_cached_key(|d| (shape(d).to_string(), d.to_string()));
    docs
}

/// The fixture files of `client`, in order, with their documents.
pub fn load(client: &str) -> Vec<(PathBuf, Value)> {
    let dir = root().join(client);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no fixtures for {client} in {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let doc = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            (path, doc)
        })
        .collect()
}

/// Every client directory under `tests/fixtures/clients/`.
pub fn clients() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Records `client`'s requests as its fixtures (`BITROUTER_RECORD=1`), or checks they have
/// the shape of the recorded ones.
pub fn check(client: &str, requests: &[Inbound], scrub: &Scrub) {
    let docs = documents(requests, scrub);
    assert!(!docs.is_empty(), "{client} sent no requests to record");
    if std::env::var(RECORD).is_ok_and(|v| v == "1") {
        write(client, &docs);
        return;
    }
    let recorded: Vec<Value> = load(client).into_iter().map(|(_, doc)| doc).collect();
    let hint = format!(
        "{client}'s requests differ from tests/fixtures/clients/{client}/ (a client upgrade?): \
         re-record with `{RECORD}=1 cargo test --test it <this test> -- --include-ignored`, \
         review the diff, and make sure bitrouter serves what changed"
    );
    let now: Vec<Value> = docs.iter().map(shape).collect();
    let then: Vec<Value> = recorded.iter().map(shape).collect();
    assert_eq!(
        now.len(),
        then.len(),
        "{hint}\n{} requests now, {} recorded",
        now.len(),
        then.len()
    );
    let total = then.len();
    for (i, (a, b)) in now.iter().zip(&then).enumerate() {
        if let Some(diff) = first_difference(a, b, "") {
            panic!("{hint}\nrequest {} of {total}: {diff}", i + 1);
        }
    }
}

/// Replaces `client`'s fixture files with `docs`.
fn write(client: &str, docs: &[Value]) {
    let dir = root().join(client);
    if dir.exists() {
        for (path, _) in load(client) {
            std::fs::remove_file(path).unwrap();
        }
    }
    std::fs::create_dir_all(&dir).unwrap();
    for (i, doc) in docs.iter().enumerate() {
        let slug = format!(
            "{}{}",
            doc["method"].as_str().unwrap_or("").to_lowercase(),
            doc["path"].as_str().unwrap_or("").replace('/', "-")
        );
        let path = dir.join(format!("{:02}-{slug}.json", i + 1));
        let mut text = serde_json::to_string_pretty(doc).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }
    eprintln!("recorded {} requests in {}", docs.len(), dir.display());
}

/// Where two shapes first differ, as `path: now … recorded …`.
fn first_difference(now: &Value, then: &Value, path: &str) -> Option<String> {
    match (now, then) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys()) {
                let here = format!("{path}/{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => {
                        if let Some(diff) = first_difference(x, y, &here) {
                            return Some(diff);
                        }
                    }
                    (Some(_), None) => return Some(format!("{here} is new")),
                    (None, _) => return Some(format!("{here} is gone")),
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}/{i}"))),
        _ if now == then => None,
        _ => Some(format!(
            "{path}: now {}, recorded {}",
            brief(now),
            brief(then)
        )),
    }
}

fn brief(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
