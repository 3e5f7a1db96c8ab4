//! The node's P-256 identity: created at `init`, kept as a secret record, published as the node
//! id and PEM public key.
//!
//! * secret: table [`tables::NODE_IDENTITY`], key `p256`, value the 32-byte scalar;
//! * public metadata (readable while sealed, authenticated under the data key when unsealed):
//!   [`public_keys::NODE_ID`] = `"sino" + Base64(lowercase hex(DER SPKI))` and
//!   [`public_keys::PUBLIC_KEY`] = lowercase hex of the DER SPKI.

use mpc_keystore::{Batch, public_keys, tables};
use mpc_wire::keys;
use p256::SecretKey;
use p256::ecdsa::VerifyingKey;
use rand_core::OsRng;
use zeroize::Zeroizing;

/// Record key of the identity scalar in [`tables::NODE_IDENTITY`].
pub const IDENTITY_RECORD: &[u8] = b"p256";

/// A freshly generated identity, ready to be written with the store's first write.
pub struct NewIdentity {
    /// The records to write at init (secret scalar + public metadata).
    pub batch: Batch,
    /// The node id.
    pub node_id: String,
    /// The public key as PEM.
    pub public_key_pem: String,
}

impl std::fmt::Debug for NewIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewIdentity")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Generates a P-256 key from the OS CSPRNG and the batch that stores it.
pub fn generate() -> NewIdentity {
    let secret = SecretKey::random(&mut OsRng);
    let vk = VerifyingKey::from(secret.public_key());
    let node_id = keys::node_id(&vk);
    let mut batch = Batch::new();
    // The batch copies the scalar into a zeroizing buffer; our copy is zeroized on drop too.
    let scalar = Zeroizing::new(secret.to_bytes());
    batch.put(tables::NODE_IDENTITY, IDENTITY_RECORD, &scalar[..]);
    batch.put_public(public_keys::NODE_ID, node_id.as_bytes());
    batch.put_public(public_keys::PUBLIC_KEY, keys::api_key_hex(&vk).as_bytes());
    NewIdentity {
        batch,
        node_id,
        public_key_pem: keys::public_key_pem(&vk),
    }
}

/// PEM of a public key stored as hex DER SPKI; `None` if it does not parse.
pub fn pem_from_hex(hex_spki: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(hex_spki).ok()?;
    let vk = keys::verifying_key_from_api_key_hex(text).ok()?;
    Some(keys::public_key_pem(&vk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_matches_public_key() {
        let id = generate();
        assert_eq!(id.node_id.len(), keys::NODE_ID_LEN);
        let vk = keys::verifying_key_from_node_id(&id.node_id).unwrap();
        assert_eq!(keys::public_key_pem(&vk), id.public_key_pem);
        let hex = keys::api_key_hex(&vk);
        assert_eq!(pem_from_hex(hex.as_bytes()).unwrap(), id.public_key_pem);
        assert!(pem_from_hex(b"zz").is_none());
    }
}
