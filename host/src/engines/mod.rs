//! Secrets engines: the Vault semantics of each mount type. An engine
//! answers requests below its mount and renews or revokes the leases it
//! issued; drivers (Wasm components) hold the database specifics. Engines
//! see only the engine-facing API ([`crate::framework::engine`],
//! [`crate::logical`]), never the core; the server registers them
//! ([`register_builtins`]) and the core builds mounts from that registry.

pub mod database;
pub mod mongodb;
pub mod pending_creds;

use crate::framework::Registry;
use std::sync::Arc;

/// Register the engine types built into the binary.
pub fn register_builtins(registry: &mut Registry) {
    registry.register(
        "database",
        |deps| {
            Arc::new(database::DatabaseEngine::new(
                deps.runtime.clone(),
                deps.sql_pools.clone(),
                deps.mongo_clients.clone(),
            ))
        },
        database::backend_doc,
    );
    registry.register(
        "mongodb",
        |deps| {
            Arc::new(mongodb::MongoDbEngine::new(
                deps.runtime.clone(),
                deps.mongo_clients.clone(),
            ))
        },
        mongodb::backend_doc,
    );
}

/// A registry of the built-in engine types.
pub fn builtins() -> Registry {
    let mut registry = Registry::new();
    register_builtins(&mut registry);
    registry
}
