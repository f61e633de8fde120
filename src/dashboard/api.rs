//! The dashboard's data: one JSON document with the accounts (live quota and cooldowns from the
//! server), the history's state (on or off, records stored and dropped in this run, any
//! trouble), and for the chosen period the totals, requests and tokens per hour, breakdowns by
//! client and model, the latest requests and errors, and the quota snapshots. When the page
//! already has the newest request (`known` is the last request id), the history part is left
//! out and `unchanged` is true, so polling an idle server costs next to nothing.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::history::report::{self, By};
use crate::history::{QuotaWindow, Sink, db};

/// The query string of `GET /api/dashboard`.
#[derive(Debug, Default, Deserialize)]
pub struct DataQuery {
    /// `24h` (default), `7d` or `28d`.
    pub range: Option<String>,
    /// The newest request id the page has.
    pub known: Option<i64>,
}

/// The period the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The last 24 hours.
    Day,
    /// The last 7 days.
    Week,
    /// The last 28 days.
    Month,
}

impl Range {
    /// `24h` (also when absent), `7d` or `28d`.
    #[must_use]
    pub fn parse(text: Option<&str>) -> Option<Range> {
        match text {
            None | Some("24h") => Some(Range::Day),
            Some("7d") => Some(Range::Week),
            Some("28d") => Some(Range::Month),
            Some(_) => None,
        }
    }

    /// Its spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "28d",
        }
    }

    fn millis(self) -> i64 {
        let hours = match self {
            Range::Day => 24,
            Range::Week => 7 * 24,
            Range::Month => 28 * 24,
        };
        hours * HOUR_MS
    }
}

const HOUR_MS: i64 = 3_600_000;
/// Requests listed as "recent".
const RECENT: usize = 50;
/// Errors listed.
const ERRORS: usize = 20;

/// One stored account as the server sees it now. Never a credential.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountView {
    /// The provider.
    pub provider: String,
    /// The label.
    pub label: String,
    /// The plan, when known.
    pub plan: Option<String>,
    /// Cooling down after a usage limit until then (unix seconds), when it is.
    pub cooling_until: Option<i64>,
    /// The primary (5-hour) window.
    pub primary: Option<QuotaWindow>,
    /// The secondary (weekly) window.
    pub secondary: Option<QuotaWindow>,
    /// When the quota was read (unix seconds).
    pub quota_checked_at: Option<i64>,
    /// Where it was read: `headers` or `usage_endpoint`.
    pub quota_source: Option<String>,
}

/// The whole document for `range`, at `now_ms`.
#[must_use]
pub fn snapshot(
    history: &Sink,
    accounts: Vec<AccountView>,
    range: Range,
    known: Option<i64>,
    now_ms: i64,
) -> Value {
    let stats = history.stats();
    let since_ms = now_ms - range.millis();
    let mut doc = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "now_ms": now_ms,
        "range": range.as_str(),
        "since_ms": since_ms,
        "accounts": accounts,
        "history": {
            "enabled": history.is_enabled(),
            "written": stats.written(),
            "dropped": stats.dropped(),
            "trouble": stats.trouble(),
            "error": null,
            "last_id": null,
        },
        "unchanged": false,
    });
    let period = match stats.database() {
        Some(path) => match period(path, since_ms, known) {
            Ok(Some((last_id, part))) => {
                doc["history"]["last_id"] = json!(last_id);
                part
            }
            Ok(None) => {
                doc["unchanged"] = json!(true);
                doc["history"]["last_id"] = json!(known);
                return doc;
            }
            Err(message) => {
                doc["history"]["error"] = json!(message);
                empty_period()
            }
        },
        None => empty_period(),
    };
    if let (Value::Object(doc), Value::Object(period)) = (&mut doc, period) {
        doc.extend(period);
    }
    doc
}

fn empty_period() -> Value {
    json!({
        "totals": report::Totals::default(),
        "series": [],
        "by_client": [],
        "by_model": [],
        "recent": [],
        "errors": [],
        "quota_history": [],
    })
}

/// The history part for the period, with the newest request id; `None` when the newest id is
/// `known` (nothing new).
fn period(
    path: &Path,
    since_ms: i64,
    known: Option<i64>,
) -> Result<Option<(Option<i64>, Value)>, String> {
    let describe = |e: &dyn std::error::Error| match e.source() {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    };
    let conn = match db::open_for_reading(path) {
        Ok(Some(conn)) => conn,
        Ok(None) => return Ok(Some((None, empty_period()))),
        Err(e) => return Err(describe(&e)),
    };
    let read = || -> rusqlite::Result<Option<(Option<i64>, Value)>> {
        let last_id = report::last_id(&conn)?;
        if known.is_some() && known == last_id {
            return Ok(None);
        }
        let quota_history: Vec<Value> = report::quotas(&conn, since_ms)?
            .into_iter()
            .map(|q| {
                json!({
                    "at_ms": q.at_ms, "provider": q.provider, "account": q.account,
                    "primary_used_percent": q.primary.and_then(|w| w.used_percent),
                    "secondary_used_percent": q.secondary.and_then(|w| w.used_percent),
                })
            })
            .collect();
        Ok(Some((
            last_id,
            json!({
                "totals": report::totals(&conn, since_ms)?,
                "series": report::series(&conn, since_ms, HOUR_MS)?,
                "by_client": report::breakdown(&conn, since_ms, By::Client)?,
                "by_model": report::breakdown(&conn, since_ms, By::Model)?,
                "recent": report::recent(&conn, RECENT, false)?,
                "errors": report::recent(&conn, ERRORS, true)?,
                "quota_history": quota_history,
            }),
        )))
    };
    read().map_err(|e| format!("cannot read {}: {}", path.display(), describe(&e)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::{RequestRecord, WriterOptions, writer};

    #[test]
    fn ranges() {
        assert_eq!(Range::parse(None), Some(Range::Day));
        assert_eq!(Range::parse(Some("7d")), Some(Range::Week));
        assert_eq!(Range::parse(Some("28d")).map(Range::as_str), Some("28d"));
        assert_eq!(Range::parse(Some("1y")), None);
    }

    #[test]
    fn without_history_the_document_still_has_accounts() {
        let account = AccountView {
            provider: "openai-codex".into(),
            label: "work".into(),
            plan: Some("plus".into()),
            cooling_until: None,
            primary: None,
            secondary: None,
            quota_checked_at: None,
            quota_source: None,
        };
        let doc = snapshot(&Sink::disabled(), vec![account], Range::Day, None, 1_000);
        assert_eq!(doc["accounts"][0]["label"], "work");
        assert_eq!(doc["history"]["enabled"], false);
        assert_eq!(doc["totals"]["requests"], 0);
        assert_eq!(doc["recent"], json!([]));
    }

    #[test]
    fn known_newest_request_leaves_the_period_out() {
        let dir = tempfile::tempdir().unwrap();
        let (sink, w) = writer::start(WriterOptions {
            path: db::path_in(dir.path()),
            keep_days: 90,
            capacity: 16,
        })
        .unwrap();
        let now = crate::clock::unix_now_ms();
        sink.request(RequestRecord {
            at_ms: now,
            endpoint: "/v1/responses",
            status: 200,
            ..RequestRecord::default()
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.stats().written() < 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let doc = snapshot(&sink, Vec::new(), Range::Day, None, now + 1);
        assert_eq!(doc["totals"]["requests"], 1);
        assert_eq!(doc["recent"][0]["endpoint"], "/v1/responses");
        let last = doc["history"]["last_id"].as_i64();
        assert_eq!(last, Some(1));
        let doc = snapshot(&sink, Vec::new(), Range::Day, last, now + 2);
        assert_eq!(doc["unchanged"], true);
        assert!(doc.get("totals").is_none());
        assert!(w.stop(Duration::from_secs(10)));
    }
}
