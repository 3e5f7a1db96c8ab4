//! Any request body through the server's decision path (parse, then the example policy with
//! arbitrary totals): never panics, and a release never turns a REJECT into anything else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_callback_demo::amount::Amount;
use mpc_callback_demo::policy::{Policy, Verdict};
use mpc_wire::callback::Check;

const EXAMPLE: &str = include_str!("../../policy.example.toml");

fuzz_target!(|data: &[u8]| {
    let Some((&spent, body)) = data.split_first() else {
        return;
    };
    let Ok(check) = Check::from_json(body) else {
        return;
    };
    let Ok(policy) = Policy::from_toml_str(EXAMPLE) else {
        return;
    };
    let spent = Amount::parse(&spent.to_string()).unwrap_or(Amount::ZERO);
    let plain = policy.evaluate(&check, |_| spent, false);
    let released = policy.evaluate(&check, |_| spent, true);
    if matches!(plain.verdict, Verdict::Reject(_)) {
        assert!(matches!(released.verdict, Verdict::Reject(_)));
    }
});
