//! Sealed key store of `mpc-node`: where the node keeps its identity key, threshold key shares,
//! presignatures, prime pool and metadata, encrypted at rest and unlocked by a password (t = 1) or
//! by t of n Shamir shares (t > 1). A pure library: no HTTP, no async runtime; the node's local
//! API ("unseal server") calls it.
//!
//! # States
//!
//! [`KeyStore::open`] never creates or modifies anything and returns one of
//!
//! * [`Uninitialized`] — no file at `db-file-path`. [`Uninitialized::init`] (`/sys/init`) takes
//!   the password (t = 1, complexity rule enforced) or one share per call (t > 1) and creates the
//!   file in one atomic step with optional initial records (e.g. the node identity key).
//! * [`Sealed`] — the file exists and passed every structural check, but the data key is not in
//!   memory. Only non-secret facts are available ([`Sealed::info`], unverified public metadata
//!   such as the node id). [`Sealed::unseal`] (`/sys/in-bkey`) turns it into …
//! * [`Unsealed`] — the **only** type with methods that read or write secret records.
//!   [`Unsealed::seal`] drops (and zeroizes) the data key.
//!
//! Security facts are types, not booleans: code that holds a `Sealed` cannot read a secret.
//!
//! # Key hierarchy (envelope encryption, after HashiCorp Vault)
//!
//! ```text
//! password (t=1)  ─┐
//!                  ├─ secret ──Argon2id(salt, m, t, p)──▶ KEK (256 bit)
//! t shares (t>1) ──┘   (Shamir combine, Vault format)         │ XChaCha20-Poly1305
//!                                                             ▼
//!                                              data key (random 256 bit, wrapped in header)
//!                                                             │ XChaCha20-Poly1305, random
//!                                                             ▼ 192-bit nonce per record
//!                                                   every secret record
//! ```
//!
//! * Record AAD = `"mpc-keystore/record\0" ‖ format version ‖ len‖table ‖ len‖key`, so a record
//!   copied to another table or key, or into a file of another format version, fails.
//! * The wrapped data key's AAD binds the format version, t, n, the KDF parameters and the salt, so
//!   weakening the stored KDF parameters makes the unwrap fail.
//! * Public metadata (node id, public key; table `__public`) is stored in clear so `seal-status`
//!   can show it while sealed, with an AEAD tag under the data key that [`Unsealed::get_public`]
//!   and [`inspect`] verify.
//! * A password change re-wraps the data key only (records are not re-encrypted) in one atomic
//!   write; for t > 1 the new secret comes from a fresh share set.
//! * [`Unsealed::rotate_data_key`] (`mpc-node rotate-key`) re-encrypts every record under a fresh
//!   data key in one atomic write, so a backup taken before (and its password) cannot read what
//!   is written after.
//! * KDF: Argon2id v0x13, default m = 64 MiB, t = 3, p = 4 (RFC 9106 second recommendation);
//!   parameters and a 256-bit random salt are stored in the header and always used from there.
//!   [`KdfParams::insecure_for_tests`] exists for tests only. Parameters read from a file are
//!   capped (4 GiB, 64 passes, 64 lanes) so a forged header cannot exhaust memory.
//!
//! # Header (both engines, JSON)
//!
//! `magic` (`"mpc-node-keystore"`), `format_version` (1), `engine`, `counter`, `t`, `n`,
//! `kdf {algorithm, version, m_cost_kib, t_cost, p_cost, salt}`, `wrapped_data_key`
//! (Base64 `nonce ‖ ciphertext ‖ tag`), `record_set` (hex digest of all records, see below;
//! absent in files written before it), `counter_tag` (AEAD tag under the data key over the
//! counter and `record_set`), `checksum` (SHA-256 of the header with an empty checksum; catches accidental damage
//! while sealed — tampering is caught by the AEADs). A newer `format_version` is refused
//! ("format version 3 is newer than this program supports"), an older one too (downgrade).
//!
//! # Engines (`[storage] engine`)
//!
//! * `bolt` (default): a [redb](https://docs.rs/redb) file. Table `__meta` holds the header under
//!   key `header`; each logical table is a redb table `t/<name>` of key → `nonce ‖ ct ‖ tag`.
//!   Every write is one redb transaction with `Durability::Immediate` that also rewrites the
//!   header (counter), so data and header change together or not at all. Before the file is opened
//!   for writing, its header is read through a read-only handle and checked (format, t/n,
//!   rollback); a rejected file is not opened for writing. (While a store is open, redb marks
//!   the file as in use in its own header; that flag is redb's, not data.)
//! * `sgx`: one pretty-printed JSON text file
//!   `{"header": {…}, "tables": {"<table>": {"<b64 key>": "<b64 nonce‖ct‖tag>"}}}`, rewritten on
//!   every write atomically: temp file `<path>.tmp` (mode 0600), write, fsync, rename, fsync the
//!   directory. Its exact layout is pinned by an insta snapshot, and a v1 file committed under
//!   `src/testdata` must keep loading.
//!
//! Creation (init, backup) builds the complete file beside the target and renames it into place.
//! Files are created with mode 0600 and tightened to 0600 on open. Directories are never created:
//! a missing directory is [`Error::MissingDirectory`].
//!
//! # Rollback and its limits
//!
//! The header counter grows on every write and is authenticated under the data key together
//! with a digest of the whole record set (`counter_tag` over counter ‖ `record_set`, checked at
//! unseal: [`Error::CounterTampered`]). `record_set` is the XOR of HMAC-SHA256 over every stored
//! record (table, key, stored bytes) under a key derived from the data key (an XOR MAC,
//! Bellare–Guérin–Rogaway 1995), updated incrementally by every write in the same transaction;
//! [`Unsealed::verify_all`] (the node runs it at unseal) and [`inspect`] recompute it, so today's
//! header copied onto older records is [`Error::RecordSetMismatch`]. Files from before the digest
//! get it at their first unseal ([`Unsealed::ensure_record_set`]). After commits the counter is
//! written to a high-water-mark file `<db-file-path>.hwm` ([`Witness::Sidecar`]) by a writer
//! thread, so that a commit does not wait for two more fsyncs (commits in flight share one
//! write; a crash can leave the file behind by the last few milliseconds of commits;
//! [`Unsealed::flush_witness`] waits for it, and the store's last owner does at close); opening a
//! file whose counter is below it fails with [`Error::Rollback`] ("rollback detected: counter 5 <
//! last seen 7"). Callers with a better witness (another machine, a TPM counter) pass it with
//! [`StoreConfig::min_counter`]. Honest limits: an attacker who can roll back the store **and**
//! the `.hwm` file together (or delete the `.hwm`) is not detected by the sidecar; only an
//! external witness catches a full-directory rollback. Restoring a backup is a deliberate
//! rollback: delete the `.hwm` file when doing so.
//!
//! # Wrong passwords
//!
//! A wrong password or share set shows as an AEAD failure of the wrapped data key (the AEAD tag
//! check is constant time; the new-vs-current password comparison uses `subtle`). Nothing is
//! written. Failures are counted in memory and logged (`tracing`, without the secret); the error
//! [`Error::WrongPassword`] carries the delay before the next attempt (default 0.5 s doubling to
//! 30 s, [`Backoff`]). This crate never sleeps: attempts inside the delay are refused with
//! [`Error::RetryLater`] without being evaluated, so an async caller can sleep or answer 400
//! itself. For t > 1 the share progress is reset after a failed attempt.
//!
//! # t-of-n shares
//!
//! [`shamir`] implements HashiCorp Vault's format exactly (GF(2^8), polynomial 0x11B, share =
//! `y-bytes ‖ x`, standard padded Base64), as the guide's companion password tool emits. No
//! audited crate produces this exact byte layout (and `sharks` is out: RUSTSEC-2024-0398), so it
//! is a small constant-time implementation tested against FIPS-197 field values, hand-computed
//! shares and property tests. Shares arrive one per call in any order; malformed and duplicate
//! shares are refused without disturbing the collected ones; progress is reported as
//! [`Progress`]. The t = 1 complexity rule does not apply to the rebuilt t > 1 secret (the tool's
//! random 16-character passwords do not always contain every class); it must be >= 12 bytes.
//!
//! # Records and atomicity
//!
//! [`Unsealed`] offers `get`, `put`, `delete`, `take` (read + delete in one transaction: a
//! presignature is handed out at most once, across crashes and threads), `list_keys`, `count`,
//! and [`Batch`] for multi-record atomic writes. Table names: 1–64 of `a-z 0-9 _`; see
//! [`tables`] for the ones the node uses.
//!
//! # Backup
//!
//! [`Unsealed::backup_to`] writes a consistent copy while the store stays in use (bolt: one read
//! transaction copied into a fresh redb file; sgx: the in-memory state under the store lock), same
//! password, without the single-use tables ([`tables::SINGLE_USE`]: presignatures and pooled
//! primes), so a node restored from a backup regenerates them and can never use one twice. [`inspect`] opens a store or backup without a node, unseals it, authenticates every
//! record and reports the format version, counter, node id and records per table.
//!
//! # Crash safety, tested
//!
//! Test builds have failpoints between write, fsync, rename (sgx) and before commit (bolt); the
//! tests crash a password change and a `take` at each point, reopen from disk and check that the
//! old or the new state (never neither) is there.
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
mod witness;

/// Entry points for the fuzz targets in `fuzz/` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    /// Parses an sgx document; errors are fine, panics are bugs.
    pub fn parse_sgx(bytes: &[u8]) -> bool {
        crate::engine::sgx::parse(std::path::Path::new("fuzz-input"), bytes).is_ok()
    }
    /// Decodes one share in text form.
    pub fn decode_share(text: &str) -> bool {
        crate::shamir::decode_share(text).is_ok()
    }

    use crate::{Batch, Engine, KdfParams, KeyStore, Opened, Step, StoreConfig, Witness};

    /// The password of [`valid_store`].
    pub const PASSWORD: &str = "Fuzz-Password-1";

    fn scratch_dir() -> std::io::Result<std::path::PathBuf> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mpc-keystore-fuzz-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    fn config(engine: Engine) -> Option<StoreConfig> {
        Some(
            StoreConfig::new(engine, 1, 1)
                .ok()?
                .kdf(KdfParams::insecure_for_tests())
                .witness(Witness::None),
        )
    }

    /// The bytes of a valid store of `engine` (password [`PASSWORD`]) with a few records in
    /// two tables and public metadata: the seed the open-and-unseal target corrupts.
    pub fn valid_store(engine: Engine) -> Option<Vec<u8>> {
        let dir = scratch_dir().ok()?;
        let path = dir.join("asset.db");
        let made = (|| {
            let Opened::Uninitialized(mut u) = KeyStore::open(&path, config(engine)?).ok()? else {
                return None;
            };
            let mut b = Batch::new();
            b.put_public("node_id", b"fuzz-node");
            for i in 0..40u32 {
                b.put("shares", &i.to_be_bytes(), &[i as u8; 300]);
                b.put("presignatures", &i.to_be_bytes(), &[7; 64]);
            }
            let Step::Done(store) = u.init(PASSWORD, &b).ok()? else {
                return None;
            };
            drop(store);
            std::fs::read(&path).ok()
        })();
        let _ = std::fs::remove_dir_all(&dir);
        made
    }

    /// Writes `file` as a store of `engine`, opens it, unseals it with [`PASSWORD`] and reads
    /// every record, as the node does. Errors are fine, panics are bugs. Returns `true` if
    /// everything opened and read.
    pub fn open_and_unseal(engine: Engine, file: &[u8]) -> bool {
        let Ok(dir) = scratch_dir() else {
            return false;
        };
        let path = dir.join("asset.db");
        let ok = std::fs::write(&path, file).is_ok() && open_unseal_read(&path, engine);
        let _ = std::fs::remove_dir_all(&dir);
        ok
    }

    fn open_unseal_read(path: &std::path::Path, engine: Engine) -> bool {
        let Some(cfg) = config(engine) else {
            return false;
        };
        let Ok(Opened::Sealed(mut sealed)) = KeyStore::open(path, cfg) else {
            return false;
        };
        let _ = sealed.info();
        let _ = sealed.get_public_unverified("node_id");
        let Ok(Step::Done(u)) = sealed.unseal(PASSWORD) else {
            return false;
        };
        let mut all = u.get_public("node_id").is_ok() & u.verify_all().is_ok();
        for table in ["shares", "presignatures"] {
            let Ok(keys) = u.list_keys(table) else {
                return false;
            };
            all &= u.count(table).is_ok();
            for k in keys {
                all &= u.get(table, &k).is_ok();
            }
        }
        all
    }
}

pub use crypto::KdfParams;
pub use engine::Engine;
pub use error::{Error, Result};
pub use header::{FORMAT_VERSION, MAGIC};
pub use password::{PasswordRuleError, check_password, generate_password};
pub use shamir::{Progress, ShareCollector, ShareError};
pub use store::{
    Backoff, BackupInfo, Batch, InspectReport, KeyStore, MAX_RECORD, Opened,
    PASSWORD_CHANGE_WINDOW, Sealed, State, Step, StoreConfig, StoreInfo, Uninitialized, Unsealed,
    Witness, inspect, public_keys, tables,
};

#[cfg(test)]
mod tests;
