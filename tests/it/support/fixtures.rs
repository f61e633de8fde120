//! The requests real clients sent bitrouter, kept under
//! `tests/fixtures/clients/<client>/<scenario>.json` (the format is described in that
//! directory's README.md): per scenario the client, its version and the requests, credentials
//! and connection headers left out, machine-specific text (the test's directories, ports, ids,
//! dates) replaced by `$PLACEHOLDERS`, in a stable order.
//!
//! A real-client test hands what its [`super::recorder::Recorder`] saw to [`check`]. With
//! `BITROUTER_RECORD=1` that rewrites the scenario's file; otherwise it compares the requests'
//! *shape* (keys, value types, array lengths, and the strings that name things: `type`, `role`,
//! `model`, `name`) with the file's, so a client upgrade that changes what it sends fails the
//! test and asks for a re-record, while prompt wording and machine details do not. The files
//! are replayed through the translators by fast tests (`client_fixtures`).

use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::{Map, Value, json};

use super::TestContext;
use super::recorder::Sent;

/// The switch that rewrites fixtures instead of comparing with them.
pub const RECORD: &str = "BITROUTER_RECORD";

/// `tests/fixtures/clients`.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clients")
}

/// Request headers kept: they say what the client asked for, not who or where it is.
const KEPT_HEADERS: &[&str] = &[
    "accept",
    "anthropic-beta",
    "anthropic-version",
    "content-type",
    "openai-beta",
    "originator",
    "upgrade",
    "user-agent",
    "x-app",
    "x-stainless-helper-method",
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-runtime",
];

/// Object keys whose string values are part of a request's shape.
const NAMING_KEYS: &[&str] = &["type", "role", "model", "name"];

/// What to replace in every string of a recorded request.
pub struct Scrub {
    literals: Vec<(String, String)>,
    patterns: Vec<(Regex, String)>,
}

impl Scrub {
    /// The replacements every client needs: the test's directories (`$WORK`, `$HOME`,
    /// `$ROOT`, and `$WORK_KEY` for the working directory as clients name per-project state
    /// after it, e.g. `-tmp--tmpAbc-work`), the repository (`$REPO`), the kernel release
    /// (`$KERNEL`), UUIDs (`$UUID`), loopback ports (`$PORT`), and dates (`$DATE`, `$DATETIME`).
    pub fn new(ctx: &TestContext) -> Self {
        let mut scrub = Scrub {
            literals: Vec::new(),
            patterns: Vec::new(),
        };
        for root in [ctx.root().to_path_buf(), canonical(ctx.root())] {
            let work = root.join("work").display().to_string();
            scrub = scrub
                .literal(&work, "$WORK")
                .literal(&work.replace(['/', '.'], "-"), "$WORK_KEY")
                .literal(&work.replace('/', "-"), "$WORK_KEY")
                .literal(&root.join("home").display().to_string(), "$HOME")
                .literal(&root.display().to_string(), "$ROOT");
        }
        scrub = scrub.literal(env!("CARGO_MANIFEST_DIR"), "$REPO");
        if let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
            scrub = scrub.literal(release.trim(), "$KERNEL");
        }
        scrub
            .pattern(
                r"(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "$$UUID",
            )
            .pattern(r"\b(127\.0\.0\.1|localhost):\d+", "${1}:$$PORT")
            .pattern(
                r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
                "$$DATETIME",
            )
            .pattern(r"\b\d{4}-\d{2}-\d{2}\b", "$$DATE")
            .pattern(
                r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{1,2},? \d{4}\b",
                "$$DATE",
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

    /// Also replaces matches of the regular expression `pattern` with `to`, in `regex`
    /// replacement syntax (`${1}` is a group, `$$` a dollar sign). Patterns run after the
    /// literals, in the order added.
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

/// One recorded request as a fixture entry: method, path (with its query), kept headers, body.
pub fn entry(req: &Sent, scrub: &Scrub) -> Value {
    let mut headers = Map::new();
    for name in KEPT_HEADERS {
        if let Some(value) = req.headers.get(*name).and_then(|v| v.to_str().ok()) {
            headers.insert((*name).to_owned(), Value::String(scrub.text(value)));
        }
    }
    json!({"method": req.method, "path": scrub.text(&req.path), "headers": headers,
        "body": scrub.json(&req.body)})
}

/// The shape of a request: its structure and naming strings, with every other string
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

/// A client's POST requests, WebSocket handshakes and the messages on them as fixture entries,
/// in a stable order (by shape, then content), so concurrent requests do not reorder them
/// between recordings.
fn entries(requests: &[Sent], scrub: &Scrub) -> Vec<Value> {
    let mut entries: Vec<Value> = requests
        .iter()
        .filter(|r| {
            r.method == "POST"
                || r.method == "WEBSOCKET"
                || (r.method == "GET" && super::recorder_ws::is_upgrade(&r.headers))
        })
        .map(|r| entry(r, scrub))
        .collect();
    entries.sort_by_cached_key(|e| (shape(e).to_string(), e.to_string()));
    entries
}

/// `tests/fixtures/clients/<client>/<scenario>.json`.
fn file(client: &str, scenario: &str) -> PathBuf {
    root().join(client).join(format!("{scenario}.json"))
}

/// Every recorded request of `client`: (scenario, request) pairs, scenarios in name order.
pub fn load(client: &str) -> Vec<(String, Value)> {
    let dir = root().join(client);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no fixtures for {client} in {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|path| {
            let scenario = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            read(path)["requests"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |request| (scenario.clone(), request))
        })
        .collect()
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
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

/// Records the requests `client` (at `version`) sent in `scenario` (`BITROUTER_RECORD=1`), or
/// checks they have the shape of the recorded ones.
pub fn check(client: &str, version: &str, scenario: &str, requests: &[Sent], scrub: &Scrub) {
    let now = entries(requests, scrub);
    assert!(!now.is_empty(), "{client} sent no requests to record");
    let path = file(client, scenario);
    if std::env::var(RECORD).is_ok_and(|v| v == "1") {
        let doc = json!({"client": client, "version": version, "requests": now});
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        eprintln!("recorded {} requests in {}", now.len(), path.display());
        return;
    }
    let hint = format!(
        "{client}'s requests differ from {} (a client upgrade?): re-record with \
         `{RECORD}=1 cargo test --test it <this test> -- --include-ignored`, review the diff, \
         and make sure bitrouter serves what changed",
        path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(&path)
            .display()
    );
    assert!(path.exists(), "{hint}\nnothing is recorded yet");
    let recorded = read(&path);
    let then: Vec<Value> = recorded["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(shape)
        .collect();
    let now: Vec<Value> = now.iter().map(shape).collect();
    assert_eq!(
        now.len(),
        then.len(),
        "{hint}\n{} requests now, {} recorded",
        now.len(),
        then.len()
    );
    for (i, (a, b)) in now.iter().zip(&then).enumerate() {
        if let Some(diff) = first_difference(a, b, "") {
            panic!("{hint}\nrequest {} of {}: {diff}", i + 1, then.len());
        }
    }
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
