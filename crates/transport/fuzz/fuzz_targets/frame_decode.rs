//! Untrusted frames: decoding never panics; whatever decodes re-encodes to a frame that decodes
//! to the same value; and no fuzzer-made protocol frame opens (it cannot sign as the sender).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_transport::frame::Frame;
use mpc_transport::keys::TransportSecret;
use mpc_transport::p256::ecdsa::SigningKey;
use mpc_transport::seal::open;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = Frame::decode(data) else {
        return;
    };
    let bytes = frame.encode().expect("a decoded frame re-encodes");
    assert_eq!(Frame::decode(&bytes).expect("re-encoding decodes"), frame);
    if let Frame::Protocol(sealed) = &frame {
        let Ok(sender) = SigningKey::from_slice(&[0x11; 32]) else {
            return;
        };
        let me = TransportSecret::from_bytes(&[0x22; 32].into());
        let receiver = sealed.header.receiver.clone().unwrap_or_default();
        assert!(open(sealed, &me, sender.verifying_key(), &receiver).is_err());
    }
});
