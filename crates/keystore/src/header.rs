//! The store header: identical logical content for both engines, serialized as JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::{self, KdfParams, Key32};
use crate::error::{Error, Result};
use rand_core::CryptoRngCore;
use std::path::Path;

/// Magic string identifying a key store.
pub const MAGIC: &str = "mpc-node-keystore";
/// Format version written by this build.
pub const FORMAT_VERSION: u32 = 1;
/// Oldest format version this build reads.
pub const MIN_FORMAT_VERSION: u32 = 1;

/// KDF section of the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KdfHeader {
    pub algorithm: String,
    pub version: u32,
    #[serde(flatten)]
    pub params: KdfParams,
    pub salt: String,
}

/// The header. `checksum` is SHA-256 (hex) over the JSON of the header with an empty checksum; it
/// only catches accidental corruption. Tampering is caught by the AEADs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    pub magic: String,
    pub format_version: u32,
    pub engine: String,
    pub counter: u64,
    pub t: u8,
    pub n: u8,
    pub kdf: KdfHeader,
    pub wrapped_data_key: String,
    /// Digest of the whole record set (hex; see [`crypto::record_mac`]), authenticated with the
    /// counter by `counter_tag`. Absent only in files written before it existed; the first
    /// unseal adds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_set: Option<String>,
    pub counter_tag: String,
    pub checksum: String,
}

/// Only the first fields, to give precise errors before parsing the rest.
#[derive(Deserialize)]
struct Probe {
    magic: Option<serde_json::Value>,
    format_version: Option<serde_json::Value>,
}

impl Header {
    #[allow(clippy::too_many_arguments)] // each is a distinct header input
    pub(crate) fn new(
        engine: &str,
        t: u8,
        n: u8,
        params: KdfParams,
        kek: &Key32,
        salt: &[u8],
        dek: &Key32,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Self> {
        let aad = crypto::wrap_aad(FORMAT_VERSION, t, n, &params, salt);
        let wrapped = kek.seal(rng, dek.as_bytes(), &aad)?;
        let mut h = Header {
            magic: MAGIC.to_owned(),
            format_version: FORMAT_VERSION,
            engine: engine.to_owned(),
            counter: 0,
            t,
            n,
            kdf: KdfHeader {
                algorithm: "argon2id".to_owned(),
                version: 0x13,
                params,
                salt: STANDARD.encode(salt),
            },
            wrapped_data_key: STANDARD.encode(wrapped),
            record_set: None,
            counter_tag: String::new(),
            checksum: String::new(),
        };
        h.set_counter(1, dek, rng)?;
        Ok(h)
    }

    /// The record-set digest, if the header has one.
    pub(crate) fn record_set_bytes(&self) -> Result<Option<[u8; 32]>> {
        match &self.record_set {
            None => Ok(None),
            Some(h) => {
                let mut d = [0u8; 32];
                hex::decode_to_slice(h, &mut d)
                    .map_err(|_| Error::Crypto("record-set digest is not 32 bytes of hex"))?;
                Ok(Some(d))
            }
        }
    }

    /// Sets the record-set digest (call [`Header::set_counter`] after it: the tag covers it).
    pub(crate) fn set_record_set(&mut self, d: &[u8; 32]) {
        self.record_set = Some(hex::encode(d));
    }

    pub(crate) fn salt(&self) -> Result<Vec<u8>> {
        STANDARD
            .decode(&self.kdf.salt)
            .map_err(|_| Error::Crypto("salt is not base64"))
    }

    /// Sets the counter, its tag and the checksum.
    pub(crate) fn set_counter(
        &mut self,
        counter: u64,
        dek: &Key32,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<()> {
        self.counter = counter;
        let set = self.record_set_bytes()?;
        let aad = crypto::counter_aad(
            self.format_version,
            &self.engine,
            counter,
            set.as_ref().map(|d| &d[..]),
        );
        self.counter_tag = STANDARD.encode(dek.seal(rng, &[], &aad)?);
        self.reseal_checksum()
    }

    pub(crate) fn reseal_checksum(&mut self) -> Result<()> {
        self.checksum = self.compute_checksum()?;
        Ok(())
    }

    fn compute_checksum(&self) -> Result<String> {
        let mut c = self.clone();
        c.checksum.clear();
        let bytes =
            serde_json::to_vec(&c).map_err(|_| Error::Crypto("header serialization failed"))?;
        Ok(hex::encode(Sha256::digest(&bytes)))
    }

    /// Checks the counter tag under the data key.
    pub(crate) fn verify_counter(&self, dek: &Key32) -> Result<()> {
        let set = self
            .record_set_bytes()
            .map_err(|_| Error::CounterTampered {
                plain: self.counter,
            })?;
        let aad = crypto::counter_aad(
            self.format_version,
            &self.engine,
            self.counter,
            set.as_ref().map(|d| &d[..]),
        );
        let blob = STANDARD
            .decode(&self.counter_tag)
            .map_err(|_| Error::CounterTampered {
                plain: self.counter,
            })?;
        match dek.open(&blob, &aad) {
            Some(pt) if pt.is_empty() => Ok(()),
            _ => Err(Error::CounterTampered {
                plain: self.counter,
            }),
        }
    }

    /// Unwraps the data key with a KEK; `None` on AEAD failure (wrong password).
    pub(crate) fn unwrap_dek(&self, kek: &Key32) -> Result<Option<Key32>> {
        let salt = self.salt()?;
        let aad = crypto::wrap_aad(self.format_version, self.t, self.n, &self.kdf.params, &salt);
        let blob = STANDARD
            .decode(&self.wrapped_data_key)
            .map_err(|_| Error::Crypto("wrapped data key is not base64"))?;
        Ok(kek.open(&blob, &aad).and_then(|pt| Key32::from_slice(&pt)))
    }

    /// Re-wraps the data key under a new KEK/salt (password change).
    pub(crate) fn rewrap(
        &mut self,
        kek: &Key32,
        salt: &[u8],
        params: KdfParams,
        dek: &Key32,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<()> {
        self.kdf.params = params;
        self.kdf.salt = STANDARD.encode(salt);
        let aad = crypto::wrap_aad(self.format_version, self.t, self.n, &params, salt);
        self.wrapped_data_key = STANDARD.encode(kek.seal(rng, dek.as_bytes(), &aad)?);
        self.reseal_checksum()
    }

    pub(crate) fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|_| Error::Crypto("header serialization failed"))
    }

    /// Parses and validates a header value (from the DB's meta table or the sgx document).
    pub(crate) fn from_value(path: &Path, v: serde_json::Value) -> Result<Self> {
        let probe: Probe = serde_json::from_value(v.clone()).map_err(|e| Error::Corrupt {
            path: path.to_owned(),
            detail: format!("header is not an object: {e}"),
        })?;
        match probe.magic {
            Some(serde_json::Value::String(m)) if m == MAGIC => {}
            _ => {
                return Err(Error::NotAKeyStore {
                    path: path.to_owned(),
                    reason: "bad magic".into(),
                });
            }
        }
        let version = probe
            .format_version
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| Error::Corrupt {
                path: path.to_owned(),
                detail: "format_version missing".into(),
            })?;
        if version > FORMAT_VERSION {
            return Err(Error::NewerFormat {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if version < MIN_FORMAT_VERSION {
            return Err(Error::OlderFormat {
                found: version,
                min: MIN_FORMAT_VERSION,
            });
        }
        let h: Header = serde_json::from_value(v).map_err(|e| Error::Corrupt {
            path: path.to_owned(),
            detail: format!("header fields: {e}"),
        })?;
        if h.compute_checksum()? != h.checksum {
            return Err(Error::Corrupt {
                path: path.to_owned(),
                detail: "header checksum mismatch".into(),
            });
        }
        if h.kdf.algorithm != "argon2id" || h.kdf.version != 0x13 {
            return Err(Error::BadKdfParams(format!(
                "unsupported KDF {} v{}",
                h.kdf.algorithm, h.kdf.version
            )));
        }
        h.kdf.params.validate()?;
        if h.engine != "bolt" && h.engine != "sgx" {
            return Err(Error::Corrupt {
                path: path.to_owned(),
                detail: format!("unknown engine {:?}", h.engine),
            });
        }
        if h.t == 0 || h.n < h.t {
            return Err(Error::Corrupt {
                path: path.to_owned(),
                detail: format!("impossible t={} n={}", h.t, h.n),
            });
        }
        Ok(h)
    }
}
