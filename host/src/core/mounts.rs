//! The mount table: which secrets engine answers below which path, with its
//! TTL settings. Persisted in storage at `core/mounts`; every mount's own
//! data lives below `logical/<uuid>/`.

use crate::engines::SecretsEngine;
use crate::storage::View;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const TABLE_KEY: &str = "core/mounts";

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

/// A live mount: its record, its storage view and its engine.
pub struct MountEntry {
    pub record: MountRecord,
    pub storage: View,
    pub engine: Arc<dyn SecretsEngine>,
}

impl MountEntry {
    pub fn path(&self) -> &str {
        &self.record.path
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
        let storage: Storage = Arc::new(Indexed::open(mem.clone()).await.expect("open"));
        crate::core::token::store_root(&*storage, "root")
            .await
            .expect("root token");
        let runtime = crate::runtime::Runtime::new(Duration::from_secs(10)).expect("runtime");
        Core::start(storage, runtime).await.expect("core")
    }

    fn record(path: &str) -> MountRecord {
        let uuid = uuid::Uuid::new_v4().to_string();
        MountRecord {
            path: normalize_path(path),
            kind: "database".into(),
            description: String::new(),
            accessor: format!("database_{}", &uuid[..8]),
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
            core.enable_mount(record(&format!("m{i:03}"))).await.expect("enable");
        }
        let first = mem.stored_bytes() - start;
        for i in 150..300 {
            core.enable_mount(record(&format!("m{i:03}"))).await.expect("enable");
        }
        let second = mem.stored_bytes() - start - first;
        core.stop().await;
        assert!(
            second * 4 <= first * 5,
            "mounts 150..300 stored {second} bytes, mounts 0..150 {first}: the cost per mount grows"
        );
        assert!(first / 150 < 2048, "{} bytes stored per mount", first / 150);
    }

    /// A table written by an earlier version (one `core/mounts` value) is
    /// split into one key per mount at start-up, and the old key removed.
    #[tokio::test]
    async fn a_single_table_from_an_earlier_version_is_split_at_start_up() {
        let mem = Arc::new(MemoryBackend::new());
        let records = vec![record("a"), record("b/c")];
        mem.put("core/mounts", &serde_json::to_vec(&records).unwrap())
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
        assert!(mem.get("core/mounts").await.unwrap().is_none(), "the old table is gone");
        let mut split = mem.list("core/mounts/").await.unwrap();
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
        mem.put("core/mounts", &serde_json::to_vec(&records).unwrap())
            .await
            .unwrap();
        mem.put(
            &format!("core/mounts/{}", records[0].uuid),
            &serde_json::to_vec(&records[0]).unwrap(),
        )
        .await
        .unwrap();
        let core = core_over(&mem).await;
        let paths: Vec<String> = core.mounts().iter().map(|m| m.path().to_string()).collect();
        core.stop().await;
        assert_eq!(paths, vec!["a/", "b/", "c/"]);
        assert!(mem.get("core/mounts").await.unwrap().is_none());
        assert_eq!(mem.list("core/mounts/").await.unwrap().len(), 3);
    }

    /// Enable, tune and disable each change only their mount's key, and
    /// what a restart loads is what was left.
    #[tokio::test]
    async fn enable_tune_and_disable_persist() {
        let mem = Arc::new(MemoryBackend::new());
        let core = core_over(&mem).await;
        let a = record("a");
        core.enable_mount(a.clone()).await.unwrap();
        core.enable_mount(record("b")).await.unwrap();
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
            core.enable_mount(record(p)).await.unwrap();
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
        assert!(core.enable_mount(record("team")).await.is_err());
        assert!(core.enable_mount(record("team/a/x")).await.is_err());
        assert!(core.enable_mount(record("db")).await.is_err());
        assert!(core.enable_mount(record("team/bb")).await.is_ok());
        core.stop().await;
    }
}
