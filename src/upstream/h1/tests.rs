use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use super::*;

/// `bytes` framed by `framing`, fed to it in pieces of `piece` bytes: the data, and whether the
/// body ended.
fn unframe(mut framing: Framing, bytes: &[u8], piece: usize) -> io::Result<(Vec<u8>, bool)> {
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    for part in bytes.chunks(piece.max(1)) {
        buf.extend_from_slice(part);
        loop {
            match framing.step(&mut buf)? {
                Step::Data(d) => data.extend_from_slice(&d),
                Step::End => return Ok((data, true)),
                Step::More => break,
            }
        }
    }
    Ok((data, false))
}

#[test]
fn chunks_are_read_whatever_pieces_they_come_in() {
    let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
    for piece in [1, 2, 3, 7, 64] {
        let (data, ended) = unframe(Framing::Chunked(Chunk::Size), body, piece).unwrap();
        assert_eq!(data, b"hello, world", "pieces of {piece}");
        assert!(ended);
    }
    // Bare LF line ends are taken too.
    let (data, ended) = unframe(Framing::Chunked(Chunk::Size), b"3\nabc\n0\n\n", 4).unwrap();
    assert_eq!((data.as_slice(), ended), (&b"abc"[..], true));
}

#[test]
fn a_chunked_body_cut_short_has_not_ended() {
    let (data, ended) = unframe(Framing::Chunked(Chunk::Size), b"5\r\nhel", 64).unwrap();
    assert_eq!((data.as_slice(), ended), (&b"hel"[..], false));
}

#[test]
fn bad_chunks_are_errors() {
    for body in [&b"zz\r\n"[..], b"5\r\nhello!!\r\n", b"\r\n"] {
        let err = unframe(Framing::Chunked(Chunk::Size), body, 64).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{body:?}");
    }
    let long = vec![b'1'; MAX_LINE + 10];
    assert!(unframe(Framing::Chunked(Chunk::Size), &long, 64).is_err());
}

#[test]
fn a_length_body_ends_at_its_length() {
    let (data, ended) = unframe(Framing::Length(5), b"hello", 2).unwrap();
    assert_eq!((data.as_slice(), ended), (&b"hello"[..], true));
    let (data, ended) = unframe(Framing::Length(0), b"", 1).unwrap();
    assert!(data.is_empty() && !ended, "nothing fed, nothing stepped");
    let mut empty = Framing::Length(0);
    assert!(matches!(empty.step(&mut BytesMut::new()), Ok(Step::End)));
}

fn head(text: &str, head_request: bool) -> Head {
    match parse_head(text.as_bytes(), head_request) {
        Ok(Parsed::Head(len, head)) => {
            assert_eq!(len, text.len());
            head
        }
        Ok(Parsed::Partial) => panic!("partial: {text}"),
        Ok(Parsed::Interim(_)) => panic!("interim: {text}"),
        Err(e) => panic!("{e}: {text}"),
    }
}

#[test]
fn heads_say_how_the_body_ends_and_whether_the_connection_stays() {
    let chunked = head(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        false,
    );
    assert!(matches!(chunked.framing, Framing::Chunked(Chunk::Size)) && chunked.keep);
    assert_eq!(chunked.headers["content-type"], "text/event-stream");
    // The connection's own fields are read, not kept; a switch of protocols keeps them.
    assert!(!chunked.headers.contains_key("transfer-encoding"));
    let switch = head(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        false,
    );
    assert_eq!(switch.headers["upgrade"], "websocket");
    assert_eq!(switch.headers["connection"], "Upgrade");

    let length = head(
        "HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n\r\n",
        false,
    );
    assert!(matches!(length.framing, Framing::Length(12)) && length.keep);
    assert_eq!(length.status, StatusCode::NOT_FOUND);

    let close = head(
        "HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 2\r\n\r\n",
        false,
    );
    assert!(!close.keep);
    assert!(close.headers.is_empty(), "{:?}", close.headers);
    let to_end = head("HTTP/1.1 200 OK\r\n\r\n", false);
    assert!(matches!(to_end.framing, Framing::ToEnd) && !to_end.keep);
    let old = head("HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n", false);
    assert!(!old.keep);
    let old_kept = head(
        "HTTP/1.0 200 OK\r\nconnection: Keep-Alive\r\ncontent-length: 2\r\n\r\n",
        false,
    );
    assert!(old_kept.keep);
    let gzip_chunked = head(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
        false,
    );
    assert!(matches!(gzip_chunked.framing, Framing::Chunked(_)));

    let to_head = head("HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n", true);
    assert!(matches!(to_head.framing, Framing::Length(0)) && to_head.keep);
    let none = head("HTTP/1.1 204 No Content\r\n\r\n", false);
    assert!(matches!(none.framing, Framing::Length(0)) && none.keep);
}

#[test]
fn interim_answers_are_passed_over_and_bad_heads_refused() {
    let text = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n";
    assert!(matches!(parse_head(text, false), Ok(Parsed::Interim(25))));
    assert!(matches!(
        parse_head(b"HTTP/1.1 200 OK\r\ncontent-le", false),
        Ok(Parsed::Partial)
    ));
    for bad in [
        "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
    ] {
        assert!(
            matches!(
                parse_head(bad.as_bytes(), false),
                Err(Failure::Malformed(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn request_heads_carry_host_and_the_body_length_once() {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Bearer t"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from_static("999"));
    let host = HeaderValue::from_static("127.0.0.1:9");
    let head = request_head(&Method::POST, "/v1/responses?x=1", Some(&host), &headers, 7);
    assert_eq!(
        String::from_utf8(head).unwrap(),
        "POST /v1/responses?x=1 HTTP/1.1\r\nhost: 127.0.0.1:9\r\nauthorization: Bearer t\r\n\
         content-length: 7\r\n\r\n"
    );
    headers.insert(HOST, HeaderValue::from_static("other"));
    let head = request_head(&Method::GET, "/models", Some(&host), &headers, 0);
    assert_eq!(
        String::from_utf8(head).unwrap(),
        "GET /models HTTP/1.1\r\nauthorization: Bearer t\r\nhost: other\r\n\r\n"
    );
}

/// A server that answers each connection's requests with `answers` in turn, written as they
/// are; what it read is kept.
async fn server(answers: Vec<&'static [u8]>) -> (Conn, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut chunk = [0_u8; 4096];
        for answer in answers {
            let n = socket.read(&mut chunk).await.unwrap();
            kept.lock().await.extend_from_slice(&chunk[..n]);
            socket.write_all(answer).await.unwrap();
        }
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    (Conn::new(Io::Plain(stream)), seen)
}

async fn read_body(mut body: BodyReader) -> (io::Result<Vec<u8>>, Option<Conn>) {
    let mut data = Vec::new();
    loop {
        match std::future::poll_fn(|cx| body.poll_chunk(cx)).await {
            Some(Ok(chunk)) => data.extend_from_slice(&chunk),
            Some(Err(e)) => return (Err(e), None),
            None => return (Ok(data), body.into_reusable()),
        }
    }
}

#[tokio::test]
async fn a_connection_carries_exchanges_one_after_another() {
    let (conn, seen) = server(vec![
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\ndone",
    ])
    .await;
    let head = request_head(&Method::POST, "/a", None, &HeaderMap::new(), 2);
    let answer = conn.exchange(&head, b"{}", &Method::POST).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let (data, conn) = read_body(answer.body).await;
    assert_eq!(data.unwrap(), b"ok");
    let answer = conn
        .expect("kept")
        .exchange(&head, b"{}", &Method::POST)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::CREATED);
    let (data, conn) = read_body(answer.body).await;
    assert_eq!(data.unwrap(), b"done");
    assert!(conn.is_some());
    let seen = seen.lock().await.clone();
    let request = b"POST /a HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}";
    assert_eq!(seen, [&request[..], request].concat());
}

#[tokio::test]
async fn a_connection_closed_before_answering_is_unanswered_and_mid_body_is_broken() {
    let (conn, _) = server(vec![b""]).await;
    let head = request_head(&Method::GET, "/", None, &HeaderMap::new(), 0);
    let failure = conn.exchange(&head, b"", &Method::GET).await.err().unwrap();
    assert!(matches!(failure, Failure::Unanswered(_)), "{failure:?}");

    let (conn, _) = server(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"]).await;
    let answer = conn.exchange(&head, b"", &Method::GET).await.unwrap();
    let (data, conn) = read_body(answer.body).await;
    assert_eq!(data.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    assert!(conn.is_none());

    let (conn, _) = server(vec![b"HTTP/1.1 200 O"]).await;
    let failure = conn.exchange(&head, b"", &Method::GET).await.err().unwrap();
    assert!(matches!(failure, Failure::Io(_)), "{failure:?}");
}

#[tokio::test]
async fn a_body_to_the_connections_end_ends_with_it_and_closes_it() {
    let (conn, _) = server(vec![b"HTTP/1.1 200 OK\r\n\r\nall of it"]).await;
    let head = request_head(&Method::GET, "/", None, &HeaderMap::new(), 0);
    let answer = conn.exchange(&head, b"", &Method::GET).await.unwrap();
    let (data, conn) = read_body(answer.body).await;
    assert_eq!(data.unwrap(), b"all of it");
    assert!(conn.is_none());
}

mod any_chunking {
    use proptest::prelude::*;

    use super::*;

    /// `pieces` as a chunked body: each a chunk (some with an extension), the last chunk, and
    /// `trailers`.
    fn chunked(pieces: &[Vec<u8>], extension: bool, trailers: &[String]) -> Vec<u8> {
        let mut wire = Vec::new();
        for piece in pieces.iter().filter(|p| !p.is_empty()) {
            let ext = if extension { ";name=value" } else { "" };
            wire.extend_from_slice(format!("{:X}{ext}\r\n", piece.len()).as_bytes());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n");
        for trailer in trailers {
            wire.extend_from_slice(format!("x-{trailer}: 1\r\n").as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        wire
    }

    proptest! {
        #[test]
        fn a_chunked_body_reads_back_whole_however_it_arrives(
            pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
            extension in any::<bool>(),
            trailers in proptest::collection::vec("[a-z]{1,8}", 0..3),
            piece in 1_usize..40,
            after in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let mut wire = chunked(&pieces, extension, &trailers);
            let body_len = wire.len();
            // What follows the body (the next answer) is left where it is.
            wire.extend_from_slice(&after);
            let mut framing = Framing::Chunked(Chunk::Size);
            let mut buf = BytesMut::new();
            let mut data = Vec::new();
            let mut fed = 0;
            let mut ended = false;
            for part in wire.chunks(piece) {
                buf.extend_from_slice(part);
                fed += part.len();
                loop {
                    match framing.step(&mut buf).unwrap() {
                        Step::Data(d) => data.extend_from_slice(&d),
                        Step::End => { ended = true; break; }
                        Step::More => break,
                    }
                }
                if ended {
                    break;
                }
            }
            prop_assert!(ended);
            prop_assert_eq!(data, pieces.concat());
            prop_assert_eq!(fed - buf.len(), body_len);
        }

        #[test]
        fn a_length_body_takes_its_length_and_no_more(
            body in proptest::collection::vec(any::<u8>(), 0..500),
            after in proptest::collection::vec(any::<u8>(), 0..20),
            piece in 1_usize..64,
        ) {
            let wire = [body.as_slice(), &after].concat();
            let mut framing = Framing::Length(body.len() as u64);
            let mut buf = BytesMut::new();
            let mut data = Vec::new();
            let mut ended = matches!(framing.step(&mut buf).unwrap(), Step::End);
            for part in wire.chunks(piece) {
                if ended {
                    break;
                }
                buf.extend_from_slice(part);
                loop {
                    match framing.step(&mut buf).unwrap() {
                        Step::Data(d) => data.extend_from_slice(&d),
                        Step::End => { ended = true; break; }
                        Step::More => break,
                    }
                }
            }
            prop_assert!(ended);
            prop_assert_eq!(data, body);
        }
    }
}
