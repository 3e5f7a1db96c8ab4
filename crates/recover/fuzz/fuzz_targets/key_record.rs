//! `cargo +nightly fuzz run key_record`: any bytes as a key record read from a backup (either
//! table) give a record or an error naming the problem, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_recover::record::{KEY_SHARES, KEY_SHARES_NEXT, parse};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let table = if sel & 1 == 0 { KEY_SHARES } else { KEY_SHARES_NEXT };
    if let Ok(r) = parse("key", table, bytes) {
        let _ = (r.share.public_key(), r.share.threshold(), r.share.chain_code());
    }
});
