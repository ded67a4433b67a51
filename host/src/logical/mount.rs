//! What an engine sees of the mount it serves, and of the system around it
//! (Vault's `logical.BackendConfig`: a storage view and a system view). An
//! engine gets nothing else of the core: not the mount table, not the
//! expiration manager, not the password policies' storage.

use crate::error::Result;
use crate::storage::View;
use serde_json::Value;
use std::sync::Arc;

/// One mount, as its engine sees it. The core builds a new one when the
/// mount is tuned, so a request always sees the current TTL defaults; a
/// long-lived task (a rotation scheduler) keeps the one it started with,
/// whose storage and system view never change.
pub struct Mount {
    /// With its trailing '/' ("db/").
    pub path: String,
    /// Names the mount's data and its connections' scopes; never changes.
    pub uuid: String,
    /// The mount's tuned TTL defaults in seconds (0: the system's), which
    /// cap what the engine grants (Vault's `System().DefaultLeaseTTL()`
    /// and `MaxLeaseTTL()`).
    pub default_lease_ttl: i64,
    pub max_lease_ttl: i64,
    /// The mount's storage: keys relative to the mount, no other mount's
    /// keys reachable.
    pub storage: View,
    pub system: Arc<dyn SystemView>,
}

impl Mount {
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Where a lease id stands, for an engine's crash recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// A request that may issue it is in flight: its lease may still come.
    Issuing,
    /// The lease is stored.
    Stored,
    /// Neither: no lease will come for it.
    Absent,
}

/// What the core offers every engine (Vault's `logical.SystemView`).
/// Engines register leases by returning a [`super::Secret`]; the core
/// stores it.
#[async_trait::async_trait]
pub trait SystemView: Send + Sync {
    /// A password from the named password policy (`sys/policies/password`);
    /// `None` when no policy has that name.
    async fn generate_password(&self, policy: &str) -> Result<Option<String>>;

    /// Whether a lease exists or may still come. An engine's recovery
    /// calls it for the lease ids its write-ahead records name.
    async fn lease_status(&self, lease_id: &str) -> Result<LeaseStatus>;

    /// The sandbox limits of a driver call made for a request to `path`
    /// (an operator's sandbox quota), with the call's place among the
    /// concurrent calls it allows: Err (429) when they are all taken.
    fn sandbox(&self, _path: &str) -> Result<Option<Sandbox>> {
        Ok(None)
    }

    /// The path of the namespace the mount is in ("" for the root): the
    /// plugins registered there are the mount's first choice.
    fn namespace_path(&self) -> &str {
        ""
    }
}

/// What a sandbox quota grants one driver call.
#[derive(Debug, Default)]
pub struct Sandbox {
    pub limits: crate::imports::Limits,
    /// Most connections of one database connection's pool.
    pub max_connections: Option<u32>,
    /// The call's place among the quota's concurrent calls, held until the
    /// call ends.
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A lease as its engine sees it when renewing or revoking it (Vault's
/// `logical.Secret` of a renew or revoke request).
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub id: &'a str,
    /// What the engine stored with the secret ([`super::Secret::internal`]).
    pub internal: &'a Value,
}

/// Stand-ins for unit tests that need a mount but no core.
#[cfg(test)]
pub mod testing {
    use super::{LeaseStatus, SystemView};
    use crate::error::Result;

    /// A system with no password policies and no leases.
    pub struct NoSystem;

    #[async_trait::async_trait]
    impl SystemView for NoSystem {
        async fn generate_password(&self, _policy: &str) -> Result<Option<String>> {
            Ok(None)
        }

        async fn lease_status(&self, _lease_id: &str) -> Result<LeaseStatus> {
            Ok(LeaseStatus::Absent)
        }
    }
}
