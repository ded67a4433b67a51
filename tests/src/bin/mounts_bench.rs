//! mounts_bench: what each database mount costs as their number grows
//! (issue 11, item 9).
//!
//! Usage: mounts_bench [N=5000] [STEP=1000] [USED=40] [BACKENDS=inmem,sqlite]
//!
//! For each backend, a fresh node (inmem: what a dev server runs on; sqlite:
//! the embedded default) gets N database mounts, each with a connection to
//! a real throwaway PostgreSQL database (`verify_connection` false: nothing
//! connects until it is used) and a role. USED of them, spread evenly, issue
//! one credential for real. After every STEP mounts it prints the server's
//! RSS, RSS per mount, and the time to set up one mount (enable + config +
//! role, sequential requests) over that step, and the server's CPU time per
//! mount (which, unlike the wall time, other work on a shared machine does
//! not inflate; it includes the USED credentials): for storage that scales,
//! the per-mount figures stay flat as N grows.
//!
//! For sqlite, the node is then restarted and the start-up time printed:
//! process start to listening (sealed), unseal to unsealed, and to the first
//! request served by the last mount; then the first driver call of cold
//! mounts (p50 and p99; see `cold_calls`).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;
use warden_tests::bench::{self, median};
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::fixtures::postgres_config;
use warden_tests::{CREATE_ROLE, Client, TestPostgres};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: usize| -> Result<usize> {
        args.get(i).map_or(Ok(default), |a| a.parse().context("a number"))
    };
    let n = num(0, 5000)?;
    let step = num(1, 1000)?.max(1);
    let used = num(2, 40)?.min(n);
    let backends = args.get(3).map_or("inmem,sqlite", String::as_str);
    for backend in backends.split(',') {
        let storage = match backend {
            "inmem" => NodeStorage::Inmem,
            "sqlite" => NodeStorage::Sqlite,
            other => bail!("unknown backend {other:?} (inmem, sqlite)"),
        };
        run(storage, backend, n, step, used).await?;
    }
    Ok(())
}

/// Mount `i`'s path.
fn mount(i: usize) -> String {
    format!("m{i:05}")
}

async fn run(storage: NodeStorage, label: &str, n: usize, step: usize, used: usize) -> Result<()> {
    let scratch = TestPostgres::shared().scratch(&format!("mounts_{label}")).await?;
    let mut node = Node::new(storage)?;
    node.start().await?;
    let (keys, root) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    let client = node.client(Some(&root));
    let pid = node.pid().context("no server process")?;
    let base_rss = bench::rss_mib(pid);
    println!(
        "mounts_bench {label}: {n} database mounts (connection + role each), {used} used once; RSS at start {base_rss:.0} MiB"
    );
    let config = postgres_config(&scratch, &["*"]);
    // Every (n / used)-th mount issues a credential.
    let every = n.checked_div(used).map_or(usize::MAX, |e| e.max(1));
    let machine = bench::MachineCpu::now();
    let started = Instant::now();
    let mut issued = 0;
    let mut first_rate = None;
    let mut last_rss = base_rss;
    for chunk_start in (0..n).step_by(step) {
        let chunk_end = (chunk_start + step).min(n);
        let mut setup_ms = Vec::with_capacity(chunk_end - chunk_start);
        let cpu_before = bench::cpu_ticks(pid)?;
        let mut creds_ms = Vec::new();
        for i in chunk_start..chunk_end {
            let t = Instant::now();
            setup_mount(&client, &mount(i), &config).await?;
            setup_ms.push(bench::ms(t.elapsed()));
            if i % every == 0 && issued < used {
                let t = Instant::now();
                client
                    .expect("GET", &format!("/v1/{}/creds/r", mount(i)), None, 200)
                    .await?;
                creds_ms.push(bench::ms(t.elapsed()));
                issued += 1;
            }
        }
        let rss = bench::rss_mib(pid);
        // The server's CPU per mount: unlike the wall time, not inflated
        // when other work on the machine takes the cores.
        let cpu_ms =
            bench::ticks_ms(bench::cpu_ticks(pid)?.saturating_sub(cpu_before)) / (chunk_end - chunk_start) as f64;
        let mean = setup_ms.iter().sum::<f64>() / setup_ms.len() as f64;
        let first = *first_rate.get_or_insert(mean);
        println!(
            "mounts_bench {label}: {chunk_end:>6} mounts: RSS {rss:>6.0} MiB ({:>5.1} KiB/mount above start, \
             {:>5.1} KiB/mount over this step); set-up {mean:.2} ms/mount (median {:.2}, {:.2}x the first step), server CPU {cpu_ms:.2} ms/mount{}",
            (rss - base_rss) * 1024.0 / chunk_end as f64,
            (rss - last_rss) * 1024.0 / (chunk_end - chunk_start) as f64,
            median(&setup_ms),
            mean / first,
            if creds_ms.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} credentials issued, median {:.1} ms",
                    creds_ms.len(),
                    median(&creds_ms)
                )
            }
        );
        last_rss = rss;
    }
    println!(
        "mounts_bench {label}: {n} mounts set up in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        machine.since()
    );

    if matches!(node.storage, NodeStorage::Sqlite) {
        node.stop();
        let size: u64 = ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", node.sqlite_path().display())).ok())
            .map(|m| m.len())
            .sum();
        let t0 = Instant::now();
        node.start().await?;
        let listening = t0.elapsed();
        let t1 = Instant::now();
        node.unseal(&[&keys[0]]).await?;
        let unsealed = t1.elapsed();
        // Serving: the last mount answers a read of its role.
        let last = mount(n.saturating_sub(1));
        node.client(Some(&root))
            .expect("GET", &format!("/v1/{last}/roles/r"), None, 200)
            .await?;
        let serving = t0.elapsed();
        let pid = node.pid().context("no server process")?;
        println!(
            "mounts_bench {label}: restart with {n} mounts (file {:.1} MiB): listening (sealed) after {:.0} ms; \
             unseal took {:.0} ms; serving {:.0} ms after process start; RSS {:.0} MiB",
            size as f64 / (1 << 20) as f64,
            bench::ms(listening),
            bench::ms(unsealed),
            bench::ms(serving),
            bench::rss_mib(pid)
        );
        cold_calls(&node.client(Some(&root)), label, n, every, &config).await?;
    }
    node.stop();
    Ok(())
}

/// The first driver call of cold mounts after the restart: up to 200 mounts
/// spread evenly that never issued a credential get their connection
/// written again without verification (the driver's `initialize` on an
/// instance made for that mount, plus the config's storage write; no
/// database round trip). The first driver call after the restart, which
/// loads the compiled component (the code built into the binary), is made
/// first and left out.
async fn cold_calls(client: &Client, label: &str, n: usize, every: usize, config: &serde_json::Value) -> Result<()> {
    let mut config = config.clone();
    config["verify_connection"] = json!(false);
    let write = |i: usize| {
        let config = config.clone();
        async move {
            let t = Instant::now();
            client
                .expect("POST", &format!("/v1/{}/config/pg", mount(i)), Some(config), 204)
                .await?;
            anyhow::Ok(bench::ms(t.elapsed()))
        }
    };
    let loaded = write(n.saturating_sub(1)).await?;
    let cold: Vec<usize> = (0..n.saturating_sub(1))
        .step_by((n / 200).max(1))
        .filter(|i| i % every != 0)
        .take(200)
        .collect();
    let mut ms = Vec::with_capacity(cold.len());
    for i in cold {
        ms.push(write(i).await?);
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| {
        ms.get(((ms.len() as f64 * p) as usize).min(ms.len().saturating_sub(1)))
            .copied()
    };
    println!(
        "mounts_bench {label}: first driver call of {} cold mounts after the restart (config write, no database): \
         p50 {:.2} ms, p99 {:.2} ms; the very first (loading the compiled component) {loaded:.1} ms",
        ms.len(),
        at(0.5).unwrap_or_default(),
        at(0.99).unwrap_or_default()
    );
    Ok(())
}

/// Enable a database mount, write its connection and a role.
async fn setup_mount(client: &Client, path: &str, config: &serde_json::Value) -> Result<()> {
    client
        .expect(
            "POST",
            &format!("/v1/sys/mounts/{path}"),
            Some(json!({"type": "database"})),
            204,
        )
        .await?;
    let mut config = config.clone();
    config["verify_connection"] = json!(false);
    client
        .expect("POST", &format!("/v1/{path}/config/pg"), Some(config), 204)
        .await?;
    client
        .expect(
            "POST",
            &format!("/v1/{path}/roles/r"),
            Some(json!({
                "db_name": "pg",
                "creation_statements": [CREATE_ROLE],
                "default_ttl": "1h",
                "max_ttl": "24h",
            })),
            204,
        )
        .await?;
    Ok(())
}
