//! A corrupt stored DKLs23 share is refused with an error, never a panic; what loads re-stores
//! to bytes that load again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_tss::dkls::DklsKeyShare;

fuzz_target!(|data: &[u8]| {
    if let Ok(share) = DklsKeyShare::from_stored_bytes(data) {
        let again = DklsKeyShare::from_stored_bytes(&share.to_stored_bytes())
            .expect("a loaded share re-stores");
        assert_eq!(again.public_key(), share.public_key());
    }
});
