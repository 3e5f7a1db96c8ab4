//! The bindings as the proxy asks for them ([`NodeDirectory`]), read from the store: the
//! coordinator answers with it, and so does a proxy-only process (`mpc-platform` with
//! `roles = ["proxy"]`) over the database it shares with the coordinators.

use std::sync::Arc;

use mpc_bus::{Binding, BusError, BusFuture, NodeDirectory};

use crate::store::{self, PostgresOptions, Store, StoreError};

/// [`NodeDirectory`] over a [`Store`].
pub struct StoreDirectory {
    store: Arc<dyn Store>,
}

impl StoreDirectory {
    /// Over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Opens `database` (see [`store::open`]; it blocks: connects and migrates).
    pub fn open(database: &str, options: &PostgresOptions) -> Result<Self, StoreError> {
        Ok(Self::new(store::open(database, options)?))
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> bool {
        let store = self.store.clone();
        matches!(
            tokio::task::spawn_blocking(move || store.ping()).await,
            Ok(Ok(_))
        )
    }
}

impl std::fmt::Debug for StoreDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreDirectory").finish_non_exhaustive()
    }
}

/// The binding of `node_id` in `store` (blocking).
pub(crate) fn binding_in(store: &dyn Store, node_id: &str) -> Result<Option<Binding>, BusError> {
    let row = store
        .binding(node_id)
        .map_err(|e| BusError::Backend(e.to_string()))?;
    Ok(row.map(|b| Binding {
        organization_id: b.organization_id,
        party: b.party,
    }))
}

impl NodeDirectory for StoreDirectory {
    fn binding<'a>(&'a self, node_id: &'a str) -> BusFuture<'a, Option<Binding>> {
        Box::pin(async move {
            let (store, node_id) = (self.store.clone(), node_id.to_owned());
            tokio::task::spawn_blocking(move || binding_in(store.as_ref(), &node_id))
                .await
                .map_err(|e| BusError::Backend(format!("store task: {e}")))?
        })
    }
}
