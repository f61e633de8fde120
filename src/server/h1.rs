//! HTTP/1.1 of our own for a client connection's ordinary requests: heads read with `httparse`,
//! bodies of a declared length read whole, answers written with `Content-Length` or chunked,
//! every frame the body has ready gathered into one write. A request it does not take (an
//! upgrade, a chunked or `Expect`ing body, HTTP/1.0, `HEAD`, anything malformed or over
//! `server.max_body_bytes`) hands the connection, from that request on, to hyper, which
//! answers it as it always did ([`super::connection`]).
//!
//! While a request waits for its answer, or an answer for its next frame, the connection is read
//! too: a client that closed it ends the request at once (its upstream exchange is dropped), as
//! hyper does.

use std::io;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::task::Poll;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, EXPECT, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
use http_body::Body as _;
use http_body_util::Full;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::activity::Activity;
use super::routes;
use super::state::AppState;
use crate::upstream::headers::{has_token, write_field, write_length};

/// The most header lines a request may have here (hyper's limit too).
const MAX_HEADERS: usize = 100;
/// The longest request head read here; a longer one goes to hyper.
const MAX_HEAD: usize = 64 * 1024;
/// How much of the next requests a client may send while an answer is being written.
const MAX_AHEAD: usize = 64 * 1024;
/// How much of an answer is gathered before it is written.
const WRITE_AT: usize = 64 * 1024;

/// How the connection left this module.
pub enum Ended {
    /// It is finished: closed by the client, by an error, or by shutdown.
    Closed,
    /// hyper serves it from here; these bytes (a request's start) were read already.
    Handoff(BytesMut),
}

/// Serves requests on `io` until it closes, `shutdown` is asked for between requests, or a
/// request is one to hand over.
pub async fn serve<T>(
    io: &mut T,
    state: &Arc<AppState>,
    face: &axum::Router,
    activity: &Arc<Activity>,
    shutdown: &CancellationToken,
) -> Ended
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut out = Vec::with_capacity(8 * 1024);
    // Read once a connection, not once a request: it only decides which bodies are read here,
    // and the request path checks each body against the configuration in force.
    let limit = state.proxy.config().server.max_body_bytes;
    loop {
        let (len, head) = loop {
            match parse(&buf, limit) {
                Parsed::Head(len, head) => break (len, head),
                Parsed::Other => return Ended::Handoff(buf),
                Parsed::Partial if buf.len() > MAX_HEAD => return Ended::Handoff(buf),
                Parsed::Partial => {}
            }
            let read = tokio::select! {
                read = read_more(io, &mut buf, 0) => read,
                () = shutdown.cancelled(), if buf.is_empty() => return Ended::Closed,
            };
            if !matches!(read, Ok(1..)) {
                return Ended::Closed;
            }
        };
        // Being served from here: the header limit no longer applies, as with hyper, which
        // hands a request to the route table before its body is read.
        activity.busy();
        while buf.len() < len + head.length {
            if !matches!(read_more(io, &mut buf, len + head.length).await, Ok(1..)) {
                return Ended::Closed;
            }
        }
        buf.advance(len);
        let body = buf.split_to(head.length).freeze();
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = head.method;
        *req.uri_mut() = head.uri;
        *req.headers_mut() = head.headers;
        let handled = routes::handle(state.clone(), face.clone(), activity.clone(), req);
        // A client that goes away before its answer begins ends the request at once.
        let response = tokio::select! {
            biased;
            Ok(response) = handled => response,
            () = gone(io, &mut buf) => return Ended::Closed,
        };
        match answer(io, &mut buf, &mut out, response, head.close).await {
            Ok(true) if !head.close && !shutdown.is_cancelled() => {}
            Ok(_) => {
                let _ = io.shutdown().await;
                return Ended::Closed;
            }
            Err(e) => {
                tracing::debug!("client connection ended: {e}");
                return Ended::Closed;
            }
        }
    }
}

/// Returns when the client closes the connection (or it breaks), reading what it sends meanwhile
/// (the next requests) into `buf`, up to [`MAX_AHEAD`].
async fn gone<T: AsyncRead + Unpin>(io: &mut T, buf: &mut BytesMut) {
    loop {
        if buf.len() >= MAX_AHEAD {
            std::future::pending::<()>().await;
        }
        if !matches!(read_more(io, buf, 0).await, Ok(1..)) {
            return;
        }
    }
}

/// Reads more of the connection into `buf`, with room for `want` bytes in all.
async fn read_more<T: AsyncRead + Unpin>(
    io: &mut T,
    buf: &mut BytesMut,
    want: usize,
) -> io::Result<usize> {
    let room = want.saturating_sub(buf.len()).clamp(4 * 1024, 64 * 1024);
    if buf.capacity() - buf.len() < room / 4 {
        buf.reserve(room);
    }
    io.read_buf(buf).await
}

/// A request's head, as this module takes it.
struct Head {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// The body's length.
    length: usize,
    /// The client asked to close the connection after the answer.
    close: bool,
}

// A head is made once a request and moved once; boxing it would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Partial,
    /// A request this module hands to hyper.
    Other,
    /// A head this long.
    Head(usize, Head),
}

/// The request head at the start of `buf`, if it is one this module takes.
fn parse(buf: &[u8], max_body: usize) -> Parsed {
    if buf.is_empty() {
        return Parsed::Partial;
    }
    // Left uninitialised: the parser writes the lines it finds (filling all of them first
    // cost more than parsing a usual head).
    let mut lines = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, &mut lines) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let taken = request.version == Some(1)
        && request
            .method
            .is_some_and(|m| m != "HEAD" && m != "CONNECT");
    let (Some(method), Some(path), true) = (request.method, request.path, taken) else {
        return Parsed::Other;
    };
    let (Ok(method), Ok(uri)) = (Method::from_bytes(method.as_bytes()), path.parse::<Uri>()) else {
        return Parsed::Other;
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    let mut length = None;
    let mut close = false;
    for line in &*request.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line.name.as_bytes()),
            HeaderValue::from_bytes(line.value),
        ) else {
            return Parsed::Other;
        };
        if name == TRANSFER_ENCODING || name == EXPECT || name == UPGRADE {
            return Parsed::Other;
        }
        if name == CONTENT_LENGTH {
            let said = std::str::from_utf8(line.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
            match said {
                Some(n) if n <= max_body && length.is_none_or(|before| before == n) => {
                    length = Some(n);
                }
                _ => return Parsed::Other,
            }
        }
        if name == CONNECTION {
            close |= has_token(line.value, "close");
            if has_token(line.value, "upgrade") {
                return Parsed::Other;
            }
        }
        headers.append(name, value);
    }
    Parsed::Head(
        len,
        Head {
            method,
            uri,
            headers,
            length: length.unwrap_or(0),
            close,
        },
    )
}

/// What the answer's body gives next.
enum Next {
    Frame(Option<Result<http_body::Frame<Bytes>, routes::BodyError>>),
    /// Nothing yet: what was gathered is written first.
    Write,
}

/// Writes `response` (saying `Connection: close` when `closing`); whether the connection may
/// carry another request. `buf` takes what the client sends meanwhile; `out` is the gathering
/// buffer.
async fn answer<T>(
    io: &mut T,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    response: Response<routes::Body>,
    closing: bool,
) -> io::Result<bool>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (parts, body) = response.into_parts();
    let mut body = std::pin::pin!(body);
    let status = parts.status;
    let bodiless = status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED;
    let length = body.size_hint().exact();
    let chunked = !bodiless && length.is_none();
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    // The answer's own `Connection` says close or nothing (the rest of it is hop-by-hop).
    let mut said_close = false;
    for (name, value) in &parts.headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        if name == CONNECTION {
            if said_close || !has_token(value.as_bytes(), "close") {
                continue;
            }
            said_close = true;
        }
        write_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if closing && !said_close {
        write_field(out, b"connection", b"close");
    }
    let keep = !closing && !said_close;
    // A relayed answer keeps the upstream's `Date` (as hyper did): one `Date` only.
    if !parts.headers.contains_key(DATE) {
        super::date::with(|date| write_field(out, b"date", date));
    }
    match length {
        _ if bodiless => {}
        Some(length) => write_length(out, length),
        None => write_field(out, b"transfer-encoding", b"chunked"),
    }
    out.extend_from_slice(b"\r\n");
    loop {
        let next = std::future::poll_fn(|cx| match body.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(Next::Frame(frame)),
            Poll::Pending if !out.is_empty() => Poll::Ready(Next::Write),
            Poll::Pending => Poll::Pending,
        });
        let next = if out.is_empty() && buf.len() < MAX_AHEAD {
            // Waiting: a client that goes away ends the answer.
            tokio::select! {
                biased;
                next = next => next,
                read = read_more(io, buf, 0) => match read {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                },
            }
        } else {
            next.await
        };
        match next {
            Next::Write => write(io, out).await?,
            Next::Frame(None) => {
                if chunked {
                    out.extend_from_slice(b"0\r\n\r\n");
                }
                write(io, out).await?;
                return Ok(keep);
            }
            Next::Frame(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if bodiless || data.is_empty() {
                    continue;
                }
                if chunked {
                    chunk_size(out, data.len());
                }
                out.extend_from_slice(&data);
                if chunked {
                    out.extend_from_slice(b"\r\n");
                }
                if out.len() >= WRITE_AT {
                    write(io, out).await?;
                }
            }
            Next::Frame(Some(Err(e))) => {
                // The answer is cut: what came is sent, and the connection closed without the
                // body's end, so the client sees it short.
                write(io, out).await?;
                return Err(io::Error::other(e));
            }
        }
    }
}

async fn write<T: AsyncWrite + Unpin>(io: &mut T, out: &mut Vec<u8>) -> io::Result<()> {
    io.write_all(out).await?;
    out.clear();
    io.flush().await
}

/// Writes a chunk's size line: `len` in hexadecimal, then the line end.
fn chunk_size(out: &mut Vec<u8>, len: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 2 * std::mem::size_of::<usize>()];
    let mut at = digits.len();
    let mut rest = len;
    loop {
        at -= 1;
        digits[at] = DIGITS[rest & 0xf];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
