//! The key store: explicit states [`Uninitialized`], [`Sealed`], [`Unsealed`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand_core::{CryptoRngCore, OsRng};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{self, KdfParams, Key32, SALT_LEN};
use crate::engine::{Backend, Engine, Tables, WriteView};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::header::{FORMAT_VERSION, Header};
use crate::password::check_password;
use crate::shamir::{Progress, ShareCollector};
use crate::witness::Hwm;

/// Well-known table names used by mpc-node.
pub mod tables {
    /// The node's P-256 identity key.
    pub const NODE_IDENTITY: &str = "node_identity";
    /// Threshold key shares.
    pub const KEY_SHARES: &str = "key_shares";
    /// Presignatures: read only with [`crate::Unsealed::take`] so each is used at most once.
    pub const PRESIGNATURES: &str = "presignatures";
    /// Pre-generated safe primes / Paillier material.
    pub const PRIME_POOL: &str = "prime_pool";
    /// Other (encrypted) metadata.
    pub const METADATA: &str = "metadata";
    /// Tables of single-use secrets (each item used at most once, ever): never in a backup,
    /// so restoring one cannot bring back an item already used ([`crate::Unsealed::backup_to`]).
    pub const SINGLE_USE: &[&str] = &[PRESIGNATURES, PRIME_POOL];
}

/// Well-known keys of the public (readable while sealed) metadata.
pub mod public_keys {
    /// The node id (`"sino" + …`, 248 characters).
    pub const NODE_ID: &str = "node_id";
    /// The node's public key (hex DER SPKI).
    pub const PUBLIC_KEY: &str = "public_key";
}

/// Internal table of public metadata (plaintext, authenticated under the data key).
const PUBLIC_TABLE: &str = "__public";
/// Largest record value.
pub const MAX_RECORD: usize = 64 << 20;

fn check_table(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with("__")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::BadTableName(name.to_owned()))
    }
}

/// Delay between failed password attempts: `base · 2^(failures-1)`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// 0.5 s doubling up to 30 s.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// Delay after `failures` consecutive failures (0 → none).
    pub fn delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Rollback witness: where the highest counter seen is remembered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Witness {
    /// A small file `<db-file-path>.hwm` beside the store (default).
    #[default]
    Sidecar,
    /// No witness file (backups, tests). Rollback is then only detectable via
    /// [`StoreConfig::min_counter`].
    None,
}

/// How to open a store. `t`, `n`, `engine` come from `[storage]`.
pub struct StoreConfig {
    engine: Engine,
    t: u8,
    n: u8,
    kdf: KdfParams,
    backoff: Backoff,
    witness: Witness,
    min_counter: u64,
    change_window: Duration,
    rng: Option<Box<dyn CryptoRngCore + Send>>,
}

/// How long a password change started by `re-bkey-init` stays open for `re-bkey`.
pub const PASSWORD_CHANGE_WINDOW: Duration = Duration::from_secs(300);

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("engine", &self.engine)
            .field("t", &self.t)
            .field("n", &self.n)
            .field("kdf", &self.kdf)
            .field("backoff", &self.backoff)
            .field("witness", &self.witness)
            .field("min_counter", &self.min_counter)
            .finish_non_exhaustive()
    }
}

impl StoreConfig {
    /// Validates `1 <= t <= n <= 255`. Strong KDF defaults, default back-off, sidecar witness.
    pub fn new(engine: Engine, t: u8, n: u8) -> Result<Self> {
        if t == 0 {
            return Err(Error::BadPolicy("t must be at least 1".into()));
        }
        if n < t {
            return Err(Error::BadPolicy(format!("t={t} is greater than n={n}")));
        }
        Ok(Self {
            engine,
            t,
            n,
            kdf: KdfParams::default(),
            backoff: Backoff::default(),
            witness: Witness::Sidecar,
            min_counter: 0,
            change_window: PASSWORD_CHANGE_WINDOW,
            rng: None,
        })
    }
    /// KDF parameters used for `init` and password changes (opening uses the stored ones).
    pub fn kdf(mut self, kdf: KdfParams) -> Self {
        self.kdf = kdf;
        self
    }
    /// Back-off between wrong passwords.
    pub fn backoff(mut self, b: Backoff) -> Self {
        self.backoff = b;
        self
    }
    /// Rollback witness.
    pub fn witness(mut self, w: Witness) -> Self {
        self.witness = w;
        self
    }
    /// How long a started password change stays open ([`PASSWORD_CHANGE_WINDOW`]).
    pub fn change_window(mut self, d: Duration) -> Self {
        self.change_window = d;
        self
    }

    /// An external witness: refuse files whose counter is below `c`.
    pub fn min_counter(mut self, c: u64) -> Self {
        self.min_counter = c;
        self
    }
    /// Replaces the OS RNG (deterministic tests and snapshots only).
    #[doc(hidden)]
    pub fn rng_for_tests(mut self, rng: Box<dyn CryptoRngCore + Send>) -> Self {
        self.rng = Some(rng);
        self
    }
}

/// Outcome of a call that may need more shares.
#[derive(Debug)]
pub enum Step<T> {
    /// More shares are needed (t>1).
    NeedMore(Progress),
    /// Finished.
    Done(T),
}

impl<T> Step<T> {
    /// The finished value, if any.
    pub fn done(self) -> Option<T> {
        match self {
            Step::Done(t) => Some(t),
            Step::NeedMore(_) => None,
        }
    }
}

/// Lifecycle state, as reported by `seal-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// No store file yet.
    Uninitialized,
    /// Store exists, data key not in memory.
    Sealed,
    /// Data key in memory.
    Unsealed,
}

struct Throttle {
    failures: u32,
    not_before: Option<Instant>,
}

struct Shared {
    path: PathBuf,
    engine: Engine,
    t: u8,
    n: u8,
    kdf: KdfParams,
    backoff: Backoff,
    min_counter: u64,
    change_window: Duration,
    throttle: Mutex<Throttle>,
    rng: Mutex<Box<dyn CryptoRngCore + Send>>,
    /// The sidecar witness ([`Witness::Sidecar`]) and its writer thread.
    hwm: Option<Arc<Hwm>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(h) = &self.hwm {
            h.close();
        }
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn last_seen(&self) -> Result<u64> {
        let mut best = self.min_counter;
        if let Some(hwm) = &self.hwm {
            let p = hwm.path();
            match std::fs::read_to_string(p) {
                Ok(s) => {
                    let v = s
                        .strip_prefix("mpc-keystore-hwm 1 ")
                        .and_then(|r| r.trim().parse::<u64>().ok())
                        .ok_or_else(|| Error::Corrupt {
                            path: p.to_owned(),
                            detail: "not a high-water-mark file".into(),
                        })?;
                    best = best.max(v);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("read", p, e)),
            }
        }
        Ok(best)
    }

    /// A commit reached `counter`: the witness follows, off this thread ([`Hwm::seen`]).
    fn record_seen(&self, counter: u64) {
        if let Some(h) = &self.hwm {
            h.seen(counter);
        }
    }

    fn check_rollback(&self, h: &Header) -> Result<()> {
        let last = self.last_seen()?;
        if h.counter < last {
            return Err(Error::Rollback {
                found: h.counter,
                last_seen: last,
            });
        }
        Ok(())
    }

    fn throttle_check(&self) -> Result<()> {
        let th = lock(&self.throttle);
        if let Some(nb) = th.not_before {
            let now = Instant::now();
            if now < nb {
                return Err(Error::RetryLater {
                    retry_after: nb - now,
                });
            }
        }
        Ok(())
    }

    fn fail(&self, what: &'static str) -> Error {
        let mut th = lock(&self.throttle);
        th.failures = th.failures.saturating_add(1);
        let d = self.backoff.delay(th.failures);
        th.not_before = Some(Instant::now() + d);
        tracing::warn!(
            path = %self.path.display(),
            attempt = what,
            failures = th.failures,
            retry_after_ms = d.as_millis() as u64,
            "wrong password or share set; nothing written"
        );
        Error::WrongPassword {
            failures: th.failures,
            retry_after: d,
        }
    }

    fn succeed(&self) {
        let mut th = lock(&self.throttle);
        th.failures = 0;
        th.not_before = None;
    }

    fn random_salt(&self) -> [u8; SALT_LEN] {
        let mut s = [0u8; SALT_LEN];
        lock(&self.rng).fill_bytes(&mut s);
        s
    }
}

/// Collects a t=1 password or t>1 shares into the password secret.
struct Input {
    t: u8,
    shares: Option<ShareCollector>,
}

impl Input {
    fn new(t: u8) -> Self {
        Self { t, shares: None }
    }

    fn progress(&self) -> Progress {
        match &self.shares {
            Some(c) => c.progress(),
            None => Progress {
                have: 0,
                need: self.t,
            },
        }
    }

    fn reset(&mut self) {
        if let Some(c) = self.shares.as_mut() {
            c.reset();
        }
    }

    /// `enforce_rule`: apply the t=1 complexity rule (new passwords only).
    fn feed(&mut self, bkey: &str, enforce_rule: bool) -> Result<Step<Zeroizing<Vec<u8>>>> {
        if self.t == 1 {
            if enforce_rule {
                check_password(bkey)?;
            }
            return Ok(Step::Done(Zeroizing::new(bkey.as_bytes().to_vec())));
        }
        let c = match self.shares.as_mut() {
            Some(c) => c,
            None => self.shares.insert(ShareCollector::new(self.t)?),
        };
        let p = c.add(bkey)?;
        if p.have < p.need {
            return Ok(Step::NeedMore(p));
        }
        let secret = c.combine()?;
        if secret.len() < 12 {
            return Err(Error::SecretTooShort(secret.len()));
        }
        Ok(Step::Done(secret))
    }
}

/// Entry point.
pub struct KeyStore;

/// What [`KeyStore::open`] found.
pub enum Opened {
    /// No file yet: call [`Uninitialized::init`].
    Uninitialized(Uninitialized),
    /// An existing store: call [`Sealed::unseal`].
    Sealed(Sealed),
}

impl KeyStore {
    /// Opens the store at `path`. Creates nothing: a missing file means uninitialized; a missing
    /// directory is an error. Checks magic, format version, header checksum, engine, t/n and the
    /// rollback witness, and never modifies the file.
    pub fn open(path: impl AsRef<Path>, cfg: StoreConfig) -> Result<Opened> {
        let path = path.as_ref().to_owned();
        fsutil::parent_dir(&path)?;
        let hwm = match cfg.witness {
            Witness::Sidecar => Some(Hwm::new(fsutil::sibling(&path, ".hwm"))),
            Witness::None => None,
        };
        let shared = Arc::new(Shared {
            path: path.clone(),
            engine: cfg.engine,
            t: cfg.t,
            n: cfg.n,
            kdf: cfg.kdf,
            backoff: cfg.backoff,
            min_counter: cfg.min_counter,
            change_window: cfg.change_window,
            throttle: Mutex::new(Throttle {
                failures: 0,
                not_before: None,
            }),
            rng: Mutex::new(cfg.rng.unwrap_or_else(|| Box::new(OsRng))),
            hwm,
        });
        if !path.exists() {
            return Ok(Opened::Uninitialized(Uninitialized {
                input: Input::new(shared.t),
                shared,
            }));
        }
        let precheck = |header: &Header| {
            if header.t != shared.t || header.n != shared.n {
                return Err(Error::PolicyMismatch {
                    file_t: header.t,
                    file_n: header.n,
                    cfg_t: shared.t,
                    cfg_n: shared.n,
                });
            }
            shared.check_rollback(header)
        };
        let backend = Backend::open(&path, shared.engine, &precheck)?;
        ensure_private(&path)?;
        Ok(Opened::Sealed(Sealed {
            input: Input::new(shared.t),
            shared,
            backend: Arc::new(backend),
        }))
    }
}

fn ensure_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io("chmod 0600", path, e))?;
    }
    Ok(())
}

/// A record batch applied in one atomic write.
#[derive(Default)]
pub struct Batch {
    ops: Vec<Op>,
}

enum Op {
    Put {
        table: String,
        key: Vec<u8>,
        value: Zeroizing<Vec<u8>>,
    },
    Delete {
        table: String,
        key: Vec<u8>,
    },
    PutPublic {
        key: String,
        value: Vec<u8>,
    },
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds an encrypted put.
    pub fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> &mut Self {
        self.ops.push(Op::Put {
            table: table.to_owned(),
            key: key.to_vec(),
            value: Zeroizing::new(value.to_vec()),
        });
        self
    }
    /// Adds a delete.
    pub fn delete(&mut self, table: &str, key: &[u8]) -> &mut Self {
        self.ops.push(Op::Delete {
            table: table.to_owned(),
            key: key.to_vec(),
        });
        self
    }
    /// Adds a public metadata put (readable while sealed, authenticated when unsealed).
    pub fn put_public(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.ops.push(Op::PutPublic {
            key: key.to_owned(),
            value: value.to_vec(),
        });
        self
    }
    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn validate(&self) -> Result<()> {
        for op in &self.ops {
            match op {
                Op::Put { table, value, .. } => {
                    check_table(table)?;
                    if value.len() > MAX_RECORD {
                        return Err(Error::RecordTooLarge(value.len()));
                    }
                }
                Op::Delete { table, .. } => check_table(table)?,
                Op::PutPublic { value, .. } => {
                    if value.len() > MAX_RECORD {
                        return Err(Error::RecordTooLarge(value.len()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Seals every value and writes it through `v`.
    fn apply_to(
        &self,
        v: &mut dyn WriteView,
        dek: &Key32,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<()> {
        for op in &self.ops {
            match op {
                Op::Put { table, key, value } => {
                    let blob =
                        dek.seal(rng, value, &crypto::record_aad(FORMAT_VERSION, table, key))?;
                    v.put(table, key, &blob)?;
                }
                Op::Delete { table, key } => {
                    v.remove(table, key)?;
                }
                Op::PutPublic { key, value } => {
                    v.put(
                        PUBLIC_TABLE,
                        key.as_bytes(),
                        &seal_public(dek, rng, key.as_bytes(), value)?,
                    )?;
                }
            }
        }
        Ok(())
    }

    fn apply_to_tables(
        &self,
        t: &mut Tables,
        dek: &Key32,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<()> {
        struct Mem<'a>(&'a mut Tables);
        impl WriteView for Mem<'_> {
            fn header(&mut self) -> Result<Header> {
                Err(Error::Crypto("no header in memory view"))
            }
            fn set_header(&mut self, _: &Header) -> Result<()> {
                Ok(())
            }
            fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
                self.0
                    .entry(table.to_owned())
                    .or_default()
                    .insert(key.to_vec(), value.to_vec());
                Ok(())
            }
            fn remove(&mut self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
                Ok(self.0.get_mut(table).and_then(|t| t.remove(key)))
            }
        }
        self.apply_to(&mut Mem(t), dek, rng)
    }
}

/// The record-set digest of `tables` (every record's stored bytes) under `dek`.
fn record_set_of(tables: &Tables, dek: &Key32) -> [u8; 32] {
    let key = crypto::record_set_key(dek);
    let mut set = [0u8; 32];
    for (table, recs) in tables {
        for (k, v) in recs {
            crypto::xor_into(&mut set, &crypto::record_mac(&key, table, k, v));
        }
    }
    set
}

/// A write view that keeps the record-set digest up to date on every put and delete.
struct Tracked<'a> {
    inner: &'a mut dyn WriteView,
    key: Key32,
    set: [u8; 32],
}

impl WriteView for Tracked<'_> {
    fn header(&mut self) -> Result<Header> {
        self.inner.header()
    }
    fn set_header(&mut self, h: &Header) -> Result<()> {
        self.inner.set_header(h)
    }
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        if let Some(old) = self.inner.remove(table, key)? {
            crypto::xor_into(
                &mut self.set,
                &crypto::record_mac(&self.key, table, key, &old),
            );
        }
        self.inner.put(table, key, value)?;
        crypto::xor_into(
            &mut self.set,
            &crypto::record_mac(&self.key, table, key, value),
        );
        Ok(())
    }
    fn remove(&mut self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let old = self.inner.remove(table, key)?;
        if let Some(old) = &old {
            crypto::xor_into(
                &mut self.set,
                &crypto::record_mac(&self.key, table, key, old),
            );
        }
        Ok(old)
    }
}

fn seal_public(
    dek: &Key32,
    rng: &mut dyn CryptoRngCore,
    key: &[u8],
    value: &[u8],
) -> Result<Vec<u8>> {
    // Stored as nonce ‖ tag ‖ value: the tag authenticates (key, value) under the data key.
    let tag = dek.seal(rng, &[], &crypto::public_aad(FORMAT_VERSION, key, value))?;
    let mut out = tag;
    out.extend_from_slice(value);
    Ok(out)
}

const PUBLIC_PREFIX: usize = crypto::NONCE_LEN + crypto::TAG_LEN;

/// State `uninitialized`: no store file exists yet.
pub struct Uninitialized {
    shared: Arc<Shared>,
    input: Input,
}

impl Uninitialized {
    /// Always [`State::Uninitialized`].
    pub fn state(&self) -> State {
        State::Uninitialized
    }

    /// Shares received so far (t>1).
    pub fn progress(&self) -> Progress {
        self.input.progress()
    }

    /// Drops shares received so far.
    pub fn reset_progress(&mut self) {
        self.input.reset();
    }

    /// `init`: t=1 takes the password (complexity rule enforced); t>1 takes one share per call.
    /// When complete, creates the store with a fresh random data key and `initial` records in one
    /// atomic step (the file appears complete or not at all) and returns it unsealed.
    pub fn init(&mut self, bkey: &str, initial: &Batch) -> Result<Step<Unsealed>> {
        initial.validate()?;
        let secret = match self.input.feed(bkey, true)? {
            Step::NeedMore(p) => return Ok(Step::NeedMore(p)),
            Step::Done(s) => s,
        };
        let sh = &self.shared;
        if sh.path.exists() {
            return Err(Error::AlreadyExists(sh.path.clone()));
        }
        let salt = sh.random_salt();
        let kek = crypto::derive_kek(&secret, &salt, &sh.kdf)?;
        let (header, tables, dek) = {
            let mut rng = lock(&sh.rng);
            let dek = Key32::random(&mut **rng);
            let mut header = Header::new(
                sh.engine.as_str(),
                sh.t,
                sh.n,
                sh.kdf,
                &kek,
                &salt,
                &dek,
                &mut **rng,
            )?;
            let mut tables = Tables::new();
            initial.apply_to_tables(&mut tables, &dek, &mut **rng)?;
            header.set_record_set(&record_set_of(&tables, &dek));
            header.set_counter(header.counter, &dek, &mut **rng)?;
            (header, tables, dek)
        };
        // A `.hwm` left by a deleted earlier store must not make the new one look rolled back,
        // even if we crash right after creating it: reset the witness first.
        if let Some(h) = &sh.hwm {
            h.reset(0)?;
        }
        Backend::create(&sh.path, sh.engine, &header, &tables)?;
        if let Some(h) = &sh.hwm {
            h.reset(header.counter)?;
        }
        let backend = Backend::open(&sh.path, sh.engine, &|_| Ok(()))?;
        tracing::info!(path = %sh.path.display(), engine = %sh.engine, t = sh.t, n = sh.n, "key store initialised");
        Ok(Step::Done(Unsealed {
            shared: self.shared.clone(),
            backend: Arc::new(backend),
            dek,
            change: Change::None,
        }))
    }
}

/// Facts about a store that are not secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreInfo {
    /// Engine.
    pub engine: Engine,
    /// Format version of the file.
    pub format_version: u32,
    /// Write counter.
    pub counter: u64,
    /// Threshold.
    pub t: u8,
    /// Number of shares.
    pub n: u8,
    /// Argon2id parameters in force.
    pub kdf: KdfParams,
}

fn info_of(h: &Header, engine: Engine) -> StoreInfo {
    StoreInfo {
        engine,
        format_version: h.format_version,
        counter: h.counter,
        t: h.t,
        n: h.n,
        kdf: h.kdf.params,
    }
}

/// State `sealed`: the file is open, the data key is not in memory. Nothing secret can be read.
pub struct Sealed {
    shared: Arc<Shared>,
    backend: Arc<Backend>,
    input: Input,
}

fn unlock(shared: &Shared, h: &Header, secret: &[u8], what: &'static str) -> Result<Key32> {
    let salt = h.salt()?;
    let kek = crypto::derive_kek(secret, &salt, &h.kdf.params)?;
    match h.unwrap_dek(&kek)? {
        Some(dek) => {
            h.verify_counter(&dek)?;
            Ok(dek)
        }
        None => Err(shared.fail(what)),
    }
}

impl Sealed {
    /// Always [`State::Sealed`].
    pub fn state(&self) -> State {
        State::Sealed
    }

    /// Shares received so far (t>1).
    pub fn progress(&self) -> Progress {
        self.input.progress()
    }

    /// Drops shares received so far.
    pub fn reset_progress(&mut self) {
        self.input.reset();
    }

    /// Non-secret facts from the header.
    pub fn info(&self) -> Result<StoreInfo> {
        Ok(info_of(&self.backend.header()?, self.shared.engine))
    }

    /// Public metadata (node id, public key), **not yet authenticated**: readable while sealed
    /// for `seal-status`. [`Unsealed::get_public`] verifies it.
    pub fn get_public_unverified(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .backend
            .get(PUBLIC_TABLE, key.as_bytes())?
            .and_then(|b| b.get(PUBLIC_PREFIX..).map(<[u8]>::to_vec)))
    }

    /// `unseal`: t=1 takes the password, t>1 one share per call. A wrong password or share set
    /// is detected by the AEAD check of the wrapped data key, counted, logged without the secret,
    /// and answered with [`Error::WrongPassword`] carrying the delay before the next attempt;
    /// attempts before that delay get [`Error::RetryLater`] and are not evaluated. Nothing is
    /// written either way.
    pub fn unseal(&mut self, bkey: &str) -> Result<Step<Unsealed>> {
        self.shared.throttle_check()?;
        let secret = match self.input.feed(bkey, false)? {
            Step::NeedMore(p) => return Ok(Step::NeedMore(p)),
            Step::Done(s) => s,
        };
        let h = self.backend.header()?;
        self.shared.check_rollback(&h)?;
        let dek = unlock(&self.shared, &h, &secret, "unseal")?;
        self.shared.succeed();
        tracing::info!(path = %self.shared.path.display(), "key store unsealed");
        Ok(Step::Done(Unsealed {
            shared: self.shared.clone(),
            backend: self.backend.clone(),
            dek,
            change: Change::None,
        }))
    }
}

enum Change {
    None,
    /// Collecting current shares (t>1).
    CollectingCurrent(Input),
    /// Collecting current shares for [`Unsealed::rotate_data_key`] (t>1).
    CollectingRotation(Input),
    /// Collecting current shares for [`Unsealed::authorize`] (t>1), for one purpose.
    CollectingAuthorization {
        input: Input,
        purpose: Vec<u8>,
    },
    /// Current password verified (re-bkey-init); holds its secret to refuse reusing it.
    Verified {
        current: Zeroizing<Vec<u8>>,
        new_input: Input,
        since: std::time::Instant,
    },
}

/// State `unsealed`: the only handle that reads or writes secret records.
pub struct Unsealed {
    shared: Arc<Shared>,
    backend: Arc<Backend>,
    dek: Key32,
    change: Change,
}

/// What a backup contains.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupInfo {
    /// Counter of the copied state.
    pub counter: u64,
    /// Records per table (public metadata under `"public"`).
    pub tables: std::collections::BTreeMap<String, u64>,
}

impl Unsealed {
    /// Always [`State::Unsealed`].
    pub fn state(&self) -> State {
        State::Unsealed
    }

    /// Drops the data key (zeroized) and returns to sealed.
    pub fn seal(self) -> Sealed {
        tracing::info!(path = %self.shared.path.display(), "key store sealed");
        Sealed {
            input: Input::new(self.shared.t),
            shared: self.shared.clone(),
            backend: self.backend.clone(),
        }
    }

    /// Non-secret facts from the header.
    pub fn info(&self) -> Result<StoreInfo> {
        Ok(info_of(&self.backend.header()?, self.shared.engine))
    }

    /// Waits until the rollback witness file holds the counter of every commit made so far
    /// (commits do not wait for it; the store's last owner waits when it closes).
    pub fn flush_witness(&self) {
        if let Some(h) = &self.shared.hwm {
            h.flush();
        }
    }

    fn open_record(&self, table: &str, key: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.dek
            .open(blob, &crypto::record_aad(FORMAT_VERSION, table, key))
            .ok_or_else(|| Error::RecordCorrupt {
                table: table.to_owned(),
                key: hex::encode(key),
            })
    }

    /// Runs `f` in one atomic write that also advances the authenticated counter.
    fn write<R>(
        &self,
        f: impl FnOnce(&mut dyn WriteView, &mut dyn CryptoRngCore) -> Result<R>,
    ) -> Result<R> {
        let mut rng = lock(&self.shared.rng);
        let (r, counter) = self.backend.write(|v| {
            let start = v.header()?.record_set_bytes()?;
            let (r, set) = {
                let mut tracked = Tracked {
                    inner: &mut *v,
                    key: crypto::record_set_key(&self.dek),
                    set: start.unwrap_or_default(),
                };
                let r = f(&mut tracked, &mut **rng)?;
                (r, tracked.set)
            };
            let mut h = v.header()?;
            // Files from before the digest keep none until `ensure_record_set` adds it.
            if start.is_some() {
                h.set_record_set(&set);
            }
            let next = h
                .counter
                .checked_add(1)
                .ok_or(Error::Crypto("counter overflow"))?;
            h.set_counter(next, &self.dek, &mut **rng)?;
            v.set_header(&h)?;
            Ok((r, next))
        })?;
        drop(rng);
        self.shared.record_seen(counter);
        Ok(r)
    }

    /// Reads and decrypts a record.
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        check_table(table)?;
        match self.backend.get(table, key)? {
            Some(b) => Ok(Some(self.open_record(table, key, &b)?)),
            None => Ok(None),
        }
    }

    /// Encrypts and stores a record (one atomic write).
    pub fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let mut b = Batch::new();
        b.put(table, key, value);
        self.apply(&b)
    }

    /// Encrypts and stores a record only if its key is absent, in one atomic write: of two
    /// concurrent calls for one key exactly one succeeds and the other gets
    /// [`Error::RecordExists`]; an existing record is never overwritten.
    pub fn insert_new(&self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let mut b = Batch::new();
        b.put(table, key, value);
        b.validate()?;
        self.write(|v, rng| {
            // An error aborts the write, so the record removed to look is put back as it was.
            if v.remove(table, key)?.is_some() {
                return Err(Error::RecordExists {
                    table: table.to_owned(),
                    key: hex::encode(key),
                });
            }
            b.apply_to(v, &self.dek, rng)
        })
    }

    /// Deletes a record; returns whether it existed.
    pub fn delete(&self, table: &str, key: &[u8]) -> Result<bool> {
        check_table(table)?;
        self.write(|v, _| Ok(v.remove(table, key)?.is_some()))
    }

    /// Reads, decrypts and deletes a record in one transaction: a record is returned by `take` at
    /// most once, across crashes. If it fails authentication nothing is deleted.
    pub fn take(&self, table: &str, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        check_table(table)?;
        self.write(|v, _| match v.remove(table, key)? {
            Some(b) => Ok(Some(self.open_record(table, key, &b)?)),
            None => Ok(None),
        })
    }

    /// Keys of a table, sorted.
    pub fn list_keys(&self, table: &str) -> Result<Vec<Vec<u8>>> {
        check_table(table)?;
        self.backend.list_keys(table)
    }

    /// Number of records in a table.
    pub fn count(&self, table: &str) -> Result<u64> {
        check_table(table)?;
        self.backend.count(table)
    }

    /// Applies a batch atomically.
    pub fn apply(&self, batch: &Batch) -> Result<()> {
        batch.validate()?;
        self.write(|v, rng| batch.apply_to(v, &self.dek, rng))
    }

    /// Stores public metadata (readable while sealed).
    pub fn put_public(&self, key: &str, value: &[u8]) -> Result<()> {
        let mut b = Batch::new();
        b.put_public(key, value);
        self.apply(&b)
    }

    /// Reads every record of every table once and authenticates it (and the public metadata):
    /// a damaged or altered file shows here, as [`Error::Corrupt`] naming the file and the
    /// record, instead of later in the middle of a protocol run. Returns the records checked.
    pub fn verify_all(&self) -> Result<u64> {
        let (header, tables) = self.backend.dump()?;
        self.check_record_set(&header, &tables)?;
        let mut n = 0u64;
        for (table, recs) in &tables {
            for (k, v) in recs {
                let ok = if table == PUBLIC_TABLE {
                    self.get_public(&String::from_utf8_lossy(k)).is_ok()
                } else {
                    self.open_record(table, k, v).is_ok()
                };
                if !ok {
                    return Err(Error::Corrupt {
                        path: self.shared.path.clone(),
                        detail: format!(
                            "record {table}/{} fails authentication (damaged or altered)",
                            hex::encode(k)
                        ),
                    });
                }
                n += 1;
            }
        }
        Ok(n)
    }

    /// Compares the records with the record-set digest the header authenticates (a header
    /// without one, from before it existed, is not checked here).
    fn check_record_set(&self, header: &Header, tables: &Tables) -> Result<()> {
        let Some(want) = header.record_set_bytes()? else {
            return Ok(());
        };
        let have = record_set_of(tables, &self.dek);
        if bool::from(have[..].ct_eq(&want[..])) {
            Ok(())
        } else {
            Err(Error::RecordSetMismatch {
                path: self.shared.path.clone(),
            })
        }
    }

    /// Adds the record-set digest to a file written before it existed (one write; nothing if
    /// it has one). Call right after unseal, before other writers start.
    pub fn ensure_record_set(&self) -> Result<()> {
        let (header, tables) = self.backend.dump()?;
        if header.record_set.is_some() {
            return Ok(());
        }
        let set = record_set_of(&tables, &self.dek);
        let mut rng = lock(&self.shared.rng);
        let counter = self.backend.write(|v| {
            let mut h = v.header()?;
            if h.counter != header.counter {
                return Err(Error::Crypto(
                    "the store changed while its record-set digest was computed",
                ));
            }
            h.set_record_set(&set);
            let next = h
                .counter
                .checked_add(1)
                .ok_or(Error::Crypto("counter overflow"))?;
            h.set_counter(next, &self.dek, &mut **rng)?;
            v.set_header(&h)?;
            Ok(next)
        })?;
        drop(rng);
        self.shared.record_seen(counter);
        tracing::info!(path = %self.shared.path.display(), "record-set digest added to the header");
        Ok(())
    }

    /// Reads public metadata and verifies its tag.
    pub fn get_public(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let Some(blob) = self.backend.get(PUBLIC_TABLE, key.as_bytes())? else {
            return Ok(None);
        };
        let corrupt = || Error::RecordCorrupt {
            table: "public".into(),
            key: hex::encode(key),
        };
        if blob.len() < PUBLIC_PREFIX {
            return Err(corrupt());
        }
        let (tag, value) = blob.split_at(PUBLIC_PREFIX);
        match self.dek.open(
            tag,
            &crypto::public_aad(FORMAT_VERSION, key.as_bytes(), value),
        ) {
            Some(pt) if pt.is_empty() => Ok(Some(value.to_vec())),
            _ => Err(corrupt()),
        }
    }

    /// `re-bkey-init`: checks the current password (t=1) or collects t current shares (t>1) and
    /// holds it for [`Unsealed::change_password`]. Wrong ones are throttled like unseal.
    pub fn begin_password_change(&mut self, current: &str) -> Result<Step<()>> {
        self.shared.throttle_check()?;
        let mut input = match std::mem::replace(&mut self.change, Change::None) {
            Change::CollectingCurrent(i) => i,
            _ => Input::new(self.shared.t),
        };
        let secret = match input.feed(current, false) {
            Ok(Step::Done(s)) => s,
            Ok(Step::NeedMore(p)) => {
                self.change = Change::CollectingCurrent(input);
                return Ok(Step::NeedMore(p));
            }
            // Any failed attempt cancels the change (self.change is `None` here).
            Err(e) => return Err(e),
        };
        let h = self.backend.header()?;
        unlock(&self.shared, &h, &secret, "re-bkey-init")?;
        self.shared.succeed();
        self.change = Change::Verified {
            current: secret,
            new_input: Input::new(self.shared.t),
            since: std::time::Instant::now(),
        };
        Ok(Step::Done(()))
    }

    /// `re-bkey`: takes the new password (rule enforced) or one new share per call (t>1). When
    /// complete, re-wraps the data key under the new password in ONE atomic write (records are not
    /// re-encrypted). A crash at any point leaves either the old or the new password working.
    pub fn change_password(&mut self, new: &str) -> Result<Step<()>> {
        // The change is taken out: every way out of this function except "more shares needed"
        // ends it (done, expired, or cancelled by a failed attempt), so it completes once.
        let Change::Verified {
            current,
            mut new_input,
            since,
        } = std::mem::replace(&mut self.change, Change::None)
        else {
            return Err(Error::ChangeNotStarted);
        };
        if since.elapsed() > self.shared.change_window {
            tracing::warn!(path = %self.shared.path.display(), "password change expired");
            return Err(Error::ChangeExpired {
                window_secs: self.shared.change_window.as_secs(),
            });
        }
        let secret = match new_input.feed(new, true) {
            Ok(Step::Done(s)) => s,
            Ok(Step::NeedMore(p)) => {
                self.change = Change::Verified {
                    current,
                    new_input,
                    since,
                };
                return Ok(Step::NeedMore(p));
            }
            Err(e) => {
                tracing::info!(path = %self.shared.path.display(), "password change cancelled by a failed attempt");
                return Err(e);
            }
        };
        if bool::from(secret.as_slice().ct_eq(current.as_slice())) {
            return Err(Error::SamePassword);
        }
        let salt = self.shared.random_salt();
        let params = self.shared.kdf;
        let kek = crypto::derive_kek(&secret, &salt, &params)?;
        self.write(|v, rng| {
            let mut h = v.header()?;
            h.rewrap(&kek, &salt, params, &self.dek, rng)?;
            v.set_header(&h)
        })?;
        tracing::info!(path = %self.shared.path.display(), "password changed (data key re-wrapped)");
        Ok(Step::Done(()))
    }

    /// An operator action other than the password's (re-pinning the platform key, say) proven
    /// by the current password (t=1) or t current shares (t>1, one per call). `purpose` names
    /// the action and its argument: shares are collected for one purpose only, and a call for
    /// another one starts over with its own share (so the last share holder cannot turn shares
    /// given for one action into another). Wrong ones are throttled like unseal and cancel the
    /// collection. Nothing is written; the caller acts on `Step::Done`.
    pub fn authorize(&mut self, current: &str, purpose: &[u8]) -> Result<Step<()>> {
        self.shared.throttle_check()?;
        let mut input = match std::mem::replace(&mut self.change, Change::None) {
            Change::CollectingAuthorization { input, purpose: p } if p == purpose => input,
            _ => Input::new(self.shared.t),
        };
        let secret = match input.feed(current, false) {
            Ok(Step::Done(s)) => s,
            Ok(Step::NeedMore(p)) => {
                self.change = Change::CollectingAuthorization {
                    input,
                    purpose: purpose.to_vec(),
                };
                return Ok(Step::NeedMore(p));
            }
            Err(e) => return Err(e),
        };
        let h = self.backend.header()?;
        unlock(&self.shared, &h, &secret, "authorize")?;
        self.shared.succeed();
        Ok(Step::Done(()))
    }

    /// `rotate-key`: checks the current password (t=1) or collects t current shares (t>1), then
    /// re-encrypts every record (and re-tags the public metadata) under a fresh random data key,
    /// wrapped under the same password with a fresh salt, in ONE atomic write. A backup taken
    /// before, even with the password, cannot read what is written after: it only holds the old
    /// data key. Wrong passwords are throttled like unseal; a crash leaves the old or the new
    /// key in force, never neither. Returns the number of records re-encrypted.
    pub fn rotate_data_key(&mut self, current: &str) -> Result<Step<u64>> {
        self.shared.throttle_check()?;
        let mut input = match std::mem::replace(&mut self.change, Change::None) {
            Change::CollectingRotation(i) => i,
            _ => Input::new(self.shared.t),
        };
        let secret = match input.feed(current, false) {
            Ok(Step::Done(s)) => s,
            Ok(Step::NeedMore(p)) => {
                self.change = Change::CollectingRotation(input);
                return Ok(Step::NeedMore(p));
            }
            Err(e) => return Err(e),
        };
        let h = self.backend.header()?;
        unlock(&self.shared, &h, &secret, "rotate-key")?;
        self.shared.succeed();
        // Every record, authenticated under the old key before anything is written.
        let (_, tables) = self.backend.dump()?;
        let mut plain: Vec<(String, Vec<u8>, Zeroizing<Vec<u8>>)> = Vec::new();
        for (table, recs) in &tables {
            for (k, blob) in recs {
                let value = if table == PUBLIC_TABLE {
                    let key = std::str::from_utf8(k).map_err(|_| Error::RecordCorrupt {
                        table: "public".into(),
                        key: hex::encode(k),
                    })?;
                    Zeroizing::new(self.get_public(key)?.unwrap_or_default())
                } else {
                    self.open_record(table, k, blob)?
                };
                plain.push((table.clone(), k.clone(), value));
            }
        }
        let salt = self.shared.random_salt();
        let params = self.shared.kdf;
        let kek = crypto::derive_kek(&secret, &salt, &params)?;
        let mut rng = lock(&self.shared.rng);
        let new_dek = Key32::random(&mut **rng);
        let n = plain.len() as u64;
        let set_key = crypto::record_set_key(&new_dek);
        let counter = self.backend.write(|v| {
            let mut set = [0u8; 32];
            for (table, k, value) in &plain {
                let blob = if table == PUBLIC_TABLE {
                    seal_public(&new_dek, &mut **rng, k, value)?
                } else {
                    new_dek.seal(
                        &mut **rng,
                        value,
                        &crypto::record_aad(FORMAT_VERSION, table, k),
                    )?
                };
                v.put(table, k, &blob)?;
                crypto::xor_into(&mut set, &crypto::record_mac(&set_key, table, k, &blob));
            }
            let mut h = v.header()?;
            h.rewrap(&kek, &salt, params, &new_dek, &mut **rng)?;
            h.set_record_set(&set);
            let next = h
                .counter
                .checked_add(1)
                .ok_or(Error::Crypto("counter overflow"))?;
            h.set_counter(next, &new_dek, &mut **rng)?;
            v.set_header(&h)?;
            Ok(next)
        })?;
        drop(rng);
        self.shared.record_seen(counter);
        self.dek = new_dek;
        tracing::info!(path = %self.shared.path.display(), records = n, "data key rotated (every record re-encrypted)");
        Ok(Step::Done(n))
    }

    /// Abandons a password change in progress.
    pub fn cancel_password_change(&mut self) {
        self.change = Change::None;
    }

    /// Writes a consistent copy of the store (same engine, same password) to `path`, which
    /// must not exist. For `bolt` the copy is taken from one read transaction while writers go on;
    /// for `sgx` under the store's lock. The copy is built beside `path` and renamed into place.
    ///
    /// The single-use tables ([`tables::SINGLE_USE`]: presignatures, pooled primes) are left
    /// out: a node restored from the backup regenerates them, so nothing used since the backup
    /// can be used again.
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<BackupInfo> {
        let path = path.as_ref();
        fsutil::parent_dir(path)?;
        let (mut header, mut tables) = self.backend.dump()?;
        for t in tables::SINGLE_USE {
            if let Some(dropped) = tables.remove(*t) {
                tracing::info!(
                    table = t,
                    records = dropped.len(),
                    "single-use records left out of the backup"
                );
            }
        }
        // The copy's record set (without the single-use tables), authenticated with its counter.
        header.set_record_set(&record_set_of(&tables, &self.dek));
        header.set_counter(header.counter, &self.dek, &mut **lock(&self.shared.rng))?;
        Backend::create(path, self.shared.engine, &header, &tables)?;
        Ok(BackupInfo {
            counter: header.counter,
            tables: table_counts(&tables),
        })
    }
}

fn table_counts(tables: &Tables) -> std::collections::BTreeMap<String, u64> {
    tables
        .iter()
        .map(|(k, v)| {
            (
                if k == PUBLIC_TABLE {
                    "public".to_owned()
                } else {
                    k.clone()
                },
                v.len() as u64,
            )
        })
        .collect()
}

/// Result of [`inspect`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InspectReport {
    /// Non-secret header facts.
    pub info: StoreInfo,
    /// The node id stored as public metadata, authenticated, if present.
    pub node_id: Option<String>,
    /// Records per table (public metadata under `"public"`).
    pub tables: std::collections::BTreeMap<String, u64>,
    /// Every secret record decrypted successfully.
    pub all_records_authentic: bool,
}

/// Opens a store or backup without a node (`verify-backup`): sniffs the engine, reads t from the
/// header, unseals with `bkeys` (one password, or t shares), then authenticates every record.
/// Never writes; no witness is consulted.
pub fn inspect(path: impl AsRef<Path>, bkeys: &[&str]) -> Result<InspectReport> {
    let path = path.as_ref();
    fsutil::parent_dir(path)?;
    if !path.exists() {
        return Err(Error::io(
            "open",
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let engine = crate::engine::sniff(path)?;
    let backend = Backend::open(path, engine, &|_| Ok(()))?;
    let (header, tables) = backend.dump()?;
    drop(backend);
    let cfg = StoreConfig::new(engine, header.t, header.n)?
        .witness(Witness::None)
        .backoff(Backoff {
            base: Duration::ZERO,
            max: Duration::ZERO,
        });
    let Opened::Sealed(mut sealed) = KeyStore::open(path, cfg)? else {
        return Err(Error::io(
            "open",
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    };
    let mut unsealed = None;
    for k in bkeys {
        if let Step::Done(u) = sealed.unseal(k)? {
            unsealed = Some(u);
            break;
        }
    }
    let Some(u) = unsealed else {
        return Err(Error::Share(crate::shamir::ShareError::NotEnoughShares(
            bkeys.len(),
        )));
    };
    let mut ok = u.check_record_set(&header, &tables).is_ok();
    for (table, recs) in &tables {
        if table == PUBLIC_TABLE {
            for k in recs.keys() {
                let key = String::from_utf8_lossy(k);
                ok &= u.get_public(&key).is_ok();
            }
        } else {
            for (k, v) in recs {
                ok &= u.open_record(table, k, v).is_ok();
            }
        }
    }
    let node_id = u
        .get_public(public_keys::NODE_ID)?
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    Ok(InspectReport {
        info: info_of(&header, engine),
        node_id,
        tables: table_counts(&tables),
        all_records_authentic: ok,
    })
}

impl std::fmt::Debug for Uninitialized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uninitialized")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("path", &self.shared.path)
            .field("progress", &self.input.progress())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsealed")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Opened::Uninitialized(u) => u.fmt(f),
            Opened::Sealed(s) => s.fmt(f),
        }
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("ops", &self.ops.len())
            .finish()
    }
}
