//! Storage engines. Both store opaque bytes: the header (JSON) and, per table, key → sealed
//! record. All cryptography happens in the store layer above.

pub(crate) mod bolt;
pub(crate) mod sgx;

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::header::Header;

/// All tables with all records (for init and backup).
pub(crate) type Tables = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

/// Which engine a store uses (`[storage] engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Embedded crash-safe database file (redb).
    #[default]
    Bolt,
    /// One sealed text (JSON) file, replaced atomically on every write.
    Sgx,
}

impl Engine {
    /// The config/file name of the engine.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Bolt => "bolt",
            Engine::Sgx => "sgx",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "bolt" => Ok(Engine::Bolt),
            "sgx" => Ok(Engine::Sgx),
            other => Err(format!(
                "unknown storage engine {other:?} (expected \"bolt\" or \"sgx\")"
            )),
        }
    }
}

/// A view inside one atomic write.
pub(crate) trait WriteView {
    fn header(&mut self) -> Result<Header>;
    fn set_header(&mut self, h: &Header) -> Result<()>;
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()>;
    fn remove(&mut self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;
}

/// An open store file. One long-lived value per store, so variant size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backend {
    Bolt(bolt::Bolt),
    Sgx(sgx::Sgx),
}

/// Guesses the engine of an existing file from its first bytes.
pub(crate) fn sniff(path: &Path) -> Result<Engine> {
    let head = fsutil::head(path, 16)?;
    if head.is_empty() {
        return Err(Error::Truncated {
            path: path.to_owned(),
            detail: "file is empty".into(),
        });
    }
    if head.starts_with(&bolt::REDB_MAGIC) {
        return Ok(Engine::Bolt);
    }
    if bolt::REDB_MAGIC.starts_with(&head) {
        return Err(Error::Truncated {
            path: path.to_owned(),
            detail: "database header cut short".into(),
        });
    }
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(Engine::Sgx);
    }
    Err(Error::NotAKeyStore {
        path: path.to_owned(),
        reason: "bad magic".into(),
    })
}

impl Backend {
    /// Opens an existing store; `precheck` sees the header before the file is opened for writing.
    pub(crate) fn open(
        path: &Path,
        engine: Engine,
        precheck: &dyn Fn(&Header) -> Result<()>,
    ) -> Result<Self> {
        let found = sniff(path)?;
        if found != engine {
            return Err(Error::EngineMismatch {
                path: path.to_owned(),
                found: found.as_str(),
                configured: engine.as_str(),
            });
        }
        match engine {
            Engine::Bolt => Ok(Backend::Bolt(bolt::Bolt::open(path, precheck)?)),
            Engine::Sgx => Ok(Backend::Sgx(sgx::Sgx::open(path, precheck)?)),
        }
    }

    /// Creates a new store file at `path` (which must not exist) with the given content, in one
    /// atomic step (built beside it, then renamed into place).
    pub(crate) fn create(
        path: &Path,
        engine: Engine,
        header: &Header,
        tables: &Tables,
    ) -> Result<()> {
        if path.exists() {
            return Err(Error::AlreadyExists(path.to_owned()));
        }
        match engine {
            Engine::Bolt => bolt::Bolt::create(path, header, tables),
            Engine::Sgx => sgx::Sgx::create(path, header, tables),
        }
    }

    pub(crate) fn header(&self) -> Result<Header> {
        match self {
            Backend::Bolt(b) => b.header(),
            Backend::Sgx(s) => s.header(),
        }
    }

    pub(crate) fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            Backend::Bolt(b) => b.get(table, key),
            Backend::Sgx(s) => s.get(table, key),
        }
    }

    pub(crate) fn list_keys(&self, table: &str) -> Result<Vec<Vec<u8>>> {
        match self {
            Backend::Bolt(b) => b.list_keys(table),
            Backend::Sgx(s) => s.list_keys(table),
        }
    }

    pub(crate) fn count(&self, table: &str) -> Result<u64> {
        match self {
            Backend::Bolt(b) => b.count(table),
            Backend::Sgx(s) => s.count(table),
        }
    }

    /// Header and every record, from one consistent snapshot.
    pub(crate) fn dump(&self) -> Result<(Header, Tables)> {
        match self {
            Backend::Bolt(b) => b.dump(),
            Backend::Sgx(s) => s.dump(),
        }
    }

    /// Runs `f` inside one atomic write; nothing is stored unless `f` returns `Ok`.
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut dyn WriteView) -> Result<R>) -> Result<R> {
        match self {
            Backend::Bolt(b) => b.write(f),
            Backend::Sgx(s) => s.write(f),
        }
    }
}
