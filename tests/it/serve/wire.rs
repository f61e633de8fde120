//! HTTP/1.1 on the wire: one kept-alive connection whose requests bitrouter's own HTTP/1.1
//! serves and then, from the first one it hands over (a chunked body, an upgrade, ...), hyper;
//! pipelined requests; a client that leaves while its answer waits.

use std::net::SocketAddr;

use pretty_assertions::assert_eq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

const BODY: &str = r#"{"model":"gpt-6-luna","input":"hi","stream":true}"#;

fn with_length(addr: SocketAddr) -> String {
    format!(
        "POST /v1/responses HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
}

/// Reads one answer off `tcp` (after `rest`, what came before it): its head and body, by
/// `Content-Length` or chunks, the chunks joined. What came after it is left in `rest`.
async fn answer(tcp: &mut TcpStream, rest: &mut Vec<u8>) -> (String, String) {
    let mut buf = [0_u8; 8192];
    let head_end = loop {
        if let Some(at) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(SECS, tcp.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "closed before an answer's head");
        rest.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(rest.drain(..head_end).collect()).unwrap();
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if let Some(len) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        let len: usize = len.trim().parse().unwrap();
        while rest.len() < len {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed in a body");
            rest.extend_from_slice(&buf[..n]);
        }
        body.extend(rest.drain(..len));
    } else {
        assert!(lower.contains("transfer-encoding: chunked"), "{head}");
        loop {
            let line_end = loop {
                if let Some(at) = rest.windows(2).position(|w| w == b"\r\n") {
                    break at;
                }
                let n = tcp.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed in a chunk size");
                rest.extend_from_slice(&buf[..n]);
            };
            let size_line = String::from_utf8(rest.drain(..line_end + 2).collect()).unwrap();
            let size = usize::from_str_radix(size_line.trim(), 16).unwrap();
            while rest.len() < size + 2 {
                let n = tcp.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed in a chunk");
                rest.extend_from_slice(&buf[..n]);
            }
            body.extend(rest.drain(..size));
            rest.drain(..2);
            if size == 0 {
                break;
            }
        }
    }
    (head, String::from_utf8(body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_carries_requests_of_every_kind_in_turn() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;
    for text in ["one", "two", "three", "four"] {
        fake.push(Reply::sse(answer_events(text)));
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut rest = Vec::new();

    // Two requests with a length, pipelined in one write.
    let two = with_length(addr).repeat(2);
    tcp.write_all(two.as_bytes()).await.unwrap();
    for text in ["one", "two"] {
        let (head, body) = answer(&mut tcp, &mut rest).await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains("\r\ndate: "), "{head}");
        assert!(body.contains(text), "{body}");
        assert!(body.contains("response.completed"), "{body}");
    }

    // A chunked body: hyper takes the connection from here on.
    let (first, second) = BODY.split_at(20);
    let chunked = format!(
        "POST /v1/responses HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    tcp.write_all(chunked.as_bytes()).await.unwrap();
    let (head, body) = answer(&mut tcp, &mut rest).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(body.contains("three"), "{body}");

    // And it goes on serving the connection.
    tcp.write_all(with_length(addr).as_bytes()).await.unwrap();
    let (_, body) = answer(&mut tcp, &mut rest).await;
    assert!(body.contains("four"), "{body}");
    tcp.write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (head, body) = answer(&mut tcp, &mut rest).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    let bearers = fake.post_bearers();
    assert_eq!(bearers.len(), 4);
    assert!(bearers.iter().all(|b| b == "tok-work"), "{bearers:?}");
    assert!(rest.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asked_to_close_is_answered_and_closed() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    let server = start(&ctx, &codex_config(&fake, "")).await;
    fake.push(Reply::sse(answer_events("bye")));
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = with_length(addr).replace("Host:", "Connection: close\r\nHost:");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut rest = Vec::new();
    let (head, body) = answer(&mut tcp, &mut rest).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{head}"
    );
    assert!(body.contains("bye"), "{body}");
    let n = tokio::time::timeout(SECS, tcp.read(&mut [0_u8; 64]))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "the connection stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_while_its_answer_waits_releases_the_upstream() {
    let fake = FakeUpstream::start().await;
    let ctx = TestContext::new();
    seed_tokens(&ctx, &[work_token()]);
    // Long timeouts: only the client's leaving can end the exchanges.
    let config = format!(
        "providers:\n  openai-codex:\n    base_url: {}\n    timeouts: {{connect: 2, idle: 120, first_byte: 120}}\n",
        fake.codex_base()
    );
    let server = start(&ctx, &config).await;
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    // Before the answer begins (the upstream sends its head and stalls), and after (the answer's
    // first events came, then the upstream stalls).
    for (sent, left) in [(1, 1), (4, 2)] {
        let mut steps = answer_events("never");
        steps.truncate(sent);
        steps.push(Step::Stall);
        fake.push(Reply::sse(steps));
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(with_length(addr).as_bytes()).await.unwrap();
        assert!(fake.wait_posts(left, SECS).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(tcp);
        assert!(
            fake.wait_dropped(left, Duration::from_secs(3)).await,
            "the upstream exchange outlived its client ({sent} events sent)"
        );
    }
}
