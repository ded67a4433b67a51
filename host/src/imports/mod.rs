//! The host side of the WIT imports in wit/host.wit: one module per
//! interface. A component's authority is exactly its [`Grant`]: the storage
//! view of its mount and the database host it may connect to; its WASI
//! context is empty (no files, sockets, environment or arguments).

pub mod clock;
pub mod crypto;
pub mod log;
pub mod mongo;
pub mod sql;
mod sql_pool;
pub mod storage;

use crate::runtime::bindings::driver::{DatabaseDriver, warden::plugin::types};
use crate::storage::View;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What one component call may reach.
pub struct Grant {
    /// For logs: the component's catalog name.
    pub component: String,
    /// The calling mount's private key space, if it has one.
    pub storage: Option<View>,
    /// The database it may open connections to, if any.
    pub sql: Option<sql::SqlGrant>,
    /// The MongoDB servers it may open clients to, if any.
    pub mongo: Option<mongo::MongoGrant>,
}

impl Grant {
    /// No storage and no network: for pure functions such as generators.
    pub fn none(component: &str) -> Self {
        Grant {
            component: component.to_string(),
            storage: None,
            sql: None,
            mongo: None,
        }
    }
}

/// The data of one component call's store.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    pub grant: Grant,
    /// The pool this instance opened last, by URL: a reused instance opens
    /// the same URL on every call, and this skips parsing and checking it.
    last_pool: Option<(String, sql::HostPool)>,
    /// The same for the MongoDB client this instance opened last.
    last_mongo: Option<(String, mongo::MongoHandle)>,
}

impl CallState {
    pub fn new(grant: Grant, memory_limit: usize) -> Self {
        CallState {
            // Deliberately empty: no preopens, no sockets, no env, no args.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .trap_on_grow_failure(true)
                .build(),
            grant,
            last_pool: None,
            last_mongo: None,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for CallState {}

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    // The driver world imports every Warden interface; the generator world a
    // subset, so this one linker serves both.
    DatabaseDriver::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)
}

fn denied(what: &str) -> types::Error {
    types::Error::NotPermitted(format!("this component has no {what} grant"))
}
