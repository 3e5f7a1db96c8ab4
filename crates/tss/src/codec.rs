//! Encodings: CBOR for protocol messages on the wire (compact, self-describing, which the
//! libraries' serde impls need), versioned JSON for stored objects (key shares,
//! presignatures), so a share written today loads tomorrow and can be inspected.

use serde::{Serialize, de::DeserializeOwned};

/// Largest envelope accepted (aux-info messages carry ~0.3 MB of proofs per round).
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;

/// A decoding failure (the text names the problem, never secret content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Encodes `v` as CBOR. Serializing our own in-memory values to a `Vec` cannot fail for the
/// types used here; should it ever, the result is an empty buffer that every decoder refuses.
pub fn to_cbor<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    if ciborium::into_writer(v, &mut out).is_err() {
        out.clear();
    }
    out
}

/// Decodes CBOR, refusing input over `limit` bytes and trailing garbage.
pub fn from_cbor<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError(format!(
            "{} bytes exceed the {limit}-byte limit",
            bytes.len()
        )));
    }
    let mut reader = bytes;
    let v = ciborium::de::from_reader_with_recursion_limit(&mut reader, 64)
        .map_err(|e| DecodeError(format!("invalid CBOR: {e}")))?;
    if !reader.is_empty() {
        return Err(DecodeError(format!(
            "{} trailing bytes after the message",
            reader.len()
        )));
    }
    Ok(v)
}

/// Stored-object header: `{"format": ..., "version": N, "data": ...}`.
#[derive(Serialize, serde::Deserialize)]
struct Stored<T> {
    format: String,
    version: u32,
    data: T,
}

/// Serializes a stored object with its format name and version.
pub(crate) fn to_stored<T: Serialize>(format: &str, version: u32, data: &T) -> Vec<u8> {
    #[derive(Serialize)]
    struct StoredRef<'a, T> {
        format: &'a str,
        version: u32,
        data: &'a T,
    }
    serde_json::to_vec(&StoredRef {
        format,
        version,
        data,
    })
    .unwrap_or_default()
}

/// Reads a stored object, checking format name and version.
pub(crate) fn from_stored<T: DeserializeOwned>(
    format: &'static str,
    version: u32,
    bytes: &[u8],
) -> Result<T, crate::error::InputError> {
    let err = |reason: String| crate::error::InputError::Stored {
        what: format,
        reason,
    };
    #[derive(serde::Deserialize)]
    struct Header {
        format: String,
        version: u32,
    }
    let h: Header = serde_json::from_slice(bytes).map_err(|e| err(json_error(&e)))?;
    if h.format != format {
        return Err(err(format!("it is a {:?}", h.format)));
    }
    if h.version != version {
        return Err(err(format!(
            "format version {} is not supported (this build reads {version})",
            h.version
        )));
    }
    let s: Stored<T> = serde_json::from_slice(bytes).map_err(|e| err(json_error(&e)))?;
    Ok(s.data)
}

/// Describes a JSON error by kind and position only: serde's messages can quote the offending
/// value, which for stored secrets must never reach a log.
fn json_error(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}
