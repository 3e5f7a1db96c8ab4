//! Opening node backups offline, read-only, with the key store's own API.
//!
//! The backup itself is never opened for writing: it is copied byte for byte into a private
//! temporary directory (mode 0700, removed afterwards) and that copy is opened and unsealed
//! with `mpc_keystore::KeyStore` (the engine, `t` and `n` are learnt from the file the way the
//! key store reports them), exactly as `mpc-node verify-backup` unseals: one password (t = 1)
//! or t password shares (t > 1, Vault format, as `mpc-node passwords generate` prints them).
//! No rollback witness is consulted or written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mpc_keystore::{
    Backoff, Engine, Error as StoreError, KeyStore, Opened, Step, StoreConfig, Witness,
};
use zeroize::Zeroizing;

use crate::RecoverError;
use crate::record::{self, KEY_SHARES, KEY_SHARES_NEXT, KeyRecord};

/// The secret that opens one backup.
pub enum Unlock {
    /// The node's password (`[storage] t = 1`).
    Password(Zeroizing<String>),
    /// t password shares (`[storage] t > 1`).
    Shares(Vec<Zeroizing<String>>),
}

impl std::fmt::Debug for Unlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unlock::Password(_) => f.write_str("Unlock::Password(<redacted>)"),
            Unlock::Shares(s) => write!(f, "Unlock::Shares({} shares, redacted)", s.len()),
        }
    }
}

/// What one backup holds for the recovery.
#[derive(Debug)]
pub struct Backup {
    /// The file, for messages.
    pub label: String,
    /// The node id stored in the backup (authenticated), if any.
    pub node_id: Option<String>,
    /// The store's password threshold and share count.
    pub store_t: u8,
    /// See `store_t`.
    pub store_n: u8,
    /// Every key record of [`KEY_SHARES`] and [`KEY_SHARES_NEXT`].
    pub keys: Vec<KeyRecord>,
}

/// Opens `path` read-only with `unlock` and reads its key records.
pub fn read_backup(path: &Path, unlock: &Unlock) -> Result<Backup, RecoverError> {
    let label = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(RecoverError::io("open", path))?;
    if !meta.is_file() {
        return Err(RecoverError::Unlock {
            backup: label,
            reason: "not a regular file".into(),
        });
    }
    let (dir, copy) = private_copy(path)?;
    let r = read_copy(&copy, &label, unlock);
    // The temporary directory (an encrypted copy) is removed here, also on error.
    drop(dir);
    r
}

/// A private copy of the backup at `path` (0600, in a temporary directory removed when the
/// returned handle drops): the key store may tighten modes or mark a redb file in use on open;
/// none of that may touch the operator's backup.
fn private_copy(path: &Path) -> Result<(tempfile::TempDir, std::path::PathBuf), RecoverError> {
    let dir = tempfile::Builder::new()
        .prefix("mpc-recover-")
        .tempdir()
        .map_err(RecoverError::io(
            "create a private temporary directory for",
            path,
        ))?;
    let copy = dir.path().join("asset.db");
    std::fs::copy(path, &copy).map_err(RecoverError::io("copy", path))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600))
            .map_err(RecoverError::io("chmod 0600", &copy))?;
    }
    Ok((dir, copy))
}

/// The password threshold and share count (`[storage] t`, `n`) of the store at `path`, from
/// its header (read from a private copy, before any secret is asked for).
pub fn store_policy(path: &Path) -> Result<(u8, u8), RecoverError> {
    let label = path.display().to_string();
    let (_dir, copy) = private_copy(path)?;
    let info = open_sealed(&copy, &label)?
        .info()
        .map_err(store_err(&label))?;
    Ok((info.t, info.n))
}

fn store_err(label: &str) -> impl Fn(StoreError) -> RecoverError + '_ {
    move |e| match e {
        StoreError::WrongPassword { .. } | StoreError::RetryLater { .. } => {
            RecoverError::WrongPassword {
                backup: label.to_owned(),
            }
        }
        source => RecoverError::Store {
            backup: label.to_owned(),
            source,
        },
    }
}

fn config(engine: Engine, t: u8, n: u8) -> Result<StoreConfig, StoreError> {
    Ok(StoreConfig::new(engine, t, n)?
        .witness(Witness::None)
        .backoff(Backoff {
            base: Duration::ZERO,
            max: Duration::ZERO,
        }))
}

/// Opens the store at `copy`: the key store names the engine and the t/n of a file opened
/// with other settings (`EngineMismatch`, `PolicyMismatch`), and those are used. Three
/// attempts at most.
fn open_sealed(copy: &PathBuf, label: &str) -> Result<mpc_keystore::Sealed, RecoverError> {
    let (mut engine, mut t, mut n) = (Engine::Bolt, 1u8, 1u8);
    for _ in 0..3 {
        match KeyStore::open(copy, config(engine, t, n).map_err(store_err(label))?) {
            Ok(Opened::Sealed(s)) => return Ok(s),
            Ok(Opened::Uninitialized(_)) => {
                return Err(RecoverError::Unlock {
                    backup: label.to_owned(),
                    reason: "no key store here".into(),
                });
            }
            Err(StoreError::EngineMismatch { found, .. }) => {
                engine = found.parse().map_err(|reason| RecoverError::Unlock {
                    backup: label.to_owned(),
                    reason,
                })?;
            }
            Err(StoreError::PolicyMismatch { file_t, file_n, .. }) => {
                t = file_t;
                n = file_n;
            }
            Err(e) => return Err(store_err(label)(e)),
        }
    }
    Err(RecoverError::Unlock {
        backup: label.to_owned(),
        reason: "the key store could not be opened with the engine and t/n it reports".into(),
    })
}

fn read_copy(copy: &PathBuf, label: &str, unlock: &Unlock) -> Result<Backup, RecoverError> {
    let mut sealed = open_sealed(copy, label)?;
    let info = sealed.info().map_err(store_err(label))?;
    let secrets: Vec<&str> = match unlock {
        Unlock::Password(p) if info.t == 1 => vec![p.as_str()],
        Unlock::Password(_) => {
            return Err(RecoverError::Unlock {
                backup: label.to_owned(),
                reason: format!(
                    "this store is sealed with {} of {} password shares ([storage] t = {}); give {} shares, not a password",
                    info.t, info.n, info.t, info.t
                ),
            });
        }
        Unlock::Shares(_) if info.t == 1 => {
            return Err(RecoverError::Unlock {
                backup: label.to_owned(),
                reason: "this store is sealed with one password ([storage] t = 1), not with shares"
                    .into(),
            });
        }
        Unlock::Shares(s) if s.len() < usize::from(info.t) => {
            return Err(RecoverError::Unlock {
                backup: label.to_owned(),
                reason: format!(
                    "{} password share{} given, this store needs {} (of {})",
                    s.len(),
                    if s.len() == 1 { "" } else { "s" },
                    info.t,
                    info.n
                ),
            });
        }
        Unlock::Shares(s) => s.iter().map(|x| x.as_str()).collect(),
    };
    let mut unsealed = None;
    for s in secrets {
        match sealed.unseal(s).map_err(store_err(label))? {
            Step::Done(u) => {
                unsealed = Some(u);
                break;
            }
            Step::NeedMore(_) => {}
        }
    }
    let Some(u) = unsealed else {
        return Err(RecoverError::Unlock {
            backup: label.to_owned(),
            reason: format!("the store still asks for shares after {}", info.t),
        });
    };
    let node_id = u
        .get_public(mpc_keystore::public_keys::NODE_ID)
        .map_err(store_err(label))?
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut keys = Vec::new();
    for table in [KEY_SHARES, KEY_SHARES_NEXT] {
        // A table the store never had lists no keys.
        let ids = u.list_keys(table).map_err(store_err(label))?;
        for id in ids {
            let key_id = String::from_utf8_lossy(&id).into_owned();
            let Some(bytes) = u.get(table, &id).map_err(store_err(label))? else {
                continue;
            };
            let rec =
                record::parse(&key_id, table, &bytes).map_err(|reason| RecoverError::Record {
                    backup: label.to_owned(),
                    key_id: key_id.clone(),
                    reason,
                })?;
            keys.push(rec);
        }
    }
    Ok(Backup {
        label: label.to_owned(),
        node_id,
        store_t: info.t,
        store_n: info.n,
        keys,
    })
}
