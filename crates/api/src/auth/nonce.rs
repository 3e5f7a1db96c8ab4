//! Replay protection: a nonce may be used once per API key within the window.

use std::collections::BTreeSet;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Default capacity of [`InMemoryNonceStore`]: 2^18 entries.
pub const DEFAULT_NONCE_CAPACITY: usize = 1 << 18;

/// Whether a nonce was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// First use: it is now recorded.
    Fresh,
    /// Already recorded for this key: a replay.
    Replayed,
}

/// Why the nonce store could not answer. Never the caller's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NonceStoreError {
    /// The store holds its maximum number of live nonces; it refuses rather than forgets.
    #[error("nonce store full ({capacity} live nonces)")]
    Full {
        /// The configured capacity.
        capacity: usize,
    },
    /// The backing store (e.g. a database) failed.
    #[error("nonce store backend: {0}")]
    Backend(String),
}

/// Records `(api key, nonce)` pairs.
///
/// Contract for implementations:
/// * [`NonceStore::record`] is an atomic check-and-insert: of two concurrent calls with the
///   same pair, exactly one sees [`NonceStatus::Fresh`];
/// * a recorded pair is remembered at least until `now_ms > nonce_ms + window_ms` (after that
///   the window check refuses the nonce anyway, so it may be forgotten);
/// * when unsure (full, backend down) it returns an error, never `Fresh`.
///
/// It is only called for requests whose signature verified.
pub trait NonceStore: Send + Sync {
    /// Records `nonce_ms` for `api_key_hex` and reports whether it was new.
    fn record(
        &self,
        api_key_hex: &str,
        nonce_ms: u64,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<NonceStatus, NonceStoreError>;
}

/// A process-local [`NonceStore`].
///
/// Each entry is the nonce and the SHA-256 of the API key (40 bytes plus B-tree overhead,
/// roughly 64 bytes). On every call, entries with `nonce_ms < now_ms - window_ms` are purged:
/// they can never pass the window check again. An entry therefore lives at most
/// `2 * window_ms` (a nonce up to one window in the future, kept until one window after it),
/// so the store holds at most the number of requests authenticated in the last two windows,
/// and never more than its capacity (default [`DEFAULT_NONCE_CAPACITY`], about 16 MiB); when
/// full it refuses new nonces with [`NonceStoreError::Full`] instead of forgetting live ones.
/// With the default 5-minute window the default capacity sustains about 430 authenticated
/// requests per second.
///
/// Several coordinator processes behind one load balancer need a shared store instead.
#[derive(Debug)]
pub struct InMemoryNonceStore {
    entries: Mutex<BTreeSet<(u64, [u8; 32])>>,
    capacity: usize,
}

impl Default for InMemoryNonceStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_NONCE_CAPACITY)
    }
}

impl InMemoryNonceStore {
    /// A store with the default capacity.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that holds at most `capacity` live nonces.
    pub fn with_capacity(capacity: usize) -> Self {
        InMemoryNonceStore {
            entries: Mutex::new(BTreeSet::new()),
            capacity,
        }
    }

    /// Number of nonces currently held (including ones a purge would remove).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no nonce is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<(u64, [u8; 32])>> {
        // The set is valid after any panic of a holder (every operation is a single call on
        // it), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl NonceStore for InMemoryNonceStore {
    fn record(
        &self,
        api_key_hex: &str,
        nonce_ms: u64,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<NonceStatus, NonceStoreError> {
        let key: [u8; 32] = Sha256::digest(api_key_hex.as_bytes()).into();
        let mut entries = self.lock();
        let cutoff = now_ms.saturating_sub(window_ms);
        if entries.first().is_some_and(|(n, _)| *n < cutoff) {
            let live = entries.split_off(&(cutoff, [0; 32]));
            *entries = live;
        }
        if entries.contains(&(nonce_ms, key)) {
            return Ok(NonceStatus::Replayed);
        }
        if entries.len() >= self.capacity {
            return Err(NonceStoreError::Full {
                capacity: self.capacity,
            });
        }
        entries.insert((nonce_ms, key));
        Ok(NonceStatus::Fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_keeps_edge_and_drops_older() {
        let store = InMemoryNonceStore::new();
        assert_eq!(store.record("k", 100, 100, 10), Ok(NonceStatus::Fresh));
        assert_eq!(store.record("k", 101, 101, 10), Ok(NonceStatus::Fresh));
        assert_eq!(store.record("k", 100, 110, 10), Ok(NonceStatus::Replayed));
        // At now = 111 the nonce 100 is out of the window and purged; 101 is at the edge.
        assert_eq!(store.record("k", 105, 111, 10), Ok(NonceStatus::Fresh));
        assert_eq!(store.len(), 2);
        assert_eq!(store.record("k", 101, 111, 10), Ok(NonceStatus::Replayed));
    }

    #[test]
    fn keys_are_separate_and_capacity_is_enforced() {
        let store = InMemoryNonceStore::with_capacity(2);
        assert_eq!(store.record("a", 5, 5, 10), Ok(NonceStatus::Fresh));
        assert_eq!(store.record("b", 5, 5, 10), Ok(NonceStatus::Fresh));
        assert_eq!(
            store.record("c", 5, 5, 10),
            Err(NonceStoreError::Full { capacity: 2 })
        );
        // A replay is still recognised when full.
        assert_eq!(store.record("a", 5, 5, 10), Ok(NonceStatus::Replayed));
        // Time passing frees space.
        assert_eq!(store.record("c", 30, 30, 10), Ok(NonceStatus::Fresh));
        assert_eq!(store.len(), 1);
    }
}
