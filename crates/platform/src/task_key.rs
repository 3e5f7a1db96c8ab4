//! The coordinator's task-signing key (`[coordinator] task-signing-key-path`): a P-256 private
//! key in a PEM file (PKCS#8 or SEC1), mode 0600. Every task the coordinator sends is signed
//! with it (`mpc_transport::signed`); nodes pin its public key (`[mpc-service]
//! platform-public-key-path`, or learned at their first task). The first start makes the key
//! when the file is missing; `mpc-platform task-public-key` prints the public key to pin.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use mpc_coordinator::TaskSigningKey;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};

/// Why the task-signing key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[error("[coordinator] task-signing-key-path {path}: {reason}")]
pub struct TaskKeyError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// Loads the key at `path`, or makes one there (0600) when the file does not exist. Returns
/// the key and whether it was made now.
pub fn load_or_create(path: &Path) -> Result<(TaskSigningKey, bool), TaskKeyError> {
    let err = |reason: String| TaskKeyError {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(err(format!(
                    "mode {mode:o} lets other users read the key; chmod 600 it"
                )));
            }
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?,
            );
            let key = mpc_wire::keys::signing_key_from_pem(&text)
                .map_err(|e| err(format!("not a P-256 private key PEM: {e}")))?;
            Ok((TaskSigningKey::new(key), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::random(&mut rand_core::OsRng);
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| err(e.to_string()))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create: {e}")))?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| err(format!("cannot create: {e}")))?;
            f.write_all(pem.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| err(format!("cannot write: {e}")))?;
            Ok((TaskSigningKey::new(key), true))
        }
        Err(e) => Err(err(format!("cannot read: {e}"))),
    }
}

/// The public key as a `PUBLIC KEY` PEM (what nodes pin).
pub fn public_pem(key: &TaskSigningKey) -> String {
    mpc_wire::keys::public_key_pem(key.verifying_key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_loaded_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/task-signing.key");
        let (made, created) = load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(made, again);
        assert!(public_pem(&made).starts_with("-----BEGIN PUBLIC KEY-----"));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "junk").unwrap();
        let e = load_or_create(&path).unwrap_err().to_string();
        assert!(
            e.starts_with("[coordinator] task-signing-key-path ") && e.contains("not a P-256"),
            "{e}"
        );
    }
}
