//! The server's files in its data directory, all created with mode 0600:
//!
//! * `audit.jsonl`: one JSON line per decision (and per WAIT release), appended;
//! * `state.json`: today's approved totals, pending WAITs, released requests, approved
//!   callback ids; rewritten atomically (temporary file, fsync, rename) after every change;
//! * `rawdata-signatures.jsonl`: the `/rawdata_signature` reports, appended.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mpc_wire::callback::Check;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::amount::Amount;

/// Audit log file name.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// State file name.
pub const STATE_FILE: &str = "state.json";
/// Reported signatures file name.
pub const RESULTS_FILE: &str = "rawdata-signatures.jsonl";

/// A file operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct StoreError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError {
        path: path.to_owned(),
        source,
    }
}

/// A request waiting for a human.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    /// Hash of the request without its callback_id (see [`fingerprint`]).
    pub fingerprint: String,
    /// `request_type`.
    pub request_type: String,
    /// `extra_info.request_id`.
    pub request_id: String,
    /// `extra_info.sino_id`.
    pub sino_id: String,
    /// Why it waits.
    pub reason: String,
    /// When it first waited (Unix seconds).
    pub since: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct State {
    /// UTC day (days since 1970-01-01) of `spent` and `approved`.
    day: u64,
    spent: BTreeMap<String, Amount>,
    /// callback_id → fingerprint of requests approved today (a repeated ask is not charged
    /// twice).
    approved: BTreeMap<String, String>,
    /// callback_id → request waiting for a human.
    pending: BTreeMap<String, Pending>,
    /// Fingerprints a human released.
    released: BTreeSet<String>,
}

/// The data directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    state: State,
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (proleptic Gregorian, UTC).
pub fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil-from-days (H. Hinnant), on days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// SHA-256 (hex) of the request's Go form with the callback_id left out: the same request
/// asked again under a new callback_id has the same fingerprint.
pub fn fingerprint(check: &Check) -> String {
    let mut c = check.clone();
    c.callback_id.clear();
    hex::encode(Sha256::digest(c.to_go_json()))
}

/// Opens `path` for appending, creating it with mode 0600.
fn open_append(path: &Path) -> Result<File, StoreError> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(io_err(path))
}

impl Store {
    /// Opens (creating) the data directory and loads the state file.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(STATE_FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        Ok(Store {
            dir: dir.to_owned(),
            state,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a new day's totals when the UTC day changed.
    pub fn roll_day(&mut self, day: u64) {
        if self.state.day != day {
            self.state.day = day;
            self.state.spent.clear();
            self.state.approved.clear();
        }
    }

    /// Today's approved total under a limit key.
    pub fn spent(&self, key: &str) -> Amount {
        self.state.spent.get(key).copied().unwrap_or_default()
    }

    /// Whether `callback_id` was approved today for the same request.
    pub fn already_approved(&self, callback_id: &str, fingerprint: &str) -> bool {
        self.state.approved.get(callback_id).map(String::as_str) == Some(fingerprint)
    }

    /// Whether a human released this request.
    pub fn is_released(&self, fingerprint: &str) -> bool {
        self.state.released.contains(fingerprint)
    }

    /// Records an approval: adds the charge, remembers the callback_id, consumes a release.
    pub fn record_approval(
        &mut self,
        callback_id: &str,
        fingerprint: &str,
        charge: Option<(String, Amount)>,
    ) {
        if let Some((key, amount)) = charge {
            let total = self.spent(&key).checked_add(amount).unwrap_or(Amount::ZERO);
            self.state.spent.insert(key, total);
        }
        if !callback_id.is_empty() {
            self.state
                .approved
                .insert(callback_id.to_owned(), fingerprint.to_owned());
        }
        self.state.released.remove(fingerprint);
        self.state.pending.remove(callback_id);
    }

    /// Records a WAIT (keeps the first time it waited).
    pub fn record_wait(&mut self, callback_id: &str, pending: Pending) {
        self.state
            .pending
            .entry(callback_id.to_owned())
            .or_insert(pending);
    }

    /// Forgets a pending WAIT (the request was rejected after all).
    pub fn forget_pending(&mut self, callback_id: &str) {
        self.state.pending.remove(callback_id);
    }

    /// Releases a pending WAIT: its request (by fingerprint, so also under a new
    /// callback_id) skips the WAIT band once.
    pub fn release(&mut self, callback_id: &str) -> Option<Pending> {
        let p = self.state.pending.remove(callback_id)?;
        self.state.released.insert(p.fingerprint.clone());
        Some(p)
    }

    /// The requests waiting for a human.
    pub fn pending(&self) -> &BTreeMap<String, Pending> {
        &self.state.pending
    }

    /// Writes the state file atomically (0600).
    pub fn save(&self) -> Result<(), StoreError> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(&self.state).map_err(|e| StoreError {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        {
            let mut o = OpenOptions::new();
            o.create(true).write(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            let mut f = o.open(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&bytes).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Appends one JSON line to a file of the data directory.
    pub fn append(&self, file: &str, record: &serde_json::Value) -> Result<(), StoreError> {
        let path = self.dir.join(file);
        let mut line = serde_json::to_vec(record).map_err(|e| StoreError {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        let mut f = open_append(&path)?;
        f.write_all(&line).map_err(io_err(&path))?;
        f.sync_data().map_err(io_err(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpc_wire::callback::ExtraInfo;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn fingerprint_ignores_only_the_callback_id() {
        let a = Check::keygen("cb-1", 2, 3, "x", vec!["a".into()], ExtraInfo::default());
        let mut b = a.clone();
        b.callback_id = "cb-2".into();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.request_detail.t = 3;
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn state_round_trips_and_days_roll() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        s.roll_day(10);
        s.record_approval(
            "cb",
            "fp",
            Some(("ETH/ETH".into(), Amount::parse("1.5").unwrap())),
        );
        s.record_approval(
            "cb2",
            "fp2",
            Some(("ETH/ETH".into(), Amount::parse("1").unwrap())),
        );
        s.record_wait(
            "cb3",
            Pending {
                fingerprint: "fp3".into(),
                request_type: "sign".into(),
                request_id: "r".into(),
                sino_id: "s".into(),
                reason: "big".into(),
                since: 1,
            },
        );
        s.save().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.spent("ETH/ETH"), Amount::parse("2.5").unwrap());
        assert!(s.already_approved("cb", "fp"));
        assert!(!s.already_approved("cb", "other"));
        assert_eq!(s.release("cb3").unwrap().request_id, "r");
        assert!(s.release("cb3").is_none());
        assert!(s.is_released("fp3"));
        s.record_approval("cb4", "fp3", None);
        assert!(!s.is_released("fp3"), "a release is used once");
        s.roll_day(11);
        assert_eq!(s.spent("ETH/ETH"), Amount::ZERO);
        assert!(!s.already_approved("cb", "fp"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            s.append(AUDIT_FILE, &serde_json::json!({"a": 1})).unwrap();
            for f in [STATE_FILE, AUDIT_FILE] {
                let mode = fs::metadata(dir.path().join(f))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{f}");
            }
        }
    }
}
