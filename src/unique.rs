//! Fresh ids for request-scoped things (a session header, a translated response's id) made
//! without a system call: version-4 UUIDs from a per-process random key (drawn once from the
//! operating system) hashed with a counter. Unique within a process and not guessable from
//! outside; not for secrets.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use std::collections::hash_map::RandomState;

/// A fresh version-4 UUID.
#[must_use]
pub fn uuid() -> uuid::Uuid {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let key = KEY.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let half = |lane: u8| {
        let mut h = key.build_hasher();
        h.write_u64(n);
        h.write_u8(lane);
        h.finish().to_le_bytes()
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&half(0));
    bytes[8..].copy_from_slice(&half(1));
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn ids_are_version_4_and_do_not_repeat() {
        let ids: HashSet<uuid::Uuid> = (0..10_000).map(|_| super::uuid()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.get_version_num() == 4));
    }
}
