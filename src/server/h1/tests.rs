use super::*;

fn head(text: &str) -> Head {
    match parse(text.as_bytes(), 1024) {
        Parsed::Head(len, head) => {
            assert_eq!(len, text.len(), "{text}");
            head
        }
        Parsed::Partial => panic!("partial: {text}"),
        Parsed::Other => panic!("handed over: {text}"),
    }
}

#[test]
fn ordinary_requests_are_taken() {
    let post = head(
        "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12\r\n\
         Authorization: Bearer x\r\n\r\n",
    );
    assert_eq!(post.method, Method::POST);
    assert_eq!(post.uri, "/v1/responses");
    assert_eq!(post.length, 12);
    assert!(!post.close);
    assert_eq!(post.headers["authorization"], "Bearer x");
    let get = head("GET /health?x=1 HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n");
    assert_eq!((get.length, get.close), (0, true));
    assert_eq!(get.uri.query(), Some("x=1"));
}

#[test]
fn what_hyper_answers_better_is_handed_over() {
    for text in [
        "POST /v1/responses HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /v1/responses HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        "GET /v1/responses HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "GET /health HTTP/1.0\r\n\r\n",
        "HEAD /health HTTP/1.1\r\n\r\n",
        "POST /v1/responses HTTP/1.1\r\nContent-Length: 2048\r\n\r\n",
        "POST /v1/responses HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST /v1/responses HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "NOT HTTP\r\n\r\n",
    ] {
        assert!(
            matches!(parse(text.as_bytes(), 1024), Parsed::Other),
            "{text}"
        );
    }
    assert!(matches!(parse(b"POST /v1/resp", 1024), Parsed::Partial));
    assert!(matches!(parse(b"", 1024), Parsed::Partial));
}

/// What `answer` writes for `response`, and whether it keeps the connection.
async fn written(response: Response<routes::Body>, closing: bool) -> (String, io::Result<bool>) {
    let (mut ours, mut theirs) = tokio::io::duplex(1 << 20);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let kept = answer(&mut ours, &mut buf, &mut out, response, closing).await;
    drop(ours);
    let mut text = String::new();
    theirs.read_to_string(&mut text).await.unwrap();
    (text, kept)
}

fn without_date(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("date: "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn whole_answers_carry_their_length_and_streams_are_chunked() {
    let full = routes::Body::for_tests(crate::proxy::Body::full("hello"));
    let mut response = Response::new(full);
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    let (text, kept) = written(response, false).await;
    assert!(kept.unwrap());
    assert!(text.contains("\r\ndate: "), "{text}");
    assert_eq!(
        without_date(&text),
        "HTTP/1.1 200 OK\ncontent-type: text/plain\ncontent-length: 5\n\nhello"
    );

    let chunks =
        futures_util::stream::iter(["data: 1\n\n", "data: 22\n\n"].map(|c| Ok(Bytes::from(c))));
    let stream = crate::proxy::Body::stream(Box::pin(chunks));
    let mut response = Response::new(routes::Body::for_tests(stream));
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    let (text, kept) = written(response, false).await;
    assert!(!kept.unwrap(), "the answer said close");
    assert_eq!(
        without_date(&text),
        "HTTP/1.1 200 OK\nconnection: close\ntransfer-encoding: chunked\n\n9\ndata: 1\n\n\na\ndata: 22\n\n\n0\n"
    );
}

#[tokio::test]
async fn a_stream_that_fails_is_cut_without_its_end() {
    let chunks = futures_util::stream::iter([
        Ok(Bytes::from_static(b"part")),
        Err(io::Error::other("upstream went away")),
    ]);
    let stream = crate::proxy::Body::stream(Box::pin(chunks));
    let (text, kept) = written(Response::new(routes::Body::for_tests(stream)), false).await;
    assert!(kept.is_err());
    assert!(text.ends_with("4\r\npart\r\n"), "{text}");
}

#[tokio::test]
async fn a_client_that_asked_to_close_is_told_so() {
    let full = routes::Body::for_tests(crate::proxy::Body::full("ok"));
    let (text, kept) = written(Response::new(full), true).await;
    assert!(!kept.unwrap());
    assert_eq!(
        without_date(&text),
        "HTTP/1.1 200 OK\nconnection: close\ncontent-length: 2\n\nok"
    );
}

#[tokio::test]
async fn no_content_has_no_body_framing() {
    let mut response = Response::new(routes::Body::for_tests(crate::proxy::Body::empty()));
    *response.status_mut() = http::StatusCode::NO_CONTENT;
    let (text, kept) = written(response, false).await;
    assert!(kept.unwrap());
    assert_eq!(without_date(&text), "HTTP/1.1 204 No Content\n");
}

#[tokio::test]
async fn an_answer_that_has_a_date_keeps_it_alone() {
    let full = routes::Body::for_tests(crate::proxy::Body::full("ok"));
    let mut response = Response::new(full);
    let relayed = "Sun, 06 Nov 1994 08:49:37 GMT";
    response
        .headers_mut()
        .insert(http::header::DATE, HeaderValue::from_static(relayed));
    let (text, _) = written(response, false).await;
    let dates: Vec<&str> = text.lines().filter(|l| l.starts_with("date: ")).collect();
    assert_eq!(dates, [format!("date: {relayed}")], "{text}");
}

#[test]
fn chunk_sizes_are_written_in_hexadecimal() {
    for (len, text) in [
        (0, "0\r\n"),
        (5, "5\r\n"),
        (255, "ff\r\n"),
        (4096, "1000\r\n"),
        (usize::MAX, "ffffffffffffffff\r\n"),
    ] {
        let mut out = b"x".to_vec();
        chunk_size(&mut out, len);
        assert_eq!(out, format!("x{text}").as_bytes(), "{len}");
    }
}
