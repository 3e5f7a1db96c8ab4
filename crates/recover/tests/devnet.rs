//! End to end: a devnet of real processes (platform, nodes a, b, c, callback demo) makes a
//! 2-of-3 DKLs23 secp256k1 key and a 2-of-3 FROST ed25519 key; the API gives addresses; two
//! nodes' backups are taken with `mpc-node backup`; the real `mpc-recover` binary rebuilds the
//! keys from those two backups alone; the recovered child keys sign an Ethereum transaction
//! hash, a Bitcoin-style digest and an ed25519 message, and every signature verifies under
//! the public key behind the address the API returned. One backup alone is refused.
//!
//! A test without libtest's harness: this binary is also the devnet's multi-call executable
//! (`<this> node|platform|callback-demo ARGS`), so every component runs from this tree's code.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mpc_api::types::AddressAlgorithm;
use mpc_devnet::{Cluster, Options, scenario};

const TEST: &str = "recovered_keys_sign_for_the_addresses_the_api_returned";
const RECOVER: &str = env!("CARGO_BIN_EXE_mpc-recover");

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(code) = mpc_devnet::multicall::dispatch(&args) {
        std::process::exit(code);
    }
    // libtest's arguments, as far as they concern one test: --list, --ignored (this test is
    // not ignored), --skip PATTERN, name filters; other options and their values are ignored.
    let flags: Vec<String> = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str().map(str::to_owned))
        .collect();
    if flags.iter().any(|a| a == "--list") {
        println!("{TEST}: test");
        return;
    }
    const WITH_VALUE: [&str; 6] = [
        "--skip",
        "--test-threads",
        "--format",
        "--color",
        "--logfile",
        "-Z",
    ];
    let mut filters = Vec::new();
    let mut skips = Vec::new();
    let mut it = flags.iter();
    while let Some(a) = it.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            if let Some(v) = it.next()
                && a == "--skip"
            {
                skips.push(v.clone());
            }
        } else if !a.starts_with('-') {
            filters.push(a.clone());
        }
    }
    let filtered_out = flags.iter().any(|a| a == "--ignored")
        || skips.iter().any(|s| TEST.contains(s.as_str()))
        || (!filters.is_empty() && !filters.iter().any(|f| TEST.contains(f.as_str())));
    if filtered_out {
        println!("running 0 tests\n\ntest result: ok. 0 passed; 0 failed; 1 filtered out");
        return;
    }
    println!("running 1 test");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(e2e());
    println!("test {TEST} ... ok\n\ntest result: ok. 1 passed; 0 failed");
}

fn recover(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(RECOVER).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn take_backup(exe: &Path, port: u16, out: &Path) {
    let st = Command::new(exe)
        .args([
            "node",
            "backup",
            "--server",
            &format!("127.0.0.1:{port}"),
            "--out",
            out.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "mpc-node backup failed");
}

fn child<'a>(doc: &'a serde_json::Value, curve: &str, path: &str) -> &'a serde_json::Value {
    let key = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["curve"] == curve)
        .unwrap_or_else(|| panic!("no {curve} key in {doc}"));
    key["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| panic!("no {path} under the {curve} key"))
}

fn secret32(c: &serde_json::Value) -> [u8; 32] {
    hex::decode(c["private_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

async fn e2e() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut o = Options::new(&tmp.path().join("devnet"));
    o.exe = exe.clone();
    o.threshold = 2;
    o.test_primes = true;
    o.fast_kdf = true;
    o.sign_timeout_secs = 60;
    o.keys_timeout = Duration::from_secs(900);
    o.ready_timeout = Duration::from_secs(60);
    let mut cluster = Cluster::start(o).await.unwrap();
    let keys = cluster.wait_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.threshold == 2), "{keys:?}");
    let signer = scenario::signer(&mut cluster, &keys).await.unwrap();
    let api = &signer.api;
    let eth = api
        .gen_address(
            &signer.vault_id,
            &signer.wallet_id,
            AddressAlgorithm::Secp256k1,
            60,
            0,
        )
        .await
        .unwrap();
    let btc = api
        .gen_address(
            &signer.vault_id,
            &signer.wallet_id,
            AddressAlgorithm::Secp256k1,
            0,
            3,
        )
        .await
        .unwrap();
    let sol = api
        .gen_address(
            &signer.vault_id,
            &signer.wallet_id,
            AddressAlgorithm::Ed25519,
            501,
            0,
        )
        .await
        .unwrap();

    // Backups of nodes a and c (t = 2), with their passwords.
    let work = tmp.path().join("recovery");
    std::fs::create_dir(&work).unwrap();
    let mut args: Vec<String> = Vec::new();
    for p in ["a", "c"] {
        let out = work.join(format!("backup-{p}.db"));
        take_backup(&exe, cluster.state().ports.nodes[p], &out);
        args.extend(["--backup".into(), out.display().to_string()]);
    }
    for p in ["a", "c"] {
        let pw = cluster.layout().node_password(p);
        args.extend(["--password-file".into(), pw.display().to_string()]);
    }
    // The platform is gone.
    drop(cluster);

    for path in [&eth.hd_path, &btc.hd_path, &sol.hd_path] {
        args.extend(["--path".into(), path.clone()]);
    }
    args.extend(["--wif".into(), "--json".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = recover(&argv);
    assert_eq!(code, 0, "mpc-recover failed: {err}");
    assert!(err.contains("removes every protection"), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();

    // The rebuilt root keys are the keys the platform recorded.
    for k in &keys {
        assert!(
            doc["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(
                    |r| r["public_key"] == k.root_public_key.trim_start_matches("0x")
                        && r["chain_code"] == k.chain_code.trim_start_matches("0x")
                ),
            "key {} not rebuilt: {doc}",
            k.root_public_key
        );
    }

    // Ethereum: sign a transaction hash, recover the signer's address, compare with the API's.
    {
        use k256::ecdsa::signature::hazmat::PrehashVerifier;
        let c = child(&doc, "secp256k1", &eth.hd_path);
        let sk = k256::ecdsa::SigningKey::from_slice(&secret32(c)).unwrap();
        let tx_hash = mpc_chains::hash::keccak256(b"rlp(tx) of a transfer moving the funds");
        let (sig, rec) = sk.sign_prehash_recoverable(&tx_hash).unwrap();
        let signer_key =
            k256::ecdsa::VerifyingKey::recover_from_prehash(&tx_hash, &sig, rec).unwrap();
        let signer_pub = signer_key.to_encoded_point(true);
        let addr = mpc_chains::address::evm_address(signer_pub.as_bytes()).unwrap();
        assert_eq!(addr.to_lowercase(), eth.address.to_lowercase());
        // Independently: the API's public key verifies it.
        let api_key =
            k256::ecdsa::VerifyingKey::from_sec1_bytes(&hex::decode(&eth.pubkey).unwrap()).unwrap();
        api_key.verify_prehash(&tx_hash, &sig).unwrap();
        assert_eq!(
            c["addresses"]["evm"].as_str().unwrap().to_lowercase(),
            eth.address.to_lowercase()
        );
    }

    // Bitcoin: the WIF is the key; a double-SHA256 digest signed by it verifies under the
    // API's public key, whose P2WPKH address is the API's address.
    {
        use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
        use sha2::Digest;
        let c = child(&doc, "secp256k1", &btc.hd_path);
        let secret = secret32(c);
        let wif = bs58::decode(c["wif"].as_str().unwrap())
            .with_check(None)
            .into_vec()
            .unwrap();
        assert_eq!(wif.len(), 34);
        assert_eq!(wif[0], 0x80);
        assert_eq!(&wif[1..33], &secret);
        assert_eq!(wif[33], 0x01);
        let sk = k256::ecdsa::SigningKey::from_slice(&secret).unwrap();
        let digest: [u8; 32] =
            sha2::Sha256::digest(sha2::Sha256::digest(b"bip143 preimage")).into();
        let (sig, _): (k256::ecdsa::Signature, _) = sk.sign_prehash(&digest).unwrap();
        let api_pub = hex::decode(&btc.pubkey).unwrap();
        k256::ecdsa::VerifyingKey::from_sec1_bytes(&api_pub)
            .unwrap()
            .verify_prehash(&digest, &sig)
            .unwrap();
        assert_eq!(
            mpc_chains::address::p2wpkh_address(&api_pub, mpc_chains::address::Network::Mainnet)
                .unwrap(),
            btc.address
        );
        assert_eq!(
            hex::decode(c["public_key"].as_str().unwrap()).unwrap(),
            api_pub
        );
    }

    // ed25519: sign a message with the recovered scalar; it verifies (strictly) under the
    // API's public key, whose base58 form is the API's address.
    {
        use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
        let c = child(&doc, "ed25519", &sol.hd_path);
        let scalar = Option::<curve25519_dalek::Scalar>::from(
            curve25519_dalek::Scalar::from_canonical_bytes(secret32(c)),
        )
        .unwrap();
        let api_pub: [u8; 32] = hex::decode(&sol.pubkey).unwrap().try_into().unwrap();
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&api_pub).unwrap();
        // The nonce prefix: any secret value fixed per key (here a hash of the scalar).
        let prefix = {
            use sha2::Digest;
            let h = sha2::Sha512::new()
                .chain_update(b"mpc-recover test nonce prefix")
                .chain_update(secret32(c))
                .finalize();
            let mut p = [0u8; 32];
            p.copy_from_slice(&h[..32]);
            p
        };
        let esk = ExpandedSecretKey {
            scalar,
            hash_prefix: prefix,
        };
        let msg = b"a Solana transfer moving the funds";
        let sig = raw_sign::<sha2::Sha512>(&esk, msg, &vk);
        vk.verify_strict(msg, &sig).unwrap();
        assert_eq!(
            mpc_chains::address::solana_address(&api_pub).unwrap(),
            sol.address
        );
    }

    // One backup is fewer than t: refused, nothing printed.
    let (code, out, err) =
        recover(&[&argv[0..2], &["--password-file", argv[5], "--path", "m"]].concat());
    assert_eq!(code, 1, "{out}");
    assert!(out.is_empty());
    assert!(
        err.contains("1 distinct party given") && err.contains("2 needed"),
        "{err}"
    );
}
