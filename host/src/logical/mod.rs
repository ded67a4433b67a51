//! The request and response a secrets engine sees, independent of HTTP
//! (Vault's `logical` package): an operation on a path with JSON data; and
//! what an engine sees of its mount and of the system ([`mount`]).

pub mod mount;

pub use mount::{Lease, LeaseStatus, Mount, Sandbox, SystemView};
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Operation {
    #[default]
    Read,
    /// POST or PUT of something that does not exist yet: the router turns
    /// an update into a create when the path's existence check says so.
    Create,
    /// POST and PUT.
    Update,
    /// PATCH.
    Patch,
    Delete,
    List,
    /// `?help=1`: the path's help instead of the operation.
    Help,
}

impl Operation {
    /// Vault's name of the operation (`logical.Operation`'s strings).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
            Operation::List => "list",
            Operation::Help => "help",
        }
    }

    /// Writes: create, update and patch.
    pub fn is_write(self) -> bool {
        matches!(self, Operation::Create | Operation::Update | Operation::Patch)
    }
}

/// A namespace (Vault Enterprise's, OpenBao's): a tenant's world of its own
/// below a path prefix. The root namespace has the empty path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// Vault's short id (`root` for the root namespace): what a token made
    /// in the namespace carries after its last '.'.
    pub id: String,
    /// With a trailing '/' ("team-a/prod/"); empty for the root namespace.
    pub path: String,
}

impl Default for Namespace {
    fn default() -> Self {
        Namespace::root()
    }
}

impl Namespace {
    pub const ROOT_ID: &str = "root";

    pub fn root() -> Namespace {
        Namespace {
            id: Namespace::ROOT_ID.into(),
            path: String::new(),
        }
    }

    pub fn is_root(&self) -> bool {
        self.path.is_empty()
    }

    /// Is `path` (a full path, from the root namespace) inside this
    /// namespace or one of its children?
    pub fn contains(&self, path: &str) -> bool {
        path.starts_with(&self.path) || format!("{path}/") == self.path
    }

    /// A path relative to this namespace, made full.
    pub fn full(&self, relative: &str) -> String {
        format!("{}{relative}", self.path)
    }

    /// A full path relative to this namespace (as it is when not below it).
    pub fn relative<'a>(&self, full: &'a str) -> &'a str {
        full.strip_prefix(self.path.as_str()).unwrap_or(full)
    }
}

/// Who makes a request, resolved once from its token.
#[derive(Clone, Default)]
pub struct Auth {
    /// The token itself (lookup-self answers with it; never logged).
    pub client_token: String,
    /// Vault's display name (`token` for the root token).
    pub display_name: String,
    pub policies: Vec<String>,
    /// No token was checked (a path served without one).
    pub anonymous: bool,
    /// The token store's name for the token (its salted hash; empty for
    /// the root token, which is kept apart): what its children and its
    /// leases point at.
    pub token_hash: String,
    pub accessor: String,
    /// This request spends the token's last use: it is revoked after it.
    pub last_use: bool,
    /// CIDR blocks the token may be used from (empty: anywhere), as an
    /// auth method's `token_bound_cidrs` set them.
    pub bound_cidrs: Vec<String>,
    /// A batch token: not stored, so it cannot create tokens, be renewed or
    /// be revoked; its leases are tracked by its parent (`token_hash` is
    /// the parent's) and end no later than it does (`expire_time`).
    pub batch: bool,
    /// When the token expires (None: never).
    pub expire_time: Option<chrono::DateTime<chrono::Utc>>,
    /// The token has a use limit: it may not create child tokens, which
    /// would escape the limit (Vault's rule).
    pub limited_uses: bool,
    /// The namespace the token was made in: its policies are that
    /// namespace's, and it reaches only paths inside it.
    pub namespace: Namespace,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("display_name", &self.display_name)
            .field("policies", &self.policies)
            .field("anonymous", &self.anonymous)
            .field("last_use", &self.last_use)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// The root token's context.
    pub fn root(token: &str) -> Auth {
        Auth {
            client_token: token.to_string(),
            display_name: "token".into(),
            policies: vec!["root".into()],
            ..Auth::default()
        }
    }

    /// Is this the root token, or a token with the root policy?
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// A request served without a token.
    pub fn anonymous() -> Auth {
        Auth {
            anonymous: true,
            ..Auth::default()
        }
    }
}

#[derive(Debug, Default)]
pub struct Request {
    pub operation: Operation,
    /// The path (below `/v1/`, from the root namespace; below the
    /// namespace once routed, and below the mount once it reaches one),
    /// without a leading '/'.
    pub path: String,
    /// The namespace the request is in (the router finds it from the
    /// path and the `X-Vault-Namespace` header).
    pub namespace: Namespace,
    /// The raw input (body, and for reads the query); the router converts
    /// it into typed fields before a handler sees it.
    pub data: Map<String, Value>,
    pub auth: Auth,
    /// The id the lease will have if this request issues a secret, chosen
    /// before the engine runs so its write-ahead record can name it.
    pub lease_id: String,
    pub request_id: String,
    /// `X-Vault-Wrap-TTL` in seconds: the response is to be wrapped in a
    /// single-use token living that long (the core's response wrapping).
    pub wrap_ttl: Option<i64>,
    /// The client's address (the connection's peer), where the request
    /// came over the network: what CIDR-bound credentials are checked
    /// against (Vault's `req.Connection.RemoteAddr`).
    pub remote_addr: Option<std::net::IpAddr>,
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
    /// A body sent as is, without the envelope (help, sys/health,
    /// sys/seal-status and the other seal endpoints, as Vault's).
    pub raw_body: Option<Value>,
    /// The HTTP status, where it is not the usual one (sys/health's codes).
    pub status: Option<u16>,
    /// `raw_body` is a string sent as text of this content type (Vault's
    /// `HTTPContentType`: sys/metrics' Prometheus format).
    pub content_type: Option<&'static str>,
    /// Vault's `auth` block: a token was issued or renewed (client_token,
    /// accessor, policies, lease_duration...).
    pub auth: Option<Value>,
    /// Vault's `wrap_info`: the response was wrapped; this is all the body
    /// carries (token, accessor, ttl, creation_time, creation_path...).
    pub wrap_info: Option<Value>,
    /// A successful login through an auth method: what the token to mint
    /// is made of. The core mints it and answers [`Response::auth`]
    /// instead (an auth method never sees or stores the token).
    pub login: Option<Login>,
}

/// What an auth method's login grants (Vault's `logical.Auth` as a
/// credential backend returns it): the core turns it into a token.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Login {
    /// As configured; the core sanitizes them and adds `default` unless
    /// `no_default_policy`.
    pub policies: Vec<String>,
    pub no_default_policy: bool,
    /// Seconds (0: the mount's default, else the system's).
    pub ttl: i64,
    /// Seconds (0: the mount's max, else the system's).
    pub max_ttl: i64,
    pub explicit_max_ttl: i64,
    pub period: i64,
    /// Uses of the token (0: unlimited).
    pub num_uses: i64,
    /// The token's metadata (`role_name` for AppRole).
    pub metadata: Map<String, Value>,
    /// Appended to the mount's name in the token's display name (may be
    /// empty: the display name is the mount's).
    pub display_name: String,
    /// CIDR blocks the token may be used from (empty: anywhere).
    pub bound_cidrs: Vec<String>,
    /// Issue a batch token (sealed, not stored) instead of a service token.
    pub batch: bool,
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

    /// A body sent without the envelope.
    pub fn raw(body: Value) -> Self {
        Response {
            raw_body: Some(body),
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
            && self.raw_body.is_none()
            && self.status.is_none()
            && self.auth.is_none()
            && self.wrap_info.is_none()
            && self.login.is_none()
    }

    /// Vault's response envelope (`logical.HTTPResponse`): request_id,
    /// the lease fields, data, wrap_info, warnings and auth, plus any
    /// top-level copies. Objects have their keys sorted, as Go writes maps.
    pub fn envelope(self, request_id: &str) -> Value {
        let (lease_id, renewable, lease_duration) = match &self.lease {
            Some(l) => (l.lease_id.clone(), l.renewable, l.lease_duration),
            None => (String::new(), false, 0),
        };
        let mut body = Map::new();
        if let Some(top) = self.top_level {
            body.extend(top.into_iter().map(|(k, v)| (k, sort_keys(v))));
        }
        body.insert("request_id".into(), Value::from(request_id));
        body.insert("lease_id".into(), Value::from(lease_id));
        body.insert("renewable".into(), Value::from(renewable));
        body.insert("lease_duration".into(), Value::from(lease_duration));
        body.insert("data".into(), self.data.map(sort_keys).unwrap_or(Value::Null));
        body.insert("wrap_info".into(), self.wrap_info.map(sort_keys).unwrap_or(Value::Null));
        body.insert(
            "warnings".into(),
            if self.warnings.is_empty() {
                Value::Null
            } else {
                Value::from(self.warnings)
            },
        );
        body.insert("auth".into(), self.auth.map(sort_keys).unwrap_or(Value::Null));
        Value::Object(body)
    }
}

/// Objects with their keys sorted, at every depth, as Go's encoding/json
/// writes Vault's maps. serde_json keeps insertion order once any crate
/// enables its `preserve_order` feature (bson, behind the mongodb crate,
/// does), so the order is made explicit here.
fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sort_keys(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// Reply of an operation: `None` means "nothing here" (404 for reads,
/// 204 for writes).
pub type Reply = crate::error::Result<Option<Response>>;
