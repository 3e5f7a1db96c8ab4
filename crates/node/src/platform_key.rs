//! Which platform may give this node tasks: the coordinator's task-signing key, pinned.
//!
//! * `[mpc-service] platform-public-key-path` set: every task must be signed by that key.
//! * Not set: the key that signed the first task is pinned (trust on first use), stored sealed
//!   in [`tables::NODE_IDENTITY`] / [`PLATFORM_KEY_RECORD`] and logged; every later task must be
//!   signed by it. Changing it takes an explicit operator command (`mpc-node platform-key pin
//!   FILE` or `forget`, through `POST /sys/platform-key`), which is logged.
//!
//! A task signed by another key, or altered after signing, is refused before anything else
//! looks at it (`mpc_transport::signed`): the proxy and the bus can relay tasks, never forge or
//! alter one. All calls block (store access): call them from a blocking thread.

use std::sync::Mutex;

use mpc_keystore::tables;
use mpc_transport::signed::{SignedError, SignedTask, VerifiedTask, key_hex};
use p256::ecdsa::VerifyingKey;

use crate::store::{SecretStore, StoreAccessError};

/// Record key of the learned platform key in [`tables::NODE_IDENTITY`] (SEC1 compressed).
pub const PLATFORM_KEY_RECORD: &[u8] = b"platform-task-key";

/// Why a task frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum TaskAuthError {
    /// Not signed by the pinned key, altered, or not a signed task at all.
    #[error(transparent)]
    Signed(#[from] SignedError),
    /// The store failed (ours).
    #[error(transparent)]
    Store(#[from] StoreAccessError),
}

/// The node's pin on the platform's task-signing key.
#[derive(Debug)]
pub struct PlatformPin {
    configured: Option<VerifyingKey>,
    /// Serializes learning at the first task.
    learning: Mutex<()>,
}

impl PlatformPin {
    /// A pin on `configured` (`[mpc-service] platform-public-key-path`), or on the key stored
    /// (or learned at the first task) when `None`.
    pub fn new(configured: Option<VerifyingKey>) -> Self {
        PlatformPin {
            configured,
            learning: Mutex::new(()),
        }
    }

    /// Verifies a `Frame::Task` body under the pinned key; without one, pins the key that
    /// signed it.
    pub fn verify(
        &self,
        store: &dyn SecretStore,
        bytes: &[u8],
    ) -> Result<VerifiedTask, TaskAuthError> {
        let signed = SignedTask::decode(bytes)?;
        if let Some(k) = &self.configured {
            return Ok(signed.verify(k)?);
        }
        let _guard = self.learning.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = learned(store)? {
            return Ok(signed.verify(&k)?);
        }
        let key = *signed.signer();
        // Only a task that verifies under the key it names pins that key.
        let verified = signed.verify(&key)?;
        store.put(
            tables::NODE_IDENTITY,
            PLATFORM_KEY_RECORD,
            key.to_encoded_point(true).as_bytes(),
        )?;
        tracing::warn!(
            platform_key = %key_hex(&key),
            "platform task-signing key pinned at the first task (trust on first use); set [mpc-service] platform-public-key-path to pin it from the start"
        );
        Ok(verified)
    }
}

/// The key learned at the first task, if any.
pub fn learned(store: &dyn SecretStore) -> Result<Option<VerifyingKey>, StoreAccessError> {
    let Some(b) = store.get(tables::NODE_IDENTITY, PLATFORM_KEY_RECORD)? else {
        return Ok(None);
    };
    VerifyingKey::from_sec1_bytes(&b)
        .map(Some)
        .map_err(|_| StoreAccessError::Corrupt {
            table: tables::NODE_IDENTITY,
            key: String::from_utf8_lossy(PLATFORM_KEY_RECORD).into_owned(),
            reason: "not a P-256 public key".into(),
        })
}

/// The operator's change of the learned key: pin `new`, or forget the key (`None`: the next
/// task's key is pinned). Returns the previous key. Logged.
pub fn change(
    store: &dyn SecretStore,
    new: Option<&VerifyingKey>,
) -> Result<Option<VerifyingKey>, StoreAccessError> {
    let previous = learned(store)?;
    let prev_hex = previous.as_ref().map_or_else(|| "none".into(), key_hex);
    match new {
        Some(k) => {
            store.put(
                tables::NODE_IDENTITY,
                PLATFORM_KEY_RECORD,
                k.to_encoded_point(true).as_bytes(),
            )?;
            tracing::warn!(previous = %prev_hex, pinned = %key_hex(k), "operator pinned a new platform task-signing key");
        }
        None => {
            store.delete(tables::NODE_IDENTITY, PLATFORM_KEY_RECORD)?;
            tracing::warn!(previous = %prev_hex, "operator removed the pinned platform task-signing key; the next task's key will be pinned");
        }
    }
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpc_transport::signed::TaskSigningKey;
    use mpc_transport::task::{Curve, KeygenTask, TASK_VERSION, Task, TaskBody};
    use rand_core::OsRng;

    fn store(dir: &std::path::Path) -> mpc_keystore::Unsealed {
        use mpc_keystore::{Batch, Engine, KdfParams, KeyStore, Opened, StoreConfig};
        let cfg = StoreConfig::new(Engine::Bolt, 1, 1)
            .unwrap()
            .kdf(KdfParams::insecure_for_tests());
        let Opened::Uninitialized(mut u) = KeyStore::open(dir.join("a.db"), cfg).unwrap() else {
            panic!()
        };
        u.init("Correct-Horse-9", &Batch::new())
            .unwrap()
            .done()
            .unwrap()
    }

    fn task() -> Task {
        Task {
            version: TASK_VERSION,
            task_id: "t".into(),
            sino_id: "s".into(),
            request_id: String::new(),
            deadline_unix_ms: 1,
            execution_unique: [1; 32],
            members: vec![],
            body: TaskBody::Keygen(KeygenTask {
                ecdsa_protocol: mpc_transport::task::EcdsaProtocol::Cggmp24,
                key_id: "k".into(),
                curve: Curve::Ed25519,
                threshold: 2,
            }),
        }
    }

    #[test]
    fn first_task_pins_then_only_that_key_and_operator_changes() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let platform = TaskSigningKey::generate(&mut OsRng);
        let proxy = TaskSigningKey::generate(&mut OsRng);
        let pin = PlatformPin::new(None);
        assert_eq!(learned(&s).unwrap(), None);
        pin.verify(&s, &platform.sign(&task()).unwrap()).unwrap();
        assert_eq!(
            learned(&s).unwrap().as_ref(),
            Some(platform.verifying_key())
        );
        // The proxy's own key is refused from now on, also by a fresh pin (a restart).
        for p in [&pin, &PlatformPin::new(None)] {
            let e = p
                .verify(&s, &proxy.sign(&task()).unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains("but this node pins"), "{e}");
            p.verify(&s, &platform.sign(&task()).unwrap()).unwrap();
        }
        // The operator pins another key: the old one is refused.
        assert_eq!(
            change(&s, Some(proxy.verifying_key())).unwrap().as_ref(),
            Some(platform.verifying_key())
        );
        assert!(pin.verify(&s, &platform.sign(&task()).unwrap()).is_err());
        pin.verify(&s, &proxy.sign(&task()).unwrap()).unwrap();
        // Forgotten: the next task pins again.
        change(&s, None).unwrap();
        assert_eq!(learned(&s).unwrap(), None);
        pin.verify(&s, &platform.sign(&task()).unwrap()).unwrap();
        assert_eq!(
            learned(&s).unwrap().as_ref(),
            Some(platform.verifying_key())
        );
    }

    #[test]
    fn a_configured_key_wins_and_nothing_is_learned() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let platform = TaskSigningKey::generate(&mut OsRng);
        let proxy = TaskSigningKey::generate(&mut OsRng);
        let pin = PlatformPin::new(Some(*platform.verifying_key()));
        assert!(pin.verify(&s, &proxy.sign(&task()).unwrap()).is_err());
        assert_eq!(learned(&s).unwrap(), None);
        pin.verify(&s, &platform.sign(&task()).unwrap()).unwrap();
        assert_eq!(learned(&s).unwrap(), None);
        // An unsigned task (the old format) is refused.
        assert!(matches!(
            pin.verify(&s, &task().encode().unwrap()),
            Err(TaskAuthError::Signed(SignedError::Wrapper(_)))
        ));
    }
}
