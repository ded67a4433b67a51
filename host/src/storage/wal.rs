//! Key classes and the write-ahead log of replicated writes, what
//! performance replication will ship to secondaries.
//!
//! Every key is either *local* (this node's own: leases, tokens, the
//! engines' crash-recovery records, the log itself) or *replicated*
//! (mounts, connection configs, roles, policies...). [`Indexed`] wraps the
//! barrier: a write of a replicated key first appends a record
//! `sys/wal/<index>` {index, op, key, value} carrying the next index of a
//! monotonically increasing sequence, then applies the write. Writes of
//! replicated keys are serialised, so index order is apply order; at open the
//! newest records are applied again (idempotent), which repairs a crash
//! between the append and the apply.
//!
//! The log keeps its newest records up to [`RETAIN`] records and
//! [`RETAIN_BYTES`] bytes, whichever bound is hit first (the newest record
//! always stays): a count alone let large values fill a dev server's memory
//! (the whole mount table was one value, logged again on every change).
//! A record carries the whole value, not a way to fetch it: repairing a
//! crash at open needs the value that was about to be written, and a
//! secondary needs each index's value as it was then, not the key's latest.
//! Values are small now that each mount, config and role has its own key,
//! and the byte bound caps what large ones cost. A secondary that falls
//! further behind than the log reaches needs a full copy (as in Vault).

use super::{Backend, Result, Storage, StorageError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// Where the log lives (itself a local key space).
pub const LOG_PREFIX: &str = "sys/wal/";
/// Records kept for secondaries to catch up from.
pub const RETAIN: usize = 4096;
/// Bytes of records kept (keys and encoded records, before encryption).
pub const RETAIN_BYTES: usize = 8 << 20;
/// Records read per round trip when the log is measured at open.
const OPEN_PAGE: usize = 64;
/// Records applied again at open.
const REPLAY: u64 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClass {
    Replicated,
    Local,
}

/// The class of a storage key. Local: leases (`sys/expire/`), tokens
/// (`sys/token/`), the log (`sys/wal/`), the seal's own keys (`core/seal-config`,
/// `core/root-key`, `core/keyring`), and every engine's crash-recovery records
/// (`logical/<mount>/wal/`). Everything else is replicated.
pub fn class_of(key: &str) -> KeyClass {
    const LOCAL_PREFIXES: [&str; 6] = [
        "sys/expire/",
        "sys/token/",
        LOG_PREFIX,
        "core/seal-config",
        "core/root-key",
        "core/keyring",
    ];
    if LOCAL_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return KeyClass::Local;
    }
    if let Some(rest) = key.strip_prefix("logical/")
        && let Some((_mount, inner)) = rest.split_once('/')
        && inner.starts_with("wal/")
    {
        return KeyClass::Local;
    }
    KeyClass::Replicated
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub index: u64,
    pub op: Op,
    pub key: String,
    /// Base64 of the value for a put.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Put,
    Delete,
}

fn log_key(index: u64) -> String {
    // Zero-padded so key order is index order.
    format!("{LOG_PREFIX}{index:020}")
}

pub struct Indexed {
    inner: Storage,
    /// The log's state; the lock also serialises replicated writes.
    log: tokio::sync::Mutex<Log>,
}

/// What the log holds: the last index and each retained record's size.
struct Log {
    last: u64,
    /// (index, bytes), oldest first.
    retained: std::collections::VecDeque<(u64, usize)>,
    bytes: usize,
}

impl Log {
    /// Drop the oldest records beyond the bounds, keeping the newest.
    async fn prune(&mut self, inner: &Storage) {
        while self.retained.len() > 1 && (self.retained.len() > RETAIN || self.bytes > RETAIN_BYTES) {
            let Some((index, size)) = self.retained.pop_front() else {
                break;
            };
            if let Err(e) = inner.delete(&log_key(index)).await {
                // The write itself succeeded; try again after the next one.
                self.retained.push_front((index, size));
                tracing::warn!(index, error = %e, "could not drop an old write-ahead record");
                break;
            }
            self.bytes -= size;
        }
    }
}

impl Indexed {
    /// Wrap `inner`, find the last index and re-apply the newest records.
    /// The log is read once to learn its size (a page at a time), and
    /// trimmed to the bounds (a log written by an earlier version may hold
    /// thousands of large records).
    pub async fn open(inner: Storage) -> Result<Indexed> {
        let mut log = Log {
            last: 0,
            retained: Default::default(),
            bytes: 0,
        };
        let mut after: Option<String> = None;
        loop {
            let page = inner.scan(LOG_PREFIX, after.as_deref(), OPEN_PAGE).await?;
            let Some((last_key, _)) = page.last() else { break };
            after = Some(last_key.clone());
            let full = page.len() == OPEN_PAGE;
            for (key, value) in page {
                // Keys are zero-padded indexes: key order is index order.
                if let Some(index) = key.strip_prefix(LOG_PREFIX).and_then(|n| n.parse::<u64>().ok()) {
                    let size = key.len() + value.len();
                    log.retained.push_back((index, size));
                    log.bytes += size;
                    log.last = log.last.max(index);
                }
            }
            if !full {
                break;
            }
        }
        let last = log.last;
        for index in last.saturating_sub(REPLAY - 1).max(1)..=last {
            let Some(bytes) = inner.get(&log_key(index)).await? else {
                continue;
            };
            let record: Record = serde_json::from_slice(&bytes)
                .map_err(|e| StorageError::Backend(format!("corrupt write-ahead record {index}: {e}")))?;
            apply(&inner, &record).await?;
        }
        log.prune(&inner).await;
        Ok(Indexed {
            inner,
            log: tokio::sync::Mutex::new(log),
        })
    }

    /// The index of the last replicated write.
    pub async fn last_index(&self) -> u64 {
        self.log.lock().await.last
    }

    /// Records and bytes the log holds now.
    pub async fn retained(&self) -> (usize, usize) {
        let log = self.log.lock().await;
        (log.retained.len(), log.bytes)
    }

    async fn logged(&self, op: Op, key: &str, value: Option<&[u8]>) -> Result<()> {
        let mut log = self.log.lock().await;
        let index = log.last + 1;
        let record = Record {
            index,
            op,
            key: key.to_string(),
            value: value.map(|v| B64.encode(v)),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| StorageError::Backend(e.to_string()))?;
        let key_of_record = log_key(index);
        self.inner.put(&key_of_record, &bytes).await?;
        log.last = index;
        let size = key_of_record.len() + bytes.len();
        log.retained.push_back((index, size));
        log.bytes += size;
        apply(&self.inner, &record).await?;
        log.prune(&self.inner).await;
        Ok(())
    }
}

async fn apply(inner: &Storage, record: &Record) -> Result<()> {
    match record.op {
        Op::Put => {
            let value = B64
                .decode(record.value.as_deref().unwrap_or(""))
                .map_err(|e| StorageError::Backend(format!("corrupt write-ahead record {}: {e}", record.index)))?;
            inner.put(&record.key, &value).await
        }
        Op::Delete => inner.delete(&record.key).await,
    }
}

#[async_trait::async_trait]
impl Backend for Indexed {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        match class_of(key) {
            KeyClass::Local => self.inner.put(key, value).await,
            KeyClass::Replicated => self.logged(Op::Put, key, Some(value)).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match class_of(key) {
            KeyClass::Local => self.inner.delete(key).await,
            KeyClass::Replicated => self.logged(Op::Delete, key, None).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix).await
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        self.inner.scan(prefix, after, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryBackend;
    use std::sync::Arc;

    #[test]
    fn keys_are_classed() {
        assert_eq!(class_of("sys/expire/id/db/creds/r/x"), KeyClass::Local);
        assert_eq!(class_of("sys/token/root"), KeyClass::Local);
        assert_eq!(class_of("logical/1234/wal/creds/x"), KeyClass::Local);
        assert_eq!(class_of("core/mounts"), KeyClass::Replicated);
        assert_eq!(class_of("logical/1234/config/pg"), KeyClass::Replicated);
        assert_eq!(class_of("logical/1234/role/wal"), KeyClass::Replicated);
        assert_eq!(class_of("sys/password_policy/p"), KeyClass::Replicated);
    }

    #[tokio::test]
    async fn replicated_writes_get_increasing_indexes_and_local_ones_none() {
        let mem: Storage = Arc::new(MemoryBackend::new());
        let s = Indexed::open(mem.clone()).await.unwrap();
        s.put("core/mounts", b"a").await.unwrap();
        s.put("sys/expire/id/x", b"lease").await.unwrap();
        s.put("logical/m/role/r", b"b").await.unwrap();
        s.delete("logical/m/role/r").await.unwrap();
        assert_eq!(s.last_index().await, 3);
        let log = mem.list(LOG_PREFIX).await.unwrap();
        assert_eq!(log.len(), 3);
        let third: Record = serde_json::from_slice(&mem.get(&log_key(3)).await.unwrap().unwrap()).unwrap();
        assert_eq!((third.op, third.key.as_str()), (Op::Delete, "logical/m/role/r"));

        // Reopened, the sequence goes on from where it was.
        let s = Indexed::open(mem.clone()).await.unwrap();
        s.put("core/mounts", b"c").await.unwrap();
        assert_eq!(s.last_index().await, 4);
    }

    /// Bytes the log holds in `mem`.
    async fn log_bytes(mem: &MemoryBackend) -> usize {
        mem.scan(LOG_PREFIX, None, usize::MAX)
            .await
            .unwrap()
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum()
    }

    /// Issue 11, item 9: the log kept its newest 4,096 records whatever
    /// their size, so large values filled memory (a dev server) or disk.
    /// Its bytes are bounded too, and the newest record always stays.
    #[tokio::test]
    async fn the_log_is_bounded_in_bytes() {
        let mem = Arc::new(MemoryBackend::new());
        let s = Indexed::open(mem.clone() as Storage).await.unwrap();
        let value = vec![7u8; 64 << 10];
        for _ in 0..300 {
            s.put("logical/m/big", &value).await.unwrap();
        }
        let held = log_bytes(&mem).await;
        assert!(held <= RETAIN_BYTES, "the log holds {held} bytes");
        assert!(
            mem.get(&log_key(300)).await.unwrap().is_some(),
            "the newest record stays"
        );
        // Reopened, it goes on counting what it holds.
        let s = Indexed::open(mem.clone() as Storage).await.unwrap();
        for _ in 0..300 {
            s.put("logical/m/big", &value).await.unwrap();
        }
        let held = log_bytes(&mem).await;
        assert!(held <= RETAIN_BYTES, "the log holds {held} bytes");
        // One value larger than the bound: its record is kept (it is the
        // newest), and the next write drops it.
        let huge = vec![1u8; 9 << 20];
        s.put("logical/m/huge", &huge).await.unwrap();
        assert!(mem.get(&log_key(601)).await.unwrap().is_some());
        s.put("logical/m/small", b"x").await.unwrap();
        assert!(mem.get(&log_key(601)).await.unwrap().is_none());
        let held = log_bytes(&mem).await;
        assert!(held <= RETAIN_BYTES, "the log holds {held} bytes");
    }

    /// A log left by an earlier version (or by a bound since lowered) is
    /// trimmed to the bounds at open, and the sequence goes on.
    #[tokio::test]
    async fn an_oversized_log_is_trimmed_at_open() {
        let mem = Arc::new(MemoryBackend::new());
        for index in 1..=(RETAIN as u64 + 100) {
            let record = Record {
                index,
                op: Op::Put,
                key: "logical/m/k".into(),
                value: Some(B64.encode(index.to_string())),
            };
            mem.put(&log_key(index), &serde_json::to_vec(&record).unwrap())
                .await
                .unwrap();
        }
        let s = Indexed::open(mem.clone() as Storage).await.unwrap();
        assert_eq!(s.retained().await.0, RETAIN);
        assert!(mem.get(&log_key(100)).await.unwrap().is_none());
        assert!(mem.get(&log_key(101)).await.unwrap().is_some());
        // The newest records were applied again.
        let last = (RETAIN as u64 + 100).to_string();
        assert_eq!(mem.get("logical/m/k").await.unwrap(), Some(last.into_bytes()));
        s.put("logical/m/k", b"next").await.unwrap();
        assert_eq!(s.last_index().await, RETAIN as u64 + 101);
        assert_eq!(s.retained().await.0, RETAIN);
    }

    #[tokio::test]
    async fn a_write_logged_but_not_applied_is_applied_at_open() {
        let mem: Storage = Arc::new(MemoryBackend::new());
        let s = Indexed::open(mem.clone()).await.unwrap();
        s.put("core/mounts", b"old").await.unwrap();
        // As if the server died after appending record 2 but before applying it.
        let record = Record {
            index: 2,
            op: Op::Put,
            key: "core/mounts".into(),
            value: Some(B64.encode(b"new")),
        };
        mem.put(&log_key(2), &serde_json::to_vec(&record).unwrap())
            .await
            .unwrap();
        let s = Indexed::open(mem.clone()).await.unwrap();
        assert_eq!(s.get("core/mounts").await.unwrap().as_deref(), Some(&b"new"[..]));
        assert_eq!(s.last_index().await, 2);
    }
}
