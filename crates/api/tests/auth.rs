//! BIZ-API authentication: the signing string, SDK key format, sign/verify round trips, every
//! `AuthError`, nonce window edges and replays.

use mpc_api::auth::{
    self, ApiUser, AuthConfig, AuthError, DEFAULT_NONCE_WINDOW_MS, HEADER_API_KEY, HEADER_NONCE,
    HEADER_SIGNATURE, HeaderValues, InMemoryNonceStore, NonceStoreError, SdkKeyError,
};
use mpc_api::envelope::ApiCode;
use mpc_wire::keys::api_key_hex;
use mpc_wire::signature::EcdsaSigner;
use p256::ecdsa::{Signature, SigningKey};

const PATH: &str = "/v1/waas/mpc/web3/sign_result";
const NOW: u64 = 1_700_000_000_000;
const BODY: &[u8] = br#"{"requestId":"r 1","sinoId":"s-1"}"#;

/// The example key pair the public Go SDK ships as `FakePrivateKey` / `FakePublicKey`
/// (a test key published with the SDK, not a secret).
const GO_SDK_EXAMPLE_PRIVATE: &str = "308193020100301306072a8648ce3d020106082a8648ce3d030107047930770201010420d59deed8651f9dc130ce12c7ce9ddbda1129a2dc0d57c6e42596188c041a9aa8a00a06082a8648ce3d030107a1440342000421627f551985a685e00188665a6a2f4fa80d5569fd53b31471785aad62fc9b2e23e8a9ba8a3d03b90d2c8fa5fad26fb2a05a9e7477a1ee5e4228bd85bd660309";
const GO_SDK_EXAMPLE_PUBLIC: &str = "3059301306072a8648ce3d020106082a8648ce3d0301070342000421627f551985a685e00188665a6a2f4fa80d5569fd53b31471785aad62fc9b2e23e8a9ba8a3d03b90d2c8fa5fad26fb2a05a9e7477a1ee5e4228bd85bd660309";

/// [`auth::sign_request`] with a key prepared for this one request.
fn sign(key: &SigningKey, path: &str, body: &[u8], now_ms: u64) -> auth::Headers {
    auth::sign_request(&EcdsaSigner::new(key), path, body, now_ms)
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

fn user_of(k: &SigningKey) -> ApiUser {
    ApiUser {
        organization_id: "org-1".into(),
        user_id: format!("user-{}", api_key_hex(k.verifying_key()).len()),
        verifying_key: *k.verifying_key(),
    }
}

/// Verifies with a lookup that knows exactly `k`.
fn verify_with(
    cfg: AuthConfig,
    k: &SigningKey,
    headers: HeaderValues<'_>,
    path: &str,
    body: &[u8],
    now: u64,
    store: &InMemoryNonceStore,
) -> Result<auth::AuthenticatedCaller, AuthError> {
    let known = api_key_hex(k.verifying_key());
    let user = user_of(k);
    cfg.verify(headers, path, body, now, store, |h| {
        (h == known).then(|| user.clone())
    })
}

fn verify(
    k: &SigningKey,
    headers: HeaderValues<'_>,
    body: &[u8],
    now: u64,
    store: &InMemoryNonceStore,
) -> Result<auth::AuthenticatedCaller, AuthError> {
    verify_with(AuthConfig::default(), k, headers, PATH, body, now, store)
}

// ---------------------------------------------------------------- signing string

#[test]
fn signing_string_of_a_known_body() {
    // Whitespace between tokens and inside strings is removed, as the Go SDK's regexp does;
    // U+3000 (ideographic space) and U+00A0 are not in Go's \s and stay.
    let body = "{\n  \"walletName\": \"my  wallet\tone\",\r\n  \"note\": \"a\u{3000}b\u{a0}c\"\n}";
    let s = auth::signing_string(
        body,
        "/v1/waas/mpc/create_wallets",
        "1692614885153",
        "3059ab",
    );
    assert_eq!(
        s,
        "data{\"walletName\":\"mywalletone\",\"note\":\"a\u{3000}b\u{a0}c\"}\
         path/v1/waas/mpc/create_walletstimestamp1692614885153version1.0.03059ab"
    );
}

#[test]
fn signing_string_matches_the_published_post_example() {
    // The public API documentation's POST example (pretty-printed body, its key string).
    let key = "3056301006072a8648ce3d020106052b8104000a03420004d8caf9385ee3f28df77eab42a0da4b8dc9462a8ad39dbb224c2802cc377df9dc09ac23d04748b40c2897d91bbd7fe859476c6f6fe9b2aa82607e8a48f9b7ac0d";
    let body = "{\n  \"key\": \"key\",\n  \"value\": \"value\"\n}";
    assert_eq!(
        auth::signing_string(body, "/v1/test", "1692614885153", key),
        format!(
            "data{{\"key\":\"key\",\"value\":\"value\"}}path/v1/testtimestamp1692614885153version1.0.0{key}"
        )
    );
}

#[test]
fn empty_body_signing_string() {
    // mpcnode/status is posted without a body.
    assert_eq!(
        auth::signing_string("", "/v1/waas/mpc/mpcnode/status", "5", "k"),
        "datapath/v1/waas/mpc/mpcnode/statustimestamp5version1.0.0k"
    );
}

// ---------------------------------------------------------------- SDK key format

#[test]
fn go_sdk_example_key_loads_and_matches_its_public_key() {
    let k = auth::load_sdk_private_key_hex(GO_SDK_EXAMPLE_PRIVATE).unwrap();
    assert_eq!(api_key_hex(k.verifying_key()), GO_SDK_EXAMPLE_PUBLIC);
    // Trailing newline of a key file, uppercase hex.
    let k2 =
        auth::load_sdk_private_key_hex(&format!("{}\n", GO_SDK_EXAMPLE_PRIVATE.to_uppercase()))
            .unwrap();
    assert_eq!(k, k2);
}

#[test]
fn sdk_key_round_trip() {
    let k = key(9);
    let text = auth::sdk_private_key_hex(&k).unwrap();
    assert!(
        text.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    );
    assert!(text.starts_with("30"));
    assert_eq!(auth::load_sdk_private_key_hex(&text).unwrap(), k);
}

#[test]
fn sdk_key_errors() {
    assert_eq!(
        auth::load_sdk_private_key_hex("zz"),
        Err(SdkKeyError::NotHex)
    );
    assert_eq!(
        auth::load_sdk_private_key_hex("3000"),
        Err(SdkKeyError::NotPkcs8P256)
    );
    // An SPKI is not a private key.
    assert_eq!(
        auth::load_sdk_private_key_hex(GO_SDK_EXAMPLE_PUBLIC),
        Err(SdkKeyError::NotPkcs8P256)
    );
    // A secp256k1 PKCS#8 key (the documentation's Java example) is not P-256.
    let k1 = "30818d020100301006072a8648ce3d020106052b8104000a04763074020101042049888755bcb8bead7efd451426692cebd00c2aba9fad62a6f753343085a7c060a00706052b8104000aa14403420004d8caf9385ee3f28df77eab42a0da4b8dc9462a8ad39dbb224c2802cc377df9dc09ac23d04748b40c2897d91bbd7fe859476c6f6fe9b2aa82607e8a48f9b7ac0d";
    assert_eq!(
        auth::load_sdk_private_key_hex(k1),
        Err(SdkKeyError::NotPkcs8P256)
    );
}

// ---------------------------------------------------------------- round trips

#[test]
fn sign_then_verify() {
    let k = key(1);
    let store = InMemoryNonceStore::new();
    let h = sign(&k, PATH, BODY, NOW);
    assert_eq!(h.api_key, api_key_hex(k.verifying_key()));
    assert_eq!(h.nonce, NOW.to_string());
    assert_eq!(
        h.pairs().map(|(n, _)| n),
        [HEADER_API_KEY, HEADER_NONCE, HEADER_SIGNATURE]
    );
    let caller = verify(&k, h.values(), BODY, NOW, &store).unwrap();
    assert_eq!(caller.organization_id(), "org-1");
    assert_eq!(caller.user().verifying_key, *k.verifying_key());
    assert_eq!(caller.api_key_hex(), h.api_key);
    assert_eq!(caller.nonce_ms(), NOW);
    assert!(caller.user_id().starts_with("user-"));
}

#[test]
fn signature_covers_the_body_without_whitespace() {
    // A body re-formatted with extra whitespace (outside or inside strings) still verifies:
    // that is what the scheme signs. Anything else changed does not.
    let k = key(1);
    let store = InMemoryNonceStore::new();
    let h = sign(&k, PATH, BODY, NOW);
    let pretty = b"{ \"requestId\" : \"r1\",\n\t\"sinoId\": \"s-1\" }\r\n";
    verify(&k, h.values(), pretty, NOW, &store).unwrap();
}

#[test]
fn go_sdk_style_high_s_signature_verifies() {
    let k = key(1);
    let store = InMemoryNonceStore::new();
    let mut h = sign(&k, PATH, BODY, NOW);
    let sig = Signature::from_der(&hex::decode(&h.signature).unwrap()).unwrap();
    let (r, s) = sig.split_scalars();
    let high = Signature::from_scalars(r.to_bytes(), (-s).to_bytes()).unwrap();
    assert!(high.normalize_s().is_some(), "must be the high-S twin");
    h.signature = hex::encode(high.to_der().as_bytes());
    verify(&k, h.values(), BODY, NOW, &store).unwrap();
}

#[test]
fn uppercase_signature_hex_is_accepted() {
    let k = key(1);
    let store = InMemoryNonceStore::new();
    let mut h = sign(&k, PATH, BODY, NOW);
    h.signature = h.signature.to_uppercase();
    verify(&k, h.values(), BODY, NOW, &store).unwrap();
}

#[test]
fn header_lookup_helper() {
    let k = key(1);
    let h = sign(&k, PATH, BODY, NOW);
    let pairs = h.pairs();
    let values = HeaderValues::from_lookup(|name| {
        pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    });
    assert_eq!(values, h.values());
}

// ---------------------------------------------------------------- every error

#[test]
fn missing_headers() {
    let k = key(1);
    let store = InMemoryNonceStore::new();
    let h = sign(&k, PATH, BODY, NOW);
    for (drop, name) in [
        (0, HEADER_API_KEY),
        (1, HEADER_NONCE),
        (2, HEADER_SIGNATURE),
    ] {
        let mut v = h.values();
        match drop {
            0 => v.api_key = None,
            1 => v.nonce = None,
            _ => v.signature = None,
        }
        let err = verify(&k, v, BODY, NOW, &store).unwrap_err();
        assert_eq!(err, AuthError::MissingHeader(name));
        assert_eq!(err.code(), ApiCode::Unauthorized);
    }
    assert_eq!(
        verify(&k, HeaderValues::default(), BODY, NOW, &store).unwrap_err(),
        AuthError::MissingHeader(HEADER_API_KEY)
    );
}

fn assert_malformed(err: AuthError, header: &str) {
    match err {
        AuthError::MalformedHeader { header: h, .. } => assert_eq!(h, header),
        other => panic!("expected malformed {header}, got {other:?}"),
    }
}

#[test]
fn malformed_api_key() {
    let k = key(1);
    let store = InMemoryNonceStore::new();
    let h = sign(&k, PATH, BODY, NOW);
    let upper = h.api_key.to_uppercase();
    // Compressed-point SPKI of the same key: valid DER, not the canonical spelling.
    let compressed = {
        // The SPKI DER prefix of a 33-byte P-256 point, then the point.
        let point = k.verifying_key().to_encoded_point(true);
        let mut der = hex::decode("3039301306072a8648ce3d020106082a8648ce3d030107032200").unwrap();
        der.extend_from_slice(point.as_bytes());
        hex::encode(der)
    };
    assert!(mpc_wire::keys::verifying_key_from_api_key_hex(&compressed).is_ok());
    for bad in [
        &b"zz"[..],
        b"",
        b"3059",
        upper.as_bytes(),
        compressed.as_bytes(),
        &[0xff, 0xfe],
        GO_SDK_EXAMPLE_PRIVATE.as_bytes(),
    ] {
        let mut v = h.values();
        v.api_key = Some(bad);
        assert_malformed(
            verify(&k, v, BODY, NOW, &store).unwrap_err(),
            HEADER_API_KEY,
        );
    }
}

#[test]
fn malformed_nonce() {
    let k = key(1);
    let store = InMemoryNonceStore::new();
    let h = sign(&k, PATH, BODY, NOW);
    for bad in [
        &b""[..],
        b"abc",
        b"01700000000000",
        b"-1",
        b"1700000000000.0",
        b" 1700000000000",
        b"17000000000000000000000",
        &[0xff],
    ] {
        let mut v = h.values();
        v.nonce = Some(bad);
        assert_malformed(verify(&k, v, BODY, NOW, &store).unwrap_err(), HEADER_NONCE);
    }
}

#[test]
fn malformed_signature() {
    let k = key(1);
    let store = InMemoryNonceStore::new();
    let h = sign(&k, PATH, BODY, NOW);
    let raw_rs = {
        let sig = Signature::from_der(&hex::decode(&h.signature).unwrap()).unwrap();
        hex::encode(sig.to_bytes())
    };
    for bad in [
        &b""[..],
        b"xyz",
        b"abc",
        b"3000",
        raw_rs.as_bytes(),
        &[0xc3, 0x28],
    ] {
        let mut v = h.values();
        v.signature = Some(bad);
        assert_malformed(
            verify(&k, v, BODY, NOW, &store).unwrap_err(),
            HEADER_SIGNATURE,
        );
    }
}

#[test]
fn unknown_key() {
    let k = key(1);
    let other = key(2);
    let store = InMemoryNonceStore::new();
    // Signed by a key nobody registered.
    let h = sign(&other, PATH, BODY, NOW);
    let err = verify(&k, h.values(), BODY, NOW, &store).unwrap_err();
    assert_eq!(err, AuthError::UnknownKey);
    assert_eq!(err.code(), ApiCode::Unauthorized);
    // A lookup that returns a user registered under a different key is refused too.
    let h = sign(&k, PATH, BODY, NOW);
    let err = auth::verify_request(h.values(), PATH, BODY, NOW, &store, |_| {
        Some(user_of(&other))
    })
    .unwrap_err();
    assert_eq!(err, AuthError::UnknownKey);
    assert!(store.is_empty());
}

#[test]
fn bad_signature() {
    let k = key(1);
    let store = InMemoryNonceStore::new();
    let h = sign(&k, PATH, BODY, NOW);
    // Other body, other path, other nonce value, signed by another key.
    let tampered = br#"{"requestId":"r 2","sinoId":"s-1"}"#;
    assert_eq!(
        verify(&k, h.values(), tampered, NOW, &store).unwrap_err(),
        AuthError::BadSignature
    );
    assert_eq!(
        verify_with(
            AuthConfig::default(),
            &k,
            h.values(),
            "/v1/waas/mpc/web3/sign_message",
            BODY,
            NOW,
            &store
        )
        .unwrap_err(),
        AuthError::BadSignature
    );
    let mut v = h.values();
    let later = (NOW + 1).to_string();
    v.nonce = Some(later.as_bytes());
    assert_eq!(
        verify(&k, v, BODY, NOW, &store).unwrap_err(),
        AuthError::BadSignature
    );
    let forged = sign(&key(2), PATH, BODY, NOW);
    let mut v = h.values();
    v.signature = Some(forged.signature.as_bytes());
    assert_eq!(
        verify(&k, v, BODY, NOW, &store).unwrap_err(),
        AuthError::BadSignature
    );
    // A body whose non-whitespace differs by case is different.
    assert_eq!(
        verify(&k, h.values(), &BODY.to_ascii_uppercase(), NOW, &store).unwrap_err(),
        AuthError::BadSignature
    );
    // Failed requests consume no nonce: the genuine one still goes through.
    assert!(store.is_empty());
    verify(&k, h.values(), BODY, NOW, &store).unwrap();
}

#[test]
fn nonce_window_edges() {
    let k = key(1);
    let w = DEFAULT_NONCE_WINDOW_MS;
    // Exactly one window old / ahead: accepted (inclusive bound).
    let store = InMemoryNonceStore::new();
    let old = sign(&k, PATH, BODY, NOW - w);
    verify(&k, old.values(), BODY, NOW, &store).unwrap();
    let ahead = sign(&k, PATH, BODY, NOW + w);
    verify(&k, ahead.values(), BODY, NOW, &store).unwrap();
    // One millisecond more: refused.
    let stale = sign(&k, PATH, BODY, NOW - w - 1);
    assert_eq!(
        verify(&k, stale.values(), BODY, NOW, &store).unwrap_err(),
        AuthError::StaleNonce {
            nonce_ms: NOW - w - 1,
            now_ms: NOW,
            window_ms: w
        }
    );
    let future = sign(&k, PATH, BODY, NOW + w + 1);
    let err = verify(&k, future.values(), BODY, NOW, &store).unwrap_err();
    assert_eq!(
        err,
        AuthError::FutureNonce {
            nonce_ms: NOW + w + 1,
            now_ms: NOW,
            window_ms: w
        }
    );
    assert_eq!(err.code(), ApiCode::Unauthorized);
    // Extremes do not overflow.
    let zero = sign(&k, PATH, BODY, 0);
    assert!(matches!(
        verify(&k, zero.values(), BODY, NOW, &store),
        Err(AuthError::StaleNonce { .. })
    ));
    let max = sign(&k, PATH, BODY, 9_999_999_999_999_999_999);
    assert!(matches!(
        verify(&k, max.values(), BODY, NOW, &store),
        Err(AuthError::FutureNonce { .. })
    ));
    let near_zero = sign(&k, PATH, BODY, 3);
    verify(&k, near_zero.values(), BODY, 5, &store).unwrap();
}

#[test]
fn configurable_window() {
    let k = key(1);
    let store = InMemoryNonceStore::new();
    let cfg = AuthConfig { window_ms: 1000 };
    let h = sign(&k, PATH, BODY, NOW - 1000);
    verify_with(cfg, &k, h.values(), PATH, BODY, NOW, &store).unwrap();
    let h = sign(&k, PATH, BODY, NOW - 1001);
    assert!(matches!(
        verify_with(cfg, &k, h.values(), PATH, BODY, NOW, &store),
        Err(AuthError::StaleNonce {
            window_ms: 1000,
            ..
        })
    ));
    let zero = AuthConfig { window_ms: 0 };
    let h = sign(&k, PATH, BODY, NOW);
    verify_with(zero, &k, h.values(), PATH, BODY, NOW, &store).unwrap();
    let h = sign(&k, PATH, BODY, NOW + 1);
    assert!(matches!(
        verify_with(zero, &k, h.values(), PATH, BODY, NOW, &store),
        Err(AuthError::FutureNonce { .. })
    ));
}

#[test]
fn replay_is_refused_within_the_window() {
    let k = key(1);
    let other = key(2);
    let store = InMemoryNonceStore::new();
    let h = sign(&k, PATH, BODY, NOW);
    verify(&k, h.values(), BODY, NOW, &store).unwrap();
    // Same request again, at the same time and at the last moment of the window.
    for now in [NOW, NOW + 1, NOW + DEFAULT_NONCE_WINDOW_MS] {
        let err = verify(&k, h.values(), BODY, now, &store).unwrap_err();
        assert_eq!(err, AuthError::ReplayedNonce { nonce_ms: NOW });
        assert_eq!(err.code(), ApiCode::Unauthorized);
    }
    // Same nonce, different body: still a replay of the nonce.
    let h2 = sign(&k, "/v1/waas/mpc/mpcnode/status", b"", NOW);
    assert_eq!(
        verify_with(
            AuthConfig::default(),
            &k,
            h2.values(),
            "/v1/waas/mpc/mpcnode/status",
            b"",
            NOW,
            &store
        )
        .unwrap_err(),
        AuthError::ReplayedNonce { nonce_ms: NOW }
    );
    // Another key may use the same millisecond.
    let ho = sign(&other, PATH, BODY, NOW);
    verify(&other, ho.values(), BODY, NOW, &store).unwrap();
    // After the window the old request is stale, not a replay (the store has forgotten it).
    assert!(matches!(
        verify(
            &k,
            h.values(),
            BODY,
            NOW + DEFAULT_NONCE_WINDOW_MS + 1,
            &store
        ),
        Err(AuthError::StaleNonce { .. })
    ));
    let fresh = sign(&k, PATH, BODY, NOW + DEFAULT_NONCE_WINDOW_MS + 1);
    verify(
        &k,
        fresh.values(),
        BODY,
        NOW + DEFAULT_NONCE_WINDOW_MS + 1,
        &store,
    )
    .unwrap();
    assert_eq!(store.len(), 1, "expired nonces are purged");
}

#[test]
fn nonce_store_failure_is_unavailable_not_unauthorized() {
    let k = key(1);
    let store = InMemoryNonceStore::with_capacity(0);
    let h = sign(&k, PATH, BODY, NOW);
    let err = verify(&k, h.values(), BODY, NOW, &store).unwrap_err();
    assert_eq!(
        err,
        AuthError::NonceStore(NonceStoreError::Full { capacity: 0 })
    );
    assert_eq!(err.code(), ApiCode::Unavailable);
}

#[test]
fn error_messages() {
    let msgs = [
        AuthError::MissingHeader(HEADER_NONCE).to_string(),
        AuthError::MalformedHeader {
            header: HEADER_API_KEY,
            reason: "not hex",
        }
        .to_string(),
        AuthError::UnknownKey.to_string(),
        AuthError::StaleNonce {
            nonce_ms: 1,
            now_ms: 400_000,
            window_ms: 300_000,
        }
        .to_string(),
        AuthError::FutureNonce {
            nonce_ms: 800_000,
            now_ms: 400_000,
            window_ms: 300_000,
        }
        .to_string(),
        AuthError::ReplayedNonce { nonce_ms: 5 }.to_string(),
        AuthError::BadSignature.to_string(),
        AuthError::NonceStore(NonceStoreError::Backend("db down".into())).to_string(),
    ];
    insta::assert_json_snapshot!(msgs);
}
