//! PostgreSQL backend: the key space in one table of an external database,
//! for deployments that already run PostgreSQL and back it up.
//!
//! With HA on, the backend is *fenced* ([`PostgresBackend::fenced`]): every
//! write is one statement that first takes a KEY SHARE lock on the HA
//! lock row where it still names this node and the epoch it holds
//! ([`crate::ha::fence`]), and writes nothing when it does not. A takeover
//! locks that row FOR UPDATE (which waits for such writes and makes later
//! ones see the new epoch), so a node that lost the lock, however long it
//! was paused, can never write after another node took over.

use super::{Backend, Result, StorageError, Write};
use super::{fold, fold_names, prefix_upper_bound};
use crate::ha::fence::Fence;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;

#[derive(Clone)]
pub struct PostgresBackend {
    pool: PgPool,
    /// With HA on: this node's fencing token and the one statement every
    /// write goes through (see the module's comment).
    fence: Option<(Arc<Fence>, Arc<str>)>,
    /// The data table's name, quoted for SQL text.
    quoted_table: String,
    // The statements, built once: the table name cannot be a bound parameter.
    get_sql: String,
    put_sql: String,
    delete_sql: String,
    put_many_sql: String,
    delete_many_sql: String,
    list_sql: String,
    list_all_sql: String,
    scan_sql: String,
}

fn err(op: &str, e: sqlx::Error) -> StorageError {
    // sqlx's Display shows the server's message (not its DETAIL, which could
    // quote a row), and statement logging is off, so values never leak.
    StorageError::Backend(format!("postgres {op}: {e}"))
}

/// The options of a connection URL, checked as the storage needs them:
/// statement logging off, a login name SCRAM can carry.
pub(crate) fn connect_options(url: &str) -> Result<PgConnectOptions> {
    // The URL may hold a password: report that it is malformed, not what it is.
    let options = PgConnectOptions::from_str(url)
        .map_err(|_| StorageError::Backend("postgres: invalid connection URL".into()))?
        // Statement logging would print every query, with its timing, at info level.
        .disable_statement_logging();
    crate::imports::sql::check_pg_username(options.get_username())
        .map_err(|e| StorageError::Backend(format!("postgres: {e}")))?;
    Ok(options)
}

/// Only plain identifiers: the name is spliced into SQL text.
pub(crate) fn valid_table(table: &str) -> bool {
    !table.is_empty()
        && table.len() <= 63 // PostgreSQL's NAMEDATALEN - 1; longer names are silently truncated
        && !table.starts_with(|c: char| c.is_ascii_digit())
        && table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PostgresBackend {
    /// Connects to `url` and creates `table` if it does not exist.
    pub async fn connect(url: &str, table: &str) -> Result<Self> {
        if !valid_table(table) {
            return Err(StorageError::Backend(format!(
                "postgres: invalid table name {table:?} (letters, digits and '_' only)"
            )));
        }
        let options = connect_options(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // A broken connection fails its query and is dropped; pinging
            // before every acquire would double the round trips.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| err("connect", e))?;
        // Quoted so the name is used exactly as given (validated above).
        let t = format!("\"{table}\"");
        // COLLATE "C" orders keys bytewise, like Rust's String and the other backends.
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (key TEXT COLLATE \"C\" PRIMARY KEY, value BYTEA NOT NULL)"
        ))
        .execute(&pool)
        .await
        .map_err(|e| err("create table", e))?;
        Ok(PostgresBackend {
            pool,
            fence: None,
            quoted_table: t.clone(),
            get_sql: format!("SELECT value FROM {t} WHERE key = $1"),
            put_sql: format!(
                "INSERT INTO {t} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            delete_sql: format!("DELETE FROM {t} WHERE key = $1"),
            // Arrays, so that a batch of any size is one statement per kind
            // (and one statement text: prepared once per connection).
            put_many_sql: format!(
                "INSERT INTO {t} (key, value) SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            delete_many_sql: format!("DELETE FROM {t} WHERE key = ANY($1::text[])"),
            list_sql: format!("SELECT key FROM {t} WHERE key >= $1 AND key < $2 ORDER BY key"),
            list_all_sql: format!("SELECT key FROM {t} WHERE key >= $1 ORDER BY key"),
            scan_sql: format!("SELECT key, value FROM {t}"),
        })
    }

    /// The same storage with its writes fenced by `fence` against the HA
    /// lock table `ha_table` (created by [`crate::ha::lock::PgLock`] first).
    pub fn fenced(mut self, ha_table: &str, fence: Arc<Fence>) -> Result<Self> {
        if !valid_table(ha_table) {
            return Err(StorageError::Backend(format!(
                "postgres: invalid ha_table name {ha_table:?} (letters, digits and '_' only)"
            )));
        }
        let t = &self.quoted_table;
        // `fence` is materialised once; both writes wait for it, and the
        // count says whether the row still named this holder and epoch.
        let sql = format!(
            "WITH fence AS (SELECT 1 FROM \"{ha_table}\" WHERE ha_key = 'leader' AND ha_identity = $3 AND epoch = $4 FOR KEY SHARE), \
             w AS (INSERT INTO {t} (key, value) SELECT k, v FROM UNNEST($1::text[], $2::bytea[]) AS u(k, v) \
                   WHERE EXISTS (SELECT 1 FROM fence) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value), \
             d AS (DELETE FROM {t} WHERE key = ANY($5::text[]) AND EXISTS (SELECT 1 FROM fence)) \
             SELECT count(*) FROM fence"
        );
        self.fence = Some((fence, sql.into()));
        Ok(self)
    }

    /// The same storage without fencing: for `sys/init` of an HA cluster
    /// (nobody holds the lock before the cluster has keys) and reads.
    pub fn unfenced(&self) -> Self {
        PostgresBackend {
            fence: None,
            ..self.clone()
        }
    }

    /// One fenced write statement: puts and deletes land together, and
    /// only while this node holds the current epoch.
    async fn fenced_write(&self, fence: &Fence, sql: &str, puts: (&[&str], &[&[u8]]), deletes: &[&str]) -> Result<()> {
        let refused = || {
            StorageError::Backend(
                "postgres: this node is not the active node (it holds no current HA lock epoch): write refused".into(),
            )
        };
        let epoch = fence.epoch().ok_or_else(refused)?;
        let n: i64 = sqlx::query_scalar(sql)
            .bind(puts.0)
            .bind(puts.1)
            .bind(fence.holder())
            .bind(epoch)
            .bind(deletes)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| err("write", e))?;
        if n == 0 {
            fence.drop_epoch();
            return Err(refused());
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs one statement on the pool; for tests' cleanup (DROP TABLE).
    #[cfg(test)]
    pub(super) async fn execute(&self, sql: &str) -> Result<()> {
        sqlx::query(sql)
            .execute(&self.pool)
            .await
            .map_err(|e| err("execute", e))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Backend for PostgresBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar::<_, Vec<u8>>(&self.get_sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| err("get", e))
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        if let Some((fence, sql)) = &self.fence {
            return self.fenced_write(fence, sql, (&[key], &[value]), &[]).await;
        }
        sqlx::query(&self.put_sql)
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(|e| err("put", e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        if let Some((fence, sql)) = &self.fence {
            return self.fenced_write(fence, sql, (&[], &[]), &[key]).await;
        }
        sqlx::query(&self.delete_sql)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(|e| err("delete", e))?;
        Ok(())
    }

    /// Folded to the last write of each key (an upsert may not touch a row
    /// twice), in key order (concurrent batches lock rows in the same order,
    /// so they cannot deadlock), then one statement per kind: in a
    /// transaction when there are both, alone (atomic by itself) otherwise.
    async fn batch(&self, writes: Vec<Write>) -> Result<()> {
        let folded = fold(&writes);
        let (mut put_keys, mut values, mut delete_keys) = (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in folded {
            match value {
                Some(value) => {
                    put_keys.push(key);
                    values.push(value);
                }
                None => delete_keys.push(key),
            }
        }
        if let Some((fence, sql)) = &self.fence {
            if put_keys.is_empty() && delete_keys.is_empty() {
                return Ok(());
            }
            return self.fenced_write(fence, sql, (&put_keys, &values), &delete_keys).await;
        }
        let put = sqlx::query(&self.put_many_sql).bind(&put_keys).bind(&values);
        let delete = sqlx::query(&self.delete_many_sql).bind(&delete_keys);
        match (put_keys.is_empty(), delete_keys.is_empty()) {
            (true, true) => Ok(()),
            (false, true) => put.execute(&self.pool).await.map(drop).map_err(|e| err("put", e)),
            (true, false) => delete.execute(&self.pool).await.map(drop).map_err(|e| err("delete", e)),
            (false, false) => {
                let mut tx = self.pool.begin().await.map_err(|e| err("begin", e))?;
                put.execute(&mut *tx).await.map_err(|e| err("put", e))?;
                delete.execute(&mut *tx).await.map_err(|e| err("delete", e))?;
                tx.commit().await.map_err(|e| err("commit", e))
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        // A range scan, not LIKE: '%' and '_' in keys stay literal, and the
        // "C"-collated primary key index answers the range.
        let keys = match prefix_upper_bound(prefix) {
            Some(upper) => {
                sqlx::query_scalar::<_, String>(&self.list_sql)
                    .bind(prefix)
                    .bind(upper)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query_scalar::<_, String>(&self.list_all_sql)
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
        let sql = format!("{} WHERE {condition} ORDER BY key LIMIT {limit}", self.scan_sql);
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
    fn table_names_are_plain_identifiers() {
        assert!(valid_table("warden_kv"));
        assert!(valid_table("Kv2"));
        for bad in ["", "1kv", "kv;drop", "kv\"", "a b", "ké", &"x".repeat(64)] {
            assert!(!valid_table(bad), "{bad:?}");
        }
    }
}
