//! Warden's declarative request framework, modelled on Vault's
//! `sdk/framework`: every path a backend serves is declared once (pattern,
//! typed fields, operations and handlers, existence check, help), and one
//! router serves them all. From the same declarations come path-help
//! (`?help=1`), the OpenAPI document (`sys/internal/specs/openapi`) and the
//! route table in docs/api.md. docs/adding-an-endpoint.md walks through
//! adding one. Also here, as in Vault's SDK: the conversion of field input
//! (`convert`), lease TTL arithmetic (`ttl`), and the contract between the
//! core and an engine with the registry of engine types (`engine`).

pub mod backend;
pub mod convert;
pub mod engine;
pub mod field;
pub mod openapi;
pub mod table;
pub mod ttl;

pub use backend::{Backend, BackendDoc, Check, Existence, Handler, NAME, Path, PathDoc, Req, Resolved, name_capture};
pub use engine::{EngineDeps, LeaseTtls, Registry, SecretsEngine};
pub use field::{Field, FieldData, FieldType, FieldValue};
