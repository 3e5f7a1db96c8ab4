//! The API entry point with untrusted kind and message strings: never panics, and a
//! personal_sign preimage is always prefix ‖ decimal length ‖ the message bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_chains::personal::{MessageEncoding, PERSONAL_SIGN_PREFIX, message_bytes};
use mpc_chains::{SignMessageKind, sign_message_payload};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (kind, message) = text.split_once('\n').unwrap_or(("personal_sign", text));
    let Ok(kind) = kind.parse::<SignMessageKind>() else {
        return;
    };
    let Ok(payload) = sign_message_payload(kind, message) else {
        return;
    };
    assert_eq!(
        payload.digest(),
        payload.hash_kind().hash(payload.preimage())
    );
    if kind == SignMessageKind::PersonalSign {
        let Ok(bytes) = message_bytes(message, MessageEncoding::Auto) else {
            panic!("payload made from a message whose bytes are refused");
        };
        let mut expected = PERSONAL_SIGN_PREFIX.to_vec();
        expected.extend_from_slice(bytes.len().to_string().as_bytes());
        expected.extend_from_slice(&bytes);
        assert_eq!(payload.preimage(), expected.as_slice());
    }
});
