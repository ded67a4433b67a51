//! namespaces_bench: what multi-tenancy costs (issue 16's benchmarks).
//!
//! Usage: namespaces_bench noisy [N=1000] [CLIENTS=8] [ROUNDS=3] [FLOOD=200]
//!        namespaces_bench density [NAMESPACES=10000] [STEP=1000]
//!
//! `noisy`: tenant B (namespace team-b) issues N dynamic PostgreSQL
//! credentials with CLIENTS clients, in alternating rounds with tenant A
//! (namespace team-a) idle and with A flooding: attackers call A's
//! looping driver (components/hostile) at FLOOD requests a second in all
//! (0: as fast as they can), far past A's rate limit (20 a second, a
//! `sys/quotas/rate-limit` on `team-a/`), within A's sandbox quota (one
//! driver call at a time, 1 s per call). Prints B's p99 per round and the
//! median ratio (target: <= 1.10), and how A's requests were answered
//! (429s from the rate limit and the sandbox quota). The attackers run in
//! this process, on the server's 2 cores: an unpaced flood measures what
//! answering 429s costs the machine as much as the isolation.
//!
//! `density`: NAMESPACES namespaces in one SQLite-backed node, each with a
//! database mount, a connection (`verify_connection` false: nothing
//! connects until used) and a role. Prints RSS as they grow; then
//! restarts the node and prints the time to listening, to unsealed and to
//! serving the last namespace, and RSS; then cold tenants' first
//! credential against warm tenants' (the second credential of the same
//! tenant), with the database's own connect time (measured apart, a
//! PostgreSQL login of the same user) taken off the cold figure.
//!
//! Uses `WARDEN_TEST_PG_URL` when set, else a throwaway PostgreSQL cluster.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;
use warden_tests::bench::{self, list, median, mount_pg_role, ms, warden_gets};
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::fixtures::{configure_hostile, hostile_plugin_dir, postgres_config};
use warden_tests::{CREATE_ROLE, Client, ServerOptions, TestPostgres, WardenServer};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: usize| -> Result<usize> {
        args.get(i)
            .map_or(Ok(default), |a| a.parse().with_context(|| format!("argument {i}: {a}")))
    };
    match args.first().map(String::as_str) {
        Some("noisy") => noisy(num(1, 1000)?, num(2, 8)?, num(3, 3)?, num(4, 200)?).await,
        Some("density") => density(num(1, 10_000)?, num(2, 1000)?.max(1)).await,
        _ => bail!("usage: namespaces_bench noisy [N] [CLIENTS] [ROUNDS] | density [NAMESPACES] [STEP]"),
    }
}

const B_CREDS: &str = "/v1/db/creds/bench";

async fn noisy(n: usize, clients: usize, rounds: usize, flood: usize) -> Result<()> {
    let plugins = hostile_plugin_dir()?;
    let scratch = TestPostgres::shared().scratch("ns_noisy").await?;
    let server = WardenServer::start_with(ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        ..ServerOptions::default()
    })
    .await?;
    let root = server.client();
    for ns in ["team-a", "team-b"] {
        root.expect("POST", &format!("/v1/sys/namespaces/{ns}"), None, 200)
            .await?;
    }
    let a = root.with_header("X-Vault-Namespace", "team-a");
    let b = root.with_header("X-Vault-Namespace", "team-b");
    mount_pg_role(&b, &scratch, "bench", clients).await?;
    a.expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    configure_hostile(&a, &["loop"]).await?;
    // A's limits, set by the operator in the root namespace.
    root.expect(
        "POST",
        "/v1/sys/quotas/rate-limit/team-a",
        Some(json!({"path": "team-a/", "rate": 20})),
        204,
    )
    .await?;
    root.expect(
        "POST",
        "/v1/sys/quotas/sandbox/team-a",
        Some(json!({"path": "team-a/", "max_instances": 1, "call_timeout": "1s"})),
        204,
    )
    .await?;
    let pace = match flood {
        0 => "as fast as 4 clients can".to_string(),
        f => format!("{f} requests/s"),
    };
    println!(
        "namespaces_bench noisy: tenant B {n} credentials per round, {clients} clients, {rounds} rounds; tenant A floods its looping driver at {pace} (rate limit 20/s, 1 driver call at a time, 1 s each); 2 cores"
    );
    warden_gets(&b, B_CREDS, n.min(200), clients).await?;
    let attackers = 4;
    let (mut calm, mut loud_p99, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let quiet = warden_gets(&b, B_CREDS, n, clients).await?;
        quiet.print(&format!("round {round}: B with A idle"), "creds");
        let stop = Arc::new(AtomicBool::new(false));
        let answers: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
        let tasks: Vec<_> = (0..attackers)
            .map(|_| {
                let (a, stop, answers) = (a.clone(), stop.clone(), answers.clone());
                tokio::spawn(async move {
                    // Each attacker's share of the flood.
                    let mut tick = (flood > 0).then(|| {
                        let every = std::time::Duration::from_secs_f64(attackers as f64 / flood as f64);
                        let mut t = tokio::time::interval(every);
                        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        t
                    });
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(t) = tick.as_mut() {
                            t.tick().await;
                        }
                        let slot = match a.req("GET", "/v1/db/creds/loop", None).await {
                            Ok((429, body)) if body.to_string().contains("rate limit") => 0,
                            Ok((429, _)) => 1,
                            _ => 2,
                        };
                        answers[slot].fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let loud = warden_gets(&b, B_CREDS, n, clients).await?;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await?;
        }
        loud.print(&format!("round {round}: B with A flooding"), "creds");
        println!(
            "round {round}: A's requests: {} refused by its rate limit, {} by its sandbox quota, {} ran (and failed: the loop hits its deadline)",
            answers[0].load(Ordering::Relaxed),
            answers[1].load(Ordering::Relaxed),
            answers[2].load(Ordering::Relaxed)
        );
        let (p_quiet, p_loud) = (ms(quiet.percentile(0.99)), ms(loud.percentile(0.99)));
        calm.push(p_quiet);
        loud_p99.push(p_loud);
        ratios.push(p_loud / p_quiet);
    }
    println!("B's p99 with A idle (ms):     {}", list(&calm));
    println!("B's p99 with A flooding (ms): {}", list(&loud_p99));
    println!(
        "B's p99 flooding / idle: median {:.3} (rounds {}; target <= 1.10)",
        median(&ratios),
        list(&ratios)
    );
    Ok(())
}

fn tenant(i: usize) -> String {
    format!("t{i:05}")
}

async fn density(n: usize, step: usize) -> Result<()> {
    let scratch = TestPostgres::shared().scratch("ns_density").await?;
    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.start().await?;
    let (keys, root_token) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    let root = node.client(Some(&root_token));
    let pid = node.pid().context("no server process")?;
    let base = bench::rss_mib(pid);
    println!(
        "namespaces_bench density: {n} namespaces, each a database mount + connection + role; RSS at start {base:.0} MiB"
    );
    let mut config = postgres_config(&scratch, &["r"]);
    config["verify_connection"] = json!(false);
    let started = Instant::now();
    for chunk in (0..n).step_by(step) {
        let end = (chunk + step).min(n);
        let t = Instant::now();
        for i in chunk..end {
            setup_tenant(&root, &tenant(i), &config).await?;
        }
        let rss = bench::rss_mib(pid);
        println!(
            "namespaces_bench density: {end:>6} namespaces: RSS {rss:>6.0} MiB ({:.1} KiB per namespace above start); set-up {:.2} ms per namespace over this step",
            (rss - base) * 1024.0 / end as f64,
            ms(t.elapsed()) / (end - chunk) as f64
        );
    }
    println!(
        "namespaces_bench density: {n} namespaces set up in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    node.stop();
    let t0 = Instant::now();
    node.start().await?;
    let listening = t0.elapsed();
    let t1 = Instant::now();
    node.unseal(&[&keys[0]]).await?;
    let unsealed = t1.elapsed();
    let root = node.client(Some(&root_token));
    let last = tenant(n.saturating_sub(1));
    root.expect("GET", &format!("/v1/{last}/db/roles/r"), None, 200).await?;
    let serving = t0.elapsed();
    let pid = node.pid().context("no server process")?;
    println!(
        "namespaces_bench density: restart with {n} namespaces: listening (sealed) after {:.0} ms; unseal took {:.0} ms; \
         serving the last namespace {:.0} ms after process start (target < 2000); RSS {:.0} MiB (target < 1024)",
        ms(listening),
        ms(unsealed),
        ms(serving),
        bench::rss_mib(pid)
    );

    // Cold tenants (nothing of theirs used since the restart) against warm
    // ones (the same tenant's next credential); up to 100 spread evenly.
    // The first driver call after the restart loads the compiled component
    // for everyone: made first, left out.
    let creds = |i: usize| {
        let root = root.clone();
        async move {
            let t = Instant::now();
            root.expect("GET", &format!("/v1/{}/db/creds/r", tenant(i)), None, 200)
                .await?;
            anyhow::Ok(ms(t.elapsed()))
        }
    };
    creds(n.saturating_sub(1)).await?;
    let sample: Vec<usize> = (0..n.saturating_sub(1)).step_by((n / 100).max(1)).take(100).collect();
    let (mut cold, mut warm, mut connect) = (Vec::new(), Vec::new(), Vec::new());
    for &i in &sample {
        cold.push(creds(i).await?);
        warm.push(creds(i).await?);
        // The database's own connect time: a new login of the same user.
        let t = Instant::now();
        let conn = scratch.connect_as(&scratch.admin_user, &scratch.admin_password).await?;
        connect.push(ms(t.elapsed()));
        drop(conn);
    }
    let extra: Vec<f64> = cold
        .iter()
        .zip(&warm)
        .zip(&connect)
        .map(|((c, w), k)| c - w - k)
        .collect();
    println!(
        "namespaces_bench density: {} tenants' first credential (cold) median {:.2} ms, the next (warm) {:.2} ms, \
         a PostgreSQL connect {:.2} ms: cold minus warm minus connect median {:.2} ms (target < 5)",
        sample.len(),
        median(&cold),
        median(&warm),
        median(&connect),
        median(&extra)
    );
    node.stop();
    Ok(())
}

/// A namespace with a database mount, a connection and a role.
async fn setup_tenant(root: &Client, name: &str, config: &serde_json::Value) -> Result<()> {
    root.expect("POST", &format!("/v1/sys/namespaces/{name}"), None, 200)
        .await?;
    let t = root.with_header("X-Vault-Namespace", name);
    t.expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    t.expect("POST", "/v1/db/config/pg", Some(config.clone()), 204).await?;
    t.expect(
        "POST",
        "/v1/db/roles/r",
        Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE], "default_ttl": "1h"})),
        204,
    )
    .await?;
    Ok(())
}
