//! The mount table: which secrets engine answers below which path, with its
//! TTL settings. Persisted as one key per mount, `core/mounts/<uuid>`
//! (OpenBao splits its mount table too), so enabling, tuning or disabling a
//! mount writes that mount's record only: with one value for the whole
//! table, every change rewrote (and the write-ahead log kept a copy of) all
//! of it, and storage grew with the square of the number of mounts. Earlier
//! versions wrote the single value `core/mounts`; [`load`] splits it at
//! start-up. Every mount's own data lives below `logical/<uuid>/`.
//!
//! In memory, [`MountTable`] keeps the mounts by path in a sorted map, so
//! routing a request (longest matching prefix) and checking a new path for
//! overlaps cost a few map lookups, not a scan of every mount.

use crate::framework::SecretsEngine;
use crate::logical::{Mount, SystemView};
use crate::storage::{Storage, View, layout};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// The single table written by earlier versions (read only to migrate it).
pub const TABLE_KEY: &str = layout::MOUNT_TABLE_LEGACY;
/// One record per mount below this prefix, named by the mount's uuid.
pub const ENTRY_PREFIX: &str = layout::MOUNTS;
/// Records read per storage round trip at start-up.
const LOAD_PAGE: usize = 256;

fn entry_key(uuid: &str) -> String {
    format!("{ENTRY_PREFIX}{uuid}")
}

/// What is stored for a mount.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountRecord {
    /// With a trailing '/', as Vault shows it ("db/").
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    pub uuid: String,
    pub accessor: String,
    #[serde(default)]
    pub default_lease_ttl: i64,
    #[serde(default)]
    pub max_lease_ttl: i64,
}

/// Every stored mount record. A single table left by an earlier version
/// is split first, crash-safely: each record is written to its own key,
/// and only then is the old table deleted, so a crash in between leaves
/// the old table, which the next start splits again (writing a record
/// twice is harmless).
pub async fn load(storage: &Storage) -> crate::storage::Result<Vec<MountRecord>> {
    let root = View::new(storage.clone(), "");
    if let Some(legacy) = root.get_json::<Vec<MountRecord>>(TABLE_KEY).await? {
        for record in &legacy {
            store(storage, record).await?;
        }
        storage.delete(TABLE_KEY).await?;
        tracing::info!(mounts = legacy.len(), "mount table split into one key per mount");
    }
    load_records(storage, ENTRY_PREFIX, "mount").await
}

/// Every record stored below `prefix`, a page of records per storage read
/// (the secrets engines' table and the auth methods' alike); `what` names
/// the table in a corrupt record's error.
pub async fn load_records(storage: &Storage, prefix: &str, what: &str) -> crate::storage::Result<Vec<MountRecord>> {
    let mut records = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = storage.scan(prefix, after.as_deref(), LOAD_PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        let full = page.len() == LOAD_PAGE;
        for (key, value) in page {
            let record: MountRecord = serde_json::from_slice(&value)
                .map_err(|e| crate::storage::StorageError::Backend(format!("corrupt {what} entry {key:?}: {e}")))?;
            records.push(record);
        }
        if !full {
            break;
        }
    }
    Ok(records)
}

/// Write one mount's record (enable, tune).
pub async fn store(storage: &Storage, record: &MountRecord) -> crate::storage::Result<()> {
    View::new(storage.clone(), "")
        .put_json(&entry_key(&record.uuid), record)
        .await
}

/// Delete one mount's record (disable).
pub async fn remove(storage: &Storage, record: &MountRecord) -> crate::storage::Result<()> {
    storage.delete(&entry_key(&record.uuid)).await
}

/// A live mount: its record, what its engine sees of it, and its engine.
pub struct MountEntry {
    pub record: MountRecord,
    /// The engine's view: built from the record, so rebuilt by a tune.
    pub view: Arc<Mount>,
    pub engine: Arc<dyn SecretsEngine>,
}

impl MountEntry {
    pub fn new(
        record: MountRecord,
        storage: View,
        system: Arc<dyn SystemView>,
        engine: Arc<dyn SecretsEngine>,
    ) -> Self {
        let view = Arc::new(Mount {
            path: record.path.clone(),
            uuid: record.uuid.clone(),
            default_lease_ttl: record.default_lease_ttl,
            max_lease_ttl: record.max_lease_ttl,
            storage,
            system,
        });
        MountEntry { record, view, engine }
    }

    pub fn path(&self) -> &str {
        &self.record.path
    }

    /// The mount's storage (its keys, relative to it).
    pub fn storage(&self) -> &View {
        &self.view.storage
    }
}

/// What a [`MountTable`] holds: anything mounted at a path (a secrets
/// engine's mount, an auth method's).
pub trait Mounted {
    /// With its trailing '/'.
    fn mount_path(&self) -> &str;
}

impl Mounted for MountEntry {
    fn mount_path(&self) -> &str {
        self.path()
    }
}

/// The live mounts by path (secrets engines; the auth methods' table
/// holds [`super::auth_mounts::AuthEntry`]).
pub struct MountTable<E = MountEntry> {
    by_path: BTreeMap<String, Arc<E>>,
}

impl<E> Default for MountTable<E> {
    fn default() -> Self {
        MountTable {
            by_path: BTreeMap::new(),
        }
    }
}

impl<E: Mounted> MountTable<E> {
    /// The mount that serves `path`: the longest mount path that prefixes
    /// it, or the mount whose path is `path` plus its slash ("db" is the
    /// mount "db/"). Mount paths end in '/', so the candidates are `path`
    /// with a slash added (the longest possible) and each prefix of `path`
    /// that ends in '/', tried longest first.
    pub fn longest_match(&self, path: &str) -> Option<Arc<E>> {
        if !path.ends_with('/')
            && let Some(m) = self.by_path.get(&format!("{path}/"))
        {
            return Some(m.clone());
        }
        path.rmatch_indices('/')
            .find_map(|(i, _)| self.by_path.get(&path[..=i]))
            .cloned()
    }

    /// The path of a mount that `path` (ending in '/') would overlap: one
    /// that starts with it, or one it starts with.
    pub fn overlapping(&self, path: &str) -> Option<String> {
        // Paths that start with `path` sort right after it, so the first
        // path at or after it is one of them if any is.
        if let Some((p, _)) = self
            .by_path
            .range::<str, _>((Bound::Included(path), Bound::Unbounded))
            .next()
            && p.starts_with(path)
        {
            return Some(p.clone());
        }
        path.match_indices('/')
            .find_map(|(i, _)| self.by_path.get_key_value(&path[..=i]))
            .map(|(p, _)| p.clone())
    }

    /// The mount at exactly `path`.
    pub fn get(&self, path: &str) -> Option<Arc<E>> {
        self.by_path.get(path).cloned()
    }

    /// Add or replace the mount at the entry's path.
    pub fn insert(&mut self, entry: Arc<E>) {
        self.by_path.insert(entry.mount_path().to_string(), entry);
    }

    pub fn remove(&mut self, path: &str) -> Option<Arc<E>> {
        self.by_path.remove(path)
    }

    /// Every mount, sorted by path.
    pub fn all(&self) -> Vec<Arc<E>> {
        self.by_path.values().cloned().collect()
    }
}

/// Normalise a user's mount path: no leading slash, one trailing slash.
pub fn normalize_path(path: &str) -> String {
    let p = path.trim_matches('/');
    format!("{p}/")
}

/// Paths Warden keeps for itself.
pub fn is_reserved(path: &str) -> bool {
    ["sys/", "auth/", "cubbyhole/", "identity/"]
        .iter()
        .any(|r| path.starts_with(r) || r.starts_with(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Core;
    use crate::storage::wal::Indexed;
    use crate::storage::{Backend, MemoryBackend, Storage};
    use std::time::Duration;

    /// A core over an in-memory storage with the write-ahead log, as a dev
    /// server has (without the barrier: it does not change sizes' growth).
    async fn core_over(mem: &Arc<MemoryBackend>) -> Arc<Core> {
        let locality = Arc::new(crate::storage::locality::Locality::new(&[
            crate::core::LOCAL_STORAGE,
            crate::storage::wal::LOCAL_STORAGE,
        ]));
        let storage: Storage = Arc::new(Indexed::open(mem.clone(), locality.clone()).await.expect("open"));
        crate::core::token::store_root(&*storage, "root")
            .await
            .expect("root token");
        let runtime = crate::runtime::Runtime::new(Duration::from_secs(10)).expect("runtime");
        Core::start(
            storage,
            locality,
            runtime,
            crate::framework::engine::testing::registry(),
            Arc::new(crate::storage::barrier::Keyring::new()),
            "test-cluster".into(),
        )
        .await
        .expect("core")
    }

    fn record(path: &str) -> MountRecord {
        let uuid = uuid::Uuid::new_v4().to_string();
        MountRecord {
            path: normalize_path(path),
            kind: "inert".into(),
            description: String::new(),
            accessor: format!("inert_{}", &uuid[..8]),
            uuid,
            default_lease_ttl: 0,
            max_lease_ttl: 0,
        }
    }

    /// Issue 11, item 9: the table was one value rewritten whole on every
    /// change and the log kept a copy of each version, so the bytes stored
    /// for the k-th mount grew with k (the second 150 mounts cost about
    /// three times the first 150). Each mount must cost the same.
    #[tokio::test]
    async fn stored_bytes_grow_linearly_with_the_number_of_mounts() {
        let mem = Arc::new(MemoryBackend::new());
        let core = core_over(&mem).await;
        let start = mem.stored_bytes();
        for i in 0..150 {
            core.enable_mount(&Default::default(), record(&format!("m{i:03}")))
                .await
                .expect("enable");
        }
        let first = mem.stored_bytes() - start;
        for i in 150..300 {
            core.enable_mount(&Default::default(), record(&format!("m{i:03}")))
                .await
                .expect("enable");
        }
        let second = mem.stored_bytes() - start - first;
        core.stop().await;
        assert!(
            second * 4 <= first * 5,
            "mounts 150..300 stored {second} bytes, mounts 0..150 {first}: the cost per mount grows"
        );
        assert!(first / 150 < 2048, "{} bytes stored per mount", first / 150);
    }

    /// Locality is declared by the keys' owners: a mount's `wal/` records
    /// are local (no write-ahead record) as its engine declares (the
    /// database engine declares the same), its roles replicated; a lease is
    /// local as the core declares.
    #[tokio::test]
    async fn a_mounts_keys_are_classed_by_its_engines_declaration() {
        let mem = Arc::new(MemoryBackend::new());
        let core = core_over(&mem).await;
        core.enable_mount(&Default::default(), record("db"))
            .await
            .expect("enable");
        let mount = core.mount_for("db/creds/x").expect("mounted");
        let logged = || async { mem.list(crate::storage::layout::LOG).await.unwrap().len() };
        let before = logged().await;
        mount.storage().put("wal/creds/x", b"pending").await.unwrap();
        mount.storage().delete("wal/creds/x").await.unwrap();
        core.storage.put("sys/expire/id/db/creds/r/x", b"lease").await.unwrap();
        assert_eq!(logged().await, before);
        mount.storage().put("role/r", b"{}").await.unwrap();
        assert_eq!(logged().await, before + 1);
        core.stop().await;
    }

    /// A table written by an earlier version (one `core/mounts` value) is
    /// split into one key per mount at start-up, and the old key removed.
    #[tokio::test]
    async fn a_single_table_from_an_earlier_version_is_split_at_start_up() {
        let mem = Arc::new(MemoryBackend::new());
        let records = vec![record("a"), record("b/c")];
        mem.put(TABLE_KEY, &serde_json::to_vec(&records).unwrap())
            .await
            .unwrap();
        let core = core_over(&mem).await;
        assert_eq!(
            core.mount_for("a/x").map(|m| m.path().to_string()).as_deref(),
            Some("a/")
        );
        assert_eq!(
            core.mount_for("b/c/creds/r").map(|m| m.path().to_string()).as_deref(),
            Some("b/c/")
        );
        core.stop().await;
        assert!(mem.get(TABLE_KEY).await.unwrap().is_none(), "the old table is gone");
        let mut split = mem.list(ENTRY_PREFIX).await.unwrap();
        split.sort();
        let mut uuids: Vec<String> = records.iter().map(|r| r.uuid.clone()).collect();
        uuids.sort();
        assert_eq!(split, uuids);
        // And they are what the next start loads.
        let core = core_over(&mem).await;
        let paths: Vec<String> = core.mounts().iter().map(|m| m.path().to_string()).collect();
        core.stop().await;
        assert_eq!(paths, vec!["a/", "b/c/"]);
    }

    /// A crash in the middle of the split (some new keys written, the old
    /// table still there) is finished at the next start: nothing lost.
    #[tokio::test]
    async fn an_interrupted_split_is_finished_at_the_next_start() {
        let mem = Arc::new(MemoryBackend::new());
        let records = vec![record("a"), record("b"), record("c")];
        mem.put(TABLE_KEY, &serde_json::to_vec(&records).unwrap())
            .await
            .unwrap();
        mem.put(&entry_key(&records[0].uuid), &serde_json::to_vec(&records[0]).unwrap())
            .await
            .unwrap();
        let core = core_over(&mem).await;
        let paths: Vec<String> = core.mounts().iter().map(|m| m.path().to_string()).collect();
        core.stop().await;
        assert_eq!(paths, vec!["a/", "b/", "c/"]);
        assert!(mem.get(TABLE_KEY).await.unwrap().is_none());
        assert_eq!(mem.list(ENTRY_PREFIX).await.unwrap().len(), 3);
    }

    /// Enable, tune and disable each change only their mount's key, and
    /// what a restart loads is what was left.
    #[tokio::test]
    async fn enable_tune_and_disable_persist() {
        let mem = Arc::new(MemoryBackend::new());
        let core = core_over(&mem).await;
        let a = record("a");
        core.enable_mount(&Default::default(), a.clone()).await.unwrap();
        core.enable_mount(&Default::default(), record("b")).await.unwrap();
        let mut tuned = a.clone();
        tuned.default_lease_ttl = 60;
        core.update_mount(tuned).await.unwrap();
        core.disable_mount("b/").await.unwrap();
        core.stop().await;
        let core = core_over(&mem).await;
        let mounts = core.mounts();
        core.stop().await;
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].path(), "a/");
        assert_eq!(mounts[0].record.default_lease_ttl, 60);
        assert_eq!(mounts[0].record.uuid, a.uuid);
    }

    /// The router's rule: the longest mount path that prefixes the request
    /// path, or the mount path itself without its slash.
    #[tokio::test]
    async fn requests_go_to_the_longest_matching_mount() {
        let mem = Arc::new(MemoryBackend::new());
        let core = core_over(&mem).await;
        for p in ["db", "dbx", "team/a", "team/b/c"] {
            core.enable_mount(&Default::default(), record(p)).await.unwrap();
        }
        let found = |p: &str| core.mount_for(p).map(|m| m.path().to_string());
        assert_eq!(found("db/creds/r").as_deref(), Some("db/"));
        assert_eq!(found("db/").as_deref(), Some("db/"));
        assert_eq!(found("db").as_deref(), Some("db/"));
        assert_eq!(found("dbx/roles").as_deref(), Some("dbx/"));
        assert_eq!(found("dby/roles"), None);
        assert_eq!(found("d"), None);
        assert_eq!(found("team/a/config/x").as_deref(), Some("team/a/"));
        assert_eq!(found("team/b/c").as_deref(), Some("team/b/c/"));
        assert_eq!(found("team/b/cd"), None);
        assert_eq!(found("team/b"), None);
        assert_eq!(found("team/"), None);
        // Overlapping paths are refused either way round.
        assert!(core.enable_mount(&Default::default(), record("team")).await.is_err());
        assert!(
            core.enable_mount(&Default::default(), record("team/a/x"))
                .await
                .is_err()
        );
        assert!(core.enable_mount(&Default::default(), record("db")).await.is_err());
        assert!(core.enable_mount(&Default::default(), record("team/bb")).await.is_ok());
        core.stop().await;
    }
}
