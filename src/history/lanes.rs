//! Where finished requests wait for the writer thread: each thread that records requests
//! appends them ([`super::packed`]) to a buffer of its own, a lane, so recording a request
//! takes no lock another serving thread holds, no allocation once the buffer has grown and no
//! message per request, and the writer never frees what a serving thread allocated (which made
//! glibc's allocator lock that thread's arena). The writer collects every lane at once,
//! swapping each buffer for an empty one it has used before.
//!
//! A lane holds at most [`MAX_LANE_BYTES`]; beyond that, and once the lanes are closed (the
//! writer has stopped), records are dropped and the caller counts them.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;

use super::packed;
use super::record::RequestRecord;

/// The most bytes of records a lane holds before the writer collects it: some 27,000 requests
/// (the history benchmark's records are 156 bytes), more than a second of a serving thread at
/// full load, so a writer held up for a moment drops nothing. (At 1 MiB, one 5-second phase in
/// 12 of that benchmark dropped 11,796 records; what held the writer up was not found.)
pub(super) const MAX_LANE_BYTES: usize = 4 << 20;
/// Collected buffers up to this size are kept for reuse, so a lane's next batch lands in a
/// buffer already grown and touched instead of one grown from nothing on the serving thread,
/// copied and faulted in page by page as it doubles. A serving thread's batch at full load
/// (some 1,500 requests in the writer's 100 ms, 250-300 KB) fits; bigger buffers, left by a
/// burst or a writer held up, are freed. (At 256 KiB the usual batch often did not fit: most
/// of the serving threads' page faults were that growth.)
const MAX_SPARE_BYTES: usize = 1 << 20;
/// The most buffers kept for reuse.
const MAX_SPARES: usize = 8;

/// Every lane of one history sink.
#[derive(Debug)]
pub(super) struct Lanes {
    /// Tells these lanes from those of other sinks (tests run several in one process).
    id: u64,
    all: Mutex<Vec<Arc<Lane>>>,
    closed: AtomicBool,
}

/// One thread's buffer.
#[derive(Debug)]
struct Lane {
    thread: ThreadId,
    buffer: Mutex<Buffer>,
}

#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    records: usize,
}

/// What became of a record handed to [`Lanes::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Appended {
    /// Queued in a lane that was empty: the writer may be asleep.
    First,
    /// Queued behind others.
    More,
    /// Not queued: the lane is full (the writer is behind).
    Full,
    /// Not queued: the lanes are closed (the writer has stopped).
    Closed,
}

/// Records collected from the lanes: buffers and how many records each holds.
#[derive(Debug, Default)]
pub(super) struct Collected {
    pub(super) buffers: Vec<(Vec<u8>, usize)>,
    pub(super) records: usize,
}

thread_local! {
    /// This thread's lane of the sink it last recorded to.
    static LANE: RefCell<Option<(u64, Arc<Lane>)>> = const { RefCell::new(None) };
}

/// Source of [`Lanes::id`].
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Lanes {
    pub(super) fn new() -> Lanes {
        Lanes {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            all: Mutex::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// Appends `r` to the calling thread's lane.
    pub(super) fn append(&self, r: &RequestRecord) -> Appended {
        LANE.with(|slot| {
            // Borrowed only here, and nothing below re-enters; if it ever were, the record
            // would go through the shared list instead.
            let Ok(mut slot) = slot.try_borrow_mut() else {
                return self.push(&self.lane_of_this_thread(), r);
            };
            match &*slot {
                Some((id, lane)) if *id == self.id => self.push(lane, r),
                _ => {
                    let lane = self.lane_of_this_thread();
                    let appended = self.push(&lane, r);
                    *slot = Some((self.id, lane));
                    appended
                }
            }
        })
    }

    fn push(&self, lane: &Lane, r: &RequestRecord) -> Appended {
        let mut buffer = lock(&lane.buffer);
        // Read under the lane's lock: a collection that closed the lanes before taking this
        // one is seen here, so nothing is queued where no one will look.
        if self.closed.load(Ordering::SeqCst) {
            return Appended::Closed;
        }
        if buffer.bytes.len() >= MAX_LANE_BYTES {
            return Appended::Full;
        }
        packed::encode(r, &mut buffer.bytes);
        buffer.records += 1;
        if buffer.records == 1 {
            Appended::First
        } else {
            Appended::More
        }
    }

    /// The calling thread's lane, made and listed the first time.
    fn lane_of_this_thread(&self) -> Arc<Lane> {
        let thread = std::thread::current().id();
        let mut all = lock(&self.all);
        if let Some(lane) = all.iter().find(|l| l.thread == thread) {
            return lane.clone();
        }
        let lane = Arc::new(Lane {
            thread,
            buffer: Mutex::default(),
        });
        all.push(lane.clone());
        lane
    }

    /// Takes every lane's records, leaving each an empty buffer from `spares` (or a new one).
    pub(super) fn collect(&self, spares: &mut Vec<Vec<u8>>) -> Collected {
        let lanes: Vec<Arc<Lane>> = lock(&self.all).clone();
        let mut collected = Collected::default();
        for lane in lanes {
            let mut buffer = lock(&lane.buffer);
            if buffer.records == 0 {
                continue;
            }
            let bytes = std::mem::replace(&mut buffer.bytes, spares.pop().unwrap_or_default());
            let records = std::mem::take(&mut buffer.records);
            drop(buffer);
            collected.records += records;
            collected.buffers.push((bytes, records));
        }
        collected
    }

    /// Gives a collected buffer back for reuse (small ones only).
    pub(super) fn recycle(spares: &mut Vec<Vec<u8>>, mut bytes: Vec<u8>) {
        if bytes.capacity() <= MAX_SPARE_BYTES && spares.len() < MAX_SPARES {
            bytes.clear();
            spares.push(bytes);
        }
    }

    /// Refuses further records; what is queued can still be collected.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at_ms: i64) -> RequestRecord {
        RequestRecord {
            at_ms,
            endpoint: "/v1/responses",
            ..RequestRecord::default()
        }
    }

    fn times(collected: &Collected) -> Vec<i64> {
        let mut t: Vec<i64> = collected
            .buffers
            .iter()
            .flat_map(|(bytes, _)| packed::decode(bytes).map(|v| v.at_ms))
            .collect();
        t.sort_unstable();
        t
    }

    #[test]
    fn each_thread_appends_to_its_own_lane_and_collection_takes_them_all() {
        let lanes = Arc::new(Lanes::new());
        assert_eq!(lanes.append(&record(1)), Appended::First);
        assert_eq!(lanes.append(&record(2)), Appended::More);
        let other = lanes.clone();
        std::thread::spawn(move || {
            assert_eq!(other.append(&record(3)), Appended::First);
        })
        .join()
        .unwrap();
        let mut spares = Vec::new();
        let collected = lanes.collect(&mut spares);
        assert_eq!(collected.records, 3);
        assert_eq!(collected.buffers.len(), 2);
        assert_eq!(times(&collected), vec![1, 2, 3]);
        // Emptied: the next record is a first one again, and nothing is collected twice.
        assert_eq!(lanes.collect(&mut spares).records, 0);
        assert_eq!(lanes.append(&record(4)), Appended::First);
        for (bytes, _) in collected.buffers {
            Lanes::recycle(&mut spares, bytes);
        }
        assert_eq!(times(&lanes.collect(&mut spares)), vec![4]);
    }

    #[test]
    fn two_sinks_on_one_thread_keep_their_records_apart() {
        let (a, b) = (Lanes::new(), Lanes::new());
        a.append(&record(1));
        b.append(&record(2));
        a.append(&record(3));
        assert_eq!(times(&a.collect(&mut Vec::new())), vec![1, 3]);
        assert_eq!(times(&b.collect(&mut Vec::new())), vec![2]);
    }

    #[test]
    fn a_full_or_closed_lane_drops() {
        let lanes = Lanes::new();
        let mut n = 0;
        while lanes.append(&record(n)) != Appended::Full {
            n += 1;
        }
        assert!(n > 1000, "{n}");
        let collected = lanes.collect(&mut Vec::new());
        assert_eq!(collected.records, usize::try_from(n).unwrap());
        lanes.close();
        assert_eq!(lanes.append(&record(0)), Appended::Closed);
        assert_eq!(lanes.collect(&mut Vec::new()).records, 0);
    }
}
