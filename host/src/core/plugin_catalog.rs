//! The registered plugins of `sys/plugins/catalog`: stored below
//! `core/plugin-catalog/`, one record per type and name holding every
//! registered version (a namespace's plugins by their name with the
//! namespace's path in front), and handed to the runtime while the core is
//! unsealed. A registration is stored only once its file has been read,
//! checked against its SHA-256 and compiled as a driver.

use super::Core;
use crate::error::{Error, Result};
use crate::runtime::CatalogEntry;
use crate::storage::{Storage, View, layout};
use std::collections::BTreeMap;

/// One record: the versions of one plugin ("" is the unversioned one).
type Versions = BTreeMap<String, CatalogEntry>;

fn view(storage: &Storage) -> View {
    View::new(storage.clone(), layout::PLUGIN_CATALOG)
}

/// Every registered plugin in storage (a namespace's are kept by their
/// name with the namespace's path in front: `database/team-a/mydb`).
pub async fn load(storage: &Storage) -> Result<Vec<CatalogEntry>> {
    let view = view(storage);
    let mut all = Vec::new();
    for key in view.walk("").await? {
        if let Some(versions) = view.get_json::<Versions>(&key).await? {
            all.extend(versions.into_values());
        }
    }
    Ok(all)
}

impl Core {
    /// Check `entry`'s file (digest, imports, world) and store it, replacing
    /// the same name and version. Refusals are 400s; nothing is stored.
    pub async fn register_plugin(&self, entry: CatalogEntry) -> Result<()> {
        let plugin = self.runtime.load(&entry).await.map_err(|e| Error::bad(e.to_string()))?;
        let _serial = self.plugin_changes.lock().await;
        let (view, key) = (view(&self.storage), format!("{}/{}", entry.kind, entry.name));
        let mut versions: Versions = view.get_json(&key).await?.unwrap_or_default();
        versions.insert(entry.version.clone(), entry.clone());
        view.put_json(&key, &versions).await?;
        self.runtime.catalog_insert(entry, plugin);
        Ok(())
    }

    /// Remove one registered version; removing what is not registered (or
    /// a built-in plugin) does nothing, as in Vault. Connections using it
    /// fail with "plugin not found" until they name another.
    pub async fn deregister_plugin(&self, kind: &str, name: &str, version: &str) -> Result<()> {
        let _serial = self.plugin_changes.lock().await;
        let (view, key) = (view(&self.storage), format!("{kind}/{name}"));
        let Some(mut versions) = view.get_json::<Versions>(&key).await? else {
            return Ok(());
        };
        if versions.remove(version).is_none() {
            return Ok(());
        }
        match versions.is_empty() {
            true => view.delete(&key).await?,
            false => view.put_json(&key, &versions).await?,
        }
        self.runtime.catalog_remove(name, version);
        Ok(())
    }

    /// Remove every plugin registered in the namespace at `prefix` (it is
    /// being deleted).
    pub async fn deregister_plugins_below(&self, prefix: &str) -> Result<()> {
        let doomed: Vec<CatalogEntry> = self
            .runtime
            .catalog_entries()
            .into_iter()
            .filter(|e| e.name.starts_with(prefix))
            .collect();
        for e in doomed {
            self.deregister_plugin(&e.kind, &e.name, &e.version).await?;
        }
        Ok(())
    }
}
