//! `cargo +nightly fuzz run verify_log`: any bytes as an audit log (and as a recorded head)
//! give a report, never a panic; an intact report's head is the last line's hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_audit::{Head, verify};

fuzz_target!(|data: &[u8]| {
    let expect = data.get(..40).map(|h| Head {
        seq: u64::from(h[0]),
        hash: h[8..40].try_into().unwrap_or([0; 32]),
    });
    let report = verify(std::io::Cursor::new(data), expect).expect("a cursor does not fail");
    assert!(report.problems.len() as u64 <= report.problem_count);
    let _ = report.to_string();
});
