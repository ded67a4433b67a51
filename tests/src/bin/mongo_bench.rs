//! mongo_bench: dynamic MongoDB credentials per second through Warden (the
//! database engine with mongodb-database-plugin), against the same
//! createUser commands sent straight to the server by the mongodb crate.
//!
//! Usage: mongo_bench [N=400] [CLIENTS=8] [ROUNDS=3]
//!
//! Starts a throwaway secantusdb (see tests/src/mongo.rs) and `warden server
//! -dev` (`WARDEN_BIN`, else target/release/warden). Each round runs N
//! createUser directly with CLIENTS clients (one mongodb::Client each), then
//! N `GET db/creds/bench` with CLIENTS concurrent HTTP clients; the medians
//! of the rounds are reported, since server, database and load generator
//! share this machine's cores. Prints labelled result lines.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mongodb::bson::doc;
use serde_json::json;
use warden_tests::bench::{MachineCpu, Run, collect, cpu_ticks, list, median, ticks_ms, warden_gets};
use warden_tests::util::random_alnum;
use warden_tests::{Client, TestMongo, WardenServer};

const ROLE: &str = "bench";
const BENCH_DB: &str = "benchdb";
const CREDS: &str = "/v1/db/creds/bench";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut arg = |default: usize, what: &str| -> Result<usize> {
        match args.next() {
            Some(a) => a.parse().with_context(|| format!("{what} must be a number")),
            None => Ok(default),
        }
    };
    let n = arg(400, "N")?;
    let clients = arg(8, "CLIENTS")?;
    let rounds = arg(3, "ROUNDS")?;
    if n == 0 || clients == 0 || rounds == 0 {
        bail!("usage: mongo_bench [N>0] [CLIENTS>0] [ROUNDS>0]");
    }

    let mongo = tokio::task::spawn_blocking(TestMongo::start).await??;
    let server = WardenServer::start().await?;
    let pid = server.pid().context("server has no pid")?;
    let client = server.client();
    println!(
        "mongo_bench: N={n} clients={clients} rounds={rounds} secantusdb=127.0.0.1:{} warden={} pid={pid}",
        mongo.port(),
        server.addr()
    );
    setup(&client, &mongo, clients).await?;
    warden_gets(&client, CREDS, n.clamp(1, 20), 1).await?;

    let mut direct_users = Vec::new();
    let (mut ratios, mut warden_rates, mut direct_rates, mut cpu) = (vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        let names: Vec<String> = (0..n)
            .map(|_| format!("v-direct-{ROLE}-{}", random_alnum(20)))
            .collect();
        let machine = MachineCpu::now();
        let direct = run_direct(&mongo, &names, clients).await?;
        direct_users.extend(names);
        direct.print(
            &format!(
                "round {round}: direct createUser ({clients} clients; {})",
                machine.since()
            ),
            "createUser",
        );
        let (machine, before) = (MachineCpu::now(), cpu_ticks(pid)?);
        let warden = warden_gets(&client, CREDS, n, clients).await?;
        let ticks = cpu_ticks(pid)?.saturating_sub(before);
        cpu.push(ticks_ms(ticks) / n as f64);
        warden.print(
            &format!("round {round}: warden creds ({clients} clients; {})", machine.since()),
            "creds",
        );
        ratios.push(warden.rate() / direct.rate());
        warden_rates.push(warden.rate());
        direct_rates.push(direct.rate());
    }
    println!(
        "median over {rounds} rounds: warden {:.1} creds/s vs direct {:.1} createUser/s with {clients} clients: \
         ratio {:.3} (per round {})",
        median(&warden_rates),
        median(&direct_rates),
        median(&ratios),
        list(&ratios)
    );
    println!("warden server CPU: median {:.3} ms/cred", median(&cpu));

    let started = Instant::now();
    let (status, body) = client
        .req("PUT", &format!("/v1/sys/leases/revoke-prefix/db/creds/{ROLE}"), None)
        .await?;
    if status != 204 {
        bail!("revoke-prefix: expected 204, got {status} {body}");
    }
    println!("cleanup: revoke-prefix in {:.2} s", started.elapsed().as_secs_f64());
    let admin = mongo.admin().await?;
    for name in &direct_users {
        admin.database("admin").run_command(doc! { "dropUser": name }).await?;
    }
    admin.shutdown().await;
    let left = mongo.users_in("admin").await?;
    let left: Vec<&String> = left.iter().filter(|u| u.starts_with("v-")).collect();
    if !left.is_empty() {
        println!("cleanup: WARNING {} users named v-* remain", left.len());
    }
    drop(server);
    tokio::task::spawn_blocking(move || drop(mongo)).await?;
    Ok(())
}

async fn setup(client: &Client, mongo: &TestMongo, clients: usize) -> Result<()> {
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/config/mongo",
            Some(json!({
                "plugin_name": "mongodb-database-plugin",
                "connection_url": format!("{}?maxPoolSize={clients}", mongo.url_template()),
                "username": "admin",
                "password": mongo.admin_password(),
                "allowed_roles": ROLE,
            })),
            204,
        )
        .await?;
    let statement = json!({"db": "admin", "roles": [{"role": "readWrite", "db": BENCH_DB}]});
    client
        .expect(
            "POST",
            &format!("/v1/db/roles/{ROLE}"),
            Some(
                json!({"db_name": "mongo", "creation_statements": [statement.to_string()],
                        "default_ttl": "1h", "max_ttl": "24h"}),
            ),
            204,
        )
        .await?;
    Ok(())
}

/// The same createUser as the driver sends, over `clients` clients.
async fn run_direct(mongo: &TestMongo, names: &[String], clients: usize) -> Result<Run> {
    let next = Arc::new(AtomicUsize::new(0));
    let names = Arc::new(names.to_vec());
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(mongo.admin().await?);
    }
    let started = Instant::now();
    let tasks = conns
        .into_iter()
        .map(|conn| {
            let (next, names) = (next.clone(), names.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while let Some(name) = names.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let t = Instant::now();
                    conn.database("admin")
                        .run_command(doc! {
                            "createUser": name,
                            "pwd": random_alnum(20),
                            "roles": [{"role": "readWrite", "db": BENCH_DB}],
                        })
                        .await?;
                    latencies.push(t.elapsed());
                }
                conn.shutdown().await;
                Ok(latencies)
            })
        })
        .collect();
    collect(tasks, started).await
}
