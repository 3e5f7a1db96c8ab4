//! Untrusted response bodies: parsing and verification never panic, and a forged response is
//! never an approval.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_wire::callback::{Check, Response};
use mpc_wire::p256::ecdsa::SigningKey;
use mpc_wire::signature;

fuzz_target!(|data: &[u8]| {
    let Ok(response) = Response::from_json(data) else {
        return;
    };
    let go = response.to_go_json();
    let again = Response::from_json(&go).expect("Go form of a parsed Response must parse");
    assert_eq!(again, response);
    let Ok(key) = SigningKey::from_slice(&[0x42; 32]) else {
        return;
    };
    let request = Check::default();
    // The fuzzer cannot forge a P-256 signature, so nothing it makes may verify.
    assert!(signature::verify_response(&response, &request, key.verifying_key()).is_err());
    let _ = signature::verify_rawdata_ack(&response, &request, key.verifying_key());
});
