//! In-memory backend: the dev server's storage, and the reference behaviour
//! the persistent backends are tested against. It can be told to refuse
//! writes of chosen keys ([`MemoryBackend::refuse`]): the fault that tests
//! of the layers above (barrier, write-ahead log) and the batch conformance
//! check inject.

use super::{Backend, Result, StorageError, Write};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Default)]
pub struct MemoryBackend {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    map: BTreeMap<String, Vec<u8>>,
    /// Keys whose puts and deletes fail (fault injection).
    refused: BTreeSet<String>,
}

impl Inner {
    fn check(&self, key: &str) -> Result<()> {
        if self.refused.contains(key) {
            return Err(StorageError::Backend(format!("memory: writes of {key:?} are refused")));
        }
        Ok(())
    }
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes held, keys and values: what storage growth tests measure.
    pub fn stored_bytes(&self) -> usize {
        self.read().map.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// From now on a put or delete of `key`, and any batch that writes it,
    /// fails (a batch as a whole: nothing of it is stored).
    pub fn refuse(&self, key: &str) {
        self.write().refused.insert(key.to_string());
    }
}

#[async_trait::async_trait]
impl Backend for MemoryBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.read().map.get(key).cloned())
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        let mut inner = self.write();
        inner.check(key)?;
        inner.map.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut inner = self.write();
        inner.check(key)?;
        inner.map.remove(key);
        Ok(())
    }

    /// Under one lock: no reader sees part of the batch, and a refused
    /// write is found before anything is applied.
    async fn batch(&self, writes: Vec<Write>) -> Result<()> {
        let mut inner = self.write();
        for write in &writes {
            inner.check(write.key())?;
        }
        for write in writes {
            match write {
                Write::Put(key, value) => inner.map.insert(key, value),
                Write::Delete(key) => inner.map.remove(&key),
            };
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let inner = self.read();
        let below = inner
            .map
            .range(prefix.to_string()..)
            .map(|(k, _)| k.as_str())
            .take_while(|k| k.starts_with(prefix));
        Ok(super::fold_names(prefix, below))
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        use std::ops::Bound;
        let inner = self.read();
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        Ok(inner
            .map
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn list_shows_leaves_and_folders_once() {
        let b = MemoryBackend::new();
        for k in ["a/x", "a/y/1", "a/y/2", "a/z", "b"] {
            b.put(k, b"v").await.unwrap();
        }
        assert_eq!(b.list("a/").await.unwrap(), vec!["x", "y/", "z"]);
        assert_eq!(b.list("").await.unwrap(), vec!["a/", "b"]);
        assert!(b.list("c/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn view_confines_keys_and_walks() {
        let b: crate::storage::Storage = std::sync::Arc::new(MemoryBackend::new());
        let v = crate::storage::View::new(b.clone(), "logical/m1/");
        v.put("role/a", b"1").await.unwrap();
        v.put("role/b/c", b"2").await.unwrap();
        assert_eq!(b.get("logical/m1/role/a").await.unwrap().unwrap(), b"1");
        let mut all = v.walk("").await.unwrap();
        all.sort();
        assert_eq!(all, vec!["role/a", "role/b/c"]);
    }
}
