//! The body of an answer: whole bytes, or a stream of chunks passed on as they are made (never
//! buffered). A stream that fails ends the body with an I/O error, which cuts the connection:
//! the client sees a truncated answer, never a silently short one.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use http_body::{Frame, SizeHint};

/// A stream of chunks for the client.
pub type ClientStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// An answer's body.
pub enum Body {
    /// Whole bytes (taken when sent).
    Full(Option<Bytes>),
    /// Chunks as they come.
    Stream(ClientStream),
}

impl Body {
    /// A body of these bytes.
    #[must_use]
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Body::Full((!bytes.is_empty()).then_some(bytes))
    }

    /// No body.
    #[must_use]
    pub fn empty() -> Self {
        Body::Full(None)
    }

    /// A body made of this stream's chunks.
    #[must_use]
    pub fn stream(stream: ClientStream) -> Self {
        Body::Stream(stream)
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Full(bytes) => f
                .debug_tuple("Full")
                .field(&bytes.as_ref().map_or(0, Bytes::len))
                .finish(),
            Body::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(stream) => Pin::new(stream)
                .poll_next(cx)
                .map(|chunk| chunk.map(|c| c.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}
