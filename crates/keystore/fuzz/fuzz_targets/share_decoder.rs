//! `cargo +nightly fuzz run share_decoder`: the t>1 share decoder must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mpc_keystore::fuzzing::decode_share(text);
        let mut c = mpc_keystore::ShareCollector::new(2).expect("t=2 is valid");
        for part in text.split('\n') {
            let _ = c.add(part);
        }
        if c.is_complete() {
            let _ = c.combine();
        }
    }
});
