//! The host side of the WIT imports in wit/host.wit (bindings in
//! crate::bindings): one module per interface, each with its own
//! per-instance state, its grant check and its `add_to_linker`. A
//! component's authority is exactly its [`Grant`]: the storage view of its
//! mount and the outbound allowlist (outbound.rs) that every network import
//! (sql, mongo, tcp) asks before it connects; its WASI context is empty (no
//! files, sockets, environment or arguments). Adding a capability is one new
//! module here, its state in [`CallState`] and its line in [`add_to_linker`].

pub mod clock;
pub mod crypto;
pub mod log;
pub mod mongo;
pub mod outbound;
pub mod sql;
mod sql_pool;
pub mod storage;
pub mod tcp;

use crate::bindings::driver::warden::plugin::types;
use crate::storage::View;
use outbound::Outbound;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What one component call may reach.
pub struct Grant {
    /// For logs: the component's catalog name.
    pub component: String,
    /// The calling mount's private key space, if it has one.
    pub storage: Option<View>,
    /// The hosts and ports it may connect to, through any network import.
    pub outbound: Outbound,
    /// The host's SQL pools for this connection, if it may use SQL.
    pub sql: Option<sql::SqlGrant>,
    /// The host's MongoDB clients for this connection, if it may use MongoDB.
    pub mongo: Option<mongo::MongoGrant>,
    /// Tighter sandbox limits than the runtime's (an operator's sandbox
    /// quota over the calling mount).
    pub limits: Limits,
}

/// Per-grant sandbox limits; the runtime's own limits still cap them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory one instance may grow to (None: the runtime's).
    pub memory: Option<usize>,
    /// Deadline of one call (None: the runtime's).
    pub timeout: Option<std::time::Duration>,
}

impl Limits {
    /// For grant keys: instances made under other limits are not reused.
    pub fn key(&self) -> String {
        match (self.memory, self.timeout) {
            (None, None) => String::new(),
            (m, t) => format!("m{}t{}", m.unwrap_or(0), t.map_or(0, |t| t.as_millis())),
        }
    }
}

impl Grant {
    /// No storage and no network: for pure functions such as generators.
    pub fn none(component: &str) -> Self {
        Grant {
            component: component.to_string(),
            storage: None,
            outbound: Outbound::default(),
            sql: None,
            mongo: None,
            limits: Limits::default(),
        }
    }
}

/// The data of one component instance's store: each import's own state.
pub struct CallState {
    wasi: WasiCtx,
    wasi_table: ResourceTable,
    pub limits: StoreLimits,
    pub component: String,
    storage: storage::StorageState,
    sql: sql::SqlState,
    mongo: mongo::MongoState,
    tcp: tcp::TcpState,
    log: log::LogState,
    plain: Plain,
}

/// The state of the imports that need none (types, crypto, clock).
pub struct Plain;

impl CallState {
    pub fn new(grant: Grant, memory_limit: usize) -> Self {
        let outbound = Arc::new(grant.outbound);
        CallState {
            // Deliberately empty: no preopens, no sockets, no env, no args.
            wasi: WasiCtx::builder().build(),
            wasi_table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .trap_on_grow_failure(true)
                .build(),
            component: grant.component.clone(),
            storage: storage::StorageState::new(grant.storage),
            sql: sql::SqlState::new(grant.sql, outbound.clone()),
            mongo: mongo::MongoState::new(grant.mongo, outbound.clone()),
            tcp: tcp::TcpState::new(outbound),
            log: log::LogState::new(grant.component),
            plain: Plain,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.wasi_table,
        }
    }
}

impl types::Host for Plain {}

/// Every Warden import. The driver world imports them all, the generator
/// world a subset, so this one linker serves both.
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    types::add_to_linker::<CallState, HasSelf<Plain>>(linker, |s| &mut s.plain)?;
    storage::add_to_linker(linker)?;
    sql::add_to_linker(linker)?;
    mongo::add_to_linker(linker)?;
    tcp::add_to_linker(linker)?;
    crypto::add_to_linker(linker)?;
    clock::add_to_linker(linker)?;
    log::add_to_linker(linker)
}

fn denied(what: &str) -> types::Error {
    types::Error::NotPermitted(format!("this component has no {what} grant"))
}
