//! [`ApprovedRequest`]: proof, as a type, that every callback server approved one exact
//! request.

use mpc_wire::callback::{SignType, TX_INFO_SIGN_ALGORITHM, TX_INFO_TAP_SCRIPT_ROOT, TxInfo};

use crate::request::{
    Cryptography, KeyRefreshRequest, KeyRepairRequest, KeygenRequest, Request, SignAlgorithm,
    SignRequest,
};

/// A request every configured callback server approved (or that needed no approval because no
/// server is configured).
///
/// Only [`CallbackClient::check`](crate::CallbackClient::check) makes one: the fields are
/// private, there is no constructor, and it is neither `Clone` nor deserializable. Protocol
/// code takes it as the authority to run, and must present the parameters it is about to use
/// to [`authorizes_sign`](Self::authorizes_sign) or
/// [`authorizes_keygen`](Self::authorizes_keygen); anything that differs from what the
/// servers approved is refused.
#[derive(Debug)]
pub struct ApprovedRequest {
    request: Request,
    callback_id: String,
    approved_by: Vec<String>,
}

/// The parameters a signing run is about to use.
#[derive(Debug, Clone, Copy)]
pub struct SignParams<'a> {
    /// The scheme.
    pub algorithm: SignAlgorithm,
    /// What the payload is (1 transaction, 2 EIP-191/712 message, 3 raw data).
    pub sign_type: SignType,
    /// How a sign_type 2 message was hashed (`personal_sign`, `eth_signTypedData_v3`,
    /// `eth_signTypedData_v4`): must be the approved `tx_info.signAlgorithm`, and `None` exactly
    /// when the approved `tx_info` has none.
    pub message_method: Option<&'a str>,
    /// The Taproot script root the protocol tweaks with: must be the approved
    /// `tx_info.tapScriptRoot` (hex), and `None` exactly when the approved `tx_info` has none.
    pub tap_script_root: Option<[u8; 32]>,
    /// Root public key, hex, as sent in the check.
    pub public_key: &'a str,
    /// BIP32 path.
    pub path: &'a str,
    /// The exact bytes to be signed.
    pub digest: &'a [u8],
    /// The platform's business id.
    pub sino_id: &'a str,
    /// The caller's request id.
    pub request_id: &'a str,
}

/// The parameters a key generation is about to use.
#[derive(Debug, Clone, Copy)]
pub struct KeygenParams<'a> {
    /// Curve and scheme.
    pub cryptography: Cryptography,
    /// Threshold.
    pub t: u16,
    /// Number of parties.
    pub n: u16,
    /// The parties taking part, in the approved order.
    pub party_ids: &'a [String],
    /// The platform's business id.
    pub sino_id: &'a str,
    /// The caller's request id.
    pub request_id: &'a str,
}

/// The parameters a key refresh is about to use.
#[derive(Debug, Clone, Copy)]
pub struct KeyRefreshParams<'a> {
    /// Curve and scheme of the key.
    pub cryptography: Cryptography,
    /// Root public key, hex, as sent in the check.
    pub public_key: &'a str,
    /// Threshold.
    pub t: u16,
    /// Number of parties.
    pub n: u16,
    /// The committee's node ids, in party order.
    pub party_ids: &'a [String],
    /// The platform's id (the key id).
    pub sino_id: &'a str,
    /// The platform's id of the run.
    pub request_id: &'a str,
}

/// The parameters a key repair is about to use: the refresh every party runs (committee after
/// the repair) and the node that receives the rebuilt share.
#[derive(Debug, Clone, Copy)]
pub struct KeyRepairParams<'a> {
    /// The key, the committee after the repair, the run's ids.
    pub refresh: KeyRefreshParams<'a>,
    /// The node id that receives the rebuilt share.
    pub new_party_id: &'a str,
}

/// Why an approval does not cover what the protocol is about to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// A signature was approved and a key generation asked for, or the other way round.
    #[error("the approval is for a {approved}, not a {requested}")]
    Kind {
        /// What was approved.
        approved: &'static str,
        /// What the protocol asked for.
        requested: &'static str,
    },
    /// A parameter differs from the approved one.
    #[error("{0} differs from the approved request")]
    Field(&'static str),
}

impl ApprovedRequest {
    pub(crate) fn new(request: Request, callback_id: String, approved_by: Vec<String>) -> Self {
        ApprovedRequest {
            request,
            callback_id,
            approved_by,
        }
    }

    /// The request exactly as it was approved.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The `callback_id` the servers approved (empty when no server is configured).
    pub fn callback_id(&self) -> &str {
        &self.callback_id
    }

    /// Addresses of the servers that approved, in the order asked.
    pub fn approved_by(&self) -> &[String] {
        &self.approved_by
    }

    /// True when no callback server is configured and nothing was asked.
    pub fn without_callback(&self) -> bool {
        self.approved_by.is_empty()
    }

    /// Checks that a signing run with `params` is exactly what was approved, and returns the
    /// approved request.
    pub fn authorizes_sign(&self, params: SignParams<'_>) -> Result<&SignRequest, Mismatch> {
        let Request::Sign(s) = &self.request else {
            return Err(Mismatch::Kind {
                approved: self.kind(),
                requested: "signature",
            });
        };
        let method = tx_field(s.tx_info.as_ref(), TX_INFO_SIGN_ALGORITHM);
        let root = tx_field(s.tx_info.as_ref(), TX_INFO_TAP_SCRIPT_ROOT).map(|r| {
            r.map(|hex_root| {
                let mut b = [0u8; 32];
                hex::decode_to_slice(hex_root, &mut b).map(|()| b).ok()
            })
        });
        let checks = [
            (s.algorithm == params.algorithm, "algorithm"),
            (s.sign_type == params.sign_type, "sign_type"),
            (
                method
                    .as_ref()
                    .is_ok_and(|m| m.as_deref() == params.message_method),
                "tx_info.signAlgorithm",
            ),
            (
                root.is_ok_and(|r| r == params.tap_script_root.map(Some)),
                "tx_info.tapScriptRoot",
            ),
            (s.public_key == params.public_key, "public key"),
            (s.path == params.path, "derivation path"),
            (s.digest == params.digest, "digest"),
            (s.sino_id == params.sino_id, "sino_id"),
            (s.request_id == params.request_id, "request_id"),
        ];
        first_mismatch(&checks)?;
        Ok(s)
    }

    /// Checks that a key generation with `params` is exactly what was approved, and returns
    /// the approved request.
    pub fn authorizes_keygen(&self, params: KeygenParams<'_>) -> Result<&KeygenRequest, Mismatch> {
        let Request::Keygen(k) = &self.request else {
            return Err(Mismatch::Kind {
                approved: self.kind(),
                requested: "key generation",
            });
        };
        let checks = [
            (k.cryptography == params.cryptography, "cryptography"),
            (k.t == params.t, "threshold"),
            (k.n == params.n, "number of parties"),
            (k.party_ids == params.party_ids, "party ids"),
            (k.sino_id == params.sino_id, "sino_id"),
            (k.request_id == params.request_id, "request_id"),
        ];
        first_mismatch(&checks)?;
        Ok(k)
    }

    /// Checks that a key refresh with `params` is exactly what was approved, and returns the
    /// approved request.
    pub fn authorizes_key_refresh(
        &self,
        params: KeyRefreshParams<'_>,
    ) -> Result<&KeyRefreshRequest, Mismatch> {
        let Request::KeyRefresh(r) = &self.request else {
            return Err(Mismatch::Kind {
                approved: self.kind(),
                requested: "key refresh",
            });
        };
        refresh_matches(r, &params)?;
        Ok(r)
    }

    /// Checks that a key repair with `params` is exactly what was approved (the key, the
    /// committee after the repair, the new node, the run), and returns the approved request.
    pub fn authorizes_key_repair(
        &self,
        params: KeyRepairParams<'_>,
    ) -> Result<&KeyRepairRequest, Mismatch> {
        let Request::KeyRepair(r) = &self.request else {
            return Err(Mismatch::Kind {
                approved: self.kind(),
                requested: "key repair",
            });
        };
        refresh_matches(&r.refresh, &params.refresh)?;
        first_mismatch(&[(r.new_party_id == params.new_party_id, "new party id")])?;
        Ok(r)
    }

    fn kind(&self) -> &'static str {
        match self.request {
            Request::Keygen(_) => "key generation",
            Request::Sign(_) => "signature",
            Request::KeyRefresh(_) => "key refresh",
            Request::KeyRepair(_) => "key repair",
        }
    }
}

fn refresh_matches(r: &KeyRefreshRequest, params: &KeyRefreshParams<'_>) -> Result<(), Mismatch> {
    first_mismatch(&[
        (r.cryptography == params.cryptography, "cryptography"),
        (r.public_key == params.public_key, "public key"),
        (r.t == params.t, "threshold"),
        (r.n == params.n, "number of parties"),
        (r.party_ids == params.party_ids, "party ids"),
        (r.sino_id == params.sino_id, "sino_id"),
        (r.request_id == params.request_id, "request_id"),
    ])
}

/// A top-level string of the approved `tx_info` (`Ok(None)` without one); `Err` when it cannot
/// be read unambiguously, which matches nothing.
fn tx_field(tx: Option<&TxInfo>, key: &str) -> Result<Option<String>, ()> {
    match tx {
        None => Ok(None),
        Some(t) => t.string_field(key).map_err(|_| ()),
    }
}

fn first_mismatch(checks: &[(bool, &'static str)]) -> Result<(), Mismatch> {
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, field)) => Err(Mismatch::Field(field)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_request() -> SignRequest {
        SignRequest {
            algorithm: SignAlgorithm::Ecdsa,
            sign_type: SignType::Transaction,
            public_key: "02aa".into(),
            path: "m/1/1/60/0".into(),
            message: vec![1; 32],
            digest: vec![1; 32],
            tx_info: None,
            sino_id: "s".into(),
            request_id: "r".into(),
        }
    }

    fn params(s: &SignRequest) -> SignParams<'_> {
        SignParams {
            algorithm: s.algorithm,
            sign_type: s.sign_type,
            message_method: None,
            tap_script_root: None,
            public_key: &s.public_key,
            path: &s.path,
            digest: &s.digest,
            sino_id: &s.sino_id,
            request_id: &s.request_id,
        }
    }

    #[test]
    fn sign_binding() {
        let req = sign_request();
        let approved = ApprovedRequest::new(Request::Sign(req.clone()), "cb".into(), vec![]);
        assert!(approved.without_callback());
        assert_eq!(approved.authorizes_sign(params(&req)), Ok(&req));

        let other_digest = [2u8; 32];
        let cases: [(SignParams<'_>, &str); 6] = [
            (
                SignParams {
                    algorithm: SignAlgorithm::Bip340Schnorr,
                    ..params(&req)
                },
                "algorithm",
            ),
            (
                SignParams {
                    public_key: "03aa",
                    ..params(&req)
                },
                "public key",
            ),
            (
                SignParams {
                    path: "m/1/1/60/1",
                    ..params(&req)
                },
                "derivation path",
            ),
            (
                SignParams {
                    digest: &other_digest,
                    ..params(&req)
                },
                "digest",
            ),
            (
                SignParams {
                    sino_id: "s2",
                    ..params(&req)
                },
                "sino_id",
            ),
            (
                SignParams {
                    request_id: "",
                    ..params(&req)
                },
                "request_id",
            ),
        ];
        for (p, field) in cases {
            assert_eq!(approved.authorizes_sign(p), Err(Mismatch::Field(field)));
        }
        // What the payload is, how a message was hashed and the script root are bound too.
        for (p, field) in [
            (
                SignParams {
                    sign_type: SignType::Message,
                    ..params(&req)
                },
                "sign_type",
            ),
            (
                SignParams {
                    message_method: Some("personal_sign"),
                    ..params(&req)
                },
                "tx_info.signAlgorithm",
            ),
            (
                SignParams {
                    tap_script_root: Some([0x11; 32]),
                    ..params(&req)
                },
                "tx_info.tapScriptRoot",
            ),
        ] {
            assert_eq!(approved.authorizes_sign(p), Err(Mismatch::Field(field)));
        }
        assert!(matches!(
            approved.authorizes_keygen(KeygenParams {
                cryptography: Cryptography::EcdsaSecp256k1,
                t: 2,
                n: 3,
                party_ids: &[],
                sino_id: "s",
                request_id: "r",
            }),
            Err(Mismatch::Kind { .. })
        ));
    }

    #[test]
    fn sign_binding_of_tx_info_fields() {
        let root = [0xab; 32];
        let msg = SignRequest {
            algorithm: SignAlgorithm::Ecdsa,
            sign_type: SignType::Message,
            tx_info: Some(TxInfo::with_only(
                TX_INFO_SIGN_ALGORITHM,
                "eth_signTypedData_v4",
            )),
            ..sign_request()
        };
        let tap = SignRequest {
            algorithm: SignAlgorithm::Taproot,
            sign_type: SignType::RawData,
            tx_info: Some(
                TxInfo::from_json(
                    format!(r#"{{"to":"x","tapScriptRoot":"{}"}}"#, hex::encode(root)).as_bytes(),
                )
                .unwrap(),
            ),
            ..sign_request()
        };
        let approved_msg = ApprovedRequest::new(Request::Sign(msg.clone()), "cb".into(), vec![]);
        let approved_tap = ApprovedRequest::new(Request::Sign(tap.clone()), "cb".into(), vec![]);
        let ok_msg = SignParams {
            message_method: Some("eth_signTypedData_v4"),
            ..params(&msg)
        };
        let ok_tap = SignParams {
            tap_script_root: Some(root),
            ..params(&tap)
        };
        assert_eq!(approved_msg.authorizes_sign(ok_msg), Ok(&msg));
        assert_eq!(approved_tap.authorizes_sign(ok_tap), Ok(&tap));
        for (approved, p, field) in [
            (
                &approved_msg,
                SignParams {
                    message_method: Some("personal_sign"),
                    ..ok_msg
                },
                "tx_info.signAlgorithm",
            ),
            (
                &approved_msg,
                SignParams {
                    message_method: None,
                    ..ok_msg
                },
                "tx_info.signAlgorithm",
            ),
            (
                &approved_tap,
                SignParams {
                    tap_script_root: Some([0xac; 32]),
                    ..ok_tap
                },
                "tx_info.tapScriptRoot",
            ),
            (
                &approved_tap,
                SignParams {
                    tap_script_root: None,
                    ..ok_tap
                },
                "tx_info.tapScriptRoot",
            ),
        ] {
            assert_eq!(approved.authorizes_sign(p), Err(Mismatch::Field(field)));
        }
        // An approved tx_info that cannot be read unambiguously covers nothing.
        let twice = SignRequest {
            tx_info: Some(
                TxInfo::from_json(
                    br#"{"signAlgorithm":"eth_signTypedData_v4","signAlgorithm":"personal_sign"}"#,
                )
                .unwrap(),
            ),
            ..msg.clone()
        };
        let approved = ApprovedRequest::new(Request::Sign(twice.clone()), "cb".into(), vec![]);
        for m in ["eth_signTypedData_v4", "personal_sign"] {
            assert_eq!(
                approved.authorizes_sign(SignParams {
                    message_method: Some(m),
                    ..params(&twice)
                }),
                Err(Mismatch::Field("tx_info.signAlgorithm"))
            );
        }
    }

    #[test]
    fn keygen_binding() {
        let parties = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let req = KeygenRequest {
            cryptography: Cryptography::EcdsaSecp256k1,
            t: 2,
            n: 3,
            party_ids: parties.clone(),
            sino_id: "s".into(),
            request_id: "r".into(),
        };
        let approved = ApprovedRequest::new(
            Request::Keygen(req.clone()),
            "cb".into(),
            vec!["http://x".into()],
        );
        assert!(!approved.without_callback());
        let ok = KeygenParams {
            cryptography: Cryptography::EcdsaSecp256k1,
            t: 2,
            n: 3,
            party_ids: &parties,
            sino_id: "s",
            request_id: "r",
        };
        assert_eq!(approved.authorizes_keygen(ok), Ok(&req));
        let swapped = vec!["a".to_owned(), "c".to_owned(), "b".to_owned()];
        for (p, field) in [
            (
                KeygenParams {
                    cryptography: Cryptography::EddsaEd25519,
                    ..ok
                },
                "cryptography",
            ),
            (KeygenParams { t: 3, ..ok }, "threshold"),
            (KeygenParams { n: 4, ..ok }, "number of parties"),
            (
                KeygenParams {
                    party_ids: &swapped,
                    ..ok
                },
                "party ids",
            ),
            (KeygenParams { sino_id: "", ..ok }, "sino_id"),
            (
                KeygenParams {
                    request_id: "x",
                    ..ok
                },
                "request_id",
            ),
        ] {
            assert_eq!(approved.authorizes_keygen(p), Err(Mismatch::Field(field)));
        }
        let sign = sign_request();
        assert!(matches!(
            approved.authorizes_sign(params(&sign)),
            Err(Mismatch::Kind { .. })
        ));
    }

    /// A key-refresh approval covers exactly that key, committee and run; nothing else.
    #[test]
    fn key_refresh_binding() {
        let ids: Vec<String> = vec!["x".into(), "y".into(), "z".into()];
        let req = KeyRefreshRequest {
            cryptography: Cryptography::EcdsaSecp256k1,
            public_key: "02ab".into(),
            t: 2,
            n: 3,
            party_ids: ids.clone(),
            sino_id: "key_1".into(),
            request_id: "task_1".into(),
        };
        let approved = ApprovedRequest::new(Request::KeyRefresh(req.clone()), "cb".into(), vec![]);
        let good = KeyRefreshParams {
            cryptography: Cryptography::EcdsaSecp256k1,
            public_key: "02ab",
            t: 2,
            n: 3,
            party_ids: &ids,
            sino_id: "key_1",
            request_id: "task_1",
        };
        assert_eq!(approved.authorizes_key_refresh(good), Ok(&req));
        let other_ids: Vec<String> = vec!["x".into(), "y".into(), "w".into()];
        for (p, field) in [
            (
                KeyRefreshParams {
                    public_key: "02ac",
                    ..good
                },
                "public key",
            ),
            (KeyRefreshParams { t: 3, ..good }, "threshold"),
            (
                KeyRefreshParams {
                    party_ids: &other_ids,
                    ..good
                },
                "party ids",
            ),
            (
                KeyRefreshParams {
                    request_id: "task_2",
                    ..good
                },
                "request_id",
            ),
        ] {
            assert_eq!(
                approved.authorizes_key_refresh(p),
                Err(Mismatch::Field(field))
            );
        }
        // A refresh approval is not a signature or key generation approval.
        assert!(matches!(
            approved.authorizes_sign(params(&sign_request())),
            Err(Mismatch::Kind {
                approved: "key refresh",
                ..
            })
        ));
    }

    /// A key-repair approval covers that key, committee, new node and run only; a refresh
    /// approval is not a repair approval, nor the reverse.
    #[test]
    fn key_repair_binding() {
        let ids: Vec<String> = vec!["x".into(), "y".into(), "w".into()];
        let refresh = KeyRefreshRequest {
            cryptography: Cryptography::EcdsaSecp256k1,
            public_key: "02ab".into(),
            t: 2,
            n: 3,
            party_ids: ids.clone(),
            sino_id: "key_1".into(),
            request_id: "task_2".into(),
        };
        let req = KeyRepairRequest {
            refresh: refresh.clone(),
            new_party_id: "w".into(),
        };
        let approved = ApprovedRequest::new(Request::KeyRepair(req.clone()), "cb".into(), vec![]);
        let good = KeyRepairParams {
            refresh: KeyRefreshParams {
                cryptography: Cryptography::EcdsaSecp256k1,
                public_key: "02ab",
                t: 2,
                n: 3,
                party_ids: &ids,
                sino_id: "key_1",
                request_id: "task_2",
            },
            new_party_id: "w",
        };
        assert_eq!(approved.authorizes_key_repair(good), Ok(&req));
        assert_eq!(
            approved.authorizes_key_repair(KeyRepairParams {
                new_party_id: "y",
                ..good
            }),
            Err(Mismatch::Field("new party id"))
        );
        let other_ids: Vec<String> = vec!["x".into(), "y".into(), "v".into()];
        assert_eq!(
            approved.authorizes_key_repair(KeyRepairParams {
                refresh: KeyRefreshParams {
                    party_ids: &other_ids,
                    ..good.refresh
                },
                ..good
            }),
            Err(Mismatch::Field("party ids"))
        );
        assert!(matches!(
            approved.authorizes_key_refresh(good.refresh),
            Err(Mismatch::Kind {
                approved: "key repair",
                requested: "key refresh"
            })
        ));
        let refresh_only = ApprovedRequest::new(Request::KeyRefresh(refresh), "cb".into(), vec![]);
        assert!(matches!(
            refresh_only.authorizes_key_repair(good),
            Err(Mismatch::Kind {
                approved: "key refresh",
                requested: "key repair"
            })
        ));
    }
}
