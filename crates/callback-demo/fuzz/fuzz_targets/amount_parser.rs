//! Amount parsing: never panics, and what parses prints back to a string that parses to the
//! same amount.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_callback_demo::amount::Amount;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(a) = Amount::parse(text) {
        assert_eq!(Amount::parse(&a.to_string()).ok(), Some(a));
    }
});
