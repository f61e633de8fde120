//! The phase of one client connection, for its time limits: waiting for the next request,
//! receiving a request's headers, or serving a request. Two atomics per connection; the
//! socket, the route table and the answer's body each note their part. It also holds the
//! connection's place under the connection cap, given back when the last holder lets go (a
//! WebSocket the connection became outlives its HTTP part).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

/// Waiting for the next request; no byte of it yet.
pub const WAITING: u8 = 0;
/// A request's first bytes came; its headers are not complete.
pub const HEAD: u8 = 1;
/// A request is being served.
pub const BUSY: u8 = 2;

/// The phase of one connection and when it began.
#[derive(Debug)]
pub struct Activity {
    phase: AtomicU8,
    /// When the phase began, in milliseconds since `epoch`.
    since: AtomicU64,
    pub epoch: Instant,
    /// The connection's place under `server.max_connections`.
    _place: OwnedSemaphorePermit,
}

impl Activity {
    /// A connection that just opened, holding `place` under the cap: its first request's
    /// headers are awaited.
    pub fn new(place: OwnedSemaphorePermit) -> Self {
        Activity {
            phase: AtomicU8::new(HEAD),
            since: AtomicU64::new(0),
            epoch: Instant::now(),
            _place: place,
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn enter(&self, phase: u8) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
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
