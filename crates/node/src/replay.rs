//! Each task runs at most once: its `execution_unique` is remembered until its deadline, in
//! the sealed store ([`SEEN_TASKS`]), so a task replayed by the proxy or the bus (during its
//! run, after it, or after a restart of the node) is refused. A replay is nobody's provable
//! fault, so it is only logged: no result is sent and nobody is blamed.
//!
//! All calls block (store access): call them from a blocking thread.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{SEEN_TASKS, SecretStore, StoreAccessError};

/// A deadline further ahead than this is refused (it would pin a record for that long).
pub const MAX_TASK_HORIZON_MS: u64 = 24 * 60 * 60 * 1000;

/// What [`SeenTasks::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// First time: recorded, run it.
    Fresh,
    /// Taken before (its deadline has not passed).
    Replayed,
    /// The deadline has passed.
    Expired,
    /// The deadline is more than [`MAX_TASK_HORIZON_MS`] ahead.
    TooFarAhead,
}

/// The tasks taken whose deadline has not passed.
#[derive(Debug)]
pub struct SeenTasks {
    /// execution_unique → deadline (Unix ms); mirrors the store.
    seen: Mutex<HashMap<[u8; 32], u64>>,
}

impl SeenTasks {
    /// Loads the records of `store`, deleting those whose deadline passed before `now_ms`.
    pub fn load(store: &dyn SecretStore, now_ms: u64) -> Result<Self, StoreAccessError> {
        let mut seen = HashMap::new();
        for key in store.list_keys(SEEN_TASKS)? {
            let deadline = store
                .get(SEEN_TASKS, &key)?
                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map(u64::from_be_bytes);
            match (<[u8; 32]>::try_from(key.as_slice()), deadline) {
                (Ok(unique), Some(d)) if d > now_ms => {
                    seen.insert(unique, d);
                }
                _ => {
                    store.delete(SEEN_TASKS, &key)?;
                }
            }
        }
        if !seen.is_empty() {
            tracing::info!(
                tasks = seen.len(),
                "tasks taken before the restart are refused until their deadlines"
            );
        }
        Ok(SeenTasks {
            seen: Mutex::new(seen),
        })
    }

    /// Records the task `unique` (deadline `deadline_ms`) unless it was taken before; the
    /// record is in the store before this returns [`Admission::Fresh`]. Forgets tasks whose
    /// deadline passed.
    pub fn admit(
        &self,
        store: &dyn SecretStore,
        unique: [u8; 32],
        deadline_ms: u64,
        now_ms: u64,
    ) -> Result<Admission, StoreAccessError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let expired: Vec<[u8; 32]> = seen
            .iter()
            .filter(|(_, d)| **d <= now_ms)
            .map(|(u, _)| *u)
            .collect();
        for u in expired {
            store.delete(SEEN_TASKS, &u)?;
            seen.remove(&u);
        }
        if seen.contains_key(&unique) {
            return Ok(Admission::Replayed);
        }
        if deadline_ms <= now_ms {
            return Ok(Admission::Expired);
        }
        if deadline_ms - now_ms > MAX_TASK_HORIZON_MS {
            return Ok(Admission::TooFarAhead);
        }
        store.put(SEEN_TASKS, &unique, &deadline_ms.to_be_bytes())?;
        seen.insert(unique, deadline_ms);
        Ok(Admission::Fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &std::path::Path) -> mpc_keystore::Unsealed {
        use mpc_keystore::{Batch, Engine, KdfParams, KeyStore, Opened, StoreConfig};
        let cfg = StoreConfig::new(Engine::Bolt, 1, 1)
            .unwrap()
            .kdf(KdfParams::insecure_for_tests());
        let Opened::Uninitialized(mut u) = KeyStore::open(dir.join("a.db"), cfg).unwrap() else {
            panic!()
        };
        u.init("Correct-Horse-9", &Batch::new())
            .unwrap()
            .done()
            .unwrap()
    }

    #[test]
    fn a_task_is_taken_once_until_its_deadline_also_after_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let seen = SeenTasks::load(&s, 1_000).unwrap();
        assert_eq!(
            seen.admit(&s, [1; 32], 5_000, 1_000).unwrap(),
            Admission::Fresh
        );
        assert_eq!(
            seen.admit(&s, [2; 32], 9_000, 1_000).unwrap(),
            Admission::Fresh
        );
        assert_eq!(
            seen.admit(&s, [1; 32], 5_000, 1_500).unwrap(),
            Admission::Replayed
        );
        // A restart: the store remembers; what expired meanwhile is dropped.
        let seen = SeenTasks::load(&s, 6_000).unwrap();
        assert_eq!(s.list_keys(SEEN_TASKS).unwrap(), vec![vec![2; 32]]);
        assert_eq!(
            seen.admit(&s, [2; 32], 9_000, 6_000).unwrap(),
            Admission::Replayed
        );
        // After its deadline a replay is refused as expired (and forgotten).
        assert_eq!(
            seen.admit(&s, [2; 32], 9_000, 9_000).unwrap(),
            Admission::Expired
        );
        assert!(s.list_keys(SEEN_TASKS).unwrap().is_empty());
        assert_eq!(
            seen.admit(&s, [3; 32], 9_000 + MAX_TASK_HORIZON_MS + 1, 9_000)
                .unwrap(),
            Admission::TooFarAhead
        );
        assert!(s.list_keys(SEEN_TASKS).unwrap().is_empty());
    }
}
