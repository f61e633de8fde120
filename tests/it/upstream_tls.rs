use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;

use crate::support::TestContext;
use crate::support::fake_tls::FakeTls;
use crate::support::fake_upstream::{DEFAULT_TEXT, FakeUpstream};
use crate::support::serve::{ServeProcess, codex_world, http_client};

/// `bitrouter serve` trusting the test CA, in front of `fake`, with one account.
async fn serve_in_front_of(tls: &FakeTls, fake: &FakeUpstream) -> (TestContext, ServeProcess) {
    let ctx = codex_world(fake);
    let mut cmd = ctx.std_cmd();
    cmd.env("SSL_CERT_FILE", tls.ca_file())
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let server = ServeProcess::spawn(cmd).await;
    (ctx, server)
}

/// Three streamed requests one after another: each answered in full.
async fn three_answers(server: &ServeProcess) {
    for turn in 0..3 {
        let resp = http_client()
            .post(format!("{}/v1/responses", server.url()))
            .json(&json!({"model": "gpt-6-luna", "input": format!("turn {turn}"), "stream": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.text().await.unwrap();
        assert!(body.contains("response.completed"), "{body}");
        assert!(body.contains(DEFAULT_TEXT), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_that_offers_http2_gets_every_request_on_one_connection() {
    let certs = tempfile::tempdir().unwrap();
    let tls = FakeTls::new(certs.path());
    let fake = FakeUpstream::start_tls(&tls, &[b"h2", b"http/1.1"]).await;
    let (_ctx, server) = serve_in_front_of(&tls, &fake).await;
    three_answers(&server).await;

    let posts = fake.posts();
    assert_eq!(posts.len(), 3);
    assert!(
        posts
            .iter()
            .all(|p| p.header("authorization").as_deref() == Some("Bearer tok-work"))
    );
    // The catalog fetch and every request share the one HTTP/2 connection of the thread that
    // made them (a server has a serving thread per core).
    let connections = tls.connections();
    assert!(!connections.is_empty());
    assert!(connections.iter().all(|c| c == "h2"), "{connections:?}");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    assert!(connections.len() <= threads, "{connections:?}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_that_speaks_only_http1_keeps_its_connections_alive() {
    let certs = tempfile::tempdir().unwrap();
    let tls = FakeTls::new(certs.path());
    let fake = FakeUpstream::start_tls(&tls, &[b"http/1.1"]).await;
    let (_ctx, server) = serve_in_front_of(&tls, &fake).await;
    three_answers(&server).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    three_answers(&server).await;

    assert_eq!(fake.posts().len(), 6);
    let connections = tls.connections();
    assert!(
        connections.iter().all(|c| c == "http/1.1"),
        "{connections:?}"
    );
    // Six requests, one at a time, plus the catalog fetch: a connection per serving thread at
    // most, and one more if the fetch was still reading when the first request went.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    assert!(connections.len() <= threads + 1, "{connections:?}");
    drop(server);
}
