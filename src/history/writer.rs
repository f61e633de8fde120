//! Writing history off the request path: one thread stores what the request path queued
//! ([`Sink`], which never waits) in one transaction per batch. Requests wait in per-thread
//! lanes ([`super::lanes`]); when one gets its first record the writer is woken, lets records
//! gather for [`LINGER`], collects every lane and stores them. A locked, read-only or full disk
//! or a damaged file never slows or fails a request: records that cannot be stored are counted
//! as dropped, and each kind of trouble is warned about once (and once more when writing works
//! again).
//!
//! The thread opens the database itself (so a slow disk does not delay `serve`'s start), retries
//! a database it cannot open every [`REOPEN_EVERY`], keeps a batch while another process holds
//! the lock, moves a file that turns out damaged aside and starts a new one, stores a quota
//! snapshot only when it changed or [`QUOTA_EVERY`] passed, and deletes rows older than
//! `keep_days` at start and every hour. It runs at a lower priority than the serving threads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::db::{self, HistoryError};
use super::lanes::Lanes;
use super::record::QuotaRecord;
use super::sink::{Feed, Inner, Message, Sink, Stats};
use super::store::{Ids, Pending, prune, write};
use crate::clock::{unix_now, unix_now_ms};

/// Messages (quota snapshots, wake-ups) the channel holds before new ones are dropped.
pub const CHANNEL_CAPACITY: usize = 1024;
/// How long the writer lets records gather once it has been woken.
const LINGER: Duration = Duration::from_millis(100);
/// Most records kept while the database is locked by another process.
const MAX_PENDING: usize = 65_536;
/// How often a database that could not be opened is tried again.
pub const REOPEN_EVERY: Duration = Duration::from_secs(30);
/// How often old rows are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// An unchanged quota is stored again after this long (so trends have points).
const QUOTA_EVERY: Duration = Duration::from_secs(300);
/// How long the thread sleeps when idle before it looks at the clock.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// What the writer thread needs.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// The database file.
    pub path: PathBuf,
    /// Rows older than this many days are deleted.
    pub keep_days: u32,
    /// Messages the channel holds.
    pub capacity: usize,
}

/// The running writer thread.
#[derive(Debug)]
pub struct Writer {
    thread: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    tx: SyncSender<Message>,
    inner: Arc<Inner>,
}

/// Starts the writer thread; the sink feeds it.
///
/// # Errors
///
/// When the thread cannot be spawned.
pub fn start(options: WriterOptions) -> std::io::Result<(Sink, Writer)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(options.capacity.max(1));
    let inner = Arc::new(Inner {
        feed: Some(Feed {
            lanes: Lanes::new(),
            tx: tx.clone(),
        }),
        stats: Stats::for_database(options.path.clone()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::Builder::new().name("history".into()).spawn({
        let inner = inner.clone();
        let stop = stop.clone();
        move || {
            lower_priority();
            Thread::new(options, rx, inner, stop).run();
        }
    })?;
    Ok((
        Sink::feeding(inner.clone()),
        Writer {
            thread,
            stop,
            tx,
            inner,
        },
    ))
}

impl Writer {
    /// Stores what is queued and stops, waiting at most `within` (a locked database must not
    /// hold up shutdown). Returns whether the thread finished in time.
    pub fn stop(self, within: Duration) -> bool {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.tx.try_send(Message::Stop);
        let deadline = Instant::now() + within;
        while !self.thread.is_finished() {
            if Instant::now() >= deadline {
                tracing::warn!(
                    "history: the writer did not finish within {} s; the last records may be lost",
                    within.as_secs()
                );
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.thread.join();
        let dropped = self.inner.stats.dropped();
        if dropped > 0 {
            tracing::warn!("history: {dropped} records were dropped in this run");
        }
        true
    }
}

/// The writer's nice value: when the CPU is busy, requests come first and the writer catches
/// up. (At 10 a saturated two-core machine gave it too small a share to keep up with tens of
/// thousands of requests a second; at 5 it keeps up.)
#[cfg(target_os = "linux")]
const WRITER_NICE: i32 = 5;

/// Lowers the calling thread's scheduling priority (Linux sets niceness per thread; elsewhere
/// it would apply to the whole process, so it is left alone).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(None, WRITER_NICE) {
        tracing::debug!("history: cannot lower the writer's priority: {e}");
    }
}

/// The writer thread's state.
struct Thread {
    options: WriterOptions,
    rx: Receiver<Message>,
    inner: Arc<Inner>,
    stop: Arc<AtomicBool>,
    db: Option<Connection>,
    /// Agent and target ids of the open database.
    ids: Ids,
    /// The last attempt to open found the database locked (records wait rather than drop).
    open_busy: bool,
    next_open: Instant,
    next_prune: Instant,
    pending: Pending,
    /// Emptied buffers, given back to the lanes when collecting.
    spares: Vec<Vec<u8>>,
    /// The last quota stored per (provider, account), with when.
    quotas: HashMap<(String, String), QuotaRecord>,
    /// The trouble last warned about, so each kind is warned about once.
    warned: Option<String>,
}

impl Thread {
    fn new(
        options: WriterOptions,
        rx: Receiver<Message>,
        inner: Arc<Inner>,
        stop: Arc<AtomicBool>,
    ) -> Thread {
        let now = Instant::now();
        Thread {
            options,
            rx,
            inner,
            stop,
            db: None,
            ids: Ids::default(),
            open_busy: false,
            next_open: now,
            next_prune: now,
            pending: Pending::default(),
            spares: Vec::new(),
            quotas: HashMap::new(),
            warned: None,
        }
    }

    fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    fn run(mut self) {
        loop {
            let stopping = self.gather();
            self.flush();
            if stopping && self.pending.is_empty() {
                break;
            }
            if stopping && self.db.is_none() {
                // Records wait for a locked database: try again when it is due, not in a spin.
                std::thread::sleep(
                    self.next_open
                        .saturating_duration_since(Instant::now())
                        .min(IDLE_TICK),
                );
            }
        }
    }

    /// Waits to be woken (up to [`IDLE_TICK`] when nothing is pending, or until the database
    /// may be opened again when records wait for it), lets records gather for [`LINGER`], then
    /// takes the messages and the lanes' records. Returns whether the thread is to stop (then
    /// the lanes are closed first, so this collection is the last).
    fn gather(&mut self) -> bool {
        let wait = if self.stop.load(Ordering::Relaxed) {
            Duration::ZERO
        } else if self.pending.is_empty() {
            IDLE_TICK
        } else if self.db.is_none() {
            self.next_open
                .saturating_duration_since(Instant::now())
                .min(IDLE_TICK)
        } else {
            Duration::ZERO
        };
        let mut woken = false;
        if !wait.is_zero() {
            match self.rx.recv_timeout(wait) {
                Ok(message) => {
                    self.take(message);
                    woken = true;
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Every sender is gone: only the writer's own handle holds one, so this is the end.
                Err(RecvTimeoutError::Disconnected) => self.stop.store(true, Ordering::Relaxed),
            }
        }
        if woken && self.db.is_some() && !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(LINGER);
        }
        self.take_messages();
        let stopping = self.stop.load(Ordering::Relaxed);
        let Some(feed) = &self.inner.feed else {
            return stopping;
        };
        if stopping {
            feed.lanes.close();
        }
        // The last collection (when stopping) takes everything, so no record is left behind.
        if stopping || self.pending.len() < MAX_PENDING {
            let collected = feed.lanes.collect(&mut self.spares);
            self.pending.requests.extend(collected.buffers);
        }
        stopping
    }

    /// Takes the messages waiting, without waiting.
    fn take_messages(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(message) => self.take(message),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    fn take(&mut self, message: Message) {
        match message {
            Message::Wake => {}
            Message::Stop => self.stop.store(true, Ordering::Relaxed),
            Message::Quota(q) => {
                if self.quota_is_new(&q) {
                    self.pending.quotas.push(q);
                }
            }
        }
    }

    /// Whether a quota snapshot differs from the last one stored for its account, or the last
    /// one is older than [`QUOTA_EVERY`].
    fn quota_is_new(&mut self, q: &QuotaRecord) -> bool {
        let key = (q.provider.clone(), q.account.clone());
        let every = i64::try_from(QUOTA_EVERY.as_millis()).unwrap_or(i64::MAX);
        match self.quotas.get(&key) {
            Some(last) if last.same_quota(q) && q.at_ms - last.at_ms < every => false,
            _ => {
                self.quotas.insert(key, q.clone());
                true
            }
        }
    }

    /// Writes what is pending, opening the database first when needed.
    fn flush(&mut self) {
        if self.db.is_none() && Instant::now() >= self.next_open {
            self.open();
        }
        let Some(conn) = self.db.as_mut() else {
            // Records wait for a database that is only locked; otherwise they are lost.
            if !self.open_busy || self.pending.len() >= MAX_PENDING {
                self.drop_pending();
            }
            return;
        };
        if Instant::now() >= self.next_prune {
            self.next_prune = Instant::now() + PRUNE_EVERY;
            if let Err(e) = prune(conn, self.options.keep_days, unix_now_ms(), &mut self.ids) {
                tracing::debug!("history: cannot delete old rows: {e}");
            }
        }
        if self.pending.is_empty() {
            return;
        }
        match write(conn, &self.pending, &mut self.ids) {
            Ok(n) => {
                self.inner
                    .stats
                    .written
                    .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
                self.pending.clear(&mut self.spares);
                self.recovered();
            }
            Err(e) if db::is_busy(&e) => {
                self.trouble(&format!(
                    "{} is locked by another process; keeping records until it is free",
                    self.options.path.display()
                ));
                if self.pending.len() >= MAX_PENDING {
                    self.drop_pending();
                }
            }
            Err(e) if db::is_corrupt(&e) => {
                self.db = None;
                self.recover_from_damage(&e);
            }
            Err(e) => {
                self.trouble(&format!(
                    "cannot write {}: {e}",
                    self.options.path.display()
                ));
                self.drop_pending();
                // A read-only file or a full disk may be fixed: open afresh later.
                self.db = None;
                self.next_open = Instant::now() + REOPEN_EVERY;
            }
        }
    }

    /// Counts what is pending as dropped and lets it go.
    fn drop_pending(&mut self) {
        self.inner.stats.drop_records(self.pending.len());
        self.pending.clear(&mut self.spares);
    }

    fn open(&mut self) {
        self.open_busy = false;
        // Ids belong to the file they were read from.
        self.ids.forget();
        match db::open_for_writing(&self.options.path, unix_now()) {
            Ok(opened) => {
                if let Some(aside) = opened.moved_aside {
                    tracing::warn!(
                        "history: {} was damaged; moved it to {} and started a new one",
                        self.options.path.display(),
                        aside.display()
                    );
                }
                self.db = Some(opened.conn);
            }
            Err(e) => {
                let busy = e.is_busy();
                self.open_busy = busy;
                self.trouble(&describe(&e));
                self.next_open = Instant::now()
                    + if busy {
                        Duration::from_millis(200)
                    } else {
                        REOPEN_EVERY
                    };
            }
        }
    }

    fn recover_from_damage(&mut self, e: &rusqlite::Error) {
        match db::move_aside(&self.options.path, unix_now()) {
            Ok(aside) => tracing::warn!(
                "history: {} turned out damaged ({e}); moved it to {} and starting a new one",
                self.options.path.display(),
                aside.display()
            ),
            Err(err) => self.trouble(&format!("{err}: {e}")),
        }
        self.next_open = Instant::now();
    }

    /// Warns about a kind of trouble the first time it is seen.
    fn trouble(&mut self, message: &str) {
        self.stats().set_trouble(Some(message.to_owned()));
        if self.warned.as_deref() != Some(message) {
            tracing::warn!(
                "history: {message}; requests go on, records that cannot be stored are dropped"
            );
            self.warned = Some(message.to_owned());
        }
    }

    fn recovered(&mut self) {
        if self.warned.take().is_some() {
            self.stats().set_trouble(None);
            tracing::info!(
                target: "bitrouter::serve",
                "history: writing to {} again ({} records dropped so far)",
                self.options.path.display(),
                self.stats().dropped()
            );
        }
    }
}

/// The error and its cause on one line.
fn describe(e: &HistoryError) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests;
