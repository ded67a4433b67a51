//! The database secrets engine (Vault's `database` mount type): connection
//! configs, roles, and dynamic credentials issued through a driver
//! component. One file per API path, as in Vault's own backend.

mod credentials;
mod cron;
mod path_cluster;
mod path_cluster_database;
mod path_config_connection;
mod path_creds_create;
mod path_roles;
mod path_rotate;
mod path_static_roles;
pub mod paths;
mod scheduler;
mod secret_creds;

use crate::error::{Error, Result};
use crate::framework::BackendDoc;
use crate::framework::Check;
use crate::framework::{LeaseTtls, SecretsEngine};
use crate::imports::Grant;
use crate::imports::mongo::{MongoClients, MongoGrant};
use crate::imports::outbound::Outbound;
use crate::imports::sql::{SqlGrant, SqlPools};
use crate::logical::Lease;
use crate::logical::Mount;
use crate::logical::{Reply, Request};
use crate::runtime::{DriverCall, PluginError, Runtime};
use crate::storage::layout;
use crate::storage::locality::LocalStorage;
use chrono::{DateTime, Utc};
use path_config_connection::DbConfig;
use std::sync::Arc;

/// Cheap to clone: the mount's rotation scheduler task holds a clone.
#[derive(Clone)]
pub struct DatabaseEngine {
    runtime: Arc<Runtime>,
    pools: Arc<SqlPools>,
    /// Static roles' rotation queue and lock (scheduler.rs).
    statics: Arc<scheduler::Statics>,
    mongo: Arc<MongoClients>,
}

impl DatabaseEngine {
    /// Local storage below the mount (Vault's database backend declares the
    /// same, `framework.WALPrefix`): the crash-recovery records of
    /// credentials being issued and of rotations in progress name what this
    /// node was doing; a secondary has its own.
    pub const LOCAL_STORAGE: LocalStorage = &[layout::engine::WAL];

    /// An engine for one mount, over the host's runtime and connection
    /// pools (MongoDB connections take the MongoDB clients).
    pub fn new(runtime: Arc<Runtime>, pools: Arc<SqlPools>, mongo: Arc<MongoClients>) -> Self {
        DatabaseEngine {
            runtime,
            pools,
            statics: Arc::default(),
            mongo,
        }
    }

    /// The scope of a connection's pools: one mount's one config.
    fn scope(mount: &Mount, name: &str) -> String {
        format!("{}/{name}", mount.uuid)
    }

    /// A driver instance for one operation on the connection `name`, allowed
    /// to reach only the database that connection names.
    async fn driver(&self, mount: &Mount, name: &str, config: &DbConfig) -> Result<DriverCall> {
        let scope = Self::scope(mount, name);
        let outbound = Outbound::for_connection(&config.connection_details);
        // An operator's sandbox quota over the mount: tighter limits, and a
        // place among its concurrent calls (429 when none is free).
        let sandbox = mount.system.sandbox(&mount.path)?.unwrap_or_default();
        // The grant key changes with everything the grant is made of, so an
        // idle instance is reused only for the very same grant (the limits
        // are added by the runtime).
        let key = format!("{scope}\0{}", outbound.key());
        let grant = Grant {
            component: config.plugin_name.clone(),
            storage: Some(mount.storage.sub(&layout::database::driver(name))),
            outbound,
            sql: Some(SqlGrant {
                pools: self.pools.clone(),
                scope: scope.clone(),
                max_open: sandbox.max_connections,
            }),
            mongo: Some(MongoGrant {
                clients: self.mongo.clone(),
                scope,
            }),
            limits: sandbox.limits,
        };
        // A plugin registered in the mount's namespace comes first.
        let plugin = self.runtime.qualify(mount.system.namespace_path(), &config.plugin_name);
        let mut call = self
            .runtime
            .driver(&plugin, &config.plugin_version, &key, grant)
            .await
            .map_err(plugin_error)?;
        if let Some(permit) = sandbox.permit {
            call.hold(permit);
        }
        Ok(call)
    }

    /// Close the pools and idle driver instances of a connection whose
    /// settings changed or went away, so the next call starts afresh.
    fn release(&self, mount: &Mount, name: &str) {
        let scope = Self::scope(mount, name);
        self.pools.close_scope(&scope);
        self.mongo.close_scope(&scope);
        self.runtime.forget_grants(&format!("{scope}\0"));
    }

    /// The connection `name` as drivers get it (a tenant database's with
    /// its cluster's address and login, see [`path_cluster_database::resolve`]).
    async fn config(&self, mount: &Mount, name: &str) -> Result<DbConfig> {
        let config = path_config_connection::load(mount, name)
            .await?
            .ok_or_else(|| Error::internal(format!("failed to find entry for connection with name: {name:?}")))?;
        path_cluster_database::resolve(mount, config).await
    }
}

/// A driver failure as the API reports it.
fn plugin_error(e: PluginError) -> Error {
    match e {
        PluginError::NotFound(_) => Error::bad(e.to_string()),
        other => Error::internal(other.to_string()),
    }
}

/// An internal error in Go's multierror text, as Vault wraps errors that a
/// backend returns (rather than an error response).
fn multierror(e: Error) -> Error {
    match e {
        Error::Internal(m) => Error::Internal(format!("1 error occurred:\n\t* {m}\n\n")),
        other => other,
    }
}

/// The engine's declarations (the route table, the OpenAPI document).
pub fn backend_doc() -> BackendDoc {
    paths::BACKEND.describe()
}

#[async_trait::async_trait]
impl SecretsEngine for DatabaseEngine {
    fn local_storage(&self) -> LocalStorage {
        Self::LOCAL_STORAGE
    }

    async fn handle(&self, mount: &Mount, req: &Request, check: &Check<'_>) -> Reply {
        paths::BACKEND.handle(self, req, &req.path, Some(mount), check).await
    }

    fn describe(&self) -> BackendDoc {
        paths::BACKEND.describe()
    }

    async fn lease_ttls(&self, mount: &Mount, lease: Lease<'_>) -> Result<LeaseTtls> {
        secret_creds::lease_ttls(mount, lease).await
    }

    async fn renew(&self, mount: &Mount, lease: Lease<'_>, expires: DateTime<Utc>) -> Result<()> {
        secret_creds::renew(self, mount, lease, expires).await
    }

    async fn revoke(&self, mount: &Mount, lease: Lease<'_>) -> Result<()> {
        secret_creds::revoke(self, mount, lease).await
    }

    async fn recover(&self, mount: &Mount) -> Result<(usize, usize)> {
        crate::engines::pending_creds::recover::<secret_creds::PendingCreds>(self, mount).await
    }

    fn start(&self, mount: Arc<Mount>) {
        scheduler::start(self.clone(), mount);
    }

    async fn unmount(&self, mount: &Mount) {
        self.statics.stop();
        self.reload(mount).await;
    }

    async fn reload(&self, mount: &Mount) {
        let prefix = format!("{}/", mount.uuid);
        self.pools.close_prefix(&prefix);
        self.mongo.close_prefix(&prefix);
        self.runtime.forget_grants(&prefix);
    }
}
