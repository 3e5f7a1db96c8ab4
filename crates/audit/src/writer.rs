//! [`AuditWriter`]: an [`AuditLog`] on a thread of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use crate::{AuditError, AuditLog, Head};

/// Entries queued before [`AuditWriter::record`] waits for the disk.
const QUEUE: usize = 4096;
/// Entries written per `fdatasync`, at most.
const BATCH: usize = 256;

enum Msg {
    Entry {
        at: u64,
        event: &'static str,
        fields: serde_json::Map<String, serde_json::Value>,
    },
    Flush(SyncSender<Head>),
}

#[derive(Debug)]
struct Shared {
    head: Mutex<Head>,
    failures: AtomicU64,
}

/// Queues entries for a log written by a thread of its own, in the order they are recorded;
/// each batch is made durable before the next is taken. Clones share the log. The thread ends
/// (after a last `fdatasync`) when every clone is dropped.
#[derive(Debug, Clone)]
pub struct AuditWriter {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
}

impl AuditWriter {
    /// Starts the writer thread for `log`.
    pub fn spawn(log: AuditLog) -> Result<AuditWriter, AuditError> {
        let (tx, rx) = sync_channel(QUEUE);
        let shared = Arc::new(Shared {
            head: Mutex::new(log.head()),
            failures: AtomicU64::new(0),
        });
        let path = log.path().display().to_string();
        let s = shared.clone();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run(log, &rx, &s))
            .map_err(|source| AuditError::Io { path, source })?;
        Ok(AuditWriter { tx, shared })
    }

    /// Queues an entry (waits only while [`QUEUE`] entries are waiting for the disk). An entry
    /// the thread cannot write is logged with `tracing` and counted ([`Self::failures`]).
    pub fn record(
        &self,
        event: &'static str,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), AuditError> {
        self.tx
            .send(Msg::Entry {
                at: crate::now_ms(),
                event,
                fields,
            })
            .map_err(|_| AuditError::Stopped)
    }

    /// Waits until everything recorded before is durable; returns the head then. Blocking:
    /// from async code, call it on a blocking thread.
    pub fn flush(&self) -> Result<Head, AuditError> {
        let (tx, rx) = sync_channel(1);
        self.tx
            .send(Msg::Flush(tx))
            .map_err(|_| AuditError::Stopped)?;
        rx.recv().map_err(|_| AuditError::Stopped)
    }

    /// The head after the last durable batch.
    pub fn head(&self) -> Head {
        self.shared
            .head
            .lock()
            .map(|h| *h)
            .unwrap_or_else(|p| *p.into_inner())
    }

    /// Entries that could not be written since the start.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }
}

fn run(mut log: AuditLog, rx: &Receiver<Msg>, shared: &Shared) {
    let mut waiting: Vec<SyncSender<Head>> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Entry { at, event, fields } => {
                    if let Err(e) = log.append(at, event, fields) {
                        shared.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(event, error = %e, "audit: entry not written");
                    }
                    n += 1;
                }
                Msg::Flush(reply) => waiting.push(reply),
            }
            if n < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if let Err(e) = log.sync() {
            shared.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "audit: fdatasync failed");
        }
        let head = log.head();
        if let Ok(mut h) = shared.head.lock() {
            *h = head;
        }
        for w in waiting.drain(..) {
            let _ = w.send(head);
        }
    }
    let _ = log.sync();
}
