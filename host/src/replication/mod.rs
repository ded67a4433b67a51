//! Performance replication between Warden clusters, on PostgreSQL's
//! logical replication (issue 18; the design is in docs/replication.md).
//!
//! Built so far: the storage keeps replicated and local rows apart, each
//! replicated row with its WAL index and leaf hash
//! ([`crate::storage::PostgresBackend`]); this module keeps the cluster's
//! replication state (`core/replication/state`, local, under the barrier)
//! and answers Vault's status shapes; a cluster becomes a performance
//! primary once its database is fit for it (`wal_level = logical`, a login
//! that may publish). Secondaries (activation tokens, publications,
//! subscriptions, forwarding of replicated writes) are not built yet.

use crate::error::{Error, Result};
use crate::storage::barrier::Barrier;
use crate::storage::locality::LocalStorage;
use crate::storage::{Backend, Storage, layout};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The cluster's replication state: this cluster's own (a secondary has
/// its own mode).
pub const LOCAL_STORAGE: LocalStorage = &[layout::REPLICATION];
const STATE_KEY: &str = layout::REPLICATION_STATE;

/// A cluster's part in performance replication.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Disabled,
    Primary,
}

/// What is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub mode: Mode,
    /// The replication set's id: the primary's cluster id when enabled.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_id: String,
    /// The cluster address the primary gives its secondaries.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub primary_cluster_addr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_at: Option<DateTime<Utc>>,
}

/// The state as stored (disabled when never set).
pub async fn read(barrier: &Barrier) -> Result<State> {
    match barrier.get(STATE_KEY).await.map_err(storage)? {
        None => Ok(State::default()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::internal(format!("the stored replication state cannot be read: {e}"))),
    }
}

async fn write(barrier: &Barrier, state: &State) -> Result<()> {
    let bytes = serde_json::to_vec(state).map_err(|e| Error::internal(e.to_string()))?;
    barrier.put(STATE_KEY, &bytes).await.map_err(storage)
}

fn storage(e: impl std::fmt::Display) -> Error {
    Error::internal(e.to_string())
}

/// `sys/replication/performance/primary/enable`: the storage must be
/// PostgreSQL fit for logical replication; the cluster must not be a
/// primary already. Nothing is written when it is refused.
pub async fn enable_primary(
    physical: &Storage,
    storage_type: &str,
    barrier: &Barrier,
    cluster_id: &str,
    primary_cluster_addr: String,
) -> Result<()> {
    let Some(pg) = physical.as_postgres() else {
        return Err(Error::bad(format!(
            "performance replication needs PostgreSQL storage (it uses PostgreSQL's logical replication); this cluster's storage is {storage_type}"
        )));
    };
    if read(barrier).await?.mode != Mode::Disabled {
        return Err(Error::bad("this cluster is already a performance primary"));
    }
    if let Some(reason) = pg.replication_unfit().await.map_err(storage)? {
        return Err(Error::bad(reason));
    }
    let state = State {
        mode: Mode::Primary,
        cluster_id: cluster_id.to_string(),
        primary_cluster_addr,
        enabled_at: Some(Utc::now()),
    };
    write(barrier, &state).await?;
    tracing::info!(cluster_id, "performance replication enabled: this cluster is a primary");
    Ok(())
}

/// `sys/replication/performance/primary/disable`.
pub async fn disable_primary(barrier: &Barrier) -> Result<()> {
    if read(barrier).await?.mode != Mode::Primary {
        return Err(Error::bad(
            "performance replication is not enabled as a primary on this cluster",
        ));
    }
    write(barrier, &State::default()).await?;
    tracing::info!("performance replication disabled");
    Ok(())
}

/// `sys/replication/performance/status`, Vault's shape: `{mode:
/// "disabled"}`, or a primary's index, root and secondaries.
pub async fn performance_status(physical: &Storage, barrier: &Barrier) -> Result<Value> {
    let state = read(barrier).await?;
    match (state.mode, physical.as_postgres()) {
        (Mode::Primary, Some(pg)) => Ok(json!({
            "mode": "primary",
            "cluster_id": state.cluster_id,
            "primary_cluster_addr": state.primary_cluster_addr,
            "state": "running",
            "last_wal": pg.last_wal().await.map_err(storage)?,
            "merkle_root": pg.merkle_root().await.map_err(storage)?,
            "known_secondaries": [],
            "secondaries": [],
        })),
        _ => Ok(json!({ "mode": "disabled" })),
    }
}

/// `sys/replication/dr/status`: disaster recovery replication is not a
/// Warden feature.
pub fn dr_status() -> Value {
    json!({ "mode": "disabled" })
}
