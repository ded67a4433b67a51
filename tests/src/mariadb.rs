//! A real MariaDB for the tests: a throwaway server (mariadb-install-db +
//! mariadbd in a temp dir, TCP on a free port of 127.0.0.1, password logins
//! so a wrong password really fails), shared by the tests of one test
//! binary. Each test takes a [`MyScratch`]: its own database and its own
//! admin login (ALL PRIVILEGES WITH GRANT OPTION, password required), so
//! tests sharing the server do not see each other's sessions.
//!
//! Cleanup, as for PostgreSQL (tests/src/postgres.rs): a reaper process
//! (`sh`) holds the read end of a pipe whose write end this process keeps;
//! when this process ends in any way the reaper reads EOF, kills the server
//! by its pid file and removes the directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{Connection, Row};

use crate::util::{self, TempDir};

/// A throwaway MariaDB server; see the module docs.
pub struct TestMariaDb {
    port: u16,
    root_password: String,
    dir: PathBuf,
    server: Mutex<Option<Child>>,
    reaper: Mutex<Option<(Child, ChildStdin)>>,
}

impl std::fmt::Debug for TestMariaDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestMariaDb")
            .field("port", &self.port)
            .field("dir", &self.dir)
            .finish()
    }
}

static SHARED: OnceLock<std::result::Result<TestMariaDb, String>> = OnceLock::new();

/// Locate a program in PATH or the sbin directories Debian installs to.
fn find(program: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(program)).find(|p| p.is_file())
}

impl TestMariaDb {
    /// The server all tests of this binary share, started on first use.
    pub fn shared() -> &'static TestMariaDb {
        match SHARED.get_or_init(|| TestMariaDb::start().map_err(|e| format!("{e:#}"))) {
            Ok(db) => db,
            Err(e) => panic!("no MariaDB for the tests: {e}"),
        }
    }

    /// Initialise a data directory and start mariadbd on a free port.
    pub fn start() -> Result<TestMariaDb> {
        let mariadbd = find("mariadbd")
            .or_else(|| find("mysqld"))
            .ok_or_else(|| anyhow!("mariadbd not found; install MariaDB (apt-get install -y mariadb-server)"))?;
        let install = find("mariadb-install-db")
            .or_else(|| find("mysql_install_db"))
            .ok_or_else(|| anyhow!("mariadb-install-db not found; apt-get install -y mariadb-server"))?;
        let dir = TempDir::new_in(Path::new("/tmp"), "warden-mariadb")?;
        let dir_path = dir.path().to_path_buf();
        // The reaper removes the directory.
        std::mem::forget(dir);
        let data = dir_path.join("data");
        let socket = dir_path.join("mysqld.sock");
        let pid_file = dir_path.join("mysqld.pid");
        let user = if util::running_as_root() {
            "root".to_string()
        } else {
            whoami()
        };
        let reaper = spawn_reaper(&dir_path, &pid_file)?;

        let log = std::fs::File::create(dir_path.join("install.log"))?;
        let status = Command::new(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .args(["--auth-root-authentication-method=socket", "--skip-test-db"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .context("run mariadb-install-db")?;
        if !status.success() {
            bail!(
                "mariadb-install-db failed: {}",
                util::tail_of_file(&dir_path.join("install.log"), 3000)
            );
        }

        let port = util::free_port()?;
        let err_log = dir_path.join("mariadb.log");
        let server = Command::new(&mariadbd)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", pid_file.display()))
            .arg(format!("--log-error={}", err_log.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--user={user}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-networking=0",
                "--skip-name-resolve",
                "--max-connections=500",
                "--innodb-buffer-pool-size=64M",
                "--innodb-flush-log-at-trx-commit=0",
                "--skip-log-bin",
                "--performance-schema=OFF",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start mariadbd")?;

        let root_password = util::random_alnum(24);
        let db = TestMariaDb {
            port,
            root_password: root_password.clone(),
            dir: dir_path.clone(),
            server: Mutex::new(Some(server)),
            reaper: Mutex::new(Some(reaper)),
        };
        // Over the socket (root logs in by unix identity), with the mariadb
        // client (this may run inside the tests' async runtime): make the
        // TCP admin this harness uses, and drop anonymous accounts, which
        // would shadow '%' accounts of other names.
        let client = find("mariadb")
            .or_else(|| find("mysql"))
            .ok_or_else(|| anyhow!("the mariadb client is missing; apt-get install -y mariadb-server"))?;
        let sql = |statement: &str| {
            Command::new(&client)
                .arg("--no-defaults")
                .arg(format!("--socket={}", socket.display()))
                .args(["-u", "root", "-N", "-B", "-e", statement])
                .stdin(Stdio::null())
                .output()
        };
        let started = Instant::now();
        loop {
            match sql("SELECT 1") {
                Ok(out) if out.status.success() => break,
                _ if started.elapsed() > Duration::from_secs(60) => bail!(
                    "mariadbd did not accept connections; log:\n{}",
                    util::tail_of_file(&err_log, 3000)
                ),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let setup = format!(
            "CREATE USER 'warden_root'@'%' IDENTIFIED BY '{root_password}'; \
             GRANT ALL PRIVILEGES ON *.* TO 'warden_root'@'%' WITH GRANT OPTION; \
             SELECT CONCAT('DROP USER IF EXISTS ''''@''', Host, ''';') FROM mysql.user WHERE User = ''"
        );
        let out = sql(&setup).context("run the mariadb client")?;
        if !out.status.success() {
            bail!("setting up MariaDB failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let drops = String::from_utf8_lossy(&out.stdout).to_string();
        if !drops.trim().is_empty() {
            let out = sql(&drops).context("drop anonymous accounts")?;
            if !out.status.success() {
                bail!(
                    "dropping anonymous accounts failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(db)
    }

    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Options to log in over TCP as `user` with `password`.
    pub fn login_options(&self, user: &str, password: &str) -> MySqlConnectOptions {
        MySqlConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username(user)
            .password(password)
    }

    /// A connection as the harness's all-powerful TCP admin.
    pub async fn root(&self) -> Result<MySqlConnection> {
        MySqlConnection::connect_with(&self.login_options("warden_root", &self.root_password))
            .await
            .context("connect to MariaDB as warden_root")
    }

    /// A fresh database and admin login for one test.
    pub async fn scratch(&self, label: &str) -> Result<MyScratch> {
        let label: String = label
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(20)
            .collect();
        let suffix = util::random_alnum(6).to_ascii_lowercase();
        let database = format!("wt_{label}_{suffix}");
        let admin_user = format!("wa_{suffix}");
        let admin_password = util::random_alnum(24);
        let mut conn = self.root().await?;
        sqlx::raw_sql(&format!(
            "CREATE DATABASE `{database}`; \
             CREATE TABLE `{database}`.items (id INT PRIMARY KEY, name TEXT); \
             INSERT INTO `{database}`.items VALUES (1, 'one'); \
             CREATE USER '{admin_user}'@'%' IDENTIFIED BY '{admin_password}'; \
             GRANT ALL PRIVILEGES ON *.* TO '{admin_user}'@'%' WITH GRANT OPTION"
        ))
        .execute(&mut conn)
        .await
        .context("create the scratch database and admin")?;
        conn.close().await.ok();
        Ok(MyScratch {
            port: self.port,
            root_password: self.root_password.clone(),
            database,
            admin_user,
            admin_password,
        })
    }
}

impl Drop for TestMariaDb {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.lock().ok().and_then(|mut s| s.take()) {
            let _ = server.kill();
            let _ = server.wait();
        }
        if let Some((mut child, stdin)) = self.reaper.lock().ok().and_then(|mut r| r.take()) {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// One test's database and admin login, with the queries tests use to
/// check what Warden did.
#[derive(Clone, Debug)]
pub struct MyScratch {
    port: u16,
    root_password: String,
    pub database: String,
    pub admin_user: String,
    pub admin_password: String,
}

impl MyScratch {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Vault's docs' Go DSN: `{{username}}:{{password}}@tcp(127.0.0.1:PORT)/`.
    pub fn go_dsn_template(&self) -> String {
        format!("{{{{username}}}}:{{{{password}}}}@tcp(127.0.0.1:{})/", self.port)
    }

    /// `mysql://{{username}}:{{password}}@127.0.0.1:PORT/DB`.
    pub fn url_template(&self) -> String {
        format!(
            "mysql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/{}",
            self.port, self.database
        )
    }

    /// Log in over TCP as `user` with `password` to this database.
    pub async fn connect_as(&self, user: &str, password: &str) -> std::result::Result<MySqlConnection, sqlx::Error> {
        let options = MySqlConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username(user)
            .password(password)
            .database(&self.database);
        MySqlConnection::connect_with(&options).await
    }

    async fn root(&self) -> Result<MySqlConnection> {
        let options = MySqlConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("warden_root")
            .password(&self.root_password);
        MySqlConnection::connect_with(&options)
            .await
            .context("connect to MariaDB as warden_root")
    }

    /// Whether any account (on any host part) of this name exists.
    pub async fn user_exists(&self, name: &str) -> Result<bool> {
        Ok(!self.users_like(name).await?.is_empty())
    }

    /// Account names matching a LIKE pattern, sorted.
    pub async fn users_like(&self, pattern: &str) -> Result<Vec<String>> {
        let mut conn = self.root().await?;
        let rows = sqlx::query("SELECT DISTINCT CAST(User AS CHAR) FROM mysql.user WHERE User LIKE ? ORDER BY 1")
            .bind(pattern)
            .fetch_all(&mut conn)
            .await?;
        conn.close().await.ok();
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(Into::into))
            .collect()
    }

    /// Sessions the server has open for `user` (its process list).
    pub async fn sessions_of(&self, user: &str) -> Result<i64> {
        let mut conn = self.root().await?;
        let row = sqlx::query("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?")
            .bind(user)
            .fetch_one(&mut conn)
            .await?;
        conn.close().await.ok();
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Wait until none of `names` exists; returns those still there.
    pub async fn wait_users_gone(&self, names: &[String], timeout: Duration) -> Result<Vec<String>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut left = Vec::new();
            for name in names {
                if self.user_exists(name).await? {
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

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "nobody".to_string())
}

/// The reaper: waits for EOF on stdin (our process exiting closes it),
/// then kills the server by its pid file and removes the directory.
fn spawn_reaper(dir: &Path, pid_file: &Path) -> Result<(Child, ChildStdin)> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(
            r#"cat >/dev/null; pid=$(cat "$WARDEN_MY_PID" 2>/dev/null); [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; sleep 0.3; rm -rf "$WARDEN_MY_DIR""#,
        )
        .env("WARDEN_MY_DIR", dir)
        .env("WARDEN_MY_PID", pid_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn().context("spawn the MariaDB reaper")?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("reaper has no stdin"))?;
    stdin.flush()?;
    Ok((child, stdin))
}
