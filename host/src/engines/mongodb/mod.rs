//! The legacy MongoDB secrets engine (Vault's `mongodb` mount type, before
//! the database engine took over): `config/connection`, `config/lease`,
//! `roles/:name` and `creds/:name`, with the API of Vault's documentation.
//!
//! Users are created and dropped through the same `mongodb-database-plugin`
//! component as the database engine uses, not by the host directly: so user
//! creation stays sandboxed, there is one implementation of createUser and
//! dropUser (its redaction of passwords, its handling of a user already
//! gone), and the host's MongoDB clients, timeouts and per-connection grant
//! apply alike. The engine passes the component a configuration holding the
//! stored URL as is, a creation statement built from the role
//! (`{"db": ..., "roles": [...]}`) and Vault's legacy username form
//! (`vault-<display name>-<uuid>`) as the username template.
//!
//! Leases are named by the core after the request path:
//! `<mount>/creds/<role>/<random id>`. Renewing extends a lease within
//! `lease_max` (MongoDB users have no expiry to move); revoking or expiring
//! one drops the user.

mod config;
mod creds;
mod roles;

use crate::core::catalog::MONGODB_PLUGIN;
use crate::core::expiration::{Expiration, LeaseEntry};
use crate::core::mounts::MountEntry;
use crate::engines::{LeaseTtls, SecretsEngine};
use crate::error::{Error, Result};
use crate::imports::Grant;
use crate::imports::mongo::{MongoClients, MongoGrant};
use crate::logical::{Operation, Reply, Request};
use crate::runtime::{DriverCall, PluginError, Runtime};
use crate::storage::layout;
use crate::storage::locality::LocalStorage;
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub struct MongoDbEngine {
    runtime: Arc<Runtime>,
    clients: Arc<MongoClients>,
}

impl MongoDbEngine {
    /// Local storage below the mount: the records of credentials being
    /// issued (this node's crash recovery).
    pub const LOCAL_STORAGE: LocalStorage = &[layout::engine::WAL];

    pub fn new(runtime: Arc<Runtime>, clients: Arc<MongoClients>) -> Self {
        MongoDbEngine { runtime, clients }
    }

    /// The scope of the mount's MongoDB clients: its one connection.
    fn scope(mount: &MountEntry) -> String {
        format!("{}/connection", mount.record.uuid)
    }

    /// A driver instance allowed to reach only the hosts `uri` names.
    async fn driver(&self, mount: &MountEntry, uri: &str) -> Result<DriverCall> {
        let grant = Grant {
            component: MONGODB_PLUGIN.to_string(),
            storage: None,
            sql: None,
            mongo: MongoGrant::for_template(self.clients.clone(), Self::scope(mount), uri),
        };
        let key = format!(
            "{}\0{}",
            Self::scope(mount),
            grant.mongo.as_ref().map(MongoGrant::key).unwrap_or_default()
        );
        self.runtime
            .driver(MONGODB_PLUGIN, &key, grant)
            .await
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// Drop the clients and idle instances of the mount's connection.
    fn release(&self, mount: &MountEntry) {
        let scope = Self::scope(mount);
        self.clients.close_scope(&scope);
        self.runtime.forget_grants(&format!("{scope}\0"));
    }
}

/// The component's configuration for a stored URL.
fn driver_config(uri: &str) -> String {
    serde_json::json!({ "connection_url": uri }).to_string()
}

/// A driver failure as the API reports it: input the driver or the server
/// refused is the caller's to fix (400); anything else is the server's (500).
fn plugin_error(e: PluginError) -> Error {
    match e {
        PluginError::Rejected(m) => Error::bad(m),
        PluginError::NotFound(_) => Error::bad(e.to_string()),
        other => Error::internal(other.to_string()),
    }
}

#[async_trait::async_trait]
impl SecretsEngine for MongoDbEngine {
    fn local_storage(&self) -> LocalStorage {
        Self::LOCAL_STORAGE
    }

    async fn handle(&self, mount: &MountEntry, req: &Request) -> Reply {
        let path = req.path.trim_end_matches('/');
        let op = req.operation;
        match path.split_once('/') {
            None if path == "roles" && op == Operation::List => roles::list(mount).await,
            Some(("config", "connection")) => config::connection(self, mount, req).await,
            Some(("config", "lease")) => config::lease(mount, req).await,
            Some(("roles", name)) => roles::handle(mount, name, req).await,
            Some(("creds", name)) => match op {
                Operation::Read => creds::read(self, mount, name, req).await,
                _ => Err(Error::UnsupportedOperation),
            },
            None if path == "roles" || path == "creds" => Err(Error::UnsupportedOperation),
            _ => Err(Error::UnsupportedPath),
        }
    }

    async fn lease_ttls(&self, mount: &MountEntry, _lease: &LeaseEntry) -> Result<LeaseTtls> {
        let lease = config::load_lease(mount).await?.unwrap_or_default();
        Ok(LeaseTtls {
            default_ttl: lease.ttl,
            max_ttl: lease.max_ttl,
        })
    }

    /// MongoDB users do not expire: the new expiry is the lease's alone.
    async fn renew(&self, _mount: &MountEntry, _lease: &LeaseEntry, _expires: DateTime<Utc>) -> Result<()> {
        Ok(())
    }

    async fn revoke(&self, mount: &MountEntry, lease: &LeaseEntry) -> Result<()> {
        creds::revoke(self, mount, lease).await
    }

    async fn unmount(&self, mount: &MountEntry) {
        self.release(mount);
    }

    async fn recover(&self, mount: &MountEntry, expiration: &Expiration) -> Result<(usize, usize)> {
        crate::engines::pending_creds::recover::<creds::PendingUser>(self, mount, expiration).await
    }
}
