//! ha_bench: what HA on PostgreSQL costs and how fast it fails over.
//!
//! Usage:
//!   ha_bench throughput [N=2000] [CLIENTS=8] [ROUNDS=3]
//!     creds/s with CLIENTS clients: a node on PostgreSQL storage without
//!     HA, the active node of a two-node HA cluster (fenced writes), and
//!     the same cluster through its standby (forwarded); ROUNDS rounds in
//!     turn, medians and ratios (targets: HA >= 90% of no HA, standby >=
//!     80% of direct).
//!   ha_bench failover [RUNS=10]
//!     three nodes; RUNS times: kill -9 of the active node, the time until
//!     a standby answers sys/health as active; the killed node restarted
//!     and unsealed for the next run. Prints each run, p50 and max
//!     (targets: p50 < 6 s, max < 10 s).
//!
//! Uses `WARDEN_TEST_PG_URL` when set, else a throwaway PostgreSQL cluster;
//! starts `warden server -config=...` processes (`WARDEN_BIN`, else
//! target/release/warden). See docs/testing.md.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use warden_tests::bench::{MachineCpu, list, median, mount_pg_role, warden_gets};
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::ha::{HaCluster, Role};
use warden_tests::{Client, TestPostgres};

const ROLE: &str = "bench";
const CREDS: &str = "/v1/db/creds/bench";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: usize, what: &str| -> Result<usize> {
        match args.get(i) {
            Some(a) => a.parse().with_context(|| format!("{what} must be a number")),
            None => Ok(default),
        }
    };
    match args.first().map(String::as_str) {
        Some("throughput") => throughput(num(1, 2000, "N")?, num(2, 8, "CLIENTS")?, num(3, 3, "ROUNDS")?).await,
        Some("failover") => failover(num(1, 10, "RUNS")?).await,
        _ => bail!("usage: ha_bench throughput [N] [CLIENTS] [ROUNDS] | failover [RUNS]"),
    }
}

async fn throughput(n: usize, clients: usize, rounds: usize) -> Result<()> {
    let pg = TestPostgres::shared();
    // Without HA: one node on its own storage database.
    let plain_db = pg.scratch("ha-bench-plain").await?;
    let url = plain_db
        .connection_url_template()
        .replace("{{username}}", &plain_db.admin_user)
        .replace("{{password}}", &plain_db.admin_password);
    let mut plain = Node::new(NodeStorage::Postgresql {
        url,
        table: "warden_store".into(),
    })?;
    plain.start().await?;
    let (keys, token) = plain.init(1, 1).await?;
    plain.unseal(&[keys[0].as_str()]).await?;
    let plain_client = plain.client(Some(&token));
    let target = pg.scratch("ha-bench-target").await?;
    mount_pg_role(&plain_client, &target, ROLE, clients).await?;

    let cluster = HaCluster::start(2, "ha-bench-ha").await?;
    let active = cluster.wait_active(Duration::from_secs(30)).await?;
    let standby = 1 - active;
    let target_ha = pg.scratch("ha-bench-target-ha").await?;
    mount_pg_role(&cluster.client(active), &target_ha, ROLE, clients).await?;
    // The standby knows the active node (and the cluster's certificate).
    let standby_client: Client = cluster.client(standby);
    let began = Instant::now();
    while !matches!(standby_client.get(CREDS).await, Ok((200, _))) {
        if began.elapsed() > Duration::from_secs(10) {
            bail!("the standby does not forward");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Warm-up: pools, caches, compiled components.
    for c in [&plain_client, &cluster.client(active), &standby_client] {
        warden_gets(c, CREDS, clients * 10, clients).await?;
    }
    let cpu = MachineCpu::now();
    let (mut no_ha, mut ha, mut forwarded) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let r = warden_gets(&plain_client, CREDS, n, clients).await?;
        r.print(&format!("round {round} no HA (postgresql storage)"), "creds");
        no_ha.push(r.rate());
        let r = warden_gets(&cluster.client(active), CREDS, n, clients).await?;
        r.print(&format!("round {round} HA active node"), "creds");
        ha.push(r.rate());
        let r = warden_gets(&standby_client, CREDS, n, clients).await?;
        r.print(&format!("round {round} HA through the standby"), "creds");
        forwarded.push(r.rate());
    }
    println!("machine CPU during the rounds: {}", cpu.since());
    let (m_plain, m_ha, m_fwd) = (median(&no_ha), median(&ha), median(&forwarded));
    println!("no HA creds/s: {} (median {m_plain:.1})", list(&no_ha));
    println!("HA active creds/s: {} (median {m_ha:.1})", list(&ha));
    println!("HA via standby creds/s: {} (median {m_fwd:.1})", list(&forwarded));
    println!(
        "HA/no-HA ratio: {:.3} (target >= 0.90); standby/direct ratio: {:.3} (target >= 0.80)",
        m_ha / m_plain,
        m_fwd / m_ha
    );
    Ok(())
}

async fn failover(runs: usize) -> Result<()> {
    let mut cluster = HaCluster::start(3, "ha-bench-failover").await?;
    let mut times = Vec::new();
    for run in 1..=runs {
        let active = cluster.wait_active(Duration::from_secs(30)).await?;
        // Every standby knows the active node before the kill.
        for i in (0..3).filter(|i| *i != active) {
            let began = Instant::now();
            while cluster.role(i).await != Role::Standby {
                if began.elapsed() > Duration::from_secs(30) {
                    bail!("node {i} is not a standby");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // A random point in the renewal second.
        tokio::time::sleep(Duration::from_millis(u64::from(
            warden_tests::util::unique_u64() as u16 % 1000,
        )))
        .await;
        let killed = Instant::now();
        cluster.kill(active);
        let new_active = loop {
            let mut found = None;
            for i in (0..3).filter(|i| *i != active) {
                if cluster.role(i).await == Role::Active {
                    found = Some(i);
                }
            }
            if let Some(i) = found {
                break i;
            }
            if killed.elapsed() > Duration::from_secs(60) {
                bail!("run {run}: no standby became active within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let took = killed.elapsed().as_secs_f64();
        println!("run {run}: node {new_active} active {took:.2} s after kill -9 of node {active}");
        times.push(took);
        cluster.nodes[active].start().await?;
        cluster.unseal(active).await?;
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "failover over {runs} kill -9 runs: p50 {:.2} s, max {:.2} s (targets: p50 < 6 s, max < 10 s); all: {}",
        median(&times),
        sorted.last().copied().unwrap_or_default(),
        list(&sorted)
    );
    Ok(())
}
