//! Hash-chained, append-only audit logs, and their verification.
//!
//! # Format (pinned by `tests/format.rs`)
//!
//! A log is a UTF-8 text file of lines, each ended by `\n`, each one JSON object with exactly
//! these members, in this order:
//!
//! ```text
//! {"seq":1,"at":1764900000000,"prev":"0000…0000","event":"unsealed","fields":{…}}
//! ```
//!
//! * `seq`: 1 for the first entry of the file, then +1 per entry;
//! * `at`: the writer's clock, milliseconds since the Unix epoch;
//! * `prev`: lowercase hex of SHA-256 over the previous line's bytes (without its `\n`); 64
//!   zeros for `seq` 1;
//! * `event`: what happened (a short kebab-case name, e.g. `callback-decision`);
//! * `fields`: a JSON object with the event's details.
//!
//! The **head** of a log is the last entry's `seq` and the SHA-256 of its line. Changing,
//! removing, inserting or reordering any entry breaks the chain at the next entry (its `prev`
//! no longer matches, or `seq` skips); [`verify`] names the line. Removing or changing the
//! *last* entries leaves a shorter, consistent chain: that is only caught against a head
//! recorded elsewhere ([`verify`]'s `expect`), so operators copy the head (which every
//! process logs at start and `verify` prints) to a place the host cannot rewrite, or ship the
//! log to one as it grows.
//!
//! # Writing
//!
//! [`AuditLog`] appends to a file (mode 0600; resumed after a restart from the last complete
//! line; a line torn by a crash is cut off and the cut is itself recorded). [`AuditWriter`]
//! owns one on a thread of its own: callers queue entries without blocking on the disk, and
//! the thread writes them in order and makes each batch durable (`fdatasync`) before taking
//! the next.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod log;
mod verify;
mod writer;

pub use log::{AuditError, AuditLog, LOCK_WAIT};
pub use verify::{Problem, ProblemKind, Report, verify, verify_file};
pub use writer::AuditWriter;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest line a log may hold (bytes, without `\n`); a writer refuses longer entries and the
/// verifier reports them.
pub const MAX_LINE: usize = 64 * 1024;

/// An entry's `fields`.
pub type Fields = serde_json::Map<String, serde_json::Value>;

/// `prev` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The last entry of a log: its sequence number and the SHA-256 of its line (`seq` 0 and
/// [`GENESIS`] for an empty log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Head {
    /// Sequence number of the last entry.
    pub seq: u64,
    /// SHA-256 of the last line.
    pub hash: [u8; 32],
}

impl Head {
    /// An empty log's head.
    pub const EMPTY: Head = Head {
        seq: 0,
        hash: GENESIS,
    };
}

impl std::fmt::Display for Head {
    /// `SEQ:HASH`, the form `verify --expect` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, hex::encode(self.hash))
    }
}

impl std::str::FromStr for Head {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected SEQ:HASH (as verify prints it)"))?;
        let seq = seq
            .parse()
            .map_err(|_| format!("{seq:?}: not a sequence number"))?;
        let mut h = [0u8; 32];
        hex::decode_to_slice(hash, &mut h).map_err(|_| format!("{hash:?}: not 64 hex digits"))?;
        Ok(Head { seq, hash: h })
    }
}

/// One entry as it is written (member order is the format's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Sequence number.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    /// Hex SHA-256 of the previous line.
    pub prev: String,
    /// What happened.
    pub event: String,
    /// Details.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// SHA-256 of a line (without its `\n`).
pub fn line_hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
