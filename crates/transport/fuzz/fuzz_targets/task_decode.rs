//! Untrusted task and task-result bytes (a node decodes tasks the proxy relays; the coordinator
//! decodes results): decoding never panics, and whatever decodes re-encodes to the same value.
//! The signed wrappers around them (`mpc_transport::signed`) are decoded and checked the same
//! way: never a panic, and nothing verifies under a key that did not sign it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_transport::p256::ecdsa::SigningKey;
use mpc_transport::signed::{SignedTask, verify_result};
use mpc_transport::task::{Task, TaskResult};

fuzz_target!(|data: &[u8]| {
    if let Ok(task) = Task::decode(data) {
        let bytes = task.encode().expect("a decoded task re-encodes");
        assert_eq!(Task::decode(&bytes).expect("re-encoding decodes"), task);
    }
    if let Ok(result) = TaskResult::decode(data) {
        let bytes = result.encode().expect("a decoded result re-encodes");
        assert_eq!(TaskResult::decode(&bytes).expect("re-encoding decodes"), result);
    }
    let key = SigningKey::from_slice(&[0x11; 32]).expect("a valid scalar");
    if let Ok(signed) = SignedTask::decode(data) {
        let _ = signed.clone().verify(signed.signer());
        assert!(signed.verify(key.verifying_key()).is_err(), "forged under our key");
    }
    let node_id = mpc_wire::keys::node_id(key.verifying_key());
    assert!(verify_result(data, &node_id).is_err(), "forged under our key");
});
