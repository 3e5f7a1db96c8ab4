use crate::common::*;

/// secp256k1 child keys equal standard BIP32 CKDpub (the `bip32` crate) on the root xpub.
#[test]
fn secp256k1_derivation_equals_bip32_ckdpub() {
    let w = world();
    for shares in [&w.ecdsa3, &w.ecdsa2] {
        let s = &shares[&pid("b")];
        let cc = s.chain_code().unwrap();
        for p in [
            "m/0",
            "m/1/1/60/0",
            "m/44/0/0/0/7",
            "m/2147483647/5",
            "m/1/1/0/123456",
        ] {
            let p = path(p);
            assert_eq!(
                s.derive_public_key(&p).unwrap(),
                bip32_child(&s.public_key(), cc, &p),
                "{p}"
            );
        }
        assert_eq!(s.derive_public_key(&path("m")).unwrap(), s.public_key());
    }
}

/// Every party derives the same child keys.
#[test]
fn parties_derive_the_same_children() {
    let w = world();
    let p = path("m/1/1/501/2");
    let eds: Vec<_> = w
        .ed2
        .values()
        .map(|s| s.derive_public_key(&p).unwrap())
        .collect();
    assert!(eds.windows(2).all(|x| x[0] == x[1]));
    let ks: Vec<_> = w
        .ecdsa2
        .values()
        .map(|s| s.derive_public_key(&p).unwrap())
        .collect();
    assert!(ks.windows(2).all(|x| x[0] == x[1]));
}

/// The exported xpub parses with the `bip32` crate and derives the same children.
#[test]
fn xpub_round_trips_through_bip32() {
    let s = &world().ecdsa3[&pid("a")];
    let xpub = s.xpub().unwrap();
    assert!(xpub.starts_with("xpub"), "{xpub}");
    let parsed: bip32::XPub = xpub.parse().unwrap();
    let p = path("m/1/1/60/0");
    let mut child = parsed;
    for i in p.indices() {
        child = child
            .derive_child(bip32::ChildNumber::new(*i, false).unwrap())
            .unwrap();
    }
    use bip32::PublicKey;
    assert_eq!(
        child.public_key().to_bytes(),
        s.derive_public_key(&p).unwrap()
    );
}

/// The share-free derivation functions agree with the shares' own derivation (and so with
/// BIP32 CKDpub for secp256k1), and the xpub matches.
#[test]
fn public_only_derivation_agrees_with_shares() {
    use mpc_tss::derive::{derive_ed25519_public, derive_secp256k1_public, xpub_secp256k1};
    let w = world();
    for p in ["m", "m/0", "m/1/1/60/0", "m/1/1/501/7", "m/2147483647/5"] {
        let p = path(p);
        for shares in [&w.ecdsa3, &w.ecdsa2] {
            let s = &shares[&pid("a")];
            let cc = s.chain_code().unwrap();
            let got = derive_secp256k1_public(&s.public_key(), &cc, &p).unwrap();
            assert_eq!(got, s.derive_public_key(&p).unwrap(), "{p}");
            assert_eq!(got, bip32_child(&s.public_key(), cc, &p), "{p}");
            assert_eq!(
                xpub_secp256k1(&s.public_key(), &cc).unwrap(),
                s.xpub().unwrap()
            );
        }
        for shares in [&w.ed3, &w.ed2] {
            let s = &shares[&pid("c")];
            let cc = s.chain_code().unwrap();
            let got = derive_ed25519_public(&s.public_key(), &cc, &p).unwrap();
            assert_eq!(got, s.derive_public_key(&p).unwrap(), "{p}");
        }
    }
}
