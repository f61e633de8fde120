//! The credentials a request tries for one route entry, in order: its accounts as the
//! provider's strategy, their live quota and the conversation's sticky account put them (see
//! [`crate::picker`]), then any configured key.

use super::state::AppState;
use crate::affinity::Affinity;
use crate::config::{ProviderConfig, Strategy};
use crate::ids::Label;
use crate::picker;
use crate::routing::{Credential, Target};

/// The credentials to try for a target, in order: accounts as the provider's strategy and
/// live quota put them, the conversation's sticky account first (see [`crate::picker`]).
pub(super) fn candidates(
    state: &AppState,
    provider: &ProviderConfig,
    target: &Target,
    affinity: Option<&Affinity>,
    now: i64,
) -> Vec<Credential> {
    let labels: Vec<&Label> = target
        .credentials
        .iter()
        .filter_map(|c| match c {
            Credential::Account(label) => Some(label),
            Credential::ConfiguredKey | Credential::None => None,
        })
        .collect();
    if target.pinned || labels.len() < 2 {
        return target.credentials.clone();
    }
    let snapshots: Vec<_> = labels
        .iter()
        .map(|l| state.book.snapshot(&provider.id, l))
        .collect();
    let accounts: Vec<picker::Account<'_>> = labels
        .iter()
        .zip(&snapshots)
        .map(|(label, snapshot)| picker::Account {
            label,
            snapshot: snapshot.as_ref(),
            cooling_until: state.book.cooling_until(&provider.id, label, now),
        })
        .collect();
    let sticky = affinity.and_then(|a| state.sticky.get(&provider.id, &a.key, now));
    let rotation = if provider.strategy == Strategy::RoundRobin {
        state.book.next_rotation(&provider.id)
    } else {
        0
    };
    let pick = picker::order(provider.strategy, &accounts, sticky.as_ref(), rotation, now);
    let others = target
        .credentials
        .iter()
        .filter(|c| !matches!(c, Credential::Account(_)))
        .cloned();
    pick.order
        .into_iter()
        .map(Credential::Account)
        .chain(others)
        .collect()
}
