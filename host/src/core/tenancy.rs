//! What the core does per namespace: each namespace's ACL policy store,
//! creating a namespace (checked against the mounts it would shadow), and
//! deleting one with everything in it: its leases revoked (database
//! logins dropped), its tokens revoked, its mounts and auth methods
//! disabled with their data, its policies, password policies, token
//! roles, quotas and plugin registrations removed.

use super::Core;
use super::namespaces::NamespaceRecord;
use super::policy_store::PolicyStore;
use crate::error::{Error, Result};
use crate::logical::Namespace;
use crate::storage::{View, layout};
use std::collections::BTreeMap;
use std::sync::Arc;

impl Core {
    /// The ACL policies of a namespace (opened at its first use).
    pub fn policies_in(&self, ns: &Namespace) -> Arc<PolicyStore> {
        if ns.is_root() {
            return self.policy_store.clone();
        }
        if let Some(store) = self
            .ns_policy_stores
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&ns.id)
        {
            return store.clone();
        }
        let store = Arc::new(PolicyStore::new(self.namespace_view(ns, layout::ACL_POLICIES)));
        self.ns_policy_stores
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(ns.id.clone())
            .or_insert(store)
            .clone()
    }

    /// A view of one of the core's own key spaces (`base`, such as
    /// `sys/policy/`) as a namespace has it.
    pub fn namespace_view(&self, ns: &Namespace, base: &str) -> View {
        View::new(self.storage.clone(), format!("{}{base}", layout::namespace(ns)))
    }

    /// Create the namespace `name` inside `parent` (or update the custom
    /// metadata of the one there), with its `default` and
    /// `response-wrapping` policies. Its path must not be a mount's or an
    /// auth method's of the parent namespace, nor below one.
    pub async fn create_namespace(
        &self,
        parent: &Namespace,
        name: &str,
        custom_metadata: BTreeMap<String, String>,
    ) -> Result<Arc<NamespaceRecord>> {
        // Mount changes wait while the path is checked and taken, so that a
        // mount cannot appear at it in between.
        let _changes = self.mount_changes.lock().await;
        let free = |path: &str| -> Result<()> {
            let mounts = self.mounts.read().unwrap_or_else(|p| p.into_inner());
            if let Some(taken) = mounts.overlapping(path) {
                return Err(Error::bad(format!("path is already in use at {taken}")));
            }
            let auth = self.auth_mounts.read().unwrap_or_else(|p| p.into_inner());
            if let Some(taken) = auth.overlapping(path) {
                return Err(Error::bad(format!("path is already in use at auth/{taken}")));
            }
            Ok(())
        };
        let existed = self.namespaces.get(&format!("{}{name}/", parent.path)).is_some();
        let record = self.namespaces.create(parent, name, custom_metadata, free).await?;
        self.policies_in(&record.namespace()).load_defaults().await?;
        if !existed {
            // Its live leases are counted: its own lease-count cap.
            self.expiration.track(&record.path);
        }
        Ok(record)
    }

    /// Delete the namespace at `path` with everything in it; None when
    /// there is none. Refused while it has child namespaces. From the
    /// first step on it serves nothing (it is tainted); if a step fails
    /// (a database that cannot drop a login), the namespace stays tainted
    /// and a second delete carries on where this one stopped.
    pub async fn delete_namespace(&self, path: &str) -> Result<Option<Arc<NamespaceRecord>>> {
        let Some(record) = self.namespaces.taint(path).await? else {
            return Ok(None);
        };
        let core = self.this.upgrade().ok_or(Error::Sealed)?;
        let work = record.clone();
        // In a task of its own: a client that goes away does not stop it
        // half done.
        tokio::spawn(async move { core.empty_namespace(&work).await })
            .await
            .map_err(|e| Error::internal(format!("namespace deletion stopped: {e}")))??;
        self.namespaces.remove(&record).await?;
        self.expiration.untrack(&record.path);
        Ok(Some(record))
    }

    async fn empty_namespace(&self, record: &NamespaceRecord) -> Result<()> {
        let ns = record.namespace();
        // A mount or auth method enabled in the namespace just before it
        // was tainted is in the tables once this lock is free (enabling
        // checks and inserts under it; after the taint, it refuses).
        drop(self.mount_changes.lock().await);
        // Every lease below it (credentials, and the expiry leases of its
        // tokens): the engines revoke the secrets.
        self.revoke_prefix(&ns.path).await?;
        // Its tokens without expiry, and any left.
        for hash in self.tokens.hashes().await? {
            if let Some(entry) = self.tokens.get(&hash).await?
                && entry.namespace_id == ns.id
            {
                self.revoke_token(&hash).await?;
            }
        }
        for mount in self.mounts() {
            if mount.path().starts_with(&ns.path) {
                self.disable_mount(mount.path()).await?;
            }
        }
        for auth in self.auth_mounts() {
            if auth.path().starts_with(&ns.path) {
                self.disable_auth(auth.path()).await?;
            }
        }
        // Quotas on its paths would apply to a namespace of the same name
        // made later.
        self.quotas.delete_below(&ns.path).await?;
        self.deregister_plugins_below(&ns.path).await?;
        let own = View::new(self.storage.clone(), layout::namespace(&ns));
        for key in own.walk("").await? {
            own.delete(&key).await?;
        }
        self.ns_policy_stores
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ns.id);
        Ok(())
    }
}
