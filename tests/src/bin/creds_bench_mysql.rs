//! creds_bench_mysql: dynamic MySQL credentials per second through Warden
//! (mysql-database-plugin, a throwaway MariaDB), against the same CREATE
//! USER and GRANT statements sent straight to the server.
//!
//! Usage: creds_bench_mysql [N=1000] [CLIENTS=8] [ROUNDS=3]
//!
//! As creds_bench does for PostgreSQL: ROUNDS alternated pairs of a direct
//! run (CLIENTS sessions, each sending both statements as one batch, one
//! round trip per user) and a Warden run (CLIENTS concurrent HTTP clients),
//! reporting the median ratio. Everything shares this machine's cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use sqlx::Connection;
use sqlx::mysql::MySqlConnection;
use warden_tests::util::random_alnum;
use warden_tests::{Client, MyScratch, TestMariaDb, WardenServer};

const ROLE: &str = "bench";

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut next = |default: usize| -> Result<usize> {
        match args.next() {
            Some(a) => a.parse().context("arguments must be numbers"),
            None => Ok(default),
        }
    };
    let (n, clients, rounds) = (next(1000)?, next(8)?, next(3)?);
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
    run_warden(&client, n.clamp(1, 20), 1).await?;

    let (mut ratios, mut warden_rates, mut direct_rates) = (Vec::new(), Vec::new(), Vec::new());
    let mut direct_names = Vec::new();
    for round in 1..=rounds {
        let batch = names(n);
        let direct = run_direct(&scratch, &batch, clients).await?;
        direct_names.extend(batch);
        direct.print(&format!("round {round}: direct ({clients} sessions)"), "users");
        let warden = run_warden(&client, n, clients).await?;
        warden.print(&format!("round {round}: warden ({clients} clients)"), "creds");
        ratios.push(warden.rate() / direct.rate());
        warden_rates.push(warden.rate());
        direct_rates.push(direct.rate());
    }
    println!(
        "ratio warden {clients} clients / direct {clients} sessions: median {:.3} over {rounds} rounds \
         (per round {}; median rates {:.1} vs {:.1} per s)",
        median(&ratios),
        ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(", "),
        median(&warden_rates),
        median(&direct_rates)
    );

    let started = Instant::now();
    client
        .expect(
            "PUT",
            &format!("/v1/sys/leases/revoke-prefix/db/creds/{ROLE}"),
            None,
            204,
        )
        .await?;
    println!("cleanup: revoke-prefix in {:.2} s", started.elapsed().as_secs_f64());
    let mut conn = db.root().await?;
    for name in &direct_names {
        exec_raw(&mut conn, format!("DROP USER IF EXISTS '{name}'@'%'")).await?;
    }
    conn.close().await.ok();
    let left = scratch.users_like("v-token-bench-%").await?;
    if !left.is_empty() {
        println!("cleanup: WARNING {} Warden users remain", left.len());
    }
    drop(server);
    tokio::task::spawn_blocking(move || drop(db)).await?;
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
        "default_ttl": "1h",
        "max_ttl": "24h",
    });
    client
        .expect("POST", &format!("/v1/db/roles/{ROLE}"), Some(role), 204)
        .await?;
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

struct Run {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, label: &str, unit: &str) {
        let at = |p: f64| {
            let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len().max(1)) - 1;
            self.latencies.get(i).copied().unwrap_or_default().as_secs_f64() * 1000.0
        };
        println!(
            "{label}: {} {unit} in {:.2} s = {:.1}/s, p50 {:.2} ms, p99 {:.2} ms",
            self.latencies.len(),
            self.elapsed.as_secs_f64(),
            self.rate(),
            at(0.5),
            at(0.99)
        );
    }
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Result<Vec<Duration>>>>, started: Instant) -> Result<Run> {
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Run { elapsed, latencies })
}

async fn run_warden(client: &Client, n: usize, clients: usize) -> Result<Run> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks = (0..clients)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let path = format!("/v1/db/creds/{ROLE}");
                let mut latencies = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let t = Instant::now();
                    let (status, body) = client.req("GET", &path, None).await?;
                    if status != 200 {
                        bail!("GET {path}: expected 200, got {status} {body}");
                    }
                    latencies.push(t.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    collect(tasks, started).await
}

/// User names shaped like Warden's (32 characters).
fn names(n: usize) -> Vec<String> {
    (0..n).map(|_| format!("v-direct-{}", random_alnum(23))).collect()
}

async fn run_direct(scratch: &MyScratch, names: &[String], sessions: usize) -> Result<Run> {
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
                    exec_raw(&mut conn, sql).await?;
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
