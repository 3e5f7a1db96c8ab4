//! Untrusted headers and bodies: authentication never panics, fuzzer-made signatures never
//! verify, a genuine signature over any body verifies exactly once, and any authenticated
//! body can be fed to the DTO parsers without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_api::auth::{self, ApiUser, AuthError, HeaderValues, InMemoryNonceStore};
use mpc_api::p256::ecdsa::SigningKey;
use mpc_api::types::{self, Validate};

const NOW: u64 = 1_700_000_000_000;

fn parse_all(body: &[u8]) {
    if let Ok(r) = serde_json::from_slice::<types::CreateWalletsRequest>(body) {
        let _ = r.validate();
    }
    if let Ok(r) = serde_json::from_slice::<types::SignRawDataRequest>(body) {
        let _ = r.validate();
        let _ = r.raw_data_bytes();
    }
    if let Ok(r) = serde_json::from_slice::<types::SignMessageRequest>(body) {
        let _ = r.validate();
    }
    if let Ok(r) = serde_json::from_slice::<types::ListMpcRequestsRequest>(body) {
        let _ = r.validate();
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(key) = SigningKey::from_slice(&[0x11; 32]) else {
        return;
    };
    let user = ApiUser {
        organization_id: "org".into(),
        user_id: "user".into(),
        verifying_key: *key.verifying_key(),
    };
    let known = mpc_wire::keys::api_key_hex(key.verifying_key());
    let lookup = |k: &str| (k == known).then(|| user.clone());

    // Split the input into three header values, a path and a body at 0x00 bytes.
    let mut parts = data.splitn(5, |b| *b == 0);
    let api_key = parts.next();
    let nonce = parts.next();
    let signature = parts.next();
    let path = parts
        .next()
        .and_then(|p| std::str::from_utf8(p).ok())
        .unwrap_or("/");
    let body = parts.next().unwrap_or_default();

    // Arbitrary headers (with the real key substituted when the fuzzer asks for it).
    let store = InMemoryNonceStore::new();
    let api_key = match api_key {
        Some([b'K']) => Some(known.as_bytes()),
        other => other,
    };
    let headers = HeaderValues {
        api_key,
        nonce,
        signature,
    };
    let result = auth::verify_request(headers, path, body, NOW, &store, lookup);
    assert!(result.is_err(), "fuzzer input authenticated");

    // A genuine signature over the fuzzer's body and path verifies once, then is a replay.
    let signed = auth::sign_request(&mpc_wire::signature::EcdsaSigner::new(&key), path, body, NOW);
    let caller = auth::verify_request(signed.values(), path, body, NOW, &store, lookup)
        .expect("genuine request must verify");
    assert_eq!(caller.nonce_ms(), NOW);
    assert!(matches!(
        auth::verify_request(signed.values(), path, body, NOW, &store, lookup),
        Err(AuthError::ReplayedNonce { .. })
    ));

    parse_all(body);
    if let Ok(text) = std::str::from_utf8(body) {
        assert_eq!(
            auth::signing_string(text, path, "1", "k").as_bytes(),
            auth::signing_bytes(body, path, "1", "k").as_slice()
        );
        let _ = types::parse_hd_path(text);
    }
});
