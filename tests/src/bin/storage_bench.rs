//! storage_bench: what persistent storage costs (issue 3).
//!
//! Usage: storage_bench startup [LEASES=100000 ...]
//!        storage_bench creds [N=1000] [CLIENTS=8] [ROUNDS=3]
//!
//! `startup`: a SQLite-backed node holding LEASES stored leases (written in
//! bulk, encrypted exactly as the barrier does), then the time from starting
//! the process to serving requests: process start → listening (sealed), and
//! unseal → unsealed and serving; the lease timers are re-armed in the
//! background, and the time that takes is read from the server's log.
//!
//! `creds`: dynamic PostgreSQL credentials per second with 8 clients through
//! a node on in-memory, SQLite and PostgreSQL storage, in turn, ROUNDS times;
//! prints medians and each persistent backend's ratio to in-memory.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use sqlx::ConnectOptions;
use warden::core::expiration::LeaseEntry;
use warden::storage::barrier;
use warden_tests::bench::{self, median};
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::fixtures::postgres_config;
use warden_tests::{CREATE_ROLE, Scratch, TestPostgres};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("startup") => {
            let counts: Vec<usize> = if args.len() > 1 {
                args[1..].iter().map(|a| a.parse()).collect::<Result<_, _>>()?
            } else {
                vec![100_000]
            };
            for n in counts {
                startup(n).await?;
            }
            Ok(())
        }
        Some("creds") => {
            let num = |i: usize, default: usize| -> Result<usize> {
                args.get(i).map_or(Ok(default), |a| a.parse().context("a number"))
            };
            creds(num(1, 1000)?, num(2, 8)?, num(3, 3)?).await
        }
        _ => bail!("usage: storage_bench startup [LEASES...] | creds [N] [CLIENTS] [ROUNDS]"),
    }
}

async fn startup(leases: usize) -> Result<()> {
    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.start().await?;
    let (keys, root) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    node.client(Some(&root))
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    node.stop();

    // Write the leases straight into the file, encrypted as the barrier would.
    let fill = Instant::now();
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(node.sqlite_path())
        .connect()
        .await?;
    let get = |key: &'static str| sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM kv WHERE key = ?1").bind(key);
    let sealed_root = get("core/root-key").fetch_one(&mut conn).await?;
    let sealed_keyring = get("core/keyring").fetch_one(&mut conn).await?;
    let unseal: [u8; 32] = hex::decode(&keys[0])?
        .try_into()
        .map_err(|_| anyhow::anyhow!("key length"))?;
    let root_key = barrier::open_root_key(&unseal, &sealed_root)?;
    let keyring = barrier::open_keyring(&root_key, &sealed_keyring)?;
    let now = chrono::Utc::now();
    const BATCH: usize = 10_000;
    for start in (0..leases).step_by(BATCH) {
        let mut tx = sqlx::Connection::begin(&mut conn).await?;
        for i in start..(start + BATCH).min(leases) {
            let id = format!("db/creds/role{}/{:024}", i % 10, i);
            let entry = LeaseEntry {
                lease_id: id.clone(),
                path: format!("db/creds/role{}", i % 10),
                mount_path: "db/".into(),
                internal: json!({"username": format!("v-token-role-{i}"), "role": "role", "db_name": "pg"}),
                issue_time: now,
                // Spread over the coming days: none expires during the run.
                expire_time: now + chrono::Duration::seconds(3600 + (i % 86_400) as i64),
                last_renewal: None,
                renewable: true,
                revoke: Default::default(),
                token: String::new(),
                end_by: None,
            };
            let key = format!("sys/expire/id/{id}");
            let value = keyring.encrypt(&serde_json::to_vec(&entry)?, key.as_bytes())?;
            sqlx::query("INSERT INTO kv (key, value) VALUES (?1, ?2)")
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    drop(conn);
    let size = std::fs::metadata(node.sqlite_path())?.len();
    println!(
        "startup: {leases} leases written in {:.1}s (file {:.0} MiB)",
        fill.elapsed().as_secs_f64(),
        size as f64 / (1 << 20) as f64
    );

    let t0 = Instant::now();
    node.start().await?;
    let listening = t0.elapsed();
    let t1 = Instant::now();
    node.unseal(&[&keys[0]]).await?;
    let unsealed = t1.elapsed();
    // Serving: a lease lookup answers.
    let probe = "db/creds/role7/000000000000000000000007";
    let client = node.client(Some(&root));
    client
        .expect("PUT", "/v1/sys/leases/lookup", Some(json!({ "lease_id": probe })), 200)
        .await?;
    let serving = t0.elapsed();
    // Wait for the background restore to report.
    let restored_ms = loop {
        let log = node.log_tail();
        if let Some(line) = log.lines().rev().find(|l| l.contains("lease timers restored")) {
            println!("startup: server log: {}", line.trim());
            break line
                .split("elapsed_ms=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if t0.elapsed() > Duration::from_secs(300) {
            bail!("the lease restore did not finish within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pid = node.pid().unwrap_or(0);
    println!(
        "startup: {leases} leases: listening (sealed) after {:.0} ms; unseal took {:.0} ms; \
         serving requests {:.0} ms after process start; all lease timers re-armed in the background in {restored_ms} ms; RSS {:.0} MiB",
        listening.as_secs_f64() * 1000.0,
        unsealed.as_secs_f64() * 1000.0,
        serving.as_secs_f64() * 1000.0,
        bench::rss_mib(pid),
    );
    node.stop();
    Ok(())
}

async fn creds(n: usize, clients: usize, rounds: usize) -> Result<()> {
    let pg = tokio::task::spawn_blocking(TestPostgres::from_env).await??;
    let mut rates: Vec<(&str, Vec<f64>)> = vec![("inmem", vec![]), ("sqlite", vec![]), ("postgresql", vec![])];
    let store = pg.scratch("storage-bench-store").await?;
    let store_url = store
        .connection_url_template()
        .replace("{{username}}", &store.admin_user)
        .replace("{{password}}", &store.admin_password);
    println!("storage_bench creds: N={n} clients={clients} rounds={rounds}");
    for round in 0..rounds {
        for (kind, results) in rates.iter_mut() {
            let scratch = pg.scratch(&format!("storage-bench-{kind}")).await?;
            let storage = match *kind {
                "inmem" => NodeStorage::Inmem,
                "sqlite" => NodeStorage::Sqlite,
                _ => NodeStorage::Postgresql {
                    url: store_url.clone(),
                    table: format!("bench_{round}"),
                },
            };
            let rate = one_run(storage, &scratch, n, clients).await?;
            println!("  round {round} {kind:<10} {rate:>7.1} creds/s");
            results.push(rate);
        }
    }
    let base = median(&rates[0].1);
    for (kind, results) in &rates {
        println!(
            "storage_bench creds: {kind:<10} median {:>7.1} creds/s  ratio to inmem {:.3}",
            median(results),
            median(results) / base
        );
    }
    Ok(())
}

async fn one_run(storage: NodeStorage, scratch: &Scratch, n: usize, clients: usize) -> Result<f64> {
    let mut node = Node::new(storage)?;
    node.start().await?;
    let (keys, root) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    let client = node.client(Some(&root));
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    client
        .expect("POST", "/v1/db/config/pg", Some(postgres_config(scratch, &["*"])), 204)
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/roles/bench",
            Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE]})),
            204,
        )
        .await?;
    // Warm up: pools, instances.
    for _ in 0..clients * 2 {
        client.expect("GET", "/v1/db/creds/bench", None, 200).await?;
    }
    let rate = bench::warden_gets(&client, "/v1/db/creds/bench", n, clients)
        .await?
        .rate();
    client
        .expect("PUT", "/v1/sys/leases/revoke-prefix/db/creds", None, 204)
        .await?;
    node.stop();
    Ok(rate)
}
