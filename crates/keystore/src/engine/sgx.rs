//! Engine `sgx`: one sealed JSON text file holding the header and every sealed record (Base64),
//! replaced atomically on every write (temp file, write, fsync, rename, fsync directory).
//!
//! ```json
//! {
//!   "header": { "magic": "mpc-node-keystore", "format_version": 1, ... },
//!   "tables": { "<table>": { "<base64 key>": "<base64 nonce‖ciphertext‖tag>" } }
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{Tables, WriteView};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::header::Header;

/// Largest sgx file read (1 GiB).
pub(crate) const MAX_FILE: u64 = 1 << 30;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    header: serde_json::Value,
    tables: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Clone)]
struct State {
    header: Header,
    tables: Tables,
}

pub(crate) struct Sgx {
    path: PathBuf,
    state: Mutex<State>,
}

/// Parses an sgx document. Public to the crate for the fuzz target.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<(Header, Tables)> {
    let doc: Doc = serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Eof => Error::Truncated {
                path: path.to_owned(),
                detail: format!("JSON ends early: {e}"),
            },
            Category::Io => Error::Corrupt {
                path: path.to_owned(),
                detail: e.to_string(),
            },
            Category::Syntax | Category::Data => {
                if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                    Error::NotAKeyStore {
                        path: path.to_owned(),
                        reason: "bad magic".into(),
                    }
                } else if serde_json::from_slice::<serde_json::Value>(bytes).is_ok() {
                    // Valid JSON but not our document: check magic for a precise error.
                    match serde_json::from_slice::<serde_json::Value>(bytes)
                        .ok()
                        .and_then(|v| v.get("header").cloned())
                        .and_then(|h| h.get("magic").cloned())
                    {
                        Some(serde_json::Value::String(m)) if m == crate::header::MAGIC => {
                            Error::Corrupt {
                                path: path.to_owned(),
                                detail: e.to_string(),
                            }
                        }
                        _ => Error::NotAKeyStore {
                            path: path.to_owned(),
                            reason: "bad magic".into(),
                        },
                    }
                } else {
                    Error::Corrupt {
                        path: path.to_owned(),
                        detail: e.to_string(),
                    }
                }
            }
        }
    })?;
    let header = Header::from_value(path, doc.header)?;
    let mut tables = Tables::new();
    for (name, recs) in doc.tables {
        let mut out = BTreeMap::new();
        for (k, v) in recs {
            let kb = STANDARD.decode(&k).map_err(|_| Error::Corrupt {
                path: path.to_owned(),
                detail: format!("table {name}: key {k:?} is not Base64"),
            })?;
            let vb = STANDARD.decode(&v).map_err(|_| Error::Corrupt {
                path: path.to_owned(),
                detail: format!("table {name}: value of key {k:?} is not Base64"),
            })?;
            out.insert(kb, vb);
        }
        tables.insert(name, out);
    }
    Ok((header, tables))
}

/// Serializes header + tables into the document (pretty JSON, sorted, trailing newline).
pub(crate) fn render(header: &Header, tables: &Tables) -> Result<Vec<u8>> {
    let doc = Doc {
        header: serde_json::to_value(header)
            .map_err(|_| Error::Crypto("header serialization failed"))?,
        tables: tables
            .iter()
            .map(|(name, recs)| {
                (
                    name.clone(),
                    recs.iter()
                        .map(|(k, v)| (STANDARD.encode(k), STANDARD.encode(v)))
                        .collect(),
                )
            })
            .collect(),
    };
    let mut out = serde_json::to_vec_pretty(&doc)
        .map_err(|_| Error::Crypto("document serialization failed"))?;
    out.push(b'\n');
    Ok(out)
}

impl Sgx {
    pub(crate) fn open(path: &Path, precheck: &dyn Fn(&Header) -> Result<()>) -> Result<Self> {
        let bytes = fsutil::read_limited(path, MAX_FILE)?;
        let (header, tables) = parse(path, &bytes)?;
        precheck(&header)?;
        Ok(Sgx {
            path: path.to_owned(),
            state: Mutex::new(State { header, tables }),
        })
    }

    pub(crate) fn create(path: &Path, header: &Header, tables: &Tables) -> Result<()> {
        fsutil::atomic_write(path, &render(header, tables)?)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the state is replaced only on success.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn header(&self) -> Result<Header> {
        Ok(self.lock().header.clone())
    }

    pub(crate) fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .lock()
            .tables
            .get(table)
            .and_then(|t| t.get(key))
            .cloned())
    }

    pub(crate) fn list_keys(&self, table: &str) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .lock()
            .tables
            .get(table)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default())
    }

    pub(crate) fn count(&self, table: &str) -> Result<u64> {
        Ok(self.lock().tables.get(table).map_or(0, |t| t.len() as u64))
    }

    pub(crate) fn dump(&self) -> Result<(Header, Tables)> {
        let s = self.lock();
        Ok((s.header.clone(), s.tables.clone()))
    }

    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut dyn WriteView) -> Result<R>) -> Result<R> {
        let mut guard = self.lock();
        let mut next = guard.clone();
        let r = f(&mut SgxView { state: &mut next })?;
        next.tables.retain(|_, t| !t.is_empty());
        fsutil::atomic_write(&self.path, &render(&next.header, &next.tables)?)?;
        *guard = next;
        Ok(r)
    }
}

struct SgxView<'a> {
    state: &'a mut State,
}

impl WriteView for SgxView<'_> {
    fn header(&mut self) -> Result<Header> {
        Ok(self.state.header.clone())
    }
    fn set_header(&mut self, h: &Header) -> Result<()> {
        self.state.header = h.clone();
        Ok(())
    }
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.state
            .tables
            .entry(table.to_owned())
            .or_default()
            .insert(key.to_vec(), value.to_vec());
        Ok(())
    }
    fn remove(&mut self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.state.tables.get_mut(table).and_then(|t| t.remove(key)))
    }
}
