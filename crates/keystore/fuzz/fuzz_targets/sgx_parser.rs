//! `cargo +nightly fuzz run sgx_parser`: the sgx file parser must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mpc_keystore::fuzzing::parse_sgx(data);
});
