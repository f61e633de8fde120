//! The SQL that stores history records: what the writer has collected ([`Pending`]) inserted in
//! one transaction in the order the requests arrived, each request as a row of numbers pointing at its agent and target (looked
//! up once per distinct value and remembered, [`Ids`]); quota snapshots stored at once for
//! commands without a writer thread; and old rows deleted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use rusqlite::{Connection, OptionalExtension, params};

use super::client;
use super::db::{self, HistoryError};
use super::lanes::Lanes;
use super::packed::{self, Text, View};
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
        self.request_count() + self.quotas.len()
    }

    /// The requests waiting.
    fn request_count(&self) -> usize {
        self.requests.iter().map(|(_, n)| n).sum()
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

/// The start of an `INSERT` of request rows, whose `VALUES` follow ([`insert_sql`]). `OR FAIL`:
/// a failing statement keeps the rows it stored before it, so SQLite keeps no statement journal
/// to undo them (2.8 % of the writer's instructions per row); a failure rolls the whole batch's
/// transaction back anyway ([`write_all`]).
const INSERT_REQUEST_HEAD: &str = "INSERT OR FAIL INTO request_rows (at_ms, agent, target, tries, failovers, status, error_code, error_message, ttfb_ms, duration_ms, input_tokens, cached_tokens, output_tokens, reasoning_tokens, streamed) VALUES ";

const INSERT_QUOTA: &str = "INSERT INTO quota_snapshots (at_ms, provider, account, source, plan, primary_used_percent, primary_window_minutes, primary_reset_at, secondary_used_percent, secondary_window_minutes, secondary_reset_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// The ids of agents and targets already in the database, by their text (encoded as the
/// lookup key). They belong to one database file: forget them when it changes or when a
/// transaction that may have made some was rolled back. Another connection's commit (another
/// bitrouter's writer, which may have pruned some) also makes them forgotten, at the next
/// write ([`Ids::follow`]): the writer stores rows without foreign-key checks, so a stale id
/// would store a row the `requests` view cannot join.
#[derive(Debug, Default)]
pub(super) struct Ids {
    agents: HashMap<Vec<u8>, i64>,
    targets: HashMap<Vec<u8>, i64>,
    /// The key being looked up (reused, so a known value costs no allocation).
    key: Vec<u8>,
    /// SQLite's `data_version` when the ids were last known good: it changes when another
    /// connection commits.
    data_version: Option<i64>,
}

impl Ids {
    /// Forgets every id.
    pub(super) fn forget(&mut self) {
        self.agents.clear();
        self.targets.clear();
        self.data_version = None;
    }

    /// Forgets the ids when another connection has committed since they were last known good
    /// (call inside the write transaction, so none can commit before it ends).
    fn follow(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.data_version != Some(version) {
            self.forget();
            self.data_version = Some(version);
        }
        Ok(())
    }

    fn agent(&mut self, conn: &Connection, v: &View<'_>) -> rusqlite::Result<i64> {
        key(&mut self.key, &[v.user_agent, v.originator]);
        if let Some(id) = self.agents.get(self.key.as_slice()) {
            return Ok(*id);
        }
        let (user_agent, originator) = (
            v.user_agent.map(Text::to_str),
            v.originator.map(Text::to_str),
        );
        let client = client::detect(user_agent.as_deref(), originator.as_deref());
        let found = conn
            .prepare_cached(
                "SELECT id FROM agents WHERE user_agent IS ?1 AND originator IS ?2 AND client = ?3",
            )?
            .query_row(params![v.user_agent, v.originator, client], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                conn.prepare_cached(
                    "INSERT INTO agents (client, user_agent, originator) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![client, v.user_agent, v.originator])?;
                conn.last_insert_rowid()
            }
        };
        remember(&mut self.agents, &self.key, id);
        Ok(id)
    }

    fn target(&mut self, conn: &Connection, v: &View<'_>) -> rusqlite::Result<i64> {
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
        let found = conn
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
                conn.prepare_cached(
                    "INSERT INTO targets (endpoint, model_asked, provider, model, account) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![v.endpoint, v.model_asked, v.provider, v.model, v.account])?;
                conn.last_insert_rowid()
            }
        };
        remember(&mut self.targets, &self.key, id);
        Ok(id)
    }
}

/// `fields` as an unambiguous lookup key: each a presence byte, its length and its bytes.
fn key(out: &mut Vec<u8>, fields: &[Option<Text<'_>>]) {
    out.clear();
    for field in fields {
        match field {
            Some(text) => {
                out.push(1);
                out.extend_from_slice(&text.as_bytes().len().to_le_bytes());
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

/// One transaction around [`write_rows`]. Its `BEGIN` and `COMMIT` are kept prepared, like
/// every statement of a write: a batch is written every tenth of a second under load, and
/// preparing them anew each time cost a few percent of the writer's time.
fn write_all(conn: &mut Connection, pending: &Pending, ids: &mut Ids) -> rusqlite::Result<usize> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let written = ids
        .follow(conn)
        .and_then(|()| write_rows(conn, pending, ids))
        .and_then(|n| conn.prepare_cached("COMMIT")?.execute([]).map(|_| n));
    if written.is_err() && !conn.is_autocommit() {
        // What rolls back is what failed to be written; an error doing so changes nothing.
        let _ = conn.execute_batch("ROLLBACK");
    }
    written
}

/// The statements of [`write_all`]'s transaction.
fn write_rows(conn: &Connection, pending: &Pending, ids: &mut Ids) -> rusqlite::Result<usize> {
    // Rows are stored in the order the requests arrived (lanes hold them in the order they
    // ended). Sized up front: a batch holds thousands of requests, and growing a vector of
    // them step by step copied it over and over (some 6 % of the writer's time under load).
    let mut views: Vec<View<'_>> = Vec::with_capacity(pending.request_count());
    for (bytes, _) in &pending.requests {
        views.extend(packed::decode(bytes));
    }
    // Sorted as (arrival, index) pairs, in place: sorting the views themselves (some 250 bytes
    // each) moved megabytes through a scratch buffer as large as the batch every time.
    let mut order: Vec<(i64, usize)> = views
        .iter()
        .enumerate()
        .map(|(i, v)| (v.at_ms, i))
        .collect();
    order.sort_unstable();
    let mut rows = Vec::with_capacity(views.len());
    let mut last: Option<&Row<'_>> = None;
    for v in order.iter().map(|&(_, i)| &views[i]) {
        // Requests in a row mostly come from one client for one model: reuse the ids.
        let agent = match last {
            Some(p) if same_agent(p.view, v) => p.agent,
            _ => ids.agent(conn, v)?,
        };
        let target = match last {
            Some(p) if same_target(p.view, v) => p.target,
            _ => ids.target(conn, v)?,
        };
        rows.push(Row {
            view: v,
            agent,
            target,
        });
        last = rows.last();
    }
    let before: i64 = conn
        .prepare_cached("SELECT ifnull(max(id), 0) FROM request_rows")?
        .query_row([], |r| r.get(0))?;
    let mut n = insert_requests(conn, &rows)?;
    note_minutes(conn, &rows, before)?;
    let mut quotas = conn.prepare_cached(INSERT_QUOTA)?;
    for q in &pending.quotas {
        insert_quota(&mut quotas, q)?;
        n += 1;
    }
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
fn note_minutes(conn: &Connection, rows: &[Row<'_>], before: i64) -> rusqlite::Result<()> {
    let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let consecutive = conn.last_insert_rowid() == before.saturating_add(n);
    let mut stmt = conn.prepare_cached(
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

/// `records` as one lane's buffer, waiting to be stored (tests build batches with it).
#[cfg(test)]
pub(super) fn pending_of(records: &[RequestRecord]) -> Pending {
    let mut bytes = Vec::new();
    for r in records {
        packed::encode(r, &mut bytes);
    }
    Pending {
        requests: vec![(bytes, records.len())],
        quotas: Vec::new(),
    }
}

/// Stores requests in one transaction (tests seed databases with it).
#[cfg(test)]
pub(super) fn store_requests(
    conn: &mut Connection,
    records: Vec<RequestRecord>,
) -> rusqlite::Result<usize> {
    write(conn, &pending_of(&records), &mut Ids::default())
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
fn insert_requests(conn: &Connection, rows: &[Row<'_>]) -> rusqlite::Result<usize> {
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut many = conn.prepare_cached(insert_sql(true))?;
        for chunk in &mut chunks {
            for (i, row) in chunk.iter().enumerate() {
                bind_request(&mut many, i * COLUMNS, row)?;
            }
            many.raw_execute()?;
        }
    }
    let mut one = conn.prepare_cached(insert_sql(false))?;
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
    // Bound one by one with their own types (an array of `&dyn ToSql` cost a call through a
    // table for each).
    let at = |i: usize| offset + i + 1;
    stmt.raw_bind_parameter(at(0), v.at_ms)?;
    stmt.raw_bind_parameter(at(1), row.agent)?;
    stmt.raw_bind_parameter(at(2), row.target)?;
    stmt.raw_bind_parameter(at(3), v.tries)?;
    stmt.raw_bind_parameter(at(4), v.failovers)?;
    stmt.raw_bind_parameter(at(5), v.status)?;
    stmt.raw_bind_parameter(at(6), v.error_code)?;
    stmt.raw_bind_parameter(at(7), v.error_message)?;
    stmt.raw_bind_parameter(at(8), v.ttfb_ms.map(int))?;
    stmt.raw_bind_parameter(at(9), int(v.duration_ms))?;
    stmt.raw_bind_parameter(at(10), v.tokens.input.map(int))?;
    stmt.raw_bind_parameter(at(11), v.tokens.cached.map(int))?;
    stmt.raw_bind_parameter(at(12), v.tokens.output.map(int))?;
    stmt.raw_bind_parameter(at(13), v.tokens.reasoning.map(int))?;
    stmt.raw_bind_parameter(at(14), v.streamed)?;
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
mod tests;
