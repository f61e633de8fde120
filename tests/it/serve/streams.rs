//! Streams that break, stall or are walked away from, and open streams at shutdown.

use pretty_assertions::assert_eq;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_ends_a_broken_stream_with_an_error_event() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;
    let mut steps = answer_events("partial");
    steps.truncate(4);
    steps.push(Step::Die);
    fake.push(Reply::sse(steps));

    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = tokio::time::timeout(SECS, resp.text())
        .await
        .expect("the stream must end, not hang")
        .unwrap();
    assert!(text.contains("partial"));
    let tail = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(tail.starts_with("event: error\ndata: "), "{text}");
    let data: Value =
        serde_json::from_str(tail.trim_start_matches("event: error\ndata: ")).unwrap();
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["code"], "upstream_disconnected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_times_out_a_stalled_upstream() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let config = format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    timeouts: {{connect: 2, idle: 1}}\n",
        fake.codex_base()
    );
    let server = start(&ctx, &config).await;

    // Stalled mid-stream: an error event after the idle timeout.
    let mut steps = answer_events("slow");
    steps.truncate(4);
    steps.push(Step::Stall);
    fake.push(Reply::sse(steps));
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    let text = tokio::time::timeout(SECS, resp.text())
        .await
        .expect("no hang")
        .unwrap();
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("upstream_timeout"), "{text}");

    // Stalled before answering, and again when tried again: 504.
    fake.push(Reply::Stall);
    fake.push(Reply::Stall);
    let resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 504);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_releases_the_upstream_when_the_client_disconnects() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;
    let mut steps = answer_events("before-disconnect");
    steps.truncate(4);
    steps.push(Step::Hold);
    steps.push(Step::Trickle);
    fake.push(Reply::sse(steps));

    let mut resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    let mut seen = String::new();
    assert!(read_until(&mut resp, &mut seen, "before-disconnect", SECS).await);
    drop(resp);
    fake.release();
    assert!(
        fake.wait_dropped(1, SECS).await,
        "the upstream stream was not released after the client left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_lets_open_streams_finish_on_sigterm() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let mut server = start(&ctx, &codex_config(&fake, "")).await;
    let mut steps = answer_events("graceful");
    steps.insert(4, Step::Hold);
    fake.push(Reply::sse(steps));

    let mut resp = post(
        &server,
        "/v1/responses",
        &json!({"model": "gpt-6-luna", "input": "hi", "stream": true}),
    )
    .await;
    let mut seen = String::new();
    assert!(read_until(&mut resp, &mut seen, "graceful", SECS).await);
    server.signal("TERM");
    assert!(
        server.wait_for_stderr("shutting down", 1, SECS).await,
        "{}",
        server.stderr()
    );
    fake.release();
    assert!(
        read_until(&mut resp, &mut seen, "response.completed", SECS).await,
        "{seen}"
    );
    let status = server
        .wait_exit(SECS)
        .await
        .expect("serve exits after the stream");
    assert!(status.success(), "{status}: {}", server.stderr());
}
