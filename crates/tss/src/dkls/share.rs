//! [`DklsKeyShare`]: one party's DKLs23 share of a secp256k1 key, as the node stores it.

use std::fmt;

use dkls23::protocols::PartyIndex;
use generic_ec::curves::Secp256k1;
use key_share::{DirtyCoreKeyShare, DirtyKeyInfo, Validate, VssSetup};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::convert::{index_scalar, point33, to_generic_point, to_generic_secret};
use super::{Package, Party};
use crate::codec;
use crate::derive;
use crate::ecdsa::EcdsaCoreShare;
use crate::error::InputError;
use crate::party::{Committee, PartyId};
use crate::path::DerivationPath;
use crate::share::CommitteeShare;

/// One party's DKLs23 share of a secp256k1 key: the library's `Party` (secret share, pairwise
/// OT and zero-share state, chain code) and `PublicKeyPackage` (public key and every party's
/// verifying share), with the committee that holds the key.
///
/// Signs ECDSA ([`super::sign`]); [`DklsKeyShare::schnorr_share`] converts it, through byte
/// encodings, into the share BIP340 and Taproot signing take, so one key serves all three.
/// Secret material is wiped on drop (the library zeroizes `Party`); `Debug` shows public data
/// only.
///
/// Stored as versioned JSON: the committee and the public package readable, the library's
/// `Party` (secret share plus ~100 KB of pairwise OT state) as base64 of its postcard encoding,
/// the library's own binary format.
#[derive(Clone, Serialize, Deserialize)]
pub struct DklsKeyShare {
    committee: Committee,
    #[serde(with = "party_b64")]
    party: Party,
    package: Package,
}

/// `Party` as base64 (standard alphabet, padded) of its postcard encoding; intermediate
/// buffers holding secrets are wiped.
mod party_b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use zeroize::Zeroizing;

    use super::Party;

    pub fn serialize<S: Serializer>(party: &Party, s: S) -> Result<S::Ok, S::Error> {
        let bytes =
            Zeroizing::new(postcard::to_allocvec(party).map_err(serde::ser::Error::custom)?);
        let text = Zeroizing::new(STANDARD.encode(&*bytes));
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Party, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.as_bytes())
                .map_err(|_| D::Error::custom("party: not base64"))?,
        );
        let (party, rest) = postcard::take_from_bytes::<Party>(&bytes)
            .map_err(|_| D::Error::custom("party: not a DKLs23 party encoding"))?;
        if !rest.is_empty() {
            return Err(D::Error::custom("party: trailing bytes"));
        }
        Ok(party)
    }
}

impl DklsKeyShare {
    const FORMAT: &'static str = "mpc-tss/dkls23-share";
    const VERSION: u32 = 1;

    /// Builds and checks a share from the library's output.
    pub(crate) fn new(
        committee: Committee,
        party: Party,
        package: Package,
    ) -> Result<Self, InputError> {
        let s = DklsKeyShare {
            committee,
            party,
            package,
        };
        s.check()?;
        Ok(s)
    }

    /// Versioned bytes for the sealed store (JSON, as every stored object).
    pub fn to_stored_bytes(&self) -> Vec<u8> {
        codec::to_stored(Self::FORMAT, Self::VERSION, self)
    }

    /// Reads [`to_stored_bytes`](Self::to_stored_bytes) output and checks that it is a
    /// complete, self-consistent share.
    pub fn from_stored_bytes(b: &[u8]) -> Result<Self, InputError> {
        let s: Self = codec::from_stored(Self::FORMAT, Self::VERSION, b)?;
        s.check().map_err(|e| InputError::Stored {
            what: Self::FORMAT,
            reason: e.to_string(),
        })?;
        Ok(s)
    }

    fn check(&self) -> Result<(), InputError> {
        let bad = |r: &str| Err(InputError::KeyShare(format!("DKLs23 share: {r}")));
        let n = self.committee.n();
        let p = &self.party;
        if u16::from(p.parameters.share_count) != n || u16::from(self.package.share_count()) != n {
            return bad("share and committee sizes differ");
        }
        if p.parameters.threshold != self.package.threshold() {
            return bad("share and public package thresholds differ");
        }
        if u16::from(p.party_index.as_u8()) > n {
            return bad("party index outside the committee");
        }
        if p.pk != *self.package.verifying_key() || p.derivation_data.pk != p.pk {
            return bad("public key differs between share and package");
        }
        if p.derivation_data.depth != 0 || p.derivation_data.poly_point != p.poly_point {
            return bad("not a root share");
        }
        let mine = (k256_dkls::ProjectivePoint::GENERATOR * p.poly_point).to_affine();
        if self.package.verifying_share(p.party_index) != Some(&mine) {
            return bad("secret share does not match its verifying share");
        }
        for i in 1..=p.parameters.share_count {
            let idx = PartyIndex::new(i).map_err(|_| InputError::KeyShare("index 0".into()))?;
            if self.package.verifying_share(idx).is_none() {
                return bad("a verifying share is missing");
            }
            if idx != p.party_index
                && (!p.mul_senders.contains_key(&idx) || !p.mul_receivers.contains_key(&idx))
            {
                return bad("pairwise state is missing (a repaired share before its refresh)");
            }
        }
        Ok(())
    }

    /// The parties sharing the key.
    pub fn committee(&self) -> &Committee {
        &self.committee
    }

    /// This party.
    pub fn party(&self) -> PartyId {
        // index in 1..=n, checked when built or read
        self.committee.parties()[usize::from(self.party.party_index.as_u8()) - 1]
    }

    /// Signers needed.
    pub fn threshold(&self) -> u16 {
        u16::from(self.package.threshold())
    }

    /// The root public key, 33-byte compressed SEC1.
    pub fn public_key(&self) -> [u8; 33] {
        // checked when built or read: the key is a valid non-identity point
        point33(&self.party.pk).unwrap_or([0; 33])
    }

    /// The chain code agreed at key generation (unchanged by refresh and repair).
    pub fn chain_code(&self) -> [u8; 32] {
        *self.party.chain_code()
    }

    /// The root extended public key (`xpub…`, mainnet version bytes, depth 0).
    pub fn xpub(&self) -> Result<String, InputError> {
        derive::xpub_secp256k1(&self.public_key(), &self.chain_code())
    }

    /// The child public key at `path` (BIP32 CKDpub), 33-byte compressed. Computed from the
    /// public key and chain code alone, as the coordinator does ([`crate::derive`]).
    pub fn derive_public_key(&self, path: &DerivationPath) -> Result<[u8; 33], InputError> {
        derive::derive_secp256k1_public(&self.public_key(), &self.chain_code(), path)
    }

    /// `party`'s verifying share (its secret share times G), 33-byte compressed.
    pub fn verifying_share(&self, party: PartyId) -> Result<[u8; 33], InputError> {
        let i = self.lib_index(party)?;
        let p = self
            .package
            .verifying_share(i)
            .ok_or(InputError::NotAMember(party))?;
        point33(p)
    }

    /// Identifies the generation of the shares: equal at every party after the same key
    /// generation, refresh or repair, different after each refresh. Shares of different
    /// generations cannot sign together; the node keeps one generation per key.
    pub fn generation(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"mpc-cosigner/dkls23-generation/v1");
        h.update(&self.party.session_id);
        hex::encode(&h.finalize()[..16])
    }

    /// The same secret share as a `key_share::CoreKeyShare` (the form cggmp24 and givre use),
    /// converted through byte encodings: for BIP340 and Taproot signing
    /// ([`crate::frost::bip340_sign`], [`crate::frost::taproot_sign`]) under the same key.
    /// key-share validates the result (every verifying share on one polynomial through the
    /// public key, ours matching our secret).
    pub fn schnorr_share(&self) -> Result<EcdsaCoreShare, InputError> {
        let n = self.package.share_count();
        let mut public_shares = Vec::with_capacity(usize::from(n));
        let mut indices = Vec::with_capacity(usize::from(n));
        for i in 1..=n {
            let idx = PartyIndex::new(i).map_err(|_| InputError::KeyShare("index 0".into()))?;
            let p = self
                .package
                .verifying_share(idx)
                .ok_or_else(|| InputError::KeyShare("a verifying share is missing".into()))?;
            public_shares.push(to_generic_point(p)?);
            indices.push(index_scalar(i)?);
        }
        let dirty = DirtyCoreKeyShare::<Secp256k1> {
            i: u16::from(self.party.party_index.as_u8()) - 1,
            key_info: DirtyKeyInfo {
                curve: Default::default(),
                shared_public_key: to_generic_point(&self.party.pk)?,
                public_shares,
                vss_setup: Some(VssSetup {
                    min_signers: self.threshold(),
                    I: indices,
                }),
                chain_code: Some(self.chain_code()),
            },
            x: to_generic_secret(&self.party.poly_point)?,
        };
        let share = dirty
            .validate()
            .map_err(|e| InputError::KeyShare(format!("converted share is invalid: {e}")))?;
        Ok(EcdsaCoreShare::from_committee_share(CommitteeShare {
            committee: self.committee.clone(),
            share,
        }))
    }

    pub(crate) fn lib_party(&self) -> &Party {
        &self.party
    }

    pub(crate) fn package(&self) -> &Package {
        &self.package
    }

    /// The library's index (1-based) of `party`.
    pub(crate) fn lib_index(&self, party: PartyId) -> Result<PartyIndex, InputError> {
        lib_index(&self.committee, party)
    }
}

/// The library's index (1-based) of `party` in `committee`.
pub(crate) fn lib_index(committee: &Committee, party: PartyId) -> Result<PartyIndex, InputError> {
    let i = committee.index_of(party)?;
    u8::try_from(i + 1)
        .ok()
        .and_then(|i| PartyIndex::new(i).ok())
        .ok_or(InputError::CommitteeSize(usize::from(committee.n())))
}

impl fmt::Debug for DklsKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DklsKeyShare")
            .field("party", &self.party())
            .field("threshold", &self.threshold())
            .field("public_key", &hex::encode(self.public_key()))
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}
