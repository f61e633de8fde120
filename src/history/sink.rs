//! Where the request path hands its records: a [`Sink`], cheap to clone, that never waits. A
//! finished request goes into the calling thread's lane ([`super::lanes`]); a quota snapshot,
//! rare, goes over a small channel, which also wakes the writer when a lane gets its first
//! record. What cannot be queued (a full lane, a stopped writer) is counted as dropped, and the
//! first drop because the writer is behind is warned about.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};

use super::lanes::{Appended, Lanes};
use super::record::{QuotaRecord, RequestRecord};

/// What the writer thread is told over its channel (requests wait in lanes).
#[derive(Debug)]
pub(super) enum Message {
    /// A lane got its first record since the writer last collected.
    Wake,
    /// A quota snapshot.
    Quota(QuotaRecord),
    /// Finish: store what is queued and stop.
    Stop,
}

/// Counters shared by the sink and the writer, and where they write.
#[derive(Debug, Default)]
pub struct Stats {
    database: Option<PathBuf>,
    pub(super) written: AtomicU64,
    dropped: AtomicU64,
    warned_full: AtomicBool,
    /// The current trouble, for the dashboard (`None` when writing works).
    trouble: Mutex<Option<String>>,
}

impl Stats {
    /// The database records are written to (`None` when history is off).
    #[must_use]
    pub fn database(&self) -> Option<&Path> {
        self.database.as_deref()
    }

    /// Records stored so far in this run.
    #[must_use]
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Records dropped so far in this run.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Why records are not being stored right now, if they are not.
    #[must_use]
    pub fn trouble(&self) -> Option<String> {
        self.trouble
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Counters for records written to `database`.
    pub(super) fn for_database(database: PathBuf) -> Stats {
        Stats {
            database: Some(database),
            ..Stats::default()
        }
    }

    pub(super) fn drop_records(&self, n: usize) {
        self.dropped
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(super) fn set_trouble(&self, trouble: Option<String>) {
        *self
            .trouble
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = trouble;
    }
}

/// Where the request path hands its records: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Sink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    /// `None` when history is off.
    pub(super) feed: Option<Feed>,
    pub(super) stats: Stats,
}

/// The way to the writer thread.
#[derive(Debug)]
pub(super) struct Feed {
    pub(super) lanes: Lanes,
    pub(super) tx: SyncSender<Message>,
}

impl Default for Sink {
    fn default() -> Self {
        Sink::disabled()
    }
}

impl Sink {
    /// A sink that stores nothing (`history: off`, or no data directory).
    #[must_use]
    pub fn disabled() -> Sink {
        Sink {
            inner: Arc::new(Inner {
                feed: None,
                stats: Stats::default(),
            }),
        }
    }

    /// A sink feeding a writer.
    pub(super) fn feeding(inner: Arc<Inner>) -> Sink {
        Sink { inner }
    }

    /// Whether records go anywhere.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.inner.feed.is_some()
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Queues a finished request for the writer (a copy: `record` is dropped here, on the
    /// thread that made it), or counts it dropped when the writer is behind or has stopped.
    pub fn request(&self, record: RequestRecord) {
        let Some(feed) = &self.inner.feed else { return };
        match feed.lanes.append(&record) {
            Appended::More => {}
            // A full channel means the writer has messages to wake it already.
            Appended::First => drop(feed.tx.try_send(Message::Wake)),
            Appended::Full => {
                self.inner.stats.drop_records(1);
                if !self.inner.stats.warned_full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "history: the writer is behind; records are dropped (and counted) rather than slowing requests"
                    );
                }
            }
            Appended::Closed => self.inner.stats.drop_records(1),
        }
    }

    /// Hands a quota snapshot to the writer.
    pub fn quota(&self, record: QuotaRecord) {
        let Some(feed) = &self.inner.feed else { return };
        if feed.tx.try_send(Message::Quota(record)).is_err() {
            self.inner.stats.drop_records(1);
        }
    }
}
