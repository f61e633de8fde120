//! One client connection: HTTP/1.1 with keep-alive, of our own ([`super::h1`]) and on hyper
//! from the first request that one hands over, and the two limits that keep a connection from
//! being held without purpose. A client has `server.timeouts.header` to send a
//! request's headers (counted from the connection's start, or from the first byte of each later
//! request) and a kept-alive connection may wait `server.timeouts.idle` for its next request;
//! past either, the connection is closed. While a request is being served (its answer may
//! stream for minutes) neither applies.
//!
//! The phases come from [`Activity`]: the socket notes the first byte of a request here, the
//! route table the start of a request and the answer's body its end. One timer per connection
//! wakes only when a limit could have passed.
//!
//! With HTTPS set up ([`crate::tls`]), a connection that opens with a TLS handshake is served
//! over TLS; the sniff and the handshake count against the first request's header limit.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::activity::{Activity, HEAD, Limits};
use super::state::AppState;
use super::{h1, routes};
use crate::tls::Conn;

/// Serves one connection until it closes, a limit passes, or `shutdown` asks it to finish
/// (the request in progress completes first). `permit` is its place under the connection
/// cap, given back when it ends; a connection that became a WebSocket ends when the socket does.
pub async fn serve(
    tcp: TcpStream,
    state: Arc<AppState>,
    face: axum::Router,
    limits: Limits,
    shutdown: CancellationToken,
    permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let conn = match &state.tls {
        None => Conn::Plain(tcp),
        Some(tls) => tokio::select! {
            accepted = tls.accept(tcp) => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::debug!("client connection ended before a request: {e}");
                    return;
                }
            },
            () = watch(&activity, limits) => return,
            () = shutdown.cancelled() => return,
        },
    };
    let mut io = Watched {
        inner: conn,
        activity: activity.clone(),
        unread: BytesMut::new(),
    };
    let ended = tokio::select! {
        ended = h1::serve(&mut io, &state, &face, &activity, &shutdown) => ended,
        () = watch(&activity, limits) => h1::Ended::Closed,
    };
    let h1::Ended::Handoff(unread) = ended else {
        drop(permit);
        return;
    };
    io.unread = unread;
    let io = TokioIo::new(io);
    let service = {
        let activity = activity.clone();
        service_fn(move |req| routes::handle(state.clone(), face.clone(), activity.clone(), req))
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The limits here replace hyper's own header timeout, which also cuts idle connections.
        .header_read_timeout(None)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => finished(result),
        () = watch(&activity, limits) => {}
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            finished(conn.await);
        }
    }
    // A request upgraded the connection (a WebSocket): it is served here, in the same task, so
    // it keeps the connection's place and shutdown waits for it like for any answer.
    if let Some(then) = activity.take_then() {
        then(shutdown).await;
    }
    drop(permit);
}

fn finished(result: hyper::Result<()>) {
    if let Err(e) = result {
        tracing::debug!("client connection ended: {e}");
    }
}

/// Returns when the connection has been waiting (for headers, or for its next request) longer
/// than allowed.
async fn watch(activity: &Activity, limits: Limits) {
    loop {
        let Some((phase, since, deadline)) = activity.deadline(limits) else {
            // Busy: look again after an idle period (the answer may take long; nothing to do).
            tokio::time::sleep(limits.idle).await;
            continue;
        };
        let at = activity.epoch + Duration::from_millis(deadline);
        tokio::time::sleep_until(at.into()).await;
        let now = activity.deadline(limits);
        if now.is_some_and(|(p, s, _)| p == phase && s == since) {
            let what = if phase == HEAD {
                "sent no complete request headers"
            } else {
                "sent no new request"
            };
            let secs = Duration::from_millis(deadline - since).as_secs_f64();
            tracing::debug!("closing a client connection that {what} for {secs} s");
            return;
        }
    }
}

/// The client connection, noting when a request's first bytes arrive.
struct Watched {
    inner: Conn,
    activity: Arc<Activity>,
    /// Read already (by [`h1`], before it handed the connection to hyper), read first.
    unread: BytesMut,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.unread.is_empty() {
            let n = self.unread.len().min(buf.remaining());
            buf.put_slice(&self.unread.split_to(n));
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
