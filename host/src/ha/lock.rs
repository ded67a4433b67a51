//! The HA lock on PostgreSQL: one row of the `ha_table` (key `leader`)
//! names the active node (`ha_identity`), how to reach it (`ha_value`: its
//! api and cluster addresses, JSON), the lock's `epoch` and `valid_until`
//! on the database's clock. Rows `member/<node id>` are each node's
//! heartbeat (what `sys/ha-status` lists).
//!
//! - acquire: one statement locks the row FOR UPDATE only where it has
//!   expired (so it waits for the old holder's fenced writes in flight,
//!   see `storage::postgres`), then moves it to this node with the epoch
//!   plus one;
//! - renew: pushes `valid_until` on while the row still names this node and
//!   epoch (a non-key update: it does not wait for the fenced writes);
//! - release: ends the lease at once (step-down, seal), epoch unchanged.
//!
//! Every statement runs alone (autocommit): no transaction stays open
//! across a pause of this process, so a stopped node holds no row lock.

use crate::storage::postgres::{connect_options, valid_table};
use crate::storage::{Result, StorageError};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

/// How to reach a node: what the lock row and the member rows carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub api_addr: String,
    pub cluster_addr: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub version: String,
}

/// Who holds the lock, as the row says.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub node_id: String,
    pub address: Address,
    pub epoch: i64,
    /// How long its lease still runs by the database's clock (negative:
    /// expired that long ago).
    pub remaining: Duration,
    pub expired: bool,
}

/// A member's heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub node_id: String,
    pub address: Address,
    pub last_echo: chrono::DateTime<chrono::Utc>,
}

pub struct PgLock {
    pool: PgPool,
    table: String,
}

fn err(op: &str, e: sqlx::Error) -> StorageError {
    StorageError::Backend(format!("postgres ha lock {op}: {e}"))
}

/// How long a member row counts as alive after its last heartbeat.
pub const MEMBER_TTL: Duration = Duration::from_secs(15);

impl PgLock {
    /// Connects (a pool of its own, so that renewals never queue behind the
    /// data's writes) and creates the table and its `leader` row.
    pub async fn connect(url: &str, table: &str) -> Result<PgLock> {
        if !valid_table(table) {
            return Err(StorageError::Backend(format!(
                "postgres: invalid ha_table name {table:?} (letters, digits and '_' only)"
            )));
        }
        let options = connect_options(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            // A statement stuck on a dead server must not outlive the lease.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await
            .map_err(|e| err("connect", e))?;
        let lock = PgLock {
            pool,
            table: format!("\"{table}\""),
        };
        let t = &lock.table;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (ha_key TEXT COLLATE \"C\" PRIMARY KEY, ha_identity TEXT NOT NULL, \
             ha_value TEXT NOT NULL, epoch BIGINT NOT NULL, valid_until TIMESTAMPTZ NOT NULL)"
        ))
        .execute(&lock.pool)
        .await
        .map_err(|e| err("create table", e))?;
        sqlx::query(&format!(
            "INSERT INTO {t} (ha_key, ha_identity, ha_value, epoch, valid_until) \
             VALUES ('leader', '', '{{}}', 0, '-infinity') ON CONFLICT (ha_key) DO NOTHING"
        ))
        .execute(&lock.pool)
        .await
        .map_err(|e| err("create leader row", e))?;
        Ok(lock)
    }

    /// Take the lock if its lease has run out: the new epoch, or None when
    /// another node holds it.
    pub async fn try_acquire(&self, node_id: &str, address: &Address, ttl: Duration) -> Result<Option<i64>> {
        let t = &self.table;
        let value = serde_json::to_string(address).unwrap_or_else(|_| "{}".into());
        let sql = format!(
            "WITH expired AS (SELECT ha_key FROM {t} WHERE ha_key = 'leader' AND valid_until < clock_timestamp() FOR UPDATE) \
             UPDATE {t} SET ha_identity = $1, ha_value = $2, epoch = {t}.epoch + 1, \
             valid_until = clock_timestamp() + make_interval(secs => $3) \
             FROM expired WHERE {t}.ha_key = expired.ha_key RETURNING {t}.epoch"
        );
        sqlx::query_scalar::<_, i64>(&sql)
            .bind(node_id)
            .bind(value)
            .bind(ttl.as_secs_f64())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| err("acquire", e))
    }

    /// Extend this node's lease; false when the row no longer names it and
    /// `epoch` (another node took over).
    pub async fn renew(&self, node_id: &str, epoch: i64, ttl: Duration) -> Result<bool> {
        let t = &self.table;
        let n = sqlx::query(&format!(
            "UPDATE {t} SET valid_until = clock_timestamp() + make_interval(secs => $3) \
             WHERE ha_key = 'leader' AND ha_identity = $1 AND epoch = $2"
        ))
        .bind(node_id)
        .bind(epoch)
        .bind(ttl.as_secs_f64())
        .execute(&self.pool)
        .await
        .map_err(|e| err("renew", e))?
        .rows_affected();
        Ok(n == 1)
    }

    /// End this node's lease now, so a standby takes over at once.
    pub async fn release(&self, node_id: &str, epoch: i64) -> Result<()> {
        let t = &self.table;
        sqlx::query(&format!(
            "UPDATE {t} SET valid_until = '-infinity' WHERE ha_key = 'leader' AND ha_identity = $1 AND epoch = $2"
        ))
        .bind(node_id)
        .bind(epoch)
        .execute(&self.pool)
        .await
        .map_err(|e| err("release", e))?;
        Ok(())
    }

    /// The row as it is now.
    pub async fn holder(&self) -> Result<Option<Holder>> {
        let t = &self.table;
        let row: Option<(String, String, i64, f64)> = sqlx::query_as(&format!(
            "SELECT ha_identity, ha_value, epoch, \
             GREATEST(LEAST(EXTRACT(EPOCH FROM (valid_until - clock_timestamp())), 1e9), -1e9)::float8 \
             FROM {t} WHERE ha_key = 'leader'"
        ))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| err("read", e))?;
        Ok(row.and_then(|(node_id, value, epoch, remaining)| {
            if node_id.is_empty() {
                return None;
            }
            Some(Holder {
                node_id,
                address: serde_json::from_str(&value).unwrap_or_default(),
                epoch,
                remaining: Duration::try_from_secs_f64(remaining.max(0.0)).unwrap_or_default(),
                expired: remaining <= 0.0,
            })
        }))
    }

    /// This node's heartbeat (a member row alive for [`MEMBER_TTL`]).
    pub async fn heartbeat(&self, node_id: &str, address: &Address) -> Result<()> {
        let t = &self.table;
        let value = serde_json::to_string(address).unwrap_or_else(|_| "{}".into());
        sqlx::query(&format!(
            "INSERT INTO {t} (ha_key, ha_identity, ha_value, epoch, valid_until) \
             VALUES ($1, $2, $3, 0, clock_timestamp() + make_interval(secs => $4)) \
             ON CONFLICT (ha_key) DO UPDATE SET ha_value = EXCLUDED.ha_value, valid_until = EXCLUDED.valid_until"
        ))
        .bind(format!("member/{node_id}"))
        .bind(node_id)
        .bind(value)
        .bind(MEMBER_TTL.as_secs_f64())
        .execute(&self.pool)
        .await
        .map_err(|e| err("heartbeat", e))?;
        Ok(())
    }

    /// Members heard from within [`MEMBER_TTL`]; rows silent for an hour
    /// are deleted on the way.
    pub async fn members(&self) -> Result<Vec<Member>> {
        let t = &self.table;
        sqlx::query(&format!(
            "DELETE FROM {t} WHERE ha_key LIKE 'member/%' AND valid_until < clock_timestamp() - interval '1 hour'"
        ))
        .execute(&self.pool)
        .await
        .map_err(|e| err("members", e))?;
        // Seconds since 1970 (sqlx here decodes no timestamp types).
        let rows: Vec<(String, String, f64)> = sqlx::query_as(&format!(
            "SELECT ha_identity, ha_value, EXTRACT(EPOCH FROM valid_until)::float8 - $1 FROM {t} \
             WHERE ha_key LIKE 'member/%' AND valid_until > clock_timestamp() ORDER BY ha_key"
        ))
        .bind(MEMBER_TTL.as_secs_f64())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| err("members", e))?;
        Ok(rows
            .into_iter()
            .map(|(node_id, value, last_echo)| Member {
                node_id,
                address: serde_json::from_str(&value).unwrap_or_default(),
                last_echo: chrono::DateTime::from_timestamp_millis((last_echo * 1000.0) as i64).unwrap_or_default(),
            })
            .collect())
    }

    /// A member leaves (a node shutting down): its row goes.
    pub async fn leave(&self, node_id: &str) -> Result<()> {
        let t = &self.table;
        sqlx::query(&format!("DELETE FROM {t} WHERE ha_key = $1"))
            .bind(format!("member/{node_id}"))
            .execute(&self.pool)
            .await
            .map_err(|e| err("leave", e))?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
