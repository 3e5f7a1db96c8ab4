//! Threshold ECDSA on secp256k1 with DKLs23 (the `dkls23` crate, 0xCarbon): key generation
//! with a chain code, signing (any `t` of the `n` parties, with or without a BIP32 path),
//! share refresh and the repair of a lost share.
//!
//! DKLs23 (eprint 2023/765) replaces CGGMP's Paillier encryption and range proofs by pairwise
//! oblivious-transfer multiplication, set up once at key generation: no safe primes, no aux
//! info, signatures in three rounds and milliseconds. Every run here is a [`Session`] like the
//! other protocols: the session layer checks execution id, protocol, round, sender and receiver
//! before [`driver`](self) hands a message to the library.
//!
//! What the node stores per key: one [`DklsKeyShare`]. It signs ECDSA ([`sign`]) and converts,
//! through byte encodings, into the share that BIP340 and Taproot signing take
//! ([`DklsKeyShare::schnorr_share`]), so one secp256k1 key serves all three.
//!
//! Two RustCrypto generations: the library computes with k256 0.14, everything else here with
//! k256 0.13 / generic-ec 0.4. They meet only as bytes (`convert`): SEC1 points, big-endian
//! scalars. Every signature is verified again with k256 0.13 before it is returned.
//!
//! Operations and who takes part:
//!
//! | function | parties | rounds | output |
//! |---|---|---|---|
//! | [`keygen`] | all `n` | 3 + echo | [`DklsKeyShare`] |
//! | [`sign`] | exactly `t` signers | 3 | [`EcdsaSignature`] (low `s`, recovery id) |
//! | [`refresh`] | all `n` | 3 + echo | new [`DklsKeyShare`], same key and chain code |
//! | [`repair_helper`] / [`repair_target`] | all `n` (one without a share) | 1 + 3 + echo | new shares for everyone |
//!
//! After a refresh or repair every party must replace its share: shares of different
//! generations ([`DklsKeyShare::generation`]) cannot sign together. When a run fails with
//! [`SessionError::BanRequired`], the library requires that the named party never takes part
//! in a session with this key again.

mod convert;
mod driver;
mod keygen;
mod reshare;
mod share;
mod sign;
pub mod wire;

use dkls23::protocols::PartyIndex;

pub use share::DklsKeyShare;

use crate::ecdsa::{EcdsaSignature, SignInput};
use crate::envelope::{ExecutionId, ProtocolKind};
use crate::error::{InputError, SessionError};
use crate::party::{Committee, PartyId};
use crate::path::DerivationPath;
use crate::session::Session;
use driver::RoundDriver;
use reshare::{Repair, Reshare};
use wire::Body;

/// The curve type of the library (k256 0.14).
pub type Curve = k256_dkls::Secp256k1;
/// The library's per-party key material.
pub type Party = dkls23::protocols::Party<Curve>;
/// The library's public key package (public key, verifying shares, threshold).
pub type Package = dkls23::protocols::PublicKeyPackage<Curve>;

/// Version of the `dkls23` crate this module is written against (pinned in Cargo.toml).
pub const LIBRARY: &str = "dkls23 0.6.2 (0xCarbon)";

fn check_params(committee: &Committee, threshold: u16) -> Result<(), InputError> {
    if threshold < 2 || threshold > committee.n() {
        return Err(InputError::BadThreshold {
            t: threshold,
            n: committee.n(),
        });
    }
    Ok(())
}

/// Who receives what in round `round` of the DKG-shaped protocols (keygen, refresh): a
/// fragment from everyone, then a broadcast and a p2p message from everyone, twice.
fn dkg_due(n: u16, me: u16, round: u16) -> Vec<(u16, bool)> {
    let others = (0..n).filter(move |p| *p != me);
    match round {
        0 => others.map(|p| (p, false)).collect(),
        1 | 2 => others.flat_map(|p| [(p, true), (p, false)]).collect(),
        _ => vec![],
    }
}

fn dkg_fits(round: u16, broadcast: bool, body: &Body, keygen: bool) -> bool {
    match (round, broadcast, body) {
        (0, false, Body::Fragment(_)) => true,
        (1, true, Body::Commit { chain_code, .. }) => chain_code.is_some() == keygen,
        (1, false, Body::ZeroCommit(_)) => true,
        (2, true, Body::Reveal { chain_code, .. }) => chain_code.is_some() == keygen,
        (2, false, Body::Init { .. }) => true,
        _ => false,
    }
}

/// The committee position of library index `i`.
fn position_of(committee: &Committee, i: PartyIndex) -> Result<u16, SessionError> {
    let pos = u16::from(i.as_u8()).wrapping_sub(1);
    if pos < committee.n() {
        Ok(pos)
    } else {
        Err(SessionError::Local(format!(
            "library addressed party index {i}"
        )))
    }
}

/// The party with library index `i` (1-based committee position).
fn who(committee: &[PartyId], i: PartyIndex) -> Option<PartyId> {
    usize::from(i.as_u8())
        .checked_sub(1)
        .and_then(|p| committee.get(p))
        .copied()
}

fn session<O, P>(
    kind: ProtocolKind,
    eid: ExecutionId,
    me: PartyId,
    me_pos: u16,
    parties: Vec<PartyId>,
    lib_index: Vec<u8>,
    phases: P,
) -> Session<O>
where
    P: driver::Phases<Out = O> + 'static,
    O: 'static,
{
    let driver = RoundDriver::new(phases, eid, me_pos, parties.clone(), lib_index);
    Session::new(kind, eid, me, parties, Box::new(driver))
}

fn committee_lib_index(committee: &Committee) -> Vec<u8> {
    (1..=committee.n()).map(|i| i as u8).collect()
}

/// Distributed key generation for a `threshold`-of-`n` secp256k1 key with a chain code.
pub fn keygen(
    eid: ExecutionId,
    me: PartyId,
    committee: &Committee,
    threshold: u16,
) -> Result<Session<DklsKeyShare>, InputError> {
    check_params(committee, threshold)?;
    let pos = committee.index_of(me)?;
    let phases = keygen::Keygen::new(committee, pos, threshold, eid.as_bytes().to_vec())?;
    Ok(session(
        ProtocolKind::Dkls23Keygen,
        eid,
        me,
        pos,
        committee.parties().to_vec(),
        committee_lib_index(committee),
        phases,
    ))
}

/// Signs `input` with exactly `t` signers under the key derived at `path` (BIP32 CKDpub;
/// `m` for the root key). A raw digest is fine here: DKLs23 has no presignatures.
pub fn sign(
    eid: ExecutionId,
    share: &DklsKeyShare,
    signers: &[PartyId],
    path: &DerivationPath,
    input: SignInput,
) -> Result<Session<EcdsaSignature>, InputError> {
    let me = share.party();
    let (sorted, _, pos) =
        crate::ecdsa::signers_and_me(share.committee(), share.threshold(), me, signers)?;
    let lib_index = sorted
        .iter()
        .map(|p| share.lib_index(*p).map(|i| i.as_u8()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut party = share.lib_party().clone();
    for i in path.indices() {
        party = party
            .derive_child(*i, |_| String::new())
            .map_err(|e| InputError::BadPath(e.description))?;
    }
    let child = share.derive_public_key(path)?;
    // The library's derivation and the standard one (hd-wallet, as the coordinator derives)
    // must agree; a disagreement would sign under a key nobody expects.
    if convert::point33(&party.pk)? != child {
        return Err(InputError::KeyShare(
            "DKLs23 child key differs from BIP32 CKDpub".into(),
        ));
    }
    let phases = sign::Sign::new(
        party,
        eid.as_bytes().to_vec(),
        share.committee().parties().to_vec(),
        lib_index.clone(),
        pos,
        child,
        input.digest(),
    )
    .map_err(|e| InputError::KeyShare(e.to_string()))?;
    Ok(session(
        ProtocolKind::Dkls23Sign,
        eid,
        me,
        pos,
        sorted,
        lib_index,
        phases,
    ))
}

/// Refreshes every party's share (all `n` take part): same public key and chain code, new
/// secret shares and pairwise state. Shares from before cannot sign with the new ones.
pub fn refresh(
    eid: ExecutionId,
    share: &DklsKeyShare,
) -> Result<Session<DklsKeyShare>, InputError> {
    let committee = share.committee();
    let me = share.party();
    let pos = committee.index_of(me)?;
    let phases = Reshare::new(
        committee,
        pos,
        share.threshold(),
        eid.as_bytes().to_vec(),
        Repair::None,
        Some(share),
    );
    Ok(session(
        ProtocolKind::Dkls23Refresh,
        eid,
        me,
        pos,
        committee.parties().to_vec(),
        committee_lib_index(committee),
        phases,
    ))
}

/// A party that holds its share, helping rebuild `target`'s lost share. Every party other
/// than `target` runs this (at least `t` of them, so `n − 1 ≥ t`); the run ends with a refresh,
/// and the output replaces this party's share.
pub fn repair_helper(
    eid: ExecutionId,
    share: &DklsKeyShare,
    target: PartyId,
) -> Result<Session<DklsKeyShare>, InputError> {
    let committee = share.committee();
    let me = share.party();
    if target == me {
        return Err(InputError::KeyShare(
            "a party cannot repair itself with its own share".into(),
        ));
    }
    let target_pos = committee.index_of(target)?;
    if committee.n() - 1 < share.threshold() {
        return Err(InputError::KeyShare(format!(
            "a {}-of-{} key cannot be repaired: {} helpers are fewer than the threshold",
            share.threshold(),
            committee.n(),
            committee.n() - 1
        )));
    }
    let pos = committee.index_of(me)?;
    let phases = Reshare::new(
        committee,
        pos,
        share.threshold(),
        eid.as_bytes().to_vec(),
        Repair::Helper { target: target_pos },
        Some(share),
    );
    Ok(session(
        ProtocolKind::Dkls23Repair,
        eid,
        me,
        pos,
        committee.parties().to_vec(),
        committee_lib_index(committee),
        phases,
    ))
}

/// The party (a new node) whose share was lost: receives the helpers' terms, checks them
/// against `public_key` (the key as the caller knows it, e.g. from the coordinator's records)
/// and takes part in the refresh that completes its share.
pub fn repair_target(
    eid: ExecutionId,
    me: PartyId,
    committee: &Committee,
    threshold: u16,
    public_key: [u8; 33],
) -> Result<Session<DklsKeyShare>, InputError> {
    check_params(committee, threshold)?;
    if committee.n() - 1 < threshold {
        return Err(InputError::KeyShare(format!(
            "a {threshold}-of-{} key cannot be repaired: too few helpers",
            committee.n()
        )));
    }
    let pos = committee.index_of(me)?;
    let phases = Reshare::new(
        committee,
        pos,
        threshold,
        eid.as_bytes().to_vec(),
        Repair::Target { public_key },
        None,
    );
    Ok(session(
        ProtocolKind::Dkls23Repair,
        eid,
        me,
        pos,
        committee.parties().to_vec(),
        committee_lib_index(committee),
        phases,
    ))
}
