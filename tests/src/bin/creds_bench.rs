//! creds_bench: dynamic PostgreSQL credentials per second through Warden,
//! against the same CREATE ROLE statements sent straight to PostgreSQL.
//!
//! Usage: creds_bench [N=2000] [CLIENTS=8] [ROUNDS=3]
//!
//! The concurrent comparison runs ROUNDS times, direct and Warden in turn,
//! and reports medians: both share this machine's cores with PostgreSQL,
//! and a single pair of runs swings by 10% from one run to the next.
//!
//! Uses `WARDEN_TEST_PG_URL` when set, else a throwaway PostgreSQL cluster;
//! starts `warden server -dev` (`WARDEN_BIN`, else target/release/warden).
//! Prints labelled result lines; see docs/testing.md.
//! `WARDEN_BENCH_AUDIT=1` enables a `file` audit device (a temporary file)
//! before the measured runs, to weigh what auditing costs.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;
use warden_tests::bench::{
    MachineCpu, Run, cpu_ticks, list, median, mount_pg_role, pg_create_roles, pg_drop_roles, rss_kib, ticks_ms,
    unix_now, warden_gets,
};
use warden_tests::util::random_alnum;
use warden_tests::{Scratch, TestPostgres, WardenServer};

const ROLE: &str = "bench";
const CREDS: &str = "/v1/db/creds/bench";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = match args.next() {
        Some(a) => a.parse().context("N must be a number")?,
        None => 2000,
    };
    let clients: usize = match args.next() {
        Some(a) => a.parse().context("CLIENTS must be a number")?,
        None => 8,
    };
    let rounds: usize = match args.next() {
        Some(a) => a.parse().context("ROUNDS must be a number")?,
        None => 3,
    };
    if n == 0 || clients == 0 || rounds == 0 {
        bail!("usage: creds_bench [N>0] [CLIENTS>0] [ROUNDS>0]");
    }

    let pg = tokio::task::spawn_blocking(TestPostgres::from_env).await??;
    let scratch = pg.scratch("bench").await?;
    let server = WardenServer::start().await?;
    let pid = server.pid().context("server has no pid")?;
    let client = server.client();
    println!(
        "creds_bench: N={n} clients={clients} postgres={}:{} ({}) warden={} pid={pid}",
        pg.host(),
        pg.port(),
        if pg.is_throwaway() {
            "throwaway"
        } else {
            "WARDEN_TEST_PG_URL"
        },
        server.addr()
    );

    mount_pg_role(&client, &scratch, ROLE, clients).await?;
    let audit_dir = warden_tests::util::TempDir::new("creds-bench-audit")?;
    if std::env::var("WARDEN_BENCH_AUDIT").is_ok_and(|v| v == "1") {
        let file = audit_dir.path().join("audit.log");
        client
            .expect(
                "PUT",
                "/v1/sys/audit/file",
                Some(json!({"type": "file", "options": {"file_path": file.to_string_lossy()}})),
                204,
            )
            .await?;
        println!("audit: file device enabled at {}", file.display());
    }
    // Warm-up: pools open, component instances created, caches filled.
    let warmup = n.clamp(1, 20);
    warden_gets(&client, CREDS, warmup, 1).await?;

    let seq = warden_gets(&client, CREDS, n, 1).await?;
    seq.print("warden sequential (1 client)", "creds");
    let direct_names_1 = names(n);
    let direct_1 = run_direct(&scratch, &direct_names_1, 1).await?;
    direct_1.print("direct sqlx (1 session)", "CREATE ROLE");

    let mut direct_names_c = Vec::new();
    let mut ratios = Vec::new();
    let mut warden_rates = Vec::new();
    let mut direct_rates = Vec::new();
    let mut cpu_ticks_total = 0;
    let mut cpu_per_cred = Vec::new();
    for round in 1..=rounds {
        let batch = names(n);
        let machine = MachineCpu::now();
        let direct = run_direct(&scratch, &batch, clients).await?;
        direct_names_c.extend(batch);
        direct.print(
            &format!("round {round}: direct sqlx ({clients} sessions; {})", machine.since()),
            "CREATE ROLE",
        );
        let (machine, cpu_before) = (MachineCpu::now(), cpu_ticks(pid)?);
        let conc = warden_gets(&client, CREDS, n, clients).await?;
        let ticks = cpu_ticks(pid)?.saturating_sub(cpu_before);
        cpu_ticks_total += ticks;
        cpu_per_cred.push(ticks_ms(ticks) / n as f64);
        conc.print(
            &format!(
                "round {round}: warden concurrent ({clients} clients; {})",
                machine.since()
            ),
            "creds",
        );
        ratios.push(conc.rate() / direct.rate());
        warden_rates.push(conc.rate());
        direct_rates.push(direct.rate());
    }
    let n_conc = n * rounds;
    let ticks = cpu_ticks_total;
    let cpu_ms = ticks_ms(ticks);
    println!(
        "warden server CPU: {:.3} ms/cred (utime+stime {} ticks = {cpu_ms:.0} ms over {n_conc} creds, {clients} clients)",
        cpu_ms / n_conc as f64,
        ticks
    );
    println!(
        "warden server CPU per round: median {:.3} ms/cred (per round {})",
        median(&cpu_per_cred),
        list(&cpu_per_cred)
    );
    if let Some(rss) = rss_kib(pid) {
        println!("warden server RSS: {} MiB after the runs", rss / 1024);
    }
    println!(
        "ratio warden {clients} clients / direct {clients} sessions: median {:.3} over {rounds} rounds \
         (per round {}; median rates {:.1} vs {:.1} per s)",
        median(&ratios),
        list(&ratios),
        median(&warden_rates),
        median(&direct_rates)
    );
    println!(
        "ratio warden 1 client / direct 1 session: {:.3} ({:.1} vs {:.1} per s)",
        seq.rate() / direct_1.rate(),
        seq.rate(),
        direct_1.rate()
    );

    // Clean up: Warden's leases through Warden, the direct roles directly.
    let started = Instant::now();
    let (status, body) = client
        .req("PUT", &format!("/v1/sys/leases/revoke-prefix/db/creds/{ROLE}"), None)
        .await?;
    let total = warmup + n + n * rounds;
    let revoke_failure = if status == 204 {
        println!(
            "cleanup: revoke-prefix of {total} leases in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        None
    } else {
        let shown: String = body.to_string().chars().take(800).collect();
        let failure = format!(
            "PUT sys/leases/revoke-prefix/db/creds/{ROLE} ({total} leases): expected 204, got {status} {shown}"
        );
        println!("cleanup: FAILED {failure}");
        Some(failure)
    };
    let started = Instant::now();
    let mut all = direct_names_1;
    all.extend(direct_names_c);
    drop_direct(&scratch, &all, clients).await?;
    println!(
        "cleanup: dropped {} direct roles in {:.2} s",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    let left = scratch.roles_like("v-%").await?;
    if !left.is_empty() {
        println!("cleanup: WARNING {} roles named v-% remain", left.len());
    }
    if let Ok(meta) = std::fs::metadata(audit_dir.path().join("audit.log")) {
        println!("audit: {} bytes written", meta.len());
    }
    drop(server);
    tokio::task::spawn_blocking(move || drop(pg)).await?;
    match revoke_failure {
        Some(failure) => bail!(failure),
        None => Ok(()),
    }
}

/// Role names shaped like Warden's: v-<who>-<role>-<20 random>-<unix time>.
fn names(n: usize) -> Vec<String> {
    let now = unix_now();
    (0..n)
        .map(|_| format!("v-direct-{ROLE}-{}-{now}", random_alnum(20)))
        .collect()
}

async fn run_direct(scratch: &Scratch, names: &[String], sessions: usize) -> Result<Run> {
    pg_create_roles(scratch, names, sessions).await
}

async fn drop_direct(scratch: &Scratch, names: &[String], sessions: usize) -> Result<()> {
    pg_drop_roles(scratch, names, sessions).await.map(drop)
}
