//! Untrusted typed-data JSON: parsing and hashing never panic, the digest is the hash of the
//! preimage, and whatever v3 accepts v4 accepts with the same digest (v4 only adds arrays and
//! null structs, which v3 refuses).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_chains::eip712::{TypedData, TypedDataVersion};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(typed) = TypedData::from_json(text) else {
        return;
    };
    let v4 = typed.signing_payload(TypedDataVersion::V4);
    if let Ok(payload) = &v4 {
        let preimage = payload.preimage();
        assert!(preimage.len() == 66 || preimage.len() == 34);
        assert_eq!(&preimage[..2], &[0x19, 0x01]);
        assert_eq!(payload.digest(), payload.hash_kind().hash(preimage));
    }
    if let Ok(v3) = typed.signing_payload(TypedDataVersion::V3) {
        assert_eq!(Ok(v3), v4, "v3 accepted what v4 hashes differently");
    }
});
