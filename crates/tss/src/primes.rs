//! Safe-prime pool for auxiliary-info generation.
//!
//! CGGMP aux info needs four fresh 1536-bit safe primes per party (two Paillier-Blum moduli).
//! Finding them takes tens of seconds to over a minute per party, so the node keeps a pool that
//! a background thread fills ahead of need. Pool entries are **secret** (they become the party's
//! Paillier secret key): [`SecretPrimes`] is serializable so the key store can persist it sealed,
//! but it never appears in logs (`Debug` is redacted), and every set is handed out at most once
//! ([`PrimePool::take`] removes it).
//!
//! The filler threads run at the lowest CPU priority the OS offers without privileges
//! ([`lower_thread_priority`]: `SCHED_IDLE` on Linux): they only get CPU time no signing
//! session wants, so refilling the pool never slows a signature.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rand_core::{OsRng, RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::SecurityLevel;

/// One party's set of pregenerated safe primes (secret).
#[derive(Clone, Serialize, Deserialize)]
pub struct SecretPrimes(pub(crate) cggmp24::PregeneratedPrimes<SecurityLevel>);

impl SecretPrimes {
    /// Generates a fresh set. CPU-bound: 20–70 s on one core of a 2 GHz machine.
    ///
    /// Candidates are drawn from a ChaCha20 stream seeded from the OS RNG (one `getrandom`
    /// call per set instead of one per candidate).
    pub fn generate() -> Self {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed_from_os());
        SecretPrimes(cggmp24::PregeneratedPrimes::generate(&mut rng))
    }

    pub(crate) fn into_inner(self) -> cggmp24::PregeneratedPrimes<SecurityLevel> {
        self.0
    }
}

impl std::fmt::Debug for SecretPrimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretPrimes(<redacted>)")
    }
}

fn seed_from_os() -> [u8; 32] {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    seed
}

struct Shared {
    queue: Mutex<VecDeque<SecretPrimes>>,
    changed: Condvar,
    stop: AtomicBool,
    target: usize,
}

/// A pool of [`SecretPrimes`], optionally refilled by background threads.
///
/// Cloning the handle shares the pool. Dropping the last handle does not stop the fillers;
/// call [`PrimePool::stop`] (the node does on shutdown).
#[derive(Clone)]
pub struct PrimePool {
    shared: Arc<Shared>,
}

impl PrimePool {
    /// An empty pool that background fillers keep at `target` entries.
    pub fn new(target: usize) -> Self {
        PrimePool {
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                changed: Condvar::new(),
                stop: AtomicBool::new(false),
                target,
            }),
        }
    }

    /// Puts previously persisted entries back (e.g. after unseal).
    pub fn restore(&self, entries: impl IntoIterator<Item = SecretPrimes>) {
        let mut q = self.lock();
        q.extend(entries);
        self.shared.changed.notify_all();
    }

    /// Number of ready entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// `true` when no entry is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes and returns one entry, if any is ready. An entry is never returned twice.
    pub fn take(&self) -> Option<SecretPrimes> {
        let mut q = self.lock();
        let out = q.pop_front();
        self.shared.changed.notify_all();
        out
    }

    /// Removes and returns one entry, generating one in the caller's thread if none is ready.
    pub fn take_or_generate(&self) -> SecretPrimes {
        self.take().unwrap_or_else(SecretPrimes::generate)
    }

    /// A copy of the ready entries, for persisting them sealed.
    pub fn snapshot(&self) -> Vec<SecretPrimes> {
        self.lock().iter().cloned().collect()
    }

    /// Starts `threads` background threads that keep the pool at its target size.
    pub fn spawn_fillers(&self, threads: usize) -> Vec<JoinHandle<()>> {
        (0..threads)
            .map(|_| {
                let shared = Arc::clone(&self.shared);
                std::thread::spawn(move || fill_loop(&shared))
            })
            .collect()
    }

    /// Asks the background fillers to stop after their current prime set.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<SecretPrimes>> {
        // A panic while holding this lock cannot leave the queue inconsistent (push/pop only).
        self.shared.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Moves the calling thread to the idle scheduling class (`SCHED_IDLE` on Linux: it runs only
/// when no normal thread of the machine wants the CPU). Unprivileged; irreversible for the
/// thread without privileges, so call it only in threads made for background work.
pub fn lower_thread_priority() -> Result<(), PriorityError> {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        )
        .map_err(|e| PriorityError(format!("SCHED_IDLE: {e:?}")))
    }
    #[cfg(not(target_os = "linux"))]
    {
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
            .map_err(|e| PriorityError(format!("lowest priority: {e:?}")))
    }
}

/// The OS refused to lower a thread's scheduling priority (the message names the call and reason).
#[derive(Debug, thiserror::Error)]
#[error("could not lower the thread's priority: {0}")]
pub struct PriorityError(String);

fn fill_loop(shared: &Shared) {
    // Best effort: where the OS refuses, the filler still fills at normal priority.
    let _ = lower_thread_priority();
    // How many sets are being generated right now is not tracked: with several fillers the
    // pool may overshoot its target by at most `threads - 1` entries, which is harmless.
    loop {
        {
            let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            while q.len() >= shared.target && !shared.stop.load(Ordering::SeqCst) {
                q = shared.changed.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let set = SecretPrimes::generate();
        let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.push_back(set);
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<SecretPrimes> {
        serde_json::from_str(include_str!("../tests/fixtures/test-primes.json")).unwrap()
    }

    fn key(p: &SecretPrimes) -> Vec<u8> {
        p.0.primes_ref()[0].to_bytes_msf()
    }

    #[test]
    fn each_entry_is_handed_out_once() {
        let pool = PrimePool::new(8);
        let sets = fixture();
        pool.restore(sets.clone());
        assert_eq!(pool.len(), sets.len());
        assert_eq!(
            pool.snapshot().len(),
            sets.len(),
            "snapshot does not remove"
        );
        let mut seen = Vec::new();
        while let Some(p) = pool.take() {
            assert!(!seen.contains(&key(&p)), "a prime set came out twice");
            seen.push(key(&p));
        }
        assert_eq!(seen.len(), sets.len());
        assert!(pool.is_empty());
        // a clone of the handle shares the pool
        let other = pool.clone();
        pool.restore(sets.into_iter().take(1));
        assert_eq!(other.len(), 1);
        assert!(other.take().is_some() && pool.take().is_none());
    }

    #[test]
    fn debug_never_shows_the_primes() {
        let p = &fixture()[0];
        let shown = format!("{p:?}");
        assert_eq!(shown, "SecretPrimes(<redacted>)");
        let hex_prefix = hex::encode(&key(p)[..4]);
        assert!(!shown.contains(&hex_prefix));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn filler_threads_run_in_the_idle_scheduling_class() {
        // Field 41 of /proc/thread-self/stat is the scheduling policy; SCHED_IDLE is 5.
        let policy = || -> u32 {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            let rest = &stat[stat.rfind(')').unwrap() + 1..];
            rest.split_whitespace().nth(38).unwrap().parse().unwrap()
        };
        let (before, after) = std::thread::spawn(move || {
            let before = policy();
            lower_thread_priority().unwrap();
            (before, policy())
        })
        .join()
        .unwrap();
        assert_eq!(before, 0, "a new thread starts as SCHED_OTHER");
        assert_eq!(after, 5, "lowered to SCHED_IDLE");
        // The calling thread of the test is untouched.
        assert_eq!(policy(), 0);
    }

    #[test]
    fn stopped_fillers_exit() {
        // target 0: the fillers have nothing to do and must return once stopped
        let pool = PrimePool::new(0);
        let handles = pool.spawn_fillers(2);
        pool.stop();
        for h in handles {
            h.join().unwrap();
        }
        assert!(pool.is_empty());
    }
}
