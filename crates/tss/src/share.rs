//! What the ECDSA and FROST key shares have in common: one party's share of a key plus the
//! committee that holds the key, stored as versioned JSON.

use generic_ec::{Curve, Point};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::InputError;
use crate::party::{Committee, PartyId};
use crate::path::DerivationPath;

/// A library key share (`key_share::CoreKeyShare`) with its committee.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct CommitteeShare<E: Curve> {
    pub committee: Committee,
    pub share: key_share::CoreKeyShare<E>,
}

impl<E: Curve> CommitteeShare<E> {
    pub fn to_stored(&self, format: &'static str) -> Vec<u8> {
        codec::to_stored(format, 1, self)
    }

    /// Reads the stored form, checking that the share belongs to a key of this committee size.
    pub fn from_stored(format: &'static str, b: &[u8]) -> Result<Self, InputError> {
        let s: Self = codec::from_stored(format, 1, b)?;
        if s.share.n() != s.committee.n() {
            return Err(InputError::Stored {
                what: format,
                reason: "share and committee sizes differ".into(),
            });
        }
        Ok(s)
    }

    pub fn party(&self) -> PartyId {
        // i < n: the library validated the share, and n equals the committee size (checked
        // when read, true by construction after key generation)
        self.committee.parties()[usize::from(self.share.i)]
    }

    pub fn threshold(&self) -> u16 {
        self.share.min_signers()
    }

    pub fn chain_code(&self) -> Option<[u8; 32]> {
        self.share.chain_code
    }

    /// The public key at `path`, derived with `Hd`.
    pub fn child_point<Hd: hd_wallet::HdWallet<E>>(
        &self,
        path: &DerivationPath,
    ) -> Result<Point<E>, InputError> {
        if path.is_root() {
            return Ok(*self.share.shared_public_key);
        }
        let child = self
            .share
            .derive_child_public_key::<Hd, _>(path.indices().iter().copied())
            .map_err(|e| InputError::BadPath(format!("{e:?}")))?;
        Ok(child.public_key)
    }
}
