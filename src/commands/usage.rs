//! `bitrouter usage [--since 7d] [--by day|model|account|client] [--json|--csv]`: the request
//! history's totals — requests, errors, input/cached/output/reasoning tokens, cache-hit share and
//! p50/p95 latency — for a period, optionally broken down. It reads the database directly (also
//! while `serve` writes to it) and never creates or changes it; no history yet is an empty
//! report, not an error.

use std::fmt::Write as _;

use anyhow::Context as _;
use serde_json::json;

use super::Context;
use crate::cli::{UsageArgs, UsageBy};
use crate::clock::unix_now_ms;
use crate::error::Failure;
use crate::history::report::{self, By, Group, Totals};
use crate::history::{self, HistoryError};
use crate::paths;

/// Runs the command.
pub fn run(ctx: &Context, args: &UsageArgs) -> anyhow::Result<()> {
    let config = ctx.load_config()?;
    let data_dir = paths::data_dir(&ctx.env).ok_or_else(|| {
        Failure::new(
            "cannot find the data directory",
            "set XDG_DATA_HOME or HOME",
        )
    })?;
    let path = history::path_in(&data_dir);
    let conn = history::db::open_for_reading(&path).map_err(|e| unreadable(&e))?;
    let now = unix_now_ms();
    let since_ms = args.since.start_ms(now);
    let by = args.by.map(by);
    let (totals, rows) = match &conn {
        Some(conn) => {
            let totals = report::totals(conn, since_ms)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let rows = match by {
                Some(by) => report::breakdown(conn, since_ms, by)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => Vec::new(),
            };
            (totals, rows)
        }
        None => (Totals::default(), Vec::new()),
    };
    if conn.is_none() || totals.requests == 0 {
        let why = if !config.history.enabled {
            " (history is off: `history: off` in bitrouter.yaml)"
        } else if conn.is_none() {
            "; `bitrouter serve` records each request it serves"
        } else {
            ""
        };
        ctx.printer.info(format!(
            "No requests recorded in the last {}{why}.",
            args.since
        ));
    }
    if args.json {
        ctx.printer.json(&json!({
            "since": args.since.to_string(),
            "from_ms": (since_ms > i64::MIN).then_some(since_ms),
            "to_ms": now,
            "database": path.display().to_string(),
            "by": by.map(By::as_str),
            "totals": totals,
            "rows": rows,
        }))?;
    } else if args.csv {
        ctx.printer
            .data(&csv(by, &args.since.to_string(), &totals, &rows))?;
    } else if totals.requests > 0 {
        ctx.printer
            .data(&table(by, &args.since.to_string(), &totals, &rows))?;
    }
    Ok(())
}

fn by(by: UsageBy) -> By {
    match by {
        UsageBy::Day => By::Day,
        UsageBy::Model => By::Model,
        UsageBy::Account => By::Account,
        UsageBy::Client => By::Client,
    }
}

/// A history database that cannot be read, with what to do about it.
fn unreadable(e: &HistoryError) -> anyhow::Error {
    let hint = match e {
        HistoryError::Corrupt { .. } => {
            "the next `bitrouter serve` moves the damaged file aside and starts a new one"
        }
        HistoryError::Newer { .. } => "update bitrouter to read this history",
        HistoryError::Create { .. }
        | HistoryError::Sqlite { .. }
        | HistoryError::MoveAside { .. } => "check the file's permissions and the disk",
    };
    let cause = std::error::Error::source(e)
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    Failure::new(format!("{e}{cause}"), hint).into()
}

/// The columns after the key, for the table and the CSV.
fn columns(t: &Totals) -> [String; 11] {
    let n = |v: u64| v.to_string();
    let opt = |v: Option<u64>| v.map(n).unwrap_or_default();
    [
        n(t.requests),
        n(t.errors),
        n(t.input_tokens),
        n(t.cached_tokens),
        n(t.output_tokens),
        n(t.reasoning_tokens),
        t.cache_hit_percent
            .map(|p| format!("{p:.1}"))
            .unwrap_or_default(),
        opt(t.p50_ms),
        opt(t.p95_ms),
        opt(t.ttfb_p50_ms),
        opt(t.ttfb_p95_ms),
    ]
}

const CSV_HEADER: &str = "requests,errors,input_tokens,cached_tokens,output_tokens,reasoning_tokens,cache_hit_percent,p50_ms,p95_ms,ttfb_p50_ms,ttfb_p95_ms";

/// One CSV document: a row per group with `--by`, else one row for the period.
fn csv(by: Option<By>, since: &str, totals: &Totals, rows: &[Group]) -> String {
    let mut out = String::new();
    let key = by.map_or("period", By::as_str);
    let _ = writeln!(out, "{key},{CSV_HEADER}");
    let mut line = |key: &str, t: &Totals| {
        let _ = writeln!(out, "{},{}", csv_field(key), columns(t).join(","));
    };
    if by.is_some() {
        for g in rows {
            line(&g.key, &g.totals);
        }
    } else {
        line(since, totals);
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The human table: a row per group and a total, or the period's totals alone.
fn table(by: Option<By>, since: &str, totals: &Totals, rows: &[Group]) -> String {
    let key = by.map_or_else(|| "PERIOD".to_owned(), |b| b.as_str().to_uppercase());
    let header = [
        key.as_str(),
        "REQUESTS",
        "ERRORS",
        "INPUT",
        "CACHED",
        "OUTPUT",
        "REASONING",
        "CACHE HIT",
        "P50",
        "P95",
    ];
    let row = |key: &str, t: &Totals| -> Vec<String> {
        vec![
            key.to_owned(),
            t.requests.to_string(),
            t.errors.to_string(),
            t.input_tokens.to_string(),
            t.cached_tokens.to_string(),
            t.output_tokens.to_string(),
            t.reasoning_tokens.to_string(),
            t.cache_hit_percent
                .map_or_else(|| "-".to_owned(), |p| format!("{p:.1}%")),
            latency(t.p50_ms),
            latency(t.p95_ms),
        ]
    };
    let mut body: Vec<Vec<String>> = rows.iter().map(|g| row(&g.key, &g.totals)).collect();
    if by.is_some() {
        body.push(row("total", totals));
    } else {
        body.push(row(&format!("last {since}"), totals));
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &body {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = vec![line(&header)];
    for r in &body {
        out.push(line(&r.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out.join("\n")
}

/// `850ms`, `1.2s`, or `-`.
fn latency(ms: Option<u64>) -> String {
    match ms {
        None => "-".to_owned(),
        Some(ms) if ms < 1000 => format!("{ms}ms"),
        Some(ms) => format!("{}.{}s", ms / 1000, ms % 1000 / 100),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(requests: u64) -> Totals {
        Totals {
            requests,
            errors: 1,
            input_tokens: 100,
            cached_tokens: 25,
            output_tokens: 10,
            reasoning_tokens: 2,
            cache_hit_percent: Some(25.0),
            p50_ms: Some(850),
            p95_ms: Some(1_234),
            ttfb_p50_ms: Some(40),
            ttfb_p95_ms: None,
        }
    }

    #[test]
    fn csv_has_a_row_per_group_and_quotes_keys() {
        let rows = vec![
            Group {
                key: "gpt,odd \"name\"".into(),
                totals: totals(2),
            },
            Group {
                key: "m2".into(),
                totals: totals(1),
            },
        ];
        assert_eq!(
            csv(Some(By::Model), "7d", &totals(3), &rows),
            format!(
                "model,{CSV_HEADER}\n\"gpt,odd \"\"name\"\"\",2,1,100,25,10,2,25.0,850,1234,40,\nm2,1,1,100,25,10,2,25.0,850,1234,40,\n"
            )
        );
        assert_eq!(
            csv(None, "24h", &totals(3), &[]),
            format!("period,{CSV_HEADER}\n24h,3,1,100,25,10,2,25.0,850,1234,40,\n")
        );
    }

    #[test]
    fn table_ends_with_the_total() {
        let rows = vec![Group {
            key: "curl".into(),
            totals: totals(3),
        }];
        let text = table(Some(By::Client), "7d", &totals(3), &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("CLIENT  REQUESTS"), "{text}");
        assert!(lines[1].starts_with("curl"), "{text}");
        assert!(lines[2].starts_with("total"), "{text}");
        assert!(lines[2].ends_with("25.0%  850ms  1.2s"), "{text}");
    }

    #[test]
    fn latency_reads_well() {
        assert_eq!(latency(None), "-");
        assert_eq!(latency(Some(12)), "12ms");
        assert_eq!(latency(Some(1_234)), "1.2s");
    }
}
