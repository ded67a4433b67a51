//! Where everything Warden keeps lives in storage: every key and key prefix,
//! in one place, so that the key space can be read as a whole (what is
//! local, what a mount can reach, what a migration must move) and no two
//! owners pick overlapping names. Owners (node, core, engines) use these
//! constants instead of string literals; which prefixes are *local* is not
//! decided here but declared by each owner (see [`super::locality`]).
//!
//! ```text
//! core/seal-config            node: shares and threshold (outside the barrier)
//! core/root-key               node: root key sealed by the unseal key or the static seal (outside the barrier)
//! core/recovery-key           node: a static seal's recovery key, sealed by it (outside the barrier)
//! core/cluster/info           node: the cluster's id and TLS identity
//! core/replication/state      replication: this cluster's mode (primary or not)
//! core/keyring                node: data keys sealed by the root key (outside the barrier)
//! core/mounts                 core: the single mount table of earlier versions (migrated)
//! core/mounts/<uuid>          core: one record per mount
//! core/auth/<uuid>            core: one record per auth method mount
//! core/audit/<uuid>           core: one record per audit device (with its salt)
//! core/local-audit/<uuid>     core: the same for local audit devices
//! core/plugin-catalog/<type>/<name>   core: registered plugins, every version of one name
//! sys/expire/id/<lease id>    core: leases
//! sys/expire/token/<hash>/<lease id>   core: leases by the token that obtained them
//! sys/token/root              core: the root token's hash
//! sys/token/salt              core: the token store's HMAC key
//! sys/token/id/<hash>         core: tokens (salted hashes, never the token)
//! sys/token/accessor/<hash>   core: accessor -> token hash
//! sys/token/parent/<p>/<c>    core: the parent/child tree
//! sys/token/wrap/<hash>       core: the response a wrapping token wraps
//! sys/token-role/<name>       core: token roles
//! sys/password_policy/<name>  core: password policies
//! sys/quotas/rate-limit/<n>   core: rate-limit quotas (also lease-count/<n>, config)
//! sys/policy/<name>           core: ACL policies (replicated, as Vault's)
//! core/namespaces/<id>        core: one record per namespace
//! namespaces/<id>/sys/policy/<name>   core: a namespace's ACL policies (also its
//!                             sys/password_policy/ and sys/token-role/)
//! sys/wal/<index>             storage: the log of replicated writes
//! logical/<uuid>/...          one mount's own keys (its storage view), below:
//!   wal/creds/<id>            database, mongodb: credentials being issued
//!   wal/static/<role>         database: a static role's rotation in progress
//!   wal/root/<connection>     database: a root rotation in progress
//!   config/<name>             database: connection configurations
//!   role/<name>               database, mongodb: dynamic roles
//!   static-role/<name>        database: static roles
//!   driver/<connection>/...   database: the driver component's own key space
//!   config/connection         mongodb: the connection
//!   config/lease              mongodb: lease settings
//! auth/<uuid>/...             one auth method mount's own keys, below:
//!   salt                      approle: the HMAC key of role-id and accessor indexes
//!   role/<name>               approle: roles
//!   role_id/<hmac>            approle: role-id -> role name
//!   secret_id/<hmac>/<hmac>   approle: secret IDs (by role and secret HMAC)
//!   accessor/<hmac>           approle: secret-ID accessor -> secret HMAC
//!   secret_id_local/, accessor_local/   the same, for local_secret_ids roles (local)
//! ```

// The node's seal keys, physical keys written outside the barrier.

/// Share count and threshold: written last by init, so its presence means
/// "initialised".
pub const SEAL_CONFIG: &str = "core/seal-config";
/// The root key, encrypted under the unseal key (a static seal: under
/// the seal's key, with the key's id).
pub const ROOT_KEY: &str = "core/root-key";
/// A static seal's recovery key, encrypted under the seal's key (absent
/// when init made no recovery keys).
pub const RECOVERY_KEY: &str = "core/recovery-key";
/// The keyring of data keys, encrypted under the root key.
pub const KEYRING: &str = "core/keyring";

/// The cluster's id and TLS identity (request forwarding between HA
/// nodes), under the barrier; made by the first node to start a core.
pub const CLUSTER_INFO: &str = "core/cluster/info";
/// Performance replication's state of this cluster (mode, replication
/// set id), under the barrier; local.
pub const REPLICATION: &str = "core/replication/";
pub const REPLICATION_STATE: &str = "core/replication/state";

// The core's keys.

/// The whole mount table in one value, as earlier versions wrote it.
pub const MOUNT_TABLE_LEGACY: &str = "core/mounts";
/// One record per mount, named by the mount's uuid.
pub const MOUNTS: &str = "core/mounts/";
/// One record per auth method mount (Vault's `core/auth` table), named by
/// the mount's uuid; apart from the secrets engines' so `sys/mounts` never
/// lists them.
pub const AUTH_MOUNTS: &str = "core/auth/";
/// Audit devices, one record (with the device's salt) per device:
/// replicated, as Vault's `core/audit` table.
pub const AUDIT: &str = "core/audit/";
/// Audit devices enabled with `local=true` (Vault's `core/local-audit`).
pub const LOCAL_AUDIT: &str = "core/local-audit/";
/// The plugin catalog: one record per plugin type and name, holding every
/// registered version (replicated, as Vault's `core/plugin-catalog`).
pub const PLUGIN_CATALOG: &str = "core/plugin-catalog/";
/// Namespaces, one record per namespace named by its id (replicated).
pub const NAMESPACES: &str = "core/namespaces/";
/// What a namespace other than the root keeps of the core's own (its ACL
/// policies, password policies, token roles) lives below
/// `namespaces/<id>/`, with the root namespace's layout inside.
pub const NAMESPACE_DATA: &str = "namespaces/";

/// The prefix of a namespace's own keys: empty for the root namespace,
/// whose keys are where they always were.
pub fn namespace(ns: &crate::logical::Namespace) -> String {
    match ns.is_root() {
        true => String::new(),
        false => format!("{NAMESPACE_DATA}{}/", ns.id),
    }
}

/// Resource quotas: `rate-limit/<name>`, `lease-count/<name>`, `config`.
pub const QUOTAS: &str = "sys/quotas/";
/// The expiration manager's space.
pub const EXPIRE: &str = "sys/expire/";
/// Leases by lease id.
pub const LEASES: &str = "sys/expire/id/";
/// The token store.
pub const TOKENS: &str = "sys/token/";
/// The root token's hash.
pub const ROOT_TOKEN: &str = "sys/token/root";
/// Token roles by name (replicated, unlike the tokens themselves).
pub const TOKEN_ROLES: &str = "sys/token-role/";
/// Password policies by name.
pub const PASSWORD_POLICIES: &str = "sys/password_policy/";
/// ACL policies by name (Vault's `sys/policy/<name>`, a `PolicyEntry`).
/// Replicated: every node enforces the same policies.
pub const ACL_POLICIES: &str = "sys/policy/";

// The storage layer's own keys.

/// The write-ahead log of replicated writes, `sys/wal/<index>`.
pub const LOG: &str = "sys/wal/";

/// Every mount's keys live below `logical/<uuid>/`.
pub const LOGICAL: &str = "logical/";

/// The prefix of one mount's keys (what its storage view is confined to).
pub fn mount(uuid: &str) -> String {
    format!("{LOGICAL}{uuid}/")
}

/// Every auth method mount's keys live below `auth/<uuid>/` (Vault's
/// credential barrier view).
pub const AUTH_LOGICAL: &str = "auth/";

/// The prefix of one auth method mount's keys.
pub fn auth_mount(uuid: &str) -> String {
    format!("{AUTH_LOGICAL}{uuid}/")
}

/// The AppRole auth method's keys, relative to its mount.
pub mod approle {
    /// The mount's HMAC key for role-id and accessor indexes.
    pub const SALT: &str = "salt";
    /// Roles by (lower-cased) name.
    pub const ROLE: &str = "role/";
    /// role-id (HMAC) -> role name.
    pub const ROLE_ID: &str = "role_id/";
    /// Secret IDs: `<role name HMAC>/<secret ID HMAC>`.
    pub const SECRET_ID: &str = "secret_id/";
    /// Secret-ID accessor (HMAC) -> the secret ID's HMAC.
    pub const ACCESSOR: &str = "accessor/";
    /// The same two for roles with `local_secret_ids` (declared local).
    pub const SECRET_ID_LOCAL: &str = "secret_id_local/";
    pub const ACCESSOR_LOCAL: &str = "accessor_local/";
}

/// Keys below a mount, relative to its storage view, shared by the engines
/// that issue credentials.
pub mod engine {
    /// Crash-recovery records: what a node was doing when it stopped. An
    /// engine declares this prefix local.
    pub const WAL: &str = "wal/";
    /// Records of credentials being issued (see `engines::pending_creds`).
    pub const PENDING_CREDS: &str = "wal/creds/";
    /// Dynamic roles by name.
    pub const ROLE: &str = "role/";
}

/// The database engine's keys, relative to its mount.
pub mod database {
    /// Connection configurations by name.
    pub const CONFIG: &str = "config/";
    /// Static roles by name.
    pub const STATIC_ROLE: &str = "static-role/";
    /// A static role's password rotation in progress, by role.
    pub const STATIC_WAL: &str = "wal/static/";
    /// A root credential rotation in progress, by connection.
    pub const ROOT_WAL: &str = "wal/root/";
    /// Each connection's driver component gets its own key space here.
    pub const DRIVER: &str = "driver/";
    /// Registered clusters by name (the cluster registry).
    pub const CLUSTER: &str = "cluster/";
    /// A cluster registration in progress, by cluster.
    pub const CLUSTER_WAL: &str = "wal/cluster/";
    /// Tenant databases of a cluster, by cluster and database.
    pub const CLUSTER_DB: &str = "cluster-db/";

    /// The key space of the driver behind connection `name`.
    pub fn driver(name: &str) -> String {
        format!("{DRIVER}{name}/")
    }
}

/// The legacy MongoDB engine's keys, relative to its mount.
pub mod mongodb {
    /// The connection settings.
    pub const CONNECTION: &str = "config/connection";
    /// The lease settings.
    pub const LEASE: &str = "config/lease";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prefixes end in '/', so that a prefix never matches a sibling whose
    /// name merely starts the same ("sys/tokens" is not below "sys/token/").
    #[test]
    fn prefixes_end_in_a_separator() {
        for p in [
            MOUNTS,
            AUTH_MOUNTS,
            AUTH_LOGICAL,
            approle::ROLE,
            approle::ROLE_ID,
            approle::SECRET_ID,
            approle::ACCESSOR,
            approle::SECRET_ID_LOCAL,
            approle::ACCESSOR_LOCAL,
            AUDIT,
            LOCAL_AUDIT,
            PLUGIN_CATALOG,
            EXPIRE,
            LEASES,
            TOKENS,
            TOKEN_ROLES,
            PASSWORD_POLICIES,
            ACL_POLICIES,
            LOG,
            LOGICAL,
            engine::WAL,
            engine::PENDING_CREDS,
            engine::ROLE,
            database::CONFIG,
            database::STATIC_ROLE,
            database::STATIC_WAL,
            database::ROOT_WAL,
            database::DRIVER,
        ] {
            assert!(p.ends_with('/'), "{p}");
        }
        assert_eq!(mount("u1"), "logical/u1/");
        assert_eq!(auth_mount("u1"), "auth/u1/");
        assert!(
            !AUTH_MOUNTS.starts_with(MOUNTS),
            "sys/mounts never loads an auth method"
        );
        assert_eq!(database::driver("pg"), "driver/pg/");
        assert!(LEASES.starts_with(EXPIRE) && ROOT_TOKEN.starts_with(TOKENS));
        assert!(engine::PENDING_CREDS.starts_with(engine::WAL));
        assert!(database::STATIC_WAL.starts_with(engine::WAL) && database::ROOT_WAL.starts_with(engine::WAL));
    }
}
