//! The writer thread against real database files: batches land, a full lane drops and
//! counts, a locked database keeps records until it is free, a damaged one is replaced, old rows
//! are deleted, and unchanged quota snapshots are not stored twice.

use std::path::Path;

use super::*;
use crate::history::report;
use crate::history::store::store_requests;
use crate::history::{QuotaWindow, RequestRecord};

fn options(path: &Path) -> WriterOptions {
    WriterOptions {
        path: path.to_path_buf(),
        keep_days: 90,
        capacity: CHANNEL_CAPACITY,
    }
}

fn record(at_ms: i64) -> RequestRecord {
    RequestRecord {
        at_ms,
        endpoint: "/v1/responses",
        status: 200,
        duration_ms: 5,
        ..RequestRecord::default()
    }
}

fn requests_in(path: &Path) -> u64 {
    let conn = db::open_for_reading(path).unwrap().unwrap();
    report::totals(&conn, i64::MIN).unwrap().requests
}

/// Polls `done` for up to 10 s.
fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn records_land_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = db::path_in(dir.path());
    let (sink, writer) = start(options(&path)).unwrap();
    let now = unix_now_ms();
    for i in 0..300 {
        sink.request(record(now + i));
    }
    assert!(writer.stop(Duration::from_secs(10)));
    assert_eq!(sink.stats().written(), 300);
    assert_eq!(sink.stats().dropped(), 0);
    assert_eq!(requests_in(&path), 300);
    // After the writer stopped, records are dropped and counted, never an error.
    sink.request(record(now));
    assert_eq!(sink.stats().dropped(), 1);
}

#[test]
fn a_full_lane_drops_and_counts() {
    // A sink whose writer never collects.
    let (tx, _rx) = std::sync::mpsc::sync_channel(1);
    let sink = Sink::feeding(Arc::new(Inner {
        feed: Some(Feed {
            lanes: Lanes::new(),
            tx,
        }),
        stats: Stats::default(),
    }));
    let mut sent = 0;
    while sink.stats().dropped() == 0 {
        sink.request(record(sent));
        sent += 1;
    }
    sink.request(record(sent));
    assert_eq!(sink.stats().dropped(), 2);
    assert!(sent > 1000, "{sent}");
    assert!(!Sink::disabled().is_enabled());
    Sink::disabled().request(record(1));
    assert_eq!(Sink::disabled().stats().dropped(), 0);
}

#[test]
fn a_locked_database_keeps_records_until_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let path = db::path_in(dir.path());
    drop(db::open_for_writing(&path, 1).unwrap());
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let (sink, writer) = start(options(&path)).unwrap();
    let now = unix_now_ms();
    for i in 0..10 {
        sink.request(record(now + i));
    }
    assert!(
        wait_for(|| sink.stats().trouble().is_some()),
        "the writer never met the lock"
    );
    assert_eq!(sink.stats().written(), 0);
    holder.execute_batch("COMMIT").unwrap();
    assert!(wait_for(|| sink.stats().written() == 10));
    assert_eq!(sink.stats().trouble(), None);
    assert!(writer.stop(Duration::from_secs(10)));
    assert_eq!(sink.stats().dropped(), 0);
    drop(holder);
    assert_eq!(requests_in(&path), 10);
}

#[test]
fn a_damaged_file_is_replaced_and_records_land_in_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = db::path_in(dir.path());
    std::fs::write(
        &path,
        b"this is not a database, it only has a name like one",
    )
    .unwrap();
    let (sink, writer) = start(options(&path)).unwrap();
    sink.request(record(unix_now_ms()));
    assert!(writer.stop(Duration::from_secs(10)));
    assert_eq!(requests_in(&path), 1);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
}

#[test]
fn old_rows_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = db::path_in(dir.path());
    let mut opened = db::open_for_writing(&path, 1).unwrap();
    let day = 86_400_000;
    let now = 100 * day;
    store_requests(
        &mut opened.conn,
        vec![record(now - 91 * day), record(now - 89 * day), record(now)],
    )
    .unwrap();
    assert_eq!(
        prune(&opened.conn, 90, now, &mut Ids::default()).unwrap(),
        1
    );
    drop(opened);
    assert_eq!(requests_in(&path), 2);
}

#[test]
fn unchanged_quota_is_stored_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = db::path_in(dir.path());
    let (sink, writer) = start(options(&path)).unwrap();
    let now = unix_now_ms();
    let quota = |at_ms: i64, used: f64| QuotaRecord {
        at_ms,
        provider: "openai-codex".into(),
        account: "work".into(),
        source: "headers".into(),
        plan: Some("plus".into()),
        primary: Some(QuotaWindow {
            used_percent: Some(used),
            window_minutes: Some(300),
            reset_at: Some(1_790_000_000),
        }),
        secondary: None,
    };
    sink.quota(quota(now, 10.0));
    sink.quota(quota(now + 1_000, 10.0));
    sink.quota(quota(now + 2_000, 12.0));
    let every = i64::try_from(QUOTA_EVERY.as_millis()).unwrap();
    sink.quota(quota(now + 2_000 + every, 12.0));
    assert!(writer.stop(Duration::from_secs(10)));
    let conn = db::open_for_reading(&path).unwrap().unwrap();
    let stored = report::quotas(&conn, 0).unwrap();
    let used: Vec<f64> = stored
        .iter()
        .filter_map(|q| q.primary.and_then(|w| w.used_percent))
        .collect();
    assert_eq!(used, vec![10.0, 12.0, 12.0]);
    assert_eq!(stored[0], quota(now, 10.0));
}
