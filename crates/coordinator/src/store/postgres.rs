//! PostgreSQL backend: a pool of blocking connections (`postgres` + `r2d2`), migrations
//! versioned in `schema_migrations` and applied under an advisory lock (several coordinators may
//! start at once), every multi-row change in one transaction.
//!
//! Concurrency differs from SQLite's single connection: several connections (and later several
//! coordinator processes) write at once, so every "check, then write" rule is decided by the
//! database itself: a partial unique index admits one live key per organization and curve,
//! `ON CONFLICT` settles duplicate request ids and nonces, and `create_wallets` serializes one
//! (organization, request id) with a transaction-scoped advisory lock.
//!
//! Transport security: a `database-url` whose host is not loopback (or a Unix socket directory)
//! must ask for TLS (`sslmode=require`); the server's certificate is then verified against the
//! web PKI roots plus an optional CA file. `sslmode=prefer` (silent fallback to plaintext) is
//! refused for remote hosts.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use mpc_transport::task::Curve;
use postgres::config::{Host, SslMode};
use postgres::error::SqlState;
use postgres::{Row, Transaction};
use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{
    AddressRow, ApiUserRow, KeyRow, KeyState, ListedAddress, MpcRequestQuery, MpcRequestRow,
    NodeBindingRow, OrganizationRow, SignFinish, SignRequestRow, SignState, Store, StoreError,
    WalletRow, curve_str, parse_curve, parse_org_protocol, parse_protocol, protocol_str,
    split_list, to_i64, to_u64,
};

/// Schema migrations; `schema_migrations` holds the number applied.
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
    threshold BIGINT NOT NULL,
    parties TEXT NOT NULL,
    root_public_key TEXT NOT NULL,
    chain_code TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX keys_org_curve ON keys (organization_id, curve, status);
CREATE UNIQUE INDEX keys_one_live ON keys (organization_id, curve)
    WHERE status IN ('generating', 'generated');
CREATE TABLE wallets (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    vault_id TEXT NOT NULL,
    name TEXT NOT NULL,
    advanced BOOLEAN NOT NULL,
    request_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);
CREATE INDEX wallets_request ON wallets (organization_id, request_id);
CREATE TABLE addresses (
    id TEXT PRIMARY KEY,
    wallet_id TEXT NOT NULL REFERENCES wallets(id),
    path TEXT NOT NULL,
    algorithm BIGINT NOT NULL,
    encoding BIGINT NOT NULL,
    address TEXT NOT NULL,
    pubkey TEXT NOT NULL,
    UNIQUE (wallet_id, path, algorithm, encoding)
);
CREATE TABLE sign_requests (
    sino_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    request_id TEXT NOT NULL,
    kind BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    sign_type BIGINT NOT NULL,
    key_id TEXT NOT NULL REFERENCES keys(id),
    path TEXT NOT NULL,
    message TEXT NOT NULL,
    digest TEXT NOT NULL,
    state TEXT NOT NULL,
    signature TEXT NOT NULL,
    encrypted BOOLEAN NOT NULL,
    reason TEXT NOT NULL,
    culprits TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    UNIQUE (organization_id, request_id)
);
CREATE TABLE mpc_requests (
    task_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    kind BIGINT NOT NULL,
    sino_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    param TEXT NOT NULL,
    status BIGINT NOT NULL,
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

/// Advisory lock key under which migrations run (any constant; "mpc-coor" in ASCII).
const MIGRATION_LOCK: i64 = 0x6d70_632d_636f_6f72;

type Pool = r2d2::Pool<PostgresConnectionManager<MakeRustlsConnect>>;
type Conn = r2d2::PooledConnection<PostgresConnectionManager<MakeRustlsConnect>>;

/// The PostgreSQL [`Store`].
pub struct PostgresStore {
    /// `None` only while dropping.
    pool: Option<Pool>,
    /// The coordinator instance whose runs this store records ([`Store::set_owner`]).
    owner: std::sync::Mutex<String>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // A `postgres::Client` closes its connection by blocking on a runtime of its own, which
        // panics on an async worker (where the last `Arc` of a coordinator is often dropped):
        // the pool is dropped on a thread of its own, and waited for.
        if let Some(pool) = self.pool.take() {
            let closing = std::thread::Builder::new()
                .name("postgres-close".into())
                .spawn(move || drop(pool));
            if let Ok(t) = closing {
                let _ = t.join();
            }
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never printed.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// How to connect (beyond the URL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Extra CA certificates (PEM file) trusted for the server's certificate, beside the web
    /// PKI roots.
    pub ca_cert_path: Option<std::path::PathBuf>,
    /// Most connections held open (default 16).
    pub max_connections: Option<u32>,
}

fn db(e: postgres::Error) -> StoreError {
    // The driver's text names the statement's failure (and never the connection's password).
    StoreError::Backend(match e.as_db_error() {
        Some(d) => format!("postgres: {} ({})", d.message(), d.code().code()),
        None => format!("postgres: {e}"),
    })
}

/// Maps a unique or foreign-key violation to [`StoreError::Conflict`] / [`StoreError::NotFound`].
fn unique(what: &str) -> impl Fn(postgres::Error) -> StoreError + '_ {
    move |e| match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(what.to_owned()),
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => {
            StoreError::NotFound(format!("{what}: a referenced row does not exist"))
        }
        _ => db(e),
    }
}

fn small<T: TryFrom<i64> + Default>(v: i64) -> T {
    T::try_from(v).unwrap_or_default()
}

fn loopback_only(cfg: &postgres::Config) -> bool {
    !cfg.get_hosts().is_empty()
        && cfg.get_hosts().iter().all(|h| match h {
            Host::Unix(_) => true,
            Host::Tcp(name) => {
                name == "localhost" || IpAddr::from_str(name).is_ok_and(|ip| ip.is_loopback())
            }
        })
}

fn tls_connector(ca: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
            StoreError::Backend(format!("database CA file {}: {e}", path.display()))
        })?;
        for c in certs {
            let c = c.map_err(|e| {
                StoreError::Backend(format!("database CA file {}: {e}", path.display()))
            })?;
            roots.add(c).map_err(|e| {
                StoreError::Backend(format!("database CA file {}: {e}", path.display()))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database[?sslmode=...]`),
    /// checks the transport rule (module docs) and applies pending migrations. Blocking: call it
    /// outside async contexts (the coordinator opens stores on the blocking pool).
    pub fn connect(url: &str, options: &PostgresOptions) -> Result<Self, StoreError> {
        let cfg = postgres::Config::from_str(url).map_err(|e| {
            StoreError::Backend(format!("database-url is not a PostgreSQL URL: {e}"))
        })?;
        if !loopback_only(&cfg) && cfg.get_ssl_mode() != SslMode::Require {
            return Err(StoreError::Backend(
                "database-url: a database that is not on loopback must be reached over TLS; \
                 add `sslmode=require` (the server certificate is verified against the web PKI \
                 roots and database-ca-cert-path)"
                    .into(),
            ));
        }
        let tls = tls_connector(options.ca_cert_path.as_deref())?;
        let manager = PostgresConnectionManager::new(cfg, tls);
        let pool = r2d2::Pool::builder()
            .max_size(options.max_connections.unwrap_or(16))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| StoreError::Backend(format!("cannot connect to the database: {e}")))?;
        let store = PostgresStore {
            pool: Some(pool),
            owner: std::sync::Mutex::new(String::new()),
        };
        store.migrate()?;
        Ok(store)
    }

    fn owner(&self) -> String {
        self.owner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn conn(&self) -> Result<Conn, StoreError> {
        self.pool
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is closing".into()))?
            .get()
            .map_err(|e| StoreError::Backend(format!("database connection: {e}")))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(db)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .map_err(db)?;
        let version: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .map_err(db)?
            .get(0);
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
            tx.batch_execute(sql).map_err(db)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&(i as i64 + 1)],
            )
            .map_err(db)?;
            tracing::info!(version = i + 1, "postgres: schema migrated");
        }
        tx.commit().map_err(db)
    }

    /// The schema version applied (tests, diagnostics).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()?
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .map_err(db)?
            .get(0))
    }
}

fn get<'a, T: postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Result<T, StoreError> {
    r.try_get(i).map_err(db)
}

const KEY_COLS: &str = "id, organization_id, curve, threshold, parties, root_public_key, chain_code, status, failure_reason, created_at, updated_at, protocol, generation";

fn key_row(r: &Row) -> Result<KeyRow, StoreError> {
    let root: String = get(r, 5)?;
    let cc: String = get(r, 6)?;
    let curve = parse_curve(&get::<String>(r, 2)?)?;
    Ok(KeyRow {
        id: get(r, 0)?,
        organization_id: get(r, 1)?,
        curve,
        ecdsa_protocol: parse_protocol(curve, &get::<String>(r, 11)?)?,
        threshold: small(get(r, 3)?),
        parties: split_list(&get::<String>(r, 4)?),
        root_public_key: hex::decode(root).unwrap_or_default(),
        chain_code: hex::decode(cc).ok().and_then(|b| b.try_into().ok()),
        status: KeyState::parse(&get::<String>(r, 7)?)?,
        failure_reason: get(r, 8)?,
        generation: get(r, 12)?,
        created_at: to_u64(get(r, 9)?),
        updated_at: to_u64(get(r, 10)?),
    })
}

const SIGN_COLS: &str = "sino_id, organization_id, request_id, kind, algorithm, sign_type, key_id, path, message, digest, state, signature, encrypted, reason, culprits, created_at, finished_at";

fn sign_row(r: &Row) -> Result<SignRequestRow, StoreError> {
    Ok(SignRequestRow {
        sino_id: get(r, 0)?,
        organization_id: get(r, 1)?,
        request_id: get(r, 2)?,
        kind: small(get(r, 3)?),
        algorithm: get(r, 4)?,
        sign_type: small(get(r, 5)?),
        key_id: get(r, 6)?,
        path: get(r, 7)?,
        message: get(r, 8)?,
        digest: get(r, 9)?,
        state: SignState::parse(&get::<String>(r, 10)?)?,
        signature: get(r, 11)?,
        encrypted: get(r, 12)?,
        reason: get(r, 13)?,
        culprits: split_list(&get::<String>(r, 14)?),
        created_at: to_u64(get(r, 15)?),
        finished_at: get::<Option<i64>>(r, 16)?.map(to_u64),
    })
}

const MPC_COLS: &str = "task_id, organization_id, kind, sino_id, request_id, param, status, failed_reason, outcomes, created_at, finished_at";

fn mpc_row(r: &Row) -> Result<MpcRequestRow, StoreError> {
    Ok(MpcRequestRow {
        task_id: get(r, 0)?,
        organization_id: get(r, 1)?,
        kind: small(get(r, 2)?),
        sino_id: get(r, 3)?,
        request_id: get(r, 4)?,
        param: get(r, 5)?,
        status: small(get(r, 6)?),
        failed_reason: get(r, 7)?,
        outcomes: get(r, 8)?,
        created_at: to_u64(get(r, 9)?),
        finished_at: get::<Option<i64>>(r, 10)?.map(to_u64),
    })
}

const ORG_COLS: &str = "id, name, vault_id, created_at, ecdsa_protocol";

fn org_row(r: &Row) -> Result<OrganizationRow, StoreError> {
    Ok(OrganizationRow {
        id: get(r, 0)?,
        name: get(r, 1)?,
        vault_id: get(r, 2)?,
        created_at: to_u64(get(r, 3)?),
        ecdsa_protocol: parse_org_protocol(&get::<String>(r, 4)?)?,
    })
}

const BINDING_COLS: &str = "node_id, organization_id, party, created_at, last_seen_at";

fn binding_row(r: &Row) -> Result<NodeBindingRow, StoreError> {
    Ok(NodeBindingRow {
        node_id: get(r, 0)?,
        organization_id: get(r, 1)?,
        party: get(r, 2)?,
        created_at: to_u64(get(r, 3)?),
        last_seen_at: get::<Option<i64>>(r, 4)?.map(to_u64),
    })
}

const WALLET_COLS: &str = "id, organization_id, vault_id, name, advanced, request_id, created_at";

fn wallet_row(r: &Row) -> Result<WalletRow, StoreError> {
    Ok(WalletRow {
        id: get(r, 0)?,
        organization_id: get(r, 1)?,
        vault_id: get(r, 2)?,
        name: get(r, 3)?,
        advanced: get(r, 4)?,
        request_id: get(r, 5)?,
        created_at: to_u64(get(r, 6)?),
    })
}

const ADDRESS_COLS: &str = "id, wallet_id, path, algorithm, encoding, address, pubkey";

fn api_user_row(r: &Row) -> Result<ApiUserRow, StoreError> {
    Ok(ApiUserRow {
        id: get(r, 0)?,
        organization_id: get(r, 1)?,
        name: get(r, 2)?,
        api_key: get(r, 3)?,
        created_at: to_u64(get(r, 4)?),
    })
}

fn address_row(r: &Row) -> Result<AddressRow, StoreError> {
    Ok(AddressRow {
        id: get(r, 0)?,
        wallet_id: get(r, 1)?,
        path: get(r, 2)?,
        algorithm: small(get(r, 3)?),
        encoding: small(get(r, 4)?),
        address: get(r, 5)?,
        pubkey: get(r, 6)?,
    })
}

fn rows<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(f).collect()
}

fn wallets_of_request(
    tx: &mut Transaction<'_>,
    organization_id: &str,
    request_id: &str,
) -> Result<Vec<WalletRow>, StoreError> {
    let found = tx
        .query(
            &format!(
                "SELECT {WALLET_COLS} FROM wallets WHERE organization_id = $1 AND request_id = $2 ORDER BY created_at, id"
            ),
            &[&organization_id, &request_id],
        )
        .map_err(db)?;
    rows(found, wallet_row)
}

impl Store for PostgresStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.conn()?.query_one("SELECT 1", &[]).map_err(db)?;
        Ok(())
    }

    fn create_organization(&self, org: &OrganizationRow) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO organizations (id, name, vault_id, created_at, ecdsa_protocol) VALUES ($1, $2, $3, $4, $5)",
                &[&org.id, &org.name, &org.vault_id, &to_i64(org.created_at), &org.ecdsa_protocol.name()],
            )
            .map_err(unique("an organization with this name exists"))?;
        Ok(())
    }

    fn organization(&self, id: &str) -> Result<Option<OrganizationRow>, StoreError> {
        self.conn()?
            .query_opt(
                &format!("SELECT {ORG_COLS} FROM organizations WHERE id = $1"),
                &[&id],
            )
            .map_err(db)?
            .as_ref()
            .map(org_row)
            .transpose()
    }

    fn organizations(&self) -> Result<Vec<OrganizationRow>, StoreError> {
        let found = self
            .conn()?
            .query(
                &format!("SELECT {ORG_COLS} FROM organizations ORDER BY created_at, id"),
                &[],
            )
            .map_err(db)?;
        rows(found, org_row)
    }

    fn create_api_user(&self, user: &ApiUserRow) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO api_users (id, organization_id, name, api_key, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&user.id, &user.organization_id, &user.name, &user.api_key, &to_i64(user.created_at)],
            )
            .map_err(unique("this API key is already registered"))?;
        Ok(())
    }

    fn api_user_by_key(&self, api_key: &str) -> Result<Option<ApiUserRow>, StoreError> {
        self.conn()?
            .query_opt(
                "SELECT id, organization_id, name, api_key, created_at FROM api_users WHERE api_key = $1",
                &[&api_key],
            )
            .map_err(db)?
            .map(|r| api_user_row(&r))
            .transpose()
    }

    fn api_users(&self, organization_id: Option<&str>) -> Result<Vec<ApiUserRow>, StoreError> {
        let found = self
            .conn()?
            .query(
                "SELECT id, organization_id, name, api_key, created_at FROM api_users
                 WHERE ($1::text IS NULL OR organization_id = $1) ORDER BY created_at, id",
                &[&organization_id],
            )
            .map_err(db)?;
        rows(found, api_user_row)
    }

    fn bind_node(&self, b: &NodeBindingRow) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO node_bindings (node_id, organization_id, party, created_at, last_seen_at) VALUES ($1, $2, $3, $4, NULL)",
                &[&b.node_id, &b.organization_id, &b.party, &to_i64(b.created_at)],
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
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let old: String = tx
            .query_opt(
                "SELECT node_id FROM node_bindings WHERE organization_id = $1 AND party = $2 FOR UPDATE",
                &[&organization_id, &party],
            )
            .map_err(db)?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "organization {organization_id} has no node bound to party {party}"
                ))
            })?
            .get(0);
        if old == node_id {
            return Err(StoreError::Conflict(format!(
                "node {node_id} is already bound to party {party}"
            )));
        }
        tx.execute(
            "UPDATE node_bindings SET node_id = $3, created_at = $4, last_seen_at = NULL
             WHERE organization_id = $1 AND party = $2",
            &[&organization_id, &party, &node_id, &to_i64(at)],
        )
        .map_err(unique("the new node is already bound"))?;
        tx.commit().map_err(db)?;
        Ok(old)
    }

    fn binding(&self, node_id: &str) -> Result<Option<NodeBindingRow>, StoreError> {
        self.conn()?
            .query_opt(
                &format!("SELECT {BINDING_COLS} FROM node_bindings WHERE node_id = $1"),
                &[&node_id],
            )
            .map_err(db)?
            .as_ref()
            .map(binding_row)
            .transpose()
    }

    fn bindings(&self, organization_id: Option<&str>) -> Result<Vec<NodeBindingRow>, StoreError> {
        let found = self
            .conn()?
            .query(
                &format!(
                    "SELECT {BINDING_COLS} FROM node_bindings
                     WHERE ($1::text IS NULL OR organization_id = $1) ORDER BY organization_id, party"
                ),
                &[&organization_id],
            )
            .map_err(db)?;
        rows(found, binding_row)
    }

    fn touch_node(&self, node_id: &str, at: u64) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "UPDATE node_bindings SET last_seen_at = $2 WHERE node_id = $1",
                &[&node_id, &to_i64(at)],
            )
            .map_err(db)?;
        Ok(())
    }

    fn create_key_if_absent(&self, key: &KeyRow) -> Result<bool, StoreError> {
        // The partial unique index `keys_one_live` decides, whichever connection or process
        // inserts first.
        let n = self
            .conn()?
            .execute(
                &format!(
                    "INSERT INTO keys ({KEY_COLS}, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                     ON CONFLICT (organization_id, curve) WHERE status IN ('generating', 'generated')
                     DO NOTHING"
                ),
                &[
                    &key.id,
                    &key.organization_id,
                    &curve_str(key.curve),
                    &i64::from(key.threshold),
                    &key.parties.join(","),
                    &hex::encode(&key.root_public_key),
                    &key.chain_code.map(hex::encode).unwrap_or_default(),
                    &key.status.as_str(),
                    &key.failure_reason,
                    &to_i64(key.created_at),
                    &to_i64(key.updated_at),
                    &protocol_str(key.ecdsa_protocol),
                    &key.generation,
                    &self.owner(),
                ],
            )
            .map_err(unique("key id exists"))?;
        Ok(n == 1)
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
            .conn()?
            .execute(
                "UPDATE keys SET status = $2, root_public_key = $3, chain_code = $4, failure_reason = $5, updated_at = $6
                 WHERE id = $1 AND status = 'generating'",
                &[
                    &key_id,
                    &status.as_str(),
                    &hex::encode(root_public_key),
                    &chain_code.map(hex::encode).unwrap_or_default(),
                    &reason,
                    &to_i64(at),
                ],
            )
            .map_err(unique("another live key of this curve"))?;
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
            .conn()?
            .execute(
                "UPDATE keys SET generation = $3, updated_at = $4
                 WHERE id = $1 AND status = 'generated' AND generation = $2",
                &[&key_id, &from, &to, &to_i64(at)],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn keys(&self, organization_id: Option<&str>) -> Result<Vec<KeyRow>, StoreError> {
        let found = self
            .conn()?
            .query(
                &format!(
                    "SELECT {KEY_COLS} FROM keys WHERE ($1::text IS NULL OR organization_id = $1) ORDER BY created_at DESC, id DESC"
                ),
                &[&organization_id],
            )
            .map_err(db)?;
        rows(found, key_row)
    }

    fn generated_key(
        &self,
        organization_id: &str,
        curve: Curve,
    ) -> Result<Option<KeyRow>, StoreError> {
        self.conn()?
            .query_opt(
                &format!(
                    "SELECT {KEY_COLS} FROM keys WHERE organization_id = $1 AND curve = $2 AND status = 'generated'
                     ORDER BY created_at DESC, id DESC LIMIT 1"
                ),
                &[&organization_id, &curve_str(curve)],
            )
            .map_err(db)?
            .as_ref()
            .map(key_row)
            .transpose()
    }

    fn create_wallets(
        &self,
        organization_id: &str,
        request_id: &str,
        wallets: &[WalletRow],
    ) -> Result<Vec<WalletRow>, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        // One (organization, request id) at a time, across connections and processes.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(10) || $2, 0))",
            &[&organization_id, &request_id],
        )
        .map_err(db)?;
        let existing = wallets_of_request(&mut tx, organization_id, request_id)?;
        if !existing.is_empty() {
            return Ok(existing);
        }
        for w in wallets {
            tx.execute(
                &format!("INSERT INTO wallets ({WALLET_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
                &[
                    &w.id,
                    &w.organization_id,
                    &w.vault_id,
                    &w.name,
                    &w.advanced,
                    &w.request_id,
                    &to_i64(w.created_at),
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
        self.conn()?
            .query_opt(
                &format!(
                    "SELECT {WALLET_COLS} FROM wallets WHERE organization_id = $1 AND id = $2"
                ),
                &[&organization_id, &wallet_id],
            )
            .map_err(db)?
            .as_ref()
            .map(wallet_row)
            .transpose()
    }

    fn save_addresses(&self, list: &[AddressRow]) -> Result<Vec<AddressRow>, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        for a in list {
            tx.execute(
                &format!(
                    "INSERT INTO addresses ({ADDRESS_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (wallet_id, path, algorithm, encoding)
                     DO UPDATE SET address = excluded.address, pubkey = excluded.pubkey"
                ),
                &[
                    &a.id,
                    &a.wallet_id,
                    &a.path,
                    &i64::from(a.algorithm),
                    &i64::from(a.encoding),
                    &a.address,
                    &a.pubkey,
                ],
            )
            .map_err(unique("address"))?;
        }
        let mut out = Vec::new();
        if let Some(first) = list.first() {
            let found = tx
                .query(
                    &format!(
                        "SELECT {ADDRESS_COLS} FROM addresses WHERE wallet_id = $1 AND path = $2 AND algorithm = $3 ORDER BY encoding"
                    ),
                    &[&first.wallet_id, &first.path, &i64::from(first.algorithm)],
                )
                .map_err(db)?;
            out = rows(found, address_row)?;
        }
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn addresses_at(&self, wallet_id: &str, path: &str) -> Result<Vec<AddressRow>, StoreError> {
        let found = self
            .conn()?
            .query(
                &format!(
                    "SELECT {ADDRESS_COLS} FROM addresses WHERE wallet_id = $1 AND path = $2 ORDER BY algorithm, encoding"
                ),
                &[&wallet_id, &path],
            )
            .map_err(db)?;
        rows(found, address_row)
    }

    fn list_addresses(
        &self,
        organization_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ListedAddress>, StoreError> {
        let found = self
            .conn()?
            .query(
                "SELECT a.id, a.wallet_id, a.path, a.algorithm, a.encoding, a.address, a.pubkey,
                        w.organization_id, w.name
                 FROM addresses a JOIN wallets w ON w.id = a.wallet_id
                 WHERE ($1::text IS NULL OR w.organization_id = $1)
                 ORDER BY w.created_at DESC, w.id, a.path, a.algorithm, a.encoding LIMIT $2",
                &[&organization_id, &i64::from(limit)],
            )
            .map_err(db)?;
        rows(found, |r| {
            Ok(ListedAddress {
                address: address_row(r)?,
                organization_id: get(r, 7)?,
                wallet_name: get(r, 8)?,
            })
        })
    }

    fn insert_sign_request(
        &self,
        s: &SignRequestRow,
    ) -> Result<(SignRequestRow, bool), StoreError> {
        let owner = self.owner();
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        // A concurrent insert of the same (organization, request id) makes this one wait for
        // its commit, then do nothing: the row read below is the one that won.
        let n = tx
            .execute(
                &format!(
                    "INSERT INTO sign_requests ({SIGN_COLS}, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
                     ON CONFLICT (organization_id, request_id) DO NOTHING"
                ),
                &[
                    &s.sino_id,
                    &s.organization_id,
                    &s.request_id,
                    &i64::from(s.kind),
                    &s.algorithm,
                    &i64::from(s.sign_type),
                    &s.key_id,
                    &s.path,
                    &s.message,
                    &s.digest,
                    &s.state.as_str(),
                    &s.signature,
                    &s.encrypted,
                    &s.reason,
                    &s.culprits.join(","),
                    &to_i64(s.created_at),
                    &s.finished_at.map(to_i64),
                    &owner,
                ],
            )
            .map_err(unique("sign request"))?;
        let row = tx
            .query_one(
                &format!(
                    "SELECT {SIGN_COLS} FROM sign_requests WHERE organization_id = $1 AND request_id = $2"
                ),
                &[&s.organization_id, &s.request_id],
            )
            .map_err(db)?;
        let row = sign_row(&row)?;
        tx.commit().map_err(db)?;
        Ok((row, n == 1))
    }

    fn sign_request(
        &self,
        organization_id: &str,
        request_id: Option<&str>,
        sino_id: Option<&str>,
    ) -> Result<Option<SignRequestRow>, StoreError> {
        self.conn()?
            .query_opt(
                &format!(
                    "SELECT {SIGN_COLS} FROM sign_requests WHERE organization_id = $1
                     AND ($2::text IS NULL OR request_id = $2) AND ($3::text IS NULL OR sino_id = $3)"
                ),
                &[&organization_id, &request_id, &sino_id],
            )
            .map_err(db)?
            .as_ref()
            .map(sign_row)
            .transpose()
    }

    fn finish_sign_request(&self, sino_id: &str, f: &SignFinish) -> Result<bool, StoreError> {
        let n = self
            .conn()?
            .execute(
                "UPDATE sign_requests SET state = $2, signature = $3, encrypted = $4, reason = $5, culprits = $6, finished_at = $7
                 WHERE sino_id = $1 AND state = 'pending'",
                &[
                    &sino_id,
                    &f.state.as_str(),
                    &f.signature,
                    &f.encrypted,
                    &f.reason,
                    &f.culprits.join(","),
                    &to_i64(f.at),
                ],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn insert_mpc_request(&self, m: &MpcRequestRow) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                &format!(
                    "INSERT INTO mpc_requests ({MPC_COLS}, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ),
                &[
                    &m.task_id,
                    &m.organization_id,
                    &i64::from(m.kind),
                    &m.sino_id,
                    &m.request_id,
                    &m.param,
                    &i64::from(m.status),
                    &m.failed_reason,
                    &m.outcomes,
                    &to_i64(m.created_at),
                    &m.finished_at.map(to_i64),
                    &self.owner(),
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
        self.conn()?
            .execute(
                "UPDATE mpc_requests SET status = $2, failed_reason = $3, outcomes = $4, finished_at = $5 WHERE task_id = $1",
                &[&task_id, &i64::from(status), &failed_reason, &outcomes, &to_i64(at)],
            )
            .map_err(db)?;
        Ok(())
    }

    fn list_mpc_requests(
        &self,
        q: &MpcRequestQuery,
    ) -> Result<(u64, Vec<MpcRequestRow>), StoreError> {
        let mut c = self.conn()?;
        let filter = "($1::text IS NULL OR organization_id = $1) AND ($2::bigint IS NULL OR kind = $2)
                      AND ($3::bigint IS NULL OR status = $3) AND ($4::text IS NULL OR sino_id = $4)";
        let kind = q.kind.map(i64::from);
        let status = q.status.map(i64::from);
        let total: i64 = c
            .query_one(
                &format!("SELECT COUNT(*) FROM mpc_requests WHERE {filter}"),
                &[&q.organization_id, &kind, &status, &q.sino_id],
            )
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        let found = c
            .query(
                &format!(
                    "SELECT {MPC_COLS} FROM mpc_requests WHERE {filter} ORDER BY created_at DESC, task_id DESC LIMIT $5 OFFSET $6"
                ),
                &[
                    &q.organization_id,
                    &kind,
                    &status,
                    &q.sino_id,
                    &to_i64(q.limit),
                    &to_i64(q.offset),
                ],
            )
            .map_err(db)?;
        Ok((to_u64(total), rows(found, mpc_row)?))
    }

    fn fail_unfinished(&self, reason: &str, at: u64) -> Result<u64, StoreError> {
        // Rows of no live coordinator: recorded before owners existed, or by this instance.
        let owner = self.owner();
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let mut n = 0;
        for sql in super::FAIL_SQL {
            n += tx
                .execute(
                    &format!("{} AND (owner = '' OR owner = $3)", numbered(sql)),
                    &[&reason, &to_i64(at), &owner],
                )
                .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(n)
    }

    fn heartbeat(&self, alive_until: u64) -> Result<(), StoreError> {
        let owner = self.owner();
        self.conn()?
            .execute(
                "INSERT INTO coordinators (id, alive_until) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until",
                &[&owner, &to_i64(alive_until)],
            )
            .map_err(db)?;
        Ok(())
    }

    fn fail_orphaned(&self, reason: &str, now: u64) -> Result<u64, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        let mut n = 0;
        for sql in super::FAIL_SQL {
            n += tx
                .execute(
                    &format!(
                        "{} AND owner <> '' AND owner NOT IN (SELECT id FROM coordinators WHERE alive_until >= $2)",
                        numbered(sql)
                    ),
                    &[&reason, &to_i64(now)],
                )
                .map_err(db)?;
        }
        tx.execute(
            "DELETE FROM coordinators WHERE alive_until < $1",
            &[&to_i64(now.saturating_sub(super::FORGET_COORDINATORS_MS))],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n)
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
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        tx.execute(
            "DELETE FROM nonces WHERE nonce_ms < $1",
            &[&to_i64(forget_before_ms)],
        )
        .map_err(db)?;
        let n = tx
            .execute(
                "INSERT INTO nonces (key_hash, nonce_ms) VALUES ($1, $2) ON CONFLICT (key_hash, nonce_ms) DO NOTHING",
                &[&key_hash, &to_i64(nonce_ms)],
            )
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(n == 1)
    }
}

/// [`super::FAIL_SQL`] (written with `?1`, `?2`) in PostgreSQL's `$1`, `$2`.
fn numbered(sql: &str) -> String {
    sql.replace("?1", "$1").replace("?2", "$2")
}
