//! Which of a provider's accounts serves a request, and why: the account order a request tries
//! ([`order`]), built from the provider's strategy, each account's live quota and the
//! conversation's sticky account ([`sticky::StickyMap`]).
//!
//! - `headroom` (the default): the account with the most quota left in its tightest window
//!   first ([`headroom::Headroom`]); ties keep the configured order.
//! - `failover`: the configured order.
//! - `round-robin`: the configured order rotated by one per request.
//!
//! Whatever the strategy, a conversation's sticky account goes first while it can serve (it
//! keeps the backend's prompt cache warm), and accounts cooling down after a usage limit go
//! last (the walk skips them, but their reset times make the final `429`'s `retry-after`). The
//! rest still follow, so a failing account fails over. Everything here is pure: times and
//! rotation offsets are arguments.

pub mod headroom;
pub mod sticky;
#[cfg(test)]
mod tests;

pub use headroom::Headroom;
pub use sticky::StickyMap;

use crate::config::Strategy;
use crate::ids::Label;
use crate::quota::Snapshot;

/// What the picker knows about one account.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    /// Its label.
    pub label: &'a Label,
    /// Its latest quota figures, if any were seen.
    pub snapshot: Option<&'a Snapshot>,
    /// Until when it cools down after a usage limit, if it still does.
    pub cooling_until: Option<i64>,
}

/// Why the first account comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// The conversation already ran on it.
    Sticky,
    /// It has the most quota left.
    MostHeadroom,
    /// It is first in the configured order (`failover`).
    Order,
    /// It is next in the rotation (`round-robin`).
    Rotation,
    /// Every account is cooling down; this one resets first.
    AllCooling,
    /// It is the only account.
    Only,
}

impl Why {
    /// The phrase `route` prints.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Why::Sticky => "the conversation already runs on it",
            Why::MostHeadroom => "it has the most quota left",
            Why::Order => "it is first in the configured order (strategy: failover)",
            Why::Rotation => "it is next in the rotation (strategy: round-robin)",
            Why::AllCooling => "every account is cooling down; it resets first",
            Why::Only => "it is the only account",
        }
    }
}

/// The order to try accounts in, with each account's headroom and why the first is first.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    /// Labels in the order to try.
    pub order: Vec<Label>,
    /// Why the first comes first (`None` without accounts).
    pub why: Option<Why>,
    /// Each account's percent left in its tightest window ([`Headroom::percent_left`]), in the
    /// order of `order`.
    pub left: Vec<f64>,
}

/// Orders `accounts` (given in the configured order) for one request at `now`. `sticky` is the
/// conversation's account, if it has one; `rotation` is the round-robin offset.
#[must_use]
pub fn order(
    strategy: Strategy,
    accounts: &[Account<'_>],
    sticky: Option<&Label>,
    rotation: usize,
    now: i64,
) -> Pick {
    let cooling = |a: &Account<'_>| a.cooling_until.is_some_and(|until| until > now);
    let left: Vec<f64> = accounts
        .iter()
        .map(|a| Headroom::percent_left(a.snapshot, now))
        .collect();
    let mut ready: Vec<usize> = (0..accounts.len())
        .filter(|&i| !cooling(&accounts[i]))
        .collect();
    let mut resting: Vec<usize> = (0..accounts.len())
        .filter(|&i| cooling(&accounts[i]))
        .collect();
    resting.sort_by_key(|&i| (accounts[i].cooling_until, i));

    let mut why = match strategy {
        Strategy::Headroom => {
            // Stable: equal headroom keeps the configured order.
            ready.sort_by(|&i, &j| left[j].total_cmp(&left[i]));
            Why::MostHeadroom
        }
        Strategy::RoundRobin => {
            if !ready.is_empty() {
                let n = ready.len();
                ready.rotate_left(rotation % n);
            }
            Why::Rotation
        }
        Strategy::Failover => Why::Order,
    };
    if let Some(label) = sticky
        && let Some(at) = ready.iter().position(|&i| accounts[i].label == label)
    {
        let entry = ready.remove(at);
        ready.insert(0, entry);
        why = Why::Sticky;
    }
    if ready.is_empty() {
        why = Why::AllCooling;
    } else if accounts.len() == 1 {
        why = Why::Only;
    }
    let all: Vec<usize> = ready.into_iter().chain(resting).collect();
    Pick {
        why: (!all.is_empty()).then_some(why),
        order: all.iter().map(|&i| accounts[i].label.clone()).collect(),
        left: all.iter().map(|&i| left[i]).collect(),
    }
}
