//! Raw tx_info bytes: the compactor never panics, its output is a fixed point, and wherever
//! serde_json also reads the input, both read the same value from input and output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_wire::gojson::compact_raw;

fuzz_target!(|data: &[u8]| {
    let compacted = compact_raw(data);
    if let Ok(strict) = serde_json::from_slice::<serde_json::Value>(data) {
        let out = compacted
            .as_ref()
            .expect("JSON that serde_json accepts must be accepted");
        let reread: serde_json::Value =
            serde_json::from_slice(out).expect("compacted output must parse");
        assert_eq!(reread, strict);
    }
    if let Ok(out) = compacted {
        assert_eq!(compact_raw(&out).as_ref(), Ok(&out));
        assert!(only_string_whitespace(&out));
    }
});

/// Whitespace may survive only inside strings (spaces in values); `<`, `>`, `&` never.
fn only_string_whitespace(out: &[u8]) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for &b in out {
        if matches!(b, b'<' | b'>' | b'&') {
            return false;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            return false;
        }
    }
    true
}
