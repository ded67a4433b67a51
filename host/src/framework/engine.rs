//! The contract between the core and a secrets engine (Vault's
//! `logical.Backend` and `logical.Factory`): the trait an engine
//! implements, and the registry of engine types that the server fills at
//! start-up and the core builds mounts from. Engines see only this, the
//! request and response types and their mount ([`crate::logical`]); the
//! core never names an engine type.

use super::{BackendDoc, Check};
use crate::error::Result;
use crate::imports::mongo::MongoClients;
use crate::imports::sql::SqlPools;
use crate::logical::{Lease, Mount, Reply, Request};
use crate::runtime::Runtime;
use crate::storage::locality::LocalStorage;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
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
    fn local_storage(&self) -> LocalStorage {
        &[]
    }

    /// Serve a request below the mount (its path is relative to it):
    /// engines route it through their declared paths
    /// ([`super::Backend::handle`]), which runs `check` once the operation
    /// is known.
    async fn handle(&self, mount: &Mount, req: &Request, check: &Check<'_>) -> Reply;

    /// The engine's path declarations (path-help, the OpenAPI document).
    fn describe(&self) -> BackendDoc;

    async fn lease_ttls(&self, mount: &Mount, lease: Lease<'_>) -> Result<LeaseTtls>;

    /// Extend a secret to `expires` (for example ALTER ROLE ... VALID UNTIL).
    async fn renew(&self, mount: &Mount, lease: Lease<'_>, expires: DateTime<Utc>) -> Result<()>;

    /// Destroy a secret (drop the database user). Must succeed when the
    /// secret is already gone, so retries are safe.
    async fn revoke(&self, mount: &Mount, lease: Lease<'_>) -> Result<()>;

    /// The mount is live (enabled, loaded at start-up or unseal): start
    /// background work such as a rotation scheduler.
    fn start(&self, _mount: Arc<Mount>) {}

    /// The mount is going away (disabled, or the node sealed): release
    /// connections and caches, stop background work.
    async fn unmount(&self, _mount: &Mount) {}

    /// `sys/plugins/reload/backend`: close connections and idle driver
    /// instances, so the next call starts afresh (keep background work).
    async fn reload(&self, _mount: &Mount) {}

    /// At start-up: settle what a crashed server left half done (secrets
    /// created whose lease was never stored; the mount's system view says
    /// which leases exist). Returns (rolled back, left pending) counts.
    async fn recover(&self, _mount: &Mount) -> Result<(usize, usize)> {
        Ok((0, 0))
    }
}

/// What an engine is built with: the plugin runtime its drivers run in, and
/// the host's connection pools (shared by every mount of a core, and
/// released with it).
#[derive(Clone)]
pub struct EngineDeps {
    pub runtime: Arc<Runtime>,
    pub sql_pools: Arc<SqlPools>,
    pub mongo_clients: Arc<MongoClients>,
}

/// Builds one mount's engine (Vault's `logical.Factory`).
pub type Factory = fn(&EngineDeps) -> Arc<dyn SecretsEngine>;

/// One engine type: how to build it and its declarations.
#[derive(Clone, Copy)]
pub struct EngineType {
    pub factory: Factory,
    /// The type's declarations without building an engine (the route
    /// table, `sys/plugins/catalog`).
    pub describe: fn() -> BackendDoc,
}

/// The engine types a server can mount, by name (`database`, `mongodb`).
#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<String, EngineType>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) an engine type.
    pub fn register(&mut self, name: &str, factory: Factory, describe: fn() -> BackendDoc) {
        self.types.insert(name.to_string(), EngineType { factory, describe });
    }

    pub fn get(&self, name: &str) -> Option<EngineType> {
        self.types.get(name).copied()
    }

    /// Build an engine of type `name`, or `None` for a type never registered.
    pub fn build(&self, name: &str, deps: &EngineDeps) -> Option<Arc<dyn SecretsEngine>> {
        self.get(name).map(|t| (t.factory)(deps))
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }
}

/// An engine type for unit tests of the core, which must not name the real
/// engines: it serves nothing, and keeps `wal/` local as the database
/// engine does.
#[cfg(test)]
pub mod testing {
    use super::*;
    use crate::storage::layout;

    pub struct Inert;

    #[async_trait::async_trait]
    impl SecretsEngine for Inert {
        fn local_storage(&self) -> LocalStorage {
            &[layout::engine::WAL]
        }
        async fn handle(&self, _: &Mount, _: &Request, _: &Check<'_>) -> Reply {
            Ok(None)
        }
        fn describe(&self) -> BackendDoc {
            doc()
        }
        async fn lease_ttls(&self, _: &Mount, _: Lease<'_>) -> Result<LeaseTtls> {
            Ok(LeaseTtls::default())
        }
        async fn renew(&self, _: &Mount, _: Lease<'_>, _: DateTime<Utc>) -> Result<()> {
            Ok(())
        }
        async fn revoke(&self, _: &Mount, _: Lease<'_>) -> Result<()> {
            Ok(())
        }
    }

    pub fn doc() -> BackendDoc {
        BackendDoc {
            kind: "inert",
            help: "",
            paths: Vec::new(),
        }
    }

    /// A registry holding the type `inert` only.
    pub fn registry() -> Arc<Registry> {
        let mut r = Registry::new();
        r.register("inert", |_| Arc::new(Inert), doc);
        Arc::new(r)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::registry;
    use super::*;

    #[test]
    fn the_registry_builds_only_what_was_registered() {
        let r = registry();
        let deps = EngineDeps {
            runtime: Runtime::new(std::time::Duration::from_secs(1)).expect("runtime"),
            sql_pools: Arc::default(),
            mongo_clients: Arc::default(),
        };
        assert!(r.build("inert", &deps).is_some());
        assert!(r.build("database", &deps).is_none());
        assert_eq!(r.names().collect::<Vec<_>>(), ["inert"]);
        assert_eq!((r.get("inert").expect("registered").describe)().kind, "inert");
    }
}
