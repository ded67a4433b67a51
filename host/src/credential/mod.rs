//! Auth methods (Vault's `builtin/credential`): backends mounted below
//! `auth/<path>/` whose `login` turns a machine's or a person's credentials
//! into a token. They sit beside the secrets engines (`engines/`)
//! rather than among them because the core treats them differently: they
//! live in their own mount table (`sys/auth`, never `sys/mounts`), their
//! `login` path is served without a token, and what a login returns is not
//! a lease but a [`crate::logical::Login`] the core mints a token from. Like
//! an engine, an auth method sees only the framework, its mount's storage
//! view and the request: never the core, the token store or another mount.
//!
//! Built in: `approle` ([`approle`]).

pub mod approle;
pub mod cidr;

use crate::framework::{BackendDoc, Check};
use crate::logical::{Mount, Reply, Request};
use crate::storage::locality::LocalStorage;
use std::sync::Arc;

/// What the core needs of an auth method mounted at a path.
#[async_trait::async_trait]
pub trait AuthMethod: Send + Sync + 'static {
    /// Prefixes below the mount kept on this node only (never replicated).
    fn local_storage(&self) -> LocalStorage {
        &[]
    }

    /// Serve a request below the mount (its path relative to it), running
    /// `check` (the ACL) once the operation is known.
    async fn handle(&self, mount: &Mount, req: &Request, check: &Check<'_>) -> Reply;

    /// The path declarations (path-help, OpenAPI, the route table).
    fn describe(&self) -> BackendDoc;

    /// Is `path` (below the mount) served without a token? (`login`.)
    fn is_unauthenticated(&self, path: &str) -> bool;
}

/// The auth method types this server can enable (`sys/auth`'s `type`).
pub const TYPES: &[&str] = &["approle"];

/// A new instance of the auth method `kind` for one mount; `None` for a
/// type this server does not have.
pub fn build(kind: &str) -> Option<Arc<dyn AuthMethod>> {
    match kind {
        "approle" => Some(Arc::new(approle::AppRole::default())),
        _ => None,
    }
}
