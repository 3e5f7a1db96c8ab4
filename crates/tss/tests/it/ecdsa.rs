use mpc_tss::ecdsa::{self, KnownMessage, MessageHash, SignInput};
use mpc_tss::{InputError, ProtocolKind, sim};

use crate::common::*;

fn full_sign(t: u16, signers: &str, p: &str, input: SignInput, tag: &str) {
    let w = world();
    let core = if t == 3 { &w.ecdsa3 } else { &w.ecdsa2 };
    let shares = key_shares(core, &w.aux);
    let signers = ps(signers);
    let path = path(p);
    let e = eid(ProtocolKind::EcdsaSign, tag, &signers);
    let sessions = signers
        .iter()
        .map(|s| ecdsa::sign(e, &shares[s], &signers, &path, input.clone()).unwrap())
        .collect();
    let out = sim::run(sessions).unwrap();
    let sig = agreed(&out.outputs);
    let child = shares[&signers[0]].core().derive_public_key(&path).unwrap();
    verify_ecdsa(&child, &input.digest(), &sig);
}

#[test]
fn keygen_outputs_agree_and_carry_a_chain_code() {
    let w = world();
    for core in [&w.ecdsa3, &w.ecdsa2] {
        let pk: Vec<_> = core.values().map(|s| s.public_key()).collect();
        assert!(pk.windows(2).all(|w| w[0] == w[1]));
        let cc: Vec<_> = core.values().map(|s| s.chain_code()).collect();
        assert!(cc[0].is_some() && cc.windows(2).all(|w| w[0] == w[1]));
    }
    assert_eq!(w.ecdsa3[&pid("a")].threshold(), 3);
    assert_eq!(w.ecdsa2[&pid("c")].threshold(), 2);
    assert_ne!(
        w.ecdsa3[&pid("a")].public_key(),
        w.ecdsa2[&pid("a")].public_key()
    );
}

#[test]
fn sign_3_of_3_root_and_hd_path() {
    full_sign(
        3,
        "a,b,c",
        "m",
        SignInput::Digest(sha256(b"root")),
        "s3-root",
    );
    full_sign(
        3,
        "a,b,c",
        "m/1/1/60/0",
        SignInput::Digest(sha256(b"child")),
        "s3-path",
    );
}

#[test]
fn sign_2_of_3_every_subset_with_and_without_path() {
    for (i, signers) in ["a,b", "a,c", "b,c"].iter().enumerate() {
        full_sign(
            2,
            signers,
            "m",
            SignInput::Digest(sha256(signers.as_bytes())),
            &format!("s2-root-{i}"),
        );
        full_sign(
            2,
            signers,
            "m/1/1/0/7",
            SignInput::Digest(sha256(b"x")),
            &format!("s2-path-{i}"),
        );
    }
}

#[test]
fn sign_a_known_message_with_keccak() {
    let msg = KnownMessage {
        bytes: b"\x19Ethereum Signed Message:\n5hello".to_vec(),
        hash: MessageHash::Keccak256,
    };
    full_sign(2, "a,b", "m/1/1/60/0", SignInput::Message(msg), "s2-keccak");
}

fn presign_run(
    shares: &std::collections::BTreeMap<mpc_tss::PartyId, ecdsa::EcdsaKeyShare>,
    signers: &[mpc_tss::PartyId],
    p: &mpc_tss::DerivationPath,
    tag: &str,
) -> std::collections::BTreeMap<mpc_tss::PartyId, ecdsa::EcdsaPresignature> {
    let e = eid(ProtocolKind::EcdsaPresign, tag, signers);
    let sessions = signers
        .iter()
        .map(|s| ecdsa::presign(e, &shares[s], signers, p).unwrap())
        .collect();
    sim::run(sessions).unwrap().outputs
}

#[test]
fn presignature_then_one_round_online_signing() {
    let w = world();
    for (t, core, signers) in [(3, &w.ecdsa3, "a,b,c"), (2, &w.ecdsa2, "a,c")] {
        let shares = key_shares(core, &w.aux);
        let signers = ps(signers);
        let p = path("m/1/1/60/3");
        let presigs = presign_run(&shares, &signers, &p, &format!("pre-{t}"));
        // stored form round-trips (the node keeps presignatures sealed)
        let presigs: Vec<_> = presigs
            .into_iter()
            .map(|(party, pre)| {
                (
                    party,
                    ecdsa::EcdsaPresignature::from_stored_bytes(&pre.into_stored_bytes()).unwrap(),
                )
            })
            .collect();
        let msg = KnownMessage {
            bytes: b"pay 1 BTC to bob".to_vec(),
            hash: MessageHash::Sha256,
        };
        let e = eid(
            ProtocolKind::EcdsaOnlineSign,
            &format!("online-{t}"),
            &signers,
        );
        let sessions = presigs
            .into_iter()
            .map(|(party, pre)| ecdsa::online_sign(e, &shares[&party], pre, &p, &msg).unwrap())
            .collect();
        let out = sim::run(sessions).unwrap();
        assert!(
            out.traffic.values().all(|tr| tr.messages_sent == t - 1),
            "one broadcast round"
        );
        let sig = agreed(&out.outputs);
        verify_ecdsa(
            &shares[&signers[0]].core().derive_public_key(&p).unwrap(),
            &msg.digest(),
            &sig,
        );
    }
}

#[test]
fn presignature_refuses_another_path() {
    let w = world();
    let shares = key_shares(&w.ecdsa2, &w.aux);
    let signers = ps("a,b");
    let presigs = presign_run(&shares, &signers, &path("m/1"), "pre-path");
    let msg = KnownMessage {
        bytes: b"m".to_vec(),
        hash: MessageHash::Sha256,
    };
    let e = eid(ProtocolKind::EcdsaOnlineSign, "x", &signers);
    let pre = presigs.into_values().next().unwrap();
    let err = ecdsa::online_sign(e, &shares[&pid("a")], pre, &path("m/2"), &msg).unwrap_err();
    assert!(matches!(err, InputError::BadPath(_)), "{err}");
}

#[test]
fn aux_info_regeneration_makes_old_presignatures_unusable() {
    let w = world();
    let old = key_shares(&w.ecdsa2, &w.aux);
    let signers = ps("b,c");
    let p = path("m/9");
    let presigs = presign_run(&old, &signers, &p, "pre-before-regen");

    let mut primes = test_primes().into_iter().skip(3);
    let new_aux = run_aux(
        &w.committee,
        "regen",
        [(); 3].map(|_| primes.next().unwrap()),
    );
    let fp: Vec<_> = new_aux.values().map(|a| a.fingerprint()).collect();
    assert!(
        fp.windows(2).all(|x| x[0] == x[1]),
        "all parties agree on the new aux info"
    );
    assert_ne!(fp[0], w.aux[&pid("a")].fingerprint());

    let new = key_shares(&w.ecdsa2, &new_aux);
    let msg = KnownMessage {
        bytes: b"after regen".to_vec(),
        hash: MessageHash::Sha256,
    };
    let e = eid(ProtocolKind::EcdsaOnlineSign, "stale", &signers);
    for (party, pre) in presigs {
        let err = ecdsa::online_sign(e, &new[&party], pre, &p, &msg).unwrap_err();
        assert!(matches!(err, InputError::PresignatureStale { .. }), "{err}");
    }
    // The key is unchanged and signs with the new aux info.
    let e = eid(ProtocolKind::EcdsaSign, "after-regen", &signers);
    let input = SignInput::Digest(sha256(b"after regen"));
    let sessions = signers
        .iter()
        .map(|s| ecdsa::sign(e, &new[s], &signers, &p, input.clone()).unwrap())
        .collect();
    let sig = agreed(&sim::run(sessions).unwrap().outputs);
    verify_ecdsa(
        &new[&pid("b")].core().derive_public_key(&p).unwrap(),
        &input.digest(),
        &sig,
    );
}

#[test]
fn bad_requests_are_input_errors() {
    let w = world();
    let shares = key_shares(&w.ecdsa2, &w.aux);
    let a = &shares[&pid("a")];
    let e = eid(ProtocolKind::EcdsaSign, "bad", &ps("a,b"));
    let d = SignInput::Digest([1; 32]);
    let root = path("m");
    assert!(matches!(
        ecdsa::sign(e, a, &ps("a,b,c"), &root, d.clone()).unwrap_err(),
        InputError::WrongSignerCount {
            expected: 2,
            got: 3
        }
    ));
    assert!(matches!(
        ecdsa::sign(e, a, &ps("b,c"), &root, d.clone()).unwrap_err(),
        InputError::NotASigner(_)
    ));
    assert!(matches!(
        ecdsa::sign(e, a, &ps("a,a"), &root, d.clone()).unwrap_err(),
        InputError::DuplicateParty
    ));
    assert!(matches!(
        ecdsa::sign(e, a, &ps("a,d"), &root, d).unwrap_err(),
        InputError::NotAMember(_)
    ));
    let c = &w.committee;
    assert!(matches!(
        ecdsa::keygen(e, pid("a"), c, 4).unwrap_err(),
        InputError::BadThreshold { t: 4, n: 3 }
    ));
    assert!(matches!(
        ecdsa::keygen(e, pid("a"), c, 1).unwrap_err(),
        InputError::BadThreshold { .. }
    ));
    // aux info of another party does not complete a share
    let err = ecdsa::EcdsaKeyShare::new(w.ecdsa2[&pid("a")].clone(), w.aux[&pid("b")].clone())
        .unwrap_err();
    assert!(matches!(err, InputError::KeyShare(_)));
}

#[test]
fn stored_shares_round_trip_and_refuse_garbage() {
    let w = world();
    let a = &w.ecdsa3[&pid("a")];
    let back = ecdsa::EcdsaCoreShare::from_stored_bytes(&a.to_stored_bytes()).unwrap();
    assert_eq!(back.public_key(), a.public_key());
    let aux = &w.aux[&pid("a")];
    let aux_back = ecdsa::EcdsaAuxInfo::from_stored_bytes(&aux.to_stored_bytes()).unwrap();
    assert_eq!(aux_back.fingerprint(), aux.fingerprint());

    let err = ecdsa::EcdsaCoreShare::from_stored_bytes(&aux.to_stored_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("mpc-tss/cggmp24-aux-info"),
        "{err}"
    );
    let mut bytes = a.to_stored_bytes();
    bytes.truncate(bytes.len() / 2);
    let err = ecdsa::EcdsaCoreShare::from_stored_bytes(&bytes).unwrap_err();
    assert!(err.to_string().contains("line"), "{err}");
    let newer = String::from_utf8(a.to_stored_bytes())
        .unwrap()
        .replace("\"version\":1", "\"version\":9");
    let err = ecdsa::EcdsaCoreShare::from_stored_bytes(newer.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("format version 9"), "{err}");
}
