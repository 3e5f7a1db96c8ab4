//! Untrusted bus messages (a proxy decodes deliveries, a coordinator decodes events, both from
//! a NATS server anyone on the bus network can publish to): decoding never panics, and
//! whatever decodes re-encodes to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_bus::codec::{
    decode_delivery, decode_event, decode_relay, encode_delivery, encode_event, encode_relay,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = decode_delivery(data) {
        assert_eq!(decode_delivery(&encode_delivery(&d)).expect("re-encoding decodes"), d);
    }
    if let Ok(e) = decode_event(data) {
        assert_eq!(decode_event(&encode_event(&e)).expect("re-encoding decodes"), e);
    }
    if let Ok(r) = decode_relay(data) {
        assert_eq!(decode_relay(&encode_relay(&r)).expect("re-encoding decodes"), r);
    }
});
