//! A real MongoDB-compatible server for the tests: secantusdb (a MongoDB
//! wire-protocol server in Python, from PyPI; GPL, installed for tests and
//! never bundled), in a virtualenv under `<target>/mongo-venv` made on first
//! use, started on a free port of 127.0.0.1 in a temp directory with
//! authentication on and an `admin` user holding `root`. See
//! shared/reference/mongodb-test-server.md for why this server and how it
//! differs from mongod.
//!
//! Start-up runs the server twice: once without `--auth` to create the admin
//! user (there is no localhost exception), then with `--auth`. Cleanup as for
//! PostgreSQL: a reaper process (`sh`) whose stdin is a pipe only this
//! process holds stops the server (its pid is in a file) and removes the
//! directory when this process ends in any way; dropping a
//! [`TestMongo::start`] value stops it at once.
//!
//! Clients of the mongodb crate spawn tasks on the runtime that made them,
//! so nothing here keeps a client: every helper makes its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use mongodb::bson::{Document, doc};
use mongodb::options::ClientOptions;

use crate::util::{self, TempDir};

/// The secantusdb release the harness installs (every release is a
/// pre-release, so the version must be pinned).
pub const SECANTUS_VERSION: &str = "0.7.0b3";
/// The Python that creates the virtualenv: `WARDEN_TEST_PYTHON`, else `python3`.
/// The admin user's name; its password is random per server.
pub const ADMIN_USER: &str = "admin";

pub struct TestMongo {
    port: u16,
    admin_password: String,
    dir: PathBuf,
    server: Mutex<Option<Child>>,
    reaper: Mutex<Option<(Child, ChildStdin)>>,
}

impl std::fmt::Debug for TestMongo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestMongo")
            .field("port", &self.port)
            .field("dir", &self.dir)
            .finish()
    }
}

static SHARED: OnceLock<std::result::Result<TestMongo, String>> = OnceLock::new();

impl TestMongo {
    /// The server every test of this test binary shares, started on first
    /// use and stopped when the process exits. Panics when it cannot start.
    pub fn shared() -> &'static TestMongo {
        let result = SHARED.get_or_init(|| TestMongo::start().map_err(|e| format!("{e:#}")));
        match result {
            Ok(m) => m,
            Err(e) => panic!("no MongoDB-compatible server for the tests: {e}"),
        }
    }

    /// A new server (installing secantusdb into the venv when needed). It
    /// stops when the value is dropped. Blocks; it runs its own runtime in a
    /// thread of its own, so it can be called from async code.
    pub fn start() -> Result<TestMongo> {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(start_server())
        })
        .join()
        .map_err(|_| anyhow!("the MongoDB start-up thread panicked"))?
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    /// The admin's URL (authenticating against `admin`).
    pub fn admin_url(&self) -> String {
        format!(
            "mongodb://{ADMIN_USER}:{}@127.0.0.1:{}/admin",
            self.admin_password, self.port
        )
    }

    /// Warden's connection_url template: `mongodb://{{username}}:{{password}}@127.0.0.1:PORT/admin`.
    pub fn url_template(&self) -> String {
        format!(
            "mongodb://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/admin",
            self.port
        )
    }

    /// A closed port on this machine, for unreachable-server tests.
    pub fn closed_port() -> Result<u16> {
        util::free_port().context("find a free port")
    }

    /// A new client logged in as the admin.
    pub async fn admin(&self) -> Result<mongodb::Client> {
        self.login(ADMIN_USER, &self.admin_password, "admin").await
    }

    /// Log in as `user` (whose credentials live in `auth_db`); the login
    /// happens here (a ping), so a wrong password is an error.
    pub async fn login(&self, user: &str, password: &str, auth_db: &str) -> Result<mongodb::Client> {
        login(self.port, user, password, auth_db).await
    }

    /// Whether `user` exists in `db` (usersInfo as the admin).
    pub async fn user_exists(&self, user: &str, db: &str) -> Result<bool> {
        let admin = self.admin().await?;
        let reply = admin.database(db).run_command(doc! { "usersInfo": user }).await?;
        admin.shutdown().await;
        let users = reply.get_array("users").map(|a| a.len()).unwrap_or(0);
        Ok(users > 0)
    }

    /// The names of every user whose credentials live in `db`, sorted.
    pub async fn users_in(&self, db: &str) -> Result<Vec<String>> {
        let admin = self.admin().await?;
        let reply = admin.database(db).run_command(doc! { "usersInfo": 1 }).await?;
        admin.shutdown().await;
        let mut names: Vec<String> = reply
            .get_array("users")
            .context("usersInfo without users")?
            .iter()
            .filter_map(|u| u.as_document())
            .filter(|u| u.get_str("db").is_ok_and(|d| d == db))
            .filter_map(|u| u.get_str("user").ok().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The roles `user` in `db` holds, as (role, db) pairs, sorted.
    pub async fn roles_of(&self, user: &str, db: &str) -> Result<Vec<(String, String)>> {
        let admin = self.admin().await?;
        let reply = admin.database(db).run_command(doc! { "usersInfo": user }).await?;
        admin.shutdown().await;
        let users = reply.get_array("users").context("usersInfo without users")?;
        let user_doc = users
            .first()
            .and_then(|u| u.as_document())
            .ok_or_else(|| anyhow!("user {user} not found in {db}"))?;
        let mut roles: Vec<(String, String)> = user_doc
            .get_array("roles")
            .context("user without roles")?
            .iter()
            .filter_map(|r| r.as_document())
            .map(|r| {
                (
                    r.get_str("role").unwrap_or_default().to_string(),
                    r.get_str("db").unwrap_or_default().to_string(),
                )
            })
            .collect();
        roles.sort();
        Ok(roles)
    }
}

impl Drop for TestMongo {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.lock().ok().and_then(|mut g| g.take()) {
            terminate(&mut server);
        }
        if let Some((mut child, stdin)) = self.reaper.lock().ok().and_then(|mut g| g.take()) {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// Log in as `user` to the server on `port`.
pub async fn login(port: u16, user: &str, password: &str, auth_db: &str) -> Result<mongodb::Client> {
    let url = format!(
        "mongodb://{}:{}@127.0.0.1:{port}/?authSource={}&serverSelectionTimeoutMS=5000&connectTimeoutMS=5000",
        enc(user),
        enc(password),
        enc(auth_db)
    );
    let client = mongodb::Client::with_options(ClientOptions::parse(&url).await?)?;
    client
        .database(auth_db)
        .run_command(doc! { "ping": 1 })
        .await
        .with_context(|| format!("log in as {user} (auth db {auth_db})"))?;
    Ok(client)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Whether a command failed because the user lacks the right (code 13).
pub fn is_unauthorized(e: &mongodb::error::Error) -> bool {
    matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(c) if c.code == 13)
        || e.to_string().contains("not authorized")
}

/// Insert `{x: 1}` into `db.coll` and report the outcome.
pub async fn try_insert(client: &mongodb::Client, db: &str) -> std::result::Result<(), mongodb::error::Error> {
    client
        .database(db)
        .collection::<Document>("t")
        .insert_one(doc! { "x": 1 })
        .await
        .map(drop)
}

/// Count the documents of `db.t`.
pub async fn try_count(client: &mongodb::Client, db: &str) -> std::result::Result<u64, mongodb::error::Error> {
    client
        .database(db)
        .collection::<Document>("t")
        .count_documents(doc! {})
        .await
}

async fn start_server() -> Result<TestMongo> {
    let venv = tokio::task::spawn_blocking(ensure_venv).await??;
    let daemon = venv.join("bin").join("secantusd-py");
    let dir = TempDir::new("warden-mongo")?;
    let dir_path = dir.path().to_path_buf();
    // The reaper removes the directory, whenever this process ends.
    std::mem::forget(dir);
    let reaper = spawn_reaper(&dir_path).context("spawn the server's reaper process")?;
    let admin_password = util::random_alnum(24);
    let mut last_error = anyhow!("no attempt");
    for _attempt in 0..4 {
        let port = util::free_port()?;
        match boot(&daemon, &dir_path, port, &admin_password).await {
            Ok(server) => {
                return Ok(TestMongo {
                    port,
                    admin_password,
                    dir: dir_path,
                    server: Mutex::new(Some(server)),
                    reaper: Mutex::new(Some(reaper)),
                });
            }
            Err(e) => last_error = e.context(format!("start secantusdb on port {port}")),
        }
    }
    Err(last_error)
}

/// Create the admin without auth, then start the real server with auth.
async fn boot(daemon: &Path, dir: &Path, port: u16, admin_password: &str) -> Result<Child> {
    let data = dir.join(format!("data-{port}"));
    std::fs::create_dir_all(&data)?;
    let mut first = spawn_daemon(daemon, dir, &data, port, false)?;
    let created = async {
        let url = format!("mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=30000");
        let client = mongodb::Client::with_options(ClientOptions::parse(&url).await?)?;
        client
            .database("admin")
            .run_command(doc! {
                "createUser": ADMIN_USER,
                "pwd": admin_password,
                "roles": ["root"],
                "mechanisms": ["SCRAM-SHA-256", "SCRAM-SHA-1"],
            })
            .await
            .context("create the admin user")?;
        client.shutdown().await;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    terminate(&mut first);
    created.with_context(|| format!("server log:\n{}", util::tail_of_file(&dir.join("server.log"), 4000)))?;

    let mut server = spawn_daemon(daemon, dir, &data, port, true)?;
    for _ in 0..120 {
        if let Some(status) = server.try_wait()? {
            bail!(
                "secantusdb exited with {status}; log:\n{}",
                util::tail_of_file(&dir.join("server.log"), 4000)
            );
        }
        if let Ok(c) = login(port, ADMIN_USER, admin_password, "admin").await {
            c.shutdown().await;
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    terminate(&mut server);
    bail!("secantusdb did not accept the admin's login within 30 s")
}

fn spawn_daemon(daemon: &Path, dir: &Path, data: &Path, port: u16, auth: bool) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))?;
    let mut cmd = Command::new(daemon);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--storage-path"])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if auth {
        cmd.arg("--auth");
    }
    let child = cmd.spawn().with_context(|| format!("run {}", daemon.display()))?;
    std::fs::write(dir.join("pid"), child.id().to_string())?;
    Ok(child)
}

/// SIGTERM, then SIGKILL after 10 s.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn spawn_reaper(dir: &Path) -> Result<(Child, ChildStdin)> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(
            r#"cat >/dev/null; p=$(cat "$D/pid" 2>/dev/null); [ -n "$p" ] && kill -TERM "$p" 2>/dev/null;
               i=0; while [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done;
               [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; rm -rf "$D""#,
        )
        .env("D", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("reaper has no stdin"))?;
    stdin.flush()?;
    Ok((child, stdin))
}

/// `<target>/mongo-venv` with secantusdb installed; made (or repaired) only
/// when its daemon is missing or reports another version.
pub fn ensure_venv() -> Result<PathBuf> {
    crate::util::pip_venv("mongo-venv", "secantusdb", SECANTUS_VERSION, "secantusd-py")
}
