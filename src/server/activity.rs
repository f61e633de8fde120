//! The phase of one client connection, for its time limits: waiting for the next request,
//! receiving a request's headers, or serving a request. Two atomics per connection; the
//! socket, the route table and the answer's body each note their part. When a request turns
//! the connection into a WebSocket, the route table leaves here what serves it next
//! ([`Activity::then`]), for the connection to run once its HTTP part is done.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// What serves a connection after an upgrade, given the server's shutdown signal.
pub type Then = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// Waiting for the next request; no byte of it yet.
pub const WAITING: u8 = 0;
/// A request's first bytes came; its headers are not complete.
pub const HEAD: u8 = 1;
/// A request is being served.
pub const BUSY: u8 = 2;

/// The phase of one connection and when it began.
pub struct Activity {
    phase: AtomicU8,
    /// When the phase began, in milliseconds since `epoch`.
    since: AtomicU64,
    pub epoch: Instant,
    /// What serves the connection once its HTTP part ends (an upgrade), if anything.
    then: Mutex<Option<Then>>,
}

impl std::fmt::Debug for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activity")
            .field("phase", &self.phase)
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

impl Activity {
    /// A connection that just opened: its first request's headers are awaited.
    pub fn new() -> Self {
        Activity {
            phase: AtomicU8::new(HEAD),
            since: AtomicU64::new(0),
            epoch: Instant::now(),
            then: Mutex::new(None),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn enter(&self, phase: u8) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// The connection becomes what `then` serves, once its HTTP part ends.
    pub fn then(&self, then: Then) {
        *self
            .then
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(then);
    }

    /// What serves the connection after its HTTP part, if a request upgraded it.
    pub fn take_then(&self) -> Option<Then> {
        self.then
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// A request's headers are complete and it is being served.
    pub fn busy(&self) {
        self.phase.store(BUSY, Ordering::Relaxed);
    }

    /// The answer ended: the connection waits for its next request.
    pub fn idle(&self) {
        self.enter(WAITING);
    }

    /// Bytes arrived: the next request has begun, if none was under way.
    pub fn read(&self) {
        if self.phase.load(Ordering::Relaxed) == WAITING {
            self.enter(HEAD);
        }
    }

    /// The current phase, when it began and when its limit passes (milliseconds since
    /// `epoch`); `None` while busy.
    pub fn deadline(&self, limits: Limits) -> Option<(u8, u64, u64)> {
        let phase = self.phase.load(Ordering::Relaxed);
        let since = self.since.load(Ordering::Relaxed);
        let limit = match phase {
            WAITING => limits.idle,
            HEAD => limits.header,
            _ => return None,
        };
        let limit = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        Some((phase, since, since.saturating_add(limit)))
    }
}

/// The time limits of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// To send a request's headers.
    pub header: Duration,
    /// To wait for the next request.
    pub idle: Duration,
}
