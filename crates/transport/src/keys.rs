//! The node transport key (X25519) and its certificate.
//!
//! The certificate is the node identity key's ECDSA P-256 signature (SHA-256, hex DER as
//! [`mpc_wire::signature`] writes it) over
//! `"mpc-cosigner/transport-key/v1" ‖ node_id ‖ x25519_public`. A node id has a fixed length
//! (248 characters, checked before use), so the concatenation is unambiguous.

use std::fmt;

use mpc_wire::keys::{self as wire_keys, KeyError};
use mpc_wire::signature::{self, EcdsaSigner, SignatureError};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// Domain tag of transport-key certificates.
pub const TRANSPORT_KEY_DOMAIN: &[u8] = b"mpc-cosigner/transport-key/v1";

/// A node's long-lived X25519 transport secret. Zeroized on drop; `Debug` shows only the
/// public key.
pub struct TransportSecret(StaticSecret);

impl TransportSecret {
    /// Makes a new key pair.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        TransportSecret(StaticSecret::random_from_rng(rng))
    }

    /// Restores a key from the 32 bytes [`TransportSecret::to_bytes`] returned.
    pub fn from_bytes(bytes: &Zeroizing<[u8; 32]>) -> Self {
        TransportSecret(StaticSecret::from(**bytes))
    }

    /// The secret bytes, for the sealed store.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key.
    pub fn public(&self) -> [u8; 32] {
        PublicKey::from(&self.0).to_bytes()
    }

    /// Certifies this key under the node identity key.
    pub fn certify(&self, identity: &EcdsaSigner) -> TransportCert {
        let node_id = wire_keys::node_id(identity.verifying_key());
        let x25519_public = self.public();
        let signature = identity.sign_hex(&cert_message(&node_id, &x25519_public));
        TransportCert {
            node_id,
            x25519_public,
            signature,
        }
    }
}

impl fmt::Debug for TransportSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportSecret")
            .field("public", &hex::encode(self.public()))
            .finish_non_exhaustive()
    }
}

/// A transport public key signed by a node's identity key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportCert {
    /// The certifying node's id (holds its P-256 identity key).
    pub node_id: String,
    /// The X25519 public key.
    #[serde(with = "serde_bytes")]
    pub x25519_public: [u8; 32],
    /// Hex DER ECDSA P-256 signature by the identity key, see the module docs.
    pub signature: String,
}

/// A transport public key whose certificate verified for a given node id. The only way to
/// get one is [`verify_cert`], so holding one proves the check happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerTransportKey {
    node_id: String,
    public: [u8; 32],
}

impl PeerTransportKey {
    /// The node id the certificate was checked against.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The X25519 public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }
}

/// Why a transport certificate was refused. All of these mean the certificate's presenter
/// sent something invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The certificate names another node than the one bound to this party.
    #[error("transport certificate is for node {got:?}, expected {expected:?}")]
    WrongNode {
        /// The node id the caller expected.
        expected: String,
        /// The node id in the certificate.
        got: String,
    },
    /// The node id does not hold a valid P-256 key.
    #[error("transport certificate of node {node_id:?}: {source}")]
    NodeId {
        /// The node id in the certificate.
        node_id: String,
        /// Why it was refused.
        source: KeyError,
    },
    /// The signature does not verify under the node's key.
    #[error("transport certificate of node {node_id:?}: {source}")]
    Signature {
        /// The node id in the certificate.
        node_id: String,
        /// Why it was refused.
        source: SignatureError,
    },
}

/// Checks that `cert` is signed by the key inside `expected_node_id` and returns the key.
pub fn verify_cert(
    cert: &TransportCert,
    expected_node_id: &str,
) -> Result<PeerTransportKey, CertError> {
    if cert.node_id != expected_node_id {
        return Err(CertError::WrongNode {
            expected: expected_node_id.to_owned(),
            got: cert.node_id.clone(),
        });
    }
    let identity = wire_keys::verifying_key_from_node_id(&cert.node_id).map_err(|source| {
        CertError::NodeId {
            node_id: cert.node_id.clone(),
            source,
        }
    })?;
    signature::verify_hex(
        &identity,
        &cert_message(&cert.node_id, &cert.x25519_public),
        &cert.signature,
    )
    .map_err(|source| CertError::Signature {
        node_id: cert.node_id.clone(),
        source,
    })?;
    Ok(PeerTransportKey {
        node_id: cert.node_id.clone(),
        public: cert.x25519_public,
    })
}

fn cert_message(node_id: &str, x25519_public: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(TRANSPORT_KEY_DOMAIN.len() + node_id.len() + 32);
    m.extend_from_slice(TRANSPORT_KEY_DOMAIN);
    m.extend_from_slice(node_id.as_bytes());
    m.extend_from_slice(x25519_public);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn identity(b: u8) -> EcdsaSigner {
        EcdsaSigner::new(&mpc_wire::p256::ecdsa::SigningKey::from_slice(&[b; 32]).unwrap())
    }

    #[test]
    fn cert_round_trip_and_refusals() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let id = identity(1);
        let secret = TransportSecret::generate(&mut rng);
        let cert = secret.certify(&id);
        let node = wire_keys::node_id(id.verifying_key());
        let key = verify_cert(&cert, &node).unwrap();
        assert_eq!(key.public(), &secret.public());
        assert_eq!(key.node_id(), node);

        // A cert for another node id.
        let other = wire_keys::node_id(identity(2).verifying_key());
        assert!(matches!(
            verify_cert(&cert, &other),
            Err(CertError::WrongNode { .. })
        ));
        // Another node's cert relabelled with this node id.
        let mut relabelled = TransportSecret::generate(&mut rng).certify(&identity(2));
        relabelled.node_id = node.clone();
        assert!(matches!(
            verify_cert(&relabelled, &node),
            Err(CertError::Signature { .. })
        ));
        // Substituted public key.
        let mut swapped = cert.clone();
        swapped.x25519_public[0] ^= 1;
        assert!(matches!(
            verify_cert(&swapped, &node),
            Err(CertError::Signature { .. })
        ));
        // A node id that is not a key.
        let mut bad = cert.clone();
        bad.node_id = "sinoAAAA".into();
        assert!(matches!(
            verify_cert(&bad, "sinoAAAA"),
            Err(CertError::NodeId { .. })
        ));
    }

    #[test]
    fn secret_bytes_round_trip_and_debug_hides_secret() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let secret = TransportSecret::generate(&mut rng);
        let again = TransportSecret::from_bytes(&secret.to_bytes());
        assert_eq!(again.public(), secret.public());
        let dbg = format!("{secret:?}");
        assert!(!dbg.contains(&hex::encode(*secret.to_bytes())));
    }
}
