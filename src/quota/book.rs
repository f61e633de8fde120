//! The live state of each (provider, account): cooling down after a usage limit (until its reset
//! or its next success), the latest quota snapshot (from the `x-codex-*` headers, or the usage
//! endpoint when `status --refresh` asked it) with where and when it was read, and the
//! round-robin position per provider. Changes wake the debounced `usage.json` writer
//! ([`super::writer`]); nothing here touches the disk.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;

use super::file::{AccountUsage, QuotaSource, UsageFile};
use super::headers::Snapshot;
use crate::ids::{Label, ProviderId};

#[derive(Debug, Clone, Default)]
struct AccountState {
    cooling_until: Option<i64>,
    snapshot: Option<Snapshot>,
    /// Where the snapshot came from and when.
    checked: Option<(QuotaSource, i64)>,
    updated_at: i64,
}

type Key = (ProviderId, Label);

/// Every account's cooldown and quota, shared by all requests.
#[derive(Debug, Default)]
pub struct AccountBook {
    accounts: Mutex<HashMap<Key, AccountState>>,
    rotation: Mutex<HashMap<ProviderId, usize>>,
    changed: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AccountBook {
    /// An empty book.
    #[must_use]
    pub fn new() -> Self {
        AccountBook::default()
    }

    /// A book that starts from a persisted file (cooldowns survive restarts).
    #[must_use]
    pub fn from_usage(file: &UsageFile) -> Self {
        let book = AccountBook::new();
        {
            let mut accounts = lock(&book.accounts);
            for a in &file.accounts {
                accounts.insert(
                    (a.provider.clone(), a.label.clone()),
                    AccountState {
                        cooling_until: a.cooling_until,
                        snapshot: a.snapshot(),
                        checked: a.quota_source.zip(a.quota_checked_at),
                        updated_at: a.updated_at,
                    },
                );
            }
        }
        book
    }

    /// Until when the account is cooling down, if it still is at `now`.
    #[must_use]
    pub fn cooling_until(&self, provider: &ProviderId, label: &Label, now: i64) -> Option<i64> {
        lock(&self.accounts)
            .iter()
            .find(|((p, l), _)| p == provider && l == label)
            .and_then(|(_, s)| s.cooling_until)
            .filter(|until| *until > now)
    }

    /// The account's latest quota snapshot, if one was seen.
    #[must_use]
    pub fn snapshot(&self, provider: &ProviderId, label: &Label) -> Option<Snapshot> {
        lock(&self.accounts)
            .iter()
            .find(|((p, l), _)| p == provider && l == label)
            .and_then(|(_, s)| s.snapshot.clone())
    }

    /// Cools the account down until `until`.
    pub fn cool_down(&self, provider: &ProviderId, label: &Label, until: i64, now: i64) {
        {
            let mut accounts = lock(&self.accounts);
            let state = accounts
                .entry((provider.clone(), label.clone()))
                .or_default();
            state.cooling_until = Some(until);
            state.updated_at = now;
        }
        self.changed.notify_one();
    }

    /// The account served a request: it is no longer cooling.
    pub fn succeeded(&self, provider: &ProviderId, label: &Label, now: i64) {
        let changed = {
            let mut accounts = lock(&self.accounts);
            // A handful of accounts: a scan is cheaper than building a key to look one up.
            let found = accounts
                .iter_mut()
                .find(|((p, l), _)| p == provider && l == label)
                .map(|(_, state)| state);
            match found {
                Some(state) if state.cooling_until.is_some() => {
                    state.cooling_until = None;
                    state.updated_at = now;
                    true
                }
                _ => false,
            }
        };
        if changed {
            self.changed.notify_one();
        }
    }

    /// Records the latest quota snapshot, read from `source` at `now`.
    pub fn record_snapshot(
        &self,
        provider: &ProviderId,
        label: &Label,
        snapshot: Snapshot,
        source: QuotaSource,
        now: i64,
    ) {
        {
            let mut accounts = lock(&self.accounts);
            let state = accounts
                .entry((provider.clone(), label.clone()))
                .or_default();
            let merged = Snapshot {
                plan_type: snapshot
                    .plan_type
                    .clone()
                    .or_else(|| state.snapshot.as_ref().and_then(|s| s.plan_type.clone())),
                ..snapshot
            };
            state.snapshot = Some(merged);
            state.checked = Some((source, now));
            state.updated_at = now;
        }
        self.changed.notify_one();
    }

    /// The next round-robin offset for `provider`.
    pub fn next_rotation(&self, provider: &ProviderId) -> usize {
        let mut rotation = lock(&self.rotation);
        let slot = rotation.entry(provider.clone()).or_insert(0);
        let current = *slot;
        *slot = slot.wrapping_add(1);
        current
    }

    /// Waits until something changed.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Everything as the `usage.json` document (sorted by provider, label).
    #[must_use]
    pub fn to_usage(&self) -> UsageFile {
        let accounts = lock(&self.accounts);
        let mut list: Vec<AccountUsage> = accounts
            .iter()
            .map(|((provider, label), state)| {
                let primary = state.snapshot.as_ref().and_then(|s| s.primary.clone());
                let secondary = state.snapshot.as_ref().and_then(|s| s.secondary.clone());
                AccountUsage {
                    provider: provider.clone(),
                    label: label.clone(),
                    cooling_until: state.cooling_until,
                    primary_used_percent: primary.as_ref().and_then(|w| w.used_percent),
                    primary_window_minutes: primary.as_ref().and_then(|w| w.window_minutes),
                    primary_reset_at: primary.as_ref().and_then(|w| w.reset_at),
                    secondary_used_percent: secondary.as_ref().and_then(|w| w.used_percent),
                    secondary_window_minutes: secondary.as_ref().and_then(|w| w.window_minutes),
                    secondary_reset_at: secondary.as_ref().and_then(|w| w.reset_at),
                    plan_type: state.snapshot.as_ref().and_then(|s| s.plan_type.clone()),
                    quota_source: state.checked.map(|(source, _)| source),
                    quota_checked_at: state.checked.map(|(_, at)| at),
                    updated_at: state.updated_at,
                }
            })
            .collect();
        list.sort_by(|a, b| (&a.provider, &a.label).cmp(&(&b.provider, &b.label)));
        UsageFile {
            version: super::file::VERSION,
            accounts: list,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Window;

    fn ids() -> (ProviderId, Label) {
        (ProviderId::openai_codex(), "work".parse().unwrap())
    }

    #[test]
    fn cooldown_lasts_until_reset_or_success() {
        let book = AccountBook::new();
        let (p, l) = ids();
        assert_eq!(book.cooling_until(&p, &l, 100), None);
        book.cool_down(&p, &l, 200, 100);
        assert_eq!(book.cooling_until(&p, &l, 150), Some(200));
        assert_eq!(book.cooling_until(&p, &l, 200), None);
        book.succeeded(&p, &l, 160);
        assert_eq!(book.cooling_until(&p, &l, 170), None);
    }

    #[test]
    fn usage_round_trips_through_the_book() {
        let book = AccountBook::new();
        let (p, l) = ids();
        book.cool_down(&p, &l, 500, 100);
        book.record_snapshot(
            &p,
            &l,
            Snapshot {
                primary: Some(Window {
                    used_percent: Some(99.0),
                    window_minutes: Some(300),
                    reset_at: Some(500),
                }),
                plan_type: Some("plus".into()),
                ..Snapshot::default()
            },
            QuotaSource::Headers,
            120,
        );
        let file = book.to_usage();
        assert_eq!(file.accounts.len(), 1);
        assert_eq!(file.accounts[0].cooling_until, Some(500));
        assert_eq!(file.accounts[0].primary_used_percent, Some(99.0));
        assert_eq!(file.accounts[0].updated_at, 120);
        assert_eq!(file.accounts[0].quota_source, Some(QuotaSource::Headers));
        assert_eq!(file.accounts[0].quota_checked_at, Some(120));
        let again = AccountBook::from_usage(&file);
        assert_eq!(again.cooling_until(&p, &l, 300), Some(500));
        assert_eq!(again.to_usage(), file);
    }

    #[test]
    fn rotation_advances() {
        let book = AccountBook::new();
        let p = ProviderId::openai_codex();
        assert_eq!(book.next_rotation(&p), 0);
        assert_eq!(book.next_rotation(&p), 1);
    }
}
