//! Performance replication between Warden clusters, on PostgreSQL's
//! logical replication (issue 18; the design is in docs/replication.md).
//!
//! Built so far: the storage keeps replicated and local rows apart, each
//! replicated row with its WAL index and leaf hash
//! ([`crate::storage::PostgresBackend`]); this module keeps the cluster's
//! replication state (`core/replication/state`, local, under the barrier)
//! and answers Vault's status shapes; a cluster becomes a performance
//! primary once its database is fit for it (`wal_level = logical`, a login
//! that may publish); an activation token for a secondary creates that
//! secondary's publication and replication login and wraps what it needs
//! to subscribe; revoking a secondary drops them and ends its stream. The
//! secondary side (enable, subscribe, forwarding of replicated writes) is
//! not built yet.

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
    /// The secondaries given an activation token, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secondaries: Vec<Secondary>,
}

/// A secondary of this primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secondary {
    /// The operator's opaque id (`us-east`).
    pub id: String,
    /// Its publication, and the replication slot its subscription must use.
    pub publication: String,
    /// Its replication login.
    pub login: String,
    pub created_at: DateTime<Utc>,
}

/// The names of a secondary's publication and login: from a hash of its
/// id, so any id the operator picks makes a plain SQL identifier.
fn names(id: &str) -> (String, String) {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(id.as_bytes()));
    let short = &digest[..16];
    (format!("warden_pub_{short}"), format!("warden_repl_{short}"))
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

/// A primary's PostgreSQL storage (enable made sure it is one).
fn primary_storage(physical: &Storage) -> Result<&crate::storage::PostgresBackend> {
    physical
        .as_postgres()
        .ok_or_else(|| Error::internal("a primary without PostgreSQL storage"))
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
        secondaries: Vec::new(),
    };
    write(barrier, &state).await?;
    tracing::info!(cluster_id, "performance replication enabled: this cluster is a primary");
    Ok(())
}

/// `sys/replication/performance/primary/disable`: every secondary is cut
/// off (its publication, login and slot dropped), then the mode goes.
pub async fn disable_primary(physical: &Storage, barrier: &Barrier) -> Result<()> {
    let mut state = read(barrier).await?;
    if state.mode != Mode::Primary {
        return Err(Error::bad(
            "performance replication is not enabled as a primary on this cluster",
        ));
    }
    if let Some(pg) = physical.as_postgres() {
        // One at a time, recorded as it goes: a failure leaves the rest
        // listed, so a second disable finishes the job.
        while let Some(secondary) = state.secondaries.first().cloned() {
            pg.unpublish(&secondary.publication, &secondary.login)
                .await
                .map_err(storage)?;
            state.secondaries.remove(0);
            write(barrier, &state).await?;
        }
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
        (Mode::Primary, Some(pg)) => {
            let mut secondaries = Vec::new();
            for s in &state.secondaries {
                let heard = pg.stream_of(&s.login).await.map_err(storage)?;
                secondaries.push(json!({
                    "node_id": s.id,
                    "api_address": "",
                    "cluster_address": "",
                    "connection_status": if heard.is_some() { "connected" } else { "disconnected" },
                    "last_heartbeat": heard.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default(),
                }));
            }
            Ok(json!({
                "mode": "primary",
                "cluster_id": state.cluster_id,
                "primary_cluster_addr": state.primary_cluster_addr,
                "state": "running",
                "last_wal": pg.last_wal().await.map_err(storage)?,
                "merkle_root": pg.merkle_root().await.map_err(storage)?,
                "known_secondaries": state.secondaries.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
                "secondaries": secondaries,
            }))
        }
        _ => Ok(json!({ "mode": "disabled" })),
    }
}

/// The default lifetime of an activation token (Vault's 30m).
pub const DEFAULT_TOKEN_TTL: i64 = 30 * 60;

/// What an activation token carries, wrapped (the secondary unwraps it
/// once): where the primary is and how to subscribe to its rows.
pub struct Activation {
    pub data: Value,
}

/// `sys/replication/performance/primary/secondary-token`: the secondary's
/// publication and login, recorded, and what the secondary needs. The
/// caller wraps `data`. Refused (nothing made) when this cluster is not a
/// primary or the id is taken.
pub async fn secondary_token(
    physical: &Storage,
    barrier: &Barrier,
    id: &str,
    primary_api_addr: &str,
) -> Result<Activation> {
    if id.is_empty() {
        return Err(Error::bad("missing required field \"id\""));
    }
    let mut state = read(barrier).await?;
    if state.mode != Mode::Primary {
        return Err(Error::bad("this cluster is not a performance primary: enable it first"));
    }
    if state.secondaries.iter().any(|s| s.id == id) {
        return Err(Error::bad(format!(
            "a secondary with id {id:?} already has a token: revoke it first to issue another"
        )));
    }
    let pg = primary_storage(physical)?;
    let (publication, login) = names(id);
    let password = crate::core::token::store::random_base62(32);
    pg.publish(&publication, &login, &password).await.map_err(storage)?;
    state.secondaries.push(Secondary {
        id: id.to_string(),
        publication: publication.clone(),
        login: login.clone(),
        created_at: Utc::now(),
    });
    if let Err(e) = write(barrier, &state).await {
        // Not recorded: nothing may be left that revoke cannot find.
        let _ = pg.unpublish(&publication, &login).await;
        return Err(e);
    }
    let (host, port, database) = pg.location();
    tracing::info!(
        secondary = id,
        publication,
        "activation token issued for a performance secondary"
    );
    Ok(Activation {
        data: json!({
            "cluster_id": state.cluster_id,
            "secondary_id": id,
            "primary_api_addr": primary_api_addr,
            "primary_cluster_addr": state.primary_cluster_addr,
            "database": {
                "host": host,
                "port": port,
                "dbname": database,
                "user": login,
                "password": password,
                "publication": publication,
                "slot_name": publication,
            },
        }),
    })
}

/// `sys/replication/performance/primary/revoke-secondary`: the secondary's
/// publication, login, stream and slot go at once.
pub async fn revoke_secondary(physical: &Storage, barrier: &Barrier, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::bad("missing required field \"id\""));
    }
    let mut state = read(barrier).await?;
    let Some(at) = state.secondaries.iter().position(|s| s.id == id) else {
        return Err(Error::bad(format!("no secondary with id {id:?}")));
    };
    let pg = primary_storage(physical)?;
    let secondary = state.secondaries.remove(at);
    pg.unpublish(&secondary.publication, &secondary.login)
        .await
        .map_err(storage)?;
    write(barrier, &state).await?;
    tracing::info!(secondary = id, "performance secondary revoked");
    Ok(())
}

/// `sys/replication/dr/status`: disaster recovery replication is not a
/// Warden feature.
pub fn dr_status() -> Value {
    json!({ "mode": "disabled" })
}
