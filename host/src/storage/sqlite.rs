//! SQLite backend: the whole key space in one local file, for a single-node
//! server that must survive restarts without running a database. Also owns the
//! two helpers the SQL backends share: the range bound of a prefix and the
//! fold of a sorted key range into `list` names.

use super::{Backend, Result, StorageError, fold_names, prefix_upper_bound};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

pub struct SqliteBackend {
    pool: SqlitePool,
    /// Writes go to one writer task (group commit, see [`writer`]).
    writes: tokio::sync::mpsc::UnboundedSender<Pending>,
}

/// One write waiting for the writer task.
enum Write {
    Put(String, Vec<u8>),
    Delete(String),
}

struct Pending {
    write: Write,
    done: tokio::sync::oneshot::Sender<Result<()>>,
}

/// Most writes committed together.
const GROUP_MAX: usize = 256;

/// Group commit. SQLite has one writer at a time and, with synchronous=FULL,
/// every commit waits for an fsync (milliseconds). Writes from concurrent
/// requests are queued here and the writer task commits all that are
/// waiting in ONE transaction (one fsync), then answers each; a write
/// returns only once it is durable. If a group fails, its writes are
/// retried one by one, so one bad write fails alone.
async fn writer(pool: SqlitePool, mut queue: tokio::sync::mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match queue.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let writes: Vec<&Write> = group.iter().map(|p| &p.write).collect();
        if group.len() == 1 || commit(&pool, &writes).await.is_err() {
            for p in group {
                let result = commit(&pool, &[&p.write]).await;
                let _ = p.done.send(result);
            }
        } else {
            for p in group {
                let _ = p.done.send(Ok(()));
            }
        }
    }
}

async fn commit(pool: &SqlitePool, writes: &[&Write]) -> Result<()> {
    let mut tx = pool.begin().await.map_err(|e| err("begin", e))?;
    for write in writes {
        match write {
            Write::Put(key, value) => {
                sqlx::query(
                    "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(|e| err("put", e))?;
            }
            Write::Delete(key) => {
                sqlx::query("DELETE FROM kv WHERE key = ?1")
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| err("delete", e))?;
            }
        }
    }
    tx.commit().await.map_err(|e| err("commit", e))
}

fn err(op: &str, e: sqlx::Error) -> StorageError {
    // sqlx's messages name the failing operation or constraint, never bound
    // values, so a secret cannot leak through here.
    StorageError::Backend(format!("sqlite {op}: {e}"))
}

impl SqliteBackend {
    /// Opens (creating if missing) the database file at `path`.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL lets readers run while a write is in progress; FULL makes a
            // write that returned durable even on power loss.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Writers serialize on the file lock; wait for it instead of failing.
            .busy_timeout(Duration::from_secs(10))
            .disable_statement_logging();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| err("open", e))?;
        // WITHOUT ROWID stores rows in the primary-key b-tree itself: a key
        // lookup or range scan touches one tree, not an index plus the table.
        sqlx::query("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
            .execute(&pool)
            .await
            .map_err(|e| err("create table", e))?;
        let (writes, queue) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(writer(pool.clone(), queue));
        Ok(SqliteBackend { pool, writes })
    }

    /// Queue a write for the writer task and wait until it is committed.
    async fn write(&self, write: Write) -> Result<()> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.writes
            .send(Pending { write, done })
            .map_err(|_| StorageError::Backend("sqlite: the writer has stopped".into()))?;
        wait.await
            .map_err(|_| StorageError::Backend("sqlite: the writer has stopped".into()))?
    }

    /// Closes every connection, so that the file can be reopened or removed.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait::async_trait]
impl Backend for SqliteBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM kv WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| err("get", e))
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.write(Write::Put(key.to_string(), value.to_vec())).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.write(Write::Delete(key.to_string())).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        // A range scan rather than LIKE: '%' and '_' in keys are not
        // wildcards, and the primary key b-tree answers the range directly.
        // BINARY collation compares bytes, the same order as Rust's String.
        let keys = match prefix_upper_bound(prefix) {
            Some(upper) => {
                sqlx::query_scalar::<_, String>("SELECT key FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key")
                    .bind(prefix)
                    .bind(upper)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query_scalar::<_, String>("SELECT key FROM kv WHERE key >= ?1 ORDER BY key")
                    .bind(prefix)
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(|e| err("list", e))?;
        Ok(fold_names(prefix, keys.iter().map(String::as_str)))
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let (condition, lower, upper) = super::scan_query(prefix, after);
        let sql = format!("SELECT key, value FROM kv WHERE {condition} ORDER BY key LIMIT {limit}");
        let mut query = sqlx::query_as::<_, (String, Vec<u8>)>(&sql).bind(lower);
        if let Some(upper) = upper {
            query = query.bind(upper);
        }
        query.fetch_all(&self.pool).await.map_err(|e| err("scan", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_is_the_next_string() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_upper_bound("a\u{7f}").as_deref(), Some("a\u{80}"));
        assert_eq!(prefix_upper_bound("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
    }
}
