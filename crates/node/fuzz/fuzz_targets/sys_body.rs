//! `cargo +nightly fuzz run sys_body`: the `/sys` request body parser never panics, and its
//! error messages never repeat the body (which carries a password).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_node::body::parse_bkey;

fuzz_target!(|data: &[u8]| {
    match parse_bkey(data) {
        Ok(key) => assert!(!key.is_empty()),
        Err(e) => {
            let msg = e.to_string();
            // A refused body longer than any fixed message text cannot appear in it.
            if data.len() > 200 {
                if let Ok(t) = std::str::from_utf8(data) {
                    assert!(!msg.contains(t));
                }
            }
        }
    }
});
