//! Engine `bolt`: redb, one redb table per logical table (`t/<name>`) plus `__meta` holding the
//! header under key `header`. Every write is one redb transaction with `Durability::Immediate`,
//! so the header (counter, wrapped key) and the data change together or not at all.

use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableHandle,
};

use super::{Tables, WriteView};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::fsutil;
use crate::header::Header;

/// First bytes of every redb file.
pub(crate) const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("__meta");
const HEADER_KEY: &str = "header";
const TABLE_PREFIX: &str = "t/";

fn def(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

pub(crate) struct Bolt {
    path: PathBuf,
    db: Database,
}

fn dberr(path: &Path) -> impl Fn(redb::Error) -> Error + '_ {
    move |e| match e {
        redb::Error::Corrupted(detail) => Error::Corrupt {
            path: path.to_owned(),
            detail,
        },
        redb::Error::DatabaseAlreadyOpen => Error::Database {
            path: path.to_owned(),
            detail: "already open (is another mpc-node running on this file?)".into(),
        },
        other => Error::Database {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    }
}

fn classify_open(path: &Path, e: redb::DatabaseError) -> Error {
    let e: redb::Error = e.into();
    match e {
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => Error::Truncated {
            path: path.to_owned(),
            detail: "database pages missing".into(),
        },
        redb::Error::Io(io) => Error::io("open database", path, io),
        other => dberr(path)(other),
    }
}

impl Bolt {
    /// Opens the file. The header is first read through a read-only handle and given to
    /// `precheck` (format, policy, rollback), so a rejected file is never opened for writing.
    /// If the read-only open fails (e.g. the file needs crash recovery, which only a writable open
    /// performs), the writable open runs and `precheck` is applied after it.
    pub(crate) fn open(path: &Path, precheck: &dyn Fn(&Header) -> Result<()>) -> Result<Self> {
        let probed = std::panic::catch_unwind(|| redb::ReadOnlyDatabase::open(path))
            .ok()
            .and_then(std::result::Result::ok);
        if let Some(ro) = probed {
            let h = read_header(path, &ro)?;
            precheck(&h)?;
            drop(ro);
        }
        // redb may panic on some corrupt inputs; a corrupt file must give an error, not a panic.
        let opened =
            std::panic::catch_unwind(|| Database::open(path)).map_err(|_| Error::Corrupt {
                path: path.to_owned(),
                detail: "database structure is invalid".into(),
            })?;
        let db = opened.map_err(|e| classify_open(path, e))?;
        let bolt = Bolt {
            path: path.to_owned(),
            db,
        };
        precheck(&bolt.header()?)?;
        Ok(bolt)
    }

    pub(crate) fn create(path: &Path, header: &Header, tables: &Tables) -> Result<()> {
        let dir = fsutil::parent_dir(path)?;
        let tmp = fsutil::sibling(path, ".init.tmp");
        // Create the (empty) file with mode 0600 first; redb then initialises it in place.
        drop(fsutil::create_private(&tmp)?);
        let db = Database::create(&tmp).map_err(|e| dberr(&tmp)(e.into()))?;
        let bolt = Bolt {
            path: tmp.clone(),
            db,
        };
        bolt.write_raw(|txn| {
            {
                let mut meta = txn.open_table(META).map_err(|e| dberr(&tmp)(e.into()))?;
                meta.insert(HEADER_KEY, header.to_json()?.as_slice())
                    .map_err(|e| dberr(&tmp)(e.into()))?;
            }
            for (name, recs) in tables {
                let tname = format!("{TABLE_PREFIX}{name}");
                let mut t = txn
                    .open_table(def(&tname))
                    .map_err(|e| dberr(&tmp)(e.into()))?;
                for (k, v) in recs {
                    t.insert(k.as_slice(), v.as_slice())
                        .map_err(|e| dberr(&tmp)(e.into()))?;
                }
            }
            Ok(())
        })?;
        drop(bolt);
        failpoint::hit("create.before_rename")?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))?;
        fsutil::fsync_dir(&dir)
    }

    fn write_raw<R>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<R>) -> Result<R> {
        let e = dberr(&self.path);
        let mut txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|x| e(x.into()))?;
        let r = f(&txn)?;
        // Dropping `txn` here (failpoint) aborts it: a simulated crash before commit.
        failpoint::hit("bolt.before_commit")?;
        txn.commit().map_err(|x| e(x.into()))?;
        Ok(r)
    }

    pub(crate) fn header(&self) -> Result<Header> {
        read_header(&self.path, &self.db)
    }

    pub(crate) fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let e = dberr(&self.path);
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let tname = format!("{TABLE_PREFIX}{table}");
        let t = match txn.open_table(def(&tname)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(x) => return Err(e(x.into())),
        };
        Ok(t.get(key)
            .map_err(|x| e(x.into()))?
            .map(|g| g.value().to_vec()))
    }

    pub(crate) fn list_keys(&self, table: &str) -> Result<Vec<Vec<u8>>> {
        let e = dberr(&self.path);
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let tname = format!("{TABLE_PREFIX}{table}");
        let t = match txn.open_table(def(&tname)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(x) => return Err(e(x.into())),
        };
        let mut out = Vec::new();
        for item in t.iter().map_err(|x| e(x.into()))? {
            let (k, _) = item.map_err(|x| e(x.into()))?;
            out.push(k.value().to_vec());
        }
        Ok(out)
    }

    pub(crate) fn count(&self, table: &str) -> Result<u64> {
        let e = dberr(&self.path);
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let tname = format!("{TABLE_PREFIX}{table}");
        match txn.open_table(def(&tname)) {
            Ok(t) => t.len().map_err(|x| e(x.into())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(x) => Err(e(x.into())),
        }
    }

    pub(crate) fn dump(&self) -> Result<(Header, Tables)> {
        let e = dberr(&self.path);
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let meta = txn.open_table(META).map_err(|x| e(x.into()))?;
        let raw = meta
            .get(HEADER_KEY)
            .map_err(|x| e(x.into()))?
            .ok_or_else(|| Error::NotAKeyStore {
                path: self.path.clone(),
                reason: "header record missing".into(),
            })?;
        let header = parse_header(&self.path, raw.value())?;
        let mut tables = Tables::new();
        let names: Vec<String> = txn
            .list_tables()
            .map_err(|x| e(x.into()))?
            .map(|h| h.name().to_owned())
            .filter(|n| n.starts_with(TABLE_PREFIX))
            .collect();
        for tname in names {
            let t = txn.open_table(def(&tname)).map_err(|x| e(x.into()))?;
            let mut recs = std::collections::BTreeMap::new();
            for item in t.iter().map_err(|x| e(x.into()))? {
                let (k, v) = item.map_err(|x| e(x.into()))?;
                recs.insert(k.value().to_vec(), v.value().to_vec());
            }
            tables.insert(tname[TABLE_PREFIX.len()..].to_owned(), recs);
        }
        Ok((header, tables))
    }

    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut dyn WriteView) -> Result<R>) -> Result<R> {
        self.write_raw(|txn| {
            let mut view = BoltView {
                path: &self.path,
                txn,
            };
            f(&mut view)
        })
    }
}

fn parse_header(path: &Path, raw: &[u8]) -> Result<Header> {
    let v: serde_json::Value = serde_json::from_slice(raw).map_err(|x| Error::Corrupt {
        path: path.to_owned(),
        detail: format!("header is not JSON: {x}"),
    })?;
    Header::from_value(path, v)
}

struct BoltView<'a> {
    path: &'a Path,
    txn: &'a redb::WriteTransaction,
}

impl WriteView for BoltView<'_> {
    fn header(&mut self) -> Result<Header> {
        let e = dberr(self.path);
        let meta = self.txn.open_table(META).map_err(|x| e(x.into()))?;
        let raw = meta
            .get(HEADER_KEY)
            .map_err(|x| e(x.into()))?
            .ok_or_else(|| Error::NotAKeyStore {
                path: self.path.to_owned(),
                reason: "header record missing".into(),
            })?;
        parse_header(self.path, raw.value())
    }

    fn set_header(&mut self, h: &Header) -> Result<()> {
        let e = dberr(self.path);
        let mut meta = self.txn.open_table(META).map_err(|x| e(x.into()))?;
        meta.insert(HEADER_KEY, h.to_json()?.as_slice())
            .map_err(|x| e(x.into()))?;
        Ok(())
    }

    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let e = dberr(self.path);
        let tname = format!("{TABLE_PREFIX}{table}");
        let mut t = self.txn.open_table(def(&tname)).map_err(|x| e(x.into()))?;
        t.insert(key, value).map_err(|x| e(x.into()))?;
        Ok(())
    }

    fn remove(&mut self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let e = dberr(self.path);
        let tname = format!("{TABLE_PREFIX}{table}");
        let mut t = self.txn.open_table(def(&tname)).map_err(|x| e(x.into()))?;
        let old = t
            .remove(key)
            .map_err(|x| e(x.into()))?
            .map(|g| g.value().to_vec());
        Ok(old)
    }
}

fn read_header(path: &Path, db: &impl ReadableDatabase) -> Result<Header> {
    let e = dberr(path);
    let txn = db.begin_read().map_err(|x| e(x.into()))?;
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(Error::NotAKeyStore {
                path: path.to_owned(),
                reason: "redb database without a key-store header".into(),
            });
        }
        Err(x) => return Err(e(x.into())),
    };
    let raw = meta
        .get(HEADER_KEY)
        .map_err(|x| e(x.into()))?
        .ok_or_else(|| Error::NotAKeyStore {
            path: path.to_owned(),
            reason: "header record missing".into(),
        })?;
    parse_header(path, raw.value())
}
