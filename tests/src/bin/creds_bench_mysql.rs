//! creds_bench_mysql: dynamic MySQL credentials per second through Warden
//! (mysql-database-plugin, a throwaway MariaDB), against the same CREATE
//! USER and GRANT statements sent straight to the server.
//!
//! Usage: creds_bench_mysql [N=1000] [CLIENTS=8] [ROUNDS=7]
//!
//! As creds_bench does for PostgreSQL: ROUNDS alternated pairs of a direct
//! run (CLIENTS sessions, each sending both statements as one batch, one
//! round trip per user) and a Warden run (CLIENTS concurrent HTTP clients),
//! reporting the median ratio. Everything shares this machine's cores, and
//! single rounds swing by 20% or more on a virtual machine (each line shows
//! the CPU time the hypervisor stole during it), hence the many rounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;
use sqlx::Connection;
use sqlx::mysql::MySqlConnection;
use warden_tests::bench::{MachineCpu, Run, collect, context_switches, cpu_ticks, list, median, ticks_ms, warden_gets};
use warden_tests::util::random_alnum;
use warden_tests::{Client, MyScratch, TestMariaDb, WardenServer};

const ROLE: &str = "bench";
const CREDS: &str = "/v1/db/creds/bench";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut next = |default: usize| -> Result<usize> {
        match args.next() {
            Some(a) => a.parse().context("arguments must be numbers"),
            None => Ok(default),
        }
    };
    let (n, clients, rounds) = (next(1000)?, next(8)?, next(7)?);
    if n == 0 || clients == 0 || rounds == 0 {
        bail!("usage: creds_bench_mysql [N>0] [CLIENTS>0] [ROUNDS>0]");
    }
    let db = tokio::task::spawn_blocking(TestMariaDb::start).await??;
    let scratch = db.scratch("bench").await?;
    let server = WardenServer::start().await?;
    let client = server.client();
    println!(
        "creds_bench_mysql: N={n} clients={clients} rounds={rounds} mariadb=127.0.0.1:{} warden={}",
        db.port(),
        server.addr()
    );
    setup(&client, &scratch, clients).await?;
    warden_gets(&client, CREDS, n.clamp(1, 20), 1).await?;

    let pid = server.pid().context("server has no pid")?;
    let (mut ratios, mut split_ratios, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut switches = Vec::new();
    let (mut warden_rates, mut direct_rates, mut split_rates) = (Vec::new(), Vec::new(), Vec::new());
    // MariaDB's CREATE USER slows down as accounts pile up (it rewrites
    // its in-memory ACL lists), so every run starts from the same state:
    // the users of the run before are dropped, outside the timing.
    revoke_all(&client).await?;
    for round in 1..=rounds {
        let batch = names(n);
        let machine = MachineCpu::now();
        let direct = run_direct(&scratch, &batch, clients, true).await?;
        direct.print(
            &format!(
                "round {round}: direct, one batch per user ({clients} sessions; {})",
                machine.since()
            ),
            "users",
        );
        drop_direct(&db, &batch).await?;
        let batch = names(n);
        let machine = MachineCpu::now();
        let split = run_direct(&scratch, &batch, clients, false).await?;
        split.print(
            &format!(
                "round {round}: direct, one statement at a time ({clients} sessions; {})",
                machine.since()
            ),
            "users",
        );
        drop_direct(&db, &batch).await?;
        let (machine, before, switches_before) = (MachineCpu::now(), cpu_ticks(pid)?, context_switches(pid));
        let warden = warden_gets(&client, CREDS, n, clients).await?;
        cpu.push(ticks_ms(cpu_ticks(pid)? - before) / n as f64);
        switches.push(context_switches(pid).saturating_sub(switches_before) as f64 / n as f64);
        warden.print(
            &format!("round {round}: warden ({clients} clients; {})", machine.since()),
            "creds",
        );
        revoke_all(&client).await?;
        ratios.push(warden.rate() / direct.rate());
        split_ratios.push(warden.rate() / split.rate());
        warden_rates.push(warden.rate());
        direct_rates.push(direct.rate());
        split_rates.push(split.rate());
    }
    println!(
        "ratio warden {clients} clients / direct one batch per user, {clients} sessions: median {:.3} over {rounds} rounds \
         (per round {}; median rates {:.1} vs {:.1} per s)",
        median(&ratios),
        list(&ratios),
        median(&warden_rates),
        median(&direct_rates)
    );
    println!(
        "ratio warden {clients} clients / direct one statement at a time, {clients} sessions: median {:.3} \
         (per round {}; median direct rate {:.1} per s)",
        median(&split_ratios),
        list(&split_ratios),
        median(&split_rates)
    );
    println!(
        "warden server CPU: median {:.3} ms/cred (per round {})",
        median(&cpu),
        list(&cpu)
    );
    println!(
        "warden server context switches: median {:.1} per cred (per round {})",
        median(&switches),
        list(&switches)
    );
    let left = scratch.users_like("v-token-bench-%").await?;
    if !left.is_empty() {
        println!("cleanup: WARNING {} Warden users remain", left.len());
    }
    drop(server);
    tokio::task::spawn_blocking(move || drop(db)).await?;
    Ok(())
}

/// Revoke every lease of the role (its revocation is DROP USER IF EXISTS).
async fn revoke_all(client: &Client) -> Result<()> {
    let path = format!("/v1/sys/leases/revoke-prefix/db/creds/{ROLE}");
    client.expect("PUT", &path, None, 204).await?;
    Ok(())
}

async fn drop_direct(db: &TestMariaDb, names: &[String]) -> Result<()> {
    let mut conn = db.root().await?;
    for name in names {
        exec_raw(&mut conn, format!("DROP USER IF EXISTS '{name}'@'%'")).await?;
    }
    conn.close().await.ok();
    Ok(())
}

fn creation(database: &str) -> String {
    format!(
        "CREATE USER '{{{{name}}}}'@'%' IDENTIFIED BY '{{{{password}}}}'; GRANT SELECT ON `{database}`.* TO '{{{{name}}}}'@'%';"
    )
}

async fn setup(client: &Client, scratch: &MyScratch, clients: usize) -> Result<()> {
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let config = json!({
        "plugin_name": "mysql-database-plugin",
        "connection_url": scratch.go_dsn_template(),
        "username": scratch.admin_user,
        "password": scratch.admin_password,
        "allowed_roles": [ROLE],
        "max_open_connections": clients,
        "max_idle_connections": clients,
    });
    client.expect("POST", "/v1/db/config/my", Some(config), 204).await?;
    let role = json!({
        "db_name": "my",
        "creation_statements": [creation(&scratch.database)],
        "revocation_statements": ["DROP USER IF EXISTS '{{name}}'@'%'"],
        "default_ttl": "1h",
        "max_ttl": "24h",
    });
    client
        .expect("POST", &format!("/v1/db/roles/{ROLE}"), Some(role), 204)
        .await?;
    Ok(())
}

/// User names shaped like Warden's (32 characters).
fn names(n: usize) -> Vec<String> {
    (0..n).map(|_| format!("v-direct-{}", random_alnum(23))).collect()
}

/// Each user's CREATE USER and GRANT as one batch (one round trip), or
/// one statement at a time as most clients send them (two round trips).
async fn run_direct(scratch: &MyScratch, names: &[String], sessions: usize, batched: bool) -> Result<Run> {
    let next = Arc::new(AtomicUsize::new(0));
    let names = Arc::new(names.to_vec());
    let mut conns = Vec::new();
    for _ in 0..sessions {
        conns.push(
            scratch
                .connect_as(&scratch.admin_user, &scratch.admin_password)
                .await
                .context("connect as the scratch admin")?,
        );
    }
    let started = Instant::now();
    let tasks = conns
        .into_iter()
        .map(|mut conn| {
            let (next, names, database) = (next.clone(), names.clone(), scratch.database.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = names.get(i) else { break };
                    let sql = format!(
                        "CREATE USER '{name}'@'%' IDENTIFIED BY '{}'; GRANT SELECT ON `{database}`.* TO '{name}'@'%'",
                        random_alnum(20)
                    );
                    let t = Instant::now();
                    if batched {
                        exec_raw(&mut conn, sql).await?;
                    } else {
                        for statement in sql.split("; ") {
                            exec_raw(&mut conn, statement.to_string()).await?;
                        }
                    }
                    latencies.push(t.elapsed());
                }
                conn.close().await.ok();
                Ok(latencies)
            })
        })
        .collect();
    collect(tasks, started).await
}

/// One text-protocol batch. A named function returning a boxed Send future
/// sidesteps sqlx's higher-ranked `Executor` bound inside spawn.
fn exec_raw(
    conn: &mut MySqlConnection,
    sql: String,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + '_>> {
    Box::pin(async move {
        use sqlx::Executor;
        conn.execute(sqlx::raw_sql(&sql)).await?;
        Ok(())
    })
}
