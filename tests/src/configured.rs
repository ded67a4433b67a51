//! A `warden server -config=FILE` process over storage that outlives it, for
//! restart, seal and crash tests. The data directory (SQLite file) belongs to
//! the [`Node`], not to one process: stop, kill (SIGKILL) and start again.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::client::Client;
use crate::server::warden_bin;
use crate::util::{self, TempDir};

/// Where a node keeps its data.
#[derive(Clone, Debug)]
pub enum NodeStorage {
    /// In memory (nothing survives the process), for comparisons.
    Inmem,
    Sqlite,
    /// A PostgreSQL URL and table.
    Postgresql {
        url: String,
        table: String,
    },
    /// PostgreSQL with HA on: nodes sharing `table` and `ha_table` elect
    /// one active node; each node gets a cluster address of its own.
    PostgresqlHa {
        url: String,
        table: String,
        ha_table: String,
    },
}

/// A node: configuration, data directory, and maybe a running process.
pub struct Node {
    pub dir: TempDir,
    pub storage: NodeStorage,
    addr: String,
    /// The cluster listener's address (HA storage only).
    cluster_addr: Option<String>,
    child: Option<Child>,
    starts: u32,
    /// More HCL appended to the generated configuration.
    pub extra_config: String,
    /// Environment variables of the next start (a fault point's
    /// `WARDEN_TEST_FAULT`).
    pub env: Vec<(String, String)>,
}

impl Node {
    pub fn new(storage: NodeStorage) -> Result<Node> {
        let dir = TempDir::new("warden-node")?;
        let port = util::free_port()?;
        let cluster_addr = match &storage {
            NodeStorage::PostgresqlHa { .. } => Some(format!("127.0.0.1:{}", util::free_port()?)),
            _ => None,
        };
        Ok(Node {
            dir,
            storage,
            addr: format!("127.0.0.1:{port}"),
            cluster_addr,
            child: None,
            starts: 0,
            extra_config: String::new(),
            env: Vec::new(),
        })
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("warden.db")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("warden.hcl")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The cluster address (`https://...`) of an HA node.
    pub fn cluster_url(&self) -> Option<String> {
        self.cluster_addr.as_ref().map(|c| format!("https://{c}"))
    }

    /// A client with `token` (None: no token).
    pub fn client(&self, token: Option<&str>) -> Client {
        Client::new(&self.url(), token)
    }

    /// The configuration this node runs with.
    pub fn config_text(&self) -> String {
        let storage = match &self.storage {
            NodeStorage::Inmem => "storage \"inmem\" {}".to_string(),
            NodeStorage::Sqlite => format!(
                "storage \"sqlite\" {{\n  path = \"{}\"\n}}",
                self.sqlite_path().display()
            ),
            NodeStorage::Postgresql { url, table } => {
                format!("storage \"postgresql\" {{\n  connection_url = \"{url}\"\n  table = \"{table}\"\n}}")
            }
            NodeStorage::PostgresqlHa { url, table, ha_table } => format!(
                "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n  table = \"{table}\"\n  \
                 ha_enabled = \"true\"\n  ha_table = \"{ha_table}\"\n}}"
            ),
        };
        let (cluster_listener, addresses) = match &self.cluster_addr {
            Some(c) => (
                format!("  cluster_address = \"{c}\"\n"),
                format!("api_addr = \"http://{}\"\ncluster_addr = \"https://{c}\"\n", self.addr),
            ),
            None => (String::new(), String::new()),
        };
        format!(
            "{storage}\n\nlistener \"tcp\" {{\n  address = \"{}\"\n  tls_disable = true\n{cluster_listener}}}\n\n{addresses}disable_mlock = true\nlog_level = \"info\"\n{}",
            self.addr, self.extra_config
        )
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("warden-{}.log", self.starts))
    }

    /// Start the process and wait until it answers sys/health.
    pub async fn start(&mut self) -> Result<()> {
        std::fs::write(self.config_path(), self.config_text())?;
        self.starts += 1;
        let log = File::create(self.log_path())?;
        let mut cmd = Command::new(warden_bin());
        cmd.arg("server")
            .arg(format!("-config={}", self.config_path().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = cmd.spawn().context("spawn warden")?;
        self.child = Some(child);
        let client = self.client(None);
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                bail!("warden exited during start-up ({status}):\n{}", self.log_tail());
            }
            if let Ok((status, _)) = client.req("GET", "/v1/sys/health", None).await
                // Active, standby (an HA node that unseals itself at start),
                // sealed or not initialised.
                && matches!(status, 200 | 429 | 501 | 503)
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("warden did not answer within 60 s:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Run the binary with this node's configuration and expect it to fail
    /// at start-up; returns its output.
    pub fn start_expecting_failure(&self, config: &Path) -> Result<String> {
        let out = Command::new(warden_bin())
            .arg("server")
            .arg(format!("-config={}", config.display()))
            .stdin(Stdio::null())
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            bail!("warden started (and exited 0) although it should have failed:\n{text}");
        }
        Ok(text)
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_tail(&self) -> String {
        util::tail_of_file(&self.log_path(), 8000)
    }

    /// `sys/init` with shares and threshold; returns (hex keys, root token).
    pub async fn init(&self, shares: u8, threshold: u8) -> Result<(Vec<String>, String)> {
        let (status, body) = self
            .client(None)
            .req(
                "PUT",
                "/v1/sys/init",
                Some(json!({"secret_shares": shares, "secret_threshold": threshold})),
            )
            .await?;
        if status != 200 {
            bail!("init: {status} {body}");
        }
        let keys = body["keys"]
            .as_array()
            .ok_or_else(|| anyhow!("init gave no keys: {body}"))?
            .iter()
            .filter_map(|k| k.as_str().map(String::from))
            .collect();
        let token = body["root_token"].as_str().unwrap_or_default().to_string();
        Ok((keys, token))
    }

    /// Enter `keys` one by one; returns the last seal status.
    pub async fn unseal(&self, keys: &[&str]) -> Result<Value> {
        let mut last = Value::Null;
        for key in keys {
            let (status, body) = self
                .client(None)
                .req("PUT", "/v1/sys/unseal", Some(json!({ "key": key })))
                .await?;
            if status != 200 {
                bail!("unseal: {status} {body}");
            }
            last = body;
        }
        Ok(last)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- warden output ----\n{}\n---- end ----", self.log_tail());
        }
        self.kill();
    }
}
