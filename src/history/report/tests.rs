//! The report queries over a seeded database.

use super::*;
use crate::history::db;
use crate::history::record::{RequestRecord, Tokens, served};
use crate::history::store::store_requests;

fn request(
    at_ms: i64,
    client_ua: &str,
    model: &str,
    status: u16,
    duration_ms: u64,
) -> RequestRecord {
    RequestRecord {
        tries: 1,
        status,
        ttfb_ms: Some(duration_ms / 2),
        duration_ms,
        tokens: Tokens {
            input: Some(100),
            cached: Some(40),
            output: Some(10),
            reasoning: Some(3),
        },
        streamed: true,
        ..served(at_ms, client_ua, model)
    }
}

fn seeded(records: Vec<RequestRecord>) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = db::path_in(dir.path());
    let mut opened = db::open_for_writing(&path, 1).unwrap();
    store_requests(&mut opened.conn, records).unwrap();
    drop(opened);
    let conn = db::open_for_reading(&path).unwrap().unwrap();
    (dir, conn)
}

#[test]
fn since_parses_periods() {
    assert_eq!(
        "30m".parse::<Since>().unwrap(),
        Since::last(Duration::from_secs(1800))
    );
    assert_eq!("7d".parse::<Since>().unwrap(), Since::default());
    assert_eq!("2w".parse::<Since>().unwrap().to_string(), "14d");
    assert_eq!(Since::default().to_string(), "7d");
    assert_eq!("90m".parse::<Since>().unwrap().to_string(), "90m");
    assert_eq!("24h".parse::<Since>().unwrap().to_string(), "1d");
    assert_eq!("all".parse::<Since>().unwrap().start_ms(5), i64::MIN);
    assert_eq!(Since::last(Duration::from_secs(2)).start_ms(5_000), 3_000);
    for bad in ["7", "d", "7y", "0d", "-1d", "", "99999999999999999999w"] {
        assert!(bad.parse::<Since>().is_err(), "{bad}");
    }
}

#[test]
fn percentiles_by_nearest_rank() {
    let v: Vec<u64> = (1..=100).collect();
    assert_eq!(percentile(&v, 50), Some(50));
    assert_eq!(percentile(&v, 95), Some(95));
    assert_eq!(percentile(&[7], 95), Some(7));
    assert_eq!(percentile(&[1, 2], 50), Some(1));
    assert_eq!(percentile(&[], 50), None);
    assert_eq!(share(40, 100), Some(40.0));
    assert_eq!(share(1, 3), Some(33.3));
    assert_eq!(share(0, 0), None);
}

#[test]
fn totals_count_tokens_errors_and_latency() {
    let mut failed = request(3_000, "curl/8", "m2", 502, 5);
    failed.tokens = Tokens::default();
    failed.error_code = Some("upstream_502".into());
    let mut broken = request(4_000, "curl/8", "m2", 200, 900);
    broken.error_code = Some("upstream_disconnected".into());
    let (_dir, conn) = seeded(vec![
        request(1_000, "OpenAI/Python 3.60.0", "m1", 200, 100),
        request(2_000, "claude-cli/2.1.332 (external, cli)", "m1", 200, 300),
        failed,
        broken,
    ]);
    let t = totals(&conn, 0).unwrap();
    assert_eq!(t.requests, 4);
    assert_eq!(t.errors, 2);
    assert_eq!(t.input_tokens, 300);
    assert_eq!(t.cached_tokens, 120);
    assert_eq!(t.output_tokens, 30);
    assert_eq!(t.reasoning_tokens, 9);
    assert_eq!(t.cache_hit_percent, Some(40.0));
    // Only the two answers that did not fail count for latency.
    assert_eq!((t.p50_ms, t.p95_ms), (Some(100), Some(300)));
    assert_eq!((t.ttfb_p50_ms, t.ttfb_p95_ms), (Some(50), Some(150)));
    // The period's start is inclusive.
    assert_eq!(totals(&conn, 2_000).unwrap().requests, 3);
    assert_eq!(totals(&conn, 5_000).unwrap(), Totals::default());
}

#[test]
fn breakdowns_group_and_sort() {
    let (_dir, conn) = seeded(vec![
        request(1_000, "OpenAI/Python 3.60.0", "m1", 200, 100),
        request(2_000, "OpenAI/Python 3.60.0", "m2", 200, 200),
        request(3_000, "curl/8.5.0", "m2", 200, 300),
        request(86_400_000 + 5, "curl/8.5.0", "m2", 429, 1),
    ]);
    let by_client = breakdown(&conn, 0, By::Client).unwrap();
    let keys: Vec<(&str, u64)> = by_client
        .iter()
        .map(|g| (g.key.as_str(), g.totals.requests))
        .collect();
    assert_eq!(keys, vec![("curl", 2), ("openai-python", 2)]);
    assert_eq!(by_client[0].totals.errors, 1);
    assert_eq!(by_client[0].totals.p50_ms, Some(300));

    let by_model = breakdown(&conn, 0, By::Model).unwrap();
    assert_eq!(by_model[0].key, "m2");
    assert_eq!(by_model[0].totals.requests, 3);

    let by_account = breakdown(&conn, 0, By::Account).unwrap();
    assert_eq!(by_account.len(), 1);
    assert_eq!(by_account[0].key, "openai-codex:work");

    // Days follow the local time zone; two days apart either way.
    let by_day = breakdown(&conn, 0, By::Day).unwrap();
    assert_eq!(by_day.len(), 2);
    assert!(by_day[0].key < by_day[1].key);
    assert_eq!(by_day[0].totals.requests, 3);
}

#[test]
fn series_recent_and_last_id() {
    let (_dir, conn) = seeded(vec![
        request(1_000, "curl/8", "m1", 200, 1),
        request(1_500, "curl/8", "m1", 500, 1),
        request(3_700_000, "curl/8", "m1", 200, 1),
    ]);
    let points = series(&conn, 0, 3_600_000).unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(
        (points[0].t, points[0].requests, points[0].errors),
        (0, 2, 1)
    );
    assert_eq!((points[1].t, points[1].input_tokens), (3_600_000, 100));
    let rows = recent(&conn, 2, false).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.at_ms).collect::<Vec<_>>(),
        vec![3_700_000, 1_500]
    );
    assert_eq!(rows[0].client, "curl");
    let errors = recent(&conn, 10, true).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].status, 500);
    assert_eq!(last_id(&conn).unwrap(), Some(3));
}
