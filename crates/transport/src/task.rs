//! What the coordinator asks a node to do ([`Task`]) and what the node answers
//! ([`TaskResult`]); they travel as CBOR inside [`crate::frame::Frame::Task`] and
//! [`crate::frame::Frame::TaskResult`]. `docs/platform.md` describes the flow.
//!
//! A task carries everything the node needs to build its callback request and to run the
//! protocol: the committee (party, node id and certified transport key of every member), the
//! coordinator's random `execution_unique` (from which every execution id of the run is derived
//! together with the protocol and the party set), and for a signature the *inputs* of the digest,
//! never just a digest the node would have to trust: the node recomputes the digest from the
//! message itself (`mpc-chains`) and the callback approves that message.

use serde::{Deserialize, Serialize};

pub use mpc_wire::scheme::EcdsaProtocol;

use crate::cbor;
use crate::keys::TransportCert;

/// Version of the task encoding this build speaks.
pub const TASK_VERSION: u8 = 1;
/// Largest encoded task or result accepted (an EIP-712 document is capped at 1 MiB by the API).
pub const MAX_TASK_BYTES: usize = 2 * 1024 * 1024;

/// One member of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Party id (`"a"`..`"z"`).
    pub party: String,
    /// The node bound to that party.
    pub node_id: String,
    /// The node's transport key certificate, as it presented it to the proxy. The receiving
    /// node verifies it against `node_id` (`keys::verify_cert`) before using it.
    pub transport_cert: TransportCert,
}

/// Curve of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Curve {
    /// secp256k1: CGGMP ECDSA, BIP340 and Taproot signatures from one key.
    Secp256k1,
    /// ed25519: FROST EdDSA.
    Ed25519,
}

/// Signature scheme of a signing task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Threshold ECDSA (secp256k1 key).
    Ecdsa,
    /// FROST ed25519 (ed25519 key).
    Eddsa,
    /// Untweaked BIP340 Schnorr (secp256k1 key).
    Bip340,
    /// BIP341 key-path Taproot (secp256k1 key), optional script root.
    Taproot,
}

impl Algorithm {
    /// The curve of the key this scheme signs with.
    pub fn curve(self) -> Curve {
        match self {
            Algorithm::Eddsa => Curve::Ed25519,
            Algorithm::Ecdsa | Algorithm::Bip340 | Algorithm::Taproot => Curve::Secp256k1,
        }
    }
}

/// A task from the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// [`TASK_VERSION`].
    pub version: u8,
    /// The coordinator's id of this MPC request; results and aborts refer to it.
    pub task_id: String,
    /// The platform's business id (`extra_info.sino_id` in callbacks).
    pub sino_id: String,
    /// The API caller's `requestId` (`extra_info.request_id`); empty for automatic keygen.
    pub request_id: String,
    /// Milliseconds since the Unix epoch after which the node gives up (and the coordinator has
    /// already failed the request).
    pub deadline_unix_ms: u64,
    /// The coordinator's 32 random bytes for this run.
    #[serde(with = "serde_bytes")]
    pub execution_unique: [u8; 32],
    /// The parties of this run, sorted by party id: all parties for a keygen, the signers for a
    /// signature.
    pub members: Vec<Member>,
    /// What to do.
    pub body: TaskBody,
}

/// Keygen, sign, refresh or repair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskBody {
    /// Generate a key among `members`.
    Keygen(KeygenTask),
    /// Sign with an existing key.
    Sign(SignTask),
    /// Refresh an existing key's shares among all its parties (`members`).
    Refresh(RefreshTask),
    /// Rebuild one party's lost share of a key on the node `members` names for it, then
    /// refresh every share.
    Repair(RepairTask),
}

/// A repair of a DKLs23 key: every member other than `party` holds its share (of
/// `generation`) and helps; the member named for `party` (a new node, or the same node that
/// lost its share) rebuilds it against `root_public_key`, `chain_code` and `threshold`; then
/// all refresh. Every member stores the result *beside* its current share with the committee
/// `members` names, and answers [`Outcome::Refreshed`]; the switch is the refresh's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairTask {
    /// The key.
    pub key_id: String,
    /// The key's root public key as the coordinator recorded it (33 bytes).
    #[serde(with = "serde_bytes")]
    pub root_public_key: Vec<u8>,
    /// The key's chain code as the coordinator recorded it; the rebuilt share must carry it.
    #[serde(with = "serde_bytes")]
    pub chain_code: [u8; 32],
    /// Signers needed (t).
    pub threshold: u16,
    /// The share generation the helpers hold (`None`: the key generation's).
    pub generation: Option<String>,
    /// The party whose share is rebuilt.
    pub party: String,
}

/// A refresh of a DKLs23 key's shares: every party takes part and stores a new share *beside*
/// its current one, under the new share generation it answers ([`Outcome::Refreshed`]); the
/// coordinator switches the key to that generation only when every party answered the same
/// one, and later sign tasks name it ([`SignTask::generation`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTask {
    /// The key.
    pub key_id: String,
    /// The key's root public key as the coordinator recorded it; the node refuses the task if
    /// its share's key differs.
    #[serde(with = "serde_bytes")]
    pub root_public_key: Vec<u8>,
    /// The share generation the coordinator considers current (`None`: the key generation's);
    /// the refresh starts from it.
    pub generation: Option<String>,
}

/// A distributed key generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeygenTask {
    /// The coordinator's key id; the node stores its share under it.
    pub key_id: String,
    /// Curve.
    pub curve: Curve,
    /// Signers needed (t); n is the number of members.
    pub threshold: u16,
    /// The threshold-ECDSA protocol of a secp256k1 key (the organization's); ignored for
    /// ed25519. Tasks from before the field existed are CGGMP24.
    #[serde(default = "EcdsaProtocol::legacy")]
    pub ecdsa_protocol: EcdsaProtocol,
}

/// A threshold signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignTask {
    /// The key (as in [`KeygenTask::key_id`]).
    pub key_id: String,
    /// Scheme.
    pub algorithm: Algorithm,
    /// The key's threshold-ECDSA protocol as the coordinator recorded it at key generation;
    /// the node refuses the task if its share is of another protocol. Only ECDSA signing
    /// depends on it. Tasks from before the field existed are CGGMP24.
    #[serde(default = "EcdsaProtocol::legacy")]
    pub ecdsa_protocol: EcdsaProtocol,
    /// The key's root public key as the coordinator recorded it (33-byte compressed secp256k1
    /// or 32-byte ed25519); the node refuses the task if its share's key differs.
    #[serde(with = "serde_bytes")]
    pub root_public_key: Vec<u8>,
    /// Non-hardened BIP32 path, `m/…`.
    pub path: String,
    /// Callback `sign_type`: 1 transaction, 2 EIP-191/712 message, 3 raw data.
    pub sign_type: u8,
    /// What to sign; the node derives the signed bytes from it.
    pub payload: Payload,
    /// Taproot script root (only with [`Algorithm::Taproot`]).
    #[serde(with = "serde_bytes")]
    pub tap_script_root: Option<Vec<u8>>,
    /// Transaction details as raw JSON text for the callback's `tx_info` (sign_type 1, and
    /// `{"tapScriptRoot": …}` for Taproot), or `None`.
    pub tx_info: Option<String>,
    /// The key's current share generation after a refresh ([`RefreshTask`]); `None` (and
    /// absent on the wire, as before refreshes existed) for the key generation's shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
}

/// The message of a signing task. The callback sees `message` = hex of [`Payload::message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// API `sign_message` (sign_type 2): the wallet method (`personal_sign`,
    /// `eth_signTypedData_v3`, `eth_signTypedData_v4`) and the message string exactly as the API
    /// caller sent it. The node computes the digest with `mpc_chains::sign_message_payload`.
    /// ECDSA only; the result's v is 27/28.
    SignMessage {
        /// Wallet method name.
        kind: String,
        /// The message string.
        message: String,
    },
    /// A 32-byte digest signed as is (raw data for ECDSA/BIP340/Taproot, a transaction's
    /// sighash for sign_type 1). ECDSA results carry recovery id 0/1 as v.
    Digest {
        /// The 32 bytes.
        #[serde(with = "serde_bytes")]
        digest: [u8; 32],
    },
    /// Bytes an EdDSA signature covers directly (raw data for ed25519).
    Message {
        /// The message.
        #[serde(with = "serde_bytes")]
        message: Vec<u8>,
    },
}

impl Payload {
    /// The bytes the callback sees (hex-encoded) as `message`: the UTF-8 message string, the
    /// digest, or the raw message.
    pub fn message(&self) -> &[u8] {
        match self {
            Payload::SignMessage { message, .. } => message.as_bytes(),
            Payload::Digest { digest } => digest,
            Payload::Message { message } => message,
        }
    }
}

/// A node's answer to a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    /// [`TASK_VERSION`].
    pub version: u8,
    /// The task answered.
    pub task_id: String,
    /// The answering party (the proxy also knows it from the connection and checks it).
    pub party: String,
    /// What happened.
    pub outcome: Outcome,
}

/// The end of a task at one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The share is stored (sealed). Every party reports the same key.
    KeygenDone {
        /// Root public key (33-byte compressed secp256k1 or 32-byte ed25519).
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
        /// Chain code.
        #[serde(with = "serde_bytes")]
        chain_code: [u8; 32],
    },
    /// The signature, in the API's form: ECDSA 65 bytes r‖s‖v (v 27/28 for sign_type 2,
    /// recovery id 0/1 otherwise), Schnorr and EdDSA 64 bytes. A node with
    /// `[encrypt-signature]` enabled sends only `encrypted` for sign_type 2 and 3.
    Signed {
        /// Plain signature bytes, unless encrypted.
        #[serde(with = "serde_bytes")]
        signature: Option<Vec<u8>>,
        /// Hex ECIES ciphertext of the signature bytes (SPEC.md §6).
        encrypted: Option<String>,
    },
    /// The refreshed share is stored beside the current one (a [`RefreshTask`] or a
    /// [`RepairTask`]).
    Refreshed {
        /// Root public key (unchanged by a refresh).
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
        /// The new share generation (equal at every party of the same refresh).
        generation: String,
    },
    /// A callback server refused.
    Rejected {
        /// The server's reason (unauthenticated: outside the signed response).
        reason: String,
    },
    /// The node did not finish.
    Failed {
        /// Whose fault.
        fault: Fault,
        /// Human-readable cause.
        detail: String,
        /// Parties blamed, if any.
        culprits: Vec<String>,
    },
}

/// Why a task failed at a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Another party sent invalid protocol data (culprits named).
    PeerMisbehaved,
    /// Parties did not send their messages before the deadline (culprits: those waited for).
    Timeout,
    /// The task itself is invalid or not for this node (unknown key, key mismatch, bad path,
    /// digest mismatch, bad certificate...).
    BadTask,
    /// The callback could not be reached or answered invalidly (retries exhausted).
    Callback,
    /// The run was aborted by the coordinator.
    Aborted,
    /// This node failed (storage, internal error).
    Local,
}

/// Why bytes are not a task or result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Larger than [`MAX_TASK_BYTES`].
    #[error("task of {0} bytes exceeds the limit of {MAX_TASK_BYTES}")]
    TooLarge(usize),
    /// A version this build does not speak.
    #[error("task version {0} is not supported (this build speaks {TASK_VERSION})")]
    Version(u8),
    /// Not well-formed CBOR of the expected shape.
    #[error("malformed task: {0}")]
    Malformed(String),
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, TaskError> {
    let bytes = cbor::to_vec(v).map_err(TaskError::Malformed)?;
    if bytes.len() > MAX_TASK_BYTES {
        return Err(TaskError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, TaskError> {
    if bytes.len() > MAX_TASK_BYTES {
        return Err(TaskError::TooLarge(bytes.len()));
    }
    cbor::from_slice(bytes).map_err(TaskError::Malformed)
}

impl Task {
    /// CBOR bytes for [`crate::frame::Frame::Task`].
    pub fn encode(&self) -> Result<Vec<u8>, TaskError> {
        encode(self)
    }

    /// Decodes and checks the version.
    pub fn decode(bytes: &[u8]) -> Result<Self, TaskError> {
        let t: Task = decode(bytes)?;
        if t.version != TASK_VERSION {
            return Err(TaskError::Version(t.version));
        }
        Ok(t)
    }
}

impl TaskResult {
    /// CBOR bytes for [`crate::frame::Frame::TaskResult`].
    pub fn encode(&self) -> Result<Vec<u8>, TaskError> {
        encode(self)
    }

    /// Decodes and checks the version.
    pub fn decode(bytes: &[u8]) -> Result<Self, TaskError> {
        let t: TaskResult = decode(bytes)?;
        if t.version != TASK_VERSION {
            return Err(TaskError::Version(t.version));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task {
            version: TASK_VERSION,
            task_id: "t1".into(),
            sino_id: "s1".into(),
            request_id: "r1".into(),
            deadline_unix_ms: 1_700_000_000_000,
            execution_unique: [7; 32],
            members: vec![Member {
                party: "a".into(),
                node_id: "sinoX".into(),
                transport_cert: TransportCert {
                    node_id: "sinoX".into(),
                    x25519_public: [1; 32],
                    signature: "30".into(),
                },
            }],
            body: TaskBody::Sign(SignTask {
                ecdsa_protocol: EcdsaProtocol::Cggmp24,
                key_id: "k".into(),
                algorithm: Algorithm::Taproot,
                root_public_key: vec![2; 33],
                path: "m/1/1/0/0".into(),
                sign_type: 3,
                payload: Payload::Digest { digest: [9; 32] },
                tap_script_root: Some(vec![3; 32]),
                tx_info: Some(r#"{"tapScriptRoot":"03"}"#.into()),
                generation: None,
            }),
        }
    }

    #[test]
    fn round_trips() {
        let t = task();
        assert_eq!(Task::decode(&t.encode().unwrap()).unwrap(), t);
        let r = TaskResult {
            version: TASK_VERSION,
            task_id: "t1".into(),
            party: "b".into(),
            outcome: Outcome::Failed {
                fault: Fault::PeerMisbehaved,
                detail: "invalid proof".into(),
                culprits: vec!["c".into()],
            },
        };
        assert_eq!(TaskResult::decode(&r.encode().unwrap()).unwrap(), r);
    }

    #[test]
    fn refuses_other_versions_garbage_and_oversize() {
        let mut t = task();
        t.version = 2;
        assert_eq!(
            Task::decode(&t.encode().unwrap()),
            Err(TaskError::Version(2))
        );
        assert!(matches!(
            Task::decode(b"\xff\x00"),
            Err(TaskError::Malformed(_))
        ));
        assert!(matches!(
            Task::decode(&vec![0; MAX_TASK_BYTES + 1]),
            Err(TaskError::TooLarge(_))
        ));
        // A result is not a task.
        let r = TaskResult {
            version: TASK_VERSION,
            task_id: "t".into(),
            party: "a".into(),
            outcome: Outcome::Rejected {
                reason: "no".into(),
            },
        };
        assert!(Task::decode(&r.encode().unwrap()).is_err());
    }

    /// Tasks encoded before `ecdsa_protocol` existed (every secp256k1 key was CGGMP24) still
    /// decode, as CGGMP24; a DKLs23 task round-trips.
    #[test]
    fn tasks_without_a_protocol_are_cggmp24() {
        #[derive(Serialize)]
        struct OldKeygen {
            key_id: String,
            curve: Curve,
            threshold: u16,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "snake_case")]
        enum OldBody {
            Keygen(OldKeygen),
        }
        #[derive(Serialize)]
        struct OldTask {
            version: u8,
            task_id: String,
            sino_id: String,
            request_id: String,
            deadline_unix_ms: u64,
            #[serde(with = "serde_bytes")]
            execution_unique: [u8; 32],
            members: Vec<Member>,
            body: OldBody,
        }
        let old = OldTask {
            version: TASK_VERSION,
            task_id: "t".into(),
            sino_id: "k".into(),
            request_id: String::new(),
            deadline_unix_ms: 1,
            execution_unique: [1; 32],
            members: task().members,
            body: OldBody::Keygen(OldKeygen {
                key_id: "k".into(),
                curve: Curve::Secp256k1,
                threshold: 2,
            }),
        };
        let mut bytes = Vec::new();
        ciborium::into_writer(&old, &mut bytes).unwrap();
        let t = Task::decode(&bytes).unwrap();
        let TaskBody::Keygen(k) = &t.body else {
            panic!("not a keygen: {t:?}")
        };
        assert_eq!(k.ecdsa_protocol, EcdsaProtocol::Cggmp24);
        let mut t = task();
        if let TaskBody::Sign(s) = &mut t.body {
            s.ecdsa_protocol = EcdsaProtocol::Dkls23;
        }
        let bytes = t.encode().unwrap();
        assert_eq!(Task::decode(&bytes).unwrap(), t);
        // The name on the wire is the stable one.
        assert!(bytes.windows(6).any(|w| w == b"dkls23"));
    }

    /// A sign task without a generation encodes exactly as before refreshes existed (no
    /// `generation` key), so the signed-task digests pinned elsewhere hold; with one, and a
    /// refresh task and its outcome, round-trip.
    #[test]
    fn generations_and_refresh_round_trip() {
        let plain = task().encode().unwrap();
        assert!(!plain.windows(10).any(|w| w == b"generation"));
        let mut t = task();
        if let TaskBody::Sign(s) = &mut t.body {
            s.generation = Some("ab12".into());
        }
        assert_eq!(Task::decode(&t.encode().unwrap()).unwrap(), t);
        let mut r = task();
        r.body = TaskBody::Refresh(RefreshTask {
            key_id: "k".into(),
            root_public_key: vec![2; 33],
            generation: None,
        });
        assert_eq!(Task::decode(&r.encode().unwrap()).unwrap(), r);
        let mut repair = task();
        repair.body = TaskBody::Repair(RepairTask {
            key_id: "k".into(),
            root_public_key: vec![2; 33],
            chain_code: [9; 32],
            threshold: 2,
            generation: Some("ab12".into()),
            party: "c".into(),
        });
        assert_eq!(Task::decode(&repair.encode().unwrap()).unwrap(), repair);
        let done = TaskResult {
            version: TASK_VERSION,
            task_id: "t".into(),
            party: "a".into(),
            outcome: Outcome::Refreshed {
                public_key: vec![2; 33],
                generation: "cd34".into(),
            },
        };
        assert_eq!(TaskResult::decode(&done.encode().unwrap()).unwrap(), done);
    }

    #[test]
    fn payload_message_is_what_the_callback_sees() {
        assert_eq!(
            Payload::SignMessage {
                kind: "personal_sign".into(),
                message: "hi".into()
            }
            .message(),
            b"hi"
        );
        assert_eq!(Payload::Digest { digest: [1; 32] }.message(), &[1; 32]);
        assert_eq!(Algorithm::Taproot.curve(), Curve::Secp256k1);
        assert_eq!(Algorithm::Eddsa.curve(), Curve::Ed25519);
    }
}
