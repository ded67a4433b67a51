//! The mount table: which secrets engine answers below which path, with its
//! TTL settings. Persisted in storage at `core/mounts`; every mount's own
//! data lives below `logical/<uuid>/`.

use crate::engines::SecretsEngine;
use crate::storage::View;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const TABLE_KEY: &str = "core/mounts";

/// What is stored for a mount.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountRecord {
    /// With a trailing '/', as Vault shows it ("db/").
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    pub uuid: String,
    pub accessor: String,
    #[serde(default)]
    pub default_lease_ttl: i64,
    #[serde(default)]
    pub max_lease_ttl: i64,
}

/// A live mount: its record, its storage view and its engine.
pub struct MountEntry {
    pub record: MountRecord,
    pub storage: View,
    pub engine: Arc<dyn SecretsEngine>,
}

impl MountEntry {
    pub fn path(&self) -> &str {
        &self.record.path
    }
}

/// Normalise a user's mount path: no leading slash, one trailing slash.
pub fn normalize_path(path: &str) -> String {
    let p = path.trim_matches('/');
    format!("{p}/")
}

/// Paths Warden keeps for itself.
pub fn is_reserved(path: &str) -> bool {
    ["sys/", "auth/", "cubbyhole/", "identity/"]
        .iter()
        .any(|r| path.starts_with(r) || r.starts_with(path))
}
