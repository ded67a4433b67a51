//! The token store: service tokens (Vault's `hvs.` tokens) other than the
//! root token. Storage never holds a token, only its salted hash (HMAC-SHA256
//! under a random salt kept in the store, so a copy of the storage cannot be
//! checked against guessed tokens without the salt, and the salt is under
//! the barrier like everything else). Keys, all below `sys/token/` (local:
//! tokens are this cluster's own):
//!
//! - `salt`: the salt (hex), made at the first start;
//! - `id/<hash>`: the token's entry;
//! - `accessor/<hash of the accessor>`: the hash of the token it names;
//! - `parent/<parent hash>/<child hash>`: the parent/child tree, so that
//!   revoking a token finds its children;
//! - `wrap/<hash>`: the response a response-wrapping token wraps (Vault
//!   keeps it in the token's cubbyhole), removed with the token.
//!
//! An entry and its indexes are written and deleted in one atomic batch.
//! A token's expiry is a lease in the expiration manager
//! (`auth/token/create/<hash>`), whose revocation revokes the token and its
//! children; the core routes it here.

use crate::error::{Error, Result};
use crate::storage::{View, Write};
use chrono::{DateTime, Utc};
use hmac::Mac;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const SALT: &str = "salt";
const ID: &str = "id/";
const ACCESSOR: &str = "accessor/";
const PARENT: &str = "parent/";
const WRAP: &str = "wrap/";

/// The prefix of a token's lease id in the expiration manager.
pub const LEASE_PREFIX: &str = "auth/token/create/";
/// The "mount" a token's lease names, so the core revokes it here.
pub const LEASE_MOUNT: &str = "auth/token/";

/// A stored token (never the token itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenEntry {
    /// The salted hash of the token: its key, and how children name it.
    pub hash: String,
    pub accessor: String,
    /// The parent's hash; empty for an orphan.
    #[serde(default)]
    pub parent: String,
    pub policies: Vec<String>,
    /// The path that created it (`auth/token/create`).
    pub path: String,
    #[serde(default)]
    pub meta: Map<String, Value>,
    pub display_name: String,
    /// Uses left; 0: unlimited.
    #[serde(default)]
    pub num_uses: i64,
    pub creation_time: DateTime<Utc>,
    /// The TTL it was created with, in seconds (0: none).
    pub creation_ttl: i64,
    #[serde(default)]
    pub explicit_max_ttl: i64,
    #[serde(default)]
    pub period: i64,
    pub renewable: bool,
    /// When it expires; None: never (a root-policy token without a TTL).
    pub expire_time: Option<DateTime<Utc>>,
    /// CIDR blocks it may be used from (empty: anywhere): an auth method's
    /// `token_bound_cidrs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound_cidrs: Vec<String>,
    /// The token role it was made against (empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// A batch token (`hvb.`): this entry travels inside the token, sealed
    /// ([`super::batch`]), and is never stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
    /// The namespace it was made in (both empty: the root namespace). Its
    /// policies are that namespace's, and it reaches nothing outside it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_path: String,
}

impl TokenEntry {
    /// The lease id of its expiry in the expiration manager, below its
    /// namespace (deleting the namespace revokes every lease below it).
    pub fn lease_id(&self) -> String {
        format!("{}{LEASE_PREFIX}{}", self.namespace_path, self.hash)
    }

    /// The namespace it was made in.
    pub fn namespace(&self) -> crate::logical::Namespace {
        match self.namespace_path.is_empty() {
            true => crate::logical::Namespace::root(),
            false => crate::logical::Namespace {
                id: self.namespace_id.clone(),
                path: self.namespace_path.clone(),
            },
        }
    }

    pub fn is_orphan(&self) -> bool {
        self.parent.is_empty()
    }

    /// A response-wrapping token: its only policy is the built-in
    /// `response-wrapping`.
    pub fn is_wrapping(&self) -> bool {
        matches!(self.policies.as_slice(), [p] if p == crate::core::policy_store::RESPONSE_WRAPPING)
    }

    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expire_time.is_some_and(|t| t <= now)
    }

    /// Usable now: not expired and not used up (a spent token is marked
    /// with -1 uses until its revocation removes it).
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        !self.expired(now) && self.num_uses >= 0
    }

    /// Seconds left (0 for a token without expiry, as Vault shows it).
    pub fn ttl(&self, now: DateTime<Utc>) -> i64 {
        self.expire_time.map_or(0, |t| (t - now).num_seconds().max(0))
    }
}

#[derive(Serialize, Deserialize)]
struct AccessorEntry {
    hash: String,
}

/// The token store over its storage view (`sys/token/`).
pub struct TokenStore {
    view: View,
    salt: Vec<u8>,
    /// Serialises the read-modify-write of a token's use count, so two
    /// requests cannot both spend its last use. Held only around that
    /// storage round trip; nothing else is locked inside it.
    uses: tokio::sync::Mutex<()>,
}

impl TokenStore {
    /// Open the store, making its salt at the first start.
    pub async fn open(view: View) -> Result<TokenStore> {
        let salt = match view.get(SALT).await? {
            Some(hex_salt) => {
                hex::decode(&hex_salt).map_err(|_| Error::internal("the token store's salt is corrupt"))?
            }
            None => {
                let salt: [u8; 32] = rand::random();
                view.put(SALT, hex::encode(salt).as_bytes()).await?;
                salt.to_vec()
            }
        };
        Ok(TokenStore {
            view,
            salt,
            uses: tokio::sync::Mutex::new(()),
        })
    }

    /// The salted hash of a token or an accessor.
    pub fn salted(&self, value: &str) -> String {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.salt)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Store a new token's entry with its indexes (one atomic batch).
    pub async fn create(&self, entry: &TokenEntry) -> Result<()> {
        let mut writes = vec![
            Write::Put(format!("{ID}{}", entry.hash), to_json(entry)?),
            Write::Put(
                format!("{ACCESSOR}{}", self.salted(&entry.accessor)),
                to_json(&AccessorEntry {
                    hash: entry.hash.clone(),
                })?,
            ),
        ];
        if !entry.parent.is_empty() {
            writes.push(Write::Put(
                format!("{PARENT}{}/{}", entry.parent, entry.hash),
                Vec::new(),
            ));
        }
        self.view.batch(writes).await?;
        Ok(())
    }

    /// The entry of the token with this hash.
    pub async fn get(&self, hash: &str) -> Result<Option<TokenEntry>> {
        if hash.is_empty() || hash.contains('/') {
            return Ok(None);
        }
        Ok(self.view.get_json(&format!("{ID}{hash}")).await?)
    }

    /// The entry of a token.
    pub async fn lookup(&self, token: &str) -> Result<Option<TokenEntry>> {
        if token.is_empty() {
            return Ok(None);
        }
        self.get(&self.salted(token)).await
    }

    /// The entry an accessor names.
    pub async fn by_accessor(&self, accessor: &str) -> Result<Option<TokenEntry>> {
        if accessor.is_empty() {
            return Ok(None);
        }
        let index: Option<AccessorEntry> = self
            .view
            .get_json(&format!("{ACCESSOR}{}", self.salted(accessor)))
            .await?;
        match index {
            Some(i) => self.get(&i.hash).await,
            None => Ok(None),
        }
    }

    /// Overwrite an entry (renewal).
    pub async fn update(&self, entry: &TokenEntry) -> Result<()> {
        Ok(self.view.put_json(&format!("{ID}{}", entry.hash), entry).await?)
    }

    /// Spend one use of a token with limited uses. Returns the entry as it
    /// was before this use, or None when it has no use left (or is gone);
    /// `Some` with `num_uses == 1` means this was the last use and the
    /// caller revokes it after the request.
    pub async fn use_once(&self, hash: &str) -> Result<Option<TokenEntry>> {
        let _one_at_a_time = self.uses.lock().await;
        let Some(mut entry) = self.get(hash).await? else {
            return Ok(None);
        };
        let before = entry.clone();
        match entry.num_uses {
            0 => return Ok(Some(before)),
            n if n < 0 => return Ok(None),
            n => entry.num_uses = n - 1,
        }
        // A spent token is marked -1 until its revocation removes it, so
        // no request can use it in between.
        if entry.num_uses == 0 {
            entry.num_uses = -1;
        }
        self.update(&entry).await?;
        Ok(Some(before))
    }

    /// The hash of every token in the store (disabling an auth method
    /// looks for the tokens issued through it).
    pub async fn hashes(&self) -> Result<Vec<String>> {
        Ok(self.view.list(ID).await?)
    }

    /// The hashes of a token's children.
    pub async fn children(&self, hash: &str) -> Result<Vec<String>> {
        Ok(self.view.list(&format!("{PARENT}{hash}/")).await?)
    }

    /// Remove one token's entry and indexes (not its children: see
    /// [`crate::core::Core::revoke_token`]). Removing a token already gone
    /// is not an error.
    pub async fn remove(&self, entry: &TokenEntry) -> Result<()> {
        let mut writes = vec![
            Write::Delete(format!("{ID}{}", entry.hash)),
            Write::Delete(format!("{ACCESSOR}{}", self.salted(&entry.accessor))),
        ];
        if !entry.parent.is_empty() {
            writes.push(Write::Delete(format!("{PARENT}{}/{}", entry.parent, entry.hash)));
        }
        if entry.is_wrapping() {
            writes.push(Write::Delete(format!("{WRAP}{}", entry.hash)));
        }
        self.view.batch(writes).await?;
        Ok(())
    }

    /// Keep the response a wrapping token wraps (its own JSON).
    pub async fn put_wrapped(&self, hash: &str, wrapped: &Value) -> Result<()> {
        Ok(self.view.put_json(&format!("{WRAP}{hash}"), wrapped).await?)
    }

    /// The response a wrapping token wraps, if any.
    pub async fn wrapped(&self, hash: &str) -> Result<Option<Value>> {
        Ok(self.view.get_json(&format!("{WRAP}{hash}")).await?)
    }

    /// Make a token's children orphans (revoke-orphan): each loses its
    /// parent, and the parent's index of them goes.
    pub async fn orphan_children(&self, hash: &str) -> Result<()> {
        for child in self.children(hash).await? {
            let mut writes = vec![Write::Delete(format!("{PARENT}{hash}/{child}"))];
            if let Some(mut entry) = self.get(&child).await? {
                entry.parent.clear();
                writes.push(Write::Put(format!("{ID}{child}"), to_json(&entry)?));
            }
            self.view.batch(writes).await?;
        }
        Ok(())
    }
}

/// A value's JSON bytes for a batch write.
fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::internal(format!("encoding a token entry: {e}")))
}

/// A new random token or accessor: `prefix` and 24 characters of base62.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", random_base62(24))
}

/// `len` random base62 characters (tokens, accessors, one-time passwords).
pub fn random_base62(len: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Backend, MemoryBackend};
    use std::sync::Arc;

    fn entry(store: &TokenStore, token: &str, parent: &str, uses: i64) -> TokenEntry {
        TokenEntry {
            hash: store.salted(token),
            // As Vault's, the entry holds its accessor (not secret: it
            // names the token without granting it); keys never do.
            accessor: format!("acc-{}", token.trim_start_matches("hvs.")),
            parent: parent.to_string(),
            policies: vec!["default".into()],
            path: "auth/token/create".into(),
            meta: Map::new(),
            display_name: "token".into(),
            num_uses: uses,
            creation_time: Utc::now(),
            creation_ttl: 60,
            explicit_max_ttl: 0,
            period: 0,
            renewable: true,
            expire_time: None,
            bound_cidrs: Vec::new(),
            role: String::new(),
            batch: false,
            namespace_id: String::new(),
            namespace_path: String::new(),
        }
    }

    async fn store() -> (Arc<MemoryBackend>, TokenStore) {
        let mem = Arc::new(MemoryBackend::new());
        let store = TokenStore::open(View::new(mem.clone(), "sys/token/")).await.unwrap();
        (mem, store)
    }

    #[tokio::test]
    async fn storage_holds_salted_hashes_never_the_token() {
        let (mem, store) = store().await;
        let parent = entry(&store, "hvs.parent", "", 0);
        store.create(&parent).await.unwrap();
        let child = entry(&store, "hvs.child", &parent.hash, 0);
        store.create(&child).await.unwrap();
        for key in mem.list("sys/token/id/").await.unwrap() {
            assert!(!key.contains("hvs."), "{key}");
        }
        for (key, value) in mem.scan("sys/token/", None, 100).await.unwrap() {
            let text = String::from_utf8_lossy(&value);
            assert!(!key.contains("hvs.") && !text.contains("hvs."), "{key}: {text}");
            assert!(!key.contains("acc-"), "accessors are keyed by their hash: {key}");
        }
        assert_eq!(store.lookup("hvs.child").await.unwrap().unwrap(), child);
        assert_eq!(store.by_accessor("acc-child").await.unwrap().unwrap(), child);
        assert_eq!(store.children(&parent.hash).await.unwrap(), vec![child.hash.clone()]);
        assert!(store.lookup("hvs.other").await.unwrap().is_none());
        assert!(store.lookup("").await.unwrap().is_none());
        // The salt survives a reopen: the same token finds its entry.
        let again = TokenStore::open(View::new(mem.clone(), "sys/token/")).await.unwrap();
        assert!(again.lookup("hvs.child").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn removing_a_token_removes_its_indexes_and_orphaning_keeps_children() {
        let (mem, store) = store().await;
        let parent = entry(&store, "hvs.p", "", 0);
        let child = entry(&store, "hvs.c", &parent.hash, 0);
        store.create(&parent).await.unwrap();
        store.create(&child).await.unwrap();
        store.orphan_children(&parent.hash).await.unwrap();
        assert!(store.children(&parent.hash).await.unwrap().is_empty());
        assert!(store.lookup("hvs.c").await.unwrap().unwrap().is_orphan());
        store.remove(&parent).await.unwrap();
        store
            .remove(&store.lookup("hvs.c").await.unwrap().unwrap())
            .await
            .unwrap();
        let left: Vec<String> = mem
            .scan("sys/token/", None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(left, vec!["sys/token/salt".to_string()]);
    }

    #[tokio::test]
    async fn the_last_use_is_spent_once_even_when_raced() {
        let (_mem, store) = store().await;
        let e = entry(&store, "hvs.u", "", 2);
        store.create(&e).await.unwrap();
        let store = Arc::new(store);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            let hash = e.hash.clone();
            tasks.push(tokio::spawn(async move { store.use_once(&hash).await.unwrap() }));
        }
        let mut granted = Vec::new();
        for t in tasks {
            if let Some(before) = t.await.unwrap() {
                granted.push(before.num_uses);
            }
        }
        granted.sort_unstable();
        assert_eq!(granted, vec![1, 2], "two uses granted, the last one marked");
        // Unlimited tokens are not written on use.
        let free = entry(&store, "hvs.free", "", 0);
        store.create(&free).await.unwrap();
        assert_eq!(store.use_once(&free.hash).await.unwrap().unwrap().num_uses, 0);
    }
}
