//! `devnet.json`: what a later start of the same directory reuses (ports, organization, user,
//! node ids, wallet). Written after every change; nothing secret in it.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fsutil::{self, FsError};

/// Ports of the processes (all on 127.0.0.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    /// The platform's HTTPS listener.
    pub platform: u16,
    /// The callback demo.
    pub callback: u16,
    /// Local API (`unseal-server-address`) per party.
    pub nodes: BTreeMap<String, u16>,
    /// `--scale`: the platform's processes and engines (absent for one platform process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScalePorts>,
}

/// Ports of a scaled devnet (`--scale`): several platform processes, one role each, sharing
/// PostgreSQL and nats-server. The first coordinator's port is also [`Ports::platform`] (the
/// API the devnet prints and calls first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalePorts {
    /// One per coordinator process (its API).
    pub coordinators: Vec<u16>,
    /// One per proxy process (where nodes connect).
    pub proxies: Vec<u16>,
    /// The devnet's PostgreSQL server.
    pub postgres: u16,
    /// The devnet's nats-server.
    pub nats: u16,
}

impl Ports {
    /// Where nodes connect: the proxies of a scaled devnet, else the one platform process.
    pub fn proxy_ports(&self) -> Vec<u16> {
        match &self.scale {
            Some(s) => s.proxies.clone(),
            None => vec![self.platform],
        }
    }

    /// Where the API is served: the coordinators of a scaled devnet, else the platform.
    pub fn api_ports(&self) -> Vec<u16> {
        match &self.scale {
            Some(s) => s.coordinators.clone(),
            None => vec![self.platform],
        }
    }
}

/// Everything kept between starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Ports.
    pub ports: Ports,
    /// Organization id, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Its vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_id: Option<String>,
    /// Its threshold-ECDSA protocol, as the platform answered at creation (absent in state
    /// files from before the choice existed: those organizations are CGGMP24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecdsa_protocol: Option<mpc_api::types::admin::EcdsaProtocol>,
    /// The API user's id, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_user_id: Option<String>,
    /// Node ids by party, once bound.
    #[serde(default)]
    pub bound: BTreeMap<String, String>,
    /// The demo wallet, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_id: Option<String>,
    /// `--docker-networks`: each node on a Docker network of its own that reaches only the
    /// platform (by the name `platform`) and, for node a, the callback demo (`callback`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub docker_networks: bool,
}

/// Host names of the platform and the callback demo as the nodes reach them: on 127.0.0.1,
/// or by their names on the nodes' Docker networks.
pub fn service_hosts(docker_networks: bool) -> (&'static str, &'static str) {
    if docker_networks {
        ("platform", "callback")
    } else {
        ("127.0.0.1", "127.0.0.1")
    }
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// File I/O.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Not our JSON.
    #[error("{path}: {source} (delete it to start over)")]
    Json {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// No free port.
    #[error("no free port on 127.0.0.1: {0}")]
    Port(std::io::Error),
}

impl State {
    /// Reads `path`; a missing file is the empty state.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = fsutil::read_text(path)?;
        serde_json::from_str(&text).map_err(|source| StateError::Json {
            path: path.display().to_string(),
            source,
        })
    }

    /// Writes `path` (pretty JSON).
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let text = serde_json::to_string_pretty(self).map_err(|source| StateError::Json {
            path: path.display().to_string(),
            source,
        })?;
        fsutil::write_public(path, text.as_bytes())?;
        Ok(())
    }

    /// Gives every process a port: kept from the last start when still free, else a new one.
    /// With `keep_platform` the platform's port is kept even when it is in use (a platform
    /// run by someone else listens there).
    /// With `scale` = (coordinators, proxies) the ports of a scaled devnet are assigned too
    /// (the first coordinator's is the platform port); without it they are dropped.
    pub fn assign_ports(
        &mut self,
        parties: &[String],
        keep_platform: bool,
        scale: Option<(usize, usize)>,
    ) -> Result<(), StateError> {
        let mut taken: Vec<u16> = Vec::new();
        let pick = |old: u16, taken: &mut Vec<u16>| -> Result<u16, StateError> {
            let p = if old != 0 && !taken.contains(&old) && port_is_free(old) {
                old
            } else {
                loop {
                    let p = free_port().map_err(StateError::Port)?;
                    if !taken.contains(&p) {
                        break p;
                    }
                }
            };
            taken.push(p);
            Ok(p)
        };
        self.ports.platform = if keep_platform && self.ports.platform != 0 {
            taken.push(self.ports.platform);
            self.ports.platform
        } else {
            pick(self.ports.platform, &mut taken)?
        };
        self.ports.callback = pick(self.ports.callback, &mut taken)?;
        for party in parties {
            let old = self.ports.nodes.get(party).copied().unwrap_or(0);
            let p = pick(old, &mut taken)?;
            self.ports.nodes.insert(party.clone(), p);
        }
        self.ports.scale = match scale {
            None => None,
            Some((coordinators, proxies)) => {
                let old = self.ports.scale.take().unwrap_or_default();
                let list = |old: &[u16], n: usize, taken: &mut Vec<u16>| {
                    (0..n)
                        .map(|i| pick(old.get(i).copied().unwrap_or(0), taken))
                        .collect::<Result<Vec<u16>, StateError>>()
                };
                // The first coordinator serves the API on the platform port.
                let mut cs = vec![self.ports.platform];
                cs.extend(list(
                    old.coordinators.get(1..).unwrap_or(&[]),
                    coordinators.saturating_sub(1),
                    &mut taken,
                )?);
                let proxies = list(&old.proxies, proxies, &mut taken)?;
                Some(ScalePorts {
                    coordinators: cs,
                    proxies,
                    postgres: pick(old.postgres, &mut taken)?,
                    nats: pick(old.nats, &mut taken)?,
                })
            }
        };
        Ok(())
    }
}

/// A port the OS gives for 127.0.0.1:0 (released before returning; a small race is accepted).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether 127.0.0.1:`port` can be bound now.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}
