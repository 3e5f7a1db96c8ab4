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

/// The node's audit log, or none (`[audit] enable = false`). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct NodeAudit(Option<AuditWriter>);

impl NodeAudit {
    /// No audit log.
    pub fn off() -> Self {
        NodeAudit(None)
    }

    /// Opens (or creates, 0600) the log at `path`, exclusively: a second process on the same
    /// file is refused. Logs the head it resumes from, so that operators can record it.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let log = AuditLog::open(path)?;
        tracing::info!(path = %path.display(), head = %log.head(), "audit log open");
        Ok(NodeAudit(Some(AuditWriter::spawn(log)?)))
    }

    /// Records `event` with `fields` (a JSON object). Errors are logged, not returned.
    pub fn record(&self, event: &'static str, fields: Value) {
        let Some(w) = &self.0 else { return };
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
        self.0.as_ref().and_then(|w| w.flush().ok())
    }

    /// Entries that could not be written since the start.
    pub fn failures(&self) -> u64 {
        self.0.as_ref().map_or(0, AuditWriter::failures)
    }
}
