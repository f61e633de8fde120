//! The database's tables and their versioned migrations. The version lives in SQLite's
//! `user_version`; each migration runs once, in its own transaction, in order. A database made
//! by a newer bitrouter (a version above the last one known here) is refused rather than
//! guessed at.
//!
//! Times are unix milliseconds (`at_ms`), except quota reset times, which are unix seconds as
//! the backend reports them. Token counts are `NULL` when the upstream did not report them.
//!
//! A request is a row of numbers in `request_rows`; the text that repeats from request to
//! request is stored once, in `agents` (who sent it: client, `User-Agent`, `originator`) and
//! `targets` (endpoint, model asked, and the provider, model and account that served it), so
//! storing a request costs little. Readers use the `requests` view: one flat row per request.
//!
//! Requests are found by time through `request_minutes`, not an index on `at_ms` (which cost a
//! fifth of the writer's time per row): for each minute some request arrived in, an id at or
//! below the id of every row of that minute. So a request that arrived at or after time `t`
//! has an id at or above the smallest `first_id` of the minutes from `t`'s on, and a query
//! reads only the rows from there ([`SINCE_SQL`]).

use rusqlite::{Connection, TransactionBehavior};

/// The migrations, in order; the database's version is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: requests (a row of numbers per request, the repeated text in `agents` and `targets`,
    // read as one flat `requests` view) and quota snapshots.
    "CREATE TABLE agents (
        id INTEGER PRIMARY KEY,
        client TEXT NOT NULL,
        user_agent TEXT,
        originator TEXT
    );
    CREATE INDEX agents_key ON agents(user_agent, originator);
    CREATE TABLE targets (
        id INTEGER PRIMARY KEY,
        endpoint TEXT NOT NULL,
        model_asked TEXT,
        provider TEXT,
        model TEXT,
        account TEXT
    );
    CREATE INDEX targets_key ON targets(endpoint, model_asked, provider, model, account);
    CREATE TABLE request_rows (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        agent INTEGER NOT NULL REFERENCES agents(id),
        target INTEGER NOT NULL REFERENCES targets(id),
        tries INTEGER NOT NULL,
        failovers INTEGER NOT NULL,
        status INTEGER NOT NULL,
        error_code TEXT,
        error_message TEXT,
        ttfb_ms INTEGER,
        duration_ms INTEGER NOT NULL,
        input_tokens INTEGER,
        cached_tokens INTEGER,
        output_tokens INTEGER,
        reasoning_tokens INTEGER,
        streamed INTEGER NOT NULL
    );
    CREATE INDEX request_rows_at ON request_rows(at_ms);
    CREATE VIEW requests AS
        SELECT r.id, r.at_ms, a.client, a.user_agent, a.originator, t.endpoint, t.model_asked,
            t.provider, t.model, t.account, r.tries, r.failovers, r.status, r.error_code,
            r.error_message, r.ttfb_ms, r.duration_ms, r.input_tokens, r.cached_tokens,
            r.output_tokens, r.reasoning_tokens, r.streamed
        FROM request_rows r JOIN agents a ON a.id = r.agent JOIN targets t ON t.id = r.target;
    CREATE TABLE quota_snapshots (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        provider TEXT NOT NULL,
        account TEXT NOT NULL,
        source TEXT NOT NULL,
        plan TEXT,
        primary_used_percent REAL,
        primary_window_minutes INTEGER,
        primary_reset_at INTEGER,
        secondary_used_percent REAL,
        secondary_window_minutes INTEGER,
        secondary_reset_at INTEGER
    );
    CREATE INDEX quota_snapshots_account_at ON quota_snapshots(provider, account, at_ms);",
    // 2: requests found by time through `request_minutes` instead of an index on `at_ms`.
    "DROP INDEX request_rows_at;
    CREATE TABLE request_minutes (
        minute INTEGER PRIMARY KEY,
        first_id INTEGER NOT NULL
    );
    INSERT INTO request_minutes (minute, first_id)
        SELECT at_ms / 60000, min(id) FROM request_rows GROUP BY at_ms / 60000;",
];

/// The condition that picks the requests that arrived at or after parameter `?1` (unix ms), in
/// a query on `requests` or `request_rows`: a range of row ids, narrowed by `at_ms`.
pub const SINCE_SQL: &str = "id >= (SELECT ifnull(min(first_id), 9223372036854775807)
    FROM request_minutes WHERE minute >= ?1 / 60000) AND at_ms >= ?1";

/// The minute `at_ms` falls in, as `request_minutes` counts them (SQLite's integer division).
#[must_use]
pub fn minute_of(at_ms: i64) -> i64 {
    at_ms / 60_000
}

/// The first migration's SQL (tests build databases of that version with it).
#[cfg(test)]
pub(super) fn first_schema_for_tests() -> &'static str {
    MIGRATIONS[0]
}

/// The schema version this build writes and reads.
#[must_use]
pub fn current_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// The database's schema version (0 for a new, empty file).
///
/// # Errors
///
/// When the database cannot be read.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// What [`migrate`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrated {
    /// The schema is current (after applying any missing migrations).
    Current,
    /// The file was written by a newer bitrouter, at this version.
    Newer(i64),
}

/// Brings the schema up to date, one transaction per migration.
///
/// # Errors
///
/// When a migration cannot be applied (a read-only or locked file, a full disk, corruption).
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Migrated> {
    let mut at = version(conn)?;
    if at > current_version() {
        return Ok(Migrated::Newer(at));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let number = i64::try_from(index).unwrap_or(i64::MAX) + 1;
        if number <= at {
            continue;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated between the read above and this lock.
        if version(&tx)? >= number {
            at = version(&tx)?;
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", number)?;
        tx.commit()?;
        at = number;
    }
    Ok(Migrated::Current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_new_database_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(version(&conn).unwrap(), 0);
        assert_eq!(migrate(&mut conn).unwrap(), Migrated::Current);
        assert_eq!(version(&conn).unwrap(), current_version());
        // Running again changes nothing.
        assert_eq!(migrate(&mut conn).unwrap(), Migrated::Current);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 5);
    }

    #[test]
    fn a_newer_schema_is_reported_not_touched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", current_version() + 1)
            .unwrap();
        assert_eq!(
            migrate(&mut conn).unwrap(),
            Migrated::Newer(current_version() + 1)
        );
    }
}
