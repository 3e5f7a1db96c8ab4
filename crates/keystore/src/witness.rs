//! The rollback witness file `<db-file-path>.hwm` ([`crate::Witness::Sidecar`]): the highest
//! header counter this store has committed, one line `mpc-keystore-hwm 1 <counter>`.
//!
//! Commits do not wait for it. [`Hwm::seen`] hands the new counter to a writer thread, which
//! replaces the file atomically ([`fsutil::atomic_write`]: temporary file, fsync, rename, fsync
//! of the directory) with the newest counter it was handed; commits made while it writes share
//! its next write. The file only grows, except when a new store is created ([`Hwm::reset`]).
//! [`Hwm::flush`] waits until the file holds every counter handed over; the store's last owner
//! does so when it closes. What a crash costs: the file can be behind the store by the commits
//! of the last few milliseconds, and a rollback to one of those states is not noticed; a
//! rollback to anything older is.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::Result;
use crate::fsutil;

/// The witness file and its writer thread.
pub(crate) struct Hwm {
    path: PathBuf,
    state: Mutex<State>,
    changed: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    /// The newest counter handed over.
    wanted: u64,
    /// The counter in the file (as far as this process knows).
    written: u64,
    /// The thread is writing.
    busy: bool,
    stop: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hwm {
    pub(crate) fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Hwm {
            path,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            thread: Mutex::new(None),
        })
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Writes `counter` now, even below what the file holds (a new store replaces a deleted
    /// one's witness), after any write in flight.
    pub(crate) fn reset(&self, counter: u64) -> Result<()> {
        let mut st = lock(&self.state);
        while st.busy {
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        fsutil::atomic_write(&self.path, line(counter).as_bytes())?;
        st.written = counter;
        st.wanted = counter;
        Ok(())
    }

    /// A commit reached `counter`: the writer thread brings the file up to it soon.
    pub(crate) fn seen(self: &Arc<Self>, counter: u64) {
        let mut st = lock(&self.state);
        if counter <= st.wanted {
            return;
        }
        st.wanted = counter;
        self.changed.notify_all();
        drop(st);
        let mut thread = lock(&self.thread);
        if thread.is_none() {
            let me = self.clone();
            match std::thread::Builder::new()
                .name("keystore-hwm".into())
                .spawn(move || me.write_loop())
            {
                Ok(h) => *thread = Some(h),
                Err(e) => {
                    // No thread: write on the committing thread instead.
                    tracing::warn!(error = %e, "could not start the high-water-mark writer");
                    drop(thread);
                    self.write_pending();
                }
            }
        }
    }

    /// Waits until the file holds the newest counter handed over.
    pub(crate) fn flush(&self) {
        let mut st = lock(&self.state);
        while st.busy || (st.wanted > st.written && self.running()) {
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        drop(st);
        if !self.running() {
            self.write_pending();
        }
    }

    /// Flushes, then ends the writer thread.
    pub(crate) fn close(&self) {
        self.flush();
        lock(&self.state).stop = true;
        self.changed.notify_all();
        if let Some(h) = lock(&self.thread).take() {
            let _ = h.join();
        }
    }

    fn running(&self) -> bool {
        lock(&self.thread).is_some()
    }

    fn write_loop(&self) {
        let mut st = lock(&self.state);
        loop {
            if st.wanted > st.written {
                let counter = st.wanted;
                st.busy = true;
                drop(st);
                self.write(counter);
                st = lock(&self.state);
                st.written = st.written.max(counter);
                st.busy = false;
                self.changed.notify_all();
            } else if st.stop {
                return;
            } else {
                st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        }
    }

    /// Writes what is pending on this thread (no writer thread).
    fn write_pending(&self) {
        let mut st = lock(&self.state);
        if st.wanted > st.written {
            let counter = st.wanted;
            self.write(counter);
            st.written = counter;
        }
    }

    /// Failing to write only weakens rollback detection, so it is logged, not returned: the
    /// data write itself already succeeded. A later commit tries again.
    fn write(&self, counter: u64) {
        if let Err(e) = fsutil::atomic_write(&self.path, line(counter).as_bytes()) {
            tracing::error!(path = %self.path.display(), error = %e, "could not update rollback high-water mark");
        }
    }
}

fn line(counter: u64) -> String {
    format!("mpc-keystore-hwm 1 {counter}\n")
}
