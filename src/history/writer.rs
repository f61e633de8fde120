//! Writing history off the request path: a [`Sink`] hands each record to a bounded channel
//! without waiting, and one writer thread stores whatever has arrived (letting records gather
//! for [`LINGER`] when the channel runs empty) in one transaction. A
//! full channel, a locked, read-only or full disk, or a damaged file never slows or fails a
//! request: records that cannot be stored are counted as dropped, and each kind of trouble is
//! warned about once (and once more when writing works again).
//!
//! The thread opens the database itself (so a slow disk does not delay `serve`'s start), retries
//! a database it cannot open every [`REOPEN_EVERY`], keeps a batch while another process holds
//! the lock, moves a file that turns out damaged aside and starts a new one, stores a quota
//! snapshot only when it changed or [`QUOTA_EVERY`] passed, and deletes rows older than
//! `keep_days` at start and every hour.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::db::{self, HistoryError};
use super::packed::PackedRequest;
use super::record::{QuotaRecord, RequestRecord};
use super::store::{Agents, Entry, prune, write};
use crate::clock::{unix_now, unix_now_ms};

/// Records the channel holds before new ones are dropped.
pub const CHANNEL_CAPACITY: usize = 8192;
/// Most records taken from the channel at once.
const BATCH: usize = 4096;
/// How long the writer lets records gather after it has taken all there were.
const LINGER: Duration = Duration::from_millis(100);
/// Most records kept while the database is locked by another process.
const MAX_PENDING: usize = 16_384;
/// How often a database that could not be opened is tried again.
pub const REOPEN_EVERY: Duration = Duration::from_secs(30);
/// How often old rows are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// An unchanged quota is stored again after this long (so trends have points).
const QUOTA_EVERY: Duration = Duration::from_secs(300);
/// How long the thread sleeps when idle before it looks at the clock.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// Counters shared by the sink and the writer, and where they write.
#[derive(Debug, Default)]
pub struct Stats {
    database: Option<PathBuf>,
    written: AtomicU64,
    dropped: AtomicU64,
    warned_full: AtomicBool,
    /// The current trouble, for the dashboard (`None` when writing works).
    trouble: Mutex<Option<String>>,
}

impl Stats {
    /// The database records are written to (`None` when history is off).
    #[must_use]
    pub fn database(&self) -> Option<&std::path::Path> {
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

    fn drop_records(&self, n: usize) {
        self.dropped
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn set_trouble(&self, trouble: Option<String>) {
        *self
            .trouble
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = trouble;
    }
}

/// Where the request path hands its records: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Sink {
    tx: Option<SyncSender<Entry>>,
    stats: Arc<Stats>,
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
            tx: None,
            stats: Arc::new(Stats::default()),
        }
    }

    /// Whether records go anywhere.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Hands a finished request to the writer (a packed copy: `record` is dropped here), or
    /// counts it dropped when the writer is behind.
    pub fn request(&self, record: RequestRecord) {
        if self.tx.is_some() {
            self.send(Entry::Request(PackedRequest::pack(&record)));
        }
    }

    /// Hands a quota snapshot to the writer.
    pub fn quota(&self, record: QuotaRecord) {
        self.send(Entry::Quota(record));
    }

    fn send(&self, entry: Entry) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.stats.drop_records(1);
                if !self.stats.warned_full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "history: the writer is behind; records are dropped (and counted) rather than slowing requests"
                    );
                }
            }
            // The writer has stopped (shutdown): nothing to store it in.
            Err(TrySendError::Disconnected(_)) => self.stats.drop_records(1),
        }
    }
}

/// What the writer thread needs.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// The database file.
    pub path: PathBuf,
    /// Rows older than this many days are deleted.
    pub keep_days: u32,
    /// Records the channel holds.
    pub capacity: usize,
}

/// The running writer thread.
#[derive(Debug)]
pub struct Writer {
    thread: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    tx: SyncSender<Entry>,
    stats: Arc<Stats>,
}

/// Starts the writer thread; the sink feeds it.
///
/// # Errors
///
/// When the thread cannot be spawned.
pub fn start(options: WriterOptions) -> std::io::Result<(Sink, Writer)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(options.capacity.max(1));
    let stats = Arc::new(Stats {
        database: Some(options.path.clone()),
        ..Stats::default()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::Builder::new().name("history".into()).spawn({
        let stats = stats.clone();
        let stop = stop.clone();
        move || {
            lower_priority();
            Thread::new(options, rx, stats, stop).run();
        }
    })?;
    let sink = Sink {
        tx: Some(tx.clone()),
        stats: stats.clone(),
    };
    Ok((
        sink,
        Writer {
            thread,
            stop,
            tx,
            stats,
        },
    ))
}

impl Writer {
    /// Stores what is queued and stops, waiting at most `within` (a locked database must not
    /// hold up shutdown). Returns whether the thread finished in time.
    pub fn stop(self, within: Duration) -> bool {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.tx.try_send(Entry::Stop);
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
        let dropped = self.stats.dropped();
        if dropped > 0 {
            tracing::warn!("history: {dropped} records were dropped in this run");
        }
        true
    }
}

/// What one [`Thread::gather`] saw of the channel.
struct Gathered {
    /// The channel was empty when it stopped taking.
    drained: bool,
    /// Every sender is gone.
    disconnected: bool,
}

/// The writer's nice value: when the CPU is busy, requests come first and the writer catches
/// up (a niceness of 10 still gets about a tenth of a busy CPU, far more than it needs).
#[cfg(target_os = "linux")]
const WRITER_NICE: i32 = 10;

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
    rx: Receiver<Entry>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    db: Option<Connection>,
    /// The last attempt to open found the database locked (records wait rather than drop).
    open_busy: bool,
    next_open: Instant,
    next_prune: Instant,
    pending: Vec<Entry>,
    /// The last quota stored per (provider, account), with when.
    quotas: HashMap<(String, String), QuotaRecord>,
    /// The trouble last warned about, so each kind is warned about once.
    warned: Option<String>,
    agents: Agents,
}

impl Thread {
    fn new(
        options: WriterOptions,
        rx: Receiver<Entry>,
        stats: Arc<Stats>,
        stop: Arc<AtomicBool>,
    ) -> Thread {
        let now = Instant::now();
        Thread {
            options,
            rx,
            stats,
            stop,
            db: None,
            open_busy: false,
            next_open: now,
            next_prune: now,
            pending: Vec::new(),
            quotas: HashMap::new(),
            warned: None,
            agents: Agents::default(),
        }
    }

    fn run(mut self) {
        loop {
            let gathered = self.gather();
            let stopping = gathered.disconnected || self.stop.load(Ordering::Relaxed);
            self.flush();
            if stopping && gathered.drained && self.pending.is_empty() {
                break;
            }
            if stopping && self.db.is_none() && !self.pending.is_empty() {
                // Records wait for a locked database: try again when it is due, not in a spin.
                std::thread::sleep(
                    self.next_open
                        .saturating_duration_since(Instant::now())
                        .min(IDLE_TICK),
                );
            }
        }
    }

    /// Waits for records (up to [`IDLE_TICK`] when there are none, or until the database may be
    /// opened again when records wait for it) and takes what has arrived, up to one batch. When
    /// that empties the channel, it sleeps [`LINGER`] and takes what arrived meanwhile, so a busy
    /// server commits a few times a second rather than once per request (each commit rewrites
    /// whole pages) and senders never wake the thread while it lingers.
    fn gather(&mut self) -> Gathered {
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
        if !wait.is_zero() {
            match self.rx.recv_timeout(wait) {
                Ok(entry) => self.take(entry),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Gathered {
                        drained: true,
                        disconnected: true,
                    };
                }
            }
        }
        let gathered = self.drain();
        if gathered.drained
            && !gathered.disconnected
            && !self.pending.is_empty()
            && self.db.is_some()
            && !self.stop.load(Ordering::Relaxed)
        {
            std::thread::sleep(LINGER);
            return self.drain();
        }
        gathered
    }

    /// Takes what is in the channel without waiting, until a batch is full.
    fn drain(&mut self) -> Gathered {
        let mut taken = 0;
        while taken < BATCH && self.pending.len() < MAX_PENDING {
            match self.rx.try_recv() {
                Ok(entry) => {
                    self.take(entry);
                    taken += 1;
                }
                Err(TryRecvError::Empty) => {
                    return Gathered {
                        drained: true,
                        disconnected: false,
                    };
                }
                Err(TryRecvError::Disconnected) => {
                    return Gathered {
                        drained: true,
                        disconnected: true,
                    };
                }
            }
        }
        Gathered {
            drained: false,
            disconnected: false,
        }
    }

    fn take(&mut self, entry: Entry) {
        match entry {
            Entry::Stop => {}
            Entry::Quota(q) if !self.quota_is_new(&q) => {}
            entry => self.pending.push(entry),
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
                self.stats.drop_records(self.pending.len());
                self.pending.clear();
            }
            return;
        };
        if Instant::now() >= self.next_prune {
            self.next_prune = Instant::now() + PRUNE_EVERY;
            if let Err(e) = prune(conn, self.options.keep_days, unix_now_ms()) {
                tracing::debug!("history: cannot delete old rows: {e}");
            }
        }
        if self.pending.is_empty() {
            return;
        }
        match write(conn, &self.pending, &mut self.agents) {
            Ok(n) => {
                self.stats
                    .written
                    .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
                self.pending.clear();
                self.recovered();
            }
            Err(e) if db::is_busy(&e) => {
                self.trouble(&format!(
                    "{} is locked by another process; keeping records until it is free",
                    self.options.path.display()
                ));
                if self.pending.len() >= MAX_PENDING {
                    self.stats.drop_records(self.pending.len());
                    self.pending.clear();
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
                self.stats.drop_records(self.pending.len());
                self.pending.clear();
                // A read-only file or a full disk may be fixed: open afresh later.
                self.db = None;
                self.next_open = Instant::now() + REOPEN_EVERY;
            }
        }
    }

    fn open(&mut self) {
        self.open_busy = false;
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
        self.stats.set_trouble(Some(message.to_owned()));
        if self.warned.as_deref() != Some(message) {
            tracing::warn!(
                "history: {message}; requests go on, records that cannot be stored are dropped"
            );
            self.warned = Some(message.to_owned());
        }
    }

    fn recovered(&mut self) {
        if self.warned.take().is_some() {
            self.stats.set_trouble(None);
            tracing::info!(
                target: "bitrouter::serve",
                "history: writing to {} again ({} records dropped so far)",
                self.options.path.display(),
                self.stats.dropped()
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
