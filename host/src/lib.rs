//! Warden: a secrets server that speaks HashiCorp Vault's HTTP API and runs
//! every database driver and credential generator as a sandboxed
//! WebAssembly component. The modules follow the request path:
//! `api` (HTTP) → `node` (the seal) → `core` (mounts, tokens, leases) → `engines` (Vault
//! semantics) → `runtime` (wasmtime) → `imports` (what components may use)
//! → `storage`.

pub mod api;
pub mod audit;
pub mod bindings;
pub mod cli;
pub mod config;
pub mod core;
pub mod credential;
pub mod engines;
pub mod error;
pub mod fault;
pub mod framework;
pub mod ha;
pub mod hcl;
pub mod imports;
pub mod logical;
pub mod node;
pub mod panic_guard;
pub mod replication;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod storage;
pub mod system;
pub mod telemetry;
pub mod tls;
