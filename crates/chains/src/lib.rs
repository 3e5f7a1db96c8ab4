//! Chain formats for the MPC coordinator: addresses of public keys and the exact bytes to sign
//! for the public WaaS API (`gen_address_by_path`, `sign_message`).
//!
//! This crate is pure computation: no I/O, no clocks, no randomness, no `unsafe`. Every input
//! that can come from an API caller is validated and ends in a typed error, never a panic.
//!
//! * [`address`]: Bitcoin P2PKH / P2WPKH / P2SH-P2WPKH / P2TR (with the BIP341 tweak), EIP-55
//!   EVM addresses, ed25519 public-key hex and Solana-style base58 addresses.
//! * [`coin`]: which SLIP-44 coin types are Bitcoin and which are EVM chains.
//! * [`message`]: `sign_message` requests to a [`SignPayload`]: the exact preimage bytes, the
//!   hash the signers apply ([`HashKind`]) and the 32-byte digest. [`personal`] is EIP-191
//!   `personal_sign`, [`eip712`] is typed data v3/v4.
//!
//! ```
//! use mpc_chains::address::{bitcoin_address, evm_address, BtcEncoding, Network};
//!
//! # fn main() -> Result<(), mpc_chains::AddressError> {
//! // The secp256k1 generator, i.e. the public key of private key 1.
//! let key = [
//!     0x02, 0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87,
//!     0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16,
//!     0xf8, 0x17, 0x98,
//! ];
//! let encoding = BtcEncoding::try_from(2)?;
//! assert_eq!(
//!     bitcoin_address(&key, encoding, Network::Mainnet)?,
//!     "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
//! );
//! assert_eq!(evm_address(&key)?, "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod address;
pub mod coin;
pub mod eip712;
pub mod error;
pub mod hash;
pub mod message;
pub mod payload;
pub mod personal;

pub use error::{AddressError, Eip712Error, MessageError};
pub use message::{SignMessageKind, sign_message_payload};
pub use payload::{HashKind, SignPayload};
