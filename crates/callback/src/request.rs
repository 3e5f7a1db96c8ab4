//! What the node asks the callback servers about: a key generation or a signature, described
//! by the values the protocol will then use.

use mpc_wire::callback::{Check, ExtraInfo, RequestType, SignType, TxInfo};

/// Curve and scheme of a key generation (`cryptography` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cryptography {
    /// `ecdsa-secp256k1`: CGGMP key generation (also used by BIP340 and Taproot signing).
    EcdsaSecp256k1,
    /// `eddsa-ed25519`: FROST key generation on ed25519.
    EddsaEd25519,
}

impl Cryptography {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Cryptography::EcdsaSecp256k1 => "ecdsa-secp256k1",
            Cryptography::EddsaEd25519 => "eddsa-ed25519",
        }
    }
}

/// Which signature the protocol will produce. Determines `request_type` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignAlgorithm {
    /// Threshold ECDSA on secp256k1 (`request_type` "sign").
    Ecdsa,
    /// FROST ed25519 (`request_type` "sign").
    Eddsa,
    /// Untweaked BIP340 Schnorr (`request_type` "bip340-schnorr-sign").
    Bip340Schnorr,
    /// BIP341 key-path Taproot (`request_type` "taproot-sign"; the script root travels in
    /// `tx_info.tapScriptRoot`).
    Taproot,
}

impl SignAlgorithm {
    /// The `request_type` the servers see.
    pub const fn request_type(self) -> RequestType {
        match self {
            SignAlgorithm::Ecdsa | SignAlgorithm::Eddsa => RequestType::Sign,
            SignAlgorithm::Bip340Schnorr => RequestType::Bip340SchnorrSign,
            SignAlgorithm::Taproot => RequestType::TaprootSign,
        }
    }
}

/// A key generation the node is about to take part in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeygenRequest {
    /// Curve and scheme.
    pub cryptography: Cryptography,
    /// Threshold: parties needed to sign.
    pub t: u16,
    /// Number of parties.
    pub n: u16,
    /// The node ids of the parties taking part, in party order (the guide: "Collection of node
    /// IDs involved in generating private keys").
    pub party_ids: Vec<String>,
    /// The platform's business id.
    pub sino_id: String,
    /// The caller's request id.
    pub request_id: String,
}

/// A signature the node is about to take part in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// The signature scheme.
    pub algorithm: SignAlgorithm,
    /// 1 transaction, 2 EIP-191/712 message, 3 raw data.
    pub sign_type: SignType,
    /// Root public key of the wallet, hex (sent as `public_key`).
    pub public_key: String,
    /// Non-hardened BIP32 path, e.g. `m/1/1/60/0`.
    pub path: String,
    /// The message as the platform gave it (sent hex-encoded as `message`, reported back in
    /// `/rawdata_signature`).
    pub message: Vec<u8>,
    /// The exact bytes the protocol will sign (for ECDSA the 32-byte prehash). The node derives
    /// it from the message; the approval is bound to it.
    pub digest: Vec<u8>,
    /// Transaction details as raw JSON (sent compacted as `tx_info`).
    pub tx_info: Option<TxInfo>,
    /// The platform's business id.
    pub sino_id: String,
    /// The caller's request id.
    pub request_id: String,
}

/// A refresh of an existing key's shares the node is about to take part in: same key, same
/// committee, new shares (`request_type` "key-refresh").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRefreshRequest {
    /// Curve and scheme of the key.
    pub cryptography: Cryptography,
    /// Root public key of the key, hex.
    pub public_key: String,
    /// Threshold.
    pub t: u16,
    /// Number of parties.
    pub n: u16,
    /// The node ids of the key's committee, in party order.
    pub party_ids: Vec<String>,
    /// The platform's id of the refresh (the key id).
    pub sino_id: String,
    /// The platform's id of this refresh run.
    pub request_id: String,
}

/// A repair of a DKLs23 key the node is about to take part in (`request_type` "key-repair"):
/// the parties that hold their shares rebuild the lost one of a party on the node
/// `new_party_id`, then every party refreshes. The fields of `refresh` describe the key and the
/// committee *after* the repair (the new node among `party_ids`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRepairRequest {
    /// The key, its committee after the repair and the run's ids.
    pub refresh: KeyRefreshRequest,
    /// The node id that receives the rebuilt share.
    pub new_party_id: String,
}

/// A request for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Key generation.
    Keygen(KeygenRequest),
    /// Signature.
    Sign(SignRequest),
    /// Key refresh.
    KeyRefresh(KeyRefreshRequest),
    /// Key repair.
    KeyRepair(KeyRepairRequest),
}

impl Request {
    /// The platform's business id.
    pub fn sino_id(&self) -> &str {
        match self {
            Request::Keygen(k) => &k.sino_id,
            Request::Sign(s) => &s.sino_id,
            Request::KeyRefresh(r) => &r.sino_id,
            Request::KeyRepair(r) => &r.refresh.sino_id,
        }
    }

    /// The caller's request id.
    pub fn request_id(&self) -> &str {
        match self {
            Request::Keygen(k) => &k.request_id,
            Request::Sign(s) => &s.request_id,
            Request::KeyRefresh(r) => &r.request_id,
            Request::KeyRepair(r) => &r.refresh.request_id,
        }
    }

    /// The `request_type` the servers see.
    pub fn request_type(&self) -> RequestType {
        match self {
            Request::Keygen(_) => RequestType::Keygen,
            Request::Sign(s) => s.algorithm.request_type(),
            Request::KeyRefresh(_) => RequestType::KeyRefresh,
            Request::KeyRepair(_) => RequestType::KeyRepair,
        }
    }

    fn extra_info(&self) -> ExtraInfo {
        ExtraInfo {
            sino_id: self.sino_id().to_owned(),
            request_id: self.request_id().to_owned(),
        }
    }

    /// The `/check` body for this request under `callback_id`.
    pub fn to_check(&self, callback_id: &str) -> Check {
        match self {
            Request::Keygen(k) => Check::keygen(
                callback_id,
                k.t,
                k.n,
                k.cryptography.as_str(),
                k.party_ids.clone(),
                self.extra_info(),
            ),
            Request::Sign(s) => Check::sign(
                callback_id,
                s.algorithm.request_type(),
                s.sign_type,
                s.public_key.clone(),
                s.path.clone(),
                hex::encode(&s.message),
                s.tx_info.clone(),
                self.extra_info(),
            ),
            Request::KeyRefresh(r) => Check::key_refresh(
                callback_id,
                r.t,
                r.n,
                r.cryptography.as_str(),
                r.public_key.clone(),
                r.party_ids.clone(),
                self.extra_info(),
            ),
            Request::KeyRepair(KeyRepairRequest {
                refresh: r,
                new_party_id,
            }) => Check::key_repair(
                callback_id,
                r.t,
                r.n,
                r.cryptography.as_str(),
                r.public_key.clone(),
                r.party_ids.clone(),
                new_party_id.clone(),
                self.extra_info(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_match_the_wire_forms() {
        let keygen = Request::Keygen(KeygenRequest {
            cryptography: Cryptography::EddsaEd25519,
            t: 2,
            n: 3,
            party_ids: vec!["a".into(), "b".into(), "c".into()],
            sino_id: "s".into(),
            request_id: String::new(),
        });
        assert_eq!(
            String::from_utf8(keygen.to_check("cb").to_go_json()).unwrap(),
            r#"{"callback_id":"cb","request_type":"keygen","request_detail":{"t":2,"n":3,"cryptography":"eddsa-ed25519","party_ids":["a","b","c"]},"extra_info":{"sino_id":"s"}}"#
        );
        let sign = Request::Sign(SignRequest {
            algorithm: SignAlgorithm::Taproot,
            sign_type: SignType::RawData,
            public_key: "02ab".into(),
            path: "m/1/1/0/0".into(),
            message: vec![0xde, 0xad],
            digest: vec![0xde, 0xad],
            tx_info: Some(TxInfo::from_json(br#"{ "to": "<x>" }"#).unwrap()),
            sino_id: "s".into(),
            request_id: "r".into(),
        });
        assert_eq!(sign.request_type(), RequestType::TaprootSign);
        assert_eq!(
            String::from_utf8(sign.to_check("cb").to_go_json()).unwrap(),
            r#"{"callback_id":"cb","request_type":"taproot-sign","request_detail":{"sign_type":"3","public_key":"02ab","path":"m/1/1/0/0","message":"dead","tx_info":{"to":"\u003cx\u003e"}},"extra_info":{"sino_id":"s","request_id":"r"}}"#
        );
    }

    /// `key-refresh`: the key, its threshold and size, its curve and committee (Go's field
    /// order: t, n, cryptography, party_ids, public_key).
    #[test]
    fn key_refresh_on_the_wire() {
        let r = Request::KeyRefresh(KeyRefreshRequest {
            cryptography: Cryptography::EcdsaSecp256k1,
            public_key: "02ab".into(),
            t: 2,
            n: 3,
            party_ids: vec!["x".into(), "y".into(), "z".into()],
            sino_id: "key_1".into(),
            request_id: "task_1".into(),
        });
        assert_eq!(r.request_type(), RequestType::KeyRefresh);
        assert_eq!(
            String::from_utf8(r.to_check("cb").to_go_json()).unwrap(),
            r#"{"callback_id":"cb","request_type":"key-refresh","request_detail":{"t":2,"n":3,"cryptography":"ecdsa-secp256k1","party_ids":["x","y","z"],"public_key":"02ab"},"extra_info":{"sino_id":"key_1","request_id":"task_1"}}"#
        );
    }

    /// `key-repair`: the refresh's fields (committee after the repair) and, last, the node
    /// that receives the rebuilt share.
    #[test]
    fn key_repair_on_the_wire() {
        let r = Request::KeyRepair(KeyRepairRequest {
            refresh: KeyRefreshRequest {
                cryptography: Cryptography::EcdsaSecp256k1,
                public_key: "02ab".into(),
                t: 2,
                n: 3,
                party_ids: vec!["x".into(), "y".into(), "w".into()],
                sino_id: "key_1".into(),
                request_id: "task_2".into(),
            },
            new_party_id: "w".into(),
        });
        assert_eq!(r.request_type(), RequestType::KeyRepair);
        let json = r.to_check("cb").to_go_json();
        assert_eq!(
            String::from_utf8(json.clone()).unwrap(),
            r#"{"callback_id":"cb","request_type":"key-repair","request_detail":{"t":2,"n":3,"cryptography":"ecdsa-secp256k1","party_ids":["x","y","w"],"public_key":"02ab","new_party_id":"w"},"extra_info":{"sino_id":"key_1","request_id":"task_2"}}"#
        );
        let back = Check::from_json(&json).unwrap();
        assert_eq!(back.request_detail.new_party_id, "w");
        assert_eq!(back, r.to_check("cb"));
    }

    /// The shapes the node builds for issue 10: node ids in `party_ids`, the hashing method and
    /// the Taproot script root in `tx_info` (appended by the node, Go's escaping).
    #[test]
    fn node_ids_method_and_script_root_on_the_wire() {
        use mpc_wire::callback::{TX_INFO_SIGN_ALGORITHM, TX_INFO_TAP_SCRIPT_ROOT};
        let ids: Vec<String> = [1u8, 2]
            .iter()
            .map(|s| {
                mpc_wire::keys::node_id(
                    p256::ecdsa::SigningKey::from_slice(&[*s; 32])
                        .unwrap()
                        .verifying_key(),
                )
            })
            .collect();
        let keygen = Request::Keygen(KeygenRequest {
            cryptography: Cryptography::EcdsaSecp256k1,
            t: 2,
            n: 2,
            party_ids: ids.clone(),
            sino_id: "s".into(),
            request_id: "r".into(),
        });
        assert_eq!(
            String::from_utf8(keygen.to_check("cb").to_go_json()).unwrap(),
            format!(
                r#"{{"callback_id":"cb","request_type":"keygen","request_detail":{{"t":2,"n":2,"cryptography":"ecdsa-secp256k1","party_ids":["{}","{}"]}},"extra_info":{{"sino_id":"s","request_id":"r"}}}}"#,
                ids[0], ids[1]
            )
        );
        let message = Request::Sign(SignRequest {
            algorithm: SignAlgorithm::Ecdsa,
            sign_type: SignType::Message,
            public_key: "02ab".into(),
            path: "m/1/1/60/0".into(),
            message: b"hi".to_vec(),
            digest: vec![0; 32],
            tx_info: Some(TxInfo::with_only(TX_INFO_SIGN_ALGORITHM, "personal_sign")),
            sino_id: "s".into(),
            request_id: "r".into(),
        });
        assert_eq!(
            String::from_utf8(message.to_check("cb").to_go_json()).unwrap(),
            r#"{"callback_id":"cb","request_type":"sign","request_detail":{"sign_type":"2","public_key":"02ab","path":"m/1/1/60/0","message":"6869","tx_info":{"signAlgorithm":"personal_sign"}},"extra_info":{"sino_id":"s","request_id":"r"}}"#
        );
        let taproot = Request::Sign(SignRequest {
            algorithm: SignAlgorithm::Taproot,
            sign_type: SignType::Transaction,
            message: vec![0xab; 32],
            digest: vec![0xab; 32],
            tx_info: Some(
                TxInfo::from_json(br#"{"to":"bc1p"}"#)
                    .unwrap()
                    .with_string_field(TX_INFO_TAP_SCRIPT_ROOT, &"11".repeat(32))
                    .unwrap(),
            ),
            ..match message {
                Request::Sign(s) => s,
                _ => unreachable!(),
            }
        });
        assert_eq!(
            String::from_utf8(taproot.to_check("cb").to_go_json()).unwrap(),
            format!(
                r#"{{"callback_id":"cb","request_type":"taproot-sign","request_detail":{{"sign_type":"1","public_key":"02ab","path":"m/1/1/60/0","message":"{}","tx_info":{{"to":"bc1p","tapScriptRoot":"{}"}}}},"extra_info":{{"sino_id":"s","request_id":"r"}}}}"#,
                "ab".repeat(32),
                "11".repeat(32)
            )
        );
    }
}
