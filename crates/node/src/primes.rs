//! The node's Paillier prime pool: [`mpc_tss::primes::PrimePool`] kept in the sealed store
//! ([`tables::PRIME_POOL`], one record holding the list), one filler thread, target
//! [`PRIME_TARGET`] sets.
//!
//! A set handed to an aux-info run is removed from the store before the run starts, so a set is
//! never used twice, across restarts too. The pool is written back whenever its size changed
//! (checked every few seconds) and after every take.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpc_keystore::tables;
use mpc_tss::primes::{PrimePool, SecretPrimes};
use zeroize::Zeroizing;

use crate::store::{PRIME_POOL_RECORD, SecretStore, StoreAccessError};

/// Sets the filler keeps ready.
pub const PRIME_TARGET: usize = 2;
/// How often the filler's progress is written to the store.
const PERSIST_EVERY: Duration = Duration::from_secs(5);

/// Why the prime pool could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PrimeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreAccessError),
    /// The test primes file could not be read or parsed.
    #[error("test primes {path}: {reason}")]
    TestFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The pool and its store.
#[derive(Clone)]
pub struct PersistentPrimes {
    pool: PrimePool,
    store: Arc<dyn SecretStore>,
    /// Serializes snapshot-and-write, so an older snapshot never overwrites a newer one.
    write: Arc<Mutex<usize>>,
}

impl std::fmt::Debug for PersistentPrimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentPrimes")
            .field("len", &self.pool.len())
            .finish_non_exhaustive()
    }
}

fn decode(bytes: &[u8]) -> Result<Vec<SecretPrimes>, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

impl PersistentPrimes {
    /// Loads the stored sets (blocking). With `test_primes`, also loads that JSON file (the
    /// format of `crates/tss/tests/fixtures/test-primes.json`), rotated by `rotate` places so
    /// nodes of one test committee take different sets first.
    pub fn load(
        store: Arc<dyn SecretStore>,
        test_primes: Option<&Path>,
        rotate: usize,
    ) -> Result<Self, PrimeError> {
        let pool = PrimePool::new(PRIME_TARGET);
        if let Some(bytes) = store.get(tables::PRIME_POOL, PRIME_POOL_RECORD)? {
            let sets = decode(&bytes).map_err(|reason| StoreAccessError::Corrupt {
                table: tables::PRIME_POOL,
                key: String::from_utf8_lossy(PRIME_POOL_RECORD).into_owned(),
                reason,
            })?;
            pool.restore(sets);
        }
        if let Some(path) = test_primes {
            let fail = |reason: String| PrimeError::TestFile {
                path: path.display().to_string(),
                reason,
            };
            let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| fail(e.to_string()))?);
            let mut sets = decode(&bytes).map_err(fail)?;
            if !sets.is_empty() {
                let r = rotate % sets.len();
                sets.rotate_left(r);
            }
            tracing::warn!(
                sets = sets.len(),
                file = %path.display(),
                "INSECURE: loaded published test primes into the prime pool ({}); never use this node for real keys",
                crate::INSECURE_TEST_PRIMES_ENV
            );
            // Test sets go first, so they are used before any stored ones.
            let stored = pool.snapshot();
            while pool.take().is_some() {}
            pool.restore(sets.into_iter().chain(stored));
        }
        let me = PersistentPrimes {
            pool,
            store,
            write: Arc::new(Mutex::new(usize::MAX)),
        };
        me.persist()?;
        Ok(me)
    }

    /// Sets ready now.
    pub fn len(&self) -> usize {
        self.pool.len()
    }

    /// `true` when no set is ready.
    pub fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }

    /// Writes the pool to the store if its size changed since the last write (blocking).
    pub fn persist(&self) -> Result<(), StoreAccessError> {
        let mut last = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let sets = self.pool.snapshot();
        if sets.len() == *last {
            return Ok(());
        }
        self.write_sets(&sets)?;
        *last = sets.len();
        Ok(())
    }

    fn write_sets(&self, sets: &[SecretPrimes]) -> Result<(), StoreAccessError> {
        let bytes =
            Zeroizing::new(
                serde_json::to_vec(sets).map_err(|e| StoreAccessError::Corrupt {
                    table: tables::PRIME_POOL,
                    key: String::from_utf8_lossy(PRIME_POOL_RECORD).into_owned(),
                    reason: e.to_string(),
                })?,
            );
        self.store
            .put(tables::PRIME_POOL, PRIME_POOL_RECORD, &bytes)
    }

    /// Takes one set for an aux-info run and removes it from the store before returning it
    /// (blocking). `None` when the pool is empty (the caller generates one).
    pub fn take(&self) -> Result<Option<SecretPrimes>, StoreAccessError> {
        let mut last = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let Some(set) = self.pool.take() else {
            return Ok(None);
        };
        let sets = self.pool.snapshot();
        if let Err(e) = self.write_sets(&sets) {
            // Not recorded as used: refuse to hand it out.
            *last = usize::MAX;
            return Err(e);
        }
        *last = sets.len();
        Ok(Some(set))
    }

    /// Starts one filler thread and a task writing its progress to the store; both stop when
    /// `stop` turns `true`.
    pub fn start_filler(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let handles = self.pool.spawn_fillers(1);
        tracing::info!(
            ready = self.pool.len(),
            target = PRIME_TARGET,
            "prime pool filler started"
        );
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PERSIST_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                let m = me.clone();
                match tokio::task::spawn_blocking(move || m.persist()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!("prime pool not saved: {e}"),
                    Err(_) => tracing::error!("prime pool save task failed"),
                }
            }
            me.pool.stop();
            drop(handles);
        });
    }
}
