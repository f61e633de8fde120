//! The requests real clients sent, kept under `tests/fixtures/clients/<client>/<scenario>.json`
//! so that a client upgrade that changes them shows as a diff. The end-to-end tests write them
//! when `BITROUTER_RECORD=1`; the replay tests read them. Secrets and machine-specific values
//! are replaced by placeholders (`$WORK`, `$HOME`, `$DATE`, …) and JSON keys are sorted.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::recorder::Sent;

/// The environment variable that re-records fixtures.
pub const RECORD_VAR: &str = "BITROUTER_RECORD";

/// Request headers worth keeping: they say what the client asked for, not who it is.
const KEPT_HEADERS: &[&str] = &[
    "anthropic-beta",
    "anthropic-version",
    "content-type",
    "user-agent",
    "x-app",
];

/// `tests/fixtures/clients/<client>`.
pub fn dir(client: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/clients")
        .join(client)
}

/// Every recorded request of a client: (scenario, request) pairs, scenarios in name order.
pub fn load(client: &str) -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(client))
        .unwrap_or_else(|e| panic!("no fixtures for {client}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|path| {
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let scenario = path.file_stem().unwrap().to_string_lossy().into_owned();
            doc["requests"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |r| (scenario.clone(), r))
        })
        .collect()
}

/// Writes the scenario's fixture when [`RECORD_VAR`] is set. `replace` maps machine-specific
/// strings (the test's directories) to placeholders, longest first.
pub fn record(
    client: &str,
    version: &str,
    scenario: &str,
    sent: &[Sent],
    replace: &[(String, &str)],
) {
    if std::env::var_os(RECORD_VAR).is_none() {
        return;
    }
    let requests: Vec<Value> = sent.iter().map(|s| sanitize(s, replace)).collect();
    let doc = json!({"client": client, "version": version, "requests": requests});
    let path = dir(client).join(format!("{scenario}.json"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&sorted(doc)).unwrap() + "\n",
    )
    .unwrap();
    eprintln!("recorded {}", path.display());
}

fn sanitize(sent: &Sent, replace: &[(String, &str)]) -> Value {
    let mut headers = Map::new();
    for name in KEPT_HEADERS {
        if let Some(value) = sent.headers.get(*name).and_then(|v| v.to_str().ok()) {
            headers.insert((*name).to_owned(), json!(value));
        }
    }
    let mut text = sent.body.to_string();
    let mut pairs: Vec<&(String, &str)> = replace.iter().collect();
    pairs.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    for (from, to) in pairs {
        text = text.replace(from.as_str(), to);
    }
    let mut body: Value = serde_json::from_str(&text).unwrap();
    scrub(&mut body);
    json!({"method": sent.method, "path": sent.path, "headers": headers, "body": body})
}

/// Replaces values that change from run to run: the metadata's device and session ids, the
/// date and the kernel version in the system prompt.
fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(user_id)) = map.get_mut("user_id")
                && let Ok(Value::Object(mut ids)) = serde_json::from_str::<Value>(user_id)
            {
                for key in ["device_id", "session_id", "account_uuid"] {
                    if ids.contains_key(key) {
                        ids.insert(key.to_owned(), json!(format!("${}", key.to_uppercase())));
                    }
                }
                *user_id = Value::Object(ids).to_string();
            }
            map.values_mut().for_each(scrub);
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::String(text) => *text = scrub_text(text),
        _ => {}
    }
}

/// `Today's date is 2026-12-04.` → `Today's date is $DATE.`; `OS Version: Linux 6.1…` →
/// `OS Version: $OS_VERSION`.
fn scrub_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let scrubbed = if let Some(at) = line.find("Today's date is ") {
            let start = at + "Today's date is ".len();
            let end = line[start..].find('.').map_or(line.len(), |e| start + e);
            format!("{}$DATE{}", &line[..start], &line[end..])
        } else if let Some(at) = line.find("OS Version: ") {
            format!("{}$OS_VERSION", &line[..at + "OS Version: ".len()])
        } else {
            line.to_owned()
        };
        out.push_str(&scrubbed);
    }
    out
}

/// The value with every object's keys sorted (stable diffs whatever the map order).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The placeholder pairs for a test world: its root, home and working directory.
pub fn placeholders(root: &Path, home: &Path, work: &Path) -> Vec<(String, &'static str)> {
    let mut pairs = vec![
        (work.display().to_string(), "$WORK"),
        (home.display().to_string(), "$HOME"),
        (root.display().to_string(), "$ROOT"),
    ];
    // Claude Code also names the directory as its per-project config key (`-` for `/`).
    pairs.push((work.display().to_string().replace('/', "-"), "$WORK_KEY"));
    pairs
}
