//! coldstart_bench: what compiling components costs a user (issue 14, item
//! 7): the first driver call of a fresh install, the first after a restart
//! (compiled code from the disk cache), and registering a new driver.
//!
//! Usage: coldstart_bench [ROUNDS=3]
//!
//! Each round gets an empty compilation cache (its own `WARDEN_CACHE_DIR`):
//! 1. fresh install: `warden server -dev`, mount `db/`, write a PostgreSQL
//!    connection (`verify_connection` false, so no database round trip: the
//!    call is the driver's `initialize`, which compiles the component), a
//!    role, and issue the first credential; the server's RSS after;
//! 2. restart with that cache: the same, now a cache hit;
//! 3. register redis.wasm (components/redis, 260 KB) in the plugin catalog:
//!    compile with an empty cache, then again on a restarted server whose
//!    cache holds it.
//!
//! Medians over the rounds. Targets (issue 14): first credential of a
//! fresh install under 100 ms with RSS under 80 MB, first use after a
//! restart under 50 ms. Uses `WARDEN_TEST_PG_URL` when set, else a
//! throwaway PostgreSQL cluster.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};
use warden_tests::bench::{list, median, rss_kib};
use warden_tests::fixtures::postgres_config;
use warden_tests::util::{TempDir, target_dir};
use warden_tests::{CREATE_ROLE, Creds, Scratch, ServerOptions, TestPostgres, WardenServer};

#[derive(Default)]
struct Figures {
    config_ms: Vec<f64>,
    creds_ms: Vec<f64>,
    rss_mib: Vec<f64>,
}

impl Figures {
    fn print(&self, label: &str) {
        println!(
            "coldstart_bench: {label}: first driver call (config write) {:.1} ms, first credential {:.1} ms, RSS {:.0} MiB (config write per round: {})",
            median(&self.config_ms),
            median(&self.creds_ms),
            median(&self.rss_mib),
            list(&self.config_ms)
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(3), |a| a.parse()).context("ROUNDS")?;
    let pg = TestPostgres::shared();
    let wasm = std::fs::read(target_dir().join("wasm/wasm32-wasip2/release/redis_driver.wasm"))
        .context("redis_driver.wasm (build the workspace first)")?;
    let sha = hex::encode(Sha256::digest(&wasm));
    let (mut fresh, mut cached) = (Figures::default(), Figures::default());
    let (mut register_cold, mut register_cached) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let cache = TempDir::new("warden-cold-cache")?;
        let scratch = pg.scratch(&format!("cold{round}")).await?;
        first_credential(cache.path(), &scratch, &mut fresh).await?;
        first_credential(cache.path(), &scratch, &mut cached).await?;
        // Registration: with an empty cache, then on a restart with it filled.
        let empty = TempDir::new("warden-cold-cache")?;
        register_cold.push(register(empty.path(), &wasm, &sha).await?);
        register_cached.push(register(empty.path(), &wasm, &sha).await?);
    }
    fresh.print("fresh install (empty cache)");
    cached.print("after a restart (cache hit)");
    println!(
        "coldstart_bench: registering redis.wasm: {:.1} ms with an empty cache, {:.1} ms with it cached (per round: {} / {})",
        median(&register_cold),
        median(&register_cached),
        list(&register_cold),
        list(&register_cached)
    );
    Ok(())
}

fn options(cache: &Path, plugins: Option<&Path>) -> ServerOptions {
    ServerOptions {
        plugin_dir: plugins.map(Path::to_path_buf),
        env: vec![("WARDEN_CACHE_DIR".into(), cache.display().to_string())],
        ..ServerOptions::default()
    }
}

async fn first_credential(cache: &Path, scratch: &Scratch, figures: &mut Figures) -> Result<()> {
    let server = WardenServer::start_with(options(cache, None)).await?;
    let client = server.client();
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let mut config = postgres_config(scratch, &["app"]);
    config["verify_connection"] = json!(false);
    let began = Instant::now();
    client.expect("POST", "/v1/db/config/pg", Some(config), 204).await?;
    figures.config_ms.push(began.elapsed().as_secs_f64() * 1e3);
    client
        .expect(
            "POST",
            "/v1/db/roles/app",
            Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE]})),
            204,
        )
        .await?;
    let began = Instant::now();
    Creds::from_body(client.expect("GET", "/v1/db/creds/app", None, 200).await?)?;
    figures.creds_ms.push(began.elapsed().as_secs_f64() * 1e3);
    let rss = server.pid().and_then(rss_kib).unwrap_or_default();
    figures.rss_mib.push(rss as f64 / 1024.0);
    Ok(())
}

/// Milliseconds to register redis.wasm as a new database plugin. The file
/// goes into the (empty) plugin directory after start-up, which a dev
/// server would otherwise register and compile at once.
async fn register(cache: &Path, wasm: &[u8], sha: &str) -> Result<f64> {
    let plugins = TempDir::new("warden-cold-plugins")?;
    let server = WardenServer::start_with(options(cache, Some(plugins.path()))).await?;
    std::fs::write(plugins.path().join("redis.wasm"), wasm)?;
    let began = Instant::now();
    server
        .client()
        .expect(
            "PUT",
            "/v1/sys/plugins/catalog/database/redis-bench",
            Some(json!({"sha256": sha, "command": "redis.wasm", "version": "v1.0.0"})),
            204,
        )
        .await?;
    Ok(began.elapsed().as_secs_f64() * 1e3)
}
