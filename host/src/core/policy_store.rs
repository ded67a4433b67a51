//! The ACL policy store (Vault's `vault/policy_store.go`): named ACL
//! policies kept in storage at `sys/policy/<name>` ([`layout::ACL_POLICIES`],
//! replicated, as Vault keeps them), parsed by `warden-acl`, and the
//! compiled [`Acl`] of a token's policy set, cached.
//!
//! What Vault does, and so this store:
//! - names are sanitized (trimmed, lower-cased) on every call;
//! - `root` is built in: never stored, read as an empty policy, neither
//!   written nor deleted; an ACL of `root` alone allows everything;
//! - `default` is written at start-up when absent (then it is the
//!   operator's: editable, never deleted); `response-wrapping` is written
//!   when absent or different, cannot be written or deleted through the
//!   API, and is not listed;
//! - a text is parsed before anything is stored: a bad one is a 400 with the
//!   parser's words and storage is untouched;
//! - LIST shows the stored names sorted, then `root` last (Vault appends it).
//!
//! Caches: parsed policies by name, and compiled ACLs by policy set (the
//! sorted, deduplicated names). A write or delete of a policy drops it and
//! every ACL whose set names it; writes are serialised, and a reader that
//! loaded from storage before a write does not put what it read into the
//! cache after the write's invalidation (a generation count decides), so a
//! cache never outlives the storage it was read from.
//!
//! Enforcement on requests (the routing check) calls [`PolicyStore::acl`].

use crate::error::{Error, Result};
use crate::storage::{View, layout};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use warden_acl::{Acl, Policy, sanitize_name};

/// Vault's cap on cached policies (`policyCacheSize`); the ACL cache uses
/// the same bound. Past it a cache starts over (sets of policies are few).
const CACHE_SIZE: usize = 1024;

/// The built-in names (Vault's `defaultPolicyName`, `responseWrappingPolicyName`).
pub const DEFAULT: &str = "default";
pub const RESPONSE_WRAPPING: &str = "response-wrapping";
pub const ROOT: &str = "root";

/// Policies that cannot be written or deleted (Vault's `immutablePolicies`).
const IMMUTABLE: [&str; 2] = [ROOT, RESPONSE_WRAPPING];
/// Policies LIST does not show (Vault's `nonAssignablePolicies`).
const NON_ASSIGNABLE: [&str; 1] = [RESPONSE_WRAPPING];

/// The stored form: Vault's `PolicyEntry`, with its Go field names.
#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(rename = "Version", default)]
    version: i64,
    #[serde(rename = "DataVersion", default)]
    data_version: i64,
    #[serde(rename = "Raw")]
    raw: String,
    #[serde(rename = "Templated", default)]
    templated: bool,
    /// Vault's `PolicyTypeACL` (0).
    #[serde(rename = "Type", default)]
    kind: i64,
    #[serde(rename = "Modified", default, skip_serializing_if = "Option::is_none")]
    modified: Option<String>,
}

#[derive(Default)]
struct Cache {
    /// Bumped by every write and delete (under this lock).
    generation: u64,
    policies: HashMap<String, Arc<Policy>>,
    acls: HashMap<Vec<String>, Arc<Acl>>,
}

pub struct PolicyStore {
    view: View,
    root: Arc<Policy>,
    root_acl: Arc<Acl>,
    cache: RwLock<Cache>,
    /// Serialises writes and deletes (storage write plus invalidation).
    writes: tokio::sync::Mutex<()>,
}

impl PolicyStore {
    /// The store over `view` (the core builds it over `sys/policy/`).
    pub fn new(view: View) -> Self {
        PolicyStore {
            view,
            root: Arc::new(Policy::root()),
            root_acl: Arc::new(Acl::root()),
            cache: RwLock::new(Cache::default()),
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// Vault's `loadDefaultPolicies`, run as the core starts: `default` is
    /// written if absent (an edited one is kept), `response-wrapping` if
    /// absent or not the built-in text.
    pub async fn load_defaults(&self) -> Result<()> {
        if self.view.get(DEFAULT).await?.is_none() {
            self.store(&Policy::default_policy()).await?;
        }
        let wrapping = Policy::response_wrapping();
        let current = self.view.get_json::<Entry>(RESPONSE_WRAPPING).await?;
        if current.is_none_or(|e| e.raw != wrapping.text()) {
            self.store(&wrapping).await?;
        }
        Ok(())
    }

    /// The named policy; `root` is built in. A stored text that no longer
    /// parses is a server error.
    pub async fn get(&self, name: &str) -> Result<Option<Arc<Policy>>> {
        let name = sanitize_name(name);
        if name == ROOT {
            return Ok(Some(self.root.clone()));
        }
        let generation = {
            let cache = self.read_cache();
            if let Some(p) = cache.policies.get(&name) {
                return Ok(Some(p.clone()));
            }
            cache.generation
        };
        let Some(entry) = self.view.get_json::<Entry>(&name).await? else {
            return Ok(None);
        };
        let policy = Arc::new(Policy::parse(&name, &entry.raw).map_err(|e| Error::internal(e.to_string()))?);
        let mut cache = self.write_cache();
        if cache.generation == generation {
            if cache.policies.len() >= CACHE_SIZE {
                cache.policies.clear();
            }
            cache.policies.insert(name, policy.clone());
        }
        Ok(Some(policy))
    }

    /// Write the policy `name` from `text` (HCL or JSON). The text is
    /// parsed first: a bad one is a 400 with the parser's text and nothing
    /// is stored. `root` and `response-wrapping` cannot be written.
    pub async fn set(&self, name: &str, text: &str) -> Result<()> {
        let name = sanitize_name(name);
        if name.is_empty() {
            return Err(Error::bad("policy name missing"));
        }
        let policy = Policy::parse(&name, text).map_err(|e| Error::bad(e.to_string()))?;
        if IMMUTABLE.contains(&name.as_str()) {
            return Err(Error::bad(format!("cannot update {name:?} policy")));
        }
        self.store(&policy).await
    }

    /// Store a parsed policy (Vault's `setPolicyInternal`) and drop what
    /// the caches hold of it.
    async fn store(&self, policy: &Policy) -> Result<()> {
        let name = policy.name();
        let _serial = self.writes.lock().await;
        let data_version = self.view.get_json::<Entry>(name).await?.map_or(0, |e| e.data_version);
        let entry = Entry {
            version: 2,
            data_version: data_version + 1,
            raw: policy.text().to_string(),
            templated: policy.is_templated(),
            kind: 0,
            modified: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
        };
        self.view.put_json(name, &entry).await?;
        self.invalidate(name);
        Ok(())
    }

    /// Delete the policy `name`; deleting one that does not exist is not an
    /// error. `root`, `response-wrapping` and `default` cannot be deleted.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let name = sanitize_name(name);
        if IMMUTABLE.contains(&name.as_str()) {
            return Err(Error::bad(format!("cannot delete {name:?} policy")));
        }
        if name == DEFAULT {
            return Err(Error::bad("cannot delete default policy"));
        }
        let _serial = self.writes.lock().await;
        self.view.delete(&name).await?;
        self.invalidate(&name);
        Ok(())
    }

    /// The policy names as Vault's LIST gives them: the stored ones sorted
    /// (without `response-wrapping`), then `root`.
    pub async fn list(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .view
            .walk("")
            .await?
            .into_iter()
            .filter(|n| !NON_ASSIGNABLE.contains(&n.as_str()))
            .collect();
        names.sort();
        names.push(ROOT.to_string());
        Ok(names)
    }

    /// The compiled ACL of a token's policies, cached by the set of names.
    /// Names that are not policies are skipped (as Vault skips them). A
    /// set with `root` is the root ACL, as the router treats a token with
    /// the root policy (Vault would fail every request of such a token with
    /// "other policies present along with root": a 500 helps nobody).
    pub async fn acl(&self, names: &[String]) -> Result<Arc<Acl>> {
        let mut key: Vec<String> = names.iter().map(|n| sanitize_name(n)).collect();
        if key.iter().any(|k| k == ROOT) {
            return Ok(self.root_acl.clone());
        }
        key.sort();
        key.dedup();
        let generation = {
            let cache = self.read_cache();
            if let Some(acl) = cache.acls.get(&key) {
                return Ok(acl.clone());
            }
            cache.generation
        };
        let mut policies = Vec::with_capacity(key.len());
        for name in &key {
            if let Some(p) = self.get(name).await? {
                policies.push(p);
            }
        }
        let acl = Arc::new(Acl::new(policies.iter().map(|p| p.as_ref())).map_err(|e| Error::internal(e.to_string()))?);
        let mut cache = self.write_cache();
        if cache.generation == generation {
            if cache.acls.len() >= CACHE_SIZE {
                cache.acls.clear();
            }
            cache.acls.insert(key, acl.clone());
        }
        Ok(acl)
    }

    /// Drop the policy `name` and every ACL built with it; readers that
    /// loaded before this will not cache what they loaded.
    fn invalidate(&self, name: &str) {
        let mut cache = self.write_cache();
        cache.generation += 1;
        cache.policies.remove(name);
        cache.acls.retain(|set, _| !set.iter().any(|n| n == name));
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|p| p.into_inner())
    }

    /// How many ACLs are cached (tests).
    #[cfg(test)]
    fn cached_acls(&self) -> usize {
        self.read_cache().acls.len()
    }
}

/// The layout prefix the core builds the store over.
pub const PREFIX: &str = layout::ACL_POLICIES;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryBackend, Storage};
    use warden_acl::Request;

    async fn store() -> (PolicyStore, View) {
        let storage: Storage = Arc::new(MemoryBackend::new());
        let view = View::new(storage, PREFIX);
        let store = PolicyStore::new(view.clone());
        store.load_defaults().await.unwrap();
        (store, view)
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const READ_SECRET: &str = r#"path "secret/*" { capabilities = ["read", "list"] }"#;

    #[tokio::test]
    async fn written_policies_are_read_listed_and_deleted() {
        let (s, view) = store().await;
        assert_eq!(s.list().await.unwrap(), names(&["default", "root"]));
        s.set("  Reader ", READ_SECRET).await.unwrap();
        let p = s.get("READER").await.unwrap().unwrap();
        assert_eq!(p.name(), "reader");
        assert_eq!(p.text(), READ_SECRET);
        // Stored as Vault's PolicyEntry, under the sanitized name.
        let raw: serde_json::Value = view.get_json("reader").await.unwrap().unwrap();
        assert_eq!(raw["Raw"], READ_SECRET);
        assert_eq!(raw["Version"], 2);
        assert_eq!(raw["DataVersion"], 1);
        assert_eq!(raw["Type"], 0);
        s.set("zeta", READ_SECRET).await.unwrap();
        s.set("alpha", READ_SECRET).await.unwrap();
        assert_eq!(
            s.list().await.unwrap(),
            names(&["alpha", "default", "reader", "zeta", "root"]),
            "sorted, then root as Vault appends it; response-wrapping is not listed"
        );
        s.set("reader", r#"path "x" { capabilities = ["deny"] }"#)
            .await
            .unwrap();
        let raw: serde_json::Value = view.get_json("reader").await.unwrap().unwrap();
        assert_eq!(raw["DataVersion"], 2);
        s.delete("Reader").await.unwrap();
        assert!(s.get("reader").await.unwrap().is_none());
        s.delete("reader").await.unwrap(); // not there: not an error
        assert_eq!(s.list().await.unwrap(), names(&["alpha", "default", "zeta", "root"]));
    }

    #[tokio::test]
    async fn root_and_default_are_built_in() {
        let (s, view) = store().await;
        let root = s.get("root").await.unwrap().unwrap();
        assert!(root.is_root() && root.text().is_empty());
        assert!(view.get("root").await.unwrap().is_none(), "root is never stored");
        let default = s.get("default").await.unwrap().unwrap();
        assert_eq!(default.text(), warden_acl::DEFAULT_POLICY);
        let wrapping = s.get("response-wrapping").await.unwrap().unwrap();
        assert_eq!(wrapping.text(), warden_acl::RESPONSE_WRAPPING_POLICY);

        for (name, err) in [
            ("root", "cannot update \"root\" policy"),
            ("ROOT ", "cannot update \"root\" policy"),
            ("response-wrapping", "cannot update \"response-wrapping\" policy"),
        ] {
            let e = s.set(name, READ_SECRET).await.unwrap_err();
            assert!(matches!(e, Error::BadRequest(_)), "{e:?}");
            assert_eq!(e.to_string(), err);
        }
        for (name, err) in [
            ("root", "cannot delete \"root\" policy"),
            ("response-wrapping", "cannot delete \"response-wrapping\" policy"),
            ("Default", "cannot delete default policy"),
        ] {
            let e = s.delete(name).await.unwrap_err();
            assert!(matches!(e, Error::BadRequest(_)), "{e:?}");
            assert_eq!(e.to_string(), err);
        }
        assert!(s.get("default").await.unwrap().is_some());

        // default is editable, and a restart keeps the edit.
        s.set("default", READ_SECRET).await.unwrap();
        let again = PolicyStore::new(view.clone());
        again.load_defaults().await.unwrap();
        assert_eq!(again.get("default").await.unwrap().unwrap().text(), READ_SECRET);
        // response-wrapping is put back when it differs.
        view.put_json(
            "response-wrapping",
            &serde_json::json!({"Version": 2, "Raw": READ_SECRET, "Type": 0}),
        )
        .await
        .unwrap();
        let again = PolicyStore::new(view.clone());
        again.load_defaults().await.unwrap();
        assert_eq!(
            again.get("response-wrapping").await.unwrap().unwrap().text(),
            warden_acl::RESPONSE_WRAPPING_POLICY
        );
    }

    #[tokio::test]
    async fn a_bad_policy_stores_nothing() {
        let (s, view) = store().await;
        let bad = [
            ("syntax", "path \"x\" {"),
            ("capability", r#"path "x" { capabilities = ["fly"] }"#),
            ("key", r#"path "x" { capabilities = ["read"] nope = 1 }"#),
            ("wildcard", r#"path "x/+*" { capabilities = ["read"] }"#),
        ];
        for (name, text) in bad {
            let e = s.set(name, text).await.unwrap_err();
            assert!(matches!(e, Error::BadRequest(_)), "{name}: {e:?}");
            assert!(e.to_string().starts_with("failed to parse policy: "), "{name}: {e}");
            assert!(view.get(name).await.unwrap().is_none(), "{name} was stored");
        }
        let e = s
            .set("capability", r#"path "x" { capabilities = ["fly"] }"#)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to parse policy: path \"x\": invalid capability \"fly\""
        );
        // An existing policy is left as it was by a bad rewrite.
        s.set("kept", READ_SECRET).await.unwrap();
        assert!(s.set("kept", "path {").await.is_err());
        assert_eq!(s.get("kept").await.unwrap().unwrap().text(), READ_SECRET);
        // A bad text for root is a parse error first, as Vault parses first.
        let e = s.set("root", "path {").await.unwrap_err();
        assert!(e.to_string().starts_with("failed to parse policy: "), "{e}");
    }

    #[tokio::test]
    async fn acls_are_compiled_cached_and_dropped_on_write_and_delete() {
        let (s, _) = store().await;
        let root = s.acl(&names(&["root"])).await.unwrap();
        assert!(root.is_root());
        assert_eq!(root.capabilities("anything"), vec!["root"]);
        let with_others = s.acl(&names(&["root", "default"])).await.unwrap();
        assert!(with_others.is_root(), "root with others is root, as the router has it");

        s.set("reader", READ_SECRET).await.unwrap();
        let a = s.acl(&names(&["reader", "default", "missing"])).await.unwrap();
        assert_eq!(a.capabilities("secret/x"), vec!["list", "read"]);
        assert_eq!(a.capabilities("auth/token/lookup-self"), vec!["read"]);
        assert_eq!(a.capabilities("other"), vec!["deny"]);
        // The same set in another order, repeated, is the same cached ACL.
        let b = s
            .acl(&names(&["missing", "Default", "reader", "reader"]))
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let only_default = s.acl(&names(&["default"])).await.unwrap();
        assert_eq!(s.cached_acls(), 2);

        // A write drops every ACL naming the policy, and no other.
        s.set("reader", r#"path "secret/*" { capabilities = ["update"] }"#)
            .await
            .unwrap();
        assert_eq!(s.cached_acls(), 1);
        assert!(Arc::ptr_eq(&only_default, &s.acl(&names(&["default"])).await.unwrap()));
        let c = s.acl(&names(&["reader", "default", "missing"])).await.unwrap();
        assert_eq!(c.capabilities("secret/x"), vec!["update"]);
        assert!(
            c.allow(&Request::new(warden_acl::Operation::Update, "secret/x"))
                .allowed
        );

        // A policy that did not exist is picked up once written.
        s.set("missing", r#"path "other" { capabilities = ["read"] }"#)
            .await
            .unwrap();
        let d = s.acl(&names(&["reader", "default", "missing"])).await.unwrap();
        assert_eq!(d.capabilities("other"), vec!["read"]);

        // A delete drops them too.
        s.delete("reader").await.unwrap();
        let e = s.acl(&names(&["reader", "default", "missing"])).await.unwrap();
        assert_eq!(e.capabilities("secret/x"), vec!["deny"]);
        assert_eq!(e.capabilities("other"), vec!["read"]);

        // No policies at all: everything denied.
        assert_eq!(s.acl(&[]).await.unwrap().capabilities("secret/x"), vec!["deny"]);
    }

    /// Readers racing a writer never leave a cache behind the storage: once
    /// the writes are done, what the store answers is the last write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn caches_do_not_outlive_a_racing_write() {
        let (s, _) = store().await;
        let s = Arc::new(s);
        let text = |i: usize| format!(r#"path "v{i}" {{ capabilities = ["read"] }}"#);
        s.set("p", &text(0)).await.unwrap();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (s, done) = (s.clone(), done.clone());
                tokio::spawn(async move {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        s.acl(&names(&["p", "default"])).await.unwrap();
                        s.get("p").await.unwrap();
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for i in 1..=200 {
            s.set("p", &text(i)).await.unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            r.await.unwrap();
        }
        assert_eq!(s.get("p").await.unwrap().unwrap().text(), text(200));
        let acl = s.acl(&names(&["p", "default"])).await.unwrap();
        assert_eq!(acl.capabilities("v200"), vec!["read"]);
        assert_eq!(acl.capabilities("v199"), vec!["deny"]);
    }

    #[test]
    fn policies_are_replicated() {
        let l = crate::storage::locality::Locality::new(&[crate::core::LOCAL_STORAGE]);
        assert_eq!(
            l.class_of(&format!("{PREFIX}reader")),
            crate::storage::locality::KeyClass::Replicated
        );
    }
}
