//! Property test for the t-of-n password shares: any t of n shares rebuild the secret (with the
//! key store's combine and with an independent interpolation), t-1 do not.

mod common;

use mpc_keystore::shamir;
use proptest::prelude::*;
use rand_core::SeedableRng;

fn params() -> impl Strategy<Value = (u8, u8, Vec<u8>, u64, Vec<usize>)> {
    (2u8..=6)
        .prop_flat_map(|t| (Just(t), t..=8u8))
        .prop_flat_map(|(t, n)| {
            (
                Just(t),
                Just(n),
                proptest::collection::vec(any::<u8>(), 12..40),
                any::<u64>(),
                Just((0..usize::from(n)).collect::<Vec<usize>>()).prop_shuffle(),
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_t_of_n_rebuild_and_t_minus_1_do_not((t, n, secret, seed, order) in params()) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let shares = shamir::split(&secret, t, n, &mut rng).unwrap();
        prop_assert_eq!(shares.len(), usize::from(n));
        let pick: Vec<Vec<u8>> = order.iter().take(usize::from(t)).map(|&i| shares[i].to_vec()).collect();
        // Round trip through the text form.
        let texts: Vec<String> = pick.iter().map(|s| shamir::encode_share(s)).collect();
        let decoded: Vec<Vec<u8>> = texts.iter().map(|s| common::b64(s)).collect();
        prop_assert_eq!(&decoded, &pick);
        prop_assert_eq!(common::independent_combine(&pick), secret.clone());
        let refs: Vec<&[u8]> = pick.iter().map(|s| s.as_slice()).collect();
        prop_assert_eq!(shamir::combine(&refs).unwrap().to_vec(), secret.clone());
        // t-1 shares: refused (one share) or a different value (2^-96 chance of a false match).
        let fewer = &pick[..usize::from(t) - 1];
        prop_assert_ne!(common::independent_combine(fewer), secret.clone());
        let refs: Vec<&[u8]> = fewer.iter().map(|s| s.as_slice()).collect();
        match shamir::combine(&refs) {
            Ok(v) => prop_assert_ne!(v.to_vec(), secret),
            Err(_) => prop_assert_eq!(fewer.len(), 1),
        }
    }
}
