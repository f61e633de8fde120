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

/// Conversation → account, shared by all requests.
#[derive(Debug, Default)]
pub struct StickyMap {
    entries: Mutex<HashMap<(ProviderId, String), Entry>>,
}

impl StickyMap {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        StickyMap::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(ProviderId, String), Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The account the conversation ran on, unless it has been idle too long.
    #[must_use]
    pub fn get(&self, provider: &ProviderId, key: &str, now: i64) -> Option<Label> {
        let entries = self.lock();
        entries
            .get(&(provider.clone(), key.to_owned()))
            .filter(|e| now - e.used_at < IDLE_LIMIT)
            .map(|e| e.label.clone())
    }

    /// Records that the conversation ran on `label` at `now`.
    pub fn set(&self, provider: &ProviderId, key: &str, label: &Label, now: i64) {
        let mut entries = self.lock();
        entries.insert(
            (provider.clone(), key.to_owned()),
            Entry {
                label: label.clone(),
                used_at: now,
            },
        );
        if entries.len() > CAPACITY {
            entries.retain(|_, e| now - e.used_at < IDLE_LIMIT);
        }
        while entries.len() > CAPACITY {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.used_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    entries.remove(&k);
                }
                None => break,
            }
        }
    }

    /// How many conversations are remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
