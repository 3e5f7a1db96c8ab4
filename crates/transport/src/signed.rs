//! Signed tasks and signed results: what travels inside `Frame::Task` and `Frame::TaskResult`.
//!
//! The proxy and the bus relay tasks and results but must not be able to forge or alter them.
//! So the coordinator signs every task with its own P-256 task-signing key, and every node signs
//! every result with its identity key (the key inside its node id).
//!
//! ```text
//! SignedTask   = { "v": 1, "signer": bstr(33),  "task":   bstr, "signature": tstr }
//! SignedResult = { "v": 1,                      "result": bstr, "signature": tstr }
//! ```
//!
//! * `task` / `result` are the exact CBOR bytes of [`Task`] / [`TaskResult`] (`task.rs`); the
//!   signature covers those bytes, so nothing is re-encoded before it is checked.
//! * `signer` is the coordinator's task-signing public key, SEC1 compressed (33 bytes). A node
//!   with a pinned key compares it first (a task signed by another key is refused naming both
//!   keys); a node without one learns it from its first task (`docs/transport.md`).
//! * `signature` is hex DER ECDSA P-256 / SHA-256 ([`mpc_wire::signature`]) over
//!   `"mpc-cosigner/task/v1" ‖ task` (by the task-signing key) or
//!   `"mpc-cosigner/task-result/v1" ‖ result` (by the answering node's identity key). The
//!   domain tags keep a task signature from ever verifying as a result, a protocol frame or a
//!   proxy login.
//!
//! The only ways to get a [`VerifiedTask`] or a [`VerifiedResult`] are [`SignedTask::verify`]
//! and [`verify_result`]: holding one proves the check happened.

use std::fmt;

use mpc_wire::p256::ecdsa::{SigningKey, VerifyingKey};
use mpc_wire::signature::{EcdsaSigner, verify_hex};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::task::{MAX_TASK_BYTES, Task, TaskError, TaskResult};

/// Version of the signed wrappers this build speaks.
pub const SIGNED_VERSION: u8 = 1;
/// Domain tag of task signatures.
pub const TASK_DOMAIN: &[u8] = b"mpc-cosigner/task/v1";
/// Domain tag of result signatures.
pub const RESULT_DOMAIN: &[u8] = b"mpc-cosigner/task-result/v1";
/// Largest signed wrapper accepted: the inner limit plus room for the key and the signature.
pub const MAX_SIGNED_BYTES: usize = MAX_TASK_BYTES + 1024;

/// The coordinator's task-signing key. `Debug` shows only the public key; equality compares
/// public keys.
#[derive(Clone)]
pub struct TaskSigningKey(EcdsaSigner);

impl TaskSigningKey {
    /// Wraps a P-256 key.
    pub fn new(key: SigningKey) -> Self {
        TaskSigningKey(EcdsaSigner::new(&key))
    }

    /// A fresh random key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        TaskSigningKey::new(SigningKey::random(rng))
    }

    /// The public key nodes pin.
    pub fn verifying_key(&self) -> &VerifyingKey {
        self.0.verifying_key()
    }

    /// Signs `task`: the bytes of a `Frame::Task` body.
    pub fn sign(&self, task: &Task) -> Result<Vec<u8>, TaskError> {
        let body = task.encode()?;
        let signature = self.0.sign_hex(&message(TASK_DOMAIN, &body));
        let signer = sec1(self.verifying_key());
        encode(&SignedTaskWire {
            v: SIGNED_VERSION,
            signer,
            task: body,
            signature,
        })
    }
}

impl fmt::Debug for TaskSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSigningKey")
            .field("public", &key_hex(self.verifying_key()))
            .finish_non_exhaustive()
    }
}

impl PartialEq for TaskSigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.verifying_key() == other.verifying_key()
    }
}

impl Eq for TaskSigningKey {}

/// Hex of a P-256 public key in SEC1 compressed form (how logs and errors name platform keys).
pub fn key_hex(key: &VerifyingKey) -> String {
    hex::encode(sec1(key))
}

fn sec1(key: &VerifyingKey) -> Vec<u8> {
    key.to_encoded_point(true).as_bytes().to_vec()
}

fn message(domain: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len() + body.len());
    m.extend_from_slice(domain);
    m.extend_from_slice(body);
    m
}

#[derive(Serialize, Deserialize)]
struct SignedTaskWire {
    v: u8,
    #[serde(with = "serde_bytes")]
    signer: Vec<u8>,
    #[serde(with = "serde_bytes")]
    task: Vec<u8>,
    signature: String,
}

#[derive(Serialize, Deserialize)]
struct SignedResultWire {
    v: u8,
    #[serde(with = "serde_bytes")]
    result: Vec<u8>,
    signature: String,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, TaskError> {
    let bytes = cbor::to_vec(v).map_err(TaskError::Malformed)?;
    if bytes.len() > MAX_SIGNED_BYTES {
        return Err(TaskError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// Why a signed task or result was refused. Everything but [`SignedError::Task`] on a verified
/// body means the bytes were not made by the key they had to come from: whoever relayed them
/// may have altered them, so nobody is blamed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedError {
    /// Not a signed wrapper (size, version, shape).
    #[error("signed wrapper: {0}")]
    Wrapper(TaskError),
    /// The task names a signer that is not a P-256 key.
    #[error("the task's signer is not a P-256 public key")]
    BadSigner,
    /// The task is signed by another key than the pinned one.
    #[error("task signed by platform key {got}, but this node pins {pinned}")]
    WrongSigner {
        /// The pinned key (hex SEC1).
        pinned: String,
        /// The key the task names (hex SEC1).
        got: String,
    },
    /// The node id of the expected sender does not hold a P-256 key.
    #[error("node id: {0}")]
    NodeId(String),
    /// The signature does not verify.
    #[error("{what} signature does not verify")]
    BadSignature {
        /// `task` or `result`.
        what: &'static str,
    },
    /// The signed bytes are not a task / result this build reads.
    #[error(transparent)]
    Body(TaskError),
}

/// A decoded but not yet verified task wrapper.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedTask {
    signer: VerifyingKey,
    task: Vec<u8>,
    signature: String,
}

impl fmt::Debug for SignedTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedTask")
            .field("signer", &key_hex(&self.signer))
            .field("task_bytes", &self.task.len())
            .finish_non_exhaustive()
    }
}

impl SignedTask {
    /// Decodes a `Frame::Task` body (no signature check yet).
    pub fn decode(bytes: &[u8]) -> Result<Self, SignedError> {
        if bytes.len() > MAX_SIGNED_BYTES {
            return Err(SignedError::Wrapper(TaskError::TooLarge(bytes.len())));
        }
        let w: SignedTaskWire =
            cbor::from_slice(bytes).map_err(|e| SignedError::Wrapper(TaskError::Malformed(e)))?;
        if w.v != SIGNED_VERSION {
            return Err(SignedError::Wrapper(TaskError::Version(w.v)));
        }
        let signer =
            VerifyingKey::from_sec1_bytes(&w.signer).map_err(|_| SignedError::BadSigner)?;
        Ok(SignedTask {
            signer,
            task: w.task,
            signature: w.signature,
        })
    }

    /// The key the task claims to be signed by (unverified until [`SignedTask::verify`]).
    pub fn signer(&self) -> &VerifyingKey {
        &self.signer
    }

    /// Checks that the task is signed by `pinned` and decodes it.
    pub fn verify(self, pinned: &VerifyingKey) -> Result<VerifiedTask, SignedError> {
        if &self.signer != pinned {
            return Err(SignedError::WrongSigner {
                pinned: key_hex(pinned),
                got: key_hex(&self.signer),
            });
        }
        verify_hex(pinned, &message(TASK_DOMAIN, &self.task), &self.signature)
            .map_err(|_| SignedError::BadSignature { what: "task" })?;
        let task = Task::decode(&self.task).map_err(SignedError::Body)?;
        Ok(VerifiedTask {
            task,
            signer: *pinned,
        })
    }
}

/// A task whose signature verified under the pinned platform key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTask {
    task: Task,
    signer: VerifyingKey,
}

impl VerifiedTask {
    /// The task.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The key that signed it.
    pub fn signer(&self) -> &VerifyingKey {
        &self.signer
    }

    /// The task, consuming the proof.
    pub fn into_task(self) -> Task {
        self.task
    }
}

/// Signs `result` with the node's identity key: the bytes of a `Frame::TaskResult` body.
pub fn sign_result(identity: &EcdsaSigner, result: &TaskResult) -> Result<Vec<u8>, TaskError> {
    let body = result.encode()?;
    let signature = identity.sign_hex(&message(RESULT_DOMAIN, &body));
    encode(&SignedResultWire {
        v: SIGNED_VERSION,
        result: body,
        signature,
    })
}

/// A result whose signature verified under the identity key of `node_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedResult {
    result: TaskResult,
    node_id: String,
}

impl VerifiedResult {
    /// The result.
    pub fn result(&self) -> &TaskResult {
        &self.result
    }

    /// The node whose key signed it.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The result, consuming the proof.
    pub fn into_result(self) -> TaskResult {
        self.result
    }
}

/// Checks that a `Frame::TaskResult` body is signed by the identity key inside `node_id` (the
/// node bound to the party that answers) and decodes it.
pub fn verify_result(bytes: &[u8], node_id: &str) -> Result<VerifiedResult, SignedError> {
    if bytes.len() > MAX_SIGNED_BYTES {
        return Err(SignedError::Wrapper(TaskError::TooLarge(bytes.len())));
    }
    let w: SignedResultWire =
        cbor::from_slice(bytes).map_err(|e| SignedError::Wrapper(TaskError::Malformed(e)))?;
    if w.v != SIGNED_VERSION {
        return Err(SignedError::Wrapper(TaskError::Version(w.v)));
    }
    let vk = mpc_wire::keys::verifying_key_from_node_id(node_id)
        .map_err(|e| SignedError::NodeId(e.to_string()))?;
    verify_hex(&vk, &message(RESULT_DOMAIN, &w.result), &w.signature)
        .map_err(|_| SignedError::BadSignature { what: "result" })?;
    let result = TaskResult::decode(&w.result).map_err(SignedError::Body)?;
    Ok(VerifiedResult {
        result,
        node_id: node_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{
        Algorithm, KeygenTask, Member, Outcome, Payload, SignTask, TASK_VERSION, TaskBody,
    };
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn task() -> Task {
        Task {
            version: TASK_VERSION,
            task_id: "t1".into(),
            sino_id: "s1".into(),
            request_id: "r1".into(),
            deadline_unix_ms: 1_700_000_000_000,
            execution_unique: [7; 32],
            members: vec![],
            body: TaskBody::Sign(SignTask {
                ecdsa_protocol: crate::task::EcdsaProtocol::Cggmp24,
                key_id: "k".into(),
                algorithm: Algorithm::Ecdsa,
                root_public_key: vec![2; 33],
                path: "m".into(),
                sign_type: 3,
                payload: Payload::Digest { digest: [9; 32] },
                tap_script_root: None,
                tx_info: None,
                generation: None,
            }),
        }
    }

    fn rewrap(bytes: &[u8], f: impl FnOnce(&mut SignedTaskWire)) -> Vec<u8> {
        let mut w: SignedTaskWire = cbor::from_slice(bytes).unwrap();
        f(&mut w);
        cbor::to_vec(&w).unwrap()
    }

    #[test]
    fn a_task_verifies_only_under_its_key_and_unaltered() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let platform = TaskSigningKey::generate(&mut rng);
        let proxy = TaskSigningKey::generate(&mut rng);
        let bytes = platform.sign(&task()).unwrap();
        let signed = SignedTask::decode(&bytes).unwrap();
        assert_eq!(signed.signer(), platform.verifying_key());
        let v = signed.clone().verify(platform.verifying_key()).unwrap();
        assert_eq!(v.task(), &task());

        // Re-signed by someone else (a proxy that rewrote it): refused naming both keys.
        let forged = SignedTask::decode(&proxy.sign(&task()).unwrap()).unwrap();
        assert_eq!(
            forged.verify(platform.verifying_key()),
            Err(SignedError::WrongSigner {
                pinned: key_hex(platform.verifying_key()),
                got: key_hex(proxy.verifying_key()),
            })
        );

        // Altered in transit, signer claim kept: the signature fails.
        let mut other = task();
        other.members.push(Member {
            party: "x".into(),
            node_id: "sinoX".into(),
            transport_cert: crate::keys::TransportCert {
                node_id: "sinoX".into(),
                x25519_public: [0; 32],
                signature: String::new(),
            },
        });
        let altered = rewrap(&bytes, |w| w.task = other.encode().unwrap());
        assert_eq!(
            SignedTask::decode(&altered)
                .unwrap()
                .verify(platform.verifying_key()),
            Err(SignedError::BadSignature { what: "task" })
        );
        // A single flipped byte anywhere in the task bytes.
        for i in 0..task().encode().unwrap().len() {
            let flipped = rewrap(&bytes, |w| w.task[i] ^= 1);
            assert!(
                SignedTask::decode(&flipped)
                    .unwrap()
                    .verify(platform.verifying_key())
                    .is_err()
            );
        }
        // A result signature is never a task signature (domain separation).
        let id = EcdsaSigner::new(&SigningKey::random(&mut rng));
        let r = sign_result(&id, &result()).unwrap();
        let w: SignedResultWire = cbor::from_slice(&r).unwrap();
        let as_task = rewrap(&bytes, |t| {
            t.task = w.result.clone();
            t.signer = sec1(id.verifying_key());
            t.signature = w.signature.clone();
        });
        assert_eq!(
            SignedTask::decode(&as_task)
                .unwrap()
                .verify(id.verifying_key()),
            Err(SignedError::BadSignature { what: "task" })
        );
    }

    fn result() -> TaskResult {
        TaskResult {
            version: TASK_VERSION,
            task_id: "t1".into(),
            party: "b".into(),
            outcome: Outcome::KeygenDone {
                public_key: vec![2; 33],
                chain_code: [1; 32],
            },
        }
    }

    #[test]
    fn a_result_verifies_only_under_the_bound_node() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let b = EcdsaSigner::new(&SigningKey::random(&mut rng));
        let c = EcdsaSigner::new(&SigningKey::random(&mut rng));
        let b_id = mpc_wire::keys::node_id(b.verifying_key());
        let c_id = mpc_wire::keys::node_id(c.verifying_key());
        let bytes = sign_result(&b, &result()).unwrap();
        let v = verify_result(&bytes, &b_id).unwrap();
        assert_eq!((v.result(), v.node_id()), (&result(), b_id.as_str()));
        // Presented as another node's result.
        assert_eq!(
            verify_result(&bytes, &c_id),
            Err(SignedError::BadSignature { what: "result" })
        );
        // Another public key swapped in by a relay.
        let mut w: SignedResultWire = cbor::from_slice(&bytes).unwrap();
        let mut r = result();
        r.outcome = Outcome::KeygenDone {
            public_key: vec![3; 33],
            chain_code: [1; 32],
        };
        w.result = r.encode().unwrap();
        assert_eq!(
            verify_result(&cbor::to_vec(&w).unwrap(), &b_id),
            Err(SignedError::BadSignature { what: "result" })
        );
        assert!(matches!(
            verify_result(&bytes, "sinoNotAKey"),
            Err(SignedError::NodeId(_))
        ));
        // Unsigned (an old build's bare result) and garbage are refused.
        assert!(matches!(
            verify_result(&result().encode().unwrap(), &b_id),
            Err(SignedError::Wrapper(_))
        ));
        assert!(matches!(
            SignedTask::decode(&task().encode().unwrap()),
            Err(SignedError::Wrapper(_))
        ));
        assert!(matches!(
            verify_result(&vec![0; MAX_SIGNED_BYTES + 1], &b_id),
            Err(SignedError::Wrapper(TaskError::TooLarge(_)))
        ));
    }

    #[test]
    fn versions_and_signers_are_checked() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let platform = TaskSigningKey::generate(&mut rng);
        let keygen = Task {
            body: TaskBody::Keygen(KeygenTask {
                ecdsa_protocol: crate::task::EcdsaProtocol::Cggmp24,
                key_id: "k".into(),
                curve: crate::task::Curve::Ed25519,
                threshold: 2,
            }),
            ..task()
        };
        let bytes = platform.sign(&keygen).unwrap();
        let v2 = rewrap(&bytes, |w| w.v = 2);
        assert_eq!(
            SignedTask::decode(&v2),
            Err(SignedError::Wrapper(TaskError::Version(2)))
        );
        let bad = rewrap(&bytes, |w| w.signer = vec![4; 33]);
        assert_eq!(SignedTask::decode(&bad), Err(SignedError::BadSigner));
        assert_eq!(
            format!("{platform:?}"),
            format!(
                "TaskSigningKey {{ public: {:?}, .. }}",
                key_hex(platform.verifying_key())
            )
        );
    }

    /// The signed task's bytes are pinned: a change of the wire format shows up here.
    #[test]
    fn wire_format_is_pinned() {
        let key = TaskSigningKey::new(SigningKey::from_slice(&[0x11; 32]).unwrap());
        let bytes = key.sign(&task()).unwrap();
        let w: SignedTaskWire = cbor::from_slice(&bytes).unwrap();
        // ECDSA signatures are deterministic (RFC 6979), so the whole wrapper is. (Changed when
        // the sign task gained `ecdsa_protocol`.)
        // The map starts {"v": 1, "signer": bstr(33) …}.
        assert_eq!(hex::encode(&bytes[..13]), "a4617601667369676e65725821");
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(
            digest,
            "70fbc09ec0a45586f6ada0cfd240bc9624893eb6022f58dee539b5e006d1280e"
        );
        assert_eq!(w.task, task().encode().unwrap());
        assert_eq!(
            hex::encode(&w.signer),
            key_hex(key.verifying_key()),
            "signer is SEC1 compressed"
        );
        assert_eq!(w.signer.len(), 33);
    }
}
