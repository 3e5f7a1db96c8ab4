//! The proxy's challenge/response authentication of a node (docs/transport.md, "Node ↔ proxy
//! connection").
//!
//! The proxy sends a [`Challenge`] with 32 random bytes; the node answers with a [`Hello`]
//! holding its node id, its transport certificate and an ECDSA P-256 signature (SHA-256, hex
//! DER) over `"mpc-cosigner/proxy-auth/v1" ‖ nonce ‖ tls_exporter`, where `tls_exporter` is 32
//! bytes of TLS keying material exported with label [`TLS_EXPORTER_LABEL`] (RFC 5705 / RFC 8446
//! §7.5). Both sides export it from their own end of the TLS session, so a relayed answer does
//! not verify on another session.
//!
//! Whether the node is bound to an organization is the proxy's decision, outside this crate.

use mpc_wire::keys::{self as wire_keys, KeyError};
use mpc_wire::signature::{self, EcdsaSigner, SignatureError};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::keys::{self, CertError, PeerTransportKey, TransportCert};

/// Domain tag of the proxy-authentication signature.
pub const PROXY_AUTH_DOMAIN: &[u8] = b"mpc-cosigner/proxy-auth/v1";
/// Label for the TLS keying-material exporter (32 bytes, no context).
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-mpc-cosigner-proxy-auth";
/// Version of the challenge this build sends and answers.
pub const CHALLENGE_VERSION: u8 = 1;

/// Proxy → node: a fresh random nonce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// [`CHALLENGE_VERSION`].
    pub version: u8,
    /// 32 random bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 32],
}

impl Challenge {
    /// A new challenge with a random nonce.
    pub fn new<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut nonce = [0u8; 32];
        rng.fill_bytes(&mut nonce);
        Challenge {
            version: CHALLENGE_VERSION,
            nonce,
        }
    }
}

/// Node → proxy: the answer to a [`Challenge`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The node id (holds the node's P-256 identity key).
    pub node_id: String,
    /// The node's transport certificate, for the coordinator to hand to committees.
    pub transport_cert: TransportCert,
    /// Hex DER ECDSA P-256 signature, see the module docs.
    pub signature: String,
}

/// Node side: answers `challenge` on the TLS session whose exporter value is `tls_exporter`.
pub fn hello(
    identity: &EcdsaSigner,
    challenge: &Challenge,
    tls_exporter: &[u8; 32],
    transport_cert: TransportCert,
) -> Hello {
    let node_id = wire_keys::node_id(identity.verifying_key());
    let signature = identity.sign_hex(&auth_message(&challenge.nonce, tls_exporter));
    Hello {
        node_id,
        transport_cert,
        signature,
    }
}

/// Proof that a connection belongs to a node: made only by [`verify_hello`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedNode {
    node_id: String,
    transport_key: PeerTransportKey,
    transport_cert: TransportCert,
}

impl AuthenticatedNode {
    /// The authenticated node id; the proxy sets `from` of the connection's frames to it.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The node's verified transport key.
    pub fn transport_key(&self) -> &PeerTransportKey {
        &self.transport_key
    }

    /// The certificate itself, for the coordinator to store and hand on.
    pub fn transport_cert(&self) -> &TransportCert {
        &self.transport_cert
    }
}

/// What was wrong with a [`Hello`] (always the connecting peer's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFault {
    /// The challenge is of a version this build does not speak (a local misuse if the
    /// challenge came from this proxy).
    #[error("challenge version {0} is not supported")]
    ChallengeVersion(u8),
    /// The node id does not hold a valid P-256 key.
    #[error("node id: {0}")]
    NodeId(KeyError),
    /// The signature does not verify for this challenge and TLS session.
    #[error("bad signature: {0}")]
    Signature(SignatureError),
    /// The transport certificate is invalid or for another node.
    #[error("transport certificate: {0}")]
    Cert(CertError),
}

/// A refused [`Hello`], naming the node id it claimed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node {claimed_node_id:?} failed authentication: {fault}")]
pub struct AuthError {
    /// The node id the hello claimed (unauthenticated; may be garbage).
    pub claimed_node_id: String,
    /// What was wrong.
    pub fault: AuthFault,
}

/// Proxy side: checks the key inside the node id, the signature over this challenge and TLS
/// session, and the transport certificate.
pub fn verify_hello(
    hello: &Hello,
    challenge: &Challenge,
    tls_exporter: &[u8; 32],
) -> Result<AuthenticatedNode, AuthError> {
    let fail = |fault| AuthError {
        claimed_node_id: hello.node_id.clone(),
        fault,
    };
    if challenge.version != CHALLENGE_VERSION {
        return Err(fail(AuthFault::ChallengeVersion(challenge.version)));
    }
    let key = wire_keys::verifying_key_from_node_id(&hello.node_id)
        .map_err(|e| fail(AuthFault::NodeId(e)))?;
    signature::verify_hex(
        &key,
        &auth_message(&challenge.nonce, tls_exporter),
        &hello.signature,
    )
    .map_err(|e| fail(AuthFault::Signature(e)))?;
    let transport_key = keys::verify_cert(&hello.transport_cert, &hello.node_id)
        .map_err(|e| fail(AuthFault::Cert(e)))?;
    Ok(AuthenticatedNode {
        node_id: hello.node_id.clone(),
        transport_key,
        transport_cert: hello.transport_cert.clone(),
    })
}

fn auth_message(nonce: &[u8; 32], tls_exporter: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(PROXY_AUTH_DOMAIN.len() + 64);
    m.extend_from_slice(PROXY_AUTH_DOMAIN);
    m.extend_from_slice(nonce);
    m.extend_from_slice(tls_exporter);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::TransportSecret;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn setup() -> (ChaCha20Rng, EcdsaSigner, TransportCert, Challenge) {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let id = EcdsaSigner::new(&mpc_wire::p256::ecdsa::SigningKey::random(&mut rng));
        let cert = TransportSecret::generate(&mut rng).certify(&id);
        let challenge = Challenge::new(&mut rng);
        (rng, id, cert, challenge)
    }

    #[test]
    fn good_hello() {
        let (_, id, cert, ch) = setup();
        let h = hello(&id, &ch, &[9; 32], cert.clone());
        let node = verify_hello(&h, &ch, &[9; 32]).unwrap();
        assert_eq!(node.node_id(), wire_keys::node_id(id.verifying_key()));
        assert_eq!(node.transport_cert(), &cert);
        assert_eq!(node.transport_key().public(), &cert.x25519_public);
    }

    #[test]
    fn wrong_nonce_or_exporter() {
        let (mut rng, id, cert, ch) = setup();
        let h = hello(&id, &ch, &[9; 32], cert);
        let other = Challenge::new(&mut rng);
        let e = verify_hello(&h, &other, &[9; 32]).unwrap_err();
        assert_eq!(e.fault, AuthFault::Signature(SignatureError::Invalid));
        assert_eq!(e.claimed_node_id, h.node_id);
        let e = verify_hello(&h, &ch, &[8; 32]).unwrap_err();
        assert_eq!(e.fault, AuthFault::Signature(SignatureError::Invalid));
    }

    #[test]
    fn node_id_with_another_key() {
        let (mut rng, id, cert, ch) = setup();
        let mut h = hello(&id, &ch, &[9; 32], cert);
        let other = EcdsaSigner::new(&mpc_wire::p256::ecdsa::SigningKey::random(&mut rng));
        h.node_id = wire_keys::node_id(other.verifying_key());
        let e = verify_hello(&h, &ch, &[9; 32]).unwrap_err();
        assert_eq!(e.fault, AuthFault::Signature(SignatureError::Invalid));
    }

    #[test]
    fn cert_of_another_node() {
        let (mut rng, id, _, ch) = setup();
        let other = EcdsaSigner::new(&mpc_wire::p256::ecdsa::SigningKey::random(&mut rng));
        let foreign = TransportSecret::generate(&mut rng).certify(&other);
        let h = hello(&id, &ch, &[9; 32], foreign);
        let e = verify_hello(&h, &ch, &[9; 32]).unwrap_err();
        assert!(matches!(
            e.fault,
            AuthFault::Cert(CertError::WrongNode { .. })
        ));
    }

    #[test]
    fn garbage() {
        let (_, id, cert, ch) = setup();
        let good = hello(&id, &ch, &[9; 32], cert);
        let mut h = good.clone();
        h.node_id = "not a node id".into();
        assert!(matches!(
            verify_hello(&h, &ch, &[9; 32]).unwrap_err().fault,
            AuthFault::NodeId(_)
        ));
        for (sig, want) in [
            ("", SignatureError::Missing),
            ("zz", SignatureError::NotHex),
            ("3000", SignatureError::NotDer),
        ] {
            let mut h = good.clone();
            h.signature = sig.into();
            assert_eq!(
                verify_hello(&h, &ch, &[9; 32]).unwrap_err().fault,
                AuthFault::Signature(want)
            );
        }
        let mut old = ch.clone();
        old.version = 2;
        assert_eq!(
            verify_hello(&good, &old, &[9; 32]).unwrap_err().fault,
            AuthFault::ChallengeVersion(2)
        );
    }
}
