//! Signing: the node computes what it signs from the task's payload ([`signed_bytes`]), asks the
//! callback about exactly that and checks the approval covers it (`authorizes_sign`), loads the
//! share, runs the signing protocol for the task's algorithm and answers the signature
//! (encrypted to `[encrypt-signature]` when configured), reporting it to the callback for the
//! types that report.

use std::str::FromStr;
use std::sync::{Arc, mpsc as std_mpsc};

use mpc_callback::mpc_wire::callback::{SignType, TxInfo};
use mpc_callback::{Request, SignAlgorithm, SignParams, SignRequest};
use mpc_keystore::tables;
use mpc_transport::task::{Algorithm, Outcome, Payload, SignTask, Task};
use mpc_tss::ecdsa::{self, EcdsaAuxInfo, EcdsaCoreShare, EcdsaKeyShare, SignInput};
use mpc_tss::frost::{self, EddsaKeyShare};
use mpc_tss::{DerivationPath, PartyId};
use rand_core::OsRng;

use super::Runtime;
use super::admission::Plan;
use super::fail::RunFail;
use super::registry::{Control, RunMsg};
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
        let tx_info = s
            .tx_info
            .as_ref()
            .map(|t| TxInfo::from_json(t.as_bytes()))
            .transpose()
            .map_err(|e| RunFail::BadTask(format!("tx_info: {e}")))?;
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
                public_key: &public_key,
                path: &s.path,
                digest: &digest,
                sino_id: &task.sino_id,
                request_id: &task.request_id,
            })
            .map_err(|e| RunFail::Local(format!("approval does not cover the signature: {e}")))?;

        let id = s.key_id.clone();
        let stored = self
            .blocking(move |inner| {
                let bytes = inner
                    .store
                    .get(tables::KEY_SHARES, id.as_bytes())?
                    .ok_or_else(|| RunFail::BadTask(format!("unknown key {id}")))?;
                Ok(StoredShare::from_bytes(&id, &bytes)?)
            })
            .await?;
        let signers: Vec<PartyId> = plan.committee.parties().to_vec();
        let eid = plan.eids[0];
        let algo = s.algorithm;
        let root = s.root_public_key.clone();
        let v_offset = if sign_type == SignType::Message {
            27
        } else {
            0
        };
        let signature: Vec<u8> = self
            .on_thread(plan, control, rx, move |w| {
                let bad = |e: mpc_tss::InputError| RunFail::BadTask(e.to_string());
                match (&stored, algo) {
                    (
                        StoredShare::Secp256k1 { core, aux },
                        Algorithm::Ecdsa | Algorithm::Bip340 | Algorithm::Taproot,
                    ) => {
                        let core = EcdsaCoreShare::from_stored_bytes(core)
                            .map_err(|e| RunFail::Local(e.to_string()))?;
                        if core.public_key()[..] != root[..] {
                            return Err(RunFail::BadTask(
                                "the task's root public key is not this key's".into(),
                            ));
                        }
                        let d: [u8; 32] = digest
                            .as_slice()
                            .try_into()
                            .map_err(|_| RunFail::BadTask("digest is not 32 bytes".into()))?;
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
                            Algorithm::Bip340 => {
                                let sess = frost::bip340_sign(eid, &core, &signers, &path, &d)
                                    .map_err(bad)?;
                                Ok(w.drive(sess)?.0.to_vec())
                            }
                            _ => {
                                let sess = frost::taproot_sign(
                                    eid,
                                    &core,
                                    &signers,
                                    &path,
                                    &d,
                                    script_root,
                                )
                                .map_err(bad)?;
                                Ok(w.drive(sess)?.0.to_vec())
                            }
                        }
                    }
                    (StoredShare::Ed25519 { share }, Algorithm::Eddsa) => {
                        let share = EddsaKeyShare::from_stored_bytes(share)
                            .map_err(|e| RunFail::Local(e.to_string()))?;
                        if share.public_key()[..] != root[..] {
                            return Err(RunFail::BadTask(
                                "the task's root public key is not this key's".into(),
                            ));
                        }
                        let sess = frost::eddsa_sign(eid, &share, &signers, &path, &digest)
                            .map_err(bad)?;
                        Ok(w.drive(sess)?.0.to_vec())
                    }
                    _ => Err(RunFail::BadTask(format!(
                        "algorithm {algo:?} does not fit the curve of key {}",
                        plan_key(&stored)
                    ))),
                }
            })
            .await?;

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

fn plan_key(s: &StoredShare) -> &'static str {
    match s {
        StoredShare::Secp256k1 { .. } => "secp256k1",
        StoredShare::Ed25519 { .. } => "ed25519",
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
            match p {
                Payload::SignMessage { .. } => "sign_message",
                Payload::Digest { .. } => "digest",
                Payload::Message { .. } => "message",
            }
        )),
    }
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
}
