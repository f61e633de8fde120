//! Which account each conversation ran on, so its next request goes there too (the backend's
//! prompt cache is per account). Bounded: an entry idle for [`IDLE_LIMIT`] seconds is
//! forgotten (the backend's cache is long cold by then), and past [`CAPACITY`] entries the
//! least recently used go first. Keyed by provider and conversation key; never holds a
//! credential.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ids::{Label, ProviderId};

/// Seconds after its last request that a conversation forgets its account.
pub const IDLE_LIMIT: i64 = 6 * 3600;
/// The most conversations remembered.
pub const CAPACITY: usize = 4096;

#[derive(Debug, Clone)]
struct Entry {
    label: Label,
    used_at: i64,
}

/// Conversation key → entry, per provider.
type Entries = HashMap<ProviderId, HashMap<String, Entry>>;

/// Conversation → account, shared by all requests (and every serving thread). Looking up and
/// renewing a known conversation allocates nothing.
#[derive(Debug, Default)]
pub struct StickyMap {
    entries: Mutex<Entries>,
}

impl StickyMap {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        StickyMap::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The account the conversation ran on, unless it has been idle too long.
    #[must_use]
    pub fn get(&self, provider: &ProviderId, key: &str, now: i64) -> Option<Label> {
        let entries = self.lock();
        entries
            .get(provider)?
            .get(key)
            .filter(|e| now - e.used_at < IDLE_LIMIT)
            .map(|e| e.label.clone())
    }

    /// Records that the conversation ran on `label` at `now`.
    pub fn set(&self, provider: &ProviderId, key: &str, label: &Label, now: i64) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(provider).and_then(|m| m.get_mut(key)) {
            if entry.label != *label {
                entry.label = label.clone();
            }
            entry.used_at = now;
            return;
        }
        entries.entry(provider.clone()).or_default().insert(
            key.to_owned(),
            Entry {
                label: label.clone(),
                used_at: now,
            },
        );
        if count(&entries) > CAPACITY {
            for map in entries.values_mut() {
                map.retain(|_, e| now - e.used_at < IDLE_LIMIT);
            }
        }
        while count(&entries) > CAPACITY {
            let oldest = entries
                .iter()
                .flat_map(|(p, m)| m.iter().map(move |(k, e)| (e.used_at, p, k)))
                .min_by_key(|(used_at, _, _)| *used_at)
                .map(|(_, p, k)| (p.clone(), k.clone()));
            let Some((p, k)) = oldest else {
                break;
            };
            if let Some(map) = entries.get_mut(&p) {
                map.remove(&k);
            }
        }
    }

    /// How many conversations are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        count(&self.lock())
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn count(entries: &Entries) -> usize {
    entries.values().map(HashMap::len).sum()
}
