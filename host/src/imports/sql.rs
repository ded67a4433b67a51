//! `warden:plugin/sql`: SQL databases through connection pools the host owns.
//! A component opens a URL (postgres:// or mysql://); the host checks its
//! host and port against the call's outbound allowlist (outbound.rs: the
//! mount's configured connection_url, a URL or a Go MySQL DSN), and hands
//! back a handle on a
//! pool shared by every call for that configuration (`sql_pool`: Vault's
//! max_open_connections, max_idle_connections and max_connection_lifetime).

use super::outbound::Outbound;
use super::sql_pool::{ConnPool, Pooled, reusable_after};
use super::{CallState, denied};
use crate::bindings::driver::warden::plugin::sql::{self, Host, HostConnection, PoolOptions};
use crate::bindings::driver::warden::plugin::types::Error;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{ConnectOptions, Row};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

/// How long to wait for a pooled connection before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The host's pools, by scope (one database connection configuration of one
/// mount) and rendered URL.
#[derive(Default)]
pub struct SqlPools {
    pools: Mutex<HashMap<String, HashMap<String, HostPool>>>,
}

/// One of the host's pools, of either database.
#[derive(Clone)]
enum Db {
    Pg(Arc<ConnPool<PgConnection>>),
    My(Arc<ConnPool<MySqlConnection>>),
}

/// A pool of one database configuration.
#[derive(Clone)]
pub struct HostPool {
    db: Db,
}

impl HostPool {
    pub fn is_closed(&self) -> bool {
        match &self.db {
            Db::Pg(p) => p.is_closed(),
            Db::My(p) => p.is_closed(),
        }
    }

    fn close(&self) {
        match &self.db {
            Db::Pg(p) => p.close(),
            Db::My(p) => p.close(),
        }
    }

    fn usage(&self) -> super::sql_pool::PoolUsage {
        match &self.db {
            Db::Pg(p) => p.usage(),
            Db::My(p) => p.usage(),
        }
    }
}

impl SqlPools {
    fn get_or_open(&self, scope: &str, url: &str, options: &PoolOptions) -> Result<HostPool, Error> {
        let mut all = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        let by_url = all.entry(scope.to_string()).or_default();
        // The pool's size is part of what it is: a new cap gets a new pool.
        let key = format!("{url}\0{}", options.max_open);
        if let Some(pool) = by_url.get(&key) {
            return Ok(pool.clone());
        }
        let max_lifetime =
            (options.max_lifetime_seconds > 0).then(|| Duration::from_secs(options.max_lifetime_seconds));
        let (max_open, max_idle) = (options.max_open, options.max_idle);
        let db = if is_mysql(url) {
            let connect = mysql_options(url)?;
            Db::My(ConnPool::new(
                connect,
                max_open,
                max_idle,
                max_lifetime,
                ACQUIRE_TIMEOUT,
            ))
        } else {
            let connect = PgConnectOptions::from_str(url)
                .map_err(|e| Error::BadParameter(format!("invalid connection URL: {}", scrub(&e.to_string(), url))))?
                // Statements carry passwords: sqlx must never log them.
                .disable_statement_logging();
            check_pg_username(connect.get_username()).map_err(Error::BadParameter)?;
            Db::Pg(ConnPool::new(
                connect,
                max_open,
                max_idle,
                max_lifetime,
                ACQUIRE_TIMEOUT,
            ))
        };
        let pool = HostPool { db };
        by_url.insert(key, pool.clone());
        Ok(pool)
    }

    /// Close every pool of a scope: after a config is rewritten, reset or
    /// deleted, the next call connects afresh.
    pub fn close_scope(&self, scope: &str) {
        let removed = self.pools.lock().unwrap_or_else(|p| p.into_inner()).remove(scope);
        for pool in removed.into_iter().flat_map(|m| m.into_values()) {
            pool.close();
        }
    }

    /// Each scope's pools' use, added up (for the metrics; a scope is one
    /// mount's one connection configuration, `<mount uuid>/<name>`).
    pub fn usage(&self) -> Vec<(String, super::sql_pool::PoolUsage)> {
        let all = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .map(|(scope, pools)| {
                let mut sum = super::sql_pool::PoolUsage::default();
                for pool in pools.values() {
                    sum += pool.usage();
                }
                (scope.clone(), sum)
            })
            .collect()
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

/// Permission to use the host's pools of one connection configuration
/// (which servers: the call's outbound allowlist).
pub struct SqlGrant {
    pub pools: Arc<SqlPools>,
    pub scope: String,
    /// Most connections of a pool (a sandbox quota's), whatever the
    /// component asks for.
    pub max_open: Option<u32>,
}

/// The host and port a connection_url template names, such as
/// `postgresql://{{username}}:{{password}}@db:5432/app` or a Go MySQL DSN
/// such as `{{username}}:{{password}}@tcp(db:3306)/`; None for other URLs.
pub fn url_target(template: &str) -> Option<(String, u16)> {
    let probe = template.replace("{{username}}", "u").replace("{{password}}", "p");
    host_port(&probe).or_else(|| go_dsn_host_port(&probe))
}

/// The `sql` import's state in one instance.
pub struct SqlState {
    grant: Option<SqlGrant>,
    outbound: Arc<Outbound>,
    table: ResourceTable,
    /// The pool this instance opened last, by URL: a reused instance opens
    /// the same URL on every call, and this skips parsing and checking it.
    last_pool: Option<(String, HostPool)>,
}

impl SqlState {
    pub fn new(grant: Option<SqlGrant>, outbound: Arc<Outbound>) -> Self {
        SqlState {
            grant,
            outbound,
            table: ResourceTable::new(),
            last_pool: None,
        }
    }
}

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    sql::add_to_linker::<CallState, HasSelf<SqlState>>(linker, |s| &mut s.sql)
}

fn is_mysql(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("mysql") || scheme.eq_ignore_ascii_case("mariadb"))
}

fn host_port(url: &str) -> Option<(String, u16)> {
    let parsed = url::Url::parse(url).ok()?;
    let default_port = match parsed.scheme() {
        "postgres" | "postgresql" => 5432,
        "mysql" | "mariadb" => 3306,
        _ => return None,
    };
    let host = parsed.host_str()?.trim_matches(['[', ']']).to_ascii_lowercase();
    Some((host, parsed.port().unwrap_or(default_port)))
}

/// The TCP address of a Go MySQL DSN (`user:pass@tcp(host:port)/db`); the
/// port defaults to 3306. Other networks (unix sockets) get no grant.
fn go_dsn_host_port(dsn: &str) -> Option<(String, u16)> {
    let slash = dsn.rfind('/')?;
    let head = &dsn[..slash];
    let net = head.rsplit_once('@').map_or(head, |(_, net)| net);
    let addr = net.strip_prefix("tcp(")?.strip_suffix(')')?;
    let (host, port) = match addr.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, p.parse().ok()?),
        _ => (addr, 3306),
    };
    let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
    (!host.is_empty()).then_some((host, port))
}

/// Query keys the host handles itself: PEM text of the TLS CA, client
/// certificate and key (sqlx's own ssl-ca/ssl-cert/ssl-key name files).
const PEM_KEYS: [&str; 3] = ["ssl-ca-pem", "ssl-cert-pem", "ssl-key-pem"];
/// Query keys that would make the host read its own files or sockets.
const HOST_FILE_KEYS: [&str; 7] = ["sslca", "ssl-ca", "sslcert", "ssl-cert", "sslkey", "ssl-key", "socket"];

/// sqlx options for a mysql:// URL. TLS material comes as PEM text in the
/// URL (never as a path: a component has no files, and must not make the
/// host read its own).
fn mysql_options(url: &str) -> Result<MySqlConnectOptions, Error> {
    let bad = |e: String| Error::BadParameter(format!("invalid connection URL: {}", scrub(&e, url)));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let mut pems: [Option<String>; 3] = [None, None, None];
    let mut kept = Vec::new();
    for (key, value) in parsed.query_pairs() {
        if let Some(i) = PEM_KEYS.iter().position(|k| *k == key) {
            pems[i] = Some(value.into_owned());
        } else if HOST_FILE_KEYS.contains(&key.as_ref()) {
            return Err(Error::NotPermitted(format!(
                "the connection URL option {key} names a file or socket of the host; pass PEM text instead"
            )));
        } else {
            kept.push((key.into_owned(), value.into_owned()));
        }
    }
    parsed.set_query(None);
    if !kept.is_empty() {
        parsed.query_pairs_mut().extend_pairs(kept);
    }
    let mut options = MySqlConnectOptions::from_str(parsed.as_str())
        .map_err(|e| bad(e.to_string()))?
        // Statements carry passwords: sqlx must never log them.
        .disable_statement_logging()
        // sqlx adds PIPES_AS_CONCAT to sql_mode by default; the operator's
        // statements must mean what they mean in the mysql client.
        .pipes_as_concat(false);
    let [ca, cert, key] = pems;
    if let Some(ca) = ca {
        options = options.ssl_ca_from_pem(ca.into_bytes());
    }
    if let Some(cert) = cert {
        options = options.ssl_client_cert_from_pem(cert);
    }
    if let Some(key) = key {
        options = options.ssl_client_key_from_pem(key);
    }
    Ok(options)
}

/// Remove a URL (which holds a password) from an error text.
/// A PostgreSQL login name that SCRAM authentication can carry. SCRAM
/// sends the name through SASLprep (RFC 4013), which refuses some
/// characters (unassigned code points, some symbols and controls); sqlx
/// panics on such a name instead of failing the connection, so it is
/// refused here, before any connection is tried.
pub fn check_pg_username(username: &str) -> Result<(), String> {
    // sqlx prepares "n=<name>"; the prefix never changes the outcome.
    stringprep::saslprep(username).map(drop).map_err(|_| {
        "the username cannot be used to log in to PostgreSQL: SASLprep (RFC 4013), which SCRAM authentication applies to it, refuses one of its characters".to_string()
    })
}

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

/// How long a statement that keeps losing races with other transactions
/// is tried again (with jittered back-off from 2 ms up to 100 ms).
const TRANSIENT_RETRY_FOR: Duration = Duration::from_secs(10);

/// Run one simple query, again when it lost a race with another
/// transaction. Concurrent GRANTs and REVOKEs of different roles on the
/// same objects update the same catalog rows and one fails with "tuple
/// concurrently updated"; the failed statement (or implicit transaction of
/// several) changed nothing, so running it again is safe. The retries go on
/// for a while rather than a fixed count: under load a race can be lost
/// many times in a row, and giving up leaves a login behind.
async fn run(conn: &mut PgConnection, sql: &str) -> Result<u64, sqlx::Error> {
    let started = std::time::Instant::now();
    let mut attempt: u32 = 0;
    loop {
        match pg_raw(conn, sql).await {
            Err(e) if is_transient(&e) && started.elapsed() < TRANSIENT_RETRY_FOR => {
                attempt = attempt.saturating_add(1);
                let cap = (2u64 << attempt.min(6)).min(100);
                use rand::Rng;
                let jitter = rand::rng().random_range(1..=cap);
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            r => return r,
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One simple query on a connection. Named functions returning boxed Send
/// futures sidestep sqlx's higher-ranked `Executor` bound, which the
/// compiler cannot prove inside the async trait methods below.
fn pg_raw<'c>(conn: &'c mut PgConnection, sql: &'c str) -> BoxFuture<'c, Result<u64, sqlx::Error>> {
    Box::pin(async move {
        use sqlx::Executor;
        conn.execute(sqlx::raw_sql(sql)).await.map(|r| r.rows_affected())
    })
}

/// One text-protocol query on a MySQL connection; several statements
/// joined with ';' run in order and stop at the first error.
fn my_raw<'c>(conn: &'c mut MySqlConnection, sql: &'c str) -> BoxFuture<'c, Result<u64, sqlx::Error>> {
    Box::pin(async move {
        use sqlx::Executor;
        conn.execute(sqlx::raw_sql(sql)).await.map(|r| r.rows_affected())
    })
}

/// Statements on PostgreSQL. Simple-query protocol: DDL takes no
/// parameters, and a statement used once gains nothing from being prepared.
/// PostgreSQL runs the statements of one simple query as one implicit
/// transaction, so joining them is atomic and costs a single round trip.
fn pg_execute<'a>(
    p: &'a Arc<ConnPool<PgConnection>>,
    statements: &'a [String],
    atomic: bool,
) -> BoxFuture<'a, Result<u64, Error>> {
    Box::pin(async move {
        let mut conn = p.acquire().await.map_err(sql_error)?;
        let result = async {
            if atomic {
                return run(&mut conn, &statements.join(";\n")).await;
            }
            let mut affected = 0;
            for s in statements {
                affected += run(&mut conn, s).await?;
            }
            Ok(affected)
        }
        .await;
        hand_back(conn, &result);
        result.map_err(sql_error)
    })
}

/// Return a connection to its pool unless `result` says it may be unsound.
fn hand_back<C: sqlx::Connection + 'static, T>(conn: Pooled<C>, result: &Result<T, sqlx::Error>) {
    match result {
        Err(e) if !reusable_after(e) => drop(conn),
        _ => conn.release(),
    }
}

/// Statements on MySQL. Its multi-statement text is not atomic, so an
/// atomic batch runs as START TRANSACTION; ...; COMMIT in one round trip
/// (the server stops at the first failing statement) and is rolled back on
/// failure. As in Vault's driver, which runs them in a transaction too:
/// MySQL commits DDL such as CREATE USER implicitly, so the driver cleans
/// up users a failed creation left behind. A batch of nothing but such
/// statements goes without the transaction ([`commits_implicitly`]).
fn my_execute<'a>(
    p: &'a Arc<ConnPool<MySqlConnection>>,
    statements: &'a [String],
    atomic: bool,
) -> BoxFuture<'a, Result<u64, Error>> {
    Box::pin(async move {
        let mut conn = p.acquire().await.map_err(sql_error)?;
        let mut affected = 0;
        let mut poisoned = false;
        let result = if atomic && statements.iter().all(|s| commits_implicitly(s)) {
            // Each statement commits on its own anyway: one round trip,
            // stopping at the first failing statement.
            my_raw(&mut conn, &statements.join(";\n")).await
        } else if atomic {
            let batch = format!("START TRANSACTION;\n{};\nCOMMIT", statements.join(";\n"));
            let r = my_raw(&mut conn, &batch).await;
            if r.is_err() && my_raw(&mut conn, "ROLLBACK").await.is_err() {
                poisoned = true;
            }
            r
        } else {
            let mut r = Ok(0);
            for s in statements {
                match my_raw(&mut conn, s).await {
                    Ok(n) => affected += n,
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                }
            }
            r.map(|_| affected)
        };
        if poisoned {
            // A connection that cannot roll back may hold an open
            // transaction: never hand it to the next caller.
            drop(conn);
        } else {
            hand_back(conn, &result);
        }
        result.map_err(sql_error)
    })
}

/// Whether MySQL commits implicitly before and after `statement`: account
/// management (CREATE/ALTER/DROP/RENAME USER, GRANT, REVOKE, SET PASSWORD,
/// CREATE/DROP ROLE) and FLUSH. A transaction around nothing but such
/// statements covers none of them, so an atomic batch of them is sent
/// without START TRANSACTION/COMMIT (two fewer commits per credential);
/// the driver drops a user a failed creation left behind either way.
/// Anything else, or anything unrecognised, keeps the transaction.
fn commits_implicitly(statement: &str) -> bool {
    let mut words = statement.split_whitespace().map(str::to_ascii_uppercase);
    let first = words.next().unwrap_or_default();
    let second = words.next().unwrap_or_default();
    match first.as_str() {
        "GRANT" | "REVOKE" | "FLUSH" => true,
        "CREATE" | "ALTER" | "DROP" | "RENAME" => matches!(second.as_str(), "USER" | "ROLE"),
        "SET" => second == "PASSWORD",
        _ => false,
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
    pool: HostPool,
}

impl Host for SqlState {}

impl HostConnection for SqlState {
    async fn open(&mut self, url: String, options: PoolOptions) -> Result<Resource<Connection>, Error> {
        let cached = self
            .last_pool
            .as_ref()
            .filter(|(u, pool)| *u == url && !pool.is_closed())
            .map(|(_, pool)| pool.clone());
        let pool = match cached {
            Some(pool) => pool,
            None => {
                let grant = self.grant.as_ref().ok_or_else(|| denied("database"))?;
                let (host, port) = host_port(&url).ok_or_else(|| {
                    Error::BadParameter("connection URL must be a postgres:// or mysql:// URL".into())
                })?;
                self.outbound.check(&host, port)?;
                let mut options = options;
                if let Some(cap) = grant.max_open {
                    options.max_open = match options.max_open {
                        0 => cap,
                        n => n.min(cap),
                    };
                    options.max_idle = options.max_idle.min(options.max_open);
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
        // A fresh connection rather than a pooled one: a verify must show
        // that connecting and logging in work now, with the database's own
        // error if not.
        match self.pool(&conn)?.db {
            Db::Pg(pool) => ping_fresh::<PgConnection>(pool.options()).await,
            Db::My(pool) => ping_fresh::<MySqlConnection>(pool.options()).await,
        }
    }

    async fn execute(
        &mut self,
        conn: Resource<Connection>,
        statements: Vec<String>,
        atomic: bool,
    ) -> Result<u64, Error> {
        match &self.pool(&conn)?.db {
            Db::Pg(p) => pg_execute(p, &statements, atomic).await,
            Db::My(p) => my_execute(p, &statements, atomic).await,
        }
    }

    async fn query(
        &mut self,
        conn: Resource<Connection>,
        statement: String,
        params: Vec<String>,
    ) -> Result<Vec<Vec<Option<String>>>, Error> {
        match self.pool(&conn)?.db {
            Db::Pg(pool) => fetch::<sqlx::Postgres>(&pool, &statement, &params)
                .await
                .map_err(sql_error)?
                .iter()
                .map(row_as_text)
                .collect(),
            Db::My(pool) => fetch::<sqlx::MySql>(&pool, &statement, &params)
                .await
                .map_err(sql_error)?
                .iter()
                .map(my_row_as_text)
                .collect(),
        }
    }

    async fn drop(&mut self, conn: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

/// Connect anew with `options`, ping, close.
async fn ping_fresh<C: sqlx::Connection>(options: &C::Options) -> Result<(), Error> {
    let mut c = C::connect_with(options).await.map_err(sql_error)?;
    let pinged = c.ping().await.map_err(sql_error);
    let _ = c.close().await;
    pinged
}

/// Every row of a query with text parameters, on a pooled connection.
fn fetch<'q, DB>(
    pool: &'q Arc<ConnPool<DB::Connection>>,
    statement: &'q str,
    params: &'q [String],
) -> BoxFuture<'q, Result<Vec<DB::Row>, sqlx::Error>>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    &'q String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    Box::pin(async move {
        let mut q = sqlx::query::<DB>(statement);
        for p in params {
            q = q.bind(p);
        }
        let mut conn = pool.acquire().await?;
        let result = q.fetch_all(&mut *conn).await;
        hand_back(conn, &result);
        result
    })
}

impl SqlState {
    fn pool(&self, conn: &Resource<Connection>) -> Result<HostPool, Error> {
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

/// Every MySQL column as text; binary strings (which MySQL's catalog
/// tables use for names) as UTF-8.
fn my_row_as_text(row: &MySqlRow) -> Result<Vec<Option<String>>, Error> {
    (0..row.len())
        .map(|i| {
            if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                return Ok(v);
            }
            if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
                return Ok(v.map(|b| String::from_utf8_lossy(&b).into_owned()));
            }
            if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                return Ok(v.map(|n| n.to_string()));
            }
            if let Ok(v) = row.try_get::<Option<u64>, _>(i) {
                return Ok(v.map(|n| n.to_string()));
            }
            if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
                return Ok(v.map(|f| f.to_string()));
            }
            Err(Error::QueryFailed(format!("column {i} is not text: CAST it AS CHAR")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_account_statements_commit_implicitly() {
        for s in [
            "CREATE USER 'a'@'%' IDENTIFIED BY 'p'",
            "  grant SELECT ON db.* TO 'a'@'%'",
            "DROP USER IF EXISTS 'a'@'%'",
            "ALTER USER 'a'@'%' IDENTIFIED BY 'p'",
            "REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'a'@'%'",
            "SET PASSWORD FOR 'a'@'%' = PASSWORD('p')",
            "RENAME USER 'a' TO 'b'",
            "FLUSH PRIVILEGES",
        ] {
            assert!(commits_implicitly(s), "{s}");
        }
        for s in [
            "INSERT INTO t VALUES ('GRANT')",
            "CREATE TABLE t (a int)",
            "SET @x = 1",
            "/* c */ CREATE USER 'a'",
            "",
        ] {
            assert!(!commits_implicitly(s), "{s}");
        }
    }

    #[test]
    fn a_template_names_its_host_and_port() {
        let target = url_target("postgresql://{{username}}:{{password}}@127.0.0.1:5433/db");
        assert_eq!(target, Some(("127.0.0.1".to_string(), 5433)));
        let target = url_target("postgres://u:p@DB.example/x");
        assert_eq!(target, Some(("db.example".to_string(), 5432)));
    }

    #[test]
    fn other_schemes_get_no_grant() {
        assert!(host_port("redis://u:p@h:3306/").is_none());
        assert!(host_port("host=foo user=bar").is_none());
        assert!(go_dsn_host_port("u:p@unix(/tmp/mysql.sock)/db").is_none());
        assert!(go_dsn_host_port("host=foo user=bar").is_none());
    }

    #[test]
    fn mysql_urls_and_go_dsns_name_their_host_and_port() {
        let grant = url_target;
        let at = |h: &str, p| Some((h.to_string(), p));
        assert_eq!(grant("mysql://{{username}}:{{password}}@DB:3307/x"), at("db", 3307));
        assert_eq!(grant("mysql://u@db/"), at("db", 3306));
        assert_eq!(
            grant("{{username}}:{{password}}@tcp(127.0.0.1:3306)/"),
            at("127.0.0.1", 3306)
        );
        assert_eq!(grant("{{username}}:{{password}}@tcp(db)/app?tls=true"), at("db", 3306));
        assert_eq!(grant("u:p@w:x@tcp([::1]:3310)/"), at("::1", 3310));
        assert_eq!(grant("tcp(db:1)/"), at("db", 1));
        assert_eq!(grant("{{username}}:{{password}}@unix(/run/mysqld.sock)/"), None);
    }

    #[test]
    fn mysql_urls_may_not_name_host_files() {
        for key in HOST_FILE_KEYS {
            let e = mysql_options(&format!("mysql://u:p@h/?{key}=/etc/passwd")).err();
            assert!(matches!(e, Some(Error::NotPermitted(_))), "{key}");
        }
        let ok = mysql_options("mysql://u:p@h/?ssl-mode=REQUIRED&ssl-ca-pem=x&charset=utf8mb4");
        assert!(ok.is_ok());
    }
}
