//! The namespace registry (`sys/namespaces`): which namespaces exist, one
//! record per namespace at `core/namespaces/<id>`, all held in memory by
//! path so that routing a request to its namespace (the longest registered
//! prefix of its path) costs a few map lookups. A namespace is a path
//! prefix: its mounts and lease ids are full paths below it ("team-a/db/",
//! "team-a/db/creds/app/<uuid>"), and what the core keeps per namespace
//! (ACL policies, password policies, token roles) lives below
//! `namespaces/<id>/` ([`layout::namespace`]). The root namespace is not a
//! record: it is the empty path.

use crate::error::{Error, Result};
use crate::logical::Namespace;
use crate::storage::{Storage, View, layout};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

/// Names a namespace cannot take (Vault's reserved paths).
const RESERVED: &[&str] = &["root", "sys", "audit", "auth", "cubbyhole", "identity"];
/// Records read per storage round trip at start-up.
const LOAD_PAGE: usize = 512;
/// A namespace's path, nested namespaces and all, stays short enough to be
/// a key prefix and a header.
const MAX_PATH_BYTES: usize = 512;

/// What is stored for a namespace (Vault's `NamespaceEntry` as
/// `sys/namespaces` shows it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NamespaceRecord {
    pub id: String,
    pub uuid: String,
    /// Full path with its trailing '/' ("team-a/prod/").
    pub path: String,
    #[serde(default)]
    pub custom_metadata: BTreeMap<String, String>,
    /// Being deleted: it serves nothing more, and reads show it tainted.
    #[serde(default)]
    pub tainted: bool,
}

impl NamespaceRecord {
    pub fn namespace(&self) -> Namespace {
        Namespace {
            id: self.id.clone(),
            path: self.path.clone(),
        }
    }

    /// As `sys/namespaces/:path` answers.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "uuid": self.uuid,
            "path": self.path,
            "custom_metadata": self.custom_metadata,
            "locked": false,
            "tainted": self.tainted,
        })
    }
}

/// Check one namespace name (a single path segment) as Vault does; the
/// errors are OpenBao's texts.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::bad("namespace name cannot be empty"));
    }
    if name.contains('/') {
        return Err(Error::bad("namespace name cannot contain /"));
    }
    if name == "." || name == ".." {
        return Err(Error::bad("relative paths not supported"));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(Error::bad(format!(
            "{name:?} contains space characters that cannot be used in a namespace name"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Error::bad(format!(
            "{name:?} contains characters that cannot be used in a namespace name (letters, digits, '-', '_' and '.' only)"
        )));
    }
    if RESERVED.contains(&name) {
        return Err(Error::bad(format!(
            "\"{name}/\" is a reserved path and cannot be used as a namespace name"
        )));
    }
    Ok(())
}

/// A namespace path as a client writes it (`X-Vault-Namespace: /team-a/prod`)
/// in the form the registry keys it by ("team-a/prod/"); None for the root.
pub fn normalize(path: &str) -> Option<String> {
    let trimmed = path.trim().trim_matches('/');
    (!trimmed.is_empty()).then(|| format!("{trimmed}/"))
}

/// Vault's short namespace ids: six random letters and digits.
fn new_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The registry: every namespace by path, kept in step with storage.
pub struct Namespaces {
    view: View,
    by_path: RwLock<BTreeMap<String, Arc<NamespaceRecord>>>,
    /// Serialises create, patch and delete (a check of the registry and
    /// the write that follows it see the same registry; the std lock
    /// above is never held across a storage call).
    changes: tokio::sync::Mutex<()>,
}

impl Namespaces {
    /// Every stored namespace, a page of records per storage read.
    pub async fn load(storage: &Storage) -> Result<Namespaces> {
        let view = View::new(storage.clone(), layout::NAMESPACES);
        let mut by_path = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = view.scan("", after.as_deref(), LOAD_PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let full = page.len() == LOAD_PAGE;
            for (key, value) in page {
                let record: NamespaceRecord = serde_json::from_slice(&value)
                    .map_err(|e| Error::internal(format!("corrupt namespace entry {key:?}: {e}")))?;
                by_path.insert(record.path.clone(), Arc::new(record));
            }
            if !full {
                break;
            }
        }
        Ok(Namespaces {
            view,
            by_path: RwLock::new(by_path),
            changes: tokio::sync::Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<NamespaceRecord>>> {
        self.by_path.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<NamespaceRecord>>> {
        self.by_path.write().unwrap_or_else(|p| p.into_inner())
    }

    /// How many namespaces there are (the root not counted).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The namespace a full path is in: the longest registered namespace
    /// path that prefixes it, else the root; None when that namespace is
    /// being deleted (tainted), which serves nothing any more.
    pub fn resolve(&self, path: &str) -> Option<Namespace> {
        let table = self.read();
        if table.is_empty() {
            return Some(Namespace::root());
        }
        match path.rmatch_indices('/').find_map(|(i, _)| table.get(&path[..=i])) {
            None => Some(Namespace::root()),
            Some(r) if r.tainted => None,
            Some(r) => Some(r.namespace()),
        }
    }

    /// The path of the namespace (tainted or not) that `path` is in: the
    /// longest registered prefix; "" for the root.
    pub fn owner(&self, path: &str) -> String {
        let table = self.read();
        path.rmatch_indices('/')
            .find_map(|(i, _)| table.get_key_value(&path[..=i]))
            .map(|(p, _)| p.clone())
            .unwrap_or_default()
    }

    /// The live (not tainted) namespace at exactly this path.
    pub fn get(&self, path: &str) -> Option<Arc<NamespaceRecord>> {
        self.read().get(path).filter(|r| !r.tainted).cloned()
    }

    /// The namespace at this path, tainted or not.
    pub fn get_any(&self, path: &str) -> Option<Arc<NamespaceRecord>> {
        self.read().get(path).cloned()
    }

    /// Is the namespace with this id still there (not deleted, not being
    /// deleted)? A token made in it is refused otherwise.
    pub fn is_live(&self, ns: &Namespace) -> bool {
        ns.is_root() || self.get(&ns.path).is_some_and(|r| r.id == ns.id)
    }

    /// Every namespace at or below `path` ("" for all), sorted by path.
    pub fn below(&self, path: &str) -> Vec<Arc<NamespaceRecord>> {
        self.read()
            .range::<str, _>((Bound::Included(path), Bound::Unbounded))
            .take_while(|(p, _)| p.starts_with(path))
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The namespaces directly inside `parent` ("" for the root's).
    pub fn children(&self, parent: &str) -> Vec<Arc<NamespaceRecord>> {
        self.below(parent)
            .into_iter()
            .filter(|r| {
                r.path
                    .strip_prefix(parent)
                    .is_some_and(|rest| !rest.is_empty() && rest.matches('/').count() == 1)
            })
            .collect()
    }

    /// The path of a namespace that a mount at `path` (full, with its
    /// trailing '/') would shadow or sit inside of: one at or below it.
    pub fn overlapping(&self, path: &str) -> Option<String> {
        self.read()
            .range::<str, _>((Bound::Included(path), Bound::Unbounded))
            .next()
            .filter(|(p, _)| p.starts_with(path))
            .map(|(p, _)| p.clone())
    }

    /// Create `name` inside `parent`, or (as Vault) update the custom
    /// metadata of the one already there. `free` checks the path against
    /// what else could be at it (a mount of the parent namespace); it runs
    /// inside the registry's change lock.
    pub async fn create(
        &self,
        parent: &Namespace,
        name: &str,
        custom_metadata: BTreeMap<String, String>,
        free: impl FnOnce(&str) -> Result<()>,
    ) -> Result<Arc<NamespaceRecord>> {
        check_name(name)?;
        let path = format!("{}{name}/", parent.path);
        if path.len() > MAX_PATH_BYTES {
            return Err(Error::bad(format!(
                "namespace path is too long: the limit is {MAX_PATH_BYTES} bytes"
            )));
        }
        let _changes = self.changes.lock().await;
        if !parent.is_root() && self.get(&parent.path).is_none() {
            return Err(Error::bad(format!("namespace {:?} is being deleted", parent.path)));
        }
        let record = match self.get_any(&path) {
            Some(existing) if existing.tainted => {
                return Err(Error::bad(format!("namespace {path:?} is being deleted")));
            }
            Some(existing) => NamespaceRecord {
                custom_metadata,
                ..(*existing).clone()
            },
            None => {
                free(&path)?;
                let mut id = new_id();
                while self.read().values().any(|r| r.id == id) {
                    id = new_id();
                }
                NamespaceRecord {
                    id,
                    uuid: uuid::Uuid::new_v4().to_string(),
                    path: path.clone(),
                    custom_metadata,
                    tainted: false,
                }
            }
        };
        self.store(record).await
    }

    /// Merge a JSON merge-patch of the custom metadata (a null value
    /// removes the key).
    pub async fn patch(
        &self,
        path: &str,
        patch: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Arc<NamespaceRecord>> {
        let _changes = self.changes.lock().await;
        let existing = self.get(path).ok_or_else(|| Error::bad("namespace not found"))?;
        let mut record = (*existing).clone();
        for (k, v) in patch {
            match v {
                serde_json::Value::Null => {
                    record.custom_metadata.remove(k);
                }
                serde_json::Value::String(s) => {
                    record.custom_metadata.insert(k.clone(), s.clone());
                }
                _ => return Err(Error::bad("custom_metadata values must be strings")),
            }
        }
        self.store(record).await
    }

    /// Mark a namespace as being deleted: from now on it serves nothing.
    /// Refused while it has children.
    pub async fn taint(&self, path: &str) -> Result<Option<Arc<NamespaceRecord>>> {
        let _changes = self.changes.lock().await;
        let Some(existing) = self.get_any(path) else {
            return Ok(None);
        };
        if self.below(path).len() > 1 {
            return Err(Error::bad("unable to delete namespace containing child namespaces"));
        }
        let record = NamespaceRecord {
            tainted: true,
            ..(*existing).clone()
        };
        self.store(record).await.map(Some)
    }

    /// Forget a namespace whose contents are gone.
    pub async fn remove(&self, record: &NamespaceRecord) -> Result<()> {
        let _changes = self.changes.lock().await;
        self.view.delete(&record.id).await?;
        self.write().remove(&record.path);
        Ok(())
    }

    async fn store(&self, record: NamespaceRecord) -> Result<Arc<NamespaceRecord>> {
        self.view.put_json(&record.id, &record).await?;
        let record = Arc::new(record);
        self.write().insert(record.path.clone(), record.clone());
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryBackend;

    async fn registry() -> (Namespaces, Storage) {
        let storage: Storage = Arc::new(MemoryBackend::new());
        (Namespaces::load(&storage).await.unwrap(), storage)
    }

    #[test]
    fn names_are_checked_as_vault_does() {
        for ok in ["team-a", "prod", "a.b", "x_1"] {
            check_name(ok).unwrap();
        }
        for (bad, text) in [
            ("a/b", "cannot contain /"),
            ("..", "relative paths"),
            ("bad name", "space characters"),
            ("root", "reserved path"),
            ("sys", "reserved path"),
            ("a*b", "cannot be used"),
            ("é", "cannot be used"),
            ("", "empty"),
        ] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains(text), "{bad}: {e}");
        }
        assert_eq!(normalize("/team-a/prod/"), Some("team-a/prod/".into()));
        assert_eq!(normalize("team-a"), Some("team-a/".into()));
        assert_eq!(normalize(" / "), None);
    }

    #[tokio::test]
    async fn requests_resolve_to_the_longest_namespace_and_records_survive_a_restart() {
        let (ns, storage) = registry().await;
        let a = ns
            .create(&Namespace::root(), "team-a", BTreeMap::new(), |_| Ok(()))
            .await
            .unwrap();
        let prod = ns
            .create(&a.namespace(), "prod", BTreeMap::new(), |_| Ok(()))
            .await
            .unwrap();
        assert_eq!(prod.path, "team-a/prod/");
        let resolve = |path: &str| ns.resolve(path).map(|n| n.path);
        assert_eq!(resolve("team-a/prod/db/creds/x").unwrap(), "team-a/prod/");
        assert_eq!(resolve("team-a/db/creds/x").unwrap(), "team-a/");
        assert_eq!(resolve("team-ab/db").unwrap(), "");
        assert_eq!(ns.resolve("db/creds/x"), Some(Namespace::root()));
        assert_eq!(ns.children("").len(), 1);
        assert_eq!(ns.children("team-a/").len(), 1);
        // Creating again keeps the id and takes the new metadata.
        let again = ns
            .create(
                &Namespace::root(),
                "team-a",
                BTreeMap::from([("k".into(), "v".into())]),
                |_| Ok(()),
            )
            .await
            .unwrap();
        assert_eq!(again.id, a.id);
        let reloaded = Namespaces::load(&storage).await.unwrap();
        assert_eq!(reloaded.get("team-a/").unwrap().custom_metadata["k"], "v");
        assert_eq!(reloaded.len(), 2);
        // A parent with children is not deleted; a tainted namespace
        // serves nothing.
        assert!(ns.taint("team-a/").await.unwrap_err().to_string().contains("child"));
        ns.taint("team-a/prod/").await.unwrap();
        assert_eq!(ns.resolve("team-a/prod/db"), None);
        assert_eq!(ns.resolve("team-a/db").unwrap().path, "team-a/");
        assert!(!ns.is_live(&prod.namespace()));
        ns.remove(&prod).await.unwrap();
        assert!(ns.get_any("team-a/prod/").is_none());
        assert!(
            Namespaces::load(&storage)
                .await
                .unwrap()
                .get_any("team-a/prod/")
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_patch_merges_and_refuses_what_is_not_a_string() {
        let (ns, _) = registry().await;
        ns.create(
            &Namespace::root(),
            "t",
            BTreeMap::from([("owner".into(), "x".into())]),
            |_| Ok(()),
        )
        .await
        .unwrap();
        let patch = serde_json::json!({"owner": null, "env": "test"});
        let r = ns.patch("t/", patch.as_object().unwrap()).await.unwrap();
        assert_eq!(r.custom_metadata, BTreeMap::from([("env".into(), "test".into())]));
        let bad = serde_json::json!({"n": 1});
        assert!(ns.patch("t/", bad.as_object().unwrap()).await.is_err());
        assert!(ns.patch("nosuch/", bad.as_object().unwrap()).await.is_err());
        assert_eq!(ns.get("t/").unwrap().custom_metadata.len(), 1, "nothing stored");
    }
}
