//! What the coordinator hands to the signers: the exact preimage bytes, the hash function the
//! signers apply to them, and the resulting 32-byte digest.

use crate::hash::keccak256;

/// The hash function that turns a [`SignPayload`]'s preimage into its digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashKind {
    /// Ethereum's Keccak-256.
    Keccak256,
}

impl HashKind {
    /// Hashes `preimage` with this function.
    pub fn hash(self, preimage: &[u8]) -> [u8; 32] {
        match self {
            HashKind::Keccak256 => keccak256(preimage),
        }
    }
}

/// Exact bytes to sign and their digest. The digest is always `hash(preimage)`: the fields are
/// private so the two cannot drift apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignPayload {
    hash: HashKind,
    preimage: Vec<u8>,
    digest: [u8; 32],
}

impl SignPayload {
    /// Hashes `preimage` with `hash`.
    pub fn new(hash: HashKind, preimage: Vec<u8>) -> Self {
        let digest = hash.hash(&preimage);
        SignPayload {
            hash,
            preimage,
            digest,
        }
    }

    /// The hash function the signers apply to the preimage.
    pub fn hash_kind(&self) -> HashKind {
        self.hash
    }

    /// The exact bytes whose hash is signed.
    pub fn preimage(&self) -> &[u8] {
        &self.preimage
    }

    /// The 32-byte digest that the signature is over.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Splits into `(hash kind, preimage, digest)`.
    pub fn into_parts(self) -> (HashKind, Vec<u8>, [u8; 32]) {
        (self.hash, self.preimage, self.digest)
    }
}
