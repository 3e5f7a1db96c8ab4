use givre::ciphersuite::Ciphersuite;
use mpc_tss::bip340::Bip340;
use mpc_tss::frost;
use mpc_tss::{ProtocolKind, sim};

use crate::common::*;

#[test]
fn eddsa_every_threshold_subset_and_path_verifies_as_rfc8032() {
    let w = world();
    let cases = [
        (&w.ed3, "a,b,c"),
        (&w.ed2, "a,b"),
        (&w.ed2, "a,c"),
        (&w.ed2, "b,c"),
    ];
    for (n, (shares, signers)) in cases.into_iter().enumerate() {
        let pk: Vec<_> = shares.values().map(|s| s.public_key()).collect();
        assert!(pk.windows(2).all(|x| x[0] == x[1]));
        assert!(shares.values().all(|s| s.chain_code().is_some()));
        let signers = ps(signers);
        for p in ["m", "m/1/1/501/0"] {
            let p = path(p);
            let msg = format!("solana tx {n} {p}").into_bytes();
            let e = eid(ProtocolKind::EddsaSign, &format!("ed-{n}-{p}"), &signers);
            let sessions = signers
                .iter()
                .map(|s| frost::eddsa_sign(e, &shares[s], &signers, &p, &msg).unwrap())
                .collect();
            let sig = agreed(&sim::run(sessions).unwrap().outputs);
            let child = shares[&signers[0]].derive_public_key(&p).unwrap();
            verify_ed25519(&child, &msg, &sig);
            if !p.is_root() {
                assert_ne!(child, shares[&signers[0]].public_key());
            }
        }
    }
}

#[test]
fn bip340_signs_under_the_untweaked_key_with_the_ecdsa_share() {
    let w = world();
    for (shares, signers) in [(&w.ecdsa3, "a,b,c"), (&w.ecdsa2, "b,c")] {
        let signers = ps(signers);
        for p in ["m", "m/1/1/0/4"] {
            let p = path(p);
            let msg = sha256(format!("reveal {p}").as_bytes());
            let e = eid(
                ProtocolKind::Bip340Sign,
                &format!("bip340-{signers:?}-{p}"),
                &signers,
            );
            let sessions = signers
                .iter()
                .map(|s| frost::bip340_sign(e, &shares[s], &signers, &p, &msg).unwrap())
                .collect();
            let sig = agreed(&sim::run(sessions).unwrap().outputs);
            let child = shares[&signers[0]].derive_public_key(&p).unwrap();
            let mut xonly = [0u8; 32];
            xonly.copy_from_slice(&child[1..]);
            assert_eq!(
                frost::bip340_public_key(&shares[&signers[0]], &p).unwrap(),
                xonly
            );
            assert!(
                bip340_verify(&xonly, &msg, &sig),
                "BIP340 under the key itself"
            );
            let tweaked = taproot_output_key(&child, None);
            assert!(
                !bip340_verify(&tweaked, &msg, &sig),
                "not a taproot signature"
            );
        }
    }
}

#[test]
fn taproot_key_path_with_and_without_script_root() {
    let w = world();
    for (shares, signers) in [(&w.ecdsa3, "a,b,c"), (&w.ecdsa2, "a,b")] {
        let signers = ps(signers);
        for (p, root) in [
            ("m", None),
            ("m/1/1/0/9", None),
            ("m/1/1/0/9", Some([7u8; 32])),
        ] {
            let p = path(p);
            let msg = sha256(b"sighash");
            let e = eid(
                ProtocolKind::TaprootSign,
                &format!("tr-{signers:?}-{p}-{root:?}"),
                &signers,
            );
            let sessions = signers
                .iter()
                .map(|s| frost::taproot_sign(e, &shares[s], &signers, &p, &msg, root).unwrap())
                .collect();
            let sig = agreed(&sim::run(sessions).unwrap().outputs);
            let child = shares[&signers[0]].derive_public_key(&p).unwrap();
            let q = taproot_output_key(&child, root);
            assert_eq!(
                frost::taproot_output_key(&shares[&signers[0]], &p, root).unwrap(),
                q
            );
            assert!(
                bip340_verify(&q, &msg, &sig),
                "BIP340 under the BIP341 output key"
            );
        }
    }
}

/// The `Bip340` suite's verification agrees with every case of the BIP340 test vectors.
#[test]
fn bip340_suite_matches_the_bip340_test_vectors() {
    let csv = include_str!("../fixtures/bip340-test-vectors.csv");
    let mut checked = 0;
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (pk, msg, sig, expected) = (f[2], f[4], f[5], f[6] == "TRUE");
        let pk = hex::decode(pk).unwrap();
        let msg = hex::decode(msg).unwrap();
        let sig = hex::decode(sig).unwrap();
        let ours = (|| {
            let pk = Bip340::deserialize_normalized_point(&pk)
                .ok()?
                .into_non_zero()?;
            let sig = givre::signing::aggregate::Signature::<Bip340>::read_from_slice(&sig)?;
            Some(sig.verify(&pk, &msg).is_ok())
        })()
        .unwrap_or(false);
        assert_eq!(ours, expected, "vector {}", f[0]);
        checked += 1;
    }
    assert_eq!(checked, 15);
}
