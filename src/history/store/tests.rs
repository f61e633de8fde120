//! Storing request rows against real database files: repeated text stored once, text stored as
//! text, batches row for row, lanes in arrival order, finding requests by time through
//! `request_minutes` (also after a migration from the first schema), and pruning.

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

use crate::history::record::served as request;

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
fn text_read_back_from_a_lane_is_stored_as_text() {
    let (_dir, mut conn) = fresh();
    let mut record = request(1, "curl/8.5.0 (ünïcode)", "gpt-6.1-sol");
    record.status = 429;
    record.error_code = Some("usage_limit_reached".into());
    record.error_message = Some("Limite d'utilisation atteinte — réessayez à 14 h".into());
    store_requests(&mut conn, vec![record]).unwrap();
    let row: (String, String, String, String, String) = conn
        .query_row(
            "SELECT typeof(user_agent) || typeof(model) || typeof(error_code) || typeof(error_message),
                user_agent, model, error_code, error_message FROM requests",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "text".repeat(4),
            "curl/8.5.0 (ünïcode)".to_owned(),
            "gpt-6.1-sol".to_owned(),
            "usage_limit_reached".to_owned(),
            "Limite d'utilisation atteinte — réessayez à 14 h".to_owned(),
        )
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
    let pending = pending_of(&records);
    write(&mut conn, &pending, &mut ids).unwrap();
    assert_eq!(prune(&conn, 90, now, &mut ids).unwrap(), 1);
    assert_eq!(count(&conn, "requests"), 2);
    assert_eq!((count(&conn, "agents"), count(&conn, "targets")), (1, 1));
    // The ids were forgotten with the rows: an old agent comes back as a new row.
    write(&mut conn, &pending, &mut ids).unwrap();
    assert_eq!(count(&conn, "requests"), 5);
    assert_eq!((count(&conn, "agents"), count(&conn, "targets")), (2, 2));
}

#[test]
fn ids_another_writer_pruned_are_not_used_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = db::path_in(dir.path());
    let mut conn = db::open_for_writing(&path, 1).unwrap().conn;
    let other = db::open_for_writing(&path, 1).unwrap().conn;
    let day = 86_400_000;
    let mut ids = Ids::default();
    let old = pending_of(&[request(day, "curl/8.5.0", "gpt-5")]);
    write(&mut conn, &old, &mut ids).unwrap();
    // Another bitrouter on the same file prunes that row and the text only it used.
    assert_eq!(
        prune(&other, 90, 100 * day, &mut Ids::default()).unwrap(),
        1
    );
    assert_eq!((count(&other, "agents"), count(&other, "targets")), (0, 0));
    // The same agent and target again: made anew, not named by the ids known before.
    let new = pending_of(&[request(100 * day, "curl/8.5.0", "gpt-5")]);
    write(&mut conn, &new, &mut ids).unwrap();
    assert_eq!(count(&conn, "request_rows"), 1);
    assert_eq!(count(&conn, "requests"), 1);
    assert_eq!((count(&conn, "agents"), count(&conn, "targets")), (1, 1));
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
        let records: Vec<RequestRecord> = times
            .iter()
            .map(|t| request(*t, "curl/8.5.0", "m"))
            .collect();
        write(&mut conn, &pending_of(&records), &mut ids).unwrap();
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
