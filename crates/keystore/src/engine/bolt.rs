//! Engine `bolt`: redb, one redb table per logical table (`t/<name>`) plus `__meta` holding the
//! header under key `header`. Every write is one redb transaction with `Durability::Immediate`,
//! so the header (counter, wrapped key) and the data change together or not at all.
//!
//! A damaged file must give an error, never take the process down. redb can panic on some
//! corrupt structures (`entered unreachable code` in its B-tree code), so:
//!
//! * [`Bolt::open`] walks the whole file (header and every record of every table) through a
//!   read-only handle, under `catch_unwind`, before the file is opened for writing. A file that
//!   fails the walk is refused with [`Error::Corrupt`] / [`Error::Truncated`] and never written.
//!   Only a file that needs crash recovery (unclean shutdown) goes straight to the writable open,
//!   which repairs it, and is walked after it.
//! * Every later call into redb runs under `catch_unwind`; after a panic the handle is poisoned:
//!   every call answers [`Error::Corrupt`] without touching redb again, and the database handle
//!   is leaked rather than dropped (its destructor would write to the damaged file).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// `None` only after a poisoned handle was leaked in `drop`.
    db: Option<Database>,
    /// Set once redb panicked on this file.
    poisoned: AtomicBool,
}

/// Runs `f` and turns a panic inside redb into [`Error::Corrupt`].
fn no_panic<R>(path: &Path, what: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::Corrupt {
            path: path.to_owned(),
            detail: format!(
                "the database engine failed while {what} (damaged file structure); restore the file from a backup"
            ),
        })
    })
}

impl Drop for Bolt {
    fn drop(&mut self) {
        let db = self.db.take();
        if self.poisoned.load(Ordering::SeqCst) {
            // Dropping would run redb's shutdown on a damaged file: leak the handle instead.
            std::mem::forget(db);
        } else {
            let path = self.path.clone();
            let _ = no_panic(&path, "closing the file", || {
                drop(db);
                Ok(())
            });
        }
    }
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
    /// `precheck` (format, policy, rollback), and every record of every table is read once
    /// (structure check), so a rejected or damaged file is never opened for writing.
    /// If the read-only open reports that the file needs crash recovery (which only a writable
    /// open performs), the writable open runs and both checks are applied after it.
    pub(crate) fn open(path: &Path, precheck: &dyn Fn(&Header) -> Result<()>) -> Result<Self> {
        let probed = no_panic(path, "opening the file read-only", || {
            Ok(redb::ReadOnlyDatabase::open(path))
        })?;
        match probed {
            Ok(ro) => {
                let walked = no_panic(path, "reading the file", || {
                    let h = read_header(path, &ro)?;
                    precheck(&h)?;
                    walk(path, &ro)
                });
                let closed = no_panic(path, "closing the read-only handle", || {
                    drop(ro);
                    Ok(())
                });
                walked?;
                closed?;
            }
            // Unclean shutdown: the writable open repairs it. Already open: the writable open
            // reports it in the same words.
            Err(redb::DatabaseError::RepairAborted | redb::DatabaseError::DatabaseAlreadyOpen) => {}
            Err(e) => return Err(classify_open(path, e)),
        }
        let db = no_panic(path, "opening the file", || {
            Database::open(path).map_err(|e| classify_open(path, e))
        })?;
        let bolt = Bolt {
            path: path.to_owned(),
            db: Some(db),
            poisoned: AtomicBool::new(false),
        };
        precheck(&bolt.header()?)?;
        bolt.guarded("reading the file", |db| walk(path, db))?;
        Ok(bolt)
    }

    /// Runs `f` on the database; a panic inside redb poisons this handle (see the module doc).
    fn guarded<R>(&self, what: &str, f: impl FnOnce(&Database) -> Result<R>) -> Result<R> {
        let poisoned = || {
            Error::Corrupt {
            path: self.path.clone(),
            detail: "the database engine failed on this file earlier (damaged file structure); restore the file from a backup and restart the node".into(),
        }
        };
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(poisoned());
        }
        let Some(db) = self.db.as_ref() else {
            return Err(poisoned());
        };
        let mut panicked = true;
        let r = no_panic(&self.path, what, || {
            let r = f(db);
            panicked = false;
            r
        });
        if panicked {
            self.poisoned.store(true, Ordering::SeqCst);
            tracing::error!(path = %self.path.display(), "redb failed on a damaged file ({what}); the store refuses further use");
        }
        r
    }

    pub(crate) fn create(path: &Path, header: &Header, tables: &Tables) -> Result<()> {
        let dir = fsutil::parent_dir(path)?;
        let tmp = fsutil::sibling(path, ".init.tmp");
        // Create the (empty) file with mode 0600 first; redb then initialises it in place.
        drop(fsutil::create_private(&tmp)?);
        let db = Database::create(&tmp).map_err(|e| dberr(&tmp)(e.into()))?;
        let bolt = Bolt {
            path: tmp.clone(),
            db: Some(db),
            poisoned: AtomicBool::new(false),
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
        self.guarded("writing", |db| {
            let mut txn = db.begin_write().map_err(|x| e(x.into()))?;
            txn.set_durability(Durability::Immediate)
                .map_err(|x| e(x.into()))?;
            let r = f(&txn)?;
            // Dropping `txn` here (failpoint) aborts it: a simulated crash before commit.
            failpoint::hit("bolt.before_commit")?;
            txn.commit().map_err(|x| e(x.into()))?;
            Ok(r)
        })
    }

    pub(crate) fn header(&self) -> Result<Header> {
        self.guarded("reading the header", |db| read_header(&self.path, db))
    }

    pub(crate) fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let e = dberr(&self.path);
        self.guarded("reading a record", |db| {
            let txn = db.begin_read().map_err(|x| e(x.into()))?;
            let tname = format!("{TABLE_PREFIX}{table}");
            let t = match txn.open_table(def(&tname)) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(x) => return Err(e(x.into())),
            };
            Ok(t.get(key)
                .map_err(|x| e(x.into()))?
                .map(|g| g.value().to_vec()))
        })
    }

    pub(crate) fn list_keys(&self, table: &str) -> Result<Vec<Vec<u8>>> {
        let e = dberr(&self.path);
        self.guarded("listing a table", |db| {
            let txn = db.begin_read().map_err(|x| e(x.into()))?;
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
        })
    }

    pub(crate) fn count(&self, table: &str) -> Result<u64> {
        let e = dberr(&self.path);
        self.guarded("counting a table", |db| {
            let txn = db.begin_read().map_err(|x| e(x.into()))?;
            let tname = format!("{TABLE_PREFIX}{table}");
            match txn.open_table(def(&tname)) {
                Ok(t) => t.len().map_err(|x| e(x.into())),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
                Err(x) => Err(e(x.into())),
            }
        })
    }

    pub(crate) fn dump(&self) -> Result<(Header, Tables)> {
        self.guarded("reading every record", |db| dump_db(&self.path, db))
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

/// Reads the header and every record of every table (one read transaction).
fn dump_db(path: &Path, db: &impl ReadableDatabase) -> Result<(Header, Tables)> {
    let e = dberr(path);
    let txn = db.begin_read().map_err(|x| e(x.into()))?;
    let header = read_header_in(path, &txn)?;
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

/// The structure check of [`Bolt::open`]: every page a reader can reach is read once.
fn walk(path: &Path, db: &impl ReadableDatabase) -> Result<()> {
    dump_db(path, db).map(drop)
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
    let txn = db.begin_read().map_err(|x| dberr(path)(x.into()))?;
    read_header_in(path, &txn)
}

fn read_header_in(path: &Path, txn: &redb::ReadTransaction) -> Result<Header> {
    let e = dberr(path);
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
