//! Secrets engines: the Vault semantics of each mount type. An engine
//! answers requests below its mount and renews or revokes the leases it
//! issued; drivers (Wasm components) hold the database specifics.

pub mod database;
pub mod mongodb;
pub mod pending_creds;

use crate::core::Check;
use crate::core::expiration::{Expiration, LeaseEntry};
use crate::core::mounts::MountEntry;
use crate::error::Result;
use crate::framework::BackendDoc;
use crate::logical::{Reply, Request};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// TTL settings that govern renewing a lease, in seconds (0: the mount's).
#[derive(Debug, Clone, Copy, Default)]
pub struct LeaseTtls {
    pub default_ttl: i64,
    pub max_ttl: i64,
}

#[async_trait::async_trait]
pub trait SecretsEngine: Send + Sync + 'static {
    /// The engine type's local storage, prefixes relative to its mount
    /// (Vault's `PathsSpecial.LocalStorage`): kept on this node, never
    /// replicated. Each engine declares it as a `LOCAL_STORAGE` constant;
    /// the core registers it for every mount of the type.
    fn local_storage(&self) -> crate::storage::locality::LocalStorage {
        &[]
    }

    /// Serve a request below the mount (its path is relative to it):
    /// engines route it through their declared paths
    /// ([`crate::framework::Backend::handle`]), which runs `check` once the
    /// operation is known.
    async fn handle(&self, mount: &MountEntry, req: &Request, check: &Check) -> Reply;

    /// The engine's path declarations (path-help, the OpenAPI document).
    fn describe(&self) -> BackendDoc;

    async fn lease_ttls(&self, mount: &MountEntry, lease: &LeaseEntry) -> Result<LeaseTtls>;

    /// Extend a secret to `expires` (for example ALTER ROLE ... VALID UNTIL).
    async fn renew(&self, mount: &MountEntry, lease: &LeaseEntry, expires: DateTime<Utc>) -> Result<()>;

    /// Destroy a secret (drop the database user). Must succeed when the
    /// secret is already gone, so retries are safe.
    async fn revoke(&self, mount: &MountEntry, lease: &LeaseEntry) -> Result<()>;

    /// The mount is live (enabled, loaded at start-up or unseal): start
    /// background work such as a rotation scheduler.
    fn start(&self, _mount: Arc<MountEntry>) {}

    /// The mount is going away (disabled, or the node sealed): release
    /// connections and caches, stop background work.
    async fn unmount(&self, _mount: &MountEntry) {}

    /// At start-up: settle what a crashed server left half done (secrets
    /// created whose lease was never stored). Returns (rolled back, left
    /// pending) counts.
    async fn recover(&self, _mount: &MountEntry, _expiration: &Expiration) -> Result<(usize, usize)> {
        Ok((0, 0))
    }
}
