//! The same minimal proxy as `floor`'s, with HTTP/1.1 written by hand on tokio's sockets instead
//! of hyper (`httparse` reads the heads; keep-alive on both sides; a pool of idle upstream
//! connections; the answer relayed read by read, `Content-Length` or chunked), run as this
//! program re-executed with `--raw-proxy <upstream>`. Same runtime, same allocator, same JSON
//! work as the hyper proxy: the distance between the two rows is what hyper costs. It handles
//! what the benchmark sends and no more (no chunked request bodies, no `Expect`, no trailers);
//! it is a measuring stick, not a server.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Idle keep-alive connections to the upstream.
struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<TcpStream>>,
}

impl Pool {
    async fn take(&self) -> io::Result<TcpStream> {
        let idle = self.idle.lock().unwrap().pop();
        match idle {
            Some(stream) => Ok(stream),
            None => {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                Ok(stream)
            }
        }
    }

    fn give(&self, stream: TcpStream) {
        self.idle.lock().unwrap().push(stream);
    }
}

/// Serves until SIGTERM; prints the listening address on the first line of stdout.
pub(crate) fn raw_proxy_main(upstream: &str) {
    let addr: SocketAddr = upstream.parse().expect("--raw-proxy <host:port>");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let pool = Arc::new(Pool {
            addr,
            idle: Mutex::new(Vec::new()),
        });
        crate::floor::serve_until_terminated(move |stream| {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                let _ = serve(stream, &pool).await;
            });
        })
        .await;
    });
}

/// Reads more of `stream` into `buf`; the number of bytes read (0 at the end).
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    stream.read_buf(buf).await
}

/// One client connection: requests one after another until it closes.
async fn serve(mut client: TcpStream, pool: &Pool) -> io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut answer = Vec::with_capacity(16 * 1024);
    loop {
        let (head, length) = loop {
            if let Some(parsed) = request_head(&buf)? {
                break parsed;
            }
            if fill(&mut client, &mut buf).await? == 0 {
                return Ok(());
            }
        };
        while buf.len() < head + length {
            if fill(&mut client, &mut buf).await? == 0 {
                return Ok(());
            }
        }
        let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&buf[head..head + length])
        else {
            client
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await?;
            return Ok(());
        };
        buf.drain(..head + length);
        let model = json["model"].as_str().unwrap_or_default();
        let model = model.rsplit(':').next().unwrap_or_default().to_owned();
        json["model"] = model.into();
        json["store"] = false.into();
        let body = serde_json::to_vec(&json).unwrap();
        let mut request = Vec::with_capacity(body.len() + 256);
        request.extend_from_slice(
            format!(
                "POST /codex/responses HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\naccept: text/event-stream\r\nauthorization: Bearer floor-proxy-token\r\ncontent-length: {}\r\n\r\n",
                pool.addr,
                body.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(&body);
        let mut upstream = pool.take().await?;
        upstream.write_all(&request).await?;
        answer.clear();
        if relay(&mut upstream, &mut client, &mut answer).await? {
            pool.give(upstream);
        }
    }
}

/// The length of a complete request head in `buf` and its body's `Content-Length`.
fn request_head(buf: &[u8]) -> io::Result<Option<(usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(head)) => Ok(Some((head, content_length(request.headers)))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    }
}

fn content_length(headers: &[httparse::Header<'_>]) -> usize {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
        .unwrap_or(0)
}

/// How the answer's body ends.
enum Framing {
    Length(usize),
    Chunked(Chunks),
}

/// Relays one answer from `upstream` to `client` as it arrives; whether the upstream connection
/// can carry another request.
async fn relay(
    upstream: &mut TcpStream,
    client: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> io::Result<bool> {
    let (head, mut framing, keep) = loop {
        let parsed = {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(buf) {
                Ok(httparse::Status::Complete(head)) => {
                    let has = |name: &str, value: &str| {
                        response.headers.iter().any(|h| {
                            h.name.eq_ignore_ascii_case(name)
                                && std::str::from_utf8(h.value)
                                    .is_ok_and(|v| v.to_ascii_lowercase().contains(value))
                        })
                    };
                    let framing = if has("transfer-encoding", "chunked") {
                        Framing::Chunked(Chunks::default())
                    } else {
                        Framing::Length(content_length(response.headers))
                    };
                    Some((head, framing, !has("connection", "close")))
                }
                Ok(httparse::Status::Partial) => None,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        };
        match parsed {
            Some(parsed) => break parsed,
            None => {
                if fill(upstream, buf).await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
    };
    // The head and whatever of the body came with it, in one write; then each read as it comes.
    let mut start = head;
    loop {
        let (used, done) = framing.consume(&buf[start..]);
        client.write_all(&buf[..start + used]).await?;
        if done {
            return Ok(keep && start + used == buf.len());
        }
        buf.clear();
        start = 0;
        if fill(upstream, buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

impl Framing {
    /// How much of `bytes` belongs to this body, and whether the body ends there.
    fn consume(&mut self, bytes: &[u8]) -> (usize, bool) {
        match self {
            Framing::Length(left) => {
                let used = bytes.len().min(*left);
                *left -= used;
                (used, *left == 0)
            }
            Framing::Chunked(chunks) => chunks.consume(bytes),
        }
    }
}

/// Where a chunked body's reader stands.
#[derive(Default)]
struct Chunks {
    /// Data bytes left in the current chunk, with its closing CRLF.
    data: usize,
    /// The size line read so far.
    line: Vec<u8>,
    /// The last chunk was read: the body ends after its (empty) trailer line.
    last: bool,
}

impl Chunks {
    fn consume(&mut self, bytes: &[u8]) -> (usize, bool) {
        let mut at = 0;
        while at < bytes.len() {
            if self.data > 0 {
                let used = (bytes.len() - at).min(self.data);
                self.data -= used;
                at += used;
                continue;
            }
            let byte = bytes[at];
            at += 1;
            if byte != b'\n' {
                self.line.push(byte);
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let text = std::str::from_utf8(&line).unwrap_or_default().trim();
            if self.last {
                if text.is_empty() {
                    return (at, true);
                }
                continue;
            }
            let size = usize::from_str_radix(text.split(';').next().unwrap_or_default(), 16)
                .unwrap_or_default();
            if size == 0 {
                self.last = true;
            } else {
                self.data = size + 2;
            }
        }
        (at, false)
    }
}
