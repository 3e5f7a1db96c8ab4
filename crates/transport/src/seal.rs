//! Protocol envelopes across the untrusted proxy (docs/transport.md, "Frames").
//!
//! * **Broadcast**: payload in clear, `signature` = ECDSA P-256 by the sender's identity key
//!   (SHA-256, hex DER) over `"mpc-cosigner/frame/v1" ‖ CBOR(header) ‖ SHA-256(payload)`.
//! * **Point-to-point**: the same signature, then CBOR `{ payload, signature }` encrypted to the
//!   receiver's transport key with HPKE (RFC 9180) base mode,
//!   DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305, `info =
//!   "mpc-cosigner/p2p/v1"`, `aad = CBOR(header)`.
//!
//! The header travels in clear so the proxy can route; it is authenticated by the signature
//! (and, for p2p, by the AEAD). Replays within a run are refused by the session layer (one
//! message per round and sender); replays into another run fail here, because the execution id
//! is part of the signed header.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use mpc_wire::p256;
use mpc_wire::signature::{self, EcdsaSigner, SignatureError};
use p256::ecdsa::VerifyingKey;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cbor;
use crate::keys::{PeerTransportKey, TransportSecret};

/// Domain tag of envelope signatures.
pub const FRAME_DOMAIN: &[u8] = b"mpc-cosigner/frame/v1";
/// HPKE `info` of point-to-point envelopes.
pub const P2P_INFO: &[u8] = b"mpc-cosigner/p2p/v1";
/// Version of the envelope header (mirrors `mpc_tss::ENVELOPE_VERSION`).
pub const HEADER_VERSION: u8 = 1;

type Kem = X25519HkdfSha256;

/// Routing and binding data of one envelope. Mirrors the non-payload fields of
/// `mpc_tss::Envelope` (protocol by its stable name, parties by their one-letter ids) plus the
/// sender's sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnvelopeHeader {
    /// [`HEADER_VERSION`].
    pub version: u8,
    /// The run's 32-byte execution id.
    #[serde(with = "serde_bytes")]
    pub execution_id: [u8; 32],
    /// Stable protocol name (`mpc_tss::ProtocolKind::name`).
    pub protocol: String,
    /// Protocol round.
    pub round: u16,
    /// Sending party.
    pub sender: String,
    /// Receiving party, `None` for a broadcast.
    pub receiver: Option<String>,
    /// The sender's sequence number of this envelope in the run.
    pub seq: u64,
}

/// An envelope in clear: header and protocol payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Routing and binding data.
    pub header: EnvelopeHeader,
    /// The protocol message.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("header", &self.header)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// The body of a `Protocol` frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedEnvelope {
    /// The header, in clear for routing; authenticated by the signature (and the AEAD).
    pub header: EnvelopeHeader,
    /// Payload and signature, clear or encrypted.
    pub body: SealedBody,
}

/// Broadcast or point-to-point contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealedBody {
    /// Broadcast: payload in clear with its signature.
    Broadcast {
        /// The protocol message.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
        /// Hex DER signature, see the module docs.
        signature: String,
    },
    /// Point-to-point: HPKE encapsulated key and ciphertext of CBOR `{ payload, signature }`.
    P2p {
        /// HPKE encapsulated key (X25519 public key, 32 bytes).
        #[serde(with = "serde_bytes")]
        encapped_key: [u8; 32],
        /// HPKE ciphertext.
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
    },
}

/// Plaintext of a point-to-point body, as the sender encodes it (borrowed: no extra copy of
/// the secret payload).
#[derive(Serialize)]
struct SignedPayloadRef<'a> {
    #[serde(with = "serde_bytes")]
    payload: &'a [u8],
    signature: &'a str,
}

/// Plaintext of a point-to-point body, as the receiver decodes it; wiped on drop.
#[derive(Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
struct SignedPayload {
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
    signature: String,
}

/// Local misuse when sealing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// A point-to-point envelope needs the receiver's verified transport key.
    #[error("point-to-point envelope to {0:?} needs the receiver's transport key")]
    MissingReceiverKey(String),
    /// A broadcast envelope is signed, not encrypted; no transport key may be given.
    #[error("broadcast envelope given a receiver transport key")]
    UnexpectedReceiverKey,
    /// Encoding or encryption failed.
    #[error("sealing failed: {0}")]
    Internal(String),
}

/// What was wrong with a received envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenFault {
    /// The header is of an unknown version.
    #[error("header version {0} is not supported")]
    Version(u8),
    /// The envelope is addressed to another party.
    #[error("addressed to {got:?}, this party is {me:?}")]
    NotForMe {
        /// This party.
        me: String,
        /// The header's receiver (`None`: broadcast).
        got: Option<String>,
    },
    /// A broadcast body with a receiver, or an encrypted body without one.
    #[error("body kind does not match the header's receiver")]
    KindMismatch,
    /// HPKE decryption failed (wrong key, altered ciphertext or header).
    #[error("point-to-point envelope does not decrypt")]
    Decrypt,
    /// The decrypted contents are not `{ payload, signature }`.
    #[error("decrypted contents are malformed: {0}")]
    Malformed(String),
    /// The sender's signature does not verify over this header and payload.
    #[error("signature: {0}")]
    Signature(SignatureError),
}

/// A received envelope that was refused, naming the sender its header claims. The header is
/// unauthenticated until the signature verifies, so a failure alone does not prove that the
/// named sender misbehaved (the proxy could have altered the frame).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("envelope claiming sender {claimed_sender:?} (round {round}) refused: {fault}")]
pub struct OpenError {
    /// The header's sender.
    pub claimed_sender: String,
    /// The header's round.
    pub round: u16,
    /// What was wrong.
    pub fault: OpenFault,
}

fn header_cbor(header: &EnvelopeHeader) -> Result<Vec<u8>, String> {
    cbor::to_vec(header)
}

fn signed_message(header_cbor: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(FRAME_DOMAIN.len() + header_cbor.len() + 32);
    m.extend_from_slice(FRAME_DOMAIN);
    m.extend_from_slice(header_cbor);
    m.extend_from_slice(&Sha256::digest(payload));
    m
}

/// Signs `envelope` with the sender's identity key and, for a point-to-point envelope, encrypts
/// it to `receiver_key` (which must be given exactly for point-to-point envelopes). The caller
/// passes the key certified by the node bound to `envelope.header.receiver` in this run; the
/// header's `sender` must be this node's own party id.
pub fn seal<R: RngCore + CryptoRng>(
    identity: &EcdsaSigner,
    receiver_key: Option<&PeerTransportKey>,
    envelope: &Envelope,
    rng: &mut R,
) -> Result<SealedEnvelope, SealError> {
    let aad = header_cbor(&envelope.header).map_err(SealError::Internal)?;
    let signature = identity.sign_hex(&signed_message(&aad, &envelope.payload));
    let body = match (&envelope.header.receiver, receiver_key) {
        (None, None) => SealedBody::Broadcast {
            payload: envelope.payload.clone(),
            signature,
        },
        (None, Some(_)) => return Err(SealError::UnexpectedReceiverKey),
        (Some(to), None) => return Err(SealError::MissingReceiverKey(to.clone())),
        (Some(_), Some(key)) => {
            let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(key.public())
                .map_err(|e| SealError::Internal(e.to_string()))?;
            let plaintext = Zeroizing::new(
                cbor::to_vec(&SignedPayloadRef {
                    payload: &envelope.payload,
                    signature: &signature,
                })
                .map_err(SealError::Internal)?,
            );
            let (encapped, ciphertext) = hpke::single_shot_seal::<
                ChaCha20Poly1305,
                HkdfSha256,
                Kem,
                _,
            >(
                &OpModeS::Base, &pk, P2P_INFO, &plaintext, &aad, rng
            )
            .map_err(|e| SealError::Internal(e.to_string()))?;
            let mut encapped_key = [0u8; 32];
            encapped_key.copy_from_slice(&encapped.to_bytes());
            SealedBody::P2p {
                encapped_key,
                ciphertext,
            }
        }
    };
    Ok(SealedEnvelope {
        header: envelope.header.clone(),
        body,
    })
}

/// Opens a received envelope as party `me`: checks the header version and receiver, decrypts
/// a point-to-point body with `my_secret`, and verifies the signature under `sender_key`, the
/// identity key of the party named by `sealed.header.sender` (looked up by the caller from the
/// run's committee). The returned envelope's sender is that verified header field.
pub fn open(
    sealed: &SealedEnvelope,
    my_secret: &TransportSecret,
    sender_key: &VerifyingKey,
    me: &str,
) -> Result<Envelope, OpenError> {
    let header = &sealed.header;
    let fail = |fault| OpenError {
        claimed_sender: header.sender.clone(),
        round: header.round,
        fault,
    };
    if header.version != HEADER_VERSION {
        return Err(fail(OpenFault::Version(header.version)));
    }
    if let Some(to) = &header.receiver
        && to != me
    {
        return Err(fail(OpenFault::NotForMe {
            me: me.to_owned(),
            got: header.receiver.clone(),
        }));
    }
    // Re-encoding gives the exact bytes the sender signed: the header is a fixed-shape struct
    // and ciborium's encoding of it is deterministic.
    let aad = header_cbor(header).map_err(|e| fail(OpenFault::Malformed(e)))?;
    let (payload, sig) = match (&header.receiver, &sealed.body) {
        (None, SealedBody::Broadcast { payload, signature }) => {
            (payload.clone(), signature.clone())
        }
        (
            Some(_),
            SealedBody::P2p {
                encapped_key,
                ciphertext,
            },
        ) => {
            let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(my_secret.to_bytes().as_ref())
                .map_err(|_| fail(OpenFault::Decrypt))?;
            let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapped_key)
                .map_err(|_| fail(OpenFault::Decrypt))?;
            let plaintext = Zeroizing::new(
                hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
                    &OpModeR::Base,
                    &sk,
                    &encapped,
                    P2P_INFO,
                    ciphertext,
                    &aad,
                )
                .map_err(|_| fail(OpenFault::Decrypt))?,
            );
            let mut inner: SignedPayload =
                cbor::from_slice(&plaintext).map_err(|e| fail(OpenFault::Malformed(e)))?;
            (
                std::mem::take(&mut inner.payload),
                std::mem::take(&mut inner.signature),
            )
        }
        _ => return Err(fail(OpenFault::KindMismatch)),
    };
    signature::verify_hex(sender_key, &signed_message(&aad, &payload), &sig)
        .map_err(|e| fail(OpenFault::Signature(e)))?;
    Ok(Envelope {
        header: header.clone(),
        payload,
    })
}
