//! Fuzzer-chosen message values under a fixed schema that uses every EIP-712 type kind, so the
//! value encoders (integers, addresses, bytes, arrays, nested and null structs) are reached far
//! more often than from random whole documents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_chains::eip712::{TypedData, TypedDataVersion};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let doc = json!({
        "types": {
            "EIP712Domain": [{"name": "chainId", "type": "uint256"}],
            "Inner": [
                {"name": "a", "type": "address"}, {"name": "b", "type": "bool"},
                {"name": "i", "type": "int24"}, {"name": "u", "type": "uint64"},
                {"name": "f", "type": "bytes3"}, {"name": "d", "type": "bytes"},
                {"name": "s", "type": "string"}
            ],
            "Outer": [
                {"name": "inner", "type": "Inner"}, {"name": "list", "type": "Inner[]"},
                {"name": "grid", "type": "int256[2][]"}, {"name": "self", "type": "Outer[]"}
            ]
        },
        "primaryType": "Outer",
        "domain": {"chainId": "0x1"},
        "message": message
    });
    let Ok(typed) = TypedData::from_value(doc) else {
        return;
    };
    let v4 = typed.signing_payload(TypedDataVersion::V4);
    if let Ok(payload) = &v4 {
        assert_eq!(
            payload.digest(),
            payload.hash_kind().hash(payload.preimage())
        );
    }
    // The schema has arrays: v3 must refuse it whatever the values are.
    assert!(typed.signing_payload(TypedDataVersion::V3).is_err());
});
