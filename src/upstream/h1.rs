//! HTTP/1.1 of our own on an upstream connection: the request written in one go, the answer's
//! head read with `httparse`, and its body framed by `Content-Length`, chunks or the
//! connection's end, read by whoever reads the body, in that task. hyper's client connection
//! runs as a task of its own with a channel to each request and answer; that hop is what this
//! saves. HTTP/2 stays with hyper ([`super::pool`]).

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::headers::{has_token, is_hop_by_hop, tokens, write_field, write_length};

/// The most header lines an answer may have (hyper's limit too).
const MAX_HEADERS: usize = 100;
/// The largest answer head read.
const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size or trailer line read.
const MAX_LINE: usize = 4 * 1024;
/// Free room below which a read first makes more, and how much it makes.
const READ_ROOM: (usize, usize) = (1024, 16 * 1024);

/// A TLS connection as hyper-rustls's connector opens it, unwrapped to tokio's traits.
type TlsStream = tokio_rustls::client::TlsStream<TokioIo<TokioIo<TcpStream>>>;

/// A connection's transport.
pub(super) type Io = crate::tls::Conn<TlsStream>;

/// An HTTP/1.1 connection to an upstream, between exchanges.
pub(super) struct Conn {
    io: Io,
    /// What was read and not yet used.
    buf: BytesMut,
}

/// Why an exchange failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The connection closed or broke before any byte of an answer came. On a connection that
    /// was kept alive, that is the upstream having closed it while it was idle: the request may
    /// go again on another.
    Unanswered(io::Error),
    /// The connection broke during the answer's head.
    Io(io::Error),
    /// What came is not an HTTP/1.1 answer.
    Malformed(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unanswered(_) => f.write_str("the upstream did not answer"),
            Failure::Io(_) => f.write_str("the upstream's answer broke off"),
            Failure::Malformed(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failure::Unanswered(e) | Failure::Io(e) => Some(e),
            Failure::Malformed(_) => None,
        }
    }
}

/// An answer's head, and its body still to read.
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: BodyReader,
}

/// The head of a request: its line, `Host` unless `headers` has one, `headers` (any
/// `Content-Length` or `Transfer-Encoding` among them replaced by the body's length).
pub(super) fn request_head(
    method: &Method,
    target: &str,
    host: Option<&HeaderValue>,
    headers: &HeaderMap,
    body_len: usize,
) -> Vec<u8> {
    // Sized exactly (an `Authorization` with a ChatGPT token is some 2 KB: an estimate per
    // header grew the buffer twice, copying it each time). Each field: `name: value\r\n`.
    let fields: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    let mut head =
        Vec::with_capacity(64 + target.len() + fields + host.map_or(0, |h| h.len() + 10));
    head.extend_from_slice(method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = host
        && !headers.contains_key(HOST)
    {
        write_field(&mut head, b"host", host.as_bytes());
    }
    for (name, value) in headers {
        if name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
            write_field(&mut head, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    let says_length = body_len > 0 || [Method::POST, Method::PUT, Method::PATCH].contains(method);
    if says_length {
        write_length(&mut head, body_len);
    }
    head.extend_from_slice(b"\r\n");
    head
}

impl Conn {
    pub(super) fn new(io: Io) -> Conn {
        Conn {
            io,
            buf: BytesMut::new(),
        }
    }

    /// Whether an idle connection may carry a request: the upstream has neither closed it nor
    /// said anything on it meanwhile (a `408` before closing, say, which would otherwise be
    /// read as the next request's answer). Looks without waiting.
    pub(super) fn still_open(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.buf.is_empty() && self.poll_fill(&mut cx).is_pending()
    }

    /// Sends a request (`head` from [`request_head`], then `body`) and reads its answer's
    /// head; interim (1xx) answers are passed over.
    pub(super) async fn exchange(
        mut self,
        head: &[u8],
        body: &[u8],
        method: &Method,
    ) -> Result<Answer, Failure> {
        self.write(head, body).await.map_err(Failure::Unanswered)?;
        let mut answered = false;
        loop {
            if !self.buf.is_empty() {
                answered = true;
                match parse_head(&self.buf, method == Method::HEAD)? {
                    Parsed::Partial if self.buf.len() > MAX_HEAD => {
                        return Err(Failure::Malformed(
                            "the upstream's answer head is too large".to_owned(),
                        ));
                    }
                    Parsed::Partial => {}
                    Parsed::Interim(len) => {
                        self.buf.advance(len);
                        continue;
                    }
                    Parsed::Head(len, head) => {
                        self.buf.advance(len);
                        return Ok(Answer {
                            status: head.status,
                            headers: head.headers,
                            body: BodyReader {
                                conn: self,
                                framing: head.framing,
                                keep: head.keep,
                            },
                        });
                    }
                }
            }
            let read = std::future::poll_fn(|cx| self.poll_fill(cx)).await;
            let broke = match read {
                Ok(0) => io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the upstream closed the connection before answering",
                ),
                Ok(_) => continue,
                Err(e) => e,
            };
            return Err(if answered {
                Failure::Io(broke)
            } else {
                Failure::Unanswered(broke)
            });
        }
    }

    async fn write(&mut self, mut head: &[u8], mut body: &[u8]) -> io::Result<()> {
        while !head.is_empty() {
            let slices = [IoSlice::new(head), IoSlice::new(body)];
            let sent = self.io.write_vectored(&slices).await?;
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            if sent < head.len() {
                head = &head[sent..];
            } else {
                body = &body[sent - head.len()..];
                head = &[];
            }
        }
        self.io.write_all(body).await?;
        self.io.flush().await
    }

    /// Reads more into the buffer; the number of bytes read (0 at the connection's end).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let (least, more) = READ_ROOM;
        if self.buf.capacity() - self.buf.len() < least {
            self.buf.reserve(more);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }
}

/// A head in the buffer, or not yet all of it.
enum Parsed {
    Partial,
    /// A 1xx answer (not 101) this long, to pass over.
    Interim(usize),
    /// The answer's head, this long.
    Head(usize, Head),
}

struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    keep: bool,
}

fn malformed(what: impl std::fmt::Display) -> Failure {
    Failure::Malformed(format!("invalid HTTP answer from the upstream: {what}"))
}

fn parse_head(buf: &[u8], head_request: bool) -> Result<Parsed, Failure> {
    // Left uninitialised: the parser writes the lines it finds.
    let mut lines = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut answer = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut answer,
        buf,
        &mut lines,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(malformed(e)),
    };
    let code = answer.code.unwrap_or_default();
    let status = StatusCode::from_u16(code).map_err(malformed)?;
    if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(Parsed::Interim(len));
    }
    // HTTP/1.0 closes after each answer unless it says otherwise.
    let mut keep = answer.version == Some(1);
    let mut chunked = None;
    let mut length: Option<u64> = None;
    // Room for the headers bitrouter adds to an answer it relays (its own `x-bitrouter-*`, the
    // content type and cache control), which would otherwise grow the map, all of it again.
    let mut headers = HeaderMap::with_capacity(answer.headers.len() + 6);
    // The connection's own fields (framing, keep-alive) are read here and not kept: every
    // answer is relayed (`relayable_response_headers` would remove them again), except a switch
    // of protocols, whose `Connection` and `Upgrade` its taker reads.
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    for line in &*answer.headers {
        let name = HeaderName::from_bytes(line.name.as_bytes()).map_err(malformed)?;
        let value = HeaderValue::from_bytes(line.value).map_err(malformed)?;
        let kept = switching || !is_hop_by_hop(&name);
        if name == CONNECTION {
            if has_token(line.value, "close") {
                keep = false;
            } else if has_token(line.value, "keep-alive") && answer.version == Some(0) {
                keep = true;
            }
        } else if name == TRANSFER_ENCODING {
            chunked = tokens(line.value)
                .last()
                .map(|last| last.eq_ignore_ascii_case(b"chunked"));
        } else if name == CONTENT_LENGTH {
            let said = std::str::from_utf8(line.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| malformed("a Content-Length that is not a number"))?;
            if length.is_some_and(|before| before != said) {
                return Err(malformed("two different Content-Lengths"));
            }
            length = Some(said);
        }
        if kept {
            headers.append(name, value);
        }
    }
    let bodiless = head_request
        || status == StatusCode::SWITCHING_PROTOCOLS
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = match (bodiless, chunked, length) {
        (true, _, _) => Framing::Length(0),
        (false, Some(true), _) => Framing::Chunked(Chunk::Size),
        (false, Some(false), _) | (false, None, None) => Framing::ToEnd,
        (false, None, Some(length)) => Framing::Length(length),
    };
    if matches!(framing, Framing::ToEnd) || status == StatusCode::SWITCHING_PROTOCOLS {
        keep = false;
    }
    Ok(Parsed::Head(
        len,
        Head {
            status,
            headers,
            framing,
            keep,
        },
    ))
}

/// How an answer's body ends.
enum Framing {
    /// After this many more bytes.
    Length(u64),
    /// After the last chunk and the trailer; where the reader stands.
    Chunked(Chunk),
    /// When the connection closes.
    ToEnd,
    /// It has ended.
    Done,
}

/// Where a chunked body's reader stands.
#[derive(Clone, Copy)]
enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// In a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data, before its line end.
    DataEnd,
    /// In the trailer, after the last chunk.
    Trailer,
}

/// What the buffer gives the body next.
enum Step {
    Data(Bytes),
    End,
    /// Nothing until more is read.
    More,
}

fn bad_chunks(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid chunked body from the upstream: {what}"),
    )
}

impl Framing {
    fn step(&mut self, buf: &mut BytesMut) -> io::Result<Step> {
        loop {
            match self {
                Framing::Done => return Ok(Step::End),
                Framing::Length(0) => {
                    *self = Framing::Done;
                    return Ok(Step::End);
                }
                Framing::Length(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    return Ok(Step::Data(take(buf, left)));
                }
                Framing::ToEnd => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    return Ok(Step::Data(buf.split().freeze()));
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let data = take(buf, left);
                    if *left == 0 {
                        *self = Framing::Chunked(Chunk::DataEnd);
                    }
                    return Ok(Step::Data(data));
                }
                Framing::Chunked(at) => {
                    let Some(end) = memchr::memchr(b'\n', buf) else {
                        if buf.len() > MAX_LINE {
                            return Err(bad_chunks("a line too long"));
                        }
                        return Ok(Step::More);
                    };
                    let line = buf.split_to(end + 1);
                    let line = line[..end].trim_ascii();
                    *self = match *at {
                        Chunk::Size => match chunk_size(line)? {
                            0 => Framing::Chunked(Chunk::Trailer),
                            size => Framing::Chunked(Chunk::Data(size)),
                        },
                        Chunk::DataEnd if line.is_empty() => Framing::Chunked(Chunk::Size),
                        Chunk::DataEnd => return Err(bad_chunks("data longer than its size")),
                        Chunk::Trailer if line.is_empty() => Framing::Done,
                        Chunk::Trailer => Framing::Chunked(Chunk::Trailer),
                        Chunk::Data(_) => unreachable!("handled above"),
                    };
                }
            }
        }
    }
}

/// What `buf` holds of the `left` bytes still to come, taken off it (`left` counts them down).
fn take(buf: &mut BytesMut, left: &mut u64) -> Bytes {
    let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
    *left -= n as u64;
    buf.split_to(n).freeze()
}

/// A chunk-size line's size (any extension after `;` ignored).
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.len() <= 15)
        .and_then(|d| u64::from_str_radix(d, 16).ok())
        .ok_or_else(|| bad_chunks("a chunk size that is not a number"))
}

/// An answer's body, read from its connection.
pub(super) struct BodyReader {
    conn: Conn,
    framing: Framing,
    /// The connection may carry another exchange once the body has ended.
    keep: bool,
}

impl BodyReader {
    /// The body's next piece; `None` at its end.
    pub(super) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            match self.framing.step(&mut self.conn.buf)? {
                Step::Data(data) => return Poll::Ready(Some(Ok(data))),
                Step::End => return Poll::Ready(None),
                Step::More => {}
            }
            if ready!(self.conn.poll_fill(cx))? == 0 {
                if matches!(self.framing, Framing::ToEnd) {
                    self.framing = Framing::Done;
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the upstream closed the connection before the answer's end",
                ))));
            }
        }
    }

    /// The connection, when the body has been read to its end, nothing more came, and it may
    /// carry another exchange.
    pub(super) fn into_reusable(self) -> Option<Conn> {
        let done = matches!(self.framing, Framing::Done);
        (done && self.keep && self.conn.buf.is_empty()).then_some(self.conn)
    }
}

#[cfg(test)]
mod tests;
