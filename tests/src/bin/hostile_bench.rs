//! hostile_bench: what an attacking component costs everyone else. The p99
//! latency of dynamic PostgreSQL credentials from one mount, without an
//! attack and while other requests keep a hostile driver (components/hostile)
//! looping, bombing memory, hammering host imports and trapping, in
//! alternating rounds; medians of the per-round p99s and their ratio
//! (issue 14's target: the p99 under attack within 10% of the p99 without).
//!
//! Usage: hostile_bench [N=1000] [CLIENTS=4] [ATTACKERS=2] [ROUNDS=3]
//!
//! The server runs with `-plugin-timeout=2s`, so a looping call ends after
//! 2 s and its attacker starts the next one at once: the attack never
//! stops during an attack round. Uses `WARDEN_TEST_PG_URL` when set, else a
//! throwaway PostgreSQL cluster; starts `warden server -dev`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result};
use warden_tests::bench::{list, median, mount_pg_role, ms, warden_gets};
use warden_tests::fixtures::{configure_hostile, hostile_plugin_dir};
use warden_tests::{ServerOptions, TestPostgres, WardenServer};

const CREDS: &str = "/v1/db/creds/bench";
/// The misbehaviours the attackers take turns with.
const ATTACKS: [&str; 4] = ["loop", "bomb", "hammer", "trap"];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let arg = |i: usize, default: usize| -> Result<usize> {
        std::env::args()
            .nth(i)
            .map_or(Ok(default), |a| a.parse().with_context(|| format!("argument {i}: {a}")))
    };
    let (n, clients, attackers, rounds) = (arg(1, 1000)?, arg(2, 4)?, arg(3, 2)?, arg(4, 3)?);
    let plugins = hostile_plugin_dir()?;
    let scratch = TestPostgres::shared().scratch("hostile_bench").await?;
    let server = WardenServer::start_with(ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        extra_args: vec!["-plugin-timeout=2s".into()],
        ..ServerOptions::default()
    })
    .await?;
    let client = server.client();
    mount_pg_role(&client, &scratch, "bench", clients).await?;
    configure_hostile(&client, &ATTACKS).await?;
    println!(
        "hostile_bench: {n} credentials per run, {clients} clients, {attackers} attackers, {rounds} rounds, 2 cores"
    );
    warden_gets(&client, CREDS, n.min(200), clients).await?;

    let (mut calm, mut attacked, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let quiet = warden_gets(&client, CREDS, n, clients).await?;
        quiet.print(&format!("round {round} without attack"), "creds");

        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..attackers)
            .map(|a| {
                let (client, stop, failed) = (client.clone(), stop.clone(), failed.clone());
                tokio::spawn(async move {
                    let mut i = a;
                    while !stop.load(Ordering::Relaxed) {
                        let role = ATTACKS[i % ATTACKS.len()];
                        i += 1;
                        if let Ok((status, _)) = client.req("GET", &format!("/v1/db/creds/{role}"), None).await
                            && status >= 400
                        {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        // Let the attack get going before measuring.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let loud = warden_gets(&client, CREDS, n, clients).await?;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await?;
        }
        loud.print(&format!("round {round} under attack"), "creds");
        println!(
            "round {round}: {} hostile calls failed as they should",
            failed.load(Ordering::Relaxed)
        );
        let (p_quiet, p_loud) = (ms(quiet.percentile(0.99)), ms(loud.percentile(0.99)));
        calm.push(p_quiet);
        attacked.push(p_loud);
        ratios.push(p_loud / p_quiet);
    }
    println!("p99 without attack (ms): {}", list(&calm));
    println!("p99 under attack (ms):   {}", list(&attacked));
    println!(
        "p99 under attack / without: median {:.3} (rounds {}; target <= 1.10)",
        median(&ratios),
        list(&ratios)
    );
    drop(server);
    Ok(())
}
