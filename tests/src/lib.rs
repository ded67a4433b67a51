//! Harness for Warden's end-to-end tests: a real PostgreSQL
//! ([`TestPostgres`], [`Scratch`]), the real `warden` server as a process
//! ([`WardenServer`]), a small Vault HTTP client ([`Client`]) and the common
//! set-up of a database mount ([`DbEnv`]). See docs/testing.md.

pub mod bao;
pub mod bench;
pub mod client;
pub mod configured;
pub mod fixtures;
pub mod fuzz;
pub mod ha;
pub mod in_process;
pub mod mariadb;
pub mod mongo;
pub mod postgres;
pub mod redis;
pub mod schemathesis;
pub mod server;
pub mod util;

pub use client::Client;
pub use fixtures::{CREATE_ROLE, Creds, DbEnv, check_error, errors_of, eventually, keys_of};
pub use mariadb::{MyScratch, TestMariaDb};
pub use mongo::TestMongo;
pub use postgres::{Scratch, TestPostgres};
pub use redis::TestRedis;
pub use server::{ServerOptions, WardenServer, warden_bin};
