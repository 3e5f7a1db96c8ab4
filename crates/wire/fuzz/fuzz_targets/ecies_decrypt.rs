//! Untrusted ciphertexts: decryption never panics, and fuzzer-made input (which cannot know
//! the HMAC key) never decrypts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_wire::ecies;
use mpc_wire::p256::SecretKey;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = SecretKey::from_slice(&[0x11; 32]) else {
        return;
    };
    assert!(ecies::decrypt(&key, data).is_err());
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(ecies::decrypt_hex(&key, text).is_err());
    }
});
