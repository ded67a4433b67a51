//! The storage trait: a small ordered key-value space that everything Warden
//! keeps goes through (mounts, configs, roles, leases, component data).
//! Backends implement [`Backend`]; nothing else touches bytes at rest.
//! Where each thing lives is [`layout`]; which keys stay on this node is
//! [`locality`], declared by the keys' owners.

pub mod barrier;
pub mod conformance;
pub mod layout;
pub mod locality;
mod memory;
pub(crate) mod postgres;
mod sqlite;
pub mod wal;

pub use memory::MemoryBackend;
pub use postgres::PostgresBackend;
pub use sqlite::SqliteBackend;

use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// One write of a [`Backend::batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put(String, Vec<u8>),
    Delete(String),
}

impl Write {
    pub fn key(&self) -> &str {
        match self {
            Write::Put(key, _) | Write::Delete(key) => key,
        }
    }
}

/// An ordered key-value store. Keys are '/'-separated paths as in Vault.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn put(&self, key: &str, value: &[u8]) -> Result<()>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Apply `writes` atomically: either every one of them is stored or,
    /// when this fails, none is (SQL backends: one transaction). They apply
    /// in order, so several writes of one key leave what the last one says.
    /// What needs two keys to change together (a value and its write-ahead
    /// record) uses this instead of two writes a crash could separate.
    async fn batch(&self, writes: Vec<Write>) -> Result<()>;
    /// The names directly below `prefix` (which ends in '/' or is empty):
    /// leaves as their last segment, folders as `segment/`, sorted, once each.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Up to `limit` entries whose key starts with `prefix` and sorts after
    /// `after` (None: from the start), in key order: one range read per page,
    /// for loading a large folder (every lease at start-up) without listing
    /// it level by level and reading each value on its own.
    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Vec<u8>)>>;

    /// How keys are classed, from when the core runs: a backend that keeps
    /// replicated and local rows apart (PostgreSQL) uses it; others ignore it.
    fn set_locality(&self, _locality: Arc<locality::Locality>) {}

    /// The PostgreSQL backend under this one, for performance replication
    /// (which needs PostgreSQL's logical replication); None for others.
    fn as_postgres(&self) -> Option<&PostgresBackend> {
        None
    }
}

/// The `WHERE` of a SQL backend's `scan` and its two bounds. One range
/// condition per side, so the primary key index seeks to the start of the
/// page (`key >= a AND key > b` would make SQLite scan from `a` on every
/// page: quadratic over a large folder). `$1` is the lower bound, `$2` the
/// upper one when there is one; `$N` placeholders work in both SQLite and
/// PostgreSQL.
pub(crate) fn scan_query(prefix: &str, after: Option<&str>) -> (String, String, Option<String>) {
    let (op, lower) = match after {
        Some(a) if a >= prefix => (">", a.to_string()),
        _ => (">=", prefix.to_string()),
    };
    let upper = prefix_upper_bound(prefix);
    let condition = match upper {
        Some(_) => format!("key {op} $1 AND key < $2"),
        None => format!("key {op} $1"),
    };
    (condition, lower, upper)
}

/// What a batch leaves, key by key, in key order: the last write of each
/// key (`Some(value)` stored, `None` deleted). SQL backends write the
/// result with one multi-row statement per kind, and key order makes
/// concurrent batches lock rows in the same order (no deadlock).
pub(crate) fn fold<'a>(
    writes: impl IntoIterator<Item = &'a Write>,
) -> std::collections::BTreeMap<&'a str, Option<&'a [u8]>> {
    let mut last = std::collections::BTreeMap::new();
    for write in writes {
        match write {
            Write::Put(key, value) => last.insert(key.as_str(), Some(value.as_slice())),
            Write::Delete(key) => last.insert(key.as_str(), None),
        };
    }
    last
}

pub type Storage = Arc<dyn Backend>;

/// A view of a storage confined below a prefix, so that the holder (a mount,
/// a component) can only reach its own keys.
#[derive(Clone)]
pub struct View {
    inner: Storage,
    prefix: String,
}

impl View {
    pub fn new(inner: Storage, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        debug_assert!(prefix.is_empty() || prefix.ends_with('/'));
        View { inner, prefix }
    }

    pub fn sub(&self, prefix: &str) -> View {
        View::new(self.inner.clone(), format!("{}{prefix}", self.prefix))
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get(&self.key(key)).await
    }

    pub async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.inner.put(&self.key(key), value).await
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(&self.key(key)).await
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(&self.key(prefix)).await
    }

    /// An atomic batch (see [`Backend::batch`]); keys are relative to this view.
    pub async fn batch(&self, writes: Vec<Write>) -> Result<()> {
        let writes = writes
            .into_iter()
            .map(|w| match w {
                Write::Put(key, value) => Write::Put(self.key(&key), value),
                Write::Delete(key) => Write::Delete(self.key(&key)),
            })
            .collect();
        self.inner.batch(writes).await
    }

    /// A page of entries below `prefix` (see [`Backend::scan`]); keys come
    /// back relative to this view, and `after` is relative too.
    pub async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let after = after.map(|a| self.key(a));
        let page = self.inner.scan(&self.key(prefix), after.as_deref(), limit).await?;
        Ok(page
            .into_iter()
            .map(|(k, v)| (k[self.prefix.len()..].to_string(), v))
            .collect())
    }

    /// Every leaf key below `prefix`, relative to this view, depth first.
    pub async fn walk(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![prefix.to_string()];
        while let Some(dir) = stack.pop() {
            for name in self.list(&dir).await? {
                let full = format!("{dir}{name}");
                if name.ends_with('/') {
                    stack.push(full);
                } else {
                    out.push(full);
                }
            }
        }
        Ok(out)
    }

    /// Read and decode a JSON value.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StorageError::Backend(format!("corrupt entry {key:?}: {e}"))),
        }
    }

    /// Encode and write a JSON value.
    pub async fn put_json<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| StorageError::Backend(format!("encoding {key:?}: {e}")))?;
        self.put(key, &bytes).await
    }
}

/// The smallest string greater than every string that starts with `prefix`,
/// or None when there is none (the empty prefix, or one made only of
/// `char::MAX`). UTF-8 byte order equals code point order, so replacing the
/// last character by its successor gives a bound that is still valid UTF-8
/// (bumping the last byte could produce an invalid sequence).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'), // skip the surrogate range
            c => char::from_u32(c + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
        // `last` was char::MAX: no successor, carry into the previous char.
    }
    None
}

/// Folds sorted keys below `prefix` into the names directly below it, as
/// every backend's `list` answers: leaves as their last segment, folders as
/// `segment/`, each once.
pub(crate) fn fold_names<'a>(prefix: &str, keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else { continue };
        let name = match rest.find('/') {
            Some(i) => &rest[..=i],
            None => rest,
        };
        // Keys are sorted, so a folder's entries are adjacent.
        if out.last().map(String::as_str) != Some(name) {
            out.push(name.to_string());
        }
    }
    out
}
