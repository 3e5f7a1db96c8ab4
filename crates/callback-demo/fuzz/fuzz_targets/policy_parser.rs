//! Any text as a policy file: parses or errors, never panics; a parsed policy evaluates a
//! fixed request without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_callback_demo::amount::Amount;
use mpc_callback_demo::policy::Policy;
use mpc_wire::callback::Check;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = Policy::from_toml_str(text) {
        let body = br#"{"callback_id":"c","request_type":"sign","request_detail":{"sign_type":"1","tx_info":{"chainSymbol":"ETH","assetId":"ETH","to":"0x1","amount":"1.5"}},"extra_info":{}}"#;
        if let Ok(check) = Check::from_json(body) {
            let _ = policy.evaluate(&check, |_| Amount::ZERO, false);
        }
    }
});
