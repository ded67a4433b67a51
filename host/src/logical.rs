//! The request and response a secrets engine sees, independent of HTTP
//! (Vault's `logical` package): an operation on a path with JSON data.

use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Read,
    /// POST and PUT. Vault splits create from update only for ACLs.
    Update,
    Delete,
    List,
}

#[derive(Debug)]
pub struct Request {
    pub operation: Operation,
    /// The path below the mount (or below `sys/`), without a leading '/'.
    pub path: String,
    pub data: Map<String, Value>,
    /// The calling token's display name (Vault's `token` for the root token).
    pub display_name: String,
    /// The id the lease will have if this request issues a secret, chosen
    /// before the engine runs so its write-ahead record can name it.
    pub lease_id: String,
}

/// A secret the engine hands out; the core registers a lease for it and
/// fills in the lease fields of the response.
#[derive(Debug, Clone, Default)]
pub struct Secret {
    /// What the engine needs to renew or revoke it later (never shown).
    pub internal: Value,
    /// Seconds until it expires.
    pub ttl: i64,
    pub renewable: bool,
    /// A write-ahead record (a key in the mount's storage) that rolls the
    /// secret back if the server dies before its lease is stored; the core
    /// deletes it once the lease is.
    pub wal: Option<String>,
}

/// The lease fields of a response, once registered.
#[derive(Debug, Clone)]
pub struct LeaseInfo {
    pub lease_id: String,
    pub lease_duration: i64,
    pub renewable: bool,
}

#[derive(Debug, Default)]
pub struct Response {
    pub data: Option<Value>,
    /// Set by an engine that issues a secret.
    pub secret: Option<Secret>,
    /// Set by the core once the secret's lease is registered.
    pub lease: Option<LeaseInfo>,
    pub warnings: Vec<String>,
    /// Fields that Vault also copies to the top level of the body (sys/mounts
    /// and tune read do this for compatibility with old clients).
    pub top_level: Option<Map<String, Value>>,
    /// The work was queued, not done: HTTP 202 (Vault's revoke and
    /// revoke-prefix with `sync=false`).
    pub accepted: bool,
}

impl Response {
    /// A response with a data object.
    pub fn data(data: Value) -> Self {
        Response {
            data: Some(data),
            ..Default::default()
        }
    }

    /// The answer to a LIST: `{"keys": [...]}`.
    pub fn list(keys: Vec<String>) -> Self {
        Response::data(serde_json::json!({ "keys": keys }))
    }

    /// Vault's 202 Accepted: the work is queued.
    pub fn accepted() -> Self {
        Response {
            accepted: true,
            ..Default::default()
        }
    }

    pub fn with_warning(mut self, w: impl Into<String>) -> Self {
        self.warnings.push(w.into());
        self
    }

    /// True when the HTTP layer should answer 204 No Content.
    pub fn is_empty(&self) -> bool {
        self.data.is_none()
            && self.lease.is_none()
            && self.secret.is_none()
            && self.warnings.is_empty()
            && self.top_level.is_none()
            && !self.accepted
    }
}

/// Reply of an operation: `None` means "nothing here" (404 for reads,
/// 204 for writes).
pub type Reply = crate::error::Result<Option<Response>>;
