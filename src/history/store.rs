//! The SQL that stores history records: what the writer has collected ([`Pending`]) inserted in
//! one transaction in the order the requests arrived, each request as a row of numbers pointing at its agent and target (looked
//! up once per distinct value and remembered, [`Ids`]); quota snapshots stored at once for
//! commands without a writer thread; and old rows deleted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::client;
use super::db::{self, HistoryError};
use super::lanes::Lanes;
use super::packed::{self, View};
#[cfg(test)]
use super::record::RequestRecord;
#[cfg(test)]
use super::record::Tokens;
use super::record::{QuotaRecord, QuotaWindow};
use super::schema;
use crate::clock::unix_now;

/// Distinct agents and targets whose ids are remembered (past that, the memory starts over).
const KNOWN_IDS: usize = 1024;

/// Records waiting to be stored: buffers of encoded requests ([`packed`]) and quota snapshots.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// Each buffer with the number of requests in it.
    pub(super) requests: Vec<(Vec<u8>, usize)>,
    pub(super) quotas: Vec<QuotaRecord>,
}

impl Pending {
    /// The records waiting.
    pub(super) fn len(&self) -> usize {
        self.requests.iter().map(|(_, n)| n).sum::<usize>() + self.quotas.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.quotas.is_empty()
    }

    /// Empties it, keeping the request buffers in `spares` for reuse.
    pub(super) fn clear(&mut self, spares: &mut Vec<Vec<u8>>) {
        for (bytes, _) in self.requests.drain(..) {
            Lanes::recycle(spares, bytes);
        }
        self.quotas.clear();
    }
}

/// The start of an `INSERT` of request rows, whose `VALUES` follow ([`insert_sql`]).
const INSERT_REQUEST_HEAD: &str = "INSERT INTO request_rows (at_ms, agent, target, tries, failovers, status, error_code, error_message, ttfb_ms, duration_ms, input_tokens, cached_tokens, output_tokens, reasoning_tokens, streamed) VALUES ";

const INSERT_QUOTA: &str = "INSERT INTO quota_snapshots (at_ms, provider, account, source, plan, primary_used_percent, primary_window_minutes, primary_reset_at, secondary_used_percent, secondary_window_minutes, secondary_reset_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// The ids of agents and targets already in the database, by their text (encoded as the
/// lookup key). They belong to one database file: forget them when it changes or when a
/// transaction that may have made some was rolled back.
#[derive(Debug, Default)]
pub(super) struct Ids {
    agents: HashMap<Vec<u8>, i64>,
    targets: HashMap<Vec<u8>, i64>,
    /// The key being looked up (reused, so a known value costs no allocation).
    key: Vec<u8>,
}

impl Ids {
    /// Forgets every id.
    pub(super) fn forget(&mut self) {
        self.agents.clear();
        self.targets.clear();
    }

    fn agent(&mut self, tx: &Transaction<'_>, v: &View<'_>) -> rusqlite::Result<i64> {
        key(&mut self.key, &[v.user_agent, v.originator]);
        if let Some(id) = self.agents.get(self.key.as_slice()) {
            return Ok(*id);
        }
        let client = client::detect(v.user_agent, v.originator);
        let found = tx
            .prepare_cached(
                "SELECT id FROM agents WHERE user_agent IS ?1 AND originator IS ?2 AND client = ?3",
            )?
            .query_row(params![v.user_agent, v.originator, client], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached(
                    "INSERT INTO agents (client, user_agent, originator) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![client, v.user_agent, v.originator])?;
                tx.last_insert_rowid()
            }
        };
        remember(&mut self.agents, &self.key, id);
        Ok(id)
    }

    fn target(&mut self, tx: &Transaction<'_>, v: &View<'_>) -> rusqlite::Result<i64> {
        let fields = [
            Some(v.endpoint),
            v.model_asked,
            v.provider,
            v.model,
            v.account,
        ];
        key(&mut self.key, &fields);
        if let Some(id) = self.targets.get(self.key.as_slice()) {
            return Ok(*id);
        }
        let found = tx
            .prepare_cached(
                "SELECT id FROM targets WHERE endpoint = ?1 AND model_asked IS ?2 AND provider IS ?3 AND model IS ?4 AND account IS ?5",
            )?
            .query_row(params![v.endpoint, v.model_asked, v.provider, v.model, v.account], |r| {
                r.get(0)
            })
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached(
                    "INSERT INTO targets (endpoint, model_asked, provider, model, account) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![v.endpoint, v.model_asked, v.provider, v.model, v.account])?;
                tx.last_insert_rowid()
            }
        };
        remember(&mut self.targets, &self.key, id);
        Ok(id)
    }
}

/// `fields` as an unambiguous lookup key: each a presence byte, its length and its bytes.
fn key(out: &mut Vec<u8>, fields: &[Option<&str>]) {
    out.clear();
    for field in fields {
        match field {
            Some(text) => {
                out.push(1);
                out.extend_from_slice(&text.len().to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            None => out.push(0),
        }
    }
}

fn remember(ids: &mut HashMap<Vec<u8>, i64>, key: &[u8], id: i64) {
    if ids.len() >= KNOWN_IDS {
        ids.clear();
    }
    ids.insert(key.to_vec(), id);
}

/// Stores what is pending in one transaction; returns how many rows were written. On an error
/// nothing was stored, and `ids` has forgotten what the transaction may have made.
pub(super) fn write(
    conn: &mut Connection,
    pending: &Pending,
    ids: &mut Ids,
) -> rusqlite::Result<usize> {
    let written = write_all(conn, pending, ids);
    if written.is_err() {
        ids.forget();
    }
    written
}

fn write_all(conn: &mut Connection, pending: &Pending, ids: &mut Ids) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut n = 0;
    {
        // Rows are stored in the order the requests arrived (lanes hold them in the order
        // they ended).
        let mut views: Vec<View<'_>> = pending
            .requests
            .iter()
            .flat_map(|(bytes, _)| packed::decode(bytes))
            .collect();
        views.sort_by_key(|v| v.at_ms);
        let mut rows = Vec::with_capacity(views.len());
        let mut last: Option<&Row<'_>> = None;
        for v in &views {
            // Requests in a row mostly come from one client for one model: reuse the ids.
            let agent = match last {
                Some(p) if same_agent(p.view, v) => p.agent,
                _ => ids.agent(&tx, v)?,
            };
            let target = match last {
                Some(p) if same_target(p.view, v) => p.target,
                _ => ids.target(&tx, v)?,
            };
            rows.push(Row {
                view: v,
                agent,
                target,
            });
            last = rows.last();
        }
        let before: i64 = tx.query_row("SELECT ifnull(max(id), 0) FROM request_rows", [], |r| {
            r.get(0)
        })?;
        n += insert_requests(&tx, &rows)?;
        note_minutes(&tx, &rows, before)?;
        let mut quotas = tx.prepare_cached(INSERT_QUOTA)?;
        for q in &pending.quotas {
            insert_quota(&mut quotas, q)?;
            n += 1;
        }
    }
    tx.commit()?;
    Ok(n)
}

/// A request row about to be stored: the request, and its agent's and target's ids.
struct Row<'a> {
    view: &'a View<'a>,
    agent: i64,
    target: i64,
}

/// Notes in `request_minutes` the minute each of `rows` (just stored above id `before`)
/// arrived in, with the smallest id stored for it (a minute noted before keeps its smaller
/// id). SQLite gives new rows the ids after the largest; should it not have (the largest id
/// possible was reached), every minute gets `before + 1`, which is still at or below its
/// rows' ids. (Choosing the ids here instead costs SQLite a search per row.)
fn note_minutes(tx: &Transaction<'_>, rows: &[Row<'_>], before: i64) -> rusqlite::Result<()> {
    let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let consecutive = tx.last_insert_rowid() == before.saturating_add(n);
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO request_minutes (minute, first_id) VALUES (?1, ?2)",
    )?;
    let mut last = None;
    for (row, id) in rows.iter().zip(before + 1..) {
        let minute = schema::minute_of(row.view.at_ms);
        if last != Some(minute) {
            let first_id = if consecutive { id } else { before + 1 };
            stmt.execute(params![minute, first_id])?;
            last = Some(minute);
        }
    }
    Ok(())
}

fn same_agent(a: &View<'_>, b: &View<'_>) -> bool {
    (a.user_agent, a.originator) == (b.user_agent, b.originator)
}

fn same_target(a: &View<'_>, b: &View<'_>) -> bool {
    (a.endpoint, a.model_asked, a.provider, a.model, a.account)
        == (b.endpoint, b.model_asked, b.provider, b.model, b.account)
}

/// Stores requests in one transaction (tests seed databases with it).
#[cfg(test)]
pub(super) fn store_requests(
    conn: &mut Connection,
    records: Vec<RequestRecord>,
) -> rusqlite::Result<usize> {
    let mut bytes = Vec::new();
    for r in &records {
        packed::encode(r, &mut bytes);
    }
    let pending = Pending {
        requests: vec![(bytes, records.len())],
        quotas: Vec::new(),
    };
    write(conn, &pending, &mut Ids::default())
}

/// Rows stored by one multi-row `INSERT` (SQLite then runs one statement for all of them,
/// which costs less per row than a statement each).
const ROWS_PER_INSERT: usize = 32;

/// The `INSERT` of one request row, or of [`ROWS_PER_INSERT`] when `many`.
fn insert_sql(many: bool) -> &'static str {
    static ONE: OnceLock<String> = OnceLock::new();
    static MANY: OnceLock<String> = OnceLock::new();
    let (cell, rows) = if many {
        (&MANY, ROWS_PER_INSERT)
    } else {
        (&ONE, 1)
    };
    cell.get_or_init(|| {
        let row = format!("({})", vec!["?"; COLUMNS].join(", "));
        format!("{INSERT_REQUEST_HEAD}{}", vec![row; rows].join(", "))
    })
}

/// Inserts `rows`; returns how many.
fn insert_requests(tx: &Transaction<'_>, rows: &[Row<'_>]) -> rusqlite::Result<usize> {
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut many = tx.prepare_cached(insert_sql(true))?;
        for chunk in &mut chunks {
            for (i, row) in chunk.iter().enumerate() {
                bind_request(&mut many, i * COLUMNS, row)?;
            }
            many.raw_execute()?;
        }
    }
    let mut one = tx.prepare_cached(insert_sql(false))?;
    for row in chunks.remainder() {
        bind_request(&mut one, 0, row)?;
        one.raw_execute()?;
    }
    Ok(rows.len())
}

/// The columns of a request row ([`INSERT_REQUEST_HEAD`]).
const COLUMNS: usize = 15;

/// Binds one request's columns to parameters `offset + 1 ..= offset + COLUMNS`.
fn bind_request(
    stmt: &mut rusqlite::CachedStatement<'_>,
    offset: usize,
    row: &Row<'_>,
) -> rusqlite::Result<()> {
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let v = row.view;
    let values: [&dyn rusqlite::ToSql; COLUMNS] = [
        &v.at_ms,
        &row.agent,
        &row.target,
        &v.tries,
        &v.failovers,
        &v.status,
        &v.error_code,
        &v.error_message,
        &v.ttfb_ms.map(int),
        &int(v.duration_ms),
        &v.tokens.input.map(int),
        &v.tokens.cached.map(int),
        &v.tokens.output.map(int),
        &v.tokens.reasoning.map(int),
        &v.streamed,
    ];
    for (i, value) in values.into_iter().enumerate() {
        stmt.raw_bind_parameter(offset + i + 1, value)?;
    }
    Ok(())
}

fn insert_quota(stmt: &mut rusqlite::CachedStatement<'_>, q: &QuotaRecord) -> rusqlite::Result<()> {
    let w = |w: Option<QuotaWindow>| w.unwrap_or_default();
    let (p, s) = (w(q.primary), w(q.secondary));
    stmt.execute(params![
        q.at_ms,
        q.provider,
        q.account,
        q.source,
        q.plan,
        p.used_percent,
        p.window_minutes,
        p.reset_at,
        s.used_percent,
        s.window_minutes,
        s.reset_at,
    ])?;
    Ok(())
}

/// Stores quota snapshots at once, in one transaction (for `status --refresh`, which has no
/// writer thread).
///
/// # Errors
///
/// When the database cannot be opened or written.
pub fn store_quotas(path: &Path, records: &[QuotaRecord]) -> Result<(), HistoryError> {
    let mut opened = db::open_for_writing(path, unix_now())?;
    if let Some(aside) = &opened.moved_aside {
        tracing::warn!(
            "history: {} was damaged; moved it to {} and started a new one",
            path.display(),
            aside.display()
        );
    }
    let pending = Pending {
        requests: Vec::new(),
        quotas: records.to_vec(),
    };
    write(&mut opened.conn, &pending, &mut Ids::default()).map_err(|source| {
        HistoryError::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(())
}

/// Deletes rows older than `keep_days` before `now_ms`, and the agents and targets no row
/// points at any more (`ids` forgets them). Returns how many rows went.
pub(super) fn prune(
    conn: &Connection,
    keep_days: u32,
    now_ms: i64,
    ids: &mut Ids,
) -> rusqlite::Result<usize> {
    let cutoff = now_ms - i64::from(keep_days) * 86_400_000;
    // The rows below the first id of the minutes from the cutoff's on all arrived before it
    // (one that arrived earlier but ended later goes at a later pruning).
    let requests = conn.execute(
        "DELETE FROM request_rows WHERE id < (SELECT ifnull(min(first_id), 9223372036854775807)
            FROM request_minutes WHERE minute >= ?1 / 60000) AND at_ms < ?1",
        [cutoff],
    )?;
    conn.execute(
        "DELETE FROM request_minutes WHERE minute < ?1 / 60000",
        [cutoff],
    )?;
    let quotas = conn.execute("DELETE FROM quota_snapshots WHERE at_ms < ?1", [cutoff])?;
    if requests > 0 {
        ids.forget();
        conn.execute_batch(
            "DELETE FROM agents WHERE id NOT IN (SELECT agent FROM request_rows);
             DELETE FROM targets WHERE id NOT IN (SELECT target FROM request_rows);",
        )?;
    }
    Ok(requests + quotas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// A new database in a temporary directory (kept while the directory is).
    fn fresh() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open_for_writing(&db::path_in(dir.path()), 1)
            .unwrap()
            .conn;
        (dir, conn)
    }

    fn request(at_ms: i64, agent: &str, model: &str) -> RequestRecord {
        RequestRecord {
            at_ms,
            user_agent: Some(agent.into()),
            endpoint: "/v1/responses",
            model_asked: Some(model.into()),
            provider: Some("openai-codex".into()),
            model: Some(model.into()),
            account: Some("work".into()),
            status: 200,
            ..RequestRecord::default()
        }
    }

    #[test]
    fn repeated_text_is_stored_once_and_read_back_flat() {
        let dir = tempfile::tempdir().unwrap();
        let path = db::path_in(dir.path());
        let mut conn = db::open_for_writing(&path, 1).unwrap().conn;
        let records = vec![
            request(1, "curl/8.5.0", "gpt-6.1-sol"),
            request(2, "curl/8.5.0", "gpt-6.1-sol"),
            request(3, "OpenAI/Python 3.60.0", "gpt-6.1-sol"),
            request(4, "curl/8.5.0", "gpt-5"),
        ];
        assert_eq!(store_requests(&mut conn, records).unwrap(), 4);
        assert_eq!((count(&conn, "agents"), count(&conn, "targets")), (2, 2));
        // Another writer (a restart) finds the rows already there.
        drop(conn);
        let mut conn = db::open_for_writing(&path, 1).unwrap().conn;
        store_requests(&mut conn, vec![request(5, "curl/8.5.0", "gpt-5")]).unwrap();
        assert_eq!((count(&conn, "agents"), count(&conn, "targets")), (2, 2));
        let rows: Vec<(i64, String, Option<String>, Option<String>)> = conn
            .prepare("SELECT at_ms, client, user_agent, model FROM requests ORDER BY at_ms")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let row = |at: i64, client: &str, agent: &str, model: &str| {
            (
                at,
                client.to_owned(),
                Some(agent.to_owned()),
                Some(model.to_owned()),
            )
        };
        assert_eq!(
            rows,
            vec![
                row(1, "curl", "curl/8.5.0", "gpt-6.1-sol"),
                row(2, "curl", "curl/8.5.0", "gpt-6.1-sol"),
                row(3, "openai-python", "OpenAI/Python 3.60.0", "gpt-6.1-sol"),
                row(4, "curl", "curl/8.5.0", "gpt-5"),
                row(5, "curl", "curl/8.5.0", "gpt-5"),
            ]
        );
    }

    #[test]
    fn a_batch_of_many_requests_is_stored_row_for_row() {
        let (_dir, mut conn) = fresh();
        // Two full multi-row inserts and a remainder; agents and models change in runs.
        let n = 2 * ROWS_PER_INSERT + 5;
        let records: Vec<RequestRecord> = (0..n)
            .map(|i| {
                let agent = if i / 3 % 2 == 0 {
                    "curl/8.5.0"
                } else {
                    "aider/0.86"
                };
                let model = if i / 7 % 2 == 0 {
                    "gpt-6.1-sol"
                } else {
                    "gpt-5"
                };
                let i = u64::try_from(i).unwrap();
                RequestRecord {
                    tries: u32::try_from(i % 3).unwrap(),
                    error_code: (i % 5 == 0).then(|| format!("code-{i}")),
                    ttfb_ms: (i % 2 == 0).then_some(i),
                    duration_ms: 10 * i,
                    tokens: Tokens {
                        input: Some(100 + i),
                        cached: (i % 4 == 0).then_some(i),
                        output: Some(i),
                        reasoning: None,
                    },
                    streamed: i % 2 == 1,
                    ..request(i64::try_from(i).unwrap(), agent, model)
                }
            })
            .collect();
        assert_eq!(store_requests(&mut conn, records.clone()).unwrap(), n);
        let mut stmt = conn
            .prepare(
                "SELECT at_ms, user_agent, model, tries, error_code, ttfb_ms, duration_ms, \
                 input_tokens, cached_tokens, output_tokens, reasoning_tokens, streamed \
                 FROM requests ORDER BY id",
            )
            .unwrap();
        let stored: Vec<RequestRecord> = stmt
            .query_map([], |r| {
                let model: Option<String> = r.get(2)?;
                let n = |i: usize| -> rusqlite::Result<Option<u64>> {
                    Ok(r.get::<_, Option<i64>>(i)?
                        .map(|v| u64::try_from(v).unwrap()))
                };
                Ok(RequestRecord {
                    tries: r.get(3)?,
                    error_code: r.get(4)?,
                    ttfb_ms: n(5)?,
                    duration_ms: n(6)?.unwrap(),
                    tokens: Tokens {
                        input: n(7)?,
                        cached: n(8)?,
                        output: n(9)?,
                        reasoning: n(10)?,
                    },
                    streamed: r.get(11)?,
                    ..request(
                        r.get(0)?,
                        &r.get::<_, String>(1)?,
                        model.as_deref().unwrap_or_default(),
                    )
                })
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(stored, records);
        assert_eq!((count(&conn, "agents"), count(&conn, "targets")), (2, 2));
    }

    #[test]
    fn lanes_are_stored_in_the_order_requests_arrived() {
        let (_dir, mut conn) = fresh();
        let lane = |times: &[i64]| {
            let mut bytes = Vec::new();
            for t in times {
                packed::encode(&request(*t, "curl/8.5.0", "m"), &mut bytes);
            }
            (bytes, times.len())
        };
        let pending = Pending {
            requests: vec![lane(&[1, 4, 5]), lane(&[2, 3, 6])],
            quotas: Vec::new(),
        };
        write(&mut conn, &pending, &mut Ids::default()).unwrap();
        let times: Vec<i64> = conn
            .prepare("SELECT at_ms FROM requests ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(times, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn pruning_removes_old_rows_and_the_text_only_they_used() {
        let (_dir, mut conn) = fresh();
        let day = 86_400_000;
        let now = 100 * day;
        let mut ids = Ids::default();
        let records = [
            request(now - 91 * day, "old-agent/1", "old-model"),
            request(now - 89 * day, "curl/8.5.0", "gpt-6.1-sol"),
            request(now, "curl/8.5.0", "gpt-6.1-sol"),
        ];
        let mut bytes = Vec::new();
        for r in &records {
            packed::encode(r, &mut bytes);
        }
        let pending = Pending {
            requests: vec![(bytes, records.len())],
            quotas: Vec::new(),
        };
        write(&mut conn, &pending, &mut ids).unwrap();
        assert_eq!(prune(&conn, 90, now, &mut ids).unwrap(), 1);
        assert_eq!(count(&conn, "requests"), 2);
        assert_eq!((count(&conn, "agents"), count(&conn, "targets")), (1, 1));
        // The ids were forgotten with the rows: an old agent comes back as a new row.
        write(&mut conn, &pending, &mut ids).unwrap();
        assert_eq!(count(&conn, "requests"), 5);
        assert_eq!((count(&conn, "agents"), count(&conn, "targets")), (2, 2));
    }

    /// Counts the requests at or after `since` both ways: through `request_minutes` and by
    /// reading every row.
    fn since_both_ways(conn: &Connection, since: i64) -> (i64, i64) {
        let by_minutes = conn
            .query_row(
                &format!("SELECT count(*) FROM requests WHERE {}", schema::SINCE_SQL),
                [since],
                |r| r.get(0),
            )
            .unwrap();
        let by_scan = conn
            .query_row(
                "SELECT count(*) FROM requests WHERE at_ms >= ?1",
                [since],
                |r| r.get(0),
            )
            .unwrap();
        (by_minutes, by_scan)
    }

    #[test]
    fn requests_are_found_by_time_when_they_end_out_of_order() {
        let (_dir, mut conn) = fresh();
        let minute = 60_000;
        let mut ids = Ids::default();
        // Batches as the writer gets them: requests that ended together, some of which
        // arrived long before (a stream of several minutes) or in a minute already stored.
        let batches: [&[i64]; 5] = [
            &[10 * minute + 5, 10 * minute + 7, 11 * minute],
            &[12 * minute + 1, 3 * minute, 11 * minute + 30],
            &[],
            &[12 * minute + 2, 12 * minute + 2, 20 * minute - 1],
            &[10 * minute, 25 * minute, 2 * minute],
        ];
        for times in batches {
            let mut bytes = Vec::new();
            for t in times {
                packed::encode(&request(*t, "curl/8.5.0", "m"), &mut bytes);
            }
            let pending = Pending {
                requests: vec![(bytes, times.len())],
                quotas: Vec::new(),
            };
            write(&mut conn, &pending, &mut ids).unwrap();
        }
        let all: Vec<i64> = batches.iter().flat_map(|b| b.iter().copied()).collect();
        for since in all
            .iter()
            .flat_map(|t| [t - 1, *t, t + 1])
            .chain([0, 30 * minute])
        {
            let (by_minutes, by_scan) = since_both_ways(&conn, since);
            assert_eq!(by_minutes, by_scan, "since {since}");
        }
        // Pruning keeps every row at or after the cutoff.
        let keep_days = 1;
        let now = 11 * minute + 86_400_000;
        prune(&conn, keep_days, now, &mut ids).unwrap();
        let left = count(&conn, "requests");
        let after_cutoff = all.iter().filter(|t| **t >= 11 * minute).count();
        assert!(left >= i64::try_from(after_cutoff).unwrap());
        let (by_minutes, by_scan) = since_both_ways(&conn, 0);
        assert_eq!((by_minutes, by_scan), (left, left));
    }

    #[test]
    fn a_first_schema_database_is_migrated_to_find_requests_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = db::path_in(dir.path());
        let conn = Connection::open(&path).unwrap();
        // The first schema, with rows stored out of time order.
        conn.execute_batch(schema::first_schema_for_tests())
            .unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO agents VALUES (1, 'curl', 'curl/8.5.0', NULL);
             INSERT INTO targets VALUES (1, '/v1/responses', 'm', NULL, NULL, NULL);
             INSERT INTO request_rows (id, at_ms, agent, target, tries, failovers, status,
                 duration_ms, streamed)
             VALUES (1, 120000, 1, 1, 1, 0, 200, 1, 0), (2, 60000, 1, 1, 1, 0, 200, 1, 0),
                 (3, 190000, 1, 1, 1, 0, 200, 1, 0), (4, 130000, 1, 1, 1, 0, 200, 1, 0);",
        )
        .unwrap();
        drop(conn);
        let conn = db::open_for_writing(&path, 1).unwrap().conn;
        assert_eq!(schema::version(&conn).unwrap(), schema::current_version());
        for since in [
            0, 60_000, 60_001, 119_999, 120_000, 130_000, 130_001, 190_000, 190_001,
        ] {
            let (by_minutes, by_scan) = since_both_ways(&conn, since);
            assert_eq!(by_minutes, by_scan, "since {since}");
        }
    }
}
