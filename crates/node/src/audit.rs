//! The node's audit trail (`[audit]`, on by default): a hash-chained log ([`mpc_audit`]) of
//! what an auditor asks about a key holder. Entries (event, then fields):
//!
//! * `initialized` (node id), `unsealed`, `unseal-refused` (reason), `password-change-started`,
//!   `password-changed`, `password-change-failed` (reason), `data-key-rotated` (records),
//!   `backup-taken` (counter), `platform-key-changed` (key);
//! * `callback-decision`: requestType, sinoId, requestId, decision (`approved`, `rejected`,
//!   `error`) and reason;
//! * `signature`: taskId, sinoId, requestId, keyId, algorithm, signType, path, digest (hex).
//!
//! No secret goes in: no password, share, key material or signature. The writer thread makes
//! entries durable in batches; a failure to write is logged and counted, and never stops a
//! run (the log is evidence, not a gate).

use std::path::Path;

use mpc_audit::{AuditError, AuditLog, AuditWriter, Head};
use serde_json::{Map, Value};

/// The node's audit log, or none (`[audit] enable = false`). Cheap to clone; clones share
/// one writer, which [`NodeAudit::close`] ends for all of them (the node's shutdown: runs that
/// outlive it record nothing more, and a restart in the same process can open the file again).
#[derive(Debug, Clone, Default)]
pub struct NodeAudit(std::sync::Arc<std::sync::RwLock<Option<AuditWriter>>>);

impl NodeAudit {
    /// No audit log.
    pub fn off() -> Self {
        NodeAudit::default()
    }

    /// Opens (or creates, 0600) the log at `path`, exclusively: a second writer of the same
    /// file is refused. Logs the head it resumes from, so that operators can record it.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let log = AuditLog::open(path)?;
        tracing::info!(path = %path.display(), head = %log.head(), "audit log open");
        Ok(NodeAudit(std::sync::Arc::new(std::sync::RwLock::new(
            Some(AuditWriter::spawn(log)?),
        ))))
    }

    fn writer(&self) -> Option<AuditWriter> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Records `event` with `fields` (a JSON object). Errors are logged, not returned.
    pub fn record(&self, event: &'static str, fields: Value) {
        let Some(w) = self.writer() else { return };
        let fields = match fields {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => {
                let mut m = Map::new();
                m.insert("value".into(), other);
                m
            }
        };
        if let Err(e) = w.record(event, fields) {
            tracing::error!(event, error = %e, "audit: entry not recorded");
        }
    }

    /// Waits until every entry recorded so far is durable (tests, shutdown); the head then.
    pub fn flush(&self) -> Option<Head> {
        self.writer().and_then(|w| w.flush().ok())
    }

    /// Makes what was recorded durable and ends the writer for every clone: later entries
    /// are not recorded. The file is let go once the writer thread has finished.
    pub fn close(&self) {
        let w = match self.0.write() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(w) = w {
            let _ = w.flush();
        }
    }

    /// Entries that could not be written since the start.
    pub fn failures(&self) -> u64 {
        self.writer().map_or(0, |w| w.failures())
    }
}
