//! SQLite backend: the whole key space in one local file, for a single-node
//! server that must survive restarts without running a database. Also owns the
//! two helpers the SQL backends share: the range bound of a prefix and the
//! fold of a sorted key range into `list` names.

use super::{Backend, Result, StorageError, Write, fold, fold_names, prefix_upper_bound};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use std::path::Path;
use std::time::Duration;

pub struct SqliteBackend {
    pool: SqlitePool,
    /// Writes go to one writer task (group commit, see [`writer`]).
    writes: tokio::sync::mpsc::UnboundedSender<Job>,
}

/// Writes waiting for the writer task: one put or delete, or a batch, that
/// must be committed all together.
struct Pending {
    writes: Vec<Write>,
    done: tokio::sync::oneshot::Sender<Result<()>>,
}

/// What the writer task is asked to do.
enum Job {
    Write(Pending),
    /// Commit what came before, close the connection, stop.
    Close(tokio::sync::oneshot::Sender<()>),
}

/// Most writes committed together, and most rows in one statement.
const GROUP_MAX: usize = 256;

/// Group commit. SQLite has one writer at a time and, with synchronous=FULL,
/// every commit waits for an fsync. Writes from concurrent requests are
/// queued here and the writer task commits all that are waiting in ONE
/// transaction (one fsync), then answers each; a write returns only once it
/// is durable. If a group fails, its members are retried one by one, so one
/// bad write fails alone; a batch is one member, committed or not as a
/// whole.
///
/// The writer has a connection of its own, and a group is at most two
/// statements whatever its size (one multi-row upsert, one multi-key
/// delete), plus BEGIN/COMMIT when it holds both. The fsync is what a group
/// costs (docs/testing.md); the statements are kept few so that it is.
async fn writer(mut conn: SqliteConnection, mut queue: tokio::sync::mpsc::UnboundedReceiver<Job>) {
    let mut closing = None;
    // A member taken from the queue that did not fit in the last group.
    let mut carried: Option<Pending> = None;
    while closing.is_none() {
        let first = match carried.take() {
            Some(p) => p,
            None => match queue.recv().await {
                Some(Job::Write(p)) => p,
                Some(Job::Close(done)) => {
                    closing = Some(done);
                    break;
                }
                None => break,
            },
        };
        let mut size = first.writes.len();
        let mut group = vec![first];
        while size < GROUP_MAX {
            match queue.try_recv() {
                Ok(Job::Write(p)) if size + p.writes.len() > GROUP_MAX => {
                    carried = Some(p);
                    break;
                }
                Ok(Job::Write(p)) => {
                    size += p.writes.len();
                    group.push(p);
                }
                Ok(Job::Close(done)) => {
                    closing = Some(done);
                    break;
                }
                Err(_) => break,
            }
        }
        let writes: Vec<&Write> = group.iter().flat_map(|p| &p.writes).collect();
        if group.len() == 1 || commit(&mut conn, &writes).await.is_err() {
            for p in group {
                let result = commit(&mut conn, &p.writes.iter().collect::<Vec<_>>()).await;
                let _ = p.done.send(result);
            }
        } else {
            for p in group {
                let _ = p.done.send(Ok(()));
            }
        }
    }
    // Close was asked for while a member was carried: it came before the
    // close, so it is committed before stopping.
    if let Some(p) = carried {
        let result = commit(&mut conn, &p.writes.iter().collect::<Vec<_>>()).await;
        let _ = p.done.send(result);
    }
    let _ = conn.close().await;
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Commit `writes` (in queue order) atomically. Inside one transaction only
/// the last write to each key decides what is stored, so the group folds to
/// a set of upserts and a set of deletes of distinct keys: one statement
/// each (in chunks of [`GROUP_MAX`] rows for a larger batch), in a
/// transaction unless a single statement does it all.
async fn commit(conn: &mut SqliteConnection, writes: &[&Write]) -> Result<()> {
    let folded = fold(writes.iter().copied());
    let puts: Vec<(&str, &[u8])> = folded.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
    let deletes: Vec<&str> = folded.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| *k).collect();
    if deletes.is_empty() && puts.len() <= GROUP_MAX {
        return upsert(conn, &puts).await;
    }
    if puts.is_empty() && deletes.len() <= GROUP_MAX {
        return delete(conn, &deletes).await;
    }
    let mut tx = conn.begin().await.map_err(|e| err("begin", e))?;
    for chunk in puts.chunks(GROUP_MAX) {
        upsert(&mut tx, chunk).await?;
    }
    for chunk in deletes.chunks(GROUP_MAX) {
        delete(&mut tx, chunk).await?;
    }
    tx.commit().await.map_err(|e| err("commit", e))
}

/// One statement storing every pair (a single statement is atomic).
async fn upsert(conn: &mut SqliteConnection, puts: &[(&str, &[u8])]) -> Result<()> {
    if puts.is_empty() {
        return Ok(());
    }
    let rows = vec!["(?, ?)"; puts.len()].join(", ");
    let sql =
        format!("INSERT INTO kv (key, value) VALUES {rows} ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    let mut query = sqlx::query(&sql);
    for (key, value) in puts {
        query = query.bind(*key).bind(*value);
    }
    query.execute(&mut *conn).await.map_err(|e| err("put", e))?;
    Ok(())
}

/// One statement deleting every key.
async fn delete(conn: &mut SqliteConnection, keys: &[&str]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let list = vec!["?"; keys.len()].join(", ");
    let sql = format!("DELETE FROM kv WHERE key IN ({list})");
    let mut query = sqlx::query(&sql);
    for key in keys {
        query = query.bind(*key);
    }
    query.execute(&mut *conn).await.map_err(|e| err("delete", e))?;
    Ok(())
}

/// The database file is the server's alone: created 0600 (SQLite gives
/// its -wal and -shm files the database file's permissions), an existing
/// one with wider permissions narrowed to 0600, and a folder anyone may
/// write to refused (another user could swap the file).
fn private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let refuse = |what: String| StorageError::Backend(format!("sqlite open: {what}"));
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let meta = std::fs::metadata(folder).map_err(|e| refuse(format!("the folder {}: {e}", folder.display())))?;
    let mode = meta.permissions().mode();
    // World-writable without the sticky bit (/tmp has it: others cannot
    // replace a file they do not own there).
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(refuse(format!(
            "the folder {} is writable by every user (mode {:o}): give it to the server's user alone",
            folder.display(),
            mode & 0o7777
        )));
    }
    match std::fs::metadata(path) {
        Ok(file) => {
            let mode = file.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the storage file was readable by others: narrowed to 0600");
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| refuse(format!("narrowing {}'s permissions: {e}", path.display())))?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| refuse(format!("creating {}: {e}", path.display())))?;
        }
        Err(e) => return Err(refuse(format!("{}: {e}", path.display()))),
    }
    Ok(())
}

fn err(op: &str, e: sqlx::Error) -> StorageError {
    // sqlx's messages name the failing operation or constraint, never bound
    // values, so a secret cannot leak through here.
    StorageError::Backend(format!("sqlite {op}: {e}"))
}

impl SqliteBackend {
    /// Opens (creating if missing) the database file at `path`.
    pub async fn open(path: &Path) -> Result<Self> {
        private_file(path)?;
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
            .connect_with(options.clone())
            .await
            .map_err(|e| err("open", e))?;
        // WITHOUT ROWID stores rows in the primary-key b-tree itself: a key
        // lookup or range scan touches one tree, not an index plus the table.
        sqlx::query("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
            .execute(&pool)
            .await
            .map_err(|e| err("create table", e))?;
        // Every group size is a statement of its own text: keep them all
        // prepared (GROUP_MAX upserts and deletes, and the two of a group
        // retried write by write).
        let conn = options
            .statement_cache_capacity(2 * GROUP_MAX + 8)
            .connect()
            .await
            .map_err(|e| err("open", e))?;
        let (writes, queue) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(writer(conn, queue));
        Ok(SqliteBackend { pool, writes })
    }

    /// Queue writes for the writer task and wait until they are committed.
    async fn write(&self, writes: Vec<Write>) -> Result<()> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.writes
            .send(Job::Write(Pending { writes, done }))
            .map_err(|_| StorageError::Backend("sqlite: the writer has stopped".into()))?;
        wait.await
            .map_err(|_| StorageError::Backend("sqlite: the writer has stopped".into()))?
    }

    /// Closes every connection, so that the file can be reopened or removed.
    pub async fn close(&self) {
        let (done, closed) = tokio::sync::oneshot::channel();
        if self.writes.send(Job::Close(done)).is_ok() {
            let _ = closed.await;
        }
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
        self.write(vec![Write::Put(key.to_string(), value.to_vec())]).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.write(vec![Write::Delete(key.to_string())]).await
    }

    async fn batch(&self, writes: Vec<Write>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.write(writes).await
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

    /// The file and its write-ahead log are 0600; a wider existing file is
    /// narrowed; a folder every user may write to is refused.
    #[tokio::test]
    async fn the_files_are_the_servers_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("warden-perm-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let path = dir.join("warden.db");
        let db = SqliteBackend::open(&path).await.unwrap();
        db.put("k", b"v").await.unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join("warden.db-wal")), 0o600);
        db.close().await;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let db = SqliteBackend::open(&path).await.unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(db.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        db.close().await;
        let open = dir.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let refused = SqliteBackend::open(&open.join("w.db")).await.err().unwrap().to_string();
        assert!(refused.contains("writable by every user"), "{refused}");
        assert!(!open.join("w.db").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn upper_bound_is_the_next_string() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_upper_bound("a\u{7f}").as_deref(), Some("a\u{80}"));
        assert_eq!(prefix_upper_bound("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
    }

    fn scratch_file() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("warden-sqlite-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("t.db")
    }

    /// A group holding several writes to one key stores what the last of
    /// them says, as the writes one after the other would.
    #[tokio::test]
    async fn a_group_folds_to_the_last_write_of_each_key() {
        let path = scratch_file();
        let b = SqliteBackend::open(&path).await.unwrap();
        b.put("c", b"old").await.unwrap();
        let mut conn = SqliteConnectOptions::new().filename(&path).connect().await.unwrap();
        let put = |k: &str, v: &[u8]| Write::Put(k.to_string(), v.to_vec());
        let del = |k: &str| Write::Delete(k.to_string());
        let writes = [
            put("a", b"1"),
            del("a"),
            put("b", b"2"),
            put("b", b"3"),
            del("c"),
            put("c", b"4"),
            del("d"),
        ];
        commit(&mut conn, &writes.iter().collect::<Vec<_>>()).await.unwrap();
        conn.close().await.unwrap();
        assert_eq!(b.get("a").await.unwrap(), None);
        assert_eq!(b.get("b").await.unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(b.get("c").await.unwrap().as_deref(), Some(&b"4"[..]));
        b.close().await;
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// Many concurrent writers: every write is acknowledged and stored,
    /// whatever groups the writer task made of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_all_land() {
        let path = scratch_file();
        let b = std::sync::Arc::new(SqliteBackend::open(&path).await.unwrap());
        let tasks: Vec<_> = (0..400)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move {
                    b.put(&format!("k/{i:03}"), format!("v{i}").as_bytes()).await.unwrap();
                    if i % 4 == 0 {
                        b.delete(&format!("k/{i:03}")).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let names = b.list("k/").await.unwrap();
        assert_eq!(names.len(), 300);
        assert_eq!(b.get("k/001").await.unwrap().as_deref(), Some(&b"v1"[..]));
        assert_eq!(b.get("k/004").await.unwrap(), None);
        b.close().await;
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
