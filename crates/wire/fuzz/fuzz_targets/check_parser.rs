//! Untrusted request bodies: parsing never panics, and whatever parses re-serializes to Go
//! form that parses back to the same request and is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_wire::callback::Check;

fuzz_target!(|data: &[u8]| {
    let Ok(check) = Check::from_json(data) else {
        return;
    };
    let go = check.to_go_json();
    let again = Check::from_json(&go).expect("Go form of a parsed Check must parse");
    assert_eq!(again, check);
    assert_eq!(again.to_go_json(), go);
    let _ = check.request_type();
    let _ = check.sign_type();
});
