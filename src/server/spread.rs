//! Keeping the serving threads' connections even. Every serving thread accepts on the one
//! listening socket, so a burst of new connections (a client opening its pool) can land on
//! whichever thread was awake: on a two-core machine, all 32 of a load test's connections sat
//! on one thread while the other idled, and throughput halved for as long as they stayed open.
//! A thread that holds at least [`SLACK`] more connections than the least busy one hands a new
//! connection to that one instead of serving it (once, when it is accepted: a connection's
//! requests then stay on the thread that serves it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// How many more connections than the least busy thread a thread keeps before it hands new
/// ones over: one connection at a time (a client without keep-alive) never moves.
const SLACK: usize = 2;

/// A connection passed to another thread, with its place under the connection cap.
pub type Handed = (std::net::TcpStream, OwnedSemaphorePermit);

/// The serving threads' open connections, and the way to hand one to each thread.
#[derive(Debug)]
pub struct Spread {
    open: Vec<AtomicUsize>,
    inboxes: Vec<UnboundedSender<Handed>>,
}

/// One serving thread's part: its number, the spread, and where connections handed to it
/// arrive.
#[derive(Debug)]
pub struct Share {
    pub thread: usize,
    pub spread: Arc<Spread>,
    pub inbox: UnboundedReceiver<Handed>,
}

impl Spread {
    /// A spread over `threads` threads (at least one): the first thread's share, and the
    /// others' by number.
    #[must_use]
    pub fn shares(threads: usize) -> (Share, Vec<Share>) {
        let (inboxes, mut receivers): (Vec<_>, Vec<_>) =
            (0..threads.max(1)).map(|_| unbounded_channel()).unzip();
        let spread = Arc::new(Spread {
            open: (0..inboxes.len()).map(|_| AtomicUsize::new(0)).collect(),
            inboxes,
        });
        let share = |thread, inbox| Share {
            thread,
            spread: spread.clone(),
            inbox,
        };
        // There is always a first: at least one thread.
        let first = share(0, receivers.remove(0));
        let others = receivers
            .into_iter()
            .zip(1..)
            .map(|(inbox, n)| share(n, inbox));
        (first, others.collect())
    }

    /// Where a connection thread `me` accepted goes: `None` to keep it, or the thread to hand
    /// it to. The connection is counted on the thread it goes to.
    pub fn place(&self, me: usize) -> Option<usize> {
        let load = |n: usize| self.open[n].load(Ordering::Relaxed);
        let (least, fewest) = (0..self.open.len())
            .map(|n| (n, load(n)))
            .min_by_key(|&(_, open)| open)?;
        let target = (load(me) >= fewest + SLACK && least != me).then_some(least);
        self.open[target.unwrap_or(me)].fetch_add(1, Ordering::Relaxed);
        target
    }

    /// Hands `tcp` to thread `to`; gives it back when that thread no longer takes connections
    /// (it is shutting down), counted on thread `me` again.
    pub fn hand(
        &self,
        me: usize,
        to: usize,
        tcp: TcpStream,
        permit: OwnedSemaphorePermit,
    ) -> Option<(TcpStream, OwnedSemaphorePermit)> {
        let std = match tcp.into_std() {
            Ok(std) => std,
            Err(e) => {
                tracing::debug!("cannot hand a connection to another thread: {e}");
                self.closed(to);
                return None;
            }
        };
        let Err(returned) = self.inboxes[to].send((std, permit)) else {
            tracing::trace!(target: "bitrouter::serve", "a connection went from thread {me} to thread {to}");
            return None;
        };
        self.closed(to);
        self.open[me].fetch_add(1, Ordering::Relaxed);
        let (std, permit) = returned.0;
        match TcpStream::from_std(std) {
            Ok(tcp) => Some((tcp, permit)),
            Err(e) => {
                tracing::debug!("cannot take a connection back: {e}");
                self.closed(me);
                None
            }
        }
    }

    /// A connection served by thread `n` has closed.
    pub fn closed(&self, n: usize) {
        self.open[n].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a connection off its thread when dropped (when it closes, however it ends).
pub struct Counted {
    spread: Arc<Spread>,
    thread: usize,
}

impl Counted {
    /// A connection thread `thread` serves, counted there already ([`Spread::place`]).
    #[must_use]
    pub fn on(spread: &Arc<Spread>, thread: usize) -> Counted {
        Counted {
            spread: spread.clone(),
            thread,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.spread.closed(self.thread);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_on_one_thread_ends_up_even() {
        let spread = Spread::shares(2).0.spread;
        let kept = (0..32).filter(|_| spread.place(0).is_none()).count();
        assert_eq!(kept, 17);
        assert_eq!(spread.open[0].load(Ordering::Relaxed), 17);
        assert_eq!(spread.open[1].load(Ordering::Relaxed), 15);
    }

    #[test]
    fn one_connection_at_a_time_is_never_handed_over() {
        let (first, _others) = Spread::shares(4);
        let spread = &first.spread;
        for _ in 0..10 {
            assert_eq!(spread.place(2), None);
            spread.closed(2);
        }
        // Nor a second one beside it.
        assert_eq!(spread.place(2), None);
        assert_eq!(spread.place(2), None);
        assert_eq!(spread.place(2), Some(0));
    }

    #[test]
    fn a_single_thread_keeps_everything() {
        let (first, others) = Spread::shares(0);
        assert!(others.is_empty());
        let spread = first.spread;
        assert!((0..100).all(|_| spread.place(0).is_none()));
    }
}
