use std::collections::BTreeMap;
use std::sync::OnceLock;

use k256::elliptic_curve::sec1::ToEncodedPoint;
use mpc_tss::ecdsa::{self, EcdsaAuxInfo, EcdsaCoreShare, EcdsaKeyShare, EcdsaSignature};
use mpc_tss::frost::{self, EddsaKeyShare, SchnorrSignature};
use mpc_tss::primes::SecretPrimes;
use mpc_tss::{Committee, DerivationPath, ExecutionId, PartyId, ProtocolKind, sim};
use sha2::{Digest, Sha256};

pub fn ps(list: &str) -> Vec<PartyId> {
    mpc_tss::party::parties(list).unwrap()
}

pub fn pid(s: &str) -> PartyId {
    PartyId::new(s).unwrap()
}

pub fn path(s: &str) -> DerivationPath {
    s.parse().unwrap()
}

pub fn eid(kind: ProtocolKind, tag: &str, parties: &[PartyId]) -> ExecutionId {
    ExecutionId::derive(kind, tag.as_bytes(), parties)
}

/// Safe primes checked in for tests (never for real keys): 6 sets, 3 for the first aux info,
/// 3 for a regeneration.
pub fn test_primes() -> Vec<SecretPrimes> {
    let json = include_str!("../fixtures/test-primes.json");
    serde_json::from_str(json).unwrap()
}

pub struct World {
    pub committee: Committee,
    pub ecdsa3: BTreeMap<PartyId, EcdsaCoreShare>,
    pub ecdsa2: BTreeMap<PartyId, EcdsaCoreShare>,
    pub aux: BTreeMap<PartyId, EcdsaAuxInfo>,
    pub ed3: BTreeMap<PartyId, EddsaKeyShare>,
    pub ed2: BTreeMap<PartyId, EddsaKeyShare>,
}

/// Keys generated once per test binary: secp256k1 and ed25519 at 3-of-3 and 2-of-3, and one
/// aux info for the committee a, b, c.
pub fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let committee = Committee::new(ps("a,b,c")).unwrap();
        let mut primes = test_primes().into_iter();
        let aux = run_aux(&committee, "world", [(); 3].map(|_| primes.next().unwrap()));
        World {
            ecdsa3: run_ecdsa_keygen(&committee, 3, "world-3"),
            ecdsa2: run_ecdsa_keygen(&committee, 2, "world-2"),
            aux,
            ed3: run_eddsa_keygen(&committee, 3, "world-ed-3"),
            ed2: run_eddsa_keygen(&committee, 2, "world-ed-2"),
            committee,
        }
    })
}

pub fn run_ecdsa_keygen(c: &Committee, t: u16, tag: &str) -> BTreeMap<PartyId, EcdsaCoreShare> {
    let e = eid(ProtocolKind::EcdsaKeygen, tag, c.parties());
    let sessions = c
        .parties()
        .iter()
        .map(|p| ecdsa::keygen(e, *p, c, t).unwrap())
        .collect();
    sim::run(sessions).unwrap().outputs
}

pub fn run_eddsa_keygen(c: &Committee, t: u16, tag: &str) -> BTreeMap<PartyId, EddsaKeyShare> {
    let e = eid(ProtocolKind::EddsaKeygen, tag, c.parties());
    let sessions = c
        .parties()
        .iter()
        .map(|p| frost::eddsa_keygen(e, *p, c, t).unwrap())
        .collect();
    sim::run(sessions).unwrap().outputs
}

pub fn run_aux(
    c: &Committee,
    tag: &str,
    primes: [SecretPrimes; 3],
) -> BTreeMap<PartyId, EcdsaAuxInfo> {
    let e = eid(ProtocolKind::EcdsaAuxInfo, tag, c.parties());
    let sessions = c
        .parties()
        .iter()
        .zip(primes)
        .map(|(p, pr)| ecdsa::aux_info(e, *p, c, pr).unwrap())
        .collect();
    sim::run(sessions).unwrap().outputs
}

pub fn key_shares(
    core: &BTreeMap<PartyId, EcdsaCoreShare>,
    aux: &BTreeMap<PartyId, EcdsaAuxInfo>,
) -> BTreeMap<PartyId, EcdsaKeyShare> {
    core.iter()
        .map(|(p, c)| (*p, EcdsaKeyShare::new(c.clone(), aux[p].clone()).unwrap()))
        .collect()
}

/// Every party's output is the same; returns it.
pub fn agreed<O: PartialEq + std::fmt::Debug + Clone>(out: &BTreeMap<PartyId, O>) -> O {
    let first = out.values().next().unwrap().clone();
    for o in out.values() {
        assert_eq!(o, &first, "parties disagree on the output");
    }
    first
}

/// k256: verify (low-S, prehash) and recover the key with the given recovery id.
pub fn verify_ecdsa(public_key: &[u8; 33], digest: &[u8; 32], sig: &EcdsaSignature) {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).unwrap();
    let s = k256::ecdsa::Signature::from_scalars(sig.r, sig.s).unwrap();
    assert!(s.normalize_s().is_none(), "s is not low");
    vk.verify_prehash(digest, &s)
        .expect("ECDSA signature verifies");
    let id = k256::ecdsa::RecoveryId::from_byte(sig.recovery_id).unwrap();
    let rec = k256::ecdsa::VerifyingKey::recover_from_prehash(digest, &s, id).unwrap();
    assert_eq!(rec, vk, "recovery id recovers the signing key");
}

pub fn verify_ed25519(public_key: &[u8; 32], msg: &[u8], sig: &SchnorrSignature) {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(public_key).unwrap();
    let s = ed25519_dalek::Signature::from_bytes(&sig.0);
    vk.verify_strict(msg, &s)
        .expect("ed25519 signature verifies (strict)");
}

pub fn bip340_verify(xonly: &[u8; 32], msg: &[u8], sig: &SchnorrSignature) -> bool {
    let vk = k256::schnorr::VerifyingKey::from_bytes(xonly).unwrap();
    let s = k256::schnorr::Signature::try_from(&sig.0[..]).unwrap();
    vk.verify_raw(msg, &s).is_ok()
}

/// BIP341 output key computed here with k256 arithmetic, independently of givre.
pub fn taproot_output_key(child: &[u8; 33], root: Option<[u8; 32]>) -> [u8; 32] {
    use k256::elliptic_curve::ops::Reduce;
    use k256::{ProjectivePoint, Scalar, U256};
    let p = k256::PublicKey::from_sec1_bytes(child).unwrap();
    let mut xonly = [0u8; 32];
    xonly.copy_from_slice(&child[1..]);
    // lift_x: the even-Y point with this x
    let mut even = [0u8; 33];
    even[0] = 2;
    even[1..].copy_from_slice(&xonly);
    let p_even = k256::PublicKey::from_sec1_bytes(&even).unwrap();
    let _ = p;
    let tag = Sha256::digest(b"TapTweak");
    let mut h = Sha256::new();
    h.update(tag);
    h.update(tag);
    h.update(xonly);
    if let Some(r) = root {
        h.update(r);
    }
    let t = <Scalar as Reduce<U256>>::reduce_bytes(&h.finalize());
    let q =
        (ProjectivePoint::from(*p_even.as_affine()) + ProjectivePoint::GENERATOR * t).to_affine();
    let enc = q.to_encoded_point(true);
    let mut out = [0u8; 32];
    out.copy_from_slice(&enc.as_bytes()[1..]);
    out
}

/// Standard BIP32 CKDpub with the `bip32` crate.
pub fn bip32_child(root: &[u8; 33], chain_code: [u8; 32], p: &DerivationPath) -> [u8; 33] {
    use bip32::{ChildNumber, ExtendedKeyAttrs, ExtendedPublicKey, PublicKey};
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(root).unwrap();
    let attrs = ExtendedKeyAttrs {
        depth: 0,
        parent_fingerprint: [0; 4],
        child_number: ChildNumber(0),
        chain_code,
    };
    let mut xpub = ExtendedPublicKey::new(vk, attrs);
    for i in p.indices() {
        xpub = xpub
            .derive_child(ChildNumber::new(*i, false).unwrap())
            .unwrap();
    }
    xpub.public_key().to_bytes()
}

pub fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}
