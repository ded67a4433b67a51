//! In-memory backend: the dev server's storage, and the reference behaviour
//! the persistent backends are tested against.

use super::{Backend, Result};
use std::collections::BTreeMap;
use std::sync::RwLock;

#[derive(Default)]
pub struct MemoryBackend {
    map: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held, keys and values: what storage growth tests measure.
    pub fn stored_bytes(&self) -> usize {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

#[async_trait::async_trait]
impl Backend for MemoryBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.map.read().unwrap_or_else(|p| p.into_inner()).get(key).cloned())
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.map.write().unwrap_or_else(|p| p.into_inner()).remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let below = map
            .range(prefix.to_string()..)
            .map(|(k, _)| k.as_str())
            .take_while(|k| k.starts_with(prefix));
        Ok(super::fold_names(prefix, below))
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        use std::ops::Bound;
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        Ok(map
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
