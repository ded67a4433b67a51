//! A real PostgreSQL for the tests: a throwaway cluster (initdb + pg_ctl on a
//! free port, password auth over TCP) or an existing server named by
//! `WARDEN_TEST_PG_URL`. Each test takes a [`Scratch`]: its own database and
//! its own admin login, so tests sharing one cluster do not see each other.
//!
//! Cleanup of the shared cluster: a static's `Drop` never runs, so the cluster
//! is watched by a tiny reaper process (`sh`) whose stdin is a pipe held open
//! by the test process. When the test process ends in any way — normal exit,
//! panic, abort, SIGKILL — the kernel closes the pipe, the reaper reads EOF and
//! runs `pg_ctl stop -m immediate` and removes the cluster's directory. The
//! reaper lives in its own process group so a Ctrl-C at the terminal does not
//! kill it before it has cleaned up.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};

use crate::util::{self, TempDir};

/// Environment variable naming an existing PostgreSQL server to use instead
/// of starting a throwaway cluster, as a superuser URL, e.g.
/// `postgresql://postgres@127.0.0.1:5432/postgres`.
pub const PG_URL_ENV: &str = "WARDEN_TEST_PG_URL";
/// Environment variable naming the directory holding `initdb` and `pg_ctl`.
pub const PG_BIN_ENV: &str = "WARDEN_TEST_PG_BIN";

/// A PostgreSQL server for tests; see the module docs.
pub struct TestPostgres {
    host: String,
    port: u16,
    /// Superuser connection options for the `postgres` database.
    superuser: PgConnectOptions,
    superuser_name: String,
    cluster: Option<Cluster>,
}

struct Cluster {
    dir: PathBuf,
    pg_ctl: PathBuf,
    as_postgres_user: bool,
    /// The reaper process and the write end of its stdin pipe.
    reaper: Mutex<Option<(Child, ChildStdin)>>,
}

impl std::fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPostgres")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("superuser", &self.superuser_name)
            .field(
                "cluster_dir",
                &self.cluster.as_ref().map(|c| c.dir.display().to_string()),
            )
            .finish()
    }
}

static SHARED: OnceLock<std::result::Result<TestPostgres, String>> = OnceLock::new();

impl TestPostgres {
    /// The server all tests of this test binary share: `WARDEN_TEST_PG_URL`
    /// when set, else one throwaway cluster started on first use and stopped
    /// when the process exits. Panics (failing the test) when neither works.
    pub fn shared() -> &'static TestPostgres {
        let result = SHARED.get_or_init(|| TestPostgres::from_env().map_err(|e| format!("{e:#}")));
        match result {
            Ok(pg) => pg,
            Err(e) => panic!("no PostgreSQL for the tests: {e}"),
        }
    }

    /// `WARDEN_TEST_PG_URL` when set, else a new throwaway cluster.
    pub fn from_env() -> Result<TestPostgres> {
        match std::env::var(PG_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => TestPostgres::existing(url.trim()),
            _ => TestPostgres::start(),
        }
    }

    /// Use an existing server; `url` must name a superuser (or a role with
    /// CREATEDB and CREATEROLE) reachable over TCP.
    pub fn existing(url: &str) -> Result<TestPostgres> {
        let superuser =
            PgConnectOptions::from_str(url).with_context(|| format!("{PG_URL_ENV} is not a PostgreSQL URL"))?;
        if superuser.get_socket().is_some() {
            bail!("{PG_URL_ENV} must name a TCP host, not a socket directory");
        }
        Ok(TestPostgres {
            host: superuser.get_host().to_string(),
            port: superuser.get_port(),
            superuser_name: superuser.get_username().to_string(),
            superuser: superuser.database("postgres"),
            cluster: None,
        })
    }

    /// Start a new throwaway cluster: `initdb` into a temp dir (local socket
    /// trusted, TCP with scram-sha-256 so a wrong password really fails),
    /// `pg_ctl start` on a free port of 127.0.0.1 with fsync off. When this
    /// process runs as root, initdb and the server run as the `postgres` OS
    /// user. The cluster stops when the value is dropped, and at the latest
    /// when this process exits. `wal_level = logical`: the replication
    /// tests publish from it (a superset of the default `replica`).
    pub fn start() -> Result<TestPostgres> {
        TestPostgres::start_with_conf("wal_level = logical\n")
    }

    /// [`TestPostgres::start`] with `conf` appended to the cluster's
    /// postgresql.conf (it applies to every start, resume included).
    pub fn start_with_conf(conf: &str) -> Result<TestPostgres> {
        let bin = find_pg_bin()?;
        let initdb = bin.join("initdb");
        let pg_ctl = bin.join("pg_ctl");
        let as_postgres_user = util::running_as_root();

        // The directory outlives this function: the reaper removes it.
        // As root the server runs as `postgres`, which must reach the
        // directory: use /tmp rather than a TMPDIR that may be private.
        let dir = if as_postgres_user {
            TempDir::new_in(Path::new("/tmp"), "warden-pg")?
        } else {
            TempDir::new("warden-pg")?
        };
        let dir_path = dir.path().to_path_buf();
        std::mem::forget(dir);
        let data = dir_path.join("data");
        let sock = dir_path.join("sock");
        std::fs::create_dir_all(&sock)?;
        let password = util::random_alnum(24);
        let pwfile = dir_path.join("superuser-password");
        std::fs::write(&pwfile, format!("{password}\n"))?;
        if as_postgres_user {
            run_logged(
                Command::new("chown").arg("-R").arg("postgres:").arg(&dir_path),
                &dir_path.join("chown.log"),
            )
            .context("chown the cluster directory to the postgres OS user")?;
        }

        // The reaper first, so nothing started below can outlive us.
        let reaper =
            spawn_reaper(&dir_path, &pg_ctl, &data, as_postgres_user).context("spawn the cluster's reaper process")?;
        let cluster = Cluster {
            dir: dir_path.clone(),
            pg_ctl: pg_ctl.clone(),
            as_postgres_user,
            reaper: Mutex::new(Some(reaper)),
        };

        let mut initdb_cmd = pg_command(&initdb, as_postgres_user);
        initdb_cmd
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--locale=C", "--no-sync"]);
        run_logged(&mut initdb_cmd, &dir_path.join("initdb.log")).context("initdb")?;
        {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))
                .context("open postgresql.conf")?;
            file.write_all(format!("\n# The test harness's settings\n{conf}").as_bytes())?;
        }

        let mut last_error = anyhow!("no attempt");
        for _attempt in 0..5 {
            let port = util::free_port()?;
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=400",
                sock.display()
            );
            let mut start = pg_command(&pg_ctl, as_postgres_user);
            start
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir_path.join("postgres.log"))
                .arg("-o")
                .arg(options)
                .args(["-w", "-t", "60", "start"]);
            match run_logged(&mut start, &dir_path.join("pg_ctl.log")) {
                Ok(()) => {
                    let superuser = PgConnectOptions::new_without_pgpass()
                        .host("127.0.0.1")
                        .port(port)
                        .username("postgres")
                        .password(&password)
                        .database("postgres");
                    return Ok(TestPostgres {
                        host: "127.0.0.1".to_string(),
                        port,
                        superuser,
                        superuser_name: "postgres".to_string(),
                        cluster: Some(cluster),
                    });
                }
                Err(e) => {
                    last_error = e.context(format!(
                        "pg_ctl start on port {port}; server log:\n{}",
                        util::tail_of_file(&dir_path.join("postgres.log"), 4000)
                    ));
                }
            }
        }
        Err(last_error)
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The throwaway cluster's directory (data/, sock/, postgres.log).
    pub fn cluster_dir(&self) -> Option<&Path> {
        self.cluster.as_ref().map(|c| c.dir.as_path())
    }

    /// True for a throwaway cluster (TCP logins need the right password).
    /// An existing server may trust every login; see
    /// [`TestPostgres::password_auth_enforced`].
    pub fn is_throwaway(&self) -> bool {
        self.cluster.is_some()
    }

    /// Superuser connection options for `database`.
    pub fn superuser_options(&self, database: &str) -> PgConnectOptions {
        self.superuser.clone().database(database)
    }

    /// A new superuser connection to `database`.
    pub async fn superuser_connection(&self, database: &str) -> Result<PgConnection> {
        PgConnection::connect_with(&self.superuser_options(database))
            .await
            .with_context(|| format!("connect as superuser to {database} on port {}", self.port))
    }

    /// Options to log in as `user` with `password` to `database`.
    pub fn login_options(&self, user: &str, password: &str, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(user)
            .password(password)
            .database(database)
    }

    /// Whether the server rejects a wrong password over TCP (always true for
    /// the throwaway cluster; a probe for an existing server).
    pub async fn password_auth_enforced(&self) -> Result<bool> {
        if self.is_throwaway() {
            return Ok(true);
        }
        let wrong = self.login_options(
            &self.superuser_name,
            "warden-test-certainly-not-the-password",
            "postgres",
        );
        Ok(PgConnection::connect_with(&wrong).await.is_err())
    }

    /// A fresh database and admin login (LOGIN CREATEROLE, owner of the
    /// database) for one test. `label` goes into the names to ease debugging.
    pub async fn scratch(&self, label: &str) -> Result<Scratch> {
        let label: String = label
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(24)
            .collect();
        let suffix = util::random_alnum(8);
        let database = format!("wt_{label}_{suffix}");
        let admin_user = format!("wt_admin_{label}_{suffix}");
        let admin_password = util::random_alnum(24);
        let mut conn = self.superuser_connection("postgres").await?;
        sqlx::raw_sql(&format!(
            "CREATE ROLE \"{admin_user}\" WITH LOGIN CREATEROLE PASSWORD '{admin_password}'"
        ))
        .execute(&mut conn)
        .await
        .context("create the scratch admin role")?;
        sqlx::raw_sql(&format!("CREATE DATABASE \"{database}\" OWNER \"{admin_user}\""))
            .execute(&mut conn)
            .await
            .context("create the scratch database")?;
        conn.close().await.ok();
        Ok(Scratch {
            pg: self.clone_info(),
            database,
            admin_user,
            admin_password,
        })
    }

    fn clone_info(&self) -> PgInfo {
        PgInfo {
            host: self.host.clone(),
            port: self.port,
            superuser: self.superuser.clone(),
        }
    }
}

impl TestPostgres {
    /// Stop a throwaway cluster's server (`pg_ctl stop -m fast`), keeping
    /// its data: clients get "connection refused" until [`Self::resume`].
    pub fn pause(&self) -> Result<()> {
        let cluster = self
            .cluster
            .as_ref()
            .context("only a throwaway cluster can be paused")?;
        let mut stop = pg_command(&cluster.pg_ctl, cluster.as_postgres_user);
        stop.arg("-D")
            .arg(cluster.dir.join("data"))
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        run_logged(&mut stop, &cluster.dir.join("pg_ctl-pause.log")).context("pg_ctl stop (pause)")
    }

    /// Freeze (SIGSTOP) or thaw (SIGCONT) a throwaway cluster's server
    /// and its backends: a hung database, which accepts connections and
    /// never answers, open connections included.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let cluster = self
            .cluster
            .as_ref()
            .context("only a throwaway cluster can be frozen")?;
        let pidfile =
            std::fs::read_to_string(cluster.dir.join("data").join("postmaster.pid")).context("read postmaster.pid")?;
        let postmaster = pidfile.lines().next().unwrap_or_default().trim().to_string();
        let children = Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .context("pgrep")?;
        let mut pids = vec![postmaster];
        pids.extend(
            String::from_utf8_lossy(&children.stdout)
                .split_whitespace()
                .map(str::to_string),
        );
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill").arg(signal).args(&pids).status().context("kill")?;
        if !status.success() {
            bail!("kill {signal} {pids:?} failed");
        }
        Ok(())
    }

    /// Start a paused throwaway cluster again on the same port and data.
    pub fn resume(&self) -> Result<()> {
        let cluster = self
            .cluster
            .as_ref()
            .context("only a throwaway cluster can be resumed")?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=400",
            self.port,
            cluster.dir.join("sock").display()
        );
        let mut start = pg_command(&cluster.pg_ctl, cluster.as_postgres_user);
        start
            .arg("-D")
            .arg(cluster.dir.join("data"))
            .arg("-l")
            .arg(cluster.dir.join("postgres.log"))
            .arg("-o")
            .arg(options)
            .args(["-w", "-t", "60", "start"]);
        run_logged(&mut start, &cluster.dir.join("pg_ctl-resume.log")).context("pg_ctl start (resume)")
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.take() {
            cluster.stop();
        }
    }
}

impl Cluster {
    fn stop(self) {
        let mut stop = pg_command(&self.pg_ctl, self.as_postgres_user);
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = run_logged(&mut stop, &self.dir.join("pg_ctl-stop.log"));
        let reaper = self.reaper.lock().map(|mut g| g.take()).unwrap_or(None);
        if let Some((mut child, stdin)) = reaper {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

#[derive(Clone, Debug)]
struct PgInfo {
    host: String,
    port: u16,
    superuser: PgConnectOptions,
}

/// One test's database and admin login on the test PostgreSQL, with the
/// queries tests use to check what Warden did to the server.
#[derive(Clone, Debug)]
pub struct Scratch {
    pg: PgInfo,
    pub database: String,
    pub admin_user: String,
    pub admin_password: String,
}

impl Scratch {
    pub fn host(&self) -> &str {
        &self.pg.host
    }

    pub fn port(&self) -> u16 {
        self.pg.port
    }

    /// The templated URL for Warden's `connection_url`:
    /// `postgresql://{{username}}:{{password}}@HOST:PORT/DB`.
    pub fn connection_url_template(&self) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@{}:{}/{}",
            self.pg.host, self.pg.port, self.database
        )
    }

    /// Options to log in to this database as `user` with `password`.
    pub fn login_options(&self, user: &str, password: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .host(&self.pg.host)
            .port(self.pg.port)
            .username(user)
            .password(password)
            .database(&self.database)
    }

    /// Log in to this database as `user` with `password`.
    pub async fn connect_as(&self, user: &str, password: &str) -> std::result::Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(&self.login_options(user, password)).await
    }

    /// True when `user` can log in to this database with `password`.
    pub async fn logs_in(&self, user: &str, password: &str) -> bool {
        match self.connect_as(user, password).await {
            Ok(c) => {
                c.close().await.ok();
                true
            }
            Err(_) => false,
        }
    }

    /// A new login `<prefix>_<random>` with a known password, created by the
    /// database's admin (so the admin may change its password on any
    /// PostgreSQL version): (name, password).
    pub async fn create_login(&self, prefix: &str) -> Result<(String, String)> {
        let name = format!("{prefix}_{}", crate::util::random_alnum(6).to_lowercase());
        let password = format!("initial-{}", crate::util::random_alnum(12));
        let mut admin = self.connect_as(&self.admin_user, &self.admin_password).await?;
        sqlx::raw_sql(&format!("CREATE ROLE \"{name}\" WITH LOGIN PASSWORD '{password}'"))
            .execute(&mut admin)
            .await
            .context("create a login")?;
        admin.close().await.ok();
        Ok((name, password))
    }

    /// A superuser connection to this database.
    pub async fn superuser(&self) -> Result<PgConnection> {
        PgConnection::connect_with(&self.pg.superuser.clone().database(&self.database))
            .await
            .context("connect as superuser to the scratch database")
    }

    /// Whether a role (login) of this name exists in the cluster.
    pub async fn role_exists(&self, name: &str) -> Result<bool> {
        let mut conn = self.superuser().await?;
        let row = sqlx::query("SELECT count(*) FROM pg_roles WHERE rolname = $1")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
        let n: i64 = row.try_get(0)?;
        conn.close().await.ok();
        Ok(n > 0)
    }

    /// Names of roles matching a LIKE pattern (e.g. `v-%-fail-%`), sorted.
    pub async fn roles_like(&self, pattern: &str) -> Result<Vec<String>> {
        let mut conn = self.superuser().await?;
        let rows = sqlx::query("SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1 ORDER BY 1")
            .bind(pattern)
            .fetch_all(&mut conn)
            .await?;
        conn.close().await.ok();
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(Into::into))
            .collect()
    }

    /// The role's VALID UNTIL as Unix seconds (None when it has none).
    /// Errors when the role does not exist.
    pub async fn valid_until(&self, name: &str) -> Result<Option<f64>> {
        let mut conn = self.superuser().await?;
        let row = sqlx::query("SELECT extract(epoch FROM rolvaliduntil)::float8 FROM pg_roles WHERE rolname = $1")
            .bind(name)
            .fetch_optional(&mut conn)
            .await?;
        conn.close().await.ok();
        let row = row.ok_or_else(|| anyhow!("role {name:?} does not exist"))?;
        Ok(row.try_get::<Option<f64>, _>(0)?)
    }

    /// The role's stored password hash from pg_authid (e.g. `SCRAM-SHA-256$...`).
    /// Errors when the role does not exist.
    pub async fn password_hash(&self, name: &str) -> Result<Option<String>> {
        let mut conn = self.superuser().await?;
        let row = sqlx::query("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(name)
            .fetch_optional(&mut conn)
            .await?;
        conn.close().await.ok();
        let row = row.ok_or_else(|| anyhow!("role {name:?} does not exist"))?;
        Ok(row.try_get::<Option<String>, _>(0)?)
    }

    /// Parse an RFC 3339 timestamp (as Vault prints them) to Unix seconds,
    /// using the server's parser.
    pub async fn parse_timestamp(&self, ts: &str) -> Result<f64> {
        let mut conn = self.superuser().await?;
        let row = sqlx::query("SELECT extract(epoch FROM $1::timestamptz)::float8")
            .bind(ts)
            .fetch_one(&mut conn)
            .await
            .with_context(|| format!("parse timestamp {ts:?}"))?;
        conn.close().await.ok();
        Ok(row.try_get::<f64, _>(0)?)
    }

    /// The server's clock as Unix seconds.
    pub async fn now(&self) -> Result<f64> {
        let mut conn = self.superuser().await?;
        let row = sqlx::query("SELECT extract(epoch FROM clock_timestamp())::float8")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await.ok();
        Ok(row.try_get::<f64, _>(0)?)
    }

    /// Wait until none of `names` exists, polling every 200 ms up to
    /// `timeout`; returns the names still there at the end.
    pub async fn wait_roles_gone(&self, names: &[String], timeout: Duration) -> Result<Vec<String>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut left = Vec::new();
            for name in names {
                if self.role_exists(name).await? {
                    left.push(name.clone());
                }
            }
            if left.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(left);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Locate initdb/pg_ctl: `WARDEN_TEST_PG_BIN`, PATH, the newest
/// /usr/lib/postgresql/*/bin, /usr/local/bin, /usr/local/pgsql/bin.
pub fn find_pg_bin() -> Result<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(PG_BIN_ENV) {
        let dir = PathBuf::from(dir);
        if has_tools(&dir) {
            return Ok(dir);
        }
        bail!("{PG_BIN_ENV}={} has no initdb and pg_ctl", dir.display());
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    Some((version, e.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    versioned.sort();
    candidates.extend(versioned.into_iter().rev().map(|(_, p)| p));
    candidates.push(PathBuf::from("/usr/local/bin"));
    candidates.push(PathBuf::from("/usr/local/pgsql/bin"));
    candidates.into_iter().find(|d| has_tools(d)).ok_or_else(|| {
        anyhow!(
            "initdb and pg_ctl not found (PATH, /usr/lib/postgresql/*/bin, /usr/local/bin); \
                 install PostgreSQL (apt-get install -y postgresql), set {PG_BIN_ENV}, \
                 or point {PG_URL_ENV} at a running server"
        )
    })
}

/// A command for a PostgreSQL tool, run as the `postgres` OS user when
/// `as_postgres_user` (initdb and postgres refuse to run as root).
fn pg_command(program: &Path, as_postgres_user: bool) -> Command {
    let mut cmd = if as_postgres_user {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    // Keep the tools from picking up a developer's PG* settings.
    for var in ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGDATA"] {
        cmd.env_remove(var);
    }
    cmd
}

/// Run to completion with stdout and stderr in `log` (never a pipe: pg_ctl's
/// server would inherit it and keep it open); on failure the error carries
/// the log's tail.
fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    let file = File::create(log).with_context(|| format!("create {}", log.display()))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status}):\n{}", util::tail_of_file(log, 4000));
    }
    Ok(())
}

/// The reaper: waits for EOF on stdin (our process exiting closes it), then
/// stops the cluster and removes its directory.
fn spawn_reaper(dir: &Path, pg_ctl: &Path, data: &Path, as_postgres_user: bool) -> Result<(Child, ChildStdin)> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"cat >/dev/null; "$@" >/dev/null 2>&1; rm -rf "$WARDEN_PG_DIR""#)
        .arg("warden-pg-reaper");
    if as_postgres_user {
        cmd.args(["runuser", "-u", "postgres", "--"]);
    }
    cmd.arg(pg_ctl)
        .arg("-D")
        .arg(data)
        .args(["-m", "immediate", "-w", "stop"])
        .env("WARDEN_PG_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("reaper has no stdin"))?;
    // Not needed for EOF detection; proves the pipe is alive.
    stdin.flush()?;
    Ok((child, stdin))
}
