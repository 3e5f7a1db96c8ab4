//! A party that sends a malformed, replayed, or wrong-session message, an invalid proof, or
//! different broadcasts to different parties makes the run abort with an error naming it
//! (where the protocol can tell).

use mpc_tss::ecdsa::{self, KnownMessage, MessageHash, SignInput};
use mpc_tss::sim::{self, SimError};
use mpc_tss::{Envelope, Misbehaviour, PartyId, ProtocolKind, Session, SessionError};

use crate::common::*;

type Sig = ecdsa::EcdsaSignature;
type SignMsg = cggmp24::signing::msg::Msg<cggmp24::generic_ec::curves::Secp256k1, sha2::Sha256>;

fn sign_sessions(signers: &str, tag: &str) -> Vec<Session<Sig>> {
    let w = world();
    let shares = key_shares(&w.ecdsa2, &w.aux);
    let signers = ps(signers);
    let e = eid(ProtocolKind::EcdsaSign, tag, &signers);
    let input = SignInput::Digest(sha256(tag.as_bytes()));
    signers
        .iter()
        .map(|s| ecdsa::sign(e, &shares[s], &signers, &path("m"), input.clone()).unwrap())
        .collect()
}

fn failure<O: std::fmt::Debug>(r: Result<sim::SimOutcome<O>, SimError>) -> (PartyId, SessionError) {
    match r {
        Err(SimError::Failed { at, error }) => (at, error),
        other => panic!("expected a failed run, got {other:?}"),
    }
}

fn misbehaved(e: &SessionError) -> (PartyId, Misbehaviour) {
    match e {
        SessionError::Misbehaved { party, what } => (*party, what.clone()),
        other => panic!("expected Misbehaved, got {other}"),
    }
}

#[test]
fn tampered_zk_proof_is_blamed_on_its_sender() {
    // b sends a its round-1b p2p message with the two range proofs swapped: proofs of another
    // statement. cggmp24's pi_enc check fails and blames b.
    let r = sim::run_with(sign_sessions("a,b", "zk"), |mut env, to| {
        if env.sender == pid("b") && to == pid("a") && env.round == 1 {
            let mut msg: SignMsg = mpc_tss::codec::from_cbor(&env.payload, 1 << 22).unwrap();
            if let SignMsg::Round1b(m) = &mut msg {
                std::mem::swap(&mut m.psi0, &mut m.psi1);
            }
            env.payload = mpc_tss::codec::to_cbor(&msg);
        }
        vec![env]
    });
    let (at, err) = failure(r);
    assert_eq!(at, pid("a"));
    assert!(matches!(err, SessionError::Aborted { .. }), "{err}");
    assert_eq!(err.culprits(), vec![pid("b")], "{err}");
    assert!(err.is_peer_fault());
}

#[test]
fn message_from_another_execution_is_refused() {
    let other = eid(ProtocolKind::EcdsaSign, "another run", &ps("a,b"));
    let r = sim::run_with(sign_sessions("a,b", "eid"), |mut env, _| {
        if env.sender == pid("b") {
            env.execution_id = other;
        }
        vec![env]
    });
    let (at, err) = failure(r);
    assert_eq!(at, pid("a"));
    assert_eq!(misbehaved(&err), (pid("b"), Misbehaviour::WrongExecution));
}

#[test]
fn replayed_message_is_refused() {
    let r = sim::run_with(sign_sessions("a,b", "dup"), |env, _| {
        if env.sender == pid("b") && env.round == 0 {
            vec![env.clone(), env]
        } else {
            vec![env]
        }
    });
    let (_, err) = failure(r);
    let (party, what) = misbehaved(&err);
    assert_eq!(party, pid("b"));
    assert!(
        matches!(what, Misbehaviour::Duplicate { round: 0, .. }),
        "{what}"
    );
}

#[test]
fn malformed_and_misrouted_messages_are_refused() {
    type Tamper = fn(&mut Envelope);
    type Expect = fn(&Misbehaviour) -> bool;
    let cases: [(Tamper, Expect); 5] = [
        (
            |e| e.payload = vec![0xff, 0x00, 0x13],
            |m| matches!(m, Misbehaviour::Malformed(_)),
        ),
        (
            |e| e.round += 1,
            |m| matches!(m, Misbehaviour::RoundMismatch { .. }),
        ),
        (
            |e| e.protocol = ProtocolKind::EcdsaPresign,
            |m| matches!(m, Misbehaviour::WrongProtocol { .. }),
        ),
        (
            |e| e.receiver = Some(PartyId::new("c").unwrap()),
            |m| matches!(m, Misbehaviour::WrongReceiver(_)),
        ),
        // a broadcast round delivered as if point-to-point
        (
            |e| e.receiver = Some(PartyId::new("a").unwrap()),
            |m| matches!(m, Misbehaviour::WrongDelivery { .. }),
        ),
    ];
    for (n, (tamper, check)) in cases.into_iter().enumerate() {
        let r = sim::run_with(sign_sessions("a,b", &format!("bad-{n}")), |mut env, _| {
            if env.sender == pid("b") && env.round == 0 {
                tamper(&mut env);
            }
            vec![env]
        });
        let (at, err) = failure(r);
        assert_eq!(at, pid("a"));
        let (party, what) = misbehaved(&err);
        assert_eq!(party, pid("b"), "case {n}");
        assert!(check(&what), "case {n}: {what}");
    }
}

#[test]
fn equivocating_broadcast_aborts_the_run() {
    // b sends c the first-round broadcast of a second keygen it runs with the same execution id:
    // a and c hold different round-1 messages from b. The echo round catches it. Echo broadcast
    // shows *that* views differ, not who lied: cggmp24's keygen reports it without a culprit,
    // so the abort is a peer fault with no one blamed (never the party reporting it).
    let c = world().committee.clone();
    let e = eid(ProtocolKind::EcdsaKeygen, "equivocation", c.parties());
    let sessions: Vec<_> = c
        .parties()
        .iter()
        .map(|p| ecdsa::keygen(e, *p, &c, 2).unwrap())
        .collect();
    let mut twin = ecdsa::keygen(e, pid("b"), &c, 2).unwrap();
    let twin_first = twin.start().unwrap().outgoing.remove(0);
    let r = sim::run_with(sessions, |env, to| {
        if env.sender == pid("b") && env.round == 0 && to == pid("c") {
            vec![twin_first.clone()]
        } else {
            vec![env]
        }
    });
    let (at, err) = failure(r);
    assert!(err.is_peer_fault(), "{err}");
    assert!(err.to_string().contains("wasn't reliable"), "{err}");
    assert!(!err.culprits().contains(&at), "{err}");
}

#[test]
fn silent_party_stalls_and_is_named() {
    let r = sim::run_with(sign_sessions("a,b", "silent"), |env, _| {
        if env.sender == pid("b") {
            vec![]
        } else {
            vec![env]
        }
    });
    match r {
        Err(SimError::Stalled(waiting)) => {
            let a = waiting.iter().find(|(p, _)| *p == pid("a")).unwrap();
            assert_eq!(a.1, vec![pid("b")]);
        }
        other => panic!("expected a stall, got {other:?}"),
    }
}

#[test]
fn invalid_partial_signature_is_blamed() {
    let w = world();
    let shares = key_shares(&w.ecdsa2, &w.aux);
    let signers = ps("a,c");
    let p = path("m/3");
    let e = eid(ProtocolKind::EcdsaPresign, "pre-bad-partial", &signers);
    let sessions = signers
        .iter()
        .map(|s| ecdsa::presign(e, &shares[s], &signers, &p).unwrap())
        .collect();
    let presigs = sim::run(sessions).unwrap().outputs;
    let msg = KnownMessage {
        bytes: b"m".to_vec(),
        hash: MessageHash::Keccak256,
    };
    let e = eid(ProtocolKind::EcdsaOnlineSign, "bad-partial", &signers);
    let sessions = presigs
        .into_iter()
        .map(|(party, pre)| ecdsa::online_sign(e, &shares[&party], pre, &p, &msg).unwrap())
        .collect();
    let r = sim::run_with(sessions, |mut env, _| {
        if env.sender == pid("c") {
            let mut part: cggmp24::PartialSignature<cggmp24::generic_ec::curves::Secp256k1> =
                mpc_tss::codec::from_cbor(&env.payload, 1024).unwrap();
            part.sigma += cggmp24::generic_ec::Scalar::one();
            env.payload = mpc_tss::codec::to_cbor(&part);
        }
        vec![env]
    });
    let (at, err) = failure(r);
    assert_eq!(at, pid("a"));
    assert_eq!(
        misbehaved(&err),
        (pid("c"), Misbehaviour::InvalidPartialSignature)
    );
}
