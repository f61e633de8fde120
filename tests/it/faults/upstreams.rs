//! Upstreams that cannot be reached or stall, and clients that walk away mid-stream.

use super::*;

// ---------------------------------------------------------------------------------------------

/// A loopback address whose connects hang: a listener with a backlog of one that never accepts,
/// its queue filled first (Linux then drops further SYNs instead of refusing them).
fn blackhole() -> (
    tokio::net::TcpListener,
    Vec<std::net::TcpStream>,
    SocketAddr,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => return (listener, fillers, addr),
        }
    }
    panic!("could not fill the backlog of {addr}");
}

/// An upstream that never completes the TCP handshake: 504 JSON after the connect timeout,
/// not a hang and not the idle timeout's wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_to_an_unreachable_upstream_is_a_504() {
    let (_listener, _fillers, addr) = blackhole();
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: http://{addr}/backend-api/codex\n    timeouts: {{connect: 1, idle: 30}}\n"
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    for stream in [true, false] {
        let started = Instant::now();
        let resp = ask_codex(&server, stream).await.expect("no hang");
        let elapsed = started.elapsed();
        assert_eq!(resp.status(), 504, "stream {stream}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "upstream_timeout", "{body}");
        eprintln!("connect timeout answered in {elapsed:?}");
        assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }
}

/// Idle timeouts not covered by `serve_times_out_a_stalled_upstream`: headers sent but no event
/// yet, and a non-streaming client whose upstream stalls mid-stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_after_headers_and_for_aggregated_clients() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &fake.codex_base(), "").await;
    let client = http_client();
    let url = format!("{}/v1/responses", server.url());

    // 200 and headers, then silence (twice: it is tried again once): the client still gets a
    // well-formed answer.
    fake.push(Reply::sse(vec![Step::Stall]));
    fake.push(Reply::sse(vec![Step::Stall]));
    let resp = tokio::time::timeout(
        SECS,
        client
            .post(&url)
            .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": true}))
            .send(),
    )
    .await
    .expect("no hang")
    .unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let body = tokio::time::timeout(SECS, resp.bytes())
        .await
        .expect("no hang")
        .unwrap();
    let class = classify(status, &ct, &body).unwrap();
    eprintln!("stall after headers: {status} {class:?}");
    assert!(matches!(class, Answer::ErrorEvent | Answer::ErrorJson));
    assert!(String::from_utf8_lossy(&body).contains("upstream_timeout"));

    // A non-streaming client whose upstream stalls after the first events: 504 JSON.
    let mut steps = answer_events("slow");
    steps.truncate(3);
    steps.push(Step::Stall);
    fake.push(Reply::sse(steps));
    let resp = tokio::time::timeout(
        SECS,
        client
            .post(&url)
            .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": false}))
            .send(),
    )
    .await
    .expect("no hang")
    .unwrap();
    assert_eq!(resp.status(), 504);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout", "{body}");
    assert!(!server.stderr().contains("panicked"));
}

// ---------------------------------------------------------------------------------------------

/// 50 clients walk away mid-stream: every upstream stream is released, and the server keeps
/// answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_disconnecting_mid_stream_release_every_upstream() {
    const N: usize = 50;
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    ctx.write_config(&format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    timeouts: {{connect: 2, idle: 30}}\n",
        fake.codex_base()
    ));
    let server = ServeProcess::start(&ctx, &[]).await;
    for _ in 0..N {
        let mut steps = answer_events("before-disconnect");
        steps.truncate(4);
        steps.push(Step::Hold);
        steps.push(Step::Trickle);
        fake.push(Reply::sse(steps));
    }
    let client = http_client();
    let url = format!("{}/v1/responses", server.url());
    let opened = futures_util::future::join_all((0..N).map(|_| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let mut resp = client
                .post(&url)
                .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": true}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let mut seen = String::new();
            while !seen.contains("before-disconnect") {
                let chunk = tokio::time::timeout(SECS, resp.chunk())
                    .await
                    .expect("first events arrive")
                    .unwrap()
                    .expect("stream open");
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            resp
        }
    }))
    .await;
    assert_eq!(opened.len(), N);
    drop(opened);
    for _ in 0..N {
        fake.release();
    }
    assert!(
        fake.wait_dropped(N, SECS).await,
        "not every upstream stream was released after its client left"
    );
    // Still serving, streams and JSON alike.
    for stream in [true, false] {
        let resp = client
            .post(&url)
            .json(&json!({"model": "gpt-6-luna", "input": "hi", "stream": stream}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        let body = resp.bytes().await.unwrap();
        assert!(classify(200, &ct, &body).is_ok());
    }
    assert!(!server.stderr().contains("panicked"));
}
