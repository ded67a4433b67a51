//! The write-ahead log of replicated writes, what performance replication
//! will ship to secondaries.
//!
//! Every key is either *local* or *replicated*, as its owner declares
//! ([`super::locality`]). [`Indexed`] wraps the barrier: a write of a
//! replicated key gets the next index of a monotonically increasing
//! sequence and a record `sys/wal/<index>` {index, op, key, value}, and the
//! record, the write itself and the deletion of records past the log's
//! bounds are committed in ONE batch ([`Backend::batch`]: a transaction on
//! SQLite and PostgreSQL). So the log and the data never disagree: there is
//! no record without its write nor a write without its record, and nothing
//! needs repairing at open. (Versions before the batch wrote the record,
//! then the value; a crash in between left a record whose write was never
//! applied, and every open applied the newest 32 records again. A log left
//! so by such a version keeps that record: the write it describes was never
//! acknowledged.) Writes of replicated keys are serialised, so index order
//! is apply order.
//!
//! The log keeps its newest records up to [`RETAIN`] records and
//! [`RETAIN_BYTES`] bytes, whichever bound is hit first (the newest record
//! always stays): a count alone let large values fill a dev server's memory
//! (the whole mount table was one value, logged again on every change).
//! A record carries the whole value, not a way to fetch it: a secondary
//! needs each index's value as it was then, not the key's latest. Values
//! are small now that each mount, config and role has its own key, and the
//! byte bound caps what large ones cost. A secondary that falls further
//! behind than the log reaches needs a full copy (as in Vault).

use super::layout;
use super::locality::{KeyClass, LocalStorage, Locality};
use super::{Backend, Result, Storage, StorageError, Write};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where the log lives.
pub const LOG_PREFIX: &str = layout::LOG;
/// The log's declaration: its records are this node's own (a secondary
/// keeps its own log of what it applied).
pub const LOCAL_STORAGE: LocalStorage = &[LOG_PREFIX];
/// Records kept for secondaries to catch up from.
pub const RETAIN: usize = 4096;
/// Bytes of records kept (keys and encoded records, before encryption).
pub const RETAIN_BYTES: usize = 8 << 20;
/// Records read per round trip when the log is measured at open.
const OPEN_PAGE: usize = 64;

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
    locality: Arc<Locality>,
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
    /// How many of the oldest records to drop once `added` (index, bytes)
    /// are appended, to fit the bounds while keeping the newest. Counted
    /// over the retained records followed by the added ones, without
    /// changing anything: the drop is part of the batch that appends, and
    /// only its success changes the state.
    fn overflow(&self, added: &[(u64, usize)]) -> usize {
        let total = self.retained.len() + added.len();
        let mut bytes = self.bytes + added.iter().map(|(_, size)| size).sum::<usize>();
        let mut sizes = self.retained.iter().chain(added).map(|(_, size)| *size);
        let mut dropped = 0;
        while total - dropped > 1 && (total - dropped > RETAIN || bytes > RETAIN_BYTES) {
            let Some(size) = sizes.next() else { break };
            bytes -= size;
            dropped += 1;
        }
        dropped
    }

    /// The indexes of the first `n` records, retained then added.
    fn oldest(&self, added: &[(u64, usize)], n: usize) -> Vec<u64> {
        self.retained
            .iter()
            .chain(added)
            .take(n)
            .map(|(index, _)| *index)
            .collect()
    }

    /// The batch that appended `added` and dropped `dropped` is committed.
    fn commit(&mut self, added: Vec<(u64, usize)>, dropped: usize) {
        for (index, size) in added {
            self.last = index;
            self.retained.push_back((index, size));
            self.bytes += size;
        }
        for _ in 0..dropped {
            if let Some((_, size)) = self.retained.pop_front() {
                self.bytes -= size;
            }
        }
    }
}

impl Indexed {
    /// Wrap `inner`, find the last index and measure the log (a page at a
    /// time), then trim it to the bounds in one batch (a log written by an
    /// earlier version may hold thousands of large records). Keys are
    /// classed by `locality`'s declarations.
    pub async fn open(inner: Storage, locality: Arc<Locality>) -> Result<Indexed> {
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
        let dropped = log.overflow(&[]);
        if dropped > 0 {
            let deletes = log.oldest(&[], dropped).into_iter().map(|i| Write::Delete(log_key(i)));
            inner.batch(deletes.collect()).await?;
            log.commit(Vec::new(), dropped);
        }
        Ok(Indexed {
            inner,
            locality,
            log: tokio::sync::Mutex::new(log),
        })
    }

    /// The declarations keys are classed by; the core registers each
    /// mount's engine here.
    pub fn locality(&self) -> &Arc<Locality> {
        &self.locality
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

    fn replicated(&self, key: &str) -> bool {
        self.locality.class_of(key) == KeyClass::Replicated
    }

    /// Commit `writes` with a record for each replicated one and the
    /// deletion of the records the log no longer keeps, in one batch.
    async fn logged(&self, writes: Vec<Write>) -> Result<()> {
        let mut log = self.log.lock().await;
        let mut batch = Vec::with_capacity(writes.len() * 2 + 1);
        let mut added = Vec::new();
        let mut index = log.last;
        for write in writes {
            if self.replicated(write.key()) {
                index += 1;
                let record = match &write {
                    Write::Put(key, value) => Record {
                        index,
                        op: Op::Put,
                        key: key.clone(),
                        value: Some(B64.encode(value)),
                    },
                    Write::Delete(key) => Record {
                        index,
                        op: Op::Delete,
                        key: key.clone(),
                        value: None,
                    },
                };
                let bytes = serde_json::to_vec(&record).map_err(|e| StorageError::Backend(e.to_string()))?;
                let key = log_key(index);
                added.push((index, key.len() + bytes.len()));
                batch.push(Write::Put(key, bytes));
            }
            batch.push(write);
        }
        let dropped = log.overflow(&added);
        batch.extend(
            log.oldest(&added, dropped)
                .into_iter()
                .map(|i| Write::Delete(log_key(i))),
        );
        self.inner.batch(batch).await?;
        log.commit(added, dropped);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Backend for Indexed {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        if self.replicated(key) {
            self.logged(vec![Write::Put(key.to_string(), value.to_vec())]).await
        } else {
            self.inner.put(key, value).await
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        if self.replicated(key) {
            self.logged(vec![Write::Delete(key.to_string())]).await
        } else {
            self.inner.delete(key).await
        }
    }

    /// A batch of local keys only goes straight down; one with a replicated
    /// key is logged (each replicated write gets its record, all in the
    /// same batch below).
    async fn batch(&self, writes: Vec<Write>) -> Result<()> {
        if writes.iter().any(|w| self.replicated(w.key())) {
            self.logged(writes).await
        } else {
            self.inner.batch(writes).await
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

    const CORE: LocalStorage = &[layout::EXPIRE, layout::TOKENS];

    fn locality() -> Arc<Locality> {
        Arc::new(Locality::new(&[CORE, LOCAL_STORAGE]))
    }

    async fn open(mem: &Arc<MemoryBackend>) -> Indexed {
        Indexed::open(mem.clone() as Storage, locality()).await.unwrap()
    }

    fn record(stored: Option<Vec<u8>>) -> Record {
        serde_json::from_slice(&stored.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn replicated_writes_get_increasing_indexes_and_local_ones_none() {
        let mem = Arc::new(MemoryBackend::new());
        let s = open(&mem).await;
        s.locality().register_mount("m", &[layout::engine::WAL]);
        s.put("core/mounts", b"a").await.unwrap();
        s.put("sys/expire/id/x", b"lease").await.unwrap();
        s.put("logical/m/wal/creds/x", b"pending").await.unwrap();
        s.put("logical/m/role/r", b"b").await.unwrap();
        s.delete("logical/m/role/r").await.unwrap();
        s.delete("logical/m/wal/creds/x").await.unwrap();
        assert_eq!(s.last_index().await, 3);
        let log = mem.list(LOG_PREFIX).await.unwrap();
        assert_eq!(log.len(), 3);
        let third = record(mem.get(&log_key(3)).await.unwrap());
        assert_eq!((third.op, third.key.as_str()), (Op::Delete, "logical/m/role/r"));

        // Reopened, the sequence goes on from where it was.
        let s = open(&mem).await;
        s.put("core/mounts", b"c").await.unwrap();
        assert_eq!(s.last_index().await, 4);
    }

    /// A batch: each replicated write gets its record, in order, and the
    /// local ones none; all of it is stored together.
    #[tokio::test]
    async fn a_batch_logs_each_replicated_write() {
        let mem = Arc::new(MemoryBackend::new());
        let s = open(&mem).await;
        s.put("logical/m/gone", b"x").await.unwrap();
        s.batch(vec![
            Write::Put("logical/m/a".into(), b"1".to_vec()),
            Write::Put("sys/expire/id/l".into(), b"lease".to_vec()),
            Write::Delete("logical/m/gone".into()),
            Write::Put("logical/m/a".into(), b"2".to_vec()),
        ])
        .await
        .unwrap();
        assert_eq!(s.last_index().await, 4);
        let mut ops = Vec::new();
        for i in 2..=4 {
            let r = record(mem.get(&log_key(i)).await.unwrap());
            ops.push((r.op, r.key));
        }
        assert_eq!(
            ops,
            [
                (Op::Put, "logical/m/a".to_string()),
                (Op::Delete, "logical/m/gone".to_string()),
                (Op::Put, "logical/m/a".to_string())
            ]
        );
        assert_eq!(mem.get("logical/m/a").await.unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(mem.get("logical/m/gone").await.unwrap(), None);
        assert!(mem.get("sys/expire/id/l").await.unwrap().is_some());
        // Local keys only: nothing logged.
        s.batch(vec![Write::Put("sys/token/t".into(), b"t".to_vec())])
            .await
            .unwrap();
        assert_eq!(s.last_index().await, 4);
    }

    /// The value and its record are one batch: when the batch fails,
    /// neither is stored, the index is not used up, and the log's
    /// accounting is unchanged.
    #[tokio::test]
    async fn a_failed_write_leaves_neither_value_nor_record() {
        let mem = Arc::new(MemoryBackend::new());
        let s = open(&mem).await;
        s.put("core/mounts/a", b"1").await.unwrap();
        let before = s.retained().await;
        // The record of the next write is refused: the value must not land.
        mem.refuse(&log_key(2));
        assert!(s.put("core/mounts/b", b"2").await.is_err());
        assert_eq!(mem.get("core/mounts/b").await.unwrap(), None);
        assert_eq!(s.last_index().await, 1);
        assert_eq!(s.retained().await, before);
        // The value is refused: its record must not land either.
        let mem = Arc::new(MemoryBackend::new());
        let s = open(&mem).await;
        mem.refuse("core/mounts/c");
        assert!(s.put("core/mounts/c", b"3").await.is_err());
        assert!(s.delete("core/mounts/c").await.is_err());
        assert!(mem.list(LOG_PREFIX).await.unwrap().is_empty());
        assert_eq!(s.last_index().await, 0);
        s.put("core/mounts/d", b"4").await.unwrap();
        assert_eq!(s.last_index().await, 1);
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
        let s = open(&mem).await;
        let value = vec![7u8; 64 << 10];
        for _ in 0..300 {
            s.put("logical/m/big", &value).await.unwrap();
        }
        let held = log_bytes(&mem).await;
        assert!(held <= RETAIN_BYTES, "the log holds {held} bytes");
        assert_eq!(s.retained().await.1, held, "the accounting matches what is stored");
        assert!(
            mem.get(&log_key(300)).await.unwrap().is_some(),
            "the newest record stays"
        );
        // Reopened, it goes on counting what it holds.
        let s = open(&mem).await;
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
        assert_eq!(s.retained().await.1, held);
    }

    /// A batch of more writes than the log keeps: the oldest of its own
    /// records are dropped in the same batch, and the newest stay.
    #[tokio::test]
    async fn a_batch_larger_than_the_log_keeps_its_newest_records() {
        let mem = Arc::new(MemoryBackend::new());
        let s = open(&mem).await;
        let writes = (0..RETAIN + 10)
            .map(|i| Write::Put(format!("logical/m/k{i:05}"), b"v".to_vec()))
            .collect();
        s.batch(writes).await.unwrap();
        assert_eq!(s.retained().await.0, RETAIN);
        assert_eq!(mem.list(LOG_PREFIX).await.unwrap().len(), RETAIN);
        assert!(mem.get(&log_key(10)).await.unwrap().is_none());
        assert!(mem.get(&log_key(11)).await.unwrap().is_some());
        assert_eq!(mem.list("logical/m/").await.unwrap().len(), RETAIN + 10);
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
        let s = open(&mem).await;
        assert_eq!(s.retained().await.0, RETAIN);
        assert!(mem.get(&log_key(100)).await.unwrap().is_none());
        assert!(mem.get(&log_key(101)).await.unwrap().is_some());
        s.put("logical/m/k", b"next").await.unwrap();
        assert_eq!(s.last_index().await, RETAIN as u64 + 101);
        assert_eq!(s.retained().await.0, RETAIN);
    }

    /// Opening writes nothing: with the record and its write in one batch
    /// there is nothing to repair, so the log is not replayed (earlier
    /// versions applied the newest 32 records again at every open). A
    /// record an earlier version left without its write (it crashed in
    /// between; the write was never acknowledged) stays as it is.
    #[tokio::test]
    async fn opening_applies_nothing_again() {
        let mem = Arc::new(MemoryBackend::new());
        let s = open(&mem).await;
        s.put("core/mounts", b"old").await.unwrap();
        let record = Record {
            index: 2,
            op: Op::Put,
            key: "core/mounts".into(),
            value: Some(B64.encode(b"never acknowledged")),
        };
        mem.put(&log_key(2), &serde_json::to_vec(&record).unwrap())
            .await
            .unwrap();
        let stored = mem.stored_bytes();
        let s = open(&mem).await;
        assert_eq!(mem.stored_bytes(), stored);
        assert_eq!(s.get("core/mounts").await.unwrap().as_deref(), Some(&b"old"[..]));
        assert_eq!(s.last_index().await, 2);
        s.put("core/mounts", b"new").await.unwrap();
        assert_eq!(s.last_index().await, 3);
    }
}
