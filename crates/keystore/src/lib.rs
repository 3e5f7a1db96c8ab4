//! TODO docs
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod crypto;
mod engine;
mod error;
mod failpoint;
mod fsutil;
mod header;
pub mod password;
pub mod shamir;
mod store;

pub use crypto::KdfParams;
pub use engine::Engine;
pub use error::{Error, Result};
pub use header::{FORMAT_VERSION, MAGIC};
pub use password::{PasswordRuleError, check_password, generate_password};
pub use shamir::{Progress, ShareCollector, ShareError};
pub use store::{
    Backoff, BackupInfo, Batch, InspectReport, KeyStore, MAX_RECORD, Opened, Sealed, State, Step,
    StoreConfig, StoreInfo, Uninitialized, Unsealed, Witness, inspect, public_keys, tables,
};

#[cfg(test)]
mod tests;
