//! The node's key-store state and the transitions the `/sys` API drives.
//!
//! One [`tokio::sync::Mutex`] serializes every transition; the key store is blocking (Argon2id
//! takes a noticeable fraction of a second with the default parameters) and runs on the blocking
//! pool. `seal-status` never waits for that lock: it reads a snapshot refreshed after each
//! transition.
//!
//! Decisions (the guide is silent on them):
//!
//! * `init` leaves the node **sealed**, as the guide's flow expects (init → bind the node id in
//!   the console → unseal). Its reply is the node id and public key.
//! * `in-bkey` on an unsealed node answers an error ("already unsealed"); on an uninitialised one
//!   "not initialised".
//! * `re-bkey-init` and `re-bkey` need the node unsealed. With t > 1 each call takes one share,
//!   for the current set (re-bkey-init) and then the new set (re-bkey).
//! * A wrong password answers at once with the delay before the next attempt is evaluated; the
//!   handler never sleeps, so other requests are not blocked.

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::Duration;

use base64::Engine as _;
use mpc_keystore::{
    Error as StoreError, KdfParams, KeyStore, Opened, Progress, Sealed, State, Step, StoreConfig,
    Uninitialized, Unsealed, public_keys,
};
use serde::Serialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::config::Config;
use crate::identity;

/// Suffix of the progress replies of t > 1 calls ("1 of 2 shares received").
pub const PROGRESS_SUFFIX: &str = " shares received";

/// A `/sys` failure: the reason goes into `{"status":"error","error":…}` with HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub String);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<crate::body::BodyError> for ApiError {
    fn from(e: crate::body::BodyError) -> Self {
        ApiError(e.to_string())
    }
}

/// Formats a delay as seconds ("0.5s", "2s").
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if (s - s.round()).abs() < 0.05 {
        format!("{}s", s.round() as u64)
    } else {
        format!("{s:.1}s")
    }
}

/// Turns a key-store error into the API's reason and logs the event (never the secret).
fn store_error(op: &str, e: StoreError) -> ApiError {
    match &e {
        StoreError::WrongPassword {
            failures,
            retry_after,
        } => {
            let msg = format!(
                "wrong password or share set ({failures} consecutive failures); next attempt allowed in {}",
                secs(*retry_after)
            );
            tracing::warn!(
                "{op} failed: wrong password ({failures} failures, next attempt in {})",
                secs(*retry_after)
            );
            ApiError(msg)
        }
        StoreError::RetryLater { retry_after } => {
            tracing::warn!(
                "{op} refused: attempt inside the back-off delay ({} left)",
                secs(*retry_after)
            );
            ApiError(format!(
                "too many failed attempts; retry in {}",
                secs(*retry_after)
            ))
        }
        StoreError::PasswordRule(_) => {
            // The reason (which classes are missing, the length) describes the password: it goes
            // to the caller only, not to the log.
            tracing::info!("{op} refused: the password does not meet the rule");
            ApiError(e.to_string())
        }
        StoreError::Share(_)
        | StoreError::SecretTooShort(_)
        | StoreError::SamePassword
        | StoreError::ChangeNotStarted
        | StoreError::ChangeExpired { .. } => {
            tracing::info!("{op} refused: {e}");
            ApiError(e.to_string())
        }
        _ => {
            tracing::error!("{op} failed: {e}");
            ApiError(format!("{op} failed: {e}"))
        }
    }
}

fn progress_reply(p: Progress) -> Value {
    Value::String(format!("{} of {}{PROGRESS_SUFFIX}", p.have, p.need))
}

/// Where the store is and how to open it.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `[storage] db-file-path`.
    pub path: PathBuf,
    /// `[storage] engine`.
    pub engine: mpc_keystore::Engine,
    /// Threshold.
    pub t: u8,
    /// Shares.
    pub n: u8,
    /// Argon2id parameters for new passwords.
    pub kdf: KdfParams,
}

impl StoreSettings {
    /// From a validated config.
    pub fn from_config(cfg: &Config) -> Result<Self, crate::config::ConfigError> {
        let (t, n) = cfg.threshold()?;
        Ok(Self {
            path: cfg.storage.db_file_path.clone(),
            engine: cfg.engine()?,
            t,
            n,
            kdf: if cfg.insecure_fast_kdf {
                KdfParams::insecure_for_tests()
            } else {
                KdfParams::default()
            },
        })
    }

    fn store_config(&self) -> Result<StoreConfig, StoreError> {
        Ok(StoreConfig::new(self.engine, self.t, self.n)?.kdf(self.kdf))
    }
}

enum Slot {
    Uninitialized(Uninitialized),
    Sealed(Sealed),
    Unsealed(Unsealed),
    /// The store file is damaged (or a key-store call failed unexpectedly): the node stays up
    /// and sealed, writes nothing, and answers every store route with this reason.
    Damaged(String),
}

/// The reply for a damaged store: names the file and the remedy.
fn damaged_reason(path: &std::path::Path, e: &StoreError) -> String {
    format!(
        "key store {} is damaged ({e}); the node stays sealed and writes nothing to it: stop the node, restore the file from a backup (mpc-node verify-backup checks one) and start it again",
        path.display()
    )
}

/// What `seal-status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Node id, `""` before init.
    pub node_id: String,
    /// PEM public key, `""` before init.
    pub public_key: String,
    /// `uninitialized`, `sealed` or `unsealed`.
    pub state: State,
    /// Threshold.
    pub t: u8,
    /// Shares.
    pub n: u8,
    /// With t > 1: shares received by the init or unseal in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Set when the store file is damaged: `seal-status` answers this error instead.
    #[serde(skip)]
    pub damaged: Option<String>,
}

fn status_of(slot: &Slot, t: u8, n: u8) -> Status {
    let mut st = Status {
        node_id: String::new(),
        public_key: String::new(),
        state: State::Uninitialized,
        t,
        n,
        progress: None,
        damaged: None,
    };
    let read = |get: &dyn Fn(&str) -> Option<Vec<u8>>, st: &mut Status| {
        if let Some(id) = get(public_keys::NODE_ID) {
            st.node_id = String::from_utf8_lossy(&id).into_owned();
        }
        if let Some(hex) = get(public_keys::PUBLIC_KEY) {
            st.public_key = identity::pem_from_hex(&hex).unwrap_or_default();
        }
    };
    match slot {
        Slot::Uninitialized(u) => {
            st.progress = (t > 1).then(|| u.progress());
        }
        Slot::Sealed(s) => {
            st.state = State::Sealed;
            st.progress = (t > 1).then(|| s.progress());
            read(&|k| s.get_public_unverified(k).ok().flatten(), &mut st);
        }
        Slot::Unsealed(u) => {
            st.state = State::Unsealed;
            read(&|k| u.get_public(k).ok().flatten(), &mut st);
        }
        Slot::Damaged(why) => {
            st.state = State::Sealed;
            st.damaged = Some(why.clone());
        }
    }
    st
}

/// The node: its store state behind one lock, and the status snapshot.
pub struct Node {
    settings: StoreSettings,
    slot: tokio::sync::Mutex<Slot>,
    status: RwLock<Status>,
    /// `true` once the store has been unsealed (it stays unsealed until the process ends).
    unsealed: tokio::sync::watch::Sender<bool>,
    /// Counters of this node (`[metrics]`).
    metrics: crate::metrics::NodeMetrics,
    /// The audit log (`[audit]`).
    audit: crate::audit::NodeAudit,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Opens the store (creating nothing): uninitialised if the file does not exist, sealed
    /// otherwise. A rolled-back or misconfigured file is an error here; a damaged one
    /// ([`StoreError::is_damaged_file`]: corrupt, truncated, not a key store) is not: the node
    /// then stays up, sealed, and answers every store route with the file and the remedy.
    pub async fn open(settings: StoreSettings) -> Result<Self, StoreError> {
        let s = settings.clone();
        let (slot, status) = tokio::task::spawn_blocking(move || {
            let slot = match KeyStore::open(&s.path, s.store_config()?) {
                Ok(Opened::Uninitialized(u)) => Slot::Uninitialized(u),
                Ok(Opened::Sealed(se)) => Slot::Sealed(se),
                Err(e) if e.is_damaged_file() => {
                    tracing::error!(
                        "key store damaged: {e}; staying sealed, restore the file from a backup"
                    );
                    Slot::Damaged(damaged_reason(&s.path, &e))
                }
                Err(e) => return Err(e),
            };
            let status = status_of(&slot, s.t, s.n);
            Ok::<_, StoreError>((slot, status))
        })
        .await
        .map_err(|_| StoreError::Crypto("key-store task panicked"))??;
        Ok(Self {
            settings,
            slot: tokio::sync::Mutex::new(slot),
            status: RwLock::new(status),
            unsealed: tokio::sync::watch::Sender::new(false),
            metrics: crate::metrics::NodeMetrics::new(),
            audit: crate::audit::NodeAudit::off(),
        })
    }

    /// This node's metrics (served with `[metrics] enable = true`).
    pub fn metrics(&self) -> &crate::metrics::NodeMetrics {
        &self.metrics
    }

    /// Watches for the unseal: the value turns `true` once the store is unsealed (the network
    /// runtime starts then).
    pub fn watch_unsealed(&self) -> tokio::sync::watch::Receiver<bool> {
        self.unsealed.subscribe()
    }

    /// The current status snapshot.
    pub fn status(&self) -> Status {
        match self.status.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Runs `f` on the state on the blocking pool, holding the lock, then refreshes the status.
    async fn with_slot(
        &self,
        f: impl FnOnce(Slot) -> (Slot, Result<Value, ApiError>) + Send + 'static,
    ) -> Result<Value, ApiError> {
        let mut guard = self.slot.lock().await;
        let path = self.settings.path.clone();
        let slot = std::mem::replace(
            &mut *guard,
            Slot::Damaged(format!(
                "key store {}: an earlier key-store call failed unexpectedly; the node stays sealed: restart it, and if this persists restore the file from a backup",
                path.display()
            )),
        );
        let (t, n) = (self.settings.t, self.settings.n);
        let joined = tokio::task::spawn_blocking(move || {
            let (slot, r) = f(slot);
            let st = status_of(&slot, t, n);
            (slot, st, r)
        })
        .await;
        match joined {
            Ok((slot, st, r)) => {
                *guard = slot;
                match self.status.write() {
                    Ok(mut s) => *s = st,
                    Err(p) => *p.into_inner() = st,
                }
                r
            }
            Err(_) => {
                // The slot stays `Damaged` (set above); the status says so.
                tracing::error!("key-store task panicked; the node stays sealed");
                let st = status_of(&guard, t, n);
                let why = st.damaged.clone().unwrap_or_default();
                match self.status.write() {
                    Ok(mut s) => *s = st,
                    Err(p) => *p.into_inner() = st,
                }
                Err(ApiError(why))
            }
        }
    }

    async fn init_unaudited(&self, bkey: Zeroizing<String>) -> Result<Value, ApiError> {
        self.with_slot(move |slot| match slot {
            Slot::Uninitialized(mut u) => {
                let id = identity::generate();
                match u.init(&bkey, &id.batch) {
                    Ok(Step::NeedMore(p)) => {
                        tracing::info!("init: {} of {} shares received", p.have, p.need);
                        (Slot::Uninitialized(u), Ok(progress_reply(p)))
                    }
                    Ok(Step::Done(unsealed)) => {
                        tracing::info!(node_id = %id.node_id, "node initialised; it stays sealed until unseal");
                        (
                            Slot::Sealed(unsealed.seal()),
                            Ok(json!({"node_id": id.node_id, "public_key": id.public_key_pem})),
                        )
                    }
                    Err(e) => (Slot::Uninitialized(u), Err(store_error("init", e))),
                }
            }
            Slot::Damaged(why) => (Slot::Damaged(why.clone()), Err(ApiError(why))),
            other => (
                other,
                Err(ApiError(
                    "node is already initialised; use unseal (/sys/in-bkey)".into(),
                )),
            ),
        })
        .await
    }

    async fn unseal_unaudited(&self, bkey: Zeroizing<String>) -> Result<Value, ApiError> {
        let r = self.unseal_inner(bkey).await;
        if self.status().state == State::Unsealed {
            self.unsealed.send_replace(true);
        }
        r
    }

    async fn unseal_inner(&self, bkey: Zeroizing<String>) -> Result<Value, ApiError> {
        let path = self.settings.path.clone();
        self.with_slot(move |slot| match slot {
            Slot::Sealed(mut s) => match s.unseal(&bkey) {
                Ok(Step::NeedMore(p)) => {
                    tracing::info!("unseal: {} of {} shares received", p.have, p.need);
                    (Slot::Sealed(s), Ok(progress_reply(p)))
                }
                Ok(Step::Done(u)) => {
                    // Every record is read and authenticated now, so a damaged file is caught
                    // here, not in the middle of a protocol run.
                    if let Err(e) = u.verify_all() {
                        tracing::error!("unseal: key store damaged: {e}; staying sealed");
                        let why = damaged_reason(&path, &e);
                        drop(u);
                        return (Slot::Damaged(why.clone()), Err(ApiError(why)));
                    }
                    // A file from before the record-set digest gets it now.
                    if let Err(e) = u.ensure_record_set() {
                        tracing::error!(
                            "unseal: the record-set digest could not be added ({e}); rollback of records is not detected until it is"
                        );
                    }
                    tracing::info!("node unsealed");
                    // The transport key is made at the first unseal (docs/platform.md).
                    if let Err(e) = crate::store::ensure_transport_key(&u) {
                        tracing::error!("transport key unavailable: {e}");
                    }
                    (Slot::Unsealed(u), Ok(json!("in-bkey success")))
                }
                Err(e) if e.is_damaged_file() => {
                    tracing::error!("unseal: key store damaged: {e}; staying sealed");
                    let why = damaged_reason(&path, &e);
                    drop(s);
                    (Slot::Damaged(why.clone()), Err(ApiError(why)))
                }
                Err(e) => (Slot::Sealed(s), Err(store_error("unseal", e))),
            },
            Slot::Damaged(why) => (Slot::Damaged(why.clone()), Err(ApiError(why))),
            Slot::Unsealed(u) => (
                Slot::Unsealed(u),
                Err(ApiError("node is already unsealed".into())),
            ),
            other => (other, Err(not_ready())),
        })
        .await
    }

    async fn begin_change_unaudited(&self, bkey: Zeroizing<String>) -> Result<Value, ApiError> {
        self.with_slot(move |slot| match slot {
            Slot::Unsealed(mut u) => {
                let r = match u.begin_password_change(&bkey) {
                    Ok(Step::NeedMore(p)) => Ok(progress_reply(p)),
                    Ok(Step::Done(())) => {
                        tracing::info!("password change started (current password verified)");
                        Ok(json!("re-bkey-init success"))
                    }
                    Err(e) => Err(store_error("re-bkey-init", e)),
                };
                (Slot::Unsealed(u), r)
            }
            Slot::Damaged(why) => (Slot::Damaged(why.clone()), Err(ApiError(why))),
            other => (other, Err(not_unsealed())),
        })
        .await
    }

    async fn rotate_key_unaudited(&self, bkey: Zeroizing<String>) -> Result<Value, ApiError> {
        self.with_slot(move |slot| match slot {
            Slot::Unsealed(mut u) => {
                let r = match u.rotate_data_key(&bkey) {
                    Ok(Step::NeedMore(p)) => Ok(progress_reply(p)),
                    Ok(Step::Done(n)) => {
                        tracing::info!(records = n, "data key rotated");
                        Ok(json!({ "rotated": true, "records": n }))
                    }
                    Err(e) => Err(store_error("rotate-key", e)),
                };
                (Slot::Unsealed(u), r)
            }
            Slot::Damaged(why) => (Slot::Damaged(why.clone()), Err(ApiError(why))),
            other => (other, Err(not_unsealed())),
        })
        .await
    }

    async fn change_unaudited(&self, bkey: Zeroizing<String>) -> Result<Value, ApiError> {
        self.with_slot(move |slot| match slot {
            Slot::Unsealed(mut u) => {
                let r = match u.change_password(&bkey) {
                    Ok(Step::NeedMore(p)) => Ok(progress_reply(p)),
                    Ok(Step::Done(())) => {
                        tracing::info!("password changed");
                        Ok(json!("re-bkey success"))
                    }
                    Err(e) => {
                        let expired_or_unstarted = matches!(
                            e,
                            StoreError::ChangeExpired { .. } | StoreError::ChangeNotStarted
                        );
                        let ApiError(reason) = store_error("re-bkey", e);
                        Err(ApiError(if expired_or_unstarted {
                            reason
                        } else {
                            format!(
                                "{reason}; the password change is cancelled: start again with re-bkey-init"
                            )
                        }))
                    }
                };
                (Slot::Unsealed(u), r)
            }
            Slot::Damaged(why) => (Slot::Damaged(why.clone()), Err(ApiError(why))),
            other => (other, Err(not_unsealed())),
        })
        .await
    }

    async fn backup_unaudited(&self) -> Result<Value, ApiError> {
        let db = self.settings.path.clone();
        let engine = self.settings.engine;
        self.with_slot(move |slot| match slot {
            Slot::Unsealed(u) => {
                let r = backup_bytes(&u, &db).map(|(info, bytes)| {
                    tracing::info!(counter = info.counter, "backup taken");
                    json!({
                        "engine": engine.as_str(),
                        "counter": info.counter,
                        "tables": info.tables,
                        "file": base64::engine::general_purpose::STANDARD.encode(&bytes),
                    })
                });
                (Slot::Unsealed(u), r)
            }
            Slot::Damaged(why) => (Slot::Damaged(why.clone()), Err(ApiError(why))),
            other => (other, Err(not_unsealed())),
        })
        .await
    }
}

impl Node {
    async fn change_platform_key_unaudited(
        &self,
        new: Option<p256::ecdsa::VerifyingKey>,
        bkey: Zeroizing<String>,
    ) -> Result<Value, ApiError> {
        let purpose = match &new {
            Some(k) => format!("platform-key pin {}", mpc_transport::signed::key_hex(k)),
            None => "platform-key forget".to_owned(),
        };
        self.with_slot(move |slot| match slot {
            Slot::Unsealed(mut u) => {
                let r = match u.authorize(&bkey, purpose.as_bytes()) {
                    Ok(Step::NeedMore(p)) => Ok(progress_reply(p)),
                    Ok(Step::Done(())) => crate::platform_key::change(&u, new.as_ref())
                        .map(|previous| {
                            let hex = |k: Option<&p256::ecdsa::VerifyingKey>| {
                                k.map(mpc_transport::signed::key_hex)
                            };
                            json!({
                                "previous": hex(previous.as_ref()),
                                "pinned": hex(new.as_ref()),
                            })
                        })
                        .map_err(|e| ApiError(e.to_string())),
                    Err(e) => Err(store_error("platform-key", e)),
                };
                (Slot::Unsealed(u), r)
            }
            Slot::Damaged(why) => (Slot::Damaged(why.clone()), Err(ApiError(why))),
            other => (other, Err(not_unsealed())),
        })
        .await
    }
}

/// The /sys operations as the audit log records them (crate::audit).
impl Node {
    /// `POST /sys/init`.
    pub async fn init(&self, bkey: Zeroizing<String>) -> Result<Value, ApiError> {
        let r = self.init_unaudited(bkey).await;
        self.audit_sys("init", &r);
        r
    }

    /// `POST /sys/re-bkey-init`.
    pub async fn begin_change(&self, bkey: Zeroizing<String>) -> Result<Value, ApiError> {
        let r = self.begin_change_unaudited(bkey).await;
        self.audit_sys("re-bkey-init", &r);
        r
    }

    /// `POST /sys/rotate-key`: with the current password (or t current shares, one per call),
    /// re-encrypts every record under a fresh data key (see
    /// [`mpc_keystore::Unsealed::rotate_data_key`]); replies with the records re-encrypted.
    pub async fn rotate_key(&self, bkey: Zeroizing<String>) -> Result<Value, ApiError> {
        let r = self.rotate_key_unaudited(bkey).await;
        self.audit_sys("rotate-key", &r);
        r
    }

    /// `POST /sys/re-bkey`.
    pub async fn change(&self, bkey: Zeroizing<String>) -> Result<Value, ApiError> {
        let r = self.change_unaudited(bkey).await;
        self.audit_sys("re-bkey", &r);
        r
    }

    /// `POST /sys/backup`: a consistent copy of the store, taken while it stays in use, returned
    /// as Base64 with what it holds. Needs the node unsealed.
    pub async fn backup(&self) -> Result<Value, ApiError> {
        let r = self.backup_unaudited().await;
        self.audit_sys("backup", &r);
        r
    }

    /// The operator's change of the pinned platform task-signing key
    /// (`crate::platform_key::change`): pin `new`, or forget the key when `None`. Needs the
    /// store unsealed and the current password (or t current shares, one per call, all given
    /// for this same change): a local process that reaches the loopback API cannot re-pin the
    /// key without it.
    pub async fn change_platform_key(
        &self,
        new: Option<p256::ecdsa::VerifyingKey>,
        bkey: Zeroizing<String>,
    ) -> Result<Value, ApiError> {
        let r = self.change_platform_key_unaudited(new, bkey).await;
        self.audit_sys("platform-key", &r);
        r
    }

    /// `POST /sys/in-bkey`.
    pub async fn unseal(&self, bkey: Zeroizing<String>) -> Result<Value, ApiError> {
        let r = self.unseal_unaudited(bkey).await;
        self.audit_sys("in-bkey", &r);
        r
    }

    /// This node's audit log (`[audit]`).
    pub fn audit(&self) -> &crate::audit::NodeAudit {
        &self.audit
    }

    /// Waits until the key store's rollback witness holds every commit made (its writer
    /// thread lags commits by moments; a stopping node waits for it).
    pub async fn flush_witness(&self) {
        if let Slot::Unsealed(u) = &*self.slot.lock().await {
            u.flush_witness();
        }
    }

    /// Sets the audit log (before the node is shared).
    pub fn set_audit(&mut self, audit: crate::audit::NodeAudit) {
        self.audit = audit;
    }

    /// Records the outcome of a /sys operation: done, a share taken (progress), or refused
    /// with the reason. Never the password, a share, or a backup's bytes.
    fn audit_sys(&self, op: &'static str, r: &Result<Value, ApiError>) {
        let a = &self.audit;
        match r {
            Ok(Value::String(s)) if s.ends_with(PROGRESS_SUFFIX) => {
                a.record("sys-share-accepted", json!({ "op": op, "progress": s }));
            }
            Ok(v) => {
                let (event, fields) = match op {
                    "init" => ("initialized", json!({ "nodeId": v["node_id"] })),
                    "in-bkey" => ("unsealed", json!({})),
                    "re-bkey-init" => ("password-change-started", json!({})),
                    "re-bkey" => ("password-changed", json!({})),
                    "rotate-key" => ("data-key-rotated", json!({ "records": v["records"] })),
                    "backup" => ("backup-taken", json!({ "counter": v["counter"] })),
                    _ => (
                        "platform-key-changed",
                        json!({ "previous": v["previous"], "pinned": v["pinned"] }),
                    ),
                };
                a.record(event, fields);
            }
            Err(ApiError(reason)) => {
                a.record("sys-refused", json!({ "op": op, "reason": reason }));
            }
        }
    }
}

impl crate::store::SecretStore for Node {
    /// Blocks on the state lock: call it from a blocking thread, never from async code.
    fn get(
        &self,
        table: &str,
        key: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, crate::store::StoreAccessError> {
        match &*self.slot.blocking_lock() {
            Slot::Unsealed(u) => Ok(u.get(table, key)?),
            _ => Err(crate::store::StoreAccessError::Sealed),
        }
    }

    /// Blocks on the state lock: call it from a blocking thread, never from async code.
    fn put(
        &self,
        table: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), crate::store::StoreAccessError> {
        match &*self.slot.blocking_lock() {
            Slot::Unsealed(u) => crate::store::SecretStore::put(u, table, key, value),
            _ => Err(crate::store::StoreAccessError::Sealed),
        }
    }

    /// Blocks on the state lock: call it from a blocking thread, never from async code.
    fn delete(&self, table: &str, key: &[u8]) -> Result<bool, crate::store::StoreAccessError> {
        match &*self.slot.blocking_lock() {
            Slot::Unsealed(u) => Ok(u.delete(table, key)?),
            _ => Err(crate::store::StoreAccessError::Sealed),
        }
    }

    /// Blocks on the state lock: call it from a blocking thread, never from async code.
    fn list_keys(&self, table: &str) -> Result<Vec<Vec<u8>>, crate::store::StoreAccessError> {
        match &*self.slot.blocking_lock() {
            Slot::Unsealed(u) => Ok(u.list_keys(table)?),
            _ => Err(crate::store::StoreAccessError::Sealed),
        }
    }

    /// Blocks on the state lock: call it from a blocking thread, never from async code.
    fn apply(&self, batch: &mpc_keystore::Batch) -> Result<(), crate::store::StoreAccessError> {
        match &*self.slot.blocking_lock() {
            Slot::Unsealed(u) => Ok(u.apply(batch)?),
            _ => Err(crate::store::StoreAccessError::Sealed),
        }
    }
}

fn not_ready() -> ApiError {
    ApiError("node is not initialised; run init (/sys/init) first".into())
}

fn not_unsealed() -> ApiError {
    ApiError("node is not unsealed; unseal it first (/sys/in-bkey)".into())
}

/// Writes the backup to a temporary file beside the store, reads it back and removes it.
fn backup_bytes(
    u: &Unsealed,
    db: &std::path::Path,
) -> Result<(mpc_keystore::BackupInfo, Vec<u8>), ApiError> {
    let mut rnd = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut rnd);
    let name = format!(
        "{}.backup-{}.tmp",
        db.file_name()
            .map_or("asset.db".into(), |n| n.to_string_lossy()),
        rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let tmp = db.with_file_name(name);
    let info = u.backup_to(&tmp).map_err(|e| store_error("backup", e))?;
    let bytes = std::fs::read(&tmp);
    let _ = std::fs::remove_file(&tmp);
    let bytes =
        bytes.map_err(|e| ApiError(format!("backup failed: read {}: {e}", tmp.display())))?;
    Ok((info, bytes))
}
