//! cluster_bench: the cluster registry's costs (issue 15). Registers a
//! PostgreSQL cluster, then provisions DATABASES tenant databases in it one
//! after another (owner role, database, REVOKE, connection) and prints the
//! per-database p50/p99 and the total; then issues dynamic credentials on
//! a tenant database against the usual creds/ path on a connection
//! configured by hand, CLIENTS clients each, in the same run (rounds in
//! alternating order), and prints the ratio. Target: tenant >= 0.90 of
//! the usual path.
//!
//! Usage: cluster_bench [N=2000] [CLIENTS=8] [ROUNDS=3] [DATABASES=100]
//!
//! Uses `WARDEN_TEST_PG_URL` when set, else a throwaway PostgreSQL
//! cluster; starts `warden server -dev`. The tenant databases and their
//! owner roles are dropped at the end.

use anyhow::{Context, Result, bail};
use serde_json::json;
use std::time::{Duration, Instant};
use warden_tests::bench::{Run, list, median, mount_pg_role, warden_gets};
use warden_tests::{TestPostgres, WardenServer};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut next = |default: usize, what: &str| -> Result<usize> {
        match args.next() {
            Some(a) => a.parse().with_context(|| format!("{what} must be a number")),
            None => Ok(default),
        }
    };
    let (n, clients, rounds, databases) = (
        next(2000, "N")?,
        next(8, "CLIENTS")?,
        next(3, "ROUNDS")?,
        next(100, "DATABASES")?,
    );
    if n == 0 || clients == 0 || rounds == 0 || databases == 0 {
        bail!("usage: cluster_bench [N>0] [CLIENTS>0] [ROUNDS>0] [DATABASES>0]");
    }
    let pg = tokio::task::spawn_blocking(TestPostgres::from_env).await??;
    let scratch = pg.scratch("cluster_bench").await?;
    let server = WardenServer::start().await?;
    let root = server.client();
    println!(
        "cluster_bench: N={n} clients={clients} rounds={rounds} databases={databases} warden={}",
        server.addr()
    );
    mount_pg_role(&root, &scratch, "plain", clients).await?;

    // The cluster's admin login, as a platform team's would be.
    let suffix = warden_tests::util::random_alnum(6).to_lowercase();
    let admin = format!("bench_admin_{suffix}");
    let mut su = scratch.superuser().await?;
    sqlx::raw_sql(&format!(
        "CREATE ROLE \"{admin}\" WITH LOGIN CREATEDB CREATEROLE PASSWORD 'bench-{suffix}'"
    ))
    .execute(&mut su)
    .await?;
    root.expect(
        "POST",
        "/v1/db/cluster/bench",
        Some(json!({
            "host": scratch.host(), "port": scratch.port(), "database": scratch.database,
            "username": admin, "password": format!("bench-{suffix}"), "ssl_mode": "disable",
            "max_open_connections": clients, "max_idle_connections": clients,
        })),
        200,
    )
    .await?;

    let names: Vec<String> = (0..databases).map(|i| format!("bt_{suffix}_{i:03}")).collect();
    let result = measure(&root, &names, n, clients, rounds).await;
    // Leave nothing behind in a shared server: the logins (revoked), the
    // databases, their owner roles.
    let (status, body) = root.req("PUT", "/v1/sys/leases/revoke-prefix/db/creds", None).await?;
    if status != 204 {
        eprintln!("revoke-prefix: {status} {body}");
    }
    for db in &names {
        let _ = sqlx::raw_sql(&format!(
            "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE); DROP ROLE IF EXISTS \"{db}_owner\""
        ))
        .execute(&mut su)
        .await;
    }
    result
}

async fn measure(root: &warden_tests::Client, names: &[String], n: usize, clients: usize, rounds: usize) -> Result<()> {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(names.len());
    for db in names {
        let t = Instant::now();
        root.expect(
            "POST",
            &format!("/v1/db/cluster/bench/database/{db}"),
            Some(json!({"allowed_roles": "tenant"})),
            200,
        )
        .await?;
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let provisioning = Run { elapsed, latencies };
    provisioning.print(
        &format!("provisioning {} tenant databases, one after another", names.len()),
        "databases",
    );

    let first = names.first().context("no databases")?;
    root.expect(
        "POST",
        "/v1/db/roles/tenant",
        Some(json!({"db_name": format!("bench.{first}"), "default_ttl": "1h", "max_ttl": "24h"})),
        204,
    )
    .await?;
    let paths = [
        ("usual creds/ path", "/v1/db/creds/plain"),
        ("tenant database", "/v1/db/creds/tenant"),
    ];
    for (_, path) in paths {
        warden_gets(root, path, 20, 1).await?;
    }
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for k in 0..2 {
            let i = (k + round) % 2;
            let (label, path) = paths[i];
            let run = warden_gets(root, path, n, clients).await?;
            run.print(&format!("round {}: {label} ({clients} clients)", round + 1), "creds");
            rates[i].push(run.rate());
            // Let the server settle between runs.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let ratios: Vec<f64> = rates[1].iter().zip(&rates[0]).map(|(t, p)| t / p).collect();
    println!(
        "usual: median {:.1} creds/s; tenant: median {:.1} creds/s",
        median(&rates[0]),
        median(&rates[1])
    );
    println!(
        "ratio tenant / usual: median {:.3} (per round {}; target >= 0.90)",
        median(&ratios),
        list(&ratios)
    );
    Ok(())
}
