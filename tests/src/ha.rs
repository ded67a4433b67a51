//! Several `warden` processes with HA on one PostgreSQL database (the
//! shared test server): started, initialised through one node, unsealed,
//! and asked who is active. What the HA tests and `ha_bench` share.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::client::Client;
use crate::configured::{Node, NodeStorage};
use crate::postgres::{Scratch, TestPostgres};

pub struct HaCluster {
    pub nodes: Vec<Node>,
    pub keys: Vec<String>,
    pub root_token: String,
    /// The storage's database.
    pub storage: Scratch,
}

/// What a node says it is, by `sys/health`'s status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Active,
    Standby,
    Sealed,
    Down,
}

impl HaCluster {
    /// `n` nodes on one storage database of the shared test server,
    /// started, initialised (one key) and unsealed.
    pub async fn start(n: usize, label: &str) -> Result<HaCluster> {
        let cluster = HaCluster::new(TestPostgres::shared(), n, label, &[]).await?;
        for i in 0..n {
            cluster.unseal(i).await?;
        }
        Ok(cluster)
    }

    /// `n` nodes on a storage database of `pg`, started and initialised
    /// through node 0, all sealed; `env` gives node `.0` the environment
    /// variable `.1` = `.2` (a test fault).
    pub async fn new(pg: &TestPostgres, n: usize, label: &str, env: &[(usize, &str, &str)]) -> Result<HaCluster> {
        let storage = pg.scratch(label).await?;
        let url = storage
            .connection_url_template()
            .replace("{{username}}", &storage.admin_user)
            .replace("{{password}}", &storage.admin_password);
        let mut nodes = Vec::new();
        for i in 0..n {
            let mut node = Node::new(NodeStorage::PostgresqlHa {
                url: url.clone(),
                table: "warden_store".into(),
                ha_table: "warden_ha".into(),
            })?;
            for (_, k, v) in env.iter().filter(|(n, _, _)| *n == i) {
                node.env.push((k.to_string(), v.to_string()));
            }
            node.start().await?;
            nodes.push(node);
        }
        let (keys, root_token) = nodes[0].init(1, 1).await?;
        Ok(HaCluster {
            nodes,
            keys,
            root_token,
            storage,
        })
    }

    pub async fn unseal(&self, i: usize) -> Result<()> {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        self.nodes[i].unseal(&keys).await?;
        Ok(())
    }

    /// A root client of node `i`.
    pub fn client(&self, i: usize) -> Client {
        self.nodes[i].client(Some(&self.root_token))
    }

    pub async fn role(&self, i: usize) -> Role {
        match self.nodes[i].client(None).req("GET", "/v1/sys/health", None).await {
            Ok((200, _)) => Role::Active,
            Ok((429, _)) => Role::Standby,
            Ok((503 | 501, _)) => Role::Sealed,
            _ => Role::Down,
        }
    }

    pub async fn roles(&self) -> Vec<Role> {
        let mut out = Vec::new();
        for i in 0..self.nodes.len() {
            out.push(if self.nodes[i].pid().is_some() {
                self.role(i).await
            } else {
                Role::Down
            });
        }
        out
    }

    /// Wait until exactly one node is active (the others standbys, sealed
    /// or down); returns the active one.
    pub async fn wait_active(&self, timeout: Duration) -> Result<usize> {
        let began = Instant::now();
        loop {
            let roles = self.roles().await;
            let active: Vec<usize> = (0..roles.len()).filter(|i| roles[*i] == Role::Active).collect();
            if active.len() == 1 {
                return Ok(active[0]);
            }
            if began.elapsed() > timeout {
                bail!("no single active node after {timeout:?}: {roles:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Mount `db/` with connection `pg` on `target` and role `role`
    /// (`ttl` its default TTL), through node `via`.
    pub async fn mount_db(&self, via: usize, target: &Scratch, role: &str, ttl: &str) -> Result<()> {
        let c = self.client(via);
        c.expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
            .await?;
        c.expect(
            "POST",
            "/v1/db/config/pg",
            Some(crate::fixtures::postgres_config(target, &[role])),
            204,
        )
        .await?;
        c.expect(
            "POST",
            &format!("/v1/db/roles/{role}"),
            Some(json!({
                "db_name": "pg",
                "creation_statements": [crate::CREATE_ROLE],
                "default_ttl": ttl,
                "max_ttl": "24h",
            })),
            204,
        )
        .await?;
        Ok(())
    }

    /// `sys/leader` of node `i`.
    pub async fn leader(&self, i: usize) -> Result<Value> {
        let (status, body) = self.nodes[i].client(None).req("GET", "/v1/sys/leader", None).await?;
        if status != 200 {
            bail!("sys/leader of node {i}: {status} {body}");
        }
        Ok(body)
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// SIGSTOP (true) or SIGCONT (false) node `i`.
    pub fn pause(&self, i: usize, paused: bool) -> Result<()> {
        let pid = self.nodes[i].pid().context("the node is not running")?;
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = std::process::Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()?;
        if !status.success() {
            bail!("kill {signal} {pid} failed");
        }
        Ok(())
    }
}
