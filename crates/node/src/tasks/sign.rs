//! Signing: the node computes what it signs from the task's payload ([`signed_bytes`]), asks the
//! callback about exactly that and checks the approval covers it (`authorizes_sign`), loads the
//! share, runs the signing protocol for the task's algorithm and answers the signature
//! (encrypted to `[encrypt-signature]` when configured), reporting it to the callback for the
//! types that report.
//!
//! The approval covers exactly what is signed: the sign_type must fit the payload
//! ([`message_method`]: 2 only with an EIP-191/712 message the node hashes itself, 1 and 3 only
//! with a digest or raw message), and the node writes into `tx_info` how it hashed a message
//! (`signAlgorithm`) and the Taproot script root it tweaks with (`tapScriptRoot`), refusing a
//! task whose `tx_info` says otherwise ([`bound_tx_info`]); `authorizes_sign` binds all three.

use std::str::FromStr;
use std::sync::{Arc, mpsc as std_mpsc};

use mpc_callback::mpc_wire::callback::{
    SignType, TX_INFO_SIGN_ALGORITHM, TX_INFO_TAP_SCRIPT_ROOT, TxInfo,
};
use mpc_callback::{Request, SignAlgorithm, SignParams, SignRequest};
use mpc_chains::SignMessageKind;
use mpc_transport::task::{Algorithm, Outcome, Payload, SignTask, Task};
use mpc_tss::dkls;
use mpc_tss::ecdsa::{self, EcdsaAuxInfo, EcdsaCoreShare, EcdsaKeyShare, SignInput};
use mpc_tss::frost::{self, EddsaKeyShare};
use mpc_tss::{DerivationPath, ExecutionId, PartyId};
use rand_core::OsRng;

use super::Runtime;
use super::admission::Plan;
use super::fail::RunFail;
use super::registry::{Control, RunMsg};
use super::wire::Wire;
use crate::store::StoredShare;

impl Runtime {
    pub(super) async fn sign(
        &self,
        task: &Task,
        s: &SignTask,
        plan: &Plan,
        rx: std_mpsc::Receiver<RunMsg>,
        control: &Arc<Control>,
    ) -> Result<Outcome, RunFail> {
        let sign_type = SignType::parse(&s.sign_type.to_string())
            .map_err(|e| RunFail::BadTask(e.to_string()))?;
        let method = message_method(sign_type, &s.payload).map_err(RunFail::BadTask)?;
        let path =
            DerivationPath::from_str(&s.path).map_err(|e| RunFail::BadTask(e.to_string()))?;
        let digest = signed_bytes(s).map_err(RunFail::BadTask)?;
        let script_root = match (&s.tap_script_root, s.algorithm) {
            (None, _) => None,
            (Some(r), Algorithm::Taproot) => Some(
                <[u8; 32]>::try_from(r.as_slice())
                    .map_err(|_| RunFail::BadTask("taproot script root is not 32 bytes".into()))?,
            ),
            (Some(_), _) => {
                return Err(RunFail::BadTask("a script root is only for taproot".into()));
            }
        };
        let tx_info =
            bound_tx_info(s.tx_info.as_deref(), method, script_root).map_err(RunFail::BadTask)?;
        let algorithm = match s.algorithm {
            Algorithm::Ecdsa => SignAlgorithm::Ecdsa,
            Algorithm::Eddsa => SignAlgorithm::Eddsa,
            Algorithm::Bip340 => SignAlgorithm::Bip340Schnorr,
            Algorithm::Taproot => SignAlgorithm::Taproot,
        };
        let public_key = hex::encode(&s.root_public_key);
        let request = Request::Sign(SignRequest {
            algorithm,
            sign_type,
            public_key: public_key.clone(),
            path: s.path.clone(),
            message: s.payload.message().to_vec(),
            digest: digest.clone(),
            tx_info,
            sino_id: task.sino_id.clone(),
            request_id: task.request_id.clone(),
        });
        let approved = self.ask_callback(plan, control, request).await?;
        approved
            .authorizes_sign(SignParams {
                algorithm,
                sign_type,
                message_method: method.map(SignMessageKind::as_str),
                tap_script_root: script_root,
                public_key: &public_key,
                path: &s.path,
                digest: &digest,
                sino_id: &task.sino_id,
                request_id: &task.request_id,
            })
            .map_err(|e| RunFail::Local(format!("approval does not cover the signature: {e}")))?;

        let (id, generation) = (s.key_id.clone(), s.generation.clone());
        let digest_hex = hex::encode(&digest);
        let key = self
            .blocking(move |inner| inner.key_for(&id, generation.as_deref()))
            .await?;
        let stored = &key.share;
        // The run's execution id was derived from the task's protocol; a share of another
        // protocol cannot take part (and must not be tried with the wrong library).
        if s.algorithm == Algorithm::Ecdsa && stored.ecdsa_protocol() != Some(s.ecdsa_protocol) {
            return Err(RunFail::BadTask(format!(
                "the task asks for a {} signature, but key {} is a {} key",
                s.ecdsa_protocol,
                s.key_id,
                stored
                    .ecdsa_protocol()
                    .map_or_else(|| stored.curve_name().to_owned(), |p| p.to_string())
            )));
        }
        let signers: Vec<PartyId> = plan.committee.parties().to_vec();
        let eid = plan.eids[0];
        let algo = s.algorithm;
        let root = s.root_public_key.clone();
        let v_offset = if sign_type == SignType::Message {
            27
        } else {
            0
        };
        let key = key.clone();
        let signature: Vec<u8> = self
            .on_thread(plan, control, rx, move |w| {
                let bad = |e: mpc_tss::InputError| RunFail::BadTask(e.to_string());
                let stored = &key.share;
                match (stored, algo) {
                    (
                        StoredShare::Secp256k1 { core, aux },
                        Algorithm::Ecdsa | Algorithm::Bip340 | Algorithm::Taproot,
                    ) => {
                        let core = EcdsaCoreShare::from_stored_bytes(core)
                            .map_err(|e| RunFail::Local(e.to_string()))?;
                        same_root(&core.public_key(), &root)?;
                        let d = digest32(&digest)?;
                        match algo {
                            Algorithm::Ecdsa => {
                                let aux = EcdsaAuxInfo::from_stored_bytes(aux)
                                    .map_err(|e| RunFail::Local(e.to_string()))?;
                                let share = EcdsaKeyShare::new(core, aux)
                                    .map_err(|e| RunFail::Local(e.to_string()))?;
                                let sess =
                                    ecdsa::sign(eid, &share, &signers, &path, SignInput::Digest(d))
                                        .map_err(bad)?;
                                Ok(w.drive(sess)?.to_rsv(v_offset).to_vec())
                            }
                            _ => schnorr(w, eid, &core, &signers, &path, &d, algo, script_root),
                        }
                    }
                    (
                        StoredShare::Dkls23 { .. },
                        Algorithm::Ecdsa | Algorithm::Bip340 | Algorithm::Taproot,
                    ) => {
                        // Decoded once per key and kept with the record (`KeyRecord`).
                        let local = |e: mpc_tss::InputError| RunFail::Local(e.to_string());
                        let not_dkls = || RunFail::Local("not a DKLs23 share".into());
                        let share = key.dkls().map_err(local)?.ok_or_else(not_dkls)?;
                        same_root(&share.public_key(), &root)?;
                        let d = digest32(&digest)?;
                        match algo {
                            Algorithm::Ecdsa => {
                                let sess =
                                    dkls::sign(eid, &share, &signers, &path, SignInput::Digest(d))
                                        .map_err(bad)?;
                                Ok(w.drive(sess)?.to_rsv(v_offset).to_vec())
                            }
                            _ => {
                                let core =
                                    key.dkls_schnorr().map_err(local)?.ok_or_else(not_dkls)?;
                                schnorr(w, eid, &core, &signers, &path, &d, algo, script_root)
                            }
                        }
                    }
                    (StoredShare::Ed25519 { share }, Algorithm::Eddsa) => {
                        let share = EddsaKeyShare::from_stored_bytes(share)
                            .map_err(|e| RunFail::Local(e.to_string()))?;
                        same_root(&share.public_key(), &root)?;
                        let sess = frost::eddsa_sign(eid, &share, &signers, &path, &digest)
                            .map_err(bad)?;
                        Ok(w.drive(sess)?.0.to_vec())
                    }
                    _ => Err(RunFail::BadTask(format!(
                        "algorithm {algo:?} does not fit the curve of key {}",
                        stored.curve_name()
                    ))),
                }
            })
            .await?;

        self.inner.audit.record(
            "signature",
            serde_json::json!({
                "taskId": task.task_id,
                "sinoId": task.sino_id,
                "requestId": task.request_id,
                "keyId": s.key_id,
                "algorithm": format!("{:?}", s.algorithm).to_lowercase(),
                "signType": sign_type.as_str(),
                "path": s.path,
                "digest": digest_hex,
            }),
        );
        let reports = sign_type.reports_signature();
        let outcome = match &self.inner.encrypt.public_key {
            Some(key) if reports => Outcome::Signed {
                signature: None,
                encrypted: Some(mpc_callback::mpc_wire::ecies::encrypt_hex(
                    key, &signature, &mut OsRng,
                )),
            },
            _ => Outcome::Signed {
                signature: Some(signature.clone()),
                encrypted: None,
            },
        };
        if reports {
            let me = self.clone();
            let task_id = task.task_id.clone();
            tokio::spawn(async move {
                if let Err(e) = me
                    .inner
                    .callback
                    .report_rawdata_signature(
                        &me.inner.identity,
                        &approved,
                        &signature,
                        &me.inner.encrypt,
                    )
                    .await
                {
                    tracing::warn!(task_id = %task_id, "signature result not reported to the callback: {e}");
                }
            });
        }
        Ok(outcome)
    }
}

/// Refuses a task whose root public key is not the stored share's.
pub(super) fn same_root(share_key: &[u8], task_root: &[u8]) -> Result<(), RunFail> {
    if share_key == task_root {
        Ok(())
    } else {
        Err(RunFail::BadTask(
            "the task's root public key is not this key's".into(),
        ))
    }
}

/// The 32-byte digest ECDSA, BIP340 and Taproot sign.
fn digest32(digest: &[u8]) -> Result<[u8; 32], RunFail> {
    digest
        .try_into()
        .map_err(|_| RunFail::BadTask("digest is not 32 bytes".into()))
}

/// A BIP340 or Taproot signature with the Schnorr form of a secp256k1 share (CGGMP's core
/// share, or a DKLs23 share converted).
#[allow(clippy::too_many_arguments)]
fn schnorr(
    w: &mut Wire,
    eid: ExecutionId,
    core: &EcdsaCoreShare,
    signers: &[PartyId],
    path: &DerivationPath,
    digest: &[u8; 32],
    algo: Algorithm,
    script_root: Option<[u8; 32]>,
) -> Result<Vec<u8>, RunFail> {
    let bad = |e: mpc_tss::InputError| RunFail::BadTask(e.to_string());
    match algo {
        Algorithm::Bip340 => {
            let sess = frost::bip340_sign(eid, core, signers, path, digest).map_err(bad)?;
            Ok(w.drive(sess)?.0.to_vec())
        }
        Algorithm::Taproot => {
            let sess =
                frost::taproot_sign(eid, core, signers, path, digest, script_root).map_err(bad)?;
            Ok(w.drive(sess)?.0.to_vec())
        }
        other => Err(RunFail::Local(format!("{other:?} is not a Schnorr scheme"))),
    }
}

/// The bytes the protocol signs, computed here from the payload: the EIP-191/712 digest for a
/// message, the digest as is, or the raw message for EdDSA.
fn signed_bytes(s: &SignTask) -> Result<Vec<u8>, String> {
    match (&s.payload, s.algorithm) {
        (Payload::SignMessage { kind, message }, Algorithm::Ecdsa) => {
            let kind = mpc_chains::SignMessageKind::from_str(kind).map_err(|e| e.to_string())?;
            let payload =
                mpc_chains::sign_message_payload(kind, message).map_err(|e| e.to_string())?;
            Ok(payload.digest().to_vec())
        }
        (Payload::Digest { digest }, _) => Ok(digest.to_vec()),
        (Payload::Message { message }, Algorithm::Eddsa) => Ok(message.clone()),
        (p, a) => Err(format!(
            "payload {} cannot be signed with {a:?}",
            payload_name(p)
        )),
    }
}

fn payload_name(p: &Payload) -> &'static str {
    match p {
        Payload::SignMessage { .. } => "sign_message",
        Payload::Digest { .. } => "digest",
        Payload::Message { .. } => "message",
    }
}

/// Whether the sign_type fits the payload, and for sign_type 2 how the message is hashed.
/// 2 is an EIP-191/712 message that this node hashes itself, so what the callback approves (a
/// message, shown whole) is what is signed; 1 and 3 carry a digest or a raw message, never a
/// message to hash. Any other pairing is refused: a "message" that is really a transaction
/// sighash would pass a policy that allows messages and restricts transfers.
fn message_method(
    sign_type: SignType,
    payload: &Payload,
) -> Result<Option<SignMessageKind>, String> {
    match (sign_type, payload) {
        (SignType::Message, Payload::SignMessage { kind, .. }) => SignMessageKind::from_str(kind)
            .map(Some)
            .map_err(|e| format!("sign_type 2: {e}")),
        (SignType::Message, p) => Err(format!(
            "sign_type 2 (EIP-191/712 message) with a {} payload: under sign_type 2 this node signs only a message it hashes itself",
            payload_name(p)
        )),
        (t, Payload::SignMessage { .. }) => Err(format!(
            "sign_type {} with an EIP-191/712 message: messages are sign_type 2",
            t.as_str()
        )),
        (_, Payload::Digest { .. } | Payload::Message { .. }) => Ok(None),
    }
}

/// The `tx_info` the callback sees: the task's, with `signAlgorithm` (how a sign_type 2 message
/// is hashed) and `tapScriptRoot` (the script root the Taproot key is tweaked with) written by
/// this node from the task. A task whose `tx_info` already names either differently, names one
/// the task does not have, or cannot be read unambiguously, is refused.
fn bound_tx_info(
    raw: Option<&str>,
    method: Option<SignMessageKind>,
    root: Option<[u8; 32]>,
) -> Result<Option<TxInfo>, String> {
    let mut tx = raw
        .map(|t| TxInfo::from_json(t.as_bytes()))
        .transpose()
        .map_err(|e| format!("tx_info: {e}"))?;
    let said = |tx: &Option<TxInfo>, key: &str| {
        tx.as_ref()
            .map(|t| t.string_field(key))
            .transpose()
            .map(Option::flatten)
            .map_err(|e| e.to_string())
    };
    match (method, said(&tx, TX_INFO_SIGN_ALGORITHM)?) {
        (Some(m), _) => {
            tx = Some(match tx {
                Some(t) => t
                    .with_string_field(TX_INFO_SIGN_ALGORITHM, m.as_str())
                    .map_err(|e| format!("{e}: the task's message is {m}"))?,
                None => TxInfo::with_only(TX_INFO_SIGN_ALGORITHM, m.as_str()),
            });
        }
        (None, Some(said)) => {
            return Err(format!(
                "tx_info.signAlgorithm is {said:?} but the task is not a sign_type 2 message"
            ));
        }
        (None, None) => {}
    }
    match (root, said(&tx, TX_INFO_TAP_SCRIPT_ROOT)?) {
        (Some(r), Some(said)) => {
            let mut b = [0u8; 32];
            if hex::decode_to_slice(&said, &mut b).is_err() || b != r {
                return Err(format!(
                    "tx_info.tapScriptRoot is {said:?} but the task tweaks with {}",
                    hex::encode(r)
                ));
            }
        }
        (Some(r), None) => {
            let hex_root = hex::encode(r);
            tx = Some(match tx {
                Some(t) => t
                    .with_string_field(TX_INFO_TAP_SCRIPT_ROOT, &hex_root)
                    .map_err(|e| e.to_string())?,
                None => TxInfo::with_only(TX_INFO_TAP_SCRIPT_ROOT, &hex_root),
            });
        }
        (None, Some(said)) => {
            return Err(format!(
                "tx_info.tapScriptRoot is {said:?} but the task tweaks with no script root"
            ));
        }
        (None, None) => {}
    }
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::test_support::sign_task;

    #[test]
    fn the_node_computes_what_it_signs() {
        let msg = Payload::SignMessage {
            kind: "personal_sign".into(),
            message: "hi".into(),
        };
        let want =
            mpc_chains::sign_message_payload(mpc_chains::SignMessageKind::PersonalSign, "hi")
                .unwrap()
                .digest();
        assert_eq!(
            signed_bytes(&sign_task(Algorithm::Ecdsa, msg.clone())).unwrap(),
            want
        );
        for a in [Algorithm::Eddsa, Algorithm::Bip340, Algorithm::Taproot] {
            assert!(signed_bytes(&sign_task(a, msg.clone())).is_err(), "{a:?}");
        }
        let d = Payload::Digest { digest: [5; 32] };
        for a in [
            Algorithm::Ecdsa,
            Algorithm::Bip340,
            Algorithm::Taproot,
            Algorithm::Eddsa,
        ] {
            assert_eq!(signed_bytes(&sign_task(a, d.clone())).unwrap(), vec![5; 32]);
        }
        let m = Payload::Message {
            message: b"raw".to_vec(),
        };
        assert_eq!(
            signed_bytes(&sign_task(Algorithm::Eddsa, m.clone())).unwrap(),
            b"raw"
        );
        assert!(signed_bytes(&sign_task(Algorithm::Ecdsa, m)).is_err());
        let bad = Payload::SignMessage {
            kind: "eth_sign".into(),
            message: "hi".into(),
        };
        assert!(signed_bytes(&sign_task(Algorithm::Ecdsa, bad)).is_err());
    }

    #[test]
    fn sign_type_must_fit_the_payload() {
        let msg = Payload::SignMessage {
            kind: "eth_signTypedData_v4".into(),
            message: "{}".into(),
        };
        let digest = Payload::Digest { digest: [7; 32] };
        let raw = Payload::Message {
            message: b"raw".to_vec(),
        };
        assert_eq!(
            message_method(SignType::Message, &msg),
            Ok(Some(SignMessageKind::TypedDataV4))
        );
        for ok in [SignType::Transaction, SignType::RawData] {
            assert_eq!(message_method(ok, &digest), Ok(None));
            assert_eq!(message_method(ok, &raw), Ok(None));
            let e = message_method(ok, &msg).unwrap_err();
            assert!(e.contains("messages are sign_type 2"), "{e}");
        }
        // The attack: a transaction sighash presented as a "message".
        for p in [&digest, &raw] {
            let e = message_method(SignType::Message, p).unwrap_err();
            assert!(e.contains("sign_type 2"), "{e}");
        }
        let unknown = Payload::SignMessage {
            kind: "eth_sign".into(),
            message: "hi".into(),
        };
        assert!(message_method(SignType::Message, &unknown).is_err());
    }

    #[test]
    fn the_node_writes_method_and_script_root_into_tx_info() {
        let r = [0x11; 32];
        let rh = hex::encode(r);
        let b = |raw: Option<&str>, m, root| {
            bound_tx_info(raw, m, root)
                .map(|t| t.map(|t| String::from_utf8(t.as_bytes().to_vec()).unwrap()))
        };
        let v4 = Some(SignMessageKind::TypedDataV4);
        assert_eq!(b(None, None, None), Ok(None));
        assert_eq!(
            b(None, v4, None),
            Ok(Some(r#"{"signAlgorithm":"eth_signTypedData_v4"}"#.into()))
        );
        assert_eq!(
            b(Some(r#"{ "to": "x" }"#), None, Some(r)),
            Ok(Some(format!(r#"{{"to":"x","tapScriptRoot":"{rh}"}}"#)))
        );
        // Agreeing values are kept as the platform wrote them (upper-case hex included).
        let upper = format!(r#"{{"tapScriptRoot":"{}"}}"#, rh.to_uppercase());
        assert_eq!(b(Some(&upper), None, Some(r)), Ok(Some(upper.clone())));
        assert_eq!(
            b(
                Some(r#"{"signAlgorithm":"eth_signTypedData_v4"}"#),
                v4,
                None
            ),
            Ok(Some(r#"{"signAlgorithm":"eth_signTypedData_v4"}"#.into()))
        );
        // Refused: a method or root that differs from the task's, one the task does not have,
        // one that cannot be read unambiguously.
        for (raw, m, root, want) in [
            (
                r#"{"signAlgorithm":"personal_sign"}"#.to_owned(),
                v4,
                None,
                "personal_sign",
            ),
            (
                r#"{"signAlgorithm":"personal_sign"}"#.to_owned(),
                None,
                None,
                "not a sign_type 2",
            ),
            (
                format!(r#"{{"tapScriptRoot":"{}"}}"#, hex::encode([0x12; 32])),
                None,
                Some(r),
                "tweaks with 1111",
            ),
            (
                format!(r#"{{"tapScriptRoot":"{rh}"}}"#),
                None,
                None,
                "no script root",
            ),
            (
                r#"{"tapScriptRoot":"zz"}"#.to_owned(),
                None,
                Some(r),
                "tweaks with",
            ),
            (
                format!(r#"{{"tapScriptRoot":"{rh}","tapScriptRoot":"{rh}"}}"#),
                None,
                Some(r),
                "more than once",
            ),
            (
                r#"{"signAlgorithm":null}"#.to_owned(),
                v4,
                None,
                "not a string",
            ),
            ("[]".to_owned(), v4, None, "not a JSON object"),
            ("{".to_owned(), None, None, "tx_info"),
        ] {
            let e = b(Some(&raw), m, root).unwrap_err();
            assert!(e.contains(want), "{raw}: {e}");
        }
    }
}
