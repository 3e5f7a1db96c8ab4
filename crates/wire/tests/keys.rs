//! PEM loading, node ids and API keys against files made by openssl (tests/data/README.md),
//! node ids made by Go (tests/golden/go_node_ids.json) and the product guide's own example.

use std::path::PathBuf;

use mpc_wire::keys::{self, KeyError, NODE_ID_LEN};
use mpc_wire::p256::ecdsa::VerifyingKey;

fn data(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

/// The `init` reply of the product guide (section 2.2.2): node id and PEM of the same key.
const GUIDE_NODE_ID: &str = "sinoMzA1OTMwMTMwNjA3MmE4NjQ4Y2UzZDAyMDEwNjA4MmE4NjQ4Y2UzZDAzMDEwNzAzNDIwMDA0MDdlMDgyNzA5OTU1NTUxMzljODExMzQ3YTBkZjVmZjVhYmY1ZmM1MTFiOWFiM2U0MWE5N2MwMDlkODA3OGY3ZTc1MzlhYjA2M2ZkNzczZTliOTJjZWU5MjI1ZTVhMTFhYmJjNzExOWRlNDkwYjNiMzZkNTM3MWFmZDRkYjBiYzI=";
const GUIDE_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEB+CCcJlVVROcgRNHoN9f9av1/FEb\nmrPkGpfACdgHj351OasGP9dz6bks7pIl5aEau8cRneSQs7NtU3Gv1NsLwg==\n-----END PUBLIC KEY-----\n";

#[test]
fn guide_node_id_matches_its_public_key() {
    assert_eq!(GUIDE_NODE_ID.len(), NODE_ID_LEN);
    let from_id = keys::verifying_key_from_node_id(GUIDE_NODE_ID).unwrap();
    let from_pem = keys::verifying_key_from_pem(GUIDE_PUBLIC_KEY).unwrap();
    assert_eq!(from_id, from_pem);
    assert_eq!(keys::node_id(&from_pem), GUIDE_NODE_ID);
    // The local API's PEM form is the guide's, byte for byte.
    assert_eq!(keys::public_key_pem(&from_pem), GUIDE_PUBLIC_KEY);
    use base64::Engine as _;
    let hex_in_id = base64::engine::general_purpose::STANDARD
        .decode(&GUIDE_NODE_ID[4..])
        .unwrap();
    assert_eq!(keys::api_key_hex(&from_pem).as_bytes(), &hex_in_id[..]);
    assert!(
        keys::api_key_hex(&from_pem)
            .starts_with("3059301306072a8648ce3d020106082a8648ce3d030107034200")
    );
    assert_eq!(
        keys::verifying_key_from_api_key_hex(&keys::api_key_hex(&from_pem)).unwrap(),
        from_pem
    );
}

#[test]
fn go_node_ids_match() {
    let ids: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/go_node_ids.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for file in ["p256_public.pem", "server_public.pem"] {
        let key = keys::verifying_key_from_pem(&data(file)).unwrap();
        let id = ids[file].as_str().unwrap();
        assert_eq!(keys::node_id(&key), id);
        assert_eq!(keys::verifying_key_from_node_id(id).unwrap(), key);
    }
}

#[test]
fn private_key_forms_agree() {
    let with_params = keys::signing_key_from_pem(&data("p256_sec1_with_params.pem")).unwrap();
    let sec1 = keys::signing_key_from_pem(&data("p256_sec1.pem")).unwrap();
    let pkcs8 = keys::signing_key_from_pem(&data("p256_pkcs8.pem")).unwrap();
    let crlf = keys::signing_key_from_pem(&data("p256_sec1.pem").replace('\n', "\r\n")).unwrap();
    let public = keys::verifying_key_from_pem(&data("p256_public.pem")).unwrap();
    for k in [&with_params, &sec1, &pkcs8, &crlf] {
        assert_eq!(k.verifying_key(), &public);
    }
    assert_eq!(
        keys::secret_key_from_pem(&data("p256_pkcs8.pem"))
            .unwrap()
            .public_key(),
        keys::public_key_from_pem(&data("p256_public.pem")).unwrap()
    );
    // The public PEM we write is the one openssl wrote.
    assert_eq!(keys::public_key_pem(&public), data("p256_public.pem"));
}

#[test]
fn key_refusals_name_the_problem() {
    assert!(matches!(
        keys::signing_key_from_pem(&data("p256_public.pem")),
        Err(KeyError::NoPemBlock { found, .. }) if found == "PUBLIC KEY"
    ));
    assert!(matches!(
        keys::verifying_key_from_pem(&data("p256_sec1_with_params.pem")),
        Err(KeyError::NoPemBlock { found, .. }) if found == "EC PARAMETERS, EC PRIVATE KEY"
    ));
    assert!(matches!(
        keys::signing_key_from_pem(""),
        Err(KeyError::NoPemBlock { found, .. }) if found == "none"
    ));
    assert_eq!(
        keys::signing_key_from_pem(&data("p256_pkcs8_encrypted.pem")),
        Err(KeyError::Encrypted)
    );
    // Wrong curve: secp256k1 keys are refused, naming the block.
    assert!(matches!(
        keys::signing_key_from_pem(&data("secp256k1_sec1.pem")),
        Err(KeyError::InvalidKey { label, .. }) if label == "EC PRIVATE KEY"
    ));
    assert!(matches!(
        keys::verifying_key_from_pem(&data("secp256k1_public.pem")),
        Err(KeyError::InvalidKey { label, .. }) if label == "PUBLIC KEY"
    ));
    // Broken Base64 inside a block.
    let broken = data("p256_public.pem").replace("MFkw", "M!kw");
    assert!(matches!(
        keys::verifying_key_from_pem(&broken),
        Err(KeyError::InvalidKey { .. })
    ));
    let unterminated = data("p256_sec1.pem").replace("-----END EC PRIVATE KEY-----", "");
    assert_eq!(
        keys::signing_key_from_pem(&unterminated),
        Err(KeyError::Unterminated("EC PRIVATE KEY".into()))
    );
}

#[test]
fn node_id_refusals() {
    let key: VerifyingKey = keys::verifying_key_from_pem(GUIDE_PUBLIC_KEY).unwrap();
    let id = keys::node_id(&key);
    assert_eq!(
        keys::verifying_key_from_node_id(&id[4..]),
        Err(KeyError::NodeIdPrefix)
    );
    assert_eq!(
        keys::verifying_key_from_node_id(&format!("{id}A")),
        Err(KeyError::NodeIdLength(249))
    );
    let mut bad_b64 = id.clone();
    bad_b64.replace_range(10..11, "*");
    assert!(matches!(
        keys::verifying_key_from_node_id(&bad_b64),
        Err(KeyError::NodeIdEncoding(_))
    ));
    // Uppercase hex inside: same key, not the canonical id.
    use base64::Engine as _;
    let upper = format!(
        "sino{}",
        base64::engine::general_purpose::STANDARD.encode(keys::api_key_hex(&key).to_uppercase())
    );
    assert_eq!(upper.len(), NODE_ID_LEN);
    assert_eq!(
        keys::verifying_key_from_node_id(&upper),
        Err(KeyError::NodeIdNotCanonical)
    );
    // Not a key: valid Base64 of valid hex of 91 zero bytes.
    let zeros = format!(
        "sino{}",
        base64::engine::general_purpose::STANDARD.encode("00".repeat(91))
    );
    assert!(matches!(
        keys::verifying_key_from_node_id(&zeros),
        Err(KeyError::NodeIdKey(_))
    ));
    assert!(keys::verifying_key_from_api_key_hex("zz").is_err());
    assert!(keys::verifying_key_from_api_key_hex("3059").is_err());
}
