//! Untrusted task and task-result bytes (a node decodes tasks the proxy relays; the coordinator
//! decodes results): decoding never panics, and whatever decodes re-encodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
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
});
