//! revocation_bench: does revocation keep up with issuance? (issue 11,
//! items 6 and 6b). Two parts, both with the PostgreSQL driver's default
//! revocation (no revocation_statements):
//!
//! 1. Sustained load: CLIENTS clients issue TTL-second credentials for
//!    SECONDS. A watcher lists the logins in PostgreSQL every 200 ms and
//!    notes when each one disappears; prints the lateness of each drop
//!    (dropped − lease expiry: p50, p99, max), the logins still there when
//!    the load stops, and whether any is left 60 s after it stopped.
//! 2. revoke-prefix of PREFIX_N leases (issued with a 1 h TTL): its rate,
//!    beside raw `DROP ROLE` of as many roles sent straight to PostgreSQL
//!    from as many sessions as the mount's connection pool has
//!    (max_open_connections, 4 by default as Vault).
//!
//! Usage: revocation_bench [SECONDS=180] [CLIENTS=8] [TTL=30] [PREFIX_N=10000]
//!
//! Uses `WARDEN_TEST_PG_URL` when set, else a throwaway PostgreSQL cluster;
//! starts `warden server -dev` (`WARDEN_BIN`, else target/release/warden).
//! Prints labelled result lines; see docs/testing.md. Fails only when a
//! revocation is wrong (revoke-prefix not 204, logins left behind by it),
//! never on a timing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::json;
use sqlx::Row;
use warden_tests::bench::{MachineCpu, cpu_ticks, pg_create_roles, pg_drop_roles, ticks_ms, warden_gets};
use warden_tests::fixtures::postgres_config;
use warden_tests::util::random_alnum;
use warden_tests::{CREATE_ROLE, Client, Creds, Scratch, TestPostgres, WardenServer};

/// The mount's connection pool (Vault's default max_open_connections).
const POOL: usize = 4;
/// How long after the load stops every expired login must be gone.
const GRACE: Duration = Duration::from_secs(60);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut arg = |name: &str, default: u64| -> Result<u64> {
        match args.next() {
            Some(a) => a.parse().with_context(|| format!("{name} must be a number")),
            None => Ok(default),
        }
    };
    let seconds = arg("SECONDS", 180)?;
    let clients = arg("CLIENTS", 8)? as usize;
    let ttl = arg("TTL", 30)?;
    let prefix_n = arg("PREFIX_N", 10_000)? as usize;
    if seconds == 0 || clients == 0 || ttl == 0 {
        bail!("usage: revocation_bench [SECONDS>0] [CLIENTS>0] [TTL>0] [PREFIX_N]");
    }

    let pg = tokio::task::spawn_blocking(TestPostgres::from_env).await??;
    let scratch = pg.scratch("revbench").await?;
    let server = WardenServer::start().await?;
    let pid = server.pid().context("server has no pid")?;
    let client = server.client();
    println!(
        "revocation_bench: {seconds} s of {clients} clients issuing {ttl} s credentials; \
         revoke-prefix of {prefix_n}; pool {POOL}; postgres={}:{} warden={}",
        pg.host(),
        pg.port(),
        server.addr()
    );
    setup(&client, &scratch, ttl).await?;

    sustained(&client, &scratch, pid, Duration::from_secs(seconds), clients).await?;
    let failure = if prefix_n > 0 {
        revoke_prefix(&client, &scratch, prefix_n, clients).await?
    } else {
        None
    };
    drop(server);
    tokio::task::spawn_blocking(move || drop(pg)).await?;
    match failure {
        Some(f) => bail!(f),
        None => Ok(()),
    }
}

async fn setup(client: &Client, scratch: &Scratch, ttl: u64) -> Result<()> {
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let mut config = postgres_config(scratch, &["churn", "bulk"]);
    config["max_open_connections"] = json!(POOL);
    client.expect("POST", "/v1/db/config/pg", Some(config), 204).await?;
    for (role, ttl) in [("churn", format!("{ttl}s")), ("bulk", "1h".to_string())] {
        client
            .expect(
                "POST",
                &format!("/v1/db/roles/{role}"),
                Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE],
                            "default_ttl": ttl, "max_ttl": ttl})),
                204,
            )
            .await?;
    }
    Ok(())
}

fn unix_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Part 1: issue for `load_for`, watch the logins go.
async fn sustained(client: &Client, scratch: &Scratch, pid: u32, load_for: Duration, clients: usize) -> Result<()> {
    // username -> lease expiry (Unix seconds), for issued logins not yet seen dropped.
    let live: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
    let machine = MachineCpu::now();
    let cpu_before = cpu_ticks(pid)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, live) = (client.clone(), live.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while started.elapsed() < load_for {
                let sent = unix_secs_f64();
                let creds = Creds::from_body(client.expect("GET", "/v1/db/creds/churn", None, 200).await?)?;
                // The server sets the expiry between sending and answering.
                let expiry = sent + creds.lease_duration as f64;
                live.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(creds.username, expiry);
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }

    let mut conn = scratch.superuser().await?;
    let mut lateness: Vec<f64> = Vec::new();
    let mut issued = None;
    let mut at_stop = None;
    let left_after_grace;
    loop {
        // Names known before the query: absent from its answer means dropped.
        let known: Vec<(String, f64)> = live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let rows = sqlx::query("SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'v-token-churn-%'")
            .fetch_all(&mut conn)
            .await?;
        let now = unix_secs_f64();
        let present: std::collections::HashSet<String> =
            rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
        {
            let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
            for (name, expiry) in known {
                if !present.contains(&name) {
                    live.remove(&name);
                    lateness.push(now - expiry);
                }
            }
        }
        if issued.is_none() && started.elapsed() >= load_for {
            let mut n = 0;
            for t in tasks.drain(..) {
                n += t.await??;
            }
            issued = Some(n);
            let stopped = started.elapsed();
            at_stop = Some((stopped, present.len()));
            let secs = stopped.as_secs_f64();
            println!(
                "load: {n} credentials in {secs:.1} s = {:.1}/s ({}); {} logins in PostgreSQL when it stopped",
                n as f64 / secs,
                machine.since(),
                present.len()
            );
        }
        if let (Some(_), Some((stopped, _))) = (issued, at_stop) {
            let remaining = live.lock().unwrap_or_else(|p| p.into_inner()).len();
            if remaining == 0 {
                left_after_grace = Some(0);
                println!(
                    "all logins dropped {:.1} s after the load stopped",
                    (started.elapsed() - stopped).as_secs_f64()
                );
                break;
            }
            if started.elapsed() >= stopped + GRACE {
                left_after_grace = Some(remaining);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ticks = cpu_ticks(pid)?.saturating_sub(cpu_before);
    lateness.sort_by(f64::total_cmp);
    let pick = |p: f64| {
        let i = ((lateness.len() as f64 * p).ceil() as usize).clamp(1, lateness.len().max(1)) - 1;
        lateness.get(i).copied().unwrap_or(0.0)
    };
    println!(
        "drop lateness (dropped - lease expiry, 200 ms polls): {} drops, p50 {:.2} s, p99 {:.2} s, max {:.2} s (target: p99 < 10 s)",
        lateness.len(),
        pick(0.50),
        pick(0.99),
        lateness.last().copied().unwrap_or(0.0)
    );
    let left = left_after_grace.unwrap_or_default();
    println!(
        "logins left {} s after the load stopped: {left}{}",
        GRACE.as_secs(),
        if left == 0 { "" } else { "  TARGET MISSED (0)" }
    );
    let issued = issued.unwrap_or_default().max(1);
    println!(
        "warden server CPU: {:.3} ms per credential issued and revoked",
        ticks_ms(ticks) / issued as f64
    );
    Ok(())
}

/// Part 2: revoke-prefix of `n` leases beside raw DROP ROLE of `n` roles.
/// Returns a failure to report (not 204, logins left).
async fn revoke_prefix(client: &Client, scratch: &Scratch, n: usize, clients: usize) -> Result<Option<String>> {
    let issue = warden_gets(client, "/v1/db/creds/bulk", n, clients).await?;
    issue.print(&format!("issue for revoke-prefix ({clients} clients)"), "creds");
    let machine = MachineCpu::now();
    let started = Instant::now();
    let (status, body) = client
        .req("PUT", "/v1/sys/leases/revoke-prefix/db/creds/bulk", None)
        .await?;
    let took = started.elapsed().as_secs_f64();
    let mut failure = None;
    if status == 204 {
        println!(
            "warden revoke-prefix: {n} leases in {took:.2} s = {:.1} leases/s ({})",
            n as f64 / took,
            machine.since()
        );
    } else {
        let shown: String = body.to_string().chars().take(800).collect();
        let f = format!("revoke-prefix of {n} leases: expected 204 after {took:.2} s, got {status} {shown}");
        println!("FAILED {f}");
        failure = Some(f);
    }
    let left = scratch.roles_like("v-token-bulk-%").await?;
    if !left.is_empty() {
        let f = format!("{} logins left after revoke-prefix", left.len());
        println!("FAILED {f}");
        failure.get_or_insert(f);
    }

    let names: Vec<String> = (0..n).map(|_| format!("v-direct-bulk-{}", random_alnum(24))).collect();
    pg_create_roles(scratch, &names, POOL).await?;
    let machine = MachineCpu::now();
    let dropped = pg_drop_roles(scratch, &names, POOL).await?;
    dropped.print(
        &format!("direct DROP ROLE ({POOL} sessions; {})", machine.since()),
        "roles",
    );
    if status == 204 {
        println!(
            "ratio warden revoke-prefix / direct DROP ROLE: {:.3} ({:.1} vs {:.1} per s)",
            (n as f64 / took) / dropped.rate(),
            n as f64 / took,
            dropped.rate()
        );
    }
    Ok(failure)
}
