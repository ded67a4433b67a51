//! `warden:plugin/sql`: SQL databases through sqlx pools that the host owns.
//! A component opens a URL; the host checks it against the grant (the host
//! and port of the mount's configured connection_url), and hands back a
//! handle on a pool shared by every call for that configuration.

use super::{CallState, denied};
use crate::runtime::bindings::driver::warden::plugin::sql::{Host, HostConnection, PoolOptions};
use crate::runtime::bindings::driver::warden::plugin::types::Error;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection as _, Row};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::Resource;

/// How long to wait for a pooled connection before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The host's pools, by scope (one database connection configuration of one
/// mount) and rendered URL.
#[derive(Default)]
pub struct SqlPools {
    pools: Mutex<HashMap<String, HashMap<String, PgPool>>>,
}

impl SqlPools {
    fn get_or_open(&self, scope: &str, url: &str, options: &PoolOptions) -> Result<PgPool, Error> {
        let mut all = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        let by_url = all.entry(scope.to_string()).or_default();
        if let Some(pool) = by_url.get(url) {
            return Ok(pool.clone());
        }
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| Error::BadParameter(format!("invalid connection URL: {}", scrub(&e.to_string(), url))))?
            // Statements carry passwords: sqlx must never log them.
            .disable_statement_logging();
        let max_open = options.max_open.max(1);
        let mut pool = PgPoolOptions::new()
            .max_connections(max_open)
            .min_connections(0)
            // sqlx pings a connection before every hand-out by default: a
            // round trip per statement. A broken connection fails its
            // statement instead, and the pool replaces it.
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_TIMEOUT);
        if options.max_lifetime_seconds > 0 {
            pool = pool.max_lifetime(Duration::from_secs(options.max_lifetime_seconds));
        }
        let pool = pool.connect_lazy_with(connect);
        by_url.insert(url.to_string(), pool.clone());
        Ok(pool)
    }

    /// Close every pool of a scope: after a config is rewritten, reset or
    /// deleted, the next call connects afresh.
    pub fn close_scope(&self, scope: &str) {
        let removed = self.pools.lock().unwrap_or_else(|p| p.into_inner()).remove(scope);
        for pool in removed.into_iter().flat_map(|m| m.into_values()) {
            tokio::spawn(async move { pool.close().await });
        }
    }

    /// Close the pools of every scope starting with `prefix` (a whole mount).
    pub fn close_prefix(&self, prefix: &str) {
        let scopes: Vec<String> = self
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for scope in scopes {
            self.close_scope(&scope);
        }
    }
}

/// Permission to reach one database server.
pub struct SqlGrant {
    pub pools: Arc<SqlPools>,
    pub scope: String,
    /// Host and port the configured connection_url names.
    pub target: (String, u16),
}

impl SqlGrant {
    /// The grant for a configured connection_url template such as
    /// `postgresql://{{username}}:{{password}}@db:5432/app`.
    pub fn for_template(pools: Arc<SqlPools>, scope: String, template: &str) -> Option<SqlGrant> {
        let probe = template.replace("{{username}}", "u").replace("{{password}}", "p");
        let target = host_port(&probe)?;
        Some(SqlGrant { pools, scope, target })
    }
}

fn host_port(url: &str) -> Option<(String, u16)> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return None;
    }
    let host = parsed.host_str()?.trim_matches(['[', ']']).to_ascii_lowercase();
    Some((host, parsed.port().unwrap_or(5432)))
}

/// Remove a URL (which holds a password) from an error text.
fn scrub(msg: &str, url: &str) -> String {
    if url.is_empty() {
        msg.to_string()
    } else {
        msg.replace(url, "<connection url>")
    }
}

fn sql_error(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            let msg = format!("{} (SQLSTATE {code})", db.message());
            // Class 08 is connection exceptions, 28 invalid authorization.
            if code.starts_with("08") || code.starts_with("28") {
                Error::ConnectionFailed(msg)
            } else {
                Error::QueryFailed(msg)
            }
        }
        sqlx::Error::PoolTimedOut => Error::ConnectionFailed("timed out waiting for a database connection".into()),
        e @ (sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolClosed) => {
            Error::ConnectionFailed(e.to_string())
        }
        other => Error::QueryFailed(other.to_string()),
    }
}

/// Attempts at a statement that failed for a transient reason.
const TRANSIENT_RETRIES: u32 = 6;

/// Run one simple query, again when it lost a race with another
/// transaction. Concurrent `REVOKE ... ON SCHEMA` of different roles update
/// the same catalog row and one fails with "tuple concurrently updated";
/// the failed statement changed nothing, so running it again is safe.
async fn run(pool: &PgPool, sql: &str) -> Result<u64, sqlx::Error> {
    let mut attempt = 0;
    loop {
        match sqlx::raw_sql(sql).execute(pool).await {
            Err(e) if attempt < TRANSIENT_RETRIES && is_transient(&e) => {
                attempt += 1;
                use rand::Rng;
                let jitter = rand::rng().random_range(0..5u64 << attempt);
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            r => return r.map(|r| r.rows_affected()),
        }
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else { return false };
    match db.code().as_deref() {
        // serialization_failure, deadlock_detected
        Some("40001") | Some("40P01") => true,
        Some("XX000") => db.message().contains("concurrently"),
        _ => false,
    }
}

/// A handle on a pool, as the component's `connection` resource.
pub struct Connection {
    pool: PgPool,
}

impl Host for CallState {}

impl HostConnection for CallState {
    async fn open(&mut self, url: String, options: PoolOptions) -> Result<Resource<Connection>, Error> {
        let cached = self
            .last_pool
            .as_ref()
            .filter(|(u, pool)| *u == url && !pool.is_closed())
            .map(|(_, pool)| pool.clone());
        let pool = match cached {
            Some(pool) => pool,
            None => {
                let grant = self.grant.sql.as_ref().ok_or_else(|| denied("database"))?;
                let target = host_port(&url)
                    .ok_or_else(|| Error::BadParameter("connection URL must be a postgres:// URL".into()))?;
                if target != grant.target {
                    return Err(Error::NotPermitted(format!(
                        "{}:{} is not the host this connection is configured for",
                        target.0, target.1
                    )));
                }
                let pool = grant.pools.get_or_open(&grant.scope, &url, &options)?;
                self.last_pool = Some((url, pool.clone()));
                pool
            }
        };
        self.table
            .push(Connection { pool })
            .map_err(|e| Error::Other(format!("too many open handles: {e}")))
    }

    async fn ping(&mut self, conn: Resource<Connection>) -> Result<(), Error> {
        // A fresh connection rather than the pool's: the pool retries a
        // refused connection until its acquire timeout, and a verify should
        // report the database's own error at once.
        let pool = self.pool(&conn)?;
        let mut c = sqlx::PgConnection::connect_with(&pool.connect_options())
            .await
            .map_err(sql_error)?;
        let pinged = c.ping().await.map_err(sql_error);
        let _ = c.close().await;
        pinged
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statements: Vec<String>,
        atomic: bool,
    ) -> Result<u64, Error> {
        let pool = self.pool(&conn)?;
        // Simple-query protocol: DDL takes no parameters, and a statement
        // used once gains nothing from being prepared. PostgreSQL runs the
        // statements of one simple query as one implicit transaction, so
        // joining them is atomic and costs a single round trip.
        let mut affected = 0;
        if atomic {
            affected += run(&pool, &statements.join(";\n")).await.map_err(sql_error)?;
        } else {
            for s in &statements {
                affected += run(&pool, s).await.map_err(sql_error)?;
            }
        }
        Ok(affected)
    }

    async fn query(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<String>,
    ) -> Result<Vec<Vec<Option<String>>>, Error> {
        let pool = self.pool(&conn)?;
        let mut q = sqlx::query(&statement);
        for p in &params {
            q = q.bind(p);
        }
        let rows = q.fetch_all(&pool).await.map_err(sql_error)?;
        rows.iter().map(row_as_text).collect()
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl CallState {
    fn pool(&self, conn: &Resource<Connection>) -> Result<PgPool, Error> {
        self.table
            .get(conn)
            .map(|c| c.pool.clone())
            .map_err(|e| Error::BadParameter(format!("invalid connection handle: {e}")))
    }
}

/// Every column as text, whatever its type (the WIT query returns text).
fn row_as_text(row: &PgRow) -> Result<Vec<Option<String>>, Error> {
    (0..row.len())
        .map(|i| {
            if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                return Ok(v);
            }
            if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                return Ok(v.map(|n| n.to_string()));
            }
            if let Ok(v) = row.try_get::<Option<i32>, _>(i) {
                return Ok(v.map(|n| n.to_string()));
            }
            if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
                return Ok(v.map(|b| b.to_string()));
            }
            if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
                return Ok(v.map(|f| f.to_string()));
            }
            Err(Error::QueryFailed(format!(
                "column {i} is not text: cast it with ::text"
            )))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_names_the_templates_host_and_port() {
        let pools = Arc::new(SqlPools::default());
        let g = SqlGrant::for_template(
            pools.clone(),
            "s".into(),
            "postgresql://{{username}}:{{password}}@127.0.0.1:5433/db",
        )
        .unwrap();
        assert_eq!(g.target, ("127.0.0.1".to_string(), 5433));
        let g = SqlGrant::for_template(pools, "s".into(), "postgres://u:p@DB.example/x").unwrap();
        assert_eq!(g.target, ("db.example".to_string(), 5432));
    }

    #[test]
    fn other_schemes_get_no_grant() {
        assert!(host_port("mysql://u:p@h:3306/").is_none());
        assert!(host_port("host=foo user=bar").is_none());
    }
}
