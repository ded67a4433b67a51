//! The core: the mount table, the root token check, the expiration manager,
//! and the router that sends each request to `auth/token/` or to the
//! secrets engine mounted at the longest matching prefix. Engines are built
//! from the registry the server fills ([`crate::framework::Registry`]) and
//! see the core only through their [`crate::logical::Mount`]: the core
//! never names an engine type.

pub mod auth_mounts;
pub mod expiration;
pub mod mounts;
pub mod namespaces;
pub mod password_policy;
pub mod plugin_catalog;
pub mod policy_store;
pub mod quotas;
pub mod shamir;
pub mod system_view;
pub mod tenancy;
pub mod token;
pub mod wrapping;

use crate::error::{Error, Result};
use crate::framework::engine::{EngineDeps, Registry};
use crate::framework::{Check, ttl};
use crate::imports::mongo::MongoClients;
use crate::imports::sql::SqlPools;
use crate::logical::{Auth, LeaseInfo, Reply, Request, SystemView};
use crate::panic_guard;
use crate::runtime::Runtime;
use crate::storage::locality::{LocalStorage, Locality};
use crate::storage::{Storage, View, layout};
use chrono::Utc;
use expiration::{Expiration, LeaseEntry};
use futures::StreamExt;
use mounts::{MountEntry, MountRecord, MountTable};
use std::sync::{Arc, RwLock, Weak};

/// Revocations run at once by revoke-prefix and by the expiry timer.
const REVOKE_CONCURRENCY: usize = 16;

/// The core's local storage (`PathsSpecial.LocalStorage`): leases and
/// tokens are this node's own (a performance secondary issues and revokes
/// its own). Everything else the core keeps is replicated.
pub const LOCAL_STORAGE: LocalStorage = &[layout::EXPIRE, layout::TOKENS, layout::LOCAL_AUDIT];

pub struct Core {
    /// The core itself, for work that must outlive the request that
    /// started it (a revoke-prefix runs in a task of its own).
    this: Weak<Core>,
    pub storage: Storage,
    /// Where each mount's engine declares its local storage, so that the
    /// storage below classes the mount's keys.
    locality: Arc<Locality>,
    pub runtime: Arc<Runtime>,
    /// What each mount's engine is built with (the runtime, the host's
    /// connection pools), and the engine types it can be built as.
    engine_deps: EngineDeps,
    engines: Arc<Registry>,
    /// What every engine of the root namespace sees of the core (password
    /// policies, leases); a namespace's mounts see its password policies.
    system: Arc<system_view::CoreSystemView>,
    pub expiration: Arc<Expiration>,
    /// ACL policies (`sys/policy/`) and the compiled ACLs of policy sets,
    /// of the root namespace.
    pub policy_store: Arc<policy_store::PolicyStore>,
    /// Every other namespace's ACL policies, by namespace id, opened as a
    /// namespace is first used.
    ns_policy_stores: RwLock<std::collections::HashMap<String, Arc<policy_store::PolicyStore>>>,
    /// The namespaces (`sys/namespaces`).
    pub namespaces: namespaces::Namespaces,
    /// SHA-256 of the root token `sys/init` made (the token itself is never
    /// stored); None once it is revoked. Root tokens made later
    /// (`sys/generate-root`) are ordinary entries of the token store.
    root_token_hash: std::sync::RwLock<Option<[u8; 32]>>,
    /// The barrier's keyring, which seals batch tokens.
    sealer: Arc<dyn crate::storage::barrier::Sealer>,
    /// Every other token (salted hashes only).
    pub tokens: token::store::TokenStore,
    /// The enabled audit devices (`sys/audit`).
    pub audit: crate::audit::Broker,
    /// Rate-limit and lease-count quotas (`sys/quotas`).
    pub quotas: Arc<quotas::Quotas>,
    /// Background tasks (expiry loop, lease loading), stopped on seal.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The live mounts by path (longest-prefix routing).
    mounts: RwLock<MountTable>,
    /// The auth methods by path below `auth/` (`sys/auth`).
    auth_mounts: RwLock<MountTable<auth_mounts::AuthEntry>>,
    /// Serialises enable, tune and disable, so that a check of the table
    /// and the write that follows it see the same table (the std lock above
    /// cannot be held across the storage write).
    mount_changes: tokio::sync::Mutex<()>,
    /// Serialises registrations in the plugin catalog (read, change, write
    /// of one record).
    plugin_changes: tokio::sync::Mutex<()>,
    pub cluster_id: String,
    pub started: chrono::DateTime<Utc>,
}

impl Core {
    /// Build the core over the (unsealed) storage: load the mount table,
    /// then, in the background while requests are served, settle what a
    /// crash left half done and re-arm the lease timers (lookups, renewals
    /// and revocations read storage, not the timer), and start the expiry
    /// loop.
    pub async fn start(
        storage: Storage,
        locality: Arc<Locality>,
        runtime: Arc<Runtime>,
        engines: Arc<Registry>,
        sealer: Arc<dyn crate::storage::barrier::Sealer>,
        cluster_id: String,
    ) -> anyhow::Result<Arc<Core>> {
        let root_token_hash = token::load_root_hash(&storage).await?;
        let tokens = token::store::TokenStore::open(View::new(storage.clone(), layout::TOKENS)).await?;
        let expiration = Arc::new(Expiration::new(View::new(storage.clone(), layout::EXPIRE)));
        let policy_store = Arc::new(policy_store::PolicyStore::new(View::new(
            storage.clone(),
            layout::ACL_POLICIES,
        )));
        policy_store.load_defaults().await?;
        let namespaces = namespaces::Namespaces::load(&storage).await?;
        let audit = crate::audit::Broker::load(storage.clone()).await?;
        let quotas = quotas::Quotas::load(View::new(storage.clone(), layout::QUOTAS), expiration.clone()).await?;
        // Before the mounts: their connections name registered plugins.
        runtime.set_catalog(plugin_catalog::load(&storage).await?);
        let system = Arc::new(system_view::CoreSystemView {
            expiration: expiration.clone(),
            policies: password_policy::PasswordPolicies::new(storage.clone(), runtime.clone()),
            quotas: quotas.clone(),
            namespace_path: String::new(),
        });
        let core = Arc::new_cyclic(|this| Core {
            this: this.clone(),
            expiration,
            policy_store,
            ns_policy_stores: RwLock::new(Default::default()),
            namespaces,
            system,
            engine_deps: EngineDeps {
                runtime: runtime.clone(),
                sql_pools: Arc::new(SqlPools::default()),
                mongo_clients: Arc::new(MongoClients::default()),
            },
            engines,
            storage,
            locality,
            runtime,
            root_token_hash: std::sync::RwLock::new(root_token_hash),
            sealer,
            tokens,
            audit,
            quotas,
            tasks: std::sync::Mutex::new(Vec::new()),
            mounts: RwLock::new(MountTable::default()),
            auth_mounts: RwLock::new(MountTable::default()),
            mount_changes: tokio::sync::Mutex::new(()),
            plugin_changes: tokio::sync::Mutex::new(()),
            cluster_id,
            started: Utc::now(),
        });
        // Every namespace's live leases are counted (its own cap under the
        // global lease-count quota).
        for ns in core.namespaces.below("") {
            core.expiration.track(&ns.path);
        }
        for record in mounts::load(&core.storage).await? {
            let entry = core.build_mount(record)?;
            let entry = core.insert_mount(entry);
            entry.engine.start(entry.view.clone());
        }
        core.load_auth_mounts().await?;
        let restore = tokio::spawn({
            let core = core.clone();
            async move {
                let started = std::time::Instant::now();
                match core.expiration.restore().await {
                    Ok(n) => tracing::info!(
                        leases = n,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "lease timers restored"
                    ),
                    Err(e) => tracing::error!(error = %e, "restoring lease timers failed"),
                }
            }
        });
        let expiry = tokio::spawn(expiry_loop(core.clone()));
        // Crash recovery talks to databases, which may be down: it runs in
        // the background (as Vault's rollback manager does), never holding
        // up the unseal that started this core.
        let recovery = tokio::spawn(recover_loop(core.clone()));
        let tasks = vec![restore, expiry, recovery];
        *core.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        Ok(core)
    }

    /// One pass of every engine's crash recovery; returns how many records
    /// are still pending (their database was unreachable).
    async fn recover(&self) -> usize {
        let mut pending = 0;
        for mount in self.mounts() {
            // A panic in one mount's recovery counts as a failure of that
            // mount alone: retried later like a database that was down.
            let recovered = crate::panic_guard::guard(mount.engine.recover(&mount.view))
                .await
                .unwrap_or_else(|panic| Err(Error::internal(format!("recovery panicked: {panic}"))));
            match recovered {
                Ok((0, 0)) => {}
                Ok((rolled_back, left)) => {
                    tracing::warn!(
                        mount = mount.path(),
                        rolled_back,
                        left,
                        "rolled back credentials issued before a crash"
                    );
                    pending += left;
                }
                Err(e) => {
                    tracing::warn!(mount = mount.path(), error = %e, "crash recovery failed; will retry");
                    pending += 1;
                }
            }
        }
        pending
    }

    /// Stop the background tasks and release every engine's connections
    /// (the node is being sealed). Requests already running finish.
    pub async fn stop(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
        }
        for mount in self.mounts() {
            mount.engine.unmount(&mount.view).await;
        }
        // A sealed node knows no registered plugin until it is unsealed.
        self.runtime.set_catalog(Vec::new());
    }

    /// Resolve a request's token into its authentication context, once per
    /// request: the root token, or a live token of the token store (an
    /// expired one is refused even before its timer revokes it). A token
    /// with limited uses spends one here.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Auth> {
        let Some(t) = token.filter(|t| !t.is_empty()) else {
            return Err(Error::PermissionDenied);
        };
        if self.is_initial_root(t) {
            // Its children name it as their parent (they are not orphans).
            return Ok(Auth {
                token_hash: token::ROOT_PARENT.into(),
                ..Auth::root(t)
            });
        }
        if token::batch::is_batch(t) {
            let entry = self.live_batch(t).await?.ok_or(Error::PermissionDenied)?;
            let namespace = self.live_namespace(&entry)?;
            return Ok(Auth {
                namespace,
                client_token: t.to_string(),
                display_name: entry.display_name,
                policies: entry.policies,
                // Its leases are its parent's (an orphan's are nobody's:
                // they just expire, no later than the token).
                token_hash: entry.parent,
                bound_cidrs: entry.bound_cidrs,
                batch: true,
                expire_time: entry.expire_time,
                ..Auth::default()
            });
        }
        let Some(mut entry) = self.tokens.lookup(t).await? else {
            return Err(Error::PermissionDenied);
        };
        if !entry.is_live(Utc::now()) {
            return Err(Error::PermissionDenied);
        }
        let namespace = self.live_namespace(&entry)?;
        let mut last_use = false;
        let limited_uses = entry.num_uses > 0;
        if entry.num_uses > 0 {
            entry = self
                .tokens
                .use_once(&entry.hash)
                .await?
                .ok_or(Error::PermissionDenied)?;
            last_use = entry.num_uses == 1;
        }
        Ok(Auth {
            client_token: t.to_string(),
            display_name: entry.display_name,
            policies: entry.policies,
            anonymous: false,
            token_hash: entry.hash,
            accessor: entry.accessor,
            last_use,
            bound_cidrs: entry.bound_cidrs,
            batch: false,
            expire_time: entry.expire_time,
            limited_uses,
            namespace,
        })
    }

    /// The namespace a token was made in, which must still be there: a
    /// token outlives its namespace only until the deletion revokes it.
    fn live_namespace(&self, entry: &token::store::TokenEntry) -> Result<crate::logical::Namespace> {
        let ns = entry.namespace();
        match self.namespaces.is_live(&ns) {
            true => Ok(ns),
            false => Err(Error::PermissionDenied),
        }
    }

    /// Is this the root token `sys/init` made (and not revoked)?
    pub fn is_initial_root(&self, token: &str) -> bool {
        let hash = *self.root_token_hash.read().unwrap_or_else(|p| p.into_inner());
        !token.is_empty() && hash.is_some_and(|h| constant_time_eq(&token::hash(token), &h))
    }

    /// The entry a batch token carries, if it is one this keyring sealed,
    /// it has not expired and its parent (if any) is still alive.
    pub async fn live_batch(&self, token: &str) -> Result<Option<token::store::TokenEntry>> {
        let Some(entry) = token::batch::open(&*self.sealer, token) else {
            return Ok(None);
        };
        if entry.expired(Utc::now()) {
            return Ok(None);
        }
        let parent_alive = match entry.parent.as_str() {
            "" => true,
            token::ROOT_PARENT => self.root_token_hash.read().unwrap_or_else(|p| p.into_inner()).is_some(),
            hash => self.tokens.get(hash).await?.is_some_and(|p| p.is_live(Utc::now())),
        };
        Ok(parent_alive.then_some(entry))
    }

    /// Seal a batch token's entry into the token.
    pub fn seal_batch(&self, entry: &token::store::TokenEntry) -> Result<String> {
        token::batch::seal(&*self.sealer, entry)
    }

    /// Revoke the root token `sys/init` made, as any token: its children
    /// and the leases issued through it go too. Afterwards only a root
    /// token made by `sys/generate-root` (or a token with the root policy)
    /// has root's powers.
    pub async fn revoke_initial_root(&self) -> Result<()> {
        self.storage.delete(token::ROOT_TOKEN_KEY).await?;
        *self.root_token_hash.write().unwrap_or_else(|p| p.into_inner()) = None;
        tracing::warn!("the initial root token was revoked");
        self.revoke_token(token::ROOT_PARENT).await
    }

    /// Revoke a token and every token below it (children first), with their
    /// expiry leases and every lease issued through them. A token already
    /// gone is not an error. A lease whose engine cannot revoke it now (its
    /// database is down) is handed to the expiry timer, which retries it
    /// with back-off: the token goes at once regardless.
    pub async fn revoke_token(&self, hash: &str) -> Result<()> {
        // The whole tree, parents before children; revoked in reverse so a
        // failure half way leaves no child without its parent.
        let mut tree = vec![hash.to_string()];
        let mut i = 0;
        while i < tree.len() {
            let children = self.tokens.children(&tree[i]).await?;
            tree.extend(children);
            i += 1;
        }
        for h in tree.iter().rev() {
            self.revoke_leases_of_token(h).await?;
            let Some(entry) = self.tokens.get(h).await? else {
                continue;
            };
            self.expiration.remove(&entry.lease_id(), "").await?;
            self.tokens.remove(&entry).await?;
        }
        Ok(())
    }

    /// Revoke the leases issued through one token, `REVOKE_CONCURRENCY` at
    /// a time. One that fails is made due now, so the expiry timer retries
    /// it (and marks it irrevocable past the retry limit).
    async fn revoke_leases_of_token(&self, hash: &str) -> Result<()> {
        let ids = self.expiration.ids_by_token(hash).await?;
        futures::stream::iter(ids)
            .for_each_concurrent(REVOKE_CONCURRENCY, |id| async move {
                let revoked = panic_guard::guard(self.revoke_lease_if_stored(&id))
                    .await
                    .unwrap_or_else(|panic| Err(Error::internal(format!("revocation panicked: {panic}"))));
                match revoked {
                    // Revoked: its index entry went with it.
                    Ok(true) => {}
                    // Revoked meanwhile by another path: only the index
                    // entry is left.
                    Ok(false) => {
                        if let Err(e) = self.expiration.forget_index(hash, &id).await {
                            tracing::warn!(lease_id = %id, error = %e, "could not drop a revoked lease's token index entry");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(lease_id = %id, error = %e, "revoking a lease of a revoked token failed; the expiry timer retries it");
                        self.expiration.retry_in(&id, std::time::Duration::ZERO);
                    }
                }
            })
            .await;
        Ok(())
    }

    /// The policies of a live token (the root token's: `root`), without
    /// spending a use; None for anything else.
    pub async fn token_policies(&self, token: &str) -> Result<Option<Vec<String>>> {
        if token.is_empty() {
            return Ok(None);
        }
        if self.is_initial_root(token) {
            return Ok(Some(vec![policy_store::ROOT.to_string()]));
        }
        if token::batch::is_batch(token) {
            return Ok(self.live_batch(token).await?.map(|e| e.policies));
        }
        Ok(self
            .tokens
            .lookup(token)
            .await?
            .filter(|e| e.is_live(Utc::now()))
            .map(|e| e.policies))
    }

    /// Revoke a token but not its children, which become orphans
    /// (`auth/token/revoke-orphan`).
    pub async fn revoke_token_orphaning(&self, hash: &str) -> Result<()> {
        self.tokens.orphan_children(hash).await?;
        self.revoke_token(hash).await
    }

    /// Route an authenticated request below `auth/token/`, to the auth
    /// method below `auth/<path>/` ([`auth_mounts`]), or to the mount
    /// at the longest matching prefix. `check` is the policy check the
    /// router runs once it knows the operation (create vs update).
    pub async fn handle(&self, req: Request, check: &Check<'_>) -> Reply {
        if let Some(rest) = req.path.strip_prefix("auth/token/") {
            let rest = rest.to_string();
            return token::BACKEND.handle(self, &req, &rest, None, check).await;
        }
        if let Some(mount) = req
            .path
            .strip_prefix("auth/")
            .and_then(|rest| self.auth_mount_for(&req.namespace.full(rest)))
        {
            return self.handle_auth(mount, req, check).await;
        }
        // `req.path` is below the request's namespace; mounts are known by
        // their full paths.
        let full = req.namespace.full(&req.path);
        let mount = self.mount_for(&full).ok_or_else(|| Error::NoRoute(full.clone()))?;
        // The lease (if any) is named after the full path; the engine sees
        // the path below its mount. The request's data moves along, not
        // copied.
        let full_path = full.trim_end_matches('/').to_string();
        let namespace_len = req.namespace.path.len();
        let inner = Request {
            path: full[mount.path().len().min(full.len())..].to_string(),
            lease_id: expiration::new_lease_id(&full_path),
            ..req
        };
        // Until this request's lease is stored (or it failed), crash
        // recovery leaves its write-ahead record alone.
        let _issuing = self.expiration.issuing(&inner.lease_id);
        let mut resp = match mount.engine.handle(&mount.view, &inner, check).await? {
            None => return Ok(None),
            Some(r) => r,
        };
        if let Some(mut secret) = resp.secret.take() {
            let now = Utc::now();
            // A batch token cannot be revoked, so nothing would revoke its
            // leases early: they end no later than it does (Vault's rule).
            if inner.auth.batch
                && let Some(end) = inner.auth.expire_time
            {
                secret.ttl = secret.ttl.min((end - now).num_seconds().max(1));
            }
            // Engines cap their TTLs; an out-of-range one would be a bug, and
            // is refused rather than stored (the secret is undone below).
            let expiry = ttl::expiry(now, secret.ttl);
            let entry = LeaseEntry {
                lease_id: inner.lease_id.clone(),
                path: full_path,
                mount_path: mount.path().to_string(),
                internal: secret.internal,
                issue_time: now,
                expire_time: *expiry.as_ref().unwrap_or(&now),
                last_renewal: None,
                renewable: secret.renewable,
                revoke: Default::default(),
                token: inner.auth.token_hash.clone(),
                end_by: inner.auth.batch.then_some(inner.auth.expire_time).flatten(),
            };
            let saved = match expiry {
                Ok(_) => self.expiration.save(&entry).await,
                Err(e) => Err(e),
            };
            if let Err(e) = saved {
                // No lease, no secret: undo what the engine created.
                match mount.engine.revoke(&mount.view, entry.as_lease()).await {
                    Ok(()) => {
                        if let Some(wal) = &secret.wal {
                            let _ = mount.storage().delete(wal).await;
                        }
                    }
                    // The write-ahead record stays: start-up recovery retries.
                    Err(undo) => {
                        tracing::error!(error = %undo, "could not roll back a secret whose lease failed to persist")
                    }
                }
                return Err(e);
            }
            crate::telemetry::lease_created(mount.path(), &mount.record.kind);
            // The lease is stored: the write-ahead record has done its job.
            // Deleted in the background: the client need not wait for that
            // commit, and a record that outlives a crash is harmless
            // (start-up recovery finds its lease and just deletes it).
            if let Some(wal) = secret.wal.clone() {
                let storage = mount.storage().clone();
                tokio::spawn(async move {
                    if let Err(e) = storage.delete(&wal).await {
                        tracing::warn!(error = %e, "could not delete a write-ahead record (harmless: start-up recovery finds the lease)");
                    }
                });
            }
            // The caller sees the lease id from its namespace, as every
            // path it uses ("db/creds/app/<id>" in team-a).
            resp.lease = Some(LeaseInfo {
                lease_id: entry.lease_id.get(namespace_len..).unwrap_or_default().to_string(),
                lease_duration: secret.ttl,
                renewable: secret.renewable,
            });
        }
        Ok(Some(resp))
    }

    pub fn mount_for(&self, path: &str) -> Option<Arc<MountEntry>> {
        self.mounts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .longest_match(path)
    }

    /// The host's SQL connection pools (their use, for sys/metrics).
    pub fn sql_pools(&self) -> &SqlPools {
        &self.engine_deps.sql_pools
    }

    /// Every mount, sorted by path.
    pub fn mounts(&self) -> Vec<Arc<MountEntry>> {
        self.mounts.read().unwrap_or_else(|p| p.into_inner()).all()
    }

    fn insert_mount(&self, entry: MountEntry) -> Arc<MountEntry> {
        let entry = Arc::new(entry);
        self.mounts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entry.clone());
        entry
    }

    /// The engine types this core can mount.
    pub fn engines(&self) -> &Registry {
        &self.engines
    }

    /// A mount's entry: its engine built from the registry, its storage.
    fn build_mount(&self, record: MountRecord) -> Result<MountEntry> {
        let engine = self
            .engines
            .build(&record.kind, &self.engine_deps)
            .ok_or_else(|| Error::bad(format!("plugin not found in the catalog: {}", record.kind)))?;
        // Before the mount can write anything.
        self.locality.register_mount(&record.uuid, engine.local_storage());
        let storage = View::new(self.storage.clone(), layout::mount(&record.uuid));
        let system = self.system_for(&record.path);
        Ok(MountEntry::new(record, storage, system, engine))
    }

    /// What a mount at `path` (full) sees of the core: its namespace (and
    /// its password policies), the core's leases and sandbox quotas.
    pub(crate) fn system_for(&self, path: &str) -> Arc<dyn SystemView> {
        let owner = self.namespaces.owner(path);
        let Some(ns) = self.namespaces.get_any(&owner) else {
            return self.system.clone();
        };
        Arc::new(system_view::CoreSystemView {
            expiration: self.system.expiration.clone(),
            policies: password_policy::PasswordPolicies::in_namespace(
                self.storage.clone(),
                self.runtime.clone(),
                &ns.namespace(),
            ),
            quotas: self.system.quotas.clone(),
            namespace_path: ns.path.clone(),
        })
    }

    /// Mount an engine in the namespace `ns` (`record.path` is the full
    /// path). Its record is stored before the mount goes live, so a failed
    /// write leaves no mount behind.
    pub async fn enable_mount(&self, ns: &crate::logical::Namespace, record: MountRecord) -> Result<()> {
        let relative = ns.relative(&record.path);
        if mounts::is_reserved(relative) {
            return Err(Error::bad(format!("cannot mount at reserved path {relative:?}")));
        }
        let _changes = self.mount_changes.lock().await;
        self.check_not_namespaced(ns, &record.path)?;
        let overlap = self
            .mounts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .overlapping(&record.path);
        if let Some(path) = overlap {
            return Err(Error::bad(format!("path is already in use at {path}")));
        }
        let entry = self.build_mount(record)?;
        mounts::store(&self.storage, &entry.record).await?;
        let entry = self.insert_mount(entry);
        entry.engine.start(entry.view.clone());
        Ok(())
    }

    /// A mount (or auth method) of `ns` at `path` (full) must not be a
    /// namespace's path, nor inside a namespace other than `ns`.
    pub(crate) fn check_not_namespaced(&self, ns: &crate::logical::Namespace, path: &str) -> Result<()> {
        if let Some(taken) = self.namespaces.overlapping(path) {
            return Err(Error::bad(format!("path is already in use at {}", ns.relative(&taken))));
        }
        let owner = self.namespaces.owner(path);
        if owner != ns.path {
            return Err(Error::bad(format!("path is already in use at {}", ns.relative(&owner))));
        }
        if !ns.is_root() && self.namespaces.get(&ns.path).is_none() {
            return Err(Error::bad(format!("namespace {:?} is being deleted", ns.path)));
        }
        Ok(())
    }

    /// Replace a mount's record (tune), keeping its engine and data.
    pub async fn update_mount(&self, record: MountRecord) -> Result<()> {
        let _changes = self.mount_changes.lock().await;
        let old = self
            .mounts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&record.path)
            .ok_or(Error::NotFound)?;
        // The uuid names the stored record and the mount's data: a tune
        // never changes it.
        let record = MountRecord {
            uuid: old.record.uuid.clone(),
            ..record
        };
        mounts::store(&self.storage, &record).await?;
        self.insert_mount(MountEntry::new(
            record,
            old.storage().clone(),
            old.view.system.clone(),
            old.engine.clone(),
        ));
        Ok(())
    }

    /// Revoke every lease of the mount, then remove it and its data. If a
    /// revocation fails the mount stays, so nothing is orphaned.
    pub async fn disable_mount(&self, path: &str) -> Result<()> {
        let Some(mount) = self.mount_for(path).filter(|m| m.path() == path) else {
            return Ok(());
        };
        self.revoke_prefix(path).await?;
        mount.engine.unmount(&mount.view).await;
        {
            let _changes = self.mount_changes.lock().await;
            // Gone already (a concurrent disable) or replaced: nothing to do.
            let current = self.mounts.read().unwrap_or_else(|p| p.into_inner()).get(path);
            if current.is_none_or(|m| m.record.uuid != mount.record.uuid) {
                return Ok(());
            }
            mounts::remove(&self.storage, &mount.record).await?;
            self.mounts.write().unwrap_or_else(|p| p.into_inner()).remove(path);
        }
        for key in mount.storage().walk("").await? {
            mount.storage().delete(&key).await?;
        }
        self.locality.forget_mount(&mount.record.uuid);
        Ok(())
    }

    fn lease_mount(&self, lease: &LeaseEntry) -> Result<Arc<MountEntry>> {
        self.mount_for(&lease.mount_path)
            .filter(|m| m.path() == lease.mount_path)
            .ok_or_else(|| Error::internal(format!("no mount {:?} to revoke the lease through", lease.mount_path)))
    }

    /// Revoke one lease: the engine destroys the secret, then the lease is
    /// forgotten. Unknown leases are not an error (revocation is idempotent).
    /// A token's lease revokes the token (and its children).
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<()> {
        self.revoke_lease_if_stored(lease_id).await.map(drop)
    }

    /// As [`Core::revoke_lease`]; false when there was no such lease.
    async fn revoke_lease_if_stored(&self, lease_id: &str) -> Result<bool> {
        let Some(lease) = self.expiration.get(lease_id).await? else {
            return Ok(false);
        };
        if lease.mount_path == token::store::LEASE_MOUNT {
            return Box::pin(self.revoke_token(lease_token(&lease))).await.map(|()| true);
        }
        let mount = self.lease_mount(&lease)?;
        mount
            .engine
            .revoke(&mount.view, lease.as_lease())
            .await
            .map_err(|e| Error::bad(format!("failed to revoke entry: {e}")))?;
        self.expiration.remove(lease_id, &lease.token).await?;
        crate::telemetry::lease_revoked(&lease.mount_path);
        Ok(true)
    }

    /// Revoke every lease below a prefix; returns when all are revoked.
    /// The revocations run in a task of their own, so a request that goes
    /// away (the client hung up) does not cancel them half done.
    pub async fn revoke_prefix(&self, prefix: &str) -> Result<()> {
        let core = self.this.upgrade().ok_or(Error::Sealed)?;
        let prefix = prefix.to_string();
        tokio::spawn(async move { core.revoke_prefix_now(&prefix).await })
            .await
            .map_err(|e| Error::internal(format!("revoke-prefix stopped: {e}")))?
    }

    async fn revoke_prefix_now(&self, prefix: &str) -> Result<()> {
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        let ids = self.expiration.ids_under(&prefix).await?;
        let total = ids.len();
        // `ids_under` yields whole lease ids (the prefix included). A panic
        // revoking one lease fails that lease, not the others.
        let results: Vec<(String, Result<()>)> = futures::stream::iter(ids)
            .map(|id| async move {
                let r = panic_guard::guard(self.revoke_lease(&id))
                    .await
                    .unwrap_or_else(|panic| Err(Error::internal(format!("revocation panicked: {panic}"))));
                (id, r)
            })
            .buffer_unordered(REVOKE_CONCURRENCY)
            .collect()
            .await;
        let failed: Vec<String> = results
            .into_iter()
            .filter_map(|(id, r)| r.err().map(|e| format!("failed to revoke {id:?}: {e}")))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::bad(format!(
                "{} of {total} leases could not be revoked: {}",
                failed.len(),
                failed.join("; ")
            )))
        }
    }

    /// Vault's revoke-prefix with `sync=false`: every lease below the
    /// prefix becomes due now, and the expiry timer revokes them in the
    /// background with its concurrency, retries and irrevocable marking.
    /// Returns how many were queued. As the timer is in memory, a restart
    /// before they are revoked leaves them due at their own expiry.
    pub async fn queue_revoke_prefix(&self, prefix: &str) -> Result<usize> {
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        let ids = self.expiration.ids_under(&prefix).await?;
        for id in &ids {
            self.expiration.retry_in(id, std::time::Duration::ZERO);
        }
        Ok(ids.len())
    }

    /// Vault's revoke-force: forget every lease below a prefix. Each secret
    /// is still revoked through its engine where that works, but an engine
    /// error is only logged: the lease goes regardless, and the secret may
    /// stay in the database. Returns how many leases were removed.
    pub async fn revoke_force(&self, prefix: &str) -> Result<usize> {
        // As Vault: a prefix that is itself a lease id names that lease too.
        let mut ids = match self.expiration.get(prefix).await? {
            Some(lease) => vec![lease.lease_id],
            None => Vec::new(),
        };
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        ids.extend(self.expiration.ids_under(&prefix).await?);
        let results: Vec<Result<bool>> = futures::stream::iter(ids)
            .map(|id| async move {
                let Some(lease) = self.expiration.get(&id).await? else {
                    return Ok(false);
                };
                let revoked = match self.lease_mount(&lease) {
                    _ if lease.mount_path == token::store::LEASE_MOUNT => self.revoke_token(lease_token(&lease)).await,
                    Ok(mount) => mount.engine.revoke(&mount.view, lease.as_lease()).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = revoked {
                    tracing::warn!(lease_id = %id, error = %e, "revoke-force: the engine could not revoke the secret; removing the lease anyway");
                }
                self.expiration.remove(&id, &lease.token).await?;
                if lease.mount_path != token::store::LEASE_MOUNT {
                    crate::telemetry::lease_revoked(&lease.mount_path);
                }
                Ok(true)
            })
            .buffer_unordered(REVOKE_CONCURRENCY)
            .collect()
            .await;
        let mut removed = 0;
        for r in results {
            removed += usize::from(r?);
        }
        Ok(removed)
    }

    /// Renew a lease by `increment` seconds (0: the role's default).
    pub async fn renew_lease(&self, lease_id: &str, increment: i64) -> Result<(LeaseEntry, i64, Vec<String>)> {
        let mut lease = self
            .expiration
            .get(lease_id)
            .await?
            .ok_or_else(|| Error::bad("lease not found"))?;
        if !lease.renewable {
            return Err(Error::bad("lease is not renewable"));
        }
        let mount = self.lease_mount(&lease)?;
        let ttls = mount.engine.lease_ttls(&mount.view, lease.as_lease()).await?;
        let now = Utc::now();
        let mut granted = ttl::calculate(
            increment,
            ttls.default_ttl,
            ttls.max_ttl,
            mount.record.default_lease_ttl,
            mount.record.max_lease_ttl,
            Some(lease.issue_time),
            now,
        );
        // A batch token's lease ends with the token, renewed or not.
        if let Some(end) = lease.end_by {
            granted.ttl = granted.ttl.min((end - now).num_seconds().max(0));
        }
        let mut warnings = Vec::new();
        if increment > granted.ttl {
            warnings.push(format!(
                "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
                ttl::human(increment),
                ttl::human(granted.ttl)
            ));
        }
        let expires = ttl::expiry(now, granted.ttl)?;
        mount.engine.renew(&mount.view, lease.as_lease(), expires).await?;
        lease.expire_time = expires;
        lease.last_renewal = Some(now);
        self.expiration.save(&lease).await?;
        Ok((lease, granted.ttl, warnings))
    }
}

/// Crash recovery: one pass at start-up, then retries with back-off until
/// nothing is pending (a database was down).
async fn recover_loop(core: Arc<Core>) {
    let mut wait = std::time::Duration::from_secs(5);
    while core.recover().await > 0 {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(300));
    }
}

/// Revoke leases as they expire; a failure is retried with back-off. Each
/// mount has its own queue and at most `REVOKE_CONCURRENCY` revocations at
/// once, so a mount whose database hangs (every call waits out the pool's
/// acquire timeout) holds up only its own leases, never another mount's.
async fn expiry_loop(core: Arc<Core>) {
    let mut queues: std::collections::HashMap<String, tokio::sync::mpsc::UnboundedSender<String>> =
        std::collections::HashMap::new();
    loop {
        let id = core.expiration.next_due().await;
        // The lease id starts with its mount's path; an unknown mount gets
        // its own queue too (its revocation fails and is retried).
        let mount = core.mount_for(&id).map(|m| m.path().to_string()).unwrap_or_default();
        let queue = queues.entry(mount).or_insert_with(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(revoke_expired(core.clone(), rx));
            tx
        });
        let _ = queue.send(id);
    }
}

/// One mount's expired leases, revoked `REVOKE_CONCURRENCY` at a time. Ends
/// when the expiry loop is stopped (the core is sealed): the queue closes.
async fn revoke_expired(core: Arc<Core>, mut due: tokio::sync::mpsc::UnboundedReceiver<String>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(REVOKE_CONCURRENCY));
    while let Some(id) = due.recv().await {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        if due.is_closed() {
            return;
        }
        let core = core.clone();
        tokio::spawn(async move {
            let revocation = core.revoke_lease(&id);
            expired_lease_job(&core.expiration, &id, revocation).await;
            drop(permit);
        });
    }
}

/// One expired lease's revocation (`job`). A failure, a panic included
/// (a panic fails only this job: the worker and the other leases go on),
/// is counted in the stored lease and retried after the back-off, or past
/// the retry limit the lease is marked irrevocable.
async fn expired_lease_job(expiration: &Expiration, id: &str, job: impl std::future::Future<Output = Result<()>>) {
    let result = panic_guard::guard(job)
        .await
        .unwrap_or_else(|panic| Err(Error::internal(format!("revocation panicked: {panic}"))));
    let Err(e) = result else {
        tracing::debug!(lease_id = %id, "expired lease revoked");
        // Removed with its lease, or gone before: either way not live.
        expiration.revocation_done(id);
        return;
    };
    match expiration.revocation_failed(id, &e.to_string()).await {
        Ok(Some(wait)) => {
            tracing::warn!(lease_id = %id, error = %e, retry_in_s = wait.as_secs(), "revoking an expired lease failed")
        }
        Ok(None) => {
            tracing::error!(lease_id = %id, error = %e, "revoking an expired lease failed too often: the lease is now irrevocable (sys/leases?type=irrevocable lists it)")
        }
        Err(store) => {
            tracing::warn!(lease_id = %id, error = %e, store_error = %store, "revoking an expired lease failed, and so did recording the attempt")
        }
    }
}

/// The token a token's expiry lease names.
fn lease_token(lease: &LeaseEntry) -> &str {
    lease
        .internal
        .get("token_hash")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryBackend;
    use expiration::RetryPolicy;

    fn lease(id: &str) -> LeaseEntry {
        let now = Utc::now();
        LeaseEntry {
            lease_id: id.into(),
            path: "db/creds/app".into(),
            mount_path: "db/".into(),
            internal: serde_json::Value::Null,
            issue_time: now,
            expire_time: now,
            last_renewal: None,
            renewable: true,
            revoke: Default::default(),
            token: String::new(),
            end_by: None,
        }
    }

    #[tokio::test]
    async fn a_panicking_revocation_fails_only_its_lease_which_is_retried_then_irrevocable() {
        let policy = RetryPolicy {
            base: std::time::Duration::from_millis(1),
            limit: 2,
        };
        let exp = Expiration::with_policy(View::new(Arc::new(MemoryBackend::new()), layout::EXPIRE), policy);
        exp.save(&lease("db/creds/app/bad")).await.unwrap();
        exp.save(&lease("db/creds/app/good")).await.unwrap();
        let mut seen = Vec::new();
        // Each due lease runs as a job; the bad one's job panics every time.
        while seen.len() < 3 {
            let id = tokio::time::timeout(std::time::Duration::from_secs(5), exp.next_due())
                .await
                .expect("the panicking lease is retried");
            seen.push(id.clone());
            if id.ends_with("bad") {
                expired_lease_job(&exp, &id, async { panic!("boom") }).await;
            } else {
                expired_lease_job(&exp, &id, exp.remove(&id, "")).await;
            }
        }
        assert_eq!(seen.iter().filter(|id| id.ends_with("bad")).count(), 2, "{seen:?}");
        assert!(seen.contains(&"db/creds/app/good".to_string()));
        assert!(exp.get("db/creds/app/good").await.unwrap().is_none());
        let bad = exp.get("db/creds/app/bad").await.unwrap().unwrap();
        assert_eq!(bad.revoke.attempts, 2);
        assert_eq!(bad.revoke.error.as_deref(), Some("revocation panicked: boom"));
        assert_eq!(exp.irrevocable(), vec!["db/creds/app/bad"]);
    }
}
