//! SQLite backend: one connection behind a mutex (WAL, foreign keys on), migrations versioned
//! with `PRAGMA user_version`.

use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use mpc_transport::task::{Curve, EcdsaProtocol};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    AddressRow, ApiUserRow, KeyRow, KeyState, ListedAddress, MpcRequestQuery, MpcRequestRow,
    NodeBindingRow, OrganizationRow, SignFinish, SignRequestRow, SignState, Store, StoreError,
    WalletRow, curve_str, parse_curve, parse_org_protocol, parse_protocol, protocol_str,
    split_list, to_i64, to_u64,
};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Schema migrations; `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    vault_id TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE api_users (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    api_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE node_bindings (
    node_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    party TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT,
    UNIQUE (organization_id, party)
);
CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    curve TEXT NOT NULL,
    threshold INTEGER NOT NULL,
    parties TEXT NOT NULL,
    root_public_key TEXT NOT NULL,
    chain_code TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX keys_org_curve ON keys (organization_id, curve, status);
CREATE TABLE wallets (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    vault_id TEXT NOT NULL,
    name TEXT NOT NULL,
    advanced INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);
CREATE INDEX wallets_request ON wallets (organization_id, request_id);
CREATE TABLE addresses (
    id TEXT PRIMARY KEY,
    wallet_id TEXT NOT NULL REFERENCES wallets(id),
    path TEXT NOT NULL,
    algorithm INTEGER NOT NULL,
    encoding INTEGER NOT NULL,
    address TEXT NOT NULL,
    pubkey TEXT NOT NULL,
    UNIQUE (wallet_id, path, algorithm, encoding)
);
CREATE TABLE sign_requests (
    sino_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    request_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    algorithm TEXT NOT NULL,
    sign_type INTEGER NOT NULL,
    key_id TEXT NOT NULL REFERENCES keys(id),
    path TEXT NOT NULL,
    message TEXT NOT NULL,
    digest TEXT NOT NULL,
    state TEXT NOT NULL,
    signature TEXT NOT NULL,
    encrypted INTEGER NOT NULL,
    reason TEXT NOT NULL,
    culprits TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    UNIQUE (organization_id, request_id)
);
CREATE TABLE mpc_requests (
    task_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    kind INTEGER NOT NULL,
    sino_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    param TEXT NOT NULL,
    status INTEGER NOT NULL,
    failed_reason TEXT NOT NULL,
    outcomes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX mpc_requests_org ON mpc_requests (organization_id, created_at);
CREATE TABLE nonces (
    key_hash TEXT NOT NULL,
    nonce_ms BIGINT NOT NULL,
    PRIMARY KEY (key_hash, nonce_ms)
);
CREATE INDEX nonces_age ON nonces (nonce_ms);
"#,
    super::MIGRATION_PROTOCOLS,
    super::MIGRATION_GENERATIONS,
    super::MIGRATION_OWNERS,
];

/// The SQLite [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The coordinator instance whose runs this store records ([`Store::set_owner`]).
    owner: Mutex<String>,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Maps a UNIQUE violation to [`StoreError::Conflict`] with `what`.
fn unique(what: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY {
                StoreError::NotFound(format!("{what}: a referenced row does not exist"))
            } else {
                StoreError::Conflict(what.to_owned())
            }
        }
        _ => db(e),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, or an in-memory one for
    /// `":memory:"`, and applies pending migrations.
    pub fn open(path: &str) -> Result<Self, StoreError> {
        let conn = if path == ":memory:" {
            Connection::open_in_memory()
        } else {
            Connection::open(path)
        }
        .map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        if path != ":memory:" {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(db)?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(mode, "sqlite: WAL journal mode not available");
            }
        }
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
            .map_err(db)?;
        let mut store = SqliteStore {
            conn: Mutex::new(conn),
            owner: Mutex::new(String::new()),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let conn = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::Backend(format!(
                "database schema version {version} is newer than this build ({known})"
            )));
        }
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            let tx = conn.transaction().map_err(db)?;
            tx.execute_batch(sql).map_err(db)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .map_err(db)?;
            tx.commit().map_err(db)?;
            tracing::info!(version = i + 1, "sqlite: schema migrated");
        }
        Ok(())
    }

    fn owner(&self) -> String {
        self.owner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction half-applied (rusqlite
        // rolls back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `query_row` and `execute` through the connection's statement cache: a statement is compiled
/// once per connection, not on every call (each API request runs several: authentication,
/// nonce, the request's own query).
trait CachedStatements {
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl CachedStatements for Connection {
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

/// Distinct statements the store runs (with room): all of them stay compiled.
const STATEMENT_CACHE: usize = 96;

const KEY_COLS: &str = "id, organization_id, curve, threshold, parties, root_public_key, chain_code, status, failure_reason, created_at, updated_at, protocol, generation";

fn key_row(r: &Row<'_>) -> rusqlite::Result<(KeyRow, String, String, String)> {
    let parties: String = r.get(4)?;
    let root: String = r.get(5)?;
    let cc: String = r.get(6)?;
    let curve: String = r.get(2)?;
    let status: String = r.get(7)?;
    let threshold: i64 = r.get(3)?;
    Ok((
        KeyRow {
            id: r.get(0)?,
            organization_id: r.get(1)?,
            curve: Curve::Secp256k1,
            threshold: u16::try_from(threshold).unwrap_or(0),
            ecdsa_protocol: None,
            parties: split_list(&parties),
            root_public_key: hex::decode(root).unwrap_or_default(),
            chain_code: hex::decode(cc).ok().and_then(|b| b.try_into().ok()),
            status: KeyState::Generating,
            failure_reason: r.get(8)?,
            generation: r.get(12)?,
            created_at: to_u64(r.get(9)?),
            updated_at: to_u64(r.get(10)?),
        },
        curve,
        status,
        r.get(11)?,
    ))
}

fn finish_key_row(t: (KeyRow, String, String, String)) -> Result<KeyRow, StoreError> {
    let (mut k, curve, status, protocol) = t;
    k.curve = parse_curve(&curve)?;
    k.ecdsa_protocol = parse_protocol(k.curve, &protocol)?;
    k.status = KeyState::parse(&status)?;
    Ok(k)
}

const SIGN_COLS: &str = "sino_id, organization_id, request_id, kind, algorithm, sign_type, key_id, path, message, digest, state, signature, encrypted, reason, culprits, created_at, finished_at";

fn sign_row(r: &Row<'_>) -> rusqlite::Result<(SignRequestRow, String)> {
    let kind: i64 = r.get(3)?;
    let sign_type: i64 = r.get(5)?;
    let encrypted: i64 = r.get(12)?;
    let culprits: String = r.get(14)?;
    let finished: Option<i64> = r.get(16)?;
    Ok((
        SignRequestRow {
            sino_id: r.get(0)?,
            organization_id: r.get(1)?,
            request_id: r.get(2)?,
            kind: u8::try_from(kind).unwrap_or(0),
            algorithm: r.get(4)?,
            sign_type: u8::try_from(sign_type).unwrap_or(0),
            key_id: r.get(6)?,
            path: r.get(7)?,
            message: r.get(8)?,
            digest: r.get(9)?,
            state: SignState::Pending,
            signature: r.get(11)?,
            encrypted: encrypted != 0,
            reason: r.get(13)?,
            culprits: split_list(&culprits),
            created_at: to_u64(r.get(15)?),
            finished_at: finished.map(to_u64),
        },
        r.get(10)?,
    ))
}

fn finish_sign_row(t: (SignRequestRow, String)) -> Result<SignRequestRow, StoreError> {
    let (mut s, state) = t;
    s.state = SignState::parse(&state)?;
    Ok(s)
}

const MPC_COLS: &str = "task_id, organization_id, kind, sino_id, request_id, param, status, failed_reason, outcomes, created_at, finished_at";

fn mpc_row(r: &Row<'_>) -> rusqlite::Result<MpcRequestRow> {
    let kind: i64 = r.get(2)?;
    let status: i64 = r.get(6)?;
    let finished: Option<i64> = r.get(10)?;
    Ok(MpcRequestRow {
        task_id: r.get(0)?,
        organization_id: r.get(1)?,
        kind: u8::try_from(kind).unwrap_or(0),
        sino_id: r.get(3)?,
        request_id: r.get(4)?,
        param: r.get(5)?,
        status: u8::try_from(status).unwrap_or(0),
        failed_reason: r.get(7)?,
        outcomes: r.get(8)?,
        created_at: to_u64(r.get(9)?),
        finished_at: finished.map(to_u64),
    })
}

const ORG_COLS: &str = "id, name, vault_id, created_at, ecdsa_protocol";

fn org_row(r: &Row<'_>) -> rusqlite::Result<(OrganizationRow, String)> {
    Ok((
        OrganizationRow {
            id: r.get(0)?,
            name: r.get(1)?,
            vault_id: r.get(2)?,
            created_at: to_u64(r.get(3)?),
            ecdsa_protocol: EcdsaProtocol::LEGACY,
        },
        r.get(4)?,
    ))
}

fn finish_org_row(t: (OrganizationRow, String)) -> Result<OrganizationRow, StoreError> {
    let (mut o, protocol) = t;
    o.ecdsa_protocol = parse_org_protocol(&protocol)?;
    Ok(o)
}

fn binding_row(r: &Row<'_>) -> rusqlite::Result<NodeBindingRow> {
    let seen: Option<i64> = r.get(4)?;
    Ok(NodeBindingRow {
        node_id: r.get(0)?,
        organization_id: r.get(1)?,
        party: r.get(2)?,
        created_at: to_u64(r.get(3)?),
        last_seen_at: seen.map(to_u64),
    })
}

fn wallet_row(r: &Row<'_>) -> rusqlite::Result<WalletRow> {
    let advanced: i64 = r.get(4)?;
    Ok(WalletRow {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        vault_id: r.get(2)?,
        name: r.get(3)?,
        advanced: advanced != 0,
        request_id: r.get(5)?,
        created_at: to_u64(r.get(6)?),
    })
}

fn address_row(r: &Row<'_>) -> rusqlite::Result<AddressRow> {
    let algorithm: i64 = r.get(3)?;
    let encoding: i64 = r.get(4)?;
    Ok(AddressRow {
        id: r.get(0)?,
        wallet_id: r.get(1)?,
        path: r.get(2)?,
        algorithm: u8::try_from(algorithm).unwrap_or(0),
        encoding: u8::try_from(encoding).unwrap_or(0),
        address: r.get(5)?,
        pubkey: r.get(6)?,
    })
}

fn api_user_row(r: &Row<'_>) -> rusqlite::Result<ApiUserRow> {
    Ok(ApiUserRow {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        name: r.get(2)?,
        api_key: r.get(3)?,
        created_at: to_u64(r.get(4)?),
    })
}

const WALLET_COLS: &str = "id, organization_id, vault_id, name, advanced, request_id, created_at";
const ADDRESS_COLS: &str = "id, wallet_id, path, algorithm, encoding, address, pubkey";

impl Store for SqliteStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.lock()
            .row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .map(|_| ())
            .map_err(db)
    }

    fn create_organization(&self, org: &OrganizationRow) -> Result<(), StoreError> {
        self.lock()
            .exec(
                "INSERT INTO organizations (id, name, vault_id, created_at, ecdsa_protocol) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![org.id, org.name, org.vault_id, to_i64(org.created_at), org.ecdsa_protocol.name()],
            )
            .map_err(unique("an organization with this name exists"))?;
        Ok(())
    }

    fn organization(&self, id: &str) -> Result<Option<OrganizationRow>, StoreError> {
        self.lock()
            .row(
                &format!("SELECT {ORG_COLS} FROM organizations WHERE id = ?1"),
                params![id],
                org_row,
            )
            .optional()
            .map_err(db)?
            .map(finish_org_row)
            .transpose()
    }

    fn organizations(&self) -> Result<Vec<OrganizationRow>, StoreError> {
        let conn = self.lock();
        let mut st = conn
            .prepare(&format!(
                "SELECT {ORG_COLS} FROM organizations ORDER BY created_at, id"
            ))
            .map_err(db)?;
        let rows = st.query_map([], org_row).map_err(db)?;
        rows.map(|r| r.map_err(db).and_then(finish_org_row))
            .collect()
    }

    fn create_api_user(&self, user: &ApiUserRow) -> Result<(), StoreError> {
        self.lock()
            .exec(
                "INSERT INTO api_users (id, organization_id, name, api_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![user.id, user.organization_id, user.name, user.api_key, to_i64(user.created_at)],
            )
            .map_err(unique("this API key is already registered"))?;
        Ok(())
    }

    fn api_user_by_key(&self, api_key: &str) -> Result<Option<ApiUserRow>, StoreError> {
        self.lock()
            .row(
                "SELECT id, organization_id, name, api_key, created_at FROM api_users WHERE api_key = ?1",
                params![api_key],
                api_user_row,
            )
            .optional()
            .map_err(db)
    }

    fn api_users(&self, organization_id: Option<&str>) -> Result<Vec<ApiUserRow>, StoreError> {
        let conn = self.lock();
        let mut st = conn
            .prepare(
                "SELECT id, organization_id, name, api_key, created_at FROM api_users
                 WHERE (?1 IS NULL OR organization_id = ?1) ORDER BY created_at, id",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![organization_id], api_user_row)
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn bind_node(&self, b: &NodeBindingRow) -> Result<(), StoreError> {
        self.lock()
            .exec(
                "INSERT INTO node_bindings (node_id, organization_id, party, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, NULL)",
                params![b.node_id, b.organization_id, b.party, to_i64(b.created_at)],
            )
            .map_err(unique(
                "the node is already bound, or the party already has a node",
            ))?;
        Ok(())
    }

    fn replace_node(
        &self,
        organization_id: &str,
        party: &str,
        node_id: &str,
        at: u64,
    ) -> Result<String, StoreError> {
        // One connection behind the lock: the read and the update are not interleaved.
        let conn = self.lock();
        let old: String = conn
            .row(
                "SELECT node_id FROM node_bindings WHERE organization_id = ?1 AND party = ?2",
                params![organization_id, party],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "organization {organization_id} has no node bound to party {party}"
                ))
            })?;
        if old == node_id {
            return Err(StoreError::Conflict(format!(
                "node {node_id} is already bound to party {party}"
            )));
        }
        conn.exec(
            "UPDATE node_bindings SET node_id = ?3, created_at = ?4, last_seen_at = NULL
             WHERE organization_id = ?1 AND party = ?2",
            params![organization_id, party, node_id, to_i64(at)],
        )
        .map_err(unique("the new node is already bound"))?;
        Ok(old)
    }

    fn binding(&self, node_id: &str) -> Result<Option<NodeBindingRow>, StoreError> {
        self.lock()
            .row(
                "SELECT node_id, organization_id, party, created_at, last_seen_at FROM node_bindings WHERE node_id = ?1",
                params![node_id],
                binding_row,
            )
            .optional()
            .map_err(db)
    }

    fn bindings(&self, organization_id: Option<&str>) -> Result<Vec<NodeBindingRow>, StoreError> {
        let conn = self.lock();
        let mut st = conn
            .prepare(
                "SELECT node_id, organization_id, party, created_at, last_seen_at FROM node_bindings
                 WHERE (?1 IS NULL OR organization_id = ?1) ORDER BY organization_id, party",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![organization_id], binding_row)
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn touch_node(&self, node_id: &str, at: u64) -> Result<(), StoreError> {
        self.lock()
            .exec(
                "UPDATE node_bindings SET last_seen_at = ?2 WHERE node_id = ?1",
                params![node_id, to_i64(at)],
            )
            .map_err(db)?;
        Ok(())
    }

    fn create_key_if_absent(&self, key: &KeyRow) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let existing: i64 = tx
            .row(
                "SELECT COUNT(*) FROM keys WHERE organization_id = ?1 AND curve = ?2 AND status IN ('generating', 'generated')",
                params![key.organization_id, curve_str(key.curve)],
                |r| r.get(0),
            )
            .map_err(db)?;
        if existing > 0 {
            return Ok(false);
        }
        tx.exec(
            &format!("INSERT INTO keys ({KEY_COLS}, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
            params![
                key.id,
                key.organization_id,
                curve_str(key.curve),
                i64::from(key.threshold),
                key.parties.join(","),
                hex::encode(&key.root_public_key),
                key.chain_code.map(hex::encode).unwrap_or_default(),
                key.status.as_str(),
                key.failure_reason,
                to_i64(key.created_at),
                to_i64(key.updated_at),
                protocol_str(key.ecdsa_protocol),
                key.generation,
                self.owner(),
            ],
        )
        .map_err(unique("key id exists"))?;
        tx.commit().map_err(db)?;
        Ok(true)
    }

    fn finish_key(
        &self,
        key_id: &str,
        status: KeyState,
        root_public_key: &[u8],
        chain_code: Option<[u8; 32]>,
        reason: &str,
        at: u64,
    ) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .exec(
                "UPDATE keys SET status = ?2, root_public_key = ?3, chain_code = ?4, failure_reason = ?5, updated_at = ?6
                 WHERE id = ?1 AND status = 'generating'",
                params![
                    key_id,
                    status.as_str(),
                    hex::encode(root_public_key),
                    chain_code.map(hex::encode).unwrap_or_default(),
                    reason,
                    to_i64(at)
                ],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn switch_key_generation(
        &self,
        key_id: &str,
        from: &str,
        to: &str,
        at: u64,
    ) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .exec(
                "UPDATE keys SET generation = ?3, updated_at = ?4
                 WHERE id = ?1 AND status = 'generated' AND generation = ?2",
                params![key_id, from, to, to_i64(at)],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn keys(&self, organization_id: Option<&str>) -> Result<Vec<KeyRow>, StoreError> {
        let conn = self.lock();
        let mut st = conn
            .prepare(&format!(
                "SELECT {KEY_COLS} FROM keys WHERE (?1 IS NULL OR organization_id = ?1) ORDER BY created_at DESC, id DESC"
            ))
            .map_err(db)?;
        let rows = st
            .query_map(params![organization_id], key_row)
            .map_err(db)?;
        rows.map(|r| r.map_err(db).and_then(finish_key_row))
            .collect()
    }

    fn generated_key(
        &self,
        organization_id: &str,
        curve: Curve,
    ) -> Result<Option<KeyRow>, StoreError> {
        self.lock()
            .row(
                &format!(
                    "SELECT {KEY_COLS} FROM keys WHERE organization_id = ?1 AND curve = ?2 AND status = 'generated'
                     ORDER BY created_at DESC, id DESC LIMIT 1"
                ),
                params![organization_id, curve_str(curve)],
                key_row,
            )
            .optional()
            .map_err(db)?
            .map(finish_key_row)
            .transpose()
    }

    fn create_wallets(
        &self,
        organization_id: &str,
        request_id: &str,
        wallets: &[WalletRow],
    ) -> Result<Vec<WalletRow>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let existing = {
            let mut st = tx
                .prepare(&format!(
                    "SELECT {WALLET_COLS} FROM wallets WHERE organization_id = ?1 AND request_id = ?2 ORDER BY created_at, id"
                ))
                .map_err(db)?;
            let rows = st
                .query_map(params![organization_id, request_id], wallet_row)
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)?
        };
        if !existing.is_empty() {
            return Ok(existing);
        }
        for w in wallets {
            tx.exec(
                &format!("INSERT INTO wallets ({WALLET_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    w.id,
                    w.organization_id,
                    w.vault_id,
                    w.name,
                    i64::from(w.advanced),
                    w.request_id,
                    to_i64(w.created_at)
                ],
            )
            .map_err(unique("a wallet with this name exists"))?;
        }
        tx.commit().map_err(db)?;
        Ok(wallets.to_vec())
    }

    fn wallet(
        &self,
        organization_id: &str,
        wallet_id: &str,
    ) -> Result<Option<WalletRow>, StoreError> {
        self.lock()
            .row(
                &format!(
                    "SELECT {WALLET_COLS} FROM wallets WHERE organization_id = ?1 AND id = ?2"
                ),
                params![organization_id, wallet_id],
                wallet_row,
            )
            .optional()
            .map_err(db)
    }

    fn save_addresses(&self, rows: &[AddressRow]) -> Result<Vec<AddressRow>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        for a in rows {
            tx.exec(
                &format!(
                    "INSERT INTO addresses ({ADDRESS_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (wallet_id, path, algorithm, encoding)
                     DO UPDATE SET address = excluded.address, pubkey = excluded.pubkey"
                ),
                params![
                    a.id,
                    a.wallet_id,
                    a.path,
                    i64::from(a.algorithm),
                    i64::from(a.encoding),
                    a.address,
                    a.pubkey
                ],
            )
            .map_err(unique("address"))?;
        }
        let mut out = Vec::new();
        if let Some(first) = rows.first() {
            let mut st = tx
                .prepare(&format!(
                    "SELECT {ADDRESS_COLS} FROM addresses WHERE wallet_id = ?1 AND path = ?2 AND algorithm = ?3 ORDER BY encoding"
                ))
                .map_err(db)?;
            let it = st
                .query_map(
                    params![first.wallet_id, first.path, i64::from(first.algorithm)],
                    address_row,
                )
                .map_err(db)?;
            for r in it {
                out.push(r.map_err(db)?);
            }
            drop(st);
        }
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn addresses_at(&self, wallet_id: &str, path: &str) -> Result<Vec<AddressRow>, StoreError> {
        let conn = self.lock();
        let mut st = conn
            .prepare(&format!(
                "SELECT {ADDRESS_COLS} FROM addresses WHERE wallet_id = ?1 AND path = ?2 ORDER BY algorithm, encoding"
            ))
            .map_err(db)?;
        let rows = st
            .query_map(params![wallet_id, path], address_row)
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn list_addresses(
        &self,
        organization_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ListedAddress>, StoreError> {
        let conn = self.lock();
        let mut st = conn
            .prepare(
                "SELECT a.id, a.wallet_id, a.path, a.algorithm, a.encoding, a.address, a.pubkey,
                        w.organization_id, w.name
                 FROM addresses a JOIN wallets w ON w.id = a.wallet_id
                 WHERE (?1 IS NULL OR w.organization_id = ?1)
                 ORDER BY w.created_at DESC, w.id, a.path, a.algorithm, a.encoding LIMIT ?2",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![organization_id, i64::from(limit)], |r| {
                Ok(ListedAddress {
                    address: address_row(r)?,
                    organization_id: r.get(7)?,
                    wallet_name: r.get(8)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn insert_sign_request(
        &self,
        s: &SignRequestRow,
    ) -> Result<(SignRequestRow, bool), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let n = tx
            .exec(
                &format!(
                    "INSERT INTO sign_requests ({SIGN_COLS}, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
                     ON CONFLICT (organization_id, request_id) DO NOTHING"
                ),
                params![
                    s.sino_id,
                    s.organization_id,
                    s.request_id,
                    i64::from(s.kind),
                    s.algorithm,
                    i64::from(s.sign_type),
                    s.key_id,
                    s.path,
                    s.message,
                    s.digest,
                    s.state.as_str(),
                    s.signature,
                    i64::from(s.encrypted),
                    s.reason,
                    s.culprits.join(","),
                    to_i64(s.created_at),
                    s.finished_at.map(to_i64),
                    self.owner(),
                ],
            )
            .map_err(unique("sign request"))?;
        let row = tx
            .row(
                &format!("SELECT {SIGN_COLS} FROM sign_requests WHERE organization_id = ?1 AND request_id = ?2"),
                params![s.organization_id, s.request_id],
                sign_row,
            )
            .map_err(db)
            .and_then(finish_sign_row)?;
        tx.commit().map_err(db)?;
        Ok((row, n == 1))
    }

    fn sign_request(
        &self,
        organization_id: &str,
        request_id: Option<&str>,
        sino_id: Option<&str>,
    ) -> Result<Option<SignRequestRow>, StoreError> {
        self.lock()
            .row(
                &format!(
                    "SELECT {SIGN_COLS} FROM sign_requests WHERE organization_id = ?1
                     AND (?2 IS NULL OR request_id = ?2) AND (?3 IS NULL OR sino_id = ?3)"
                ),
                params![organization_id, request_id, sino_id],
                sign_row,
            )
            .optional()
            .map_err(db)?
            .map(finish_sign_row)
            .transpose()
    }

    fn finish_sign_request(&self, sino_id: &str, f: &SignFinish) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .exec(
                "UPDATE sign_requests SET state = ?2, signature = ?3, encrypted = ?4, reason = ?5, culprits = ?6, finished_at = ?7
                 WHERE sino_id = ?1 AND state = 'pending'",
                params![
                    sino_id,
                    f.state.as_str(),
                    f.signature,
                    i64::from(f.encrypted),
                    f.reason,
                    f.culprits.join(","),
                    to_i64(f.at)
                ],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn insert_mpc_request(&self, m: &MpcRequestRow) -> Result<(), StoreError> {
        self.lock()
            .exec(
                &format!("INSERT INTO mpc_requests ({MPC_COLS}, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    m.task_id,
                    m.organization_id,
                    i64::from(m.kind),
                    m.sino_id,
                    m.request_id,
                    m.param,
                    i64::from(m.status),
                    m.failed_reason,
                    m.outcomes,
                    to_i64(m.created_at),
                    m.finished_at.map(to_i64),
                    self.owner(),
                ],
            )
            .map_err(unique(
                "the task id exists, or a refresh or repair of this key is running",
            ))?;
        Ok(())
    }

    fn finish_mpc_request(
        &self,
        task_id: &str,
        status: u8,
        failed_reason: &str,
        outcomes: &str,
        at: u64,
    ) -> Result<(), StoreError> {
        self.lock()
            .exec(
                "UPDATE mpc_requests SET status = ?2, failed_reason = ?3, outcomes = ?4, finished_at = ?5 WHERE task_id = ?1",
                params![task_id, i64::from(status), failed_reason, outcomes, to_i64(at)],
            )
            .map_err(db)?;
        Ok(())
    }

    fn list_mpc_requests(
        &self,
        q: &MpcRequestQuery,
    ) -> Result<(u64, Vec<MpcRequestRow>), StoreError> {
        let conn = self.lock();
        let filter = "(?1 IS NULL OR organization_id = ?1) AND (?2 IS NULL OR kind = ?2)
                      AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR sino_id = ?4)";
        let kind = q.kind.map(i64::from);
        let status = q.status.map(i64::from);
        let total: i64 = conn
            .row(
                &format!("SELECT COUNT(*) FROM mpc_requests WHERE {filter}"),
                params![q.organization_id, kind, status, q.sino_id],
                |r| r.get(0),
            )
            .map_err(db)?;
        let mut st = conn
            .prepare(&format!(
                "SELECT {MPC_COLS} FROM mpc_requests WHERE {filter} ORDER BY created_at DESC, task_id DESC LIMIT ?5 OFFSET ?6"
            ))
            .map_err(db)?;
        let rows = st
            .query_map(
                params![
                    q.organization_id,
                    kind,
                    status,
                    q.sino_id,
                    to_i64(q.limit),
                    to_i64(q.offset)
                ],
                mpc_row,
            )
            .map_err(db)?;
        let rows = rows.collect::<Result<Vec<_>, _>>().map_err(db)?;
        Ok((to_u64(total), rows))
    }

    fn fail_unfinished(&self, reason: &str, at: u64) -> Result<u64, StoreError> {
        // Rows of no live coordinator: recorded before owners existed, or by this instance.
        let owner = self.owner();
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let mut n = 0;
        for sql in super::FAIL_SQL {
            n += tx
                .exec(
                    &format!("{sql} AND (owner = '' OR owner = ?3)"),
                    params![reason, to_i64(at), owner],
                )
                .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(n as u64)
    }

    fn heartbeat(&self, alive_until: u64) -> Result<(), StoreError> {
        let owner = self.owner();
        self.lock()
            .exec(
                "INSERT INTO coordinators (id, alive_until) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until",
                params![owner, to_i64(alive_until)],
            )
            .map_err(db)?;
        Ok(())
    }

    fn fail_orphaned(&self, reason: &str, now: u64) -> Result<u64, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let mut n = 0;
        for sql in super::FAIL_SQL {
            n += tx
                .exec(
                    &format!(
                        "{sql} AND owner <> '' AND owner NOT IN (SELECT id FROM coordinators WHERE alive_until >= ?2)"
                    ),
                    params![reason, to_i64(now)],
                )
                .map_err(db)?;
        }
        tx.exec(
            "DELETE FROM coordinators WHERE alive_until < ?1",
            params![to_i64(now.saturating_sub(super::FORGET_COORDINATORS_MS))],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n as u64)
    }

    fn set_owner(&self, owner: &str) {
        *self.owner.lock().unwrap_or_else(|p| p.into_inner()) = owner.to_owned();
    }

    fn record_nonce(
        &self,
        key_hash: &str,
        nonce_ms: u64,
        forget_before_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        tx.exec(
            "DELETE FROM nonces WHERE nonce_ms < ?1",
            params![to_i64(forget_before_ms)],
        )
        .map_err(db)?;
        let n = tx
            .exec(
                "INSERT INTO nonces (key_hash, nonce_ms) VALUES (?1, ?2) ON CONFLICT (key_hash, nonce_ms) DO NOTHING",
                params![key_hash, to_i64(nonce_ms)],
            )
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_with_foreign_keys_on() {
        let s = SqliteStore::open(":memory:").unwrap();
        let v: i64 = s
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        let fk: i64 = s
            .lock()
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }

    /// A database made before the protocol columns (schema 1) reads its organizations and
    /// secp256k1 keys as CGGMP24 and its ed25519 keys as FROST after migrating.
    #[test]
    fn schema_1_databases_migrate_to_cggmp24() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.execute_batch(
                "PRAGMA user_version = 1;
                 INSERT INTO organizations VALUES ('o', 'acme', 'v', 1);
                 INSERT INTO keys VALUES ('k1', 'o', 'secp256k1', 3, 'a,b,c', '', '', 'generated', '', 1, 1);
                 INSERT INTO keys VALUES ('k2', 'o', 'ed25519', 3, 'a,b,c', '', '', 'generated', '', 1, 1);",
            )
            .unwrap();
        }
        let s = SqliteStore::open(path.to_str().unwrap()).unwrap();
        assert_eq!(
            s.organization("o").unwrap().unwrap().ecdsa_protocol,
            EcdsaProtocol::Cggmp24
        );
        let keys = s.keys(Some("o")).unwrap();
        let of = |id: &str| keys.iter().find(|k| k.id == id).unwrap().ecdsa_protocol;
        assert_eq!(of("k1"), Some(EcdsaProtocol::Cggmp24));
        assert_eq!(of("k2"), None);
    }
}
