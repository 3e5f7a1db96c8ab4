//! Threshold ECDSA on secp256k1 with CGGMP24: key generation (with chain code), auxiliary info
//! and its regeneration, full signing, presignatures with one-round online signing.
//!
//! What the node stores per key: an [`EcdsaCoreShare`] (the secret share, public key shares,
//! chain code) and, per committee, an [`EcdsaAuxInfo`] (this party's Paillier secret key and
//! everyone's public parameters). Signing combines them into an [`EcdsaKeyShare`].
//!
//! RUSTSEC-2025-0127 is closed by construction: a presignature is generated *for* a derivation
//! path (never re-targeted afterwards), and online signing takes only a [`KnownMessage`], whose
//! digest this crate computes from the message bytes; a bare digest can only be signed with the
//! full interactive protocol, where that is safe.

use std::fmt;

use cggmp24::generic_ec::coords::AlwaysHasAffineX;
use cggmp24::generic_ec::{NonZero, Point, Scalar, curves::Secp256k1};
use cggmp24::{DataToSign, PrehashedDataToSign};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::SecurityLevel;
use crate::codec;
use crate::envelope::{ExecutionId, ProtocolKind};
use crate::error::{InputError, Misbehaviour, SessionError};
use crate::party::{Committee, PartyId};
use crate::path::DerivationPath;
use crate::primes::SecretPrimes;
use crate::session::{Driver, DriverStep, RawOut, RoundKinds, Session, SmDriver, library_result};
use crate::share::CommitteeShare;

type AuxInfo = cggmp24::key_share::AuxInfo<SecurityLevel>;
type KeyShare = cggmp24::KeyShare<Secp256k1, SecurityLevel>;

/// One party's secret share of a secp256k1 key, with the key's public data and chain code.
/// Serves ECDSA, BIP340 and Taproot signing.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EcdsaCoreShare(CommitteeShare<Secp256k1>);

impl EcdsaCoreShare {
    const FORMAT: &'static str = "mpc-tss/secp256k1-core-share";

    /// Versioned bytes for the sealed store.
    pub fn to_stored_bytes(&self) -> Vec<u8> {
        self.0.to_stored(Self::FORMAT)
    }

    /// Reads [`to_stored_bytes`](Self::to_stored_bytes) output, validating the share.
    pub fn from_stored_bytes(b: &[u8]) -> Result<Self, InputError> {
        CommitteeShare::from_stored(Self::FORMAT, b).map(EcdsaCoreShare)
    }

    /// The parties sharing the key.
    pub fn committee(&self) -> &Committee {
        &self.0.committee
    }

    /// This party.
    pub fn party(&self) -> PartyId {
        self.0.party()
    }

    /// Signers needed.
    pub fn threshold(&self) -> u16 {
        self.0.threshold()
    }

    /// The root public key, 33-byte compressed SEC1.
    pub fn public_key(&self) -> [u8; 33] {
        compressed(&self.0.share.shared_public_key)
    }

    /// The chain code from key generation.
    pub fn chain_code(&self) -> Option<[u8; 32]> {
        self.0.chain_code()
    }

    /// The root extended public key in BIP32 form (`xpub…`, mainnet version bytes), from which
    /// any wallet derives the same non-hardened children. `None` for a key without chain code.
    pub fn xpub(&self) -> Option<String> {
        use bip32::{ChildNumber, ExtendedKeyAttrs, ExtendedPublicKey, Prefix};
        let chain_code = self.chain_code()?;
        let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&self.public_key()).ok()?;
        let attrs = ExtendedKeyAttrs {
            depth: 0,
            parent_fingerprint: [0; 4],
            child_number: ChildNumber(0),
            chain_code,
        };
        Some(ExtendedPublicKey::new(vk, attrs).to_string(Prefix::XPUB))
    }

    /// The child public key at `path` (BIP32 CKDpub), 33-byte compressed.
    pub fn derive_public_key(&self, path: &DerivationPath) -> Result<[u8; 33], InputError> {
        Ok(compressed(&self.child_point(path)?))
    }

    pub(crate) fn child_point(
        &self,
        path: &DerivationPath,
    ) -> Result<Point<Secp256k1>, InputError> {
        self.0.child_point::<hd_wallet::Slip10>(path)
    }

    pub(crate) fn committee_share(&self) -> &CommitteeShare<Secp256k1> {
        &self.0
    }

    /// Wraps a validated library share (e.g. converted from a DKLs23 share).
    pub(crate) fn from_committee_share(share: CommitteeShare<Secp256k1>) -> Self {
        EcdsaCoreShare(share)
    }
}

impl fmt::Debug for EcdsaCoreShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdsaCoreShare")
            .field("party", &self.party())
            .field("threshold", &self.threshold())
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

pub(crate) fn compressed(p: &Point<Secp256k1>) -> [u8; 33] {
    let mut out = [0u8; 33];
    out.copy_from_slice(&p.to_bytes(true));
    out
}

/// This party's auxiliary info for a committee: its Paillier secret key and every party's
/// public Paillier and ring-Pedersen parameters. Reusable across keys of the same committee.
#[derive(Clone, Serialize, Deserialize)]
pub struct EcdsaAuxInfo {
    committee: Committee,
    party: PartyId,
    aux: AuxInfo,
}

impl EcdsaAuxInfo {
    const FORMAT: &'static str = "mpc-tss/cggmp24-aux-info";
    const VERSION: u32 = 1;

    /// Versioned bytes for the sealed store.
    pub fn to_stored_bytes(&self) -> Vec<u8> {
        codec::to_stored(Self::FORMAT, Self::VERSION, self)
    }

    /// Reads [`to_stored_bytes`](Self::to_stored_bytes) output.
    pub fn from_stored_bytes(b: &[u8]) -> Result<Self, InputError> {
        codec::from_stored(Self::FORMAT, Self::VERSION, b)
    }

    /// Identifies this aux info: SHA-256 over every party's public Paillier modulus. Equal at
    /// every party of a run; changes with every regeneration.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"mpc-cosigner/aux-fingerprint/v1");
        for n in &self.aux.N {
            let b = n.to_bytes_msf();
            h.update((b.len() as u64).to_be_bytes());
            h.update(&b);
        }
        hex::encode(&h.finalize()[..16])
    }

    /// The committee.
    pub fn committee(&self) -> &Committee {
        &self.committee
    }
}

impl fmt::Debug for EcdsaAuxInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdsaAuxInfo")
            .field("party", &self.party)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// A core share completed with aux info: what ECDSA signing needs.
#[derive(Clone)]
pub struct EcdsaKeyShare {
    core: EcdsaCoreShare,
    aux_fingerprint: String,
    share: KeyShare,
}

impl EcdsaKeyShare {
    /// Combines the two, checking they belong to the same party and committee.
    pub fn new(core: EcdsaCoreShare, aux: EcdsaAuxInfo) -> Result<Self, InputError> {
        if core.committee() != &aux.committee || core.party() != aux.party {
            return Err(InputError::KeyShare(
                "aux info belongs to another party or committee".into(),
            ));
        }
        let aux_fingerprint = aux.fingerprint();
        let share = cggmp24::KeyShare::from_parts((core.0.share.clone(), aux.aux))
            .map_err(|e| InputError::KeyShare(format!("{e}")))?;
        Ok(EcdsaKeyShare {
            core,
            aux_fingerprint,
            share,
        })
    }

    /// The core share.
    pub fn core(&self) -> &EcdsaCoreShare {
        &self.core
    }

    /// Fingerprint of the aux info in use.
    pub fn aux_fingerprint(&self) -> &str {
        &self.aux_fingerprint
    }
}

impl fmt::Debug for EcdsaKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdsaKeyShare")
            .field("core", &self.core)
            .field("aux", &self.aux_fingerprint)
            .finish()
    }
}

/// A finished ECDSA signature: `r`, low `s`, and the recovery id of `R`.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcdsaSignature {
    /// `r`, 32 bytes big-endian.
    #[serde(with = "hex::serde")]
    pub r: [u8; 32],
    /// `s`, 32 bytes big-endian, normalized to the lower half.
    #[serde(with = "hex::serde")]
    pub s: [u8; 32],
    /// Recovery id (0 or 1): parity of `R.y` after normalization.
    pub recovery_id: u8,
}

impl EcdsaSignature {
    /// `r ‖ s ‖ v` with `v = recovery_id + v_offset` (27 for Ethereum `personal_sign`, 0 for
    /// raw data).
    pub fn to_rsv(&self, v_offset: u8) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[..32].copy_from_slice(&self.r);
        out[32..64].copy_from_slice(&self.s);
        out[64] = self.recovery_id + v_offset;
        out
    }
}

impl fmt::Debug for EcdsaSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EcdsaSignature({})", hex::encode(self.to_rsv(0)))
    }
}

/// Finds the recovery id by recovering with each parity (k256, an independent implementation).
fn with_recovery_id(
    sig: cggmp24::Signature<Secp256k1>,
    public_key: &Point<Secp256k1>,
    digest: &[u8; 32],
) -> Result<EcdsaSignature, SessionError> {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig.r.to_be_bytes());
    s.copy_from_slice(&sig.s.to_be_bytes());
    finish_signature(r, s, &compressed(public_key), digest)
}

/// Checks `(r, s)` under `public_key` (33-byte compressed) with k256 and finds the recovery id
/// by recovering the key with each parity. Every ECDSA protocol's result passes through here,
/// so a signature that does not verify under the expected key is never returned.
pub(crate) fn finish_signature(
    r: [u8; 32],
    s: [u8; 32],
    public_key: &[u8; 33],
    digest: &[u8; 32],
) -> Result<EcdsaSignature, SessionError> {
    let k_sig = k256::ecdsa::Signature::from_scalars(r, s)
        .map_err(|e| SessionError::Local(format!("signature encoding: {e}")))?;
    if k_sig.normalize_s().is_some() {
        return Err(SessionError::Local("signature s is not low".into()));
    }
    let expected: &[u8] = public_key;
    for parity in [false, true] {
        let id = k256::ecdsa::RecoveryId::new(parity, false);
        if let Ok(vk) = k256::ecdsa::VerifyingKey::recover_from_prehash(digest, &k_sig, id)
            && vk.to_encoded_point(true).as_bytes() == expected
        {
            return Ok(EcdsaSignature {
                r,
                s,
                recovery_id: u8::from(parity),
            });
        }
    }
    Err(SessionError::Aborted {
        culprits: vec![],
        detail: "the combined signature does not verify under the key".into(),
    })
}

/// Hash functions whose preimage this crate computes itself (for presignature signing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageHash {
    /// SHA-256.
    Sha256,
    /// Keccak-256 (Ethereum).
    Keccak256,
}

/// A message whose bytes are known, with the hash to sign it under. The only input
/// presignature signing accepts (RUSTSEC-2025-0127).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownMessage {
    /// The message bytes (for Ethereum `personal_sign`, including the `\x19Ethereum…` prefix).
    #[serde(with = "hex::serde")]
    pub bytes: Vec<u8>,
    /// How the digest is computed.
    pub hash: MessageHash,
}

impl KnownMessage {
    /// The 32-byte digest that is signed.
    pub fn digest(&self) -> [u8; 32] {
        match self.hash {
            MessageHash::Sha256 => Sha256::digest(&self.bytes).into(),
            MessageHash::Keccak256 => sha3::Keccak256::digest(&self.bytes).into(),
        }
    }

    fn data_to_sign(&self) -> DataToSign<Secp256k1> {
        match self.hash {
            MessageHash::Sha256 => DataToSign::digest::<Sha256>(&self.bytes),
            MessageHash::Keccak256 => DataToSign::digest::<sha3::Keccak256>(&self.bytes),
        }
    }
}

/// What full signing signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignInput {
    /// A message hashed here.
    Message(KnownMessage),
    /// A 32-byte digest computed elsewhere (e.g. a Bitcoin sighash). Allowed in full signing
    /// only, where it is safe.
    Digest([u8; 32]),
}

impl SignInput {
    /// The 32 bytes signed.
    pub fn digest(&self) -> [u8; 32] {
        match self {
            SignInput::Message(m) => m.digest(),
            SignInput::Digest(d) => *d,
        }
    }
}

fn check_threshold(t: u16, n: u16) -> Result<(), InputError> {
    if t < 2 || t > n {
        return Err(InputError::BadThreshold { t, n });
    }
    Ok(())
}

pub(crate) fn signers_and_me(
    committee: &Committee,
    threshold: u16,
    me: PartyId,
    signers: &[PartyId],
) -> Result<(Vec<PartyId>, Vec<u16>, u16), InputError> {
    let (sorted, idx) = committee.indices_of(signers)?;
    if sorted.len() != usize::from(threshold) {
        return Err(InputError::WrongSignerCount {
            expected: threshold,
            got: sorted.len(),
        });
    }
    let i = sorted
        .iter()
        .position(|p| *p == me)
        .ok_or(InputError::NotASigner(me))?;
    Ok((sorted, idx, i as u16))
}

const KEYGEN_ROUNDS: RoundKinds = RoundKinds {
    broadcast: &[0, 1, 3, 4],
    p2p: &[2],
};
const AUX_ROUNDS: RoundKinds = RoundKinds {
    broadcast: &[0, 1, 3],
    p2p: &[2],
};
const SIGN_ROUNDS: RoundKinds = RoundKinds {
    broadcast: &[0, 3, 4, 5],
    p2p: &[1, 2],
};

/// Distributed key generation for a secp256k1 key with a chain code (HD enabled).
pub fn keygen(
    eid: ExecutionId,
    me: PartyId,
    committee: &Committee,
    threshold: u16,
) -> Result<Session<EcdsaCoreShare>, InputError> {
    check_threshold(threshold, committee.n())?;
    let i = committee.index_of(me)?;
    let n = committee.n();
    let committee_out = committee.clone();
    let sm = round_based::state_machine::wrap_protocol(move |party| async move {
        let mut rng = crate::run_rng();
        let eid_bytes = *eid.as_bytes();
        cggmp24::keygen::<Secp256k1>(cggmp24::ExecutionId::new(&eid_bytes), i, n)
            .set_threshold(threshold)
            .hd_wallet(true)
            .start(&mut rng, party)
            .await
    });
    let driver = SmDriver::new(
        sm,
        committee.parties().to_vec(),
        KEYGEN_ROUNDS,
        move |out, ps: &[PartyId]| {
            let share = library_result(out, ps)?;
            Ok(EcdsaCoreShare(CommitteeShare {
                committee: committee_out,
                share,
            }))
        },
    );
    Ok(Session::new(
        ProtocolKind::EcdsaKeygen,
        eid,
        me,
        committee.parties().to_vec(),
        Box::new(driver),
    ))
}

/// Auxiliary-info generation (new Paillier keys with their proofs) for a committee. Running it
/// again for an existing key is aux-info regeneration: presignatures made before become
/// unusable (their fingerprint no longer matches).
pub fn aux_info(
    eid: ExecutionId,
    me: PartyId,
    committee: &Committee,
    primes: SecretPrimes,
) -> Result<Session<EcdsaAuxInfo>, InputError> {
    let i = committee.index_of(me)?;
    let n = committee.n();
    let committee_out = committee.clone();
    let primes = primes.into_inner();
    let sm = round_based::state_machine::wrap_protocol(move |party| async move {
        let mut rng = crate::run_rng();
        let eid_bytes = *eid.as_bytes();
        cggmp24::aux_info_gen(cggmp24::ExecutionId::new(&eid_bytes), i, n, primes)
            .start(&mut rng, party)
            .await
    });
    let driver = SmDriver::new(
        sm,
        committee.parties().to_vec(),
        AUX_ROUNDS,
        move |out, ps: &[PartyId]| {
            let aux = library_result(out, ps)?;
            Ok(EcdsaAuxInfo {
                committee: committee_out,
                party: me,
                aux,
            })
        },
    );
    Ok(Session::new(
        ProtocolKind::EcdsaAuxInfo,
        eid,
        me,
        committee.parties().to_vec(),
        Box::new(driver),
    ))
}

/// Full interactive signing (3 pre-processing rounds + 1) under the key derived at `path`.
pub fn sign(
    eid: ExecutionId,
    share: &EcdsaKeyShare,
    signers: &[PartyId],
    path: &DerivationPath,
    input: SignInput,
) -> Result<Session<EcdsaSignature>, InputError> {
    let core = &share.core;
    let me = core.party();
    let (sorted, idx, i) = signers_and_me(core.committee(), core.threshold(), me, signers)?;
    let child = core.child_point(path)?;
    let digest = input.digest();
    let key_share = share.share.clone();
    let path = path.clone();
    let sm = round_based::state_machine::wrap_protocol(move |party| async move {
        let mut rng = crate::run_rng();
        let eid_bytes = *eid.as_bytes();
        let builder = cggmp24::signing(cggmp24::ExecutionId::new(&eid_bytes), i, &idx, &key_share);
        let builder = if path.is_root() {
            builder
        } else {
            builder
                .set_derivation_path(path.indices().iter().copied())
                .map_err(|e| SessionError::Input(InputError::BadPath(format!("{e:?}"))))?
        };
        let result = match &input {
            SignInput::Message(m) => builder.sign(&mut rng, party, &m.data_to_sign()).await,
            SignInput::Digest(d) => {
                let data = PrehashedDataToSign::from_scalar(Scalar::from_be_bytes_mod_order(d));
                builder.sign(&mut rng, party, &data).await
            }
        };
        Ok::<_, SessionError>(result)
    });
    let driver = SmDriver::new(
        sm,
        sorted.clone(),
        SIGN_ROUNDS,
        move |out: Result<_, SessionError>, ps: &[PartyId]| {
            let sig = library_result(out?, ps)?;
            with_recovery_id(sig, &child, &digest)
        },
    );
    Ok(Session::new(
        ProtocolKind::EcdsaSign,
        eid,
        me,
        sorted,
        Box::new(driver),
    ))
}

/// Public data every signer needs to check partial signatures from a presignature.
#[derive(Clone, Serialize, Deserialize)]
struct PresignPublic {
    gamma: NonZero<Point<Secp256k1>>,
    /// `(tilde_Delta_j, tilde_S_j)` per signer, in signer order.
    commitments: Vec<(Point<Secp256k1>, Point<Secp256k1>)>,
}

impl PresignPublic {
    fn from_lib(p: cggmp24::signing::PresignaturePublicData<Secp256k1>) -> Self {
        PresignPublic {
            gamma: p.Gamma,
            commitments: p
                .commitments
                .into_iter()
                .map(|c| (c.tilde_Delta, c.tilde_S))
                .collect(),
        }
    }

    fn to_lib(&self) -> cggmp24::signing::PresignaturePublicData<Secp256k1> {
        cggmp24::signing::PresignaturePublicData {
            Gamma: self.gamma,
            commitments: self
                .commitments
                .iter()
                .map(|(d, s)| cggmp24::signing::PresignatureCommitment {
                    tilde_Delta: *d,
                    tilde_S: *s,
                })
                .collect(),
        }
    }
}

/// One party's presignature: single use, bound at generation to a key, an aux info, a signer
/// set and a derivation path. Not `Clone`: [`online_sign`] consumes it. Across crashes the
/// store must delete it atomically with reading it.
#[derive(Serialize, Deserialize)]
pub struct EcdsaPresignature {
    #[serde(with = "hex::serde")]
    public_key: [u8; 33],
    aux_fingerprint: String,
    signers: Vec<PartyId>,
    me: PartyId,
    path: DerivationPath,
    #[serde(with = "hex::serde")]
    child_public_key: [u8; 33],
    secret: cggmp24::Presignature<Secp256k1>,
    public: PresignPublic,
}

impl EcdsaPresignature {
    const FORMAT: &'static str = "mpc-tss/cggmp24-presignature";
    const VERSION: u32 = 1;

    /// Versioned bytes for the sealed store (consumes: a presignature exists in one place).
    pub fn into_stored_bytes(self) -> Vec<u8> {
        codec::to_stored(Self::FORMAT, Self::VERSION, &self)
    }

    /// Reads [`into_stored_bytes`](Self::into_stored_bytes) output.
    pub fn from_stored_bytes(b: &[u8]) -> Result<Self, InputError> {
        codec::from_stored(Self::FORMAT, Self::VERSION, b)
    }

    /// The derivation path this presignature signs under.
    pub fn path(&self) -> &DerivationPath {
        &self.path
    }

    /// The signers that made it (all must join the online round).
    pub fn signers(&self) -> &[PartyId] {
        &self.signers
    }

    /// Aux-info fingerprint at generation.
    pub fn aux_fingerprint(&self) -> &str {
        &self.aux_fingerprint
    }
}

impl fmt::Debug for EcdsaPresignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdsaPresignature")
            .field("key", &hex::encode(self.public_key))
            .field("path", &self.path)
            .field("signers", &self.signers)
            .finish_non_exhaustive()
    }
}

/// Presignature generation for `path` (fixed now; cggmp24 has no way to re-target later).
pub fn presign(
    eid: ExecutionId,
    share: &EcdsaKeyShare,
    signers: &[PartyId],
    path: &DerivationPath,
) -> Result<Session<EcdsaPresignature>, InputError> {
    let core = &share.core;
    let me = core.party();
    let (sorted, idx, i) = signers_and_me(core.committee(), core.threshold(), me, signers)?;
    let child_public_key = compressed(&core.child_point(path)?);
    let key_share = share.share.clone();
    let path_in = path.clone();
    let sm = round_based::state_machine::wrap_protocol(move |party| async move {
        let mut rng = crate::run_rng();
        let eid_bytes = *eid.as_bytes();
        let builder = cggmp24::signing(cggmp24::ExecutionId::new(&eid_bytes), i, &idx, &key_share);
        let builder = if path_in.is_root() {
            builder
        } else {
            builder
                .set_derivation_path(path_in.indices().iter().copied())
                .map_err(|e| SessionError::Input(InputError::BadPath(format!("{e:?}"))))?
        };
        Ok::<_, SessionError>(builder.generate_presignature(&mut rng, party).await)
    });
    let public_key = core.public_key();
    let aux_fingerprint = share.aux_fingerprint.clone();
    let path = path.clone();
    let signers_out = sorted.clone();
    let driver = SmDriver::new(
        sm,
        sorted.clone(),
        SIGN_ROUNDS,
        move |out: Result<_, SessionError>, ps: &[PartyId]| {
            let (secret, public) = library_result(out?, ps)?;
            Ok(EcdsaPresignature {
                public_key,
                aux_fingerprint,
                signers: signers_out,
                me,
                path,
                child_public_key,
                secret,
                public: PresignPublic::from_lib(public),
            })
        },
    );
    Ok(Session::new(
        ProtocolKind::EcdsaPresign,
        eid,
        me,
        sorted,
        Box::new(driver),
    ))
}

/// One-round online signing from a presignature: every signer broadcasts its partial
/// signature and combines everyone's. Refuses a presignature made with another key, another
/// aux info (regenerated since) or for another path.
pub fn online_sign(
    eid: ExecutionId,
    share: &EcdsaKeyShare,
    presignature: EcdsaPresignature,
    path: &DerivationPath,
    message: &KnownMessage,
) -> Result<Session<EcdsaSignature>, InputError> {
    if presignature.public_key != share.core.public_key() || presignature.me != share.core.party() {
        return Err(InputError::KeyShare(
            "presignature belongs to another key or party".into(),
        ));
    }
    if presignature.aux_fingerprint != share.aux_fingerprint {
        return Err(InputError::PresignatureStale {
            made_with: presignature.aux_fingerprint,
            current: share.aux_fingerprint.clone(),
        });
    }
    if &presignature.path != path {
        return Err(InputError::BadPath(format!(
            "presignature was made for {}, not {path}",
            presignature.path
        )));
    }
    let me = presignature.me;
    let signers = presignature.signers.clone();
    let my_index = signers
        .iter()
        .position(|p| *p == me)
        .ok_or(InputError::NotASigner(me))?;
    let digest = message.digest();
    let data = message.data_to_sign();
    let public = presignature.public.to_lib();
    let child = Point::<Secp256k1>::from_bytes(presignature.child_public_key)
        .map_err(|_| InputError::KeyShare("stored child key is not a point".into()))?;
    let partial = presignature.secret.issue_partial_signature(data);
    let driver = OnlineDriver {
        my_index,
        partials: vec![None; signers.len()],
        own: Some(partial),
        data,
        public,
        child,
        digest,
        participants: signers.clone(),
    };
    Ok(Session::new(
        ProtocolKind::EcdsaOnlineSign,
        eid,
        me,
        signers,
        Box::new(driver),
    ))
}

/// The online round: a single broadcast of `PartialSignature`, round 0.
struct OnlineDriver {
    my_index: usize,
    partials: Vec<Option<cggmp24::PartialSignature<Secp256k1>>>,
    own: Option<cggmp24::PartialSignature<Secp256k1>>,
    data: DataToSign<Secp256k1>,
    public: cggmp24::signing::PresignaturePublicData<Secp256k1>,
    child: Point<Secp256k1>,
    digest: [u8; 32],
    participants: Vec<PartyId>,
}

impl Driver<EcdsaSignature> for OnlineDriver {
    fn accept(
        &mut self,
        sender: u16,
        broadcast: bool,
        round: u16,
        payload: &[u8],
    ) -> Result<(), Misbehaviour> {
        if round != 0 {
            return Err(Misbehaviour::RoundMismatch {
                claimed: round,
                actual: 0,
            });
        }
        if !broadcast {
            return Err(Misbehaviour::WrongDelivery {
                round,
                got: "p2p",
                expected: "broadcast",
            });
        }
        let partial: cggmp24::PartialSignature<Secp256k1> =
            codec::from_cbor(payload, 1024).map_err(|e| Misbehaviour::Malformed(e.0))?;
        let j = usize::from(sender);
        // Check the partial against its presignature commitment right away, so a bad one is
        // blamed on its sender (the library's combine only says "some partial is invalid").
        let r = self.public.Gamma.x().to_scalar();
        let c = self
            .public
            .commitments
            .get(j)
            .ok_or(Misbehaviour::NotAParticipant)?;
        if partial.sigma * self.public.Gamma
            != self.data.to_scalar() * c.tilde_Delta + r * c.tilde_S
        {
            return Err(Misbehaviour::InvalidPartialSignature);
        }
        if let Some(slot) = self.partials.get_mut(j) {
            *slot = Some(partial);
        }
        Ok(())
    }

    fn step(&mut self) -> DriverStep<EcdsaSignature> {
        if let Some(own) = self.own.take() {
            if let Some(slot) = self.partials.get_mut(self.my_index) {
                *slot = Some(own);
            }
            return DriverStep::Send(RawOut {
                to: None,
                round: 0,
                payload: codec::to_cbor(&own),
            });
        }
        if self.partials.iter().any(Option::is_none) {
            return DriverStep::NeedMessage;
        }
        let partials: Vec<_> = self.partials.iter().flatten().copied().collect();
        let result = cggmp24::PartialSignature::combine(&partials, &self.public, self.data)
            .ok_or_else(|| SessionError::Aborted {
                culprits: vec![],
                detail: format!(
                    "partial signatures of {:?} do not combine",
                    self.participants
                ),
            })
            .and_then(|sig| with_recovery_id(sig, &self.child, &self.digest));
        DriverStep::Done(result)
    }
}
