//! FROST signing (givre): ed25519 key generation and signing (RFC 8032 output), and BIP340 /
//! BIP341 Taproot signing with the secp256k1 share that ECDSA uses.
//!
//! HD derivation: secp256k1 uses SLIP-10 (= BIP32 CKDpub for non-hardened steps); ed25519 uses
//! `hd_wallet::Edwards`, the library's non-hardened scheme (not SLIP-10, which is hardened-only
//! for ed25519). For Taproot the child key is derived first and then tweaked.

use std::fmt;

use givre::ciphersuite::{Bitcoin, Ciphersuite, Ed25519, NormalizedPoint};
use givre::generic_ec::{NonZero, Point, curves};
use serde::{Deserialize, Serialize};

use crate::bip340::Bip340;
use crate::ecdsa::{EcdsaCoreShare, signers_and_me};
use crate::envelope::{ExecutionId, ProtocolKind};
use crate::error::{InputError, SessionError};
use crate::party::{Committee, PartyId};
use crate::path::DerivationPath;
use crate::session::{RoundKinds, Session, SmDriver, library_result};
use crate::share::CommitteeShare;

const KEYGEN_ROUNDS: RoundKinds = RoundKinds {
    broadcast: &[0, 1, 3, 4],
    p2p: &[2],
};
const SIGN_ROUNDS: RoundKinds = RoundKinds {
    broadcast: &[0, 1],
    p2p: &[],
};

/// One party's share of an ed25519 key, with the chain code.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EddsaKeyShare(CommitteeShare<curves::Ed25519>);

impl EddsaKeyShare {
    const FORMAT: &'static str = "mpc-tss/ed25519-share";

    /// Versioned bytes for the sealed store.
    pub fn to_stored_bytes(&self) -> Vec<u8> {
        self.0.to_stored(Self::FORMAT)
    }

    /// Reads [`to_stored_bytes`](Self::to_stored_bytes) output.
    pub fn from_stored_bytes(b: &[u8]) -> Result<Self, InputError> {
        CommitteeShare::from_stored(Self::FORMAT, b).map(EddsaKeyShare)
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

    /// The root public key (32-byte ed25519 encoding).
    pub fn public_key(&self) -> [u8; 32] {
        ed_bytes(&self.0.share.shared_public_key)
    }

    /// The chain code.
    pub fn chain_code(&self) -> Option<[u8; 32]> {
        self.0.chain_code()
    }

    /// Child public key at `path` (`hd_wallet::Edwards`).
    pub fn derive_public_key(&self, path: &DerivationPath) -> Result<[u8; 32], InputError> {
        Ok(ed_bytes(
            &self.0.child_point::<givre::hd_wallet::Edwards>(path)?,
        ))
    }
}

impl fmt::Debug for EddsaKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EddsaKeyShare")
            .field("party", &self.party())
            .field("threshold", &self.threshold())
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

fn ed_bytes(p: &Point<curves::Ed25519>) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&p.to_bytes(true));
    out
}

/// A 64-byte Schnorr-family signature: RFC 8032 `R ‖ S` for ed25519, BIP340 `r ‖ s` for
/// secp256k1.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchnorrSignature(#[serde(with = "hex::serde")] pub [u8; 64]);

impl fmt::Debug for SchnorrSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SchnorrSignature({})", hex::encode(self.0))
    }
}

fn to_bytes<C: Ciphersuite>(
    sig: &givre::signing::aggregate::Signature<C>,
) -> Result<SchnorrSignature, SessionError> {
    if givre::signing::aggregate::Signature::<C>::serialized_len() != 64 {
        return Err(SessionError::Local("unexpected signature size".into()));
    }
    let mut out = [0u8; 64];
    sig.write_to_slice(&mut out);
    Ok(SchnorrSignature(out))
}

/// FROST DKG for an ed25519 key with a chain code.
pub fn eddsa_keygen(
    eid: ExecutionId,
    me: PartyId,
    committee: &Committee,
    threshold: u16,
) -> Result<Session<EddsaKeyShare>, InputError> {
    if threshold < 2 || threshold > committee.n() {
        return Err(InputError::BadThreshold {
            t: threshold,
            n: committee.n(),
        });
    }
    let i = committee.index_of(me)?;
    let n = committee.n();
    let committee_out = committee.clone();
    let sm = round_based::state_machine::wrap_protocol(move |party| async move {
        let mut rng = crate::run_rng();
        let eid_bytes = *eid.as_bytes();
        givre::keygen::<curves::Ed25519>(givre::keygen::ExecutionId::new(&eid_bytes), i, n)
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
            Ok(EddsaKeyShare(CommitteeShare {
                committee: committee_out,
                share,
            }))
        },
    );
    Ok(Session::new(
        ProtocolKind::EddsaKeygen,
        eid,
        me,
        committee.parties().to_vec(),
        Box::new(driver),
    ))
}

fn frost_sign<C>(
    kind: ProtocolKind,
    eid: ExecutionId,
    key: &CommitteeShare<C::Curve>,
    signers: &[PartyId],
    path: &DerivationPath,
    message: Vec<u8>,
    taproot_root: Option<Option<[u8; 32]>>,
) -> Result<Session<SchnorrSignature>, InputError>
where
    C: Ciphersuite + 'static,
{
    let me = key.party();
    let share = key.share.clone();
    let (sorted, idx, i) = signers_and_me(&key.committee, key.threshold(), me, signers)?;
    // Check the path now, so a bad one is an input error and not a failed run.
    if !path.is_root() {
        share
            .derive_child_public_key::<C::HdAlgo, _>(path.indices().iter().copied())
            .map_err(|e| InputError::BadPath(format!("{e:?}")))?;
    }
    let path = path.clone();
    let sm = round_based::state_machine::wrap_protocol(move |party| async move {
        let mut rng = crate::run_rng();
        let mut builder = givre::signing::<C>(i, &share, &idx, &message);
        if !path.is_root() {
            builder = builder
                .set_derivation_path(path.indices().iter().copied())
                .map_err(|e| SessionError::Input(InputError::BadPath(format!("{e:?}"))))?;
        }
        if let Some(root) = taproot_root {
            builder = builder
                .set_taproot_tweak(root)
                .map_err(|e| SessionError::Local(format!("taproot tweak: {e}")))?;
        }
        Ok::<_, SessionError>(builder.sign(&mut rng, party).await)
    });
    let driver = SmDriver::new(
        sm,
        sorted.clone(),
        SIGN_ROUNDS,
        move |out: Result<_, SessionError>, ps: &[PartyId]| {
            let sig = library_result(out?, ps)?;
            to_bytes::<C>(&sig)
        },
    );
    Ok(Session::new(kind, eid, me, sorted, Box::new(driver)))
}

/// FROST ed25519 signing of `message` under the key at `path`; RFC 8032 output.
pub fn eddsa_sign(
    eid: ExecutionId,
    share: &EddsaKeyShare,
    signers: &[PartyId],
    path: &DerivationPath,
    message: &[u8],
) -> Result<Session<SchnorrSignature>, InputError> {
    frost_sign::<Ed25519>(
        ProtocolKind::EddsaSign,
        eid,
        &share.0,
        signers,
        path,
        message.to_vec(),
        None,
    )
}

/// Plain BIP340 signing under the (derived) secp256k1 key itself, untweaked.
pub fn bip340_sign(
    eid: ExecutionId,
    share: &EcdsaCoreShare,
    signers: &[PartyId],
    path: &DerivationPath,
    message: &[u8],
) -> Result<Session<SchnorrSignature>, InputError> {
    frost_sign::<Bip340>(
        ProtocolKind::Bip340Sign,
        eid,
        share.committee_share(),
        signers,
        path,
        message.to_vec(),
        None,
    )
}

/// BIP341 key-path signing under the (derived) key tweaked with `script_root` (`None`: the
/// key-only tweak).
pub fn taproot_sign(
    eid: ExecutionId,
    share: &EcdsaCoreShare,
    signers: &[PartyId],
    path: &DerivationPath,
    message: &[u8],
    script_root: Option<[u8; 32]>,
) -> Result<Session<SchnorrSignature>, InputError> {
    frost_sign::<Bitcoin>(
        ProtocolKind::TaprootSign,
        eid,
        share.committee_share(),
        signers,
        path,
        message.to_vec(),
        Some(script_root),
    )
}

/// The x-only BIP340 public key of the (derived) key: what `bip340_sign` signatures verify
/// under.
pub fn bip340_public_key(
    share: &EcdsaCoreShare,
    path: &DerivationPath,
) -> Result<[u8; 32], InputError> {
    let p = share.child_point(path)?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&p.to_bytes(true)[1..]);
    Ok(out)
}

/// The x-only BIP341 output key of the (derived) key tweaked with `script_root`.
pub fn taproot_output_key(
    share: &EcdsaCoreShare,
    path: &DerivationPath,
    script_root: Option<[u8; 32]>,
) -> Result<[u8; 32], InputError> {
    let p = NonZero::from_point(share.child_point(path)?)
        .ok_or_else(|| InputError::KeyShare("derived key is the identity".into()))?;
    let normalized = NormalizedPoint::<Bitcoin, _>::try_normalize(p).unwrap_or_else(|neg| neg);
    let q = givre::signing::taproot::tweak_public_key::<Bitcoin>(normalized, script_root)
        .ok_or_else(|| InputError::KeyShare("taproot tweak undefined for this key".into()))?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&q.to_bytes(true)[1..]);
    Ok(out)
}
