//! Integration tests of mpc-tss: all parties in one process through the `sim` harness. Every
//! signature is checked by an independent verifier (k256 for ECDSA and BIP340, ed25519-dalek
//! for ed25519) under a public key derived independently where a standard exists (`bip32`).

mod common;
mod dkls;
mod ecdsa;
mod frost;
mod hd;
mod misbehaviour;
mod snapshots;
