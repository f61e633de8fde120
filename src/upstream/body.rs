//! An upstream answer's body as a stream of chunks, each of which must come within the idle
//! timeout of being asked for; an HTTP/1.1 connection goes back to its pool when its body has
//! been read to the end.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use futures_util::StreamExt as _;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::{ByteStream, TransportError, TransportKind, classified, h1, pool, root_cause};

/// The error of a body that stopped for longer than `idle`.
fn silent_for(idle: Duration) -> TransportError {
    TransportError {
        kind: TransportKind::Timeout,
        cause: format!("nothing for {} s", idle.as_secs_f64()),
    }
}

/// The body of an answer over HTTP/1.1.
pub(super) fn own(reader: h1::BodyReader, lease: pool::Lease, idle: Duration) -> ByteStream {
    Box::pin(Chunks {
        reader: Some(reader),
        lease: Some(lease),
        idle,
        timer: None,
        waiting: false,
    })
}

/// An HTTP/1.1 answer's body, read from its connection.
struct Chunks {
    /// `None` once the body has ended or failed.
    reader: Option<h1::BodyReader>,
    lease: Option<pool::Lease>,
    idle: Duration,
    /// Made the first time the body has to wait.
    timer: Option<Pin<Box<Sleep>>>,
    /// The timer runs for the chunk being waited for.
    waiting: bool,
}

impl Stream for Chunks {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(reader) = this.reader.as_mut() else {
            return Poll::Ready(None);
        };
        match reader.poll_chunk(cx) {
            Poll::Ready(Some(Ok(data))) => {
                this.waiting = false;
                Poll::Ready(Some(Ok(data)))
            }
            Poll::Ready(None) => {
                let conn = this.reader.take().and_then(h1::BodyReader::into_reusable);
                if let (Some(conn), Some(lease)) = (conn, this.lease.take()) {
                    lease.give_back(conn);
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.reader = None;
                Poll::Ready(Some(Err(classified(TransportKind::Broken, &e))))
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = match &mut this.timer {
                    Some(timer) => {
                        if !this.waiting {
                            timer.as_mut().reset(tokio::time::Instant::now() + idle);
                        }
                        timer
                    }
                    None => this.timer.insert(Box::pin(tokio::time::sleep(idle))),
                };
                this.waiting = true;
                if timer.as_mut().poll(cx).is_ready() {
                    this.reader = None;
                    return Poll::Ready(Some(Err(silent_for(idle))));
                }
                Poll::Pending
            }
        }
    }
}

/// The body of an answer over HTTP/2 (hyper's).
pub(super) fn shared(body: Incoming, idle: Duration) -> ByteStream {
    let state = (body, Box::pin(tokio::time::sleep(idle)));
    futures_util::stream::unfold(Some(state), move |state| async move {
        let (mut body, mut timer) = state?;
        loop {
            timer.as_mut().reset(tokio::time::Instant::now() + idle);
            let frame = tokio::select! {
                frame = body.frame() => frame,
                () = &mut timer => return Some((Err(silent_for(idle)), None)),
            };
            match frame {
                None => return None,
                Some(Err(e)) => return Some((Err(body_error(&e)), None)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok(data), Some((body, timer))));
                    }
                }
            }
        }
    })
    .boxed()
}

/// A body that broke midway as a [`TransportError`].
fn body_error(err: &hyper::Error) -> TransportError {
    TransportError {
        kind: if err.is_timeout() {
            TransportKind::Timeout
        } else {
            TransportKind::Broken
        },
        cause: root_cause(err),
    }
}
