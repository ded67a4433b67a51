//! The auth method table (Vault's `core/auth`): which auth method answers
//! below which `auth/<path>/`, kept apart from the secrets engines' table
//! so `sys/mounts` never lists an auth method and `sys/auth` never lists
//! an engine. Records are [`MountRecord`]s, one key per mount
//! (`core/auth/<uuid>`) as the engines' are; an auth mount's own data lives
//! below `auth/<uuid>/`. The built-in `token/` method is not in the table:
//! it is always there (`sys/auth` lists it) and cannot be disabled.
//!
//! This is also where a login becomes a token: an auth method answers a
//! successful login with a [`Login`], and [`Core::handle_auth`] mints an
//! orphan service token from it with the mount's TTL limits (Vault's
//! `handleLoginRequest`). Disabling a method revokes every token issued
//! through it, then deletes its data.

use super::Core;
use super::mounts::{MountRecord, Mounted};
use super::token::{self, TokenSpec};
use crate::credential::AuthMethod;
use crate::error::{Error, Result};
use crate::framework::{Check, ttl};
use crate::logical::{Login, Mount, Namespace, Reply, Request, SystemView};
use crate::storage::{Storage, View, layout};
use std::sync::Arc;

/// One record per auth mount below this prefix, named by its uuid.
pub const ENTRY_PREFIX: &str = layout::AUTH_MOUNTS;

/// A live auth mount: its record (`path` relative to `auth/`, as Vault's
/// auth table keeps it: "approle/"), what its method sees of it, and the
/// method.
pub struct AuthEntry {
    pub record: MountRecord,
    pub view: Arc<Mount>,
    pub method: Arc<dyn AuthMethod>,
}

impl Mounted for AuthEntry {
    fn mount_path(&self) -> &str {
        &self.record.path
    }
}

impl AuthEntry {
    fn new(record: MountRecord, storage: View, system: Arc<dyn SystemView>, method: Arc<dyn AuthMethod>) -> Self {
        let view = Arc::new(Mount {
            path: format!("auth/{}", record.path),
            uuid: record.uuid.clone(),
            default_lease_ttl: record.default_lease_ttl,
            max_lease_ttl: record.max_lease_ttl,
            storage,
            system,
        });
        AuthEntry { record, view, method }
    }

    pub fn path(&self) -> &str {
        &self.record.path
    }
}

/// Every stored auth mount record.
pub async fn load(storage: &Storage) -> crate::storage::Result<Vec<MountRecord>> {
    super::mounts::load_records(storage, ENTRY_PREFIX, "auth mount").await
}

fn entry_key(uuid: &str) -> String {
    format!("{ENTRY_PREFIX}{uuid}")
}

async fn store(storage: &Storage, record: &MountRecord) -> crate::storage::Result<()> {
    View::new(storage.clone(), "")
        .put_json(&entry_key(&record.uuid), record)
        .await
}

/// The token's display name: the mount path with '/' made '-' (Vault's
/// `approle`, or `approle-<name>` when the method names the login).
fn display_name(mount_path: &str, name: &str) -> String {
    let mount = mount_path.replace('/', "-");
    let mount = mount.trim_end_matches('-');
    match name {
        "" => mount.to_string(),
        n => format!("{mount}-{n}"),
    }
}

/// The TTL a login's token gets (Vault's `CalculateTTL` for logins): a
/// periodic token its period; otherwise the method's TTL (else the
/// mount's default) capped by the method's max (within the mount's max);
/// `explicit_max_ttl` caps either.
fn login_ttl(login: &Login, record: &MountRecord) -> i64 {
    let mount_max = if record.max_lease_ttl > 0 {
        record.max_lease_ttl
    } else {
        ttl::system_max_ttl()
    };
    let mount_default = if record.default_lease_ttl > 0 {
        record.default_lease_ttl
    } else {
        ttl::system_default_ttl()
    };
    let mut granted = if login.period > 0 {
        login.period
    } else {
        let max = if login.max_ttl > 0 {
            login.max_ttl.min(mount_max)
        } else {
            mount_max
        };
        let want = if login.ttl > 0 { login.ttl } else { mount_default };
        want.min(max)
    };
    if login.explicit_max_ttl > 0 && granted > login.explicit_max_ttl {
        granted = login.explicit_max_ttl;
    }
    granted
}

impl Core {
    /// Every auth mount, sorted by path.
    pub fn auth_mounts(&self) -> Vec<Arc<AuthEntry>> {
        self.auth_mounts.read().unwrap_or_else(|p| p.into_inner()).all()
    }

    /// The auth mount serving `path` (below `auth/`).
    pub fn auth_mount_for(&self, path: &str) -> Option<Arc<AuthEntry>> {
        self.auth_mounts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .longest_match(path)
    }

    /// The auth mount at exactly `path` ("approle/").
    pub fn auth_mount_at(&self, path: &str) -> Option<Arc<AuthEntry>> {
        self.auth_mounts.read().unwrap_or_else(|p| p.into_inner()).get(path)
    }

    /// Is the request path (below the namespace `ns`) an auth method's
    /// path served without a token (a `login`)? A namespace's auth methods
    /// are known by their path below `auth/` with the namespace's path in
    /// front ("team-a/approle/").
    pub fn is_login_path(&self, ns: &Namespace, path: &str) -> bool {
        let Some(rest) = path.strip_prefix("auth/") else {
            return false;
        };
        if rest.starts_with("token/") {
            return false;
        }
        let rest = ns.full(rest);
        self.auth_mount_for(&rest).is_some_and(|m| {
            let below = rest.get(m.path().len()..).unwrap_or_default();
            m.method.is_unauthenticated(below)
        })
    }

    fn build_auth(&self, record: MountRecord) -> Result<AuthEntry> {
        let method = crate::credential::build(&record.kind)
            .ok_or_else(|| Error::bad(format!("plugin not found in the catalog: {}", record.kind)))?;
        // Before the mount can write anything.
        self.locality.register_mount(&record.uuid, method.local_storage());
        let storage = View::new(self.storage.clone(), layout::auth_mount(&record.uuid));
        Ok(AuthEntry::new(record, storage, self.system.clone(), method))
    }

    fn insert_auth(&self, entry: AuthEntry) -> Arc<AuthEntry> {
        let entry = Arc::new(entry);
        self.auth_mounts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entry.clone());
        entry
    }

    /// Load the stored auth mounts (at start-up).
    pub(super) async fn load_auth_mounts(&self) -> Result<()> {
        for record in load(&self.storage).await? {
            let entry = self.build_auth(record)?;
            self.insert_auth(entry);
        }
        Ok(())
    }

    /// Enable an auth method at `record.path` (relative to `auth/`). Its
    /// record is stored before it goes live.
    pub async fn enable_auth(&self, ns: &Namespace, record: MountRecord) -> Result<()> {
        let relative = ns.relative(&record.path);
        if relative == "/" || relative.is_empty() {
            return Err(Error::bad("auth path cannot be empty"));
        }
        if relative.starts_with("token/") || "token/".starts_with(relative) {
            return Err(Error::bad("path is already in use at token/"));
        }
        let _changes = self.mount_changes.lock().await;
        self.check_not_namespaced(ns, &record.path)?;
        let overlap = self
            .auth_mounts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .overlapping(&record.path);
        if let Some(path) = overlap {
            return Err(Error::bad(format!("path is already in use at {path}")));
        }
        let entry = self.build_auth(record)?;
        store(&self.storage, &entry.record).await?;
        self.insert_auth(entry);
        Ok(())
    }

    /// Replace an auth mount's record (tune), keeping its method and data.
    pub async fn update_auth(&self, record: MountRecord) -> Result<()> {
        let _changes = self.mount_changes.lock().await;
        let old = self.auth_mount_at(&record.path).ok_or(Error::NotFound)?;
        let record = MountRecord {
            uuid: old.record.uuid.clone(),
            ..record
        };
        store(&self.storage, &record).await?;
        self.insert_auth(AuthEntry::new(
            record,
            old.view.storage.clone(),
            self.system.clone(),
            old.method.clone(),
        ));
        Ok(())
    }

    /// Disable the auth method at `path` (relative to `auth/`): revoke
    /// every token issued through it (with their children), then remove
    /// it and its data. A path with nothing mounted is not an error.
    pub async fn disable_auth(&self, path: &str) -> Result<()> {
        if path == "token/" {
            return Err(Error::bad("token credential backend cannot be disabled"));
        }
        let Some(mount) = self.auth_mount_at(path) else {
            return Ok(());
        };
        // Its tokens name their path below their namespace.
        let owner = self.namespaces.owner(path);
        let issued_below = format!("auth/{}", path.strip_prefix(owner.as_str()).unwrap_or(path));
        for hash in self.tokens.hashes().await? {
            if let Some(entry) = self.tokens.get(&hash).await?
                && entry.namespace_path == owner
                && entry.path.starts_with(&issued_below)
            {
                self.revoke_token(&hash).await?;
            }
        }
        {
            let _changes = self.mount_changes.lock().await;
            let current = self.auth_mount_at(path);
            if current.is_none_or(|m| m.record.uuid != mount.record.uuid) {
                return Ok(());
            }
            self.storage.delete(&entry_key(&mount.record.uuid)).await?;
            self.auth_mounts.write().unwrap_or_else(|p| p.into_inner()).remove(path);
        }
        for key in mount.view.storage.walk("").await? {
            mount.view.storage.delete(&key).await?;
        }
        self.locality.forget_mount(&mount.record.uuid);
        Ok(())
    }

    /// Serve a request below an auth mount (`rest` is the path below
    /// `auth/`); a login's [`Login`] becomes a token here.
    pub(super) async fn handle_auth(&self, mount: Arc<AuthEntry>, req: Request, check: &Check<'_>) -> Reply {
        let rest = req.namespace.full(req.path.strip_prefix("auth/").unwrap_or_default());
        let below = rest.get(mount.path().len()..).unwrap_or_default().to_string();
        let inner = Request { path: below, ..req };
        let Some(mut resp) = mount.method.handle(&mount.view, &inner, check).await? else {
            return Ok(None);
        };
        if let Some(login) = resp.login.take() {
            resp.auth = Some(self.mint(&mount, &inner.namespace, &inner.path, login).await?);
        }
        Ok(Some(resp))
    }

    /// Mint the token of a successful login: an orphan service token with
    /// the method's policies (sanitized, `default` added unless asked not
    /// to) and TTLs within the mount's.
    async fn mint(&self, mount: &AuthEntry, ns: &Namespace, path: &str, login: Login) -> Result<serde_json::Value> {
        let policies = token::sanitize_policies(login.policies.clone(), !login.no_default_policy);
        if policies.iter().any(|p| p == "root") {
            return Err(Error::bad("auth methods cannot create root tokens"));
        }
        let granted = login_ttl(&login, &mount.record);
        let (client_token, entry) = self
            .issue_token(TokenSpec {
                parent: String::new(),
                policies,
                path: format!("auth/{}{path}", ns.relative(mount.path())),
                meta: login.metadata,
                display_name: display_name(ns.relative(mount.path()), &login.display_name),
                num_uses: login.num_uses,
                ttl: granted,
                explicit_max_ttl: login.explicit_max_ttl,
                period: login.period,
                renewable: true,
                bound_cidrs: login.bound_cidrs,
                role: String::new(),
                batch: login.batch,
                namespace: ns.clone(),
            })
            .await?;
        Ok(token::auth_block(&entry, &client_token, entry.creation_time))
    }
}

/// What `sys/auth` shows of the built-in token method and of one mount.
pub fn describe(record: &MountRecord) -> serde_json::Value {
    serde_json::json!({
        "accessor": record.accessor,
        "config": {
            "default_lease_ttl": record.default_lease_ttl,
            "max_lease_ttl": record.max_lease_ttl,
            "force_no_cache": false,
            "token_type": "default-service",
        },
        "description": record.description,
        "external_entropy_access": false,
        "local": false,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": "",
        "running_sha256": "",
        "seal_wrap": false,
        "type": record.kind,
        "uuid": record.uuid,
    })
}

impl Core {
    /// The built-in `token/` method's record, as `sys/auth` lists it: its
    /// accessor and uuid are derived from the token store's salt, so they
    /// are stable across restarts and reveal nothing.
    pub fn token_auth_record(&self) -> MountRecord {
        let h = self.tokens.salted("sys/auth/token/");
        MountRecord {
            path: "token/".into(),
            kind: "token".into(),
            description: "token based credentials".into(),
            uuid: format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ),
            accessor: format!("auth_token_{}", &h[32..40]),
            default_lease_ttl: 0,
            max_lease_ttl: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(default: i64, max: i64) -> MountRecord {
        MountRecord {
            path: "approle/".into(),
            kind: "approle".into(),
            description: String::new(),
            uuid: "u".into(),
            accessor: "a".into(),
            default_lease_ttl: default,
            max_lease_ttl: max,
        }
    }

    #[test]
    fn a_logins_ttl_follows_vaults_rules() {
        let login = |ttl, max_ttl, explicit, period| Login {
            ttl,
            max_ttl,
            explicit_max_ttl: explicit,
            period,
            ..Login::default()
        };
        // The role's TTL, capped by its max, by the mount's max.
        assert_eq!(login_ttl(&login(600, 0, 0, 0), &record(0, 0)), 600);
        assert_eq!(login_ttl(&login(600, 300, 0, 0), &record(0, 0)), 300);
        assert_eq!(login_ttl(&login(600, 0, 0, 0), &record(0, 120)), 120);
        assert_eq!(login_ttl(&login(600, 900, 0, 0), &record(0, 120)), 120);
        // No TTL: the mount's default, else the system's.
        assert_eq!(login_ttl(&login(0, 0, 0, 0), &record(77, 0)), 77);
        assert_eq!(login_ttl(&login(0, 0, 0, 0), &record(0, 0)), ttl::system_default_ttl());
        // A period wins; explicit_max_ttl caps everything.
        assert_eq!(login_ttl(&login(600, 0, 0, 3600), &record(0, 120)), 3600);
        assert_eq!(login_ttl(&login(600, 0, 100, 0), &record(0, 0)), 100);
        assert_eq!(login_ttl(&login(0, 0, 100, 3600), &record(0, 0)), 100);
    }

    #[test]
    fn display_names_are_the_mounts() {
        assert_eq!(display_name("approle/", ""), "approle");
        assert_eq!(display_name("team/approle/", ""), "team-approle");
        assert_eq!(display_name("approle/", "x"), "approle-x");
    }
}
