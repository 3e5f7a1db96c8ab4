//! Joining the network once the store is unsealed: load the identity key, make (first unseal)
//! or load the transport key, load the prime pool and start its filler, build the callback
//! client, then run the proxy connection ([`crate::net`]) with the task runtime
//! ([`crate::tasks`]).

use std::sync::Arc;
use std::time::Duration;

use mpc_callback::mpc_wire::signature::EcdsaSigner;
use mpc_callback::{CallbackClient, CallbackConfig, DEFAULT_MAX_WAIT, EncryptConfig, ServerConfig};
use mpc_keystore::tables;
use mpc_transport::keys::TransportSecret;
use p256::ecdsa::SigningKey;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::identity::IDENTITY_RECORD;
use crate::net::{self, NetParams};
use crate::node::Node;
use crate::platform_key::PlatformPin;
use crate::primes::PersistentPrimes;
use crate::replay::SeenTasks;
use crate::store::{SecretStore, StoreAccessError, ensure_transport_key};
use crate::tasks::{Runtime, RuntimeParams};

/// Timeout of one callback HTTP exchange.
pub const CALLBACK_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the node could not join the network.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The store failed or lacks the identity.
    #[error(transparent)]
    Store(#[from] StoreAccessError),
    /// The identity record is missing or invalid.
    #[error("node identity: {0}")]
    Identity(String),
    /// The prime pool could not be loaded.
    #[error(transparent)]
    Primes(#[from] crate::primes::PrimeError),
    /// Configuration that validated but could not be used.
    #[error("{0}")]
    Config(String),
    /// TLS setup.
    #[error(transparent)]
    Net(#[from] net::NetError),
}

/// Waits for `node` to be unsealed (or `shutdown`), then joins the network with its store.
pub async fn join_after_unseal(
    node: Arc<Node>,
    config: Config,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), JoinError> {
    let mut unsealed = node.watch_unsealed();
    loop {
        if *unsealed.borrow() {
            break;
        }
        tokio::select! {
            r = unsealed.changed() => {
                if r.is_err() {
                    return Ok(());
                }
            }
            _ = shutdown.changed() => return Ok(()),
        }
        if *shutdown.borrow() {
            return Ok(());
        }
    }
    let metrics = node.metrics().clone();
    let audit = node.audit().clone();
    join_with(node, &config, shutdown, metrics, audit).await
}

struct Loaded {
    identity: Arc<EcdsaSigner>,
    transport: TransportSecret,
    primes: PersistentPrimes,
    seen: SeenTasks,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn load(store: Arc<dyn SecretStore>, config: &Config) -> Result<Loaded, JoinError> {
    let scalar = store
        .get(tables::NODE_IDENTITY, IDENTITY_RECORD)?
        .ok_or_else(|| JoinError::Identity("no identity record in the store".into()))?;
    let identity = SigningKey::from_slice(&scalar)
        .map_err(|_| JoinError::Identity("the identity record is not a P-256 key".into()))?;
    let identity = Arc::new(EcdsaSigner::new(&identity));
    let transport = ensure_transport_key(store.as_ref())?;
    let rotate = config
        .app
        .party_id
        .bytes()
        .next()
        .map_or(0, |b| usize::from(b.saturating_sub(b'a')));
    let seen = SeenTasks::load(store.as_ref(), now_ms())?;
    let primes = PersistentPrimes::load(store, config.insecure_test_primes.as_deref(), rotate)?;
    Ok(Loaded {
        identity,
        transport,
        primes,
        seen,
    })
}

/// The callback client of `[callback]`.
pub fn callback_client(config: &Config) -> Result<CallbackClient, JoinError> {
    let servers = config
        .callback
        .server
        .iter()
        .map(|s| {
            let pem = std::fs::read_to_string(&s.public_key_path).map_err(|e| {
                JoinError::Config(format!(
                    "[callback.server] public-key-path {}: {e}",
                    s.public_key_path.display()
                ))
            })?;
            let public_key =
                mpc_callback::mpc_wire::keys::verifying_key_from_pem(&pem).map_err(|e| {
                    JoinError::Config(format!("[callback.server] public-key-path: {e}"))
                })?;
            Ok(ServerConfig {
                address: s.address.clone(),
                public_key,
            })
        })
        .collect::<Result<Vec<_>, JoinError>>()?;
    CallbackClient::new(CallbackConfig {
        servers,
        retry_times: config.callback.retry_times,
        sleep: Duration::from_secs(config.callback.sleep_seconds),
        request_timeout: CALLBACK_REQUEST_TIMEOUT,
        max_wait: DEFAULT_MAX_WAIT,
    })
    .map_err(|e| JoinError::Config(format!("[callback]: {e}")))
}

/// `[encrypt-signature]`.
pub fn encrypt_config(config: &Config) -> Result<EncryptConfig, JoinError> {
    if !config.encrypt_signature.enable {
        return Ok(EncryptConfig::default());
    }
    let path = &config.encrypt_signature.public_key_path;
    let pem = std::fs::read_to_string(path).map_err(|e| {
        JoinError::Config(format!(
            "[encrypt-signature] public-key-path {}: {e}",
            path.display()
        ))
    })?;
    let key = mpc_callback::mpc_wire::keys::public_key_from_pem(&pem)
        .map_err(|e| JoinError::Config(format!("[encrypt-signature] public-key-path: {e}")))?;
    Ok(EncryptConfig {
        public_key: Some(key),
    })
}

/// Joins the network with an unsealed `store` and runs until `shutdown` turns `true`.
pub async fn join(
    store: Arc<dyn SecretStore>,
    config: &Config,
    shutdown: watch::Receiver<bool>,
) -> Result<(), JoinError> {
    join_with(
        store,
        config,
        shutdown,
        crate::metrics::NodeMetrics::new(),
        crate::audit::NodeAudit::off(),
    )
    .await
}

/// [`join`], counting into `metrics` (the node's own, served by `[metrics]`) and recording
/// callback decisions and signatures in `audit` (the node's `[audit]` log).
pub async fn join_with(
    store: Arc<dyn SecretStore>,
    config: &Config,
    shutdown: watch::Receiver<bool>,
    metrics: crate::metrics::NodeMetrics,
    audit: crate::audit::NodeAudit,
) -> Result<(), JoinError> {
    let s = store.clone();
    let cfg = config.clone();
    let loaded = tokio::task::spawn_blocking(move || load(s, &cfg))
        .await
        .map_err(|_| JoinError::Identity("loading task failed".into()))??;
    if config.insecure_test_primes.is_none() {
        loaded.primes.start_filler(shutdown.clone());
    } else {
        tracing::warn!("INSECURE: test primes loaded; the prime filler is not started");
    }
    let tls = match config.mpc_service.protocol.as_str() {
        "ws" => None,
        _ => {
            let extra = match &config.mpc_service.ca_cert_path {
                Some(p) => config
                    .ca_certs(p)
                    .map_err(|e| JoinError::Config(e.to_string()))?,
                None => Vec::new(),
            };
            Some(net::tls_config(extra)?)
        }
    };
    let platform = match &config.mpc_service.platform_public_key_path {
        Some(p) => {
            let key = config
                .platform_public_key(p)
                .map_err(|e| JoinError::Config(e.to_string()))?;
            tracing::info!(
                platform_key = %mpc_transport::signed::key_hex(&key),
                "tasks must be signed by the configured platform key"
            );
            PlatformPin::new(Some(key))
        }
        None => PlatformPin::new(None),
    };
    let transport_cert = loaded.transport.certify(&loaded.identity);
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let runtime = Runtime::new(
        RuntimeParams {
            identity: loaded.identity.clone(),
            transport: loaded.transport,
            party: config.app.party_id.clone(),
            store,
            callback: callback_client(config)?,
            encrypt: encrypt_config(config)?,
            primes: loaded.primes,
            platform,
            seen: loaded.seen,
            metrics,
            audit,
        },
        out_tx,
    );
    let params = NetParams {
        urls: config.mpc_service.urls(),
        tls,
        identity: loaded.identity,
        transport_cert,
    };
    tracing::info!(urls = %params.urls.join(","), node_id = %runtime.node_id(), "joining the network");
    net::run(params, runtime, out_rx, shutdown).await;
    Ok(())
}
