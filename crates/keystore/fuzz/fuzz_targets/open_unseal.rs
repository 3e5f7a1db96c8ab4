//! `cargo +nightly fuzz run open_unseal`: opening, unsealing and reading a damaged store of
//! either engine must give errors, never a panic or an abort (redb panics on some corrupt
//! structures; the key store must contain them).
//!
//! Input: byte 0 picks the engine (bit 0) and the damage (bits 1–2) applied to a valid store
//! made once per process: 0 = truncate, 1 = flip bytes at (offset, mask) pairs, 2 = overwrite
//! a window with the input, 3 = the input is the whole file.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mpc_keystore::Engine;
use mpc_keystore::fuzzing::{open_and_unseal, valid_store};

static SEEDS: OnceLock<[Vec<u8>; 2]> = OnceLock::new();

fn u16_at(b: &[u8], i: usize) -> usize {
    usize::from(b.get(i).copied().unwrap_or(0)) << 8 | usize::from(b.get(i + 1).copied().unwrap_or(0))
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let seeds = SEEDS.get_or_init(|| {
        [
            valid_store(Engine::Bolt).expect("bolt seed"),
            valid_store(Engine::Sgx).expect("sgx seed"),
        ]
    });
    let (engine, seed) = if sel & 1 == 0 {
        (Engine::Bolt, &seeds[0])
    } else {
        (Engine::Sgx, &seeds[1])
    };
    let mut file = seed.clone();
    match (sel >> 1) & 3 {
        0 => file.truncate(u16_at(rest, 0) * 4 % (seed.len() + 1)),
        1 => {
            for pair in rest.chunks_exact(3) {
                let at = u16_at(pair, 0) * 4 % seed.len();
                file[at] ^= pair[2];
            }
        }
        2 => {
            let at = u16_at(rest, 0) * 4 % seed.len();
            for (d, s) in file[at..].iter_mut().zip(rest.iter().skip(2)) {
                *d = *s;
            }
        }
        _ => file = rest.to_vec(),
    }
    let _ = open_and_unseal(engine, &file);
});
