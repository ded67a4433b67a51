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
//!
//! Replicated and local data are kept apart in the table itself, for
//! performance replication on PostgreSQL's logical replication (issue 18):
//! once the core runs, each write is classed by [`Locality`] (the keys'
//! owners' declarations), and a replicated row carries `replicated = true`,
//! a `wal_index` from the table's sequence and a `leaf_hash` (sha256 of the
//! key, a zero byte and the ciphertext), computed by PostgreSQL in the same
//! statement. A publication can then filter on `replicated`, and the
//! database computes the highest index ([`PostgresBackend::last_wal`]) and
//! the root over the leaf hashes ([`PostgresBackend::merkle_root`]) that
//! two sides compare. Local rows carry neither.

use super::locality::{KeyClass, Locality};
use super::{Backend, Result, StorageError, Write};
use super::{fold, fold_names, prefix_upper_bound};
use crate::ha::fence::Fence;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

#[derive(Clone)]
pub struct PostgresBackend {
    pool: PgPool,
    /// With HA on: this node's fencing token and the one statement every
    /// write goes through (see the module's comment).
    fence: Option<(Arc<Fence>, Arc<str>)>,
    /// The data table's name, quoted for SQL text.
    quoted_table: String,
    /// Where the database is (what a secondary subscribes to).
    options: PgConnectOptions,
    /// Its sequence of WAL indexes, quoted.
    quoted_seq: String,
    /// How keys are classed, once the core runs (shared by the fenced and
    /// unfenced handles of one storage). Before that every write is of
    /// the node's own keys: local.
    locality: Arc<RwLock<Option<Arc<Locality>>>>,
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
            .connect_with(options.clone())
            .await
            .map_err(|e| err("connect", e))?;
        // Quoted so the name is used exactly as given (validated above).
        let t = format!("\"{table}\"");
        let seq = format!("\"{table}_wal\"");
        create_schema(&pool, table, &t, &seq).await?;
        Ok(PostgresBackend {
            pool,
            fence: None,
            quoted_table: t.clone(),
            quoted_seq: seq.clone(),
            options,
            locality: Arc::default(),
            get_sql: format!("SELECT value FROM {t} WHERE key = $1"),
            put_sql: format!(
                "INSERT INTO {t} (key, value, replicated, wal_index, leaf_hash) \
                 SELECT k, v, r, {} FROM (VALUES ($1::text, $2::bytea, $3::bool)) AS u(k, v, r) {UPSERT}",
                replicated_columns(&seq)
            ),
            delete_sql: format!("DELETE FROM {t} WHERE key = $1"),
            // Arrays, so that a batch of any size is one statement per kind
            // (and one statement text: prepared once per connection).
            put_many_sql: format!(
                "INSERT INTO {t} (key, value, replicated, wal_index, leaf_hash) \
                 SELECT k, v, r, {} FROM UNNEST($1::text[], $2::bytea[], $3::bool[]) AS u(k, v, r) {UPSERT}",
                replicated_columns(&seq)
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
        let seq = &self.quoted_seq;
        // `fence` is materialised once; both writes wait for it, and the
        // count says whether the row still named this holder and epoch.
        let sql = format!(
            "WITH fence AS (SELECT 1 FROM \"{ha_table}\" WHERE ha_key = 'leader' AND ha_identity = $3 AND epoch = $4 FOR KEY SHARE), \
             w AS (INSERT INTO {t} (key, value, replicated, wal_index, leaf_hash) \
                   SELECT k, v, r, {} FROM UNNEST($1::text[], $2::bytea[], $6::bool[]) AS u(k, v, r) \
                   WHERE EXISTS (SELECT 1 FROM fence) {UPSERT}), \
             d AS (DELETE FROM {t} WHERE key = ANY($5::text[]) AND EXISTS (SELECT 1 FROM fence)) \
             SELECT count(*) FROM fence",
            replicated_columns(seq)
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
            .bind(self.classes(puts.0))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| err("write", e))?;
        if n == 0 {
            fence.drop_epoch();
            return Err(refused());
        }
        Ok(())
    }

    /// Class writes from now on with `locality` (the core's).
    pub fn set_locality(&self, locality: Arc<Locality>) {
        *self.locality.write().unwrap_or_else(|p| p.into_inner()) = Some(locality);
    }

    /// Whether each key is replicated.
    fn classes<K: AsRef<str>>(&self, keys: &[K]) -> Vec<bool> {
        let locality = self.locality.read().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .map(|k| {
                locality
                    .as_ref()
                    .is_some_and(|l| l.class_of(k.as_ref()) == KeyClass::Replicated)
            })
            .collect()
    }

    /// The highest WAL index of the replicated rows (0: none).
    pub async fn last_wal(&self) -> Result<i64> {
        sqlx::query_scalar::<_, i64>(&format!(
            "SELECT COALESCE(max(wal_index), 0)::bigint FROM {} WHERE replicated",
            self.quoted_table
        ))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| err("last wal", e))
    }

    /// The root over the replicated rows' leaf hashes, in key order
    /// (sha256, hex), computed by the database: equal on two sides that
    /// hold the same replicated rows.
    pub async fn merkle_root(&self) -> Result<String> {
        sqlx::query_scalar::<_, String>(&format!(
            "SELECT encode(sha256(COALESCE(string_agg(leaf_hash, ''::bytea ORDER BY key), ''::bytea)), 'hex') \
             FROM {} WHERE replicated",
            self.quoted_table
        ))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| err("merkle root", e))
    }

    /// What a performance primary needs of the database: `wal_level =
    /// logical`, and a login that may publish and create replication
    /// logins (superuser; from PostgreSQL 16, REPLICATION and CREATEROLE).
    /// The reason it cannot, or None.
    pub async fn replication_unfit(&self) -> Result<Option<String>> {
        let wal_level: String = sqlx::query_scalar("SELECT current_setting('wal_level')")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| err("wal_level", e))?;
        if wal_level != "logical" {
            return Ok(Some(format!(
                "the storage database has wal_level = {wal_level}; performance replication needs wal_level = logical (set it in postgresql.conf and restart PostgreSQL)"
            )));
        }
        let (superuser, replication, createrole, version): (bool, bool, bool, i32) = sqlx::query_as(
            "SELECT rolsuper, rolreplication, rolcreaterole, current_setting('server_version_num')::int \
             FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| err("role attributes", e))?;
        // Each secondary gets a login with REPLICATION: before PostgreSQL
        // 16 only a superuser may create one.
        let may_publish = superuser || (version >= 160_000 && replication && createrole);
        if !may_publish {
            return Ok(Some(
                "the storage login may not create the secondaries' replication logins: it must be a superuser (PostgreSQL 16 and later: REPLICATION and CREATEROLE are enough)"
                    .into(),
            ));
        }
        Ok(None)
    }

    /// The database's host, port and name, as this node reaches it.
    pub fn location(&self) -> (String, u16, String) {
        (
            self.options.get_host().to_string(),
            self.options.get_port(),
            self.options.get_database().unwrap_or_default().to_string(),
        )
    }

    /// Publish the replicated rows to one secondary: a publication of the
    /// table filtered on `replicated`, and a login of its own that may
    /// stream it (REPLICATION) and read the table (the initial copy). One
    /// transaction: both exist or neither. `password` is made by Warden
    /// (letters and digits), never the caller's.
    pub async fn publish(&self, publication: &str, login: &str, password: &str) -> Result<()> {
        for name in [publication, login] {
            if !valid_table(name) {
                return Err(StorageError::Backend(format!("postgres: invalid name {name:?}")));
            }
        }
        if !password.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(StorageError::Backend("postgres: invalid generated password".into()));
        }
        let t = &self.quoted_table;
        let mut tx = self.pool.begin().await.map_err(|e| err("begin", e))?;
        for sql in [
            format!("CREATE PUBLICATION \"{publication}\" FOR TABLE {t} WHERE (replicated)"),
            format!("CREATE ROLE \"{login}\" WITH LOGIN REPLICATION PASSWORD '{password}'"),
            format!("GRANT SELECT ON {t} TO \"{login}\""),
        ] {
            sqlx::query(&sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| err("publish", e))?;
        }
        tx.commit().await.map_err(|e| err("commit", e))
    }

    /// Cut one secondary off at once: its publication and login go, its
    /// streaming connections are ended and its replication slot (named as
    /// the publication) is dropped. What is already gone is no error.
    pub async fn unpublish(&self, publication: &str, login: &str) -> Result<()> {
        for name in [publication, login] {
            if !valid_table(name) {
                return Err(StorageError::Backend(format!("postgres: invalid name {name:?}")));
            }
        }
        let t = &self.quoted_table;
        sqlx::raw_sql(&format!("DROP PUBLICATION IF EXISTS \"{publication}\""))
            .execute(&self.pool)
            .await
            .map_err(|e| err("unpublish", e))?;
        match sqlx::raw_sql(&format!("REVOKE ALL ON {t} FROM \"{login}\""))
            .execute(&self.pool)
            .await
        {
            Ok(_) => {}
            // The login is gone already (a revoke repeated).
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42704") => {}
            Err(e) => return Err(err("unpublish", e)),
        }
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
            .bind(login)
            .execute(&self.pool)
            .await
            .map_err(|e| err("unpublish", e))?;
        // A terminated walsender releases its slot a moment later.
        for _ in 0..50 {
            let dropped: Option<bool> = sqlx::query_scalar(
                "SELECT CASE WHEN active THEN false ELSE pg_drop_replication_slot(slot_name) IS NOT NULL END \
                 FROM pg_replication_slots WHERE slot_name = $1",
            )
            .bind(publication)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| err("drop slot", e))?;
            if dropped != Some(false) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        sqlx::raw_sql(&format!("DROP ROLE IF EXISTS \"{login}\""))
            .execute(&self.pool)
            .await
            .map_err(|e| err("drop login", e))?;
        Ok(())
    }

    /// When a streaming connection of `login` last replied (None: none is
    /// connected).
    pub async fn stream_of(&self, login: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let secs = sqlx::query_scalar::<_, Option<f64>>(
            "SELECT extract(epoch FROM max(COALESCE(reply_time, backend_start)))::float8 \
             FROM pg_stat_replication WHERE usename = $1",
        )
        .bind(login)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| err("replication status", e))?;
        // An out-of-range time reads as "not connected" rather than panicking.
        Ok(secs.and_then(|s| chrono::DateTime::from_timestamp_millis((s * 1000.0) as i64)))
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

/// The upsert of every write: a row takes its new class with its value.
const UPSERT: &str = "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, replicated = EXCLUDED.replicated, \
                      wal_index = EXCLUDED.wal_index, leaf_hash = EXCLUDED.leaf_hash";

/// `wal_index, leaf_hash` of a row `u(k, v, r)`: set for a replicated row
/// (the next index of `seq`; sha256 of key, a zero byte, ciphertext), null
/// for a local one.
fn replicated_columns(seq: &str) -> String {
    format!(
        "CASE WHEN r THEN nextval('{seq}') END, \
         CASE WHEN r THEN sha256(convert_to(k, 'UTF8') || '\\x00'::bytea || v) END"
    )
}

/// The table, its sequence and the index of replicated rows; tables of
/// earlier versions get the columns (all rows local until written again).
/// Under an advisory lock: the nodes of an HA cluster may start together.
async fn create_schema(pool: &PgPool, table: &str, t: &str, seq: &str) -> Result<()> {
    let index = format!("\"{table}_replicated\"");
    let identity = format!("\"{table}_identity\"");
    let statements = [
        // COLLATE "C" orders keys bytewise, like Rust's String and the other backends.
        format!(
            "CREATE TABLE IF NOT EXISTS {t} (key TEXT COLLATE \"C\" PRIMARY KEY, value BYTEA NOT NULL, \
             replicated BOOLEAN NOT NULL DEFAULT false, wal_index BIGINT, leaf_hash BYTEA)"
        ),
        format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS replicated BOOLEAN NOT NULL DEFAULT false"),
        format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS wal_index BIGINT"),
        format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS leaf_hash BYTEA"),
        format!("CREATE SEQUENCE IF NOT EXISTS {seq}"),
        format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (wal_index) WHERE replicated"),
        // A publication may filter on `replicated` only if the replica
        // identity covers it (else updates and deletes of the table fail);
        // an index rather than FULL, so a subscriber finds rows by index.
        format!("CREATE UNIQUE INDEX IF NOT EXISTS {identity} ON {t} (key, replicated)"),
        format!("ALTER TABLE {t} REPLICA IDENTITY USING INDEX {identity}"),
    ];
    let mut tx = pool.begin().await.map_err(|e| err("begin", e))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("warden storage schema {table}"))
        .execute(&mut *tx)
        .await
        .map_err(|e| err("schema lock", e))?;
    for sql in statements {
        sqlx::query(&sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| err("create table", e))?;
    }
    tx.commit().await.map_err(|e| err("commit", e))
}

#[async_trait::async_trait]
impl Backend for PostgresBackend {
    fn set_locality(&self, locality: Arc<Locality>) {
        PostgresBackend::set_locality(self, locality);
    }

    fn as_postgres(&self) -> Option<&PostgresBackend> {
        Some(self)
    }

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
            .bind(self.classes(&[key])[0])
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
        let put = sqlx::query(&self.put_many_sql)
            .bind(&put_keys)
            .bind(&values)
            .bind(self.classes(&put_keys));
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
