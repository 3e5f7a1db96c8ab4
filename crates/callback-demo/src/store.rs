//! The server's files in its data directory, all created with mode 0600:
//!
//! * `audit.jsonl`: one JSON line per decision (and per WAIT release and stored report),
//!   appended. It is also the state's journal: a line that changed the state carries the
//!   change as `"effect"` (see [`Effect`]), and the line is made durable (one `fdatasync`)
//!   before the answer goes out. One synced write per decision.
//! * `state.json`: a checkpoint of the state (today's approved totals, pending WAITs, released
//!   requests, approved callback ids) and `journal_offset`, the length of `audit.jsonl` it
//!   covers; rewritten atomically (temporary file, fsync, rename) every [`CHECKPOINT_LINES`]
//!   journal lines and after a start that replayed lines. At start the lines after
//!   `journal_offset` are replayed onto it; a last line cut short by a crash (no newline) was
//!   never answered and is cut off.
//! * `rawdata-signatures.jsonl`: the `/rawdata_signature` reports, appended.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mpc_wire::callback::Check;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::amount::Amount;

/// Audit log file name (also the state's journal).
pub const AUDIT_FILE: &str = "audit.jsonl";
/// State file name.
pub const STATE_FILE: &str = "state.json";
/// Reported signatures file name.
pub const RESULTS_FILE: &str = "rawdata-signatures.jsonl";
/// Journal lines between two checkpoints of `state.json`.
pub const CHECKPOINT_LINES: u32 = 512;

/// A file operation failed, or a file is not what this server writes.
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

fn corrupt(path: &Path, what: impl Into<String>) -> StoreError {
    StoreError {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, what.into()),
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

/// A change of the state, as its journal line records it (`"effect"`), applied to the state
/// by [`Store::record`] and again, identically, by the replay at start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// An approval: adds the charge, remembers the callback_id, consumes a release.
    Approve {
        /// The request's [`fingerprint`].
        fingerprint: String,
        /// Limit key and amount charged, if the request is charged.
        charge: Option<(String, Amount)>,
    },
    /// A WAIT (the first time it waited is kept).
    Wait(Pending),
    /// A rejection: forgets a pending WAIT under this callback_id.
    Reject,
    /// An operator released the WAIT under this callback_id.
    Release,
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
    /// Length of `audit.jsonl` this checkpoint covers (absent in files of older versions,
    /// which rewrote this file on every change: they cover the whole journal; without a
    /// state file the journal is replayed from its start).
    journal_offset: Option<u64>,
}

impl State {
    /// Starts a new day's totals when the UTC day changed.
    fn roll_day(&mut self, day: u64) {
        if self.day != day {
            self.day = day;
            self.spent.clear();
            self.approved.clear();
        }
    }

    fn apply(&mut self, callback_id: &str, effect: &Effect) {
        match effect {
            Effect::Approve {
                fingerprint,
                charge,
            } => {
                if let Some((key, amount)) = charge {
                    let spent = self.spent.get(key).copied().unwrap_or_default();
                    let total = spent.checked_add(*amount).unwrap_or(Amount::ZERO);
                    self.spent.insert(key.clone(), total);
                }
                if !callback_id.is_empty() {
                    self.approved
                        .insert(callback_id.to_owned(), fingerprint.clone());
                }
                self.released.remove(fingerprint);
                self.pending.remove(callback_id);
            }
            Effect::Wait(p) => {
                self.pending
                    .entry(callback_id.to_owned())
                    .or_insert_with(|| p.clone());
            }
            Effect::Reject => {
                self.pending.remove(callback_id);
            }
            Effect::Release => {
                if let Some(p) = self.pending.remove(callback_id) {
                    self.released.insert(p.fingerprint);
                }
            }
        }
    }
}

/// The fields of one audit line besides its time and effect.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// `/check`, `rawdata_signature` or `admin`.
    pub endpoint: &'a str,
    /// The request's `callback_id`.
    pub callback_id: &'a str,
    /// `extra_info.request_id`.
    pub request_id: &'a str,
    /// `extra_info.sino_id`.
    pub sino_id: &'a str,
    /// `request_type`.
    pub request_type: &'a str,
    /// `APPROVE`, `REJECT`, `WAIT`, `RELEASE`, `STORED` or `ERROR`.
    pub decision: &'a str,
    /// Why.
    pub reason: &'a str,
}

impl<'a> Entry<'a> {
    /// The entry for a request.
    pub fn of(check: &'a Check, endpoint: &'a str, decision: &'a str, reason: &'a str) -> Self {
        Entry {
            endpoint,
            callback_id: &check.callback_id,
            request_id: &check.extra_info.request_id,
            sino_id: &check.extra_info.sino_id,
            request_type: &check.request_type,
            decision,
            reason,
        }
    }
}

/// One journal line as written (and read back at start).
#[derive(Serialize, Deserialize)]
struct Line {
    ts: String,
    ts_unix: u64,
    endpoint: String,
    callback_id: String,
    request_id: String,
    sino_id: String,
    request_type: String,
    decision: String,
    reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    effect: Option<Effect>,
}

/// A journal line written but not yet durable: [`Durable::sync`] makes it so. Call it after
/// letting go of the store's lock, so that decisions in flight share their syncs; answer only
/// after it succeeded.
#[must_use = "an answer may only go out once its journal line is durable"]
pub struct Durable {
    file: Arc<File>,
    path: PathBuf,
}

impl Durable {
    /// `fdatasync` of the journal (this line and every earlier one).
    pub fn sync(self) -> Result<(), StoreError> {
        self.file.sync_data().map_err(io_err(&self.path))
    }
}

/// The data directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    state: State,
    journal: Arc<File>,
    journal_len: u64,
    since_checkpoint: u32,
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

/// Opens `path` for appending (and reading), creating it with mode 0600.
fn open_append(path: &Path) -> Result<File, StoreError> {
    open_private(OpenOptions::new().read(true).append(true), path)
}

/// Creates or truncates `path` for writing, mode 0600 if created.
fn create_private(path: &Path) -> Result<File, StoreError> {
    open_private(OpenOptions::new().write(true).truncate(true), path)
}

/// Opens `path` with `o`, creating it with mode 0600.
fn open_private(o: &mut OpenOptions, path: &Path) -> Result<File, StoreError> {
    o.create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(io_err(path))
}

impl Store {
    /// Opens (creating) the data directory, loads the checkpoint and replays the journal
    /// lines after it. A file this server did not write, or a journal line that is not one
    /// of its entries, is an error naming the file (and the line).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(STATE_FILE);
        let mut state: State = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| corrupt(&path, format!("not this server's state file: {e}")))?,
            // No checkpoint yet: the whole journal is the state.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                journal_offset: Some(0),
                ..State::default()
            },
            Err(e) => return Err(io_err(&path)(e)),
        };
        let journal_path = dir.join(AUDIT_FILE);
        let mut journal = open_append(&journal_path)?;
        let len = journal.metadata().map_err(io_err(&journal_path))?.len();
        let from = state.journal_offset.unwrap_or(len);
        if from > len {
            return Err(corrupt(
                &journal_path,
                format!(
                    "{STATE_FILE} covers {from} bytes of it but it has {len}: it was cut or replaced; restore both files together"
                ),
            ));
        }
        let (replayed, journal_len) = replay(&mut state, &mut journal, &journal_path, from, len)?;
        state.journal_offset = Some(journal_len);
        let store = Store {
            dir: dir.to_owned(),
            state,
            journal: Arc::new(journal),
            journal_len,
            since_checkpoint: 0,
        };
        if replayed > 0 || journal_len != len {
            tracing::info!(lines = replayed, "state rebuilt from the journal");
            store.checkpoint()?;
        }
        Ok(store)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a new day's totals when the UTC day changed.
    pub fn roll_day(&mut self, day: u64) {
        self.state.roll_day(day);
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

    /// The requests waiting for a human.
    pub fn pending(&self) -> &BTreeMap<String, Pending> {
        &self.state.pending
    }

    /// Appends `entry` at `now` to the journal, applying `effect` to the state first (the
    /// day rolled to `now`'s). The line is written, not yet durable: sync the returned
    /// [`Durable`] (after letting go of the lock) before answering. Every
    /// [`CHECKPOINT_LINES`] lines `state.json` is rewritten (the journal synced first).
    pub fn record(
        &mut self,
        now: u64,
        entry: Entry<'_>,
        effect: Option<Effect>,
    ) -> Result<Durable, StoreError> {
        if let Some(e) = &effect {
            self.state.roll_day(now / 86_400);
            self.state.apply(entry.callback_id, e);
        }
        let line = Line {
            ts: rfc3339(now),
            ts_unix: now,
            endpoint: entry.endpoint.to_owned(),
            callback_id: entry.callback_id.to_owned(),
            request_id: entry.request_id.to_owned(),
            sino_id: entry.sino_id.to_owned(),
            request_type: entry.request_type.to_owned(),
            decision: entry.decision.to_owned(),
            reason: entry.reason.to_owned(),
            effect,
        };
        let path = self.dir.join(AUDIT_FILE);
        let mut bytes = serde_json::to_vec(&line).map_err(|e| corrupt(&path, e.to_string()))?;
        bytes.push(b'\n');
        if let Err(e) = (&*self.journal).write_all(&bytes) {
            // A partial line would be joined to the next one: cut it back off.
            let _ = self.journal.set_len(self.journal_len);
            return Err(io_err(&path)(e));
        }
        self.journal_len += bytes.len() as u64;
        self.since_checkpoint += 1;
        if self.since_checkpoint >= CHECKPOINT_LINES {
            self.journal.sync_data().map_err(io_err(&path))?;
            self.state.journal_offset = Some(self.journal_len);
            self.checkpoint()?;
            self.since_checkpoint = 0;
        }
        Ok(Durable {
            file: self.journal.clone(),
            path,
        })
    }

    /// Writes the checkpoint `state.json` atomically (0600).
    fn checkpoint(&self) -> Result<(), StoreError> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let bytes =
            serde_json::to_vec_pretty(&self.state).map_err(|e| corrupt(&path, e.to_string()))?;
        {
            let mut f = create_private(&tmp)?;
            f.write_all(&bytes).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Appends one JSON line to a file of the data directory and syncs it (the reported
    /// signatures; not the journal, which [`Store::record`] writes).
    pub fn append(&self, file: &str, record: &serde_json::Value) -> Result<(), StoreError> {
        let path = self.dir.join(file);
        let mut line = serde_json::to_vec(record).map_err(|e| corrupt(&path, e.to_string()))?;
        line.push(b'\n');
        let mut f = open_append(&path)?;
        f.write_all(&line).map_err(io_err(&path))?;
        f.sync_data().map_err(io_err(&path))
    }
}

/// Applies the journal's lines in `from..len` to `state`, reading one line at a time; returns
/// how many carried an effect and the journal's length afterwards (a last line without its
/// newline, cut short by a crash before it was answered, is cut off).
fn replay(
    state: &mut State,
    journal: &mut File,
    path: &Path,
    from: u64,
    len: u64,
) -> Result<(u32, u64), StoreError> {
    journal.seek(SeekFrom::Start(from)).map_err(io_err(path))?;
    let mut reader = BufReader::new((&*journal).take(len - from));
    let mut raw = Vec::new();
    let mut replayed = 0;
    let mut at = from;
    loop {
        raw.clear();
        let n = reader.read_until(b'\n', &mut raw).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        if raw.last() != Some(&b'\n') {
            tracing::warn!(
                path = %path.display(),
                bytes = n,
                "cutting off a journal line left incomplete by a crash (it was never answered)"
            );
            journal.set_len(at).map_err(io_err(path))?;
            journal.sync_data().map_err(io_err(path))?;
            break;
        }
        let line: Line = serde_json::from_slice(&raw).map_err(|e| {
            corrupt(
                path,
                format!("the journal line at byte {at} is not one of this server's entries: {e}"),
            )
        })?;
        if let Some(effect) = &line.effect {
            state.roll_day(line.ts_unix / 86_400);
            state.apply(&line.callback_id, effect);
            replayed += 1;
        }
        at += n as u64;
    }
    Ok((replayed, at))
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

    fn entry<'a>(callback_id: &'a str, decision: &'a str) -> Entry<'a> {
        Entry {
            endpoint: "check",
            callback_id,
            request_id: "r",
            sino_id: "s",
            request_type: "sign",
            decision,
            reason: "because",
        }
    }

    fn approve(fp: &str, charge: Option<(&str, &str)>) -> Option<Effect> {
        Some(Effect::Approve {
            fingerprint: fp.into(),
            charge: charge.map(|(k, a)| (k.to_owned(), Amount::parse(a).unwrap())),
        })
    }

    fn wait(fp: &str) -> Option<Effect> {
        Some(Effect::Wait(Pending {
            fingerprint: fp.into(),
            request_type: "sign".into(),
            request_id: "r".into(),
            sino_id: "s".into(),
            reason: "big".into(),
            since: 1,
        }))
    }

    /// Records with a sync, as the server does.
    fn rec(s: &mut Store, now: u64, e: Entry<'_>, effect: Option<Effect>) {
        s.record(now, e, effect).unwrap().sync().unwrap();
    }

    const DAY: u64 = 86_400;

    #[test]
    fn the_state_is_rebuilt_from_the_journal_and_days_roll() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        rec(
            &mut s,
            10 * DAY,
            entry("cb", "APPROVE"),
            approve("fp", Some(("ETH/ETH", "1.5"))),
        );
        rec(
            &mut s,
            10 * DAY + 5,
            entry("cb2", "APPROVE"),
            approve("fp2", Some(("ETH/ETH", "1"))),
        );
        rec(&mut s, 10 * DAY + 6, entry("cb3", "WAIT"), wait("fp3"));
        rec(&mut s, 10 * DAY + 7, entry("cb4", "WAIT"), wait("fp4"));
        rec(
            &mut s,
            10 * DAY + 8,
            entry("cb4", "REJECT"),
            Some(Effect::Reject),
        );
        rec(&mut s, 10 * DAY + 9, entry("x", "STORED"), None);
        assert!(
            !dir.path().join(STATE_FILE).exists(),
            "no checkpoint yet: the journal is the state"
        );
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        assert!(
            dir.path().join(STATE_FILE).exists(),
            "a start that replayed lines checkpoints"
        );
        assert_eq!(s.spent("ETH/ETH"), Amount::parse("2.5").unwrap());
        assert!(s.already_approved("cb", "fp"));
        assert!(!s.already_approved("cb", "other"));
        assert_eq!(s.pending().keys().collect::<Vec<_>>(), vec!["cb3"]);
        rec(
            &mut s,
            10 * DAY + 20,
            entry("cb3", "RELEASE"),
            Some(Effect::Release),
        );
        assert!(s.is_released("fp3"));
        assert!(s.pending().is_empty());
        drop(s);
        let mut s = Store::open(dir.path()).unwrap();
        assert!(
            s.is_released("fp3"),
            "the release after the checkpoint is replayed"
        );
        rec(
            &mut s,
            10 * DAY + 30,
            entry("cb5", "APPROVE"),
            approve("fp3", None),
        );
        assert!(!s.is_released("fp3"), "a release is used once");
        // The next day's first effect starts new totals, live and in the replay alike.
        rec(
            &mut s,
            11 * DAY,
            entry("cb6", "APPROVE"),
            approve("fp6", Some(("ETH/ETH", "0.25"))),
        );
        assert_eq!(s.spent("ETH/ETH"), Amount::parse("0.25").unwrap());
        assert!(!s.already_approved("cb", "fp"));
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.spent("ETH/ETH"), Amount::parse("0.25").unwrap());
        assert!(!s.is_released("fp3"));
        assert!(s.already_approved("cb6", "fp6"));
        // Every line is an audit line too.
        let audit = fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
        let lines: Vec<serde_json::Value> = audit
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 9);
        assert_eq!(lines[0]["decision"], "APPROVE");
        assert_eq!(lines[0]["ts"], "1970-01-11T00:00:00Z");
        assert_eq!(lines[0]["effect"]["approve"]["charge"][1], "1.5");
        assert!(lines[5].get("effect").is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [STATE_FILE, AUDIT_FILE] {
                let mode = fs::metadata(dir.path().join(f))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{f}");
            }
        }
    }

    #[test]
    fn checkpoints_cover_the_journal_and_the_rest_is_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        for i in 0..CHECKPOINT_LINES + 3 {
            let cb = format!("cb{i}");
            rec(
                &mut s,
                DAY,
                entry(&cb, "APPROVE"),
                approve(&cb, Some(("BTC/BTC", "0.001"))),
            );
        }
        drop(s);
        let state: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join(STATE_FILE)).unwrap()).unwrap();
        let journal = fs::read(dir.path().join(AUDIT_FILE)).unwrap();
        let offset = state["journal_offset"].as_u64().unwrap();
        let covered = journal[..offset as usize]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        assert_eq!(
            covered, CHECKPOINT_LINES as usize,
            "checkpointed after the 512th line"
        );
        assert_eq!(state["spent"]["BTC/BTC"], "0.512");
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.spent("BTC/BTC"), Amount::parse("0.515").unwrap());
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        rec(
            &mut s,
            DAY,
            entry("cb", "APPROVE"),
            approve("fp", Some(("ETH/ETH", "1"))),
        );
        drop(s);
        let path = dir.path().join(AUDIT_FILE);
        let whole = fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(br#"{"ts":"1970-01-02T00:00:00Z","ts_unix":86400,"endpoint":"che"#);
        fs::write(&path, &torn).unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), whole, "the torn line is gone");
        assert_eq!(s.spent("ETH/ETH"), Amount::parse("1").unwrap());
        rec(
            &mut s,
            DAY,
            entry("cb2", "APPROVE"),
            approve("fp2", Some(("ETH/ETH", "1"))),
        );
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.spent("ETH/ETH"), Amount::parse("2").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[test]
    fn damaged_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        rec(&mut s, DAY, entry("cb", "APPROVE"), approve("fp", None));
        drop(s);
        let path = dir.path().join(AUDIT_FILE);
        let good = fs::read(&path).unwrap();
        let mut bad = good.clone();
        bad.extend_from_slice(b"{\"ts\": 1, \"hello\": 2}\n");
        fs::write(&path, &bad).unwrap();
        let e = Store::open(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(AUDIT_FILE) && e.contains(&format!("at byte {}", good.len())),
            "{e}"
        );
        // A checkpoint that covers more than the journal holds: the journal was cut.
        fs::write(&path, &good).unwrap();
        Store::open(dir.path()).unwrap();
        fs::write(&path, &good[..10]).unwrap();
        let e = Store::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("was cut or replaced"), "{e}");
        fs::write(dir.path().join(STATE_FILE), b"[1, 2]").unwrap();
        let e = Store::open(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(STATE_FILE) && e.contains("not this server's state file"),
            "{e}"
        );
    }

    #[test]
    fn a_state_file_of_the_previous_version_covers_its_whole_journal() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(STATE_FILE),
            r#"{"day": 3, "spent": {"ETH/ETH": "2"}, "approved": {"cb": "fp"}, "pending": {}, "released": []}"#,
        )
        .unwrap();
        fs::write(
            dir.path().join(AUDIT_FILE),
            "{\"ts\":\"x\",\"ts_unix\":259200,\"endpoint\":\"check\",\"callback_id\":\"cb\",\"request_id\":\"r\",\"sino_id\":\"s\",\"request_type\":\"sign\",\"decision\":\"APPROVE\",\"reason\":\"ok\"}\n",
        )
        .unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.spent("ETH/ETH"), Amount::parse("2").unwrap());
        assert!(s.already_approved("cb", "fp"));
    }
}
