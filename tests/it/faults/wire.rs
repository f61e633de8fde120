//! Upstreams whose answers are not HTTP/1.1, or stop short of their own framing: each becomes a
//! clear error for the client (a JSON error, or an `error` event once a stream began), in time,
//! and the server goes on answering.

use super::*;

/// A loopback "upstream" that reads each request and writes `reply`, then closes the
/// connection (`hold`: keeps it open, silent, instead).
async fn odd_upstream(reply: &'static [u8], hold: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if super::load::read_request(&mut socket, &mut Vec::new())
                    .await
                    .is_none()
                {
                    return;
                }
                let _ = socket.write_all(reply).await;
                if hold {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            });
        }
    });
    addr
}

const CREATED: &str = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[]}}\n\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_are_not_http_or_stop_short_are_clear_errors() {
    let cases: [(&str, &'static [u8], bool); 5] = [
        ("not HTTP at all", b"SSH-2.0-OpenSSH_9.6\r\n", false),
        ("closed before answering", b"", false),
        ("closed in the head", b"HTTP/1.1 200 OK\r\ncontent-ty", false),
        (
            "a chunk size that is not a number",
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            true,
        ),
        (
            "a body shorter than its length",
            Box::leak(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 4000\r\n\r\n{CREATED}"
                )
                .into_bytes()
                .into_boxed_slice(),
            ),
            false,
        ),
    ];
    for (name, reply, hold) in cases {
        let addr = odd_upstream(reply, hold).await;
        let ctx = TestContext::new();
        seed_tokens(&ctx, &[work_token()]);
        let server = start(&ctx, &format!("http://{addr}/backend-api/codex"), "").await;
        for stream in [true, false] {
            let resp = ask_codex(&server, stream)
                .await
                .unwrap_or_else(|| panic!("{name}: no answer in time"));
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body = tokio::time::timeout(SECS, resp.bytes())
                .await
                .unwrap_or_else(|_| panic!("{name}: the body did not end in time"))
                .unwrap();
            let answer = classify(status, &content_type, &body)
                .unwrap_or_else(|e| panic!("{name} (stream {stream}): {e}"));
            assert!(
                matches!(answer, Answer::ErrorJson | Answer::ErrorEvent),
                "{name} (stream {stream}): {answer:?}"
            );
        }
        let health = http_client()
            .get(format!("{}/health", server.url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: /health after it: {e:?}"));
        assert_eq!(health.status(), 200, "{name}: /health after it");
    }
}
