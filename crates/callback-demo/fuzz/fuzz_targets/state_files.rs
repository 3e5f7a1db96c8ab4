//! The data directory read at start (`Store::open`): any `state.json` and `audit.jsonl` (the
//! journal replayed onto the checkpoint) give a store or an error, never a panic. The input is
//! split at its first 0xff byte: state file before, journal after.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_callback_demo::store::{AUDIT_FILE, STATE_FILE, Store};

fuzz_target!(|data: &[u8]| {
    let (state, journal) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    let dir = std::env::temp_dir().join(format!("mpc-callback-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(s) = state {
        std::fs::write(dir.join(STATE_FILE), s).unwrap();
    }
    std::fs::write(dir.join(AUDIT_FILE), journal).unwrap();
    let _ = Store::open(&dir);
});
