//! Reading the history back: totals and breakdowns (by day, model, account or client) with
//! error counts, cache-hit share and latency percentiles for `bitrouter usage` and the
//! dashboard; request counts and tokens over time; the latest requests and errors; and each
//! account's quota snapshots. Every query takes the connection and the start of the period, so
//! the same code serves the command and the server.
//!
//! Definitions: an error is an answer with a status of 400 or more, or one that failed midway
//! (an error code on a 200 stream). The cache-hit share is cached input tokens over all input
//! tokens. Latency percentiles are over answers that did not fail (an instant refusal says
//! nothing about speed), by nearest rank.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::record::{QuotaRecord, QuotaWindow};
use super::schema::SINCE_SQL;

/// How far back a report looks: `30m`, `24h`, `7d`, `2w`, or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since(Option<Duration>);

impl Since {
    /// A period of this length.
    #[must_use]
    pub fn last(period: Duration) -> Since {
        Since(Some(period))
    }

    /// The first millisecond inside the period ending at `now_ms`.
    #[must_use]
    pub fn start_ms(self, now_ms: i64) -> i64 {
        match self.0 {
            Some(d) => now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            None => i64::MIN,
        }
    }
}

impl Default for Since {
    fn default() -> Self {
        Since::last(Duration::from_secs(7 * 86_400))
    }
}

impl FromStr for Since {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Since(None));
        }
        let unit_at = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{s}` needs a unit: m, h, d or w (e.g. 7d), or `all`"))?;
        let (number, unit) = s.split_at(unit_at);
        let n: u64 = number
            .parse()
            .map_err(|_| format!("`{s}` is not a period such as 30m, 24h, 7d, 2w or `all`"))?;
        let seconds = match unit {
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => {
                return Err(format!(
                    "`{s}`: unknown unit `{unit}`; use m, h, d or w (e.g. 7d), or `all`"
                ));
            }
        };
        if n == 0 {
            return Err(format!("`{s}` is an empty period"));
        }
        n.checked_mul(seconds)
            .map(|secs| Since::last(Duration::from_secs(secs)))
            .ok_or_else(|| format!("`{s}` is too long"))
    }
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(d) = self.0 else {
            return f.write_str("all");
        };
        let s = d.as_secs();
        let (n, unit) = if s % 86_400 == 0 {
            (s / 86_400, "d")
        } else if s % 3_600 == 0 {
            (s / 3_600, "h")
        } else {
            (s / 60, "m")
        };
        write!(f, "{n}{unit}")
    }
}

/// What a breakdown groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The local calendar day the request arrived.
    Day,
    /// The upstream model (the model asked for when nothing served it).
    Model,
    /// `provider:account` that served it.
    Account,
    /// The client that sent it.
    Client,
}

impl By {
    /// The name used in output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            By::Day => "day",
            By::Model => "model",
            By::Account => "account",
            By::Client => "client",
        }
    }

    fn key_sql(self) -> &'static str {
        match self {
            By::Day => "strftime('%Y-%m-%d', at_ms / 1000, 'unixepoch', 'localtime')",
            By::Model => "coalesce(model, model_asked, '-')",
            By::Account => "coalesce(provider || ':' || account, provider, '-')",
            By::Client => "client",
        }
    }
}

/// Totals over a set of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Requests.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Input tokens (cached ones included).
    pub input_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Output tokens (reasoning included).
    pub output_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Cached over input tokens, in percent; `None` without input tokens.
    pub cache_hit_percent: Option<f64>,
    /// Median duration of answers that did not fail, milliseconds.
    pub p50_ms: Option<u64>,
    /// 95th percentile of those durations.
    pub p95_ms: Option<u64>,
    /// Median time to the first byte of those answers.
    pub ttfb_p50_ms: Option<u64>,
    /// 95th percentile of the time to the first byte.
    pub ttfb_p95_ms: Option<u64>,
}

/// One group of a breakdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The day, model, `provider:account` or client.
    pub key: String,
    /// Its totals.
    #[serde(flatten)]
    pub totals: Totals,
}

const ERROR_SQL: &str = "(status >= 400 OR error_code IS NOT NULL)";

/// The totals of every request since `since_ms`.
///
/// # Errors
///
/// SQLite's.
pub fn totals(conn: &Connection, since_ms: i64) -> rusqlite::Result<Totals> {
    Ok(grouped(conn, since_ms, "''")?
        .into_iter()
        .next()
        .map(|g| g.totals)
        .unwrap_or_default())
}

/// Totals per day, model, account or client since `since_ms`: days in order, the others by
/// requests (most first).
///
/// # Errors
///
/// SQLite's.
pub fn breakdown(conn: &Connection, since_ms: i64, by: By) -> rusqlite::Result<Vec<Group>> {
    let mut groups = grouped(conn, since_ms, by.key_sql())?;
    if by != By::Day {
        groups.sort_by(|a, b| {
            b.totals
                .requests
                .cmp(&a.totals.requests)
                .then_with(|| a.key.cmp(&b.key))
        });
    }
    Ok(groups)
}

fn grouped(conn: &Connection, since_ms: i64, key: &str) -> rusqlite::Result<Vec<Group>> {
    let sql = format!(
        "SELECT {key} AS k, count(*), sum({ERROR_SQL}), coalesce(sum(input_tokens), 0),
            coalesce(sum(cached_tokens), 0), coalesce(sum(output_tokens), 0),
            coalesce(sum(reasoning_tokens), 0)
         FROM requests WHERE {SINCE_SQL} GROUP BY k ORDER BY k"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut groups: Vec<Group> = stmt
        .query_map([since_ms], |row| {
            let input = count(row, 3)?;
            let cached = count(row, 4)?;
            Ok(Group {
                key: row.get::<_, Option<String>>(0)?.unwrap_or_default(),
                totals: Totals {
                    requests: count(row, 1)?,
                    errors: count(row, 2)?,
                    input_tokens: input,
                    cached_tokens: cached,
                    output_tokens: count(row, 5)?,
                    reasoning_tokens: count(row, 6)?,
                    cache_hit_percent: share(cached, input),
                    ..Totals::default()
                },
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // Latency: the durations of each group's answers that did not fail, in order.
    let sql = format!(
        "SELECT {key} AS k, duration_ms, ttfb_ms FROM requests
         WHERE {SINCE_SQL} AND NOT {ERROR_SQL} ORDER BY k"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([since_ms])?;
    let mut current: Option<String> = None;
    let (mut durations, mut ttfbs) = (Vec::new(), Vec::new());
    let mut finish = |key: Option<String>, durations: &mut Vec<u64>, ttfbs: &mut Vec<u64>| {
        if let Some(key) = key
            && let Some(group) = groups.iter_mut().find(|g| g.key == key)
        {
            durations.sort_unstable();
            ttfbs.sort_unstable();
            group.totals.p50_ms = percentile(durations, 50);
            group.totals.p95_ms = percentile(durations, 95);
            group.totals.ttfb_p50_ms = percentile(ttfbs, 50);
            group.totals.ttfb_p95_ms = percentile(ttfbs, 95);
        }
        durations.clear();
        ttfbs.clear();
    };
    while let Some(row) = rows.next()? {
        let key = row.get::<_, Option<String>>(0)?.unwrap_or_default();
        if current.as_deref() != Some(key.as_str()) {
            finish(current.take(), &mut durations, &mut ttfbs);
            current = Some(key);
        }
        durations.push(count(row, 1)?);
        if let Some(t) = row.get::<_, Option<i64>>(2)? {
            ttfbs.push(u64::try_from(t).unwrap_or(0));
        }
    }
    finish(current, &mut durations, &mut ttfbs);
    Ok(groups)
}

/// A non-negative count from a column (`NULL` is 0).
fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(row
        .get::<_, Option<i64>>(index)?
        .map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

/// `part` over `whole` in percent, rounded to one decimal.
#[must_use]
pub fn share(part: u64, whole: u64) -> Option<f64> {
    #[expect(
        clippy::cast_precision_loss,
        reason = "token counts far below 2^52; a percentage needs no more"
    )]
    let percent = (whole > 0).then(|| (part as f64 / whole as f64 * 1000.0).round() / 10.0);
    percent
}

/// The `p`th percentile of sorted values, by nearest rank.
#[must_use]
pub fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Requests and tokens in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    /// The bucket's start, unix milliseconds.
    pub t: i64,
    /// Requests.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// Requests and tokens per bucket of `bucket_ms` since `since_ms` (buckets without requests
/// are left out).
///
/// # Errors
///
/// SQLite's.
pub fn series(conn: &Connection, since_ms: i64, bucket_ms: i64) -> rusqlite::Result<Vec<Point>> {
    let sql = format!(
        "SELECT (at_ms / ?2) * ?2 AS t, count(*), sum({ERROR_SQL}),
            coalesce(sum(input_tokens), 0), coalesce(sum(cached_tokens), 0),
            coalesce(sum(output_tokens), 0)
         FROM requests WHERE {SINCE_SQL} GROUP BY t ORDER BY t"
    );
    let mut stmt = conn.prepare(&sql)?;
    stmt.query_map(params![since_ms, bucket_ms.max(1)], |row| {
        Ok(Point {
            t: row.get(0)?,
            requests: count(row, 1)?,
            errors: count(row, 2)?,
            input_tokens: count(row, 3)?,
            cached_tokens: count(row, 4)?,
            output_tokens: count(row, 5)?,
        })
    })?
    .collect()
}

/// One stored request, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRow {
    /// Row id (grows with every request).
    pub id: i64,
    /// When it arrived, unix milliseconds.
    pub at_ms: i64,
    /// The client.
    pub client: String,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The local route.
    pub endpoint: String,
    /// The model asked for.
    pub model_asked: Option<String>,
    /// The provider that served it.
    pub provider: Option<String>,
    /// The upstream model.
    pub model: Option<String>,
    /// The account.
    pub account: Option<String>,
    /// Upstream requests sent.
    pub tries: u32,
    /// Failovers.
    pub failovers: u32,
    /// HTTP status.
    pub status: u16,
    /// Error code.
    pub error_code: Option<String>,
    /// Error message.
    pub error_message: Option<String>,
    /// Time to first byte, ms.
    pub ttfb_ms: Option<u64>,
    /// Duration, ms.
    pub duration_ms: u64,
    /// Input tokens.
    pub input_tokens: Option<u64>,
    /// Cached input tokens.
    pub cached_tokens: Option<u64>,
    /// Output tokens.
    pub output_tokens: Option<u64>,
    /// Reasoning tokens.
    pub reasoning_tokens: Option<u64>,
    /// Whether it streamed.
    pub streamed: bool,
}

/// The latest `limit` requests (only failed ones with `errors_only`), newest first.
///
/// # Errors
///
/// SQLite's.
pub fn recent(
    conn: &Connection,
    limit: usize,
    errors_only: bool,
) -> rusqlite::Result<Vec<RequestRow>> {
    let filter = if errors_only { ERROR_SQL } else { "1" };
    let sql = format!(
        "SELECT id, at_ms, client, user_agent, endpoint, model_asked, provider, model, account,
            tries, failovers, status, error_code, error_message, ttfb_ms, duration_ms,
            input_tokens, cached_tokens, output_tokens, reasoning_tokens, streamed
         FROM requests WHERE {filter} ORDER BY id DESC LIMIT ?1"
    );
    let mut stmt = conn.prepare(&sql)?;
    let opt = |row: &Row<'_>, i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(row
            .get::<_, Option<i64>>(i)?
            .map(|v| u64::try_from(v).unwrap_or(0)))
    };
    stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
        Ok(RequestRow {
            id: row.get(0)?,
            at_ms: row.get(1)?,
            client: row.get(2)?,
            user_agent: row.get(3)?,
            endpoint: row.get(4)?,
            model_asked: row.get(5)?,
            provider: row.get(6)?,
            model: row.get(7)?,
            account: row.get(8)?,
            tries: row.get(9)?,
            failovers: row.get(10)?,
            status: row.get(11)?,
            error_code: row.get(12)?,
            error_message: row.get(13)?,
            ttfb_ms: opt(row, 14)?,
            duration_ms: count(row, 15)?,
            input_tokens: opt(row, 16)?,
            cached_tokens: opt(row, 17)?,
            output_tokens: opt(row, 18)?,
            reasoning_tokens: opt(row, 19)?,
            streamed: row.get(20)?,
        })
    })?
    .collect()
}

/// The id of the newest request, if any (the dashboard polls it to see what is new).
///
/// # Errors
///
/// SQLite's.
pub fn last_id(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT max(id) FROM request_rows", [], |row| row.get(0))
        .optional()
        .map(Option::flatten)
}

/// Quota snapshots since `since_ms`, oldest first.
///
/// # Errors
///
/// SQLite's.
pub fn quotas(conn: &Connection, since_ms: i64) -> rusqlite::Result<Vec<QuotaRecord>> {
    let mut stmt = conn.prepare(
        "SELECT at_ms, provider, account, source, plan, primary_used_percent,
            primary_window_minutes, primary_reset_at, secondary_used_percent,
            secondary_window_minutes, secondary_reset_at
         FROM quota_snapshots WHERE at_ms >= ?1 ORDER BY at_ms, id",
    )?;
    stmt.query_map([since_ms], |row| {
        let window = |at: usize| -> rusqlite::Result<Option<QuotaWindow>> {
            let w = QuotaWindow {
                used_percent: row.get(at)?,
                window_minutes: row.get(at + 1)?,
                reset_at: row.get(at + 2)?,
            };
            Ok((w != QuotaWindow::default()).then_some(w))
        };
        Ok(QuotaRecord {
            at_ms: row.get(0)?,
            provider: row.get(1)?,
            account: row.get(2)?,
            source: row.get(3)?,
            plan: row.get(4)?,
            primary: window(5)?,
            secondary: window(8)?,
        })
    })?
    .collect()
}

#[cfg(test)]
mod tests;
