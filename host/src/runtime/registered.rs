//! The runtime's view of the plugin catalog: which component a (name,
//! version) pair names, built in or registered, and loading a registered one
//! from the plugin directory (its digest checked on every load, its imports
//! checked when it is compiled).

use super::catalog::builtin_version;
use super::external::{self, CatalogEntry};
use super::{Plugin, PluginError, PluginKind, Runtime};
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl Runtime {
    /// Set where registered plugins' files live; the first call wins.
    pub fn set_plugin_directory(&self, dir: PathBuf) {
        let _ = self.plugin_directory.set(dir);
    }

    pub fn plugin_directory(&self) -> Option<&Path> {
        self.plugin_directory.get().map(PathBuf::as_path)
    }

    /// Replace the registered plugins (a core was unsealed; or sealed, with
    /// none). Components loaded from the old entries are dropped.
    pub fn set_catalog(&self, entries: Vec<CatalogEntry>) {
        let mut external = self.external.write().unwrap_or_else(|p| p.into_inner());
        *external = entries
            .into_iter()
            .map(|e| ((e.name.clone(), e.version.clone()), e))
            .collect();
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Every registered (not built-in) plugin, by name then version.
    pub fn catalog_entries(&self) -> Vec<CatalogEntry> {
        let external = self.external.read().unwrap_or_else(|p| p.into_inner());
        external.values().cloned().collect()
    }

    fn entry(&self, name: &str, version: &str) -> Option<CatalogEntry> {
        let external = self.external.read().unwrap_or_else(|p| p.into_inner());
        external.get(&(name.to_string(), version.to_string())).cloned()
    }

    /// The catalog entry (`None`: the built-in) that `name` at `version`
    /// names, without loading it. An empty version is Vault's choice: the
    /// unversioned registered plugin, else the built-in one.
    pub fn lookup(&self, name: &str, version: &str) -> Result<Option<CatalogEntry>, PluginError> {
        let not_found = || PluginError::NotFound(name.to_string());
        let builtin = || {
            self.plugin(name)
                .filter(|p| p.builtin && p.kind == PluginKind::Database)
        };
        if !version.is_empty() && version == builtin_version() {
            return builtin().map(|_| None).ok_or_else(not_found);
        }
        let version = external::normalize_version(version).map_err(|_| not_found())?;
        match self.entry(name, &version) {
            Some(entry) => Ok(Some(entry)),
            None if version.is_empty() && builtin().is_some() => Ok(None),
            None => Err(not_found()),
        }
    }

    /// The catalog name a mount in the namespace at `namespace` ("" for
    /// the root) means by `name`: a plugin registered in that namespace
    /// (kept as "<namespace path><name>"), else in the nearest namespace
    /// above it that has one, else `name` itself (registered in the root
    /// namespace, or built in).
    pub fn qualify(&self, namespace: &str, name: &str) -> String {
        if namespace.is_empty() {
            return name.to_string();
        }
        let external = self.external.read().unwrap_or_else(|p| p.into_inner());
        let mut ns = namespace;
        while !ns.is_empty() {
            let candidate = format!("{ns}{name}");
            if external.keys().any(|(n, _)| *n == candidate) {
                return candidate;
            }
            // The parent namespace: up to the '/' before the last segment.
            ns = ns[..ns.len() - 1].rfind('/').map_or("", |i| &ns[..=i]);
        }
        name.to_string()
    }

    /// The version a new connection of plugin `name` gets when it names
    /// none (Vault's selectPluginVersion): "" for an unversioned registered
    /// plugin, else the highest registered version, else "" (the built-in).
    pub fn select_version(&self, name: &str) -> String {
        let external = self.external.read().unwrap_or_else(|p| p.into_inner());
        if external.contains_key(&(name.to_string(), String::new())) {
            return String::new();
        }
        let versions = external.keys().filter(|(n, _)| n == name).map(|(_, v)| v.as_str());
        external::highest(versions).unwrap_or_default().to_string()
    }

    /// The database driver `name` at `version` names, loading a registered
    /// one on first use.
    pub async fn resolve_driver(&self, name: &str, version: &str) -> Result<Arc<Plugin>, PluginError> {
        let Some(entry) = self.lookup(name, version)? else {
            return self
                .plugin(name)
                .filter(|p| p.kind == PluginKind::Database)
                .ok_or_else(|| PluginError::NotFound(name.to_string()));
        };
        let key = (entry.name.clone(), entry.version.clone());
        let cached = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        if let Some(plugin) = cached.filter(|p| p.sha256.eq_ignore_ascii_case(&entry.sha256)) {
            return Ok(plugin);
        }
        let plugin = self.load(&entry).await?;
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, plugin.clone());
        Ok(plugin)
    }

    /// Read, check and compile the file of `entry` (registration does this
    /// before storing an entry; every later load does it again, so a file
    /// changed since is refused).
    pub async fn load(&self, entry: &CatalogEntry) -> Result<Arc<Plugin>, PluginError> {
        let dir = self.plugin_directory.get().cloned();
        let (command, sha256) = (entry.command.clone(), entry.sha256.clone());
        let wasm = tokio::task::spawn_blocking(move || external::read_verified(dir.as_deref(), &command, &sha256))
            .await
            .map_err(|e| PluginError::Refused(e.to_string()))?
            .map_err(|e| PluginError::Refused(e.to_string()))?;
        let plugin = Plugin::new(&entry.name, PluginKind::Database, Arc::from(wasm), None);
        // The plugin's kind is Database: prepared means a database driver.
        self.prepare(&plugin).await.map_err(refused)?;
        Ok(plugin)
    }

    /// Forget every loaded registered component, so the next use reads and
    /// checks its file again (`sys/plugins/reload/backend`).
    pub fn unload_registered(&self) {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Add or replace one entry whose component `load` accepted.
    pub fn catalog_insert(&self, entry: CatalogEntry, plugin: Arc<Plugin>) {
        let key = (entry.name.clone(), entry.version.clone());
        self.external
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), entry);
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, plugin);
    }

    pub fn catalog_remove(&self, name: &str, version: &str) {
        let key = (name.to_string(), version.to_string());
        self.external.write().unwrap_or_else(|p| p.into_inner()).remove(&key);
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
    }
}

/// Every failure to load a registered file is the operator's to fix: a
/// refusal, not a crash of the component.
fn refused(e: PluginError) -> PluginError {
    match e {
        PluginError::Trap { plugin, reason } => PluginError::Refused(format!("plugin {plugin:?}: {reason}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Runtime, catalog};
    use std::time::Duration;

    /// The import check refuses what the host does not give; it must not
    /// refuse what Rust's standard library links into every component.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_built_in_component_passes_the_import_check() {
        let rt = Runtime::new(Duration::from_secs(30)).expect("runtime");
        catalog::register_builtins(&rt);
        for plugin in rt.plugins() {
            if let Err(e) = rt.prepare(&plugin).await {
                panic!("{}: {e}", plugin.name);
            }
        }
    }
}
