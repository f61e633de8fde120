//! The SQL that stores history records: requests and quota snapshots inserted in one
//! transaction (client names worked out once per `User-Agent`), quota snapshots stored at once
//! for commands without a writer thread, and old rows deleted.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, TransactionBehavior, params};

use super::client;
use super::db::{self, HistoryError};
use super::packed::{Field, PackedRequest};
#[cfg(test)]
use super::record::RequestRecord;
use super::record::{QuotaRecord, QuotaWindow};
use crate::clock::unix_now;

/// Distinct `User-Agent`s whose client name is remembered.
const KNOWN_AGENTS: usize = 256;

/// What the writer is asked to store.
#[derive(Debug)]
pub(super) enum Entry {
    /// A finished request.
    Request(PackedRequest),
    /// A quota snapshot.
    Quota(QuotaRecord),
    /// Wakes the thread to finish.
    Stop,
}

const INSERT_REQUEST: &str = "INSERT INTO requests (at_ms, client, user_agent, endpoint, model_asked, provider, model, account, tries, failovers, status, error_code, error_message, ttfb_ms, duration_ms, input_tokens, cached_tokens, output_tokens, reasoning_tokens, streamed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";

const INSERT_QUOTA: &str = "INSERT INTO quota_snapshots (at_ms, provider, account, source, plan, primary_used_percent, primary_window_minutes, primary_reset_at, secondary_used_percent, secondary_window_minutes, secondary_reset_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// Client names of the `User-Agent`s seen lately (requests without an `originator`), so the
/// same agent is not parsed again for every request.
#[derive(Debug, Default)]
pub(super) struct Agents(HashMap<String, &'static str>);

impl Agents {
    pub(super) fn client(
        &mut self,
        user_agent: Option<&str>,
        originator: Option<&str>,
    ) -> &'static str {
        let (Some(ua), None) = (user_agent, originator) else {
            return client::detect(user_agent, originator);
        };
        if let Some(name) = self.0.get(ua) {
            return name;
        }
        let name = client::detect(user_agent, originator);
        if self.0.len() >= KNOWN_AGENTS {
            self.0.clear();
        }
        self.0.insert(ua.to_owned(), name);
        name
    }
}

/// Stores the entries in one transaction; returns how many rows were written.
pub(super) fn write(
    conn: &mut Connection,
    entries: &[Entry],
    agents: &mut Agents,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut n = 0;
    {
        let mut requests = tx.prepare_cached(INSERT_REQUEST)?;
        let mut quotas = tx.prepare_cached(INSERT_QUOTA)?;
        for entry in entries {
            match entry {
                Entry::Request(r) => {
                    let client = agents.client(r.get(Field::UserAgent), r.get(Field::Originator));
                    insert_request(&mut requests, r, client)?;
                    n += 1;
                }
                Entry::Quota(q) => {
                    insert_quota(&mut quotas, q)?;
                    n += 1;
                }
                Entry::Stop => {}
            }
        }
    }
    tx.commit()?;
    Ok(n)
}

/// Stores requests in one transaction (tests seed databases with it).
#[cfg(test)]
pub(super) fn store_requests(
    conn: &mut Connection,
    records: Vec<RequestRecord>,
) -> rusqlite::Result<usize> {
    let entries: Vec<Entry> = records
        .into_iter()
        .map(|r| Entry::Request(PackedRequest::pack(&r)))
        .collect();
    write(conn, &entries, &mut Agents::default())
}

fn insert_request(
    stmt: &mut rusqlite::CachedStatement<'_>,
    r: &PackedRequest,
    client: &str,
) -> rusqlite::Result<()> {
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    stmt.execute(params![
        r.at_ms,
        client,
        r.get(Field::UserAgent),
        r.get(Field::Endpoint).unwrap_or_default(),
        r.get(Field::ModelAsked),
        r.get(Field::Provider),
        r.get(Field::Model),
        r.get(Field::Account),
        r.tries,
        r.failovers,
        r.status,
        r.get(Field::ErrorCode),
        r.get(Field::ErrorMessage),
        r.ttfb_ms.map(int),
        int(r.duration_ms),
        r.tokens.input.map(int),
        r.tokens.cached.map(int),
        r.tokens.output.map(int),
        r.tokens.reasoning.map(int),
        r.streamed,
    ])?;
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
    let entries: Vec<Entry> = records.iter().cloned().map(Entry::Quota).collect();
    write(&mut opened.conn, &entries, &mut Agents::default()).map_err(|source| {
        HistoryError::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(())
}

/// Deletes rows older than `keep_days` before `now_ms`.
pub(super) fn prune(conn: &Connection, keep_days: u32, now_ms: i64) -> rusqlite::Result<usize> {
    let cutoff = now_ms - i64::from(keep_days) * 86_400_000;
    let requests = conn.execute("DELETE FROM requests WHERE at_ms < ?1", [cutoff])?;
    let quotas = conn.execute("DELETE FROM quota_snapshots WHERE at_ms < ?1", [cutoff])?;
    Ok(requests + quotas)
}
