//! A hostile database driver (a component that loops forever, traps, or
//! allocates without bound) fails only its own request: the server keeps
//! answering, and the PostgreSQL driver on the same mount keeps issuing
//! credentials, even while the hostile call is running.
//!
//! The driver is the components workspace's `hostile_driver.wasm`
//! (`WARDEN_COMPONENT_HOSTILE_WASM`), dropped into the server's
//! `-dev-plugin-dir` as `hostile-database-plugin.wasm`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use sqlx::Connection;
use warden_tests::fixtures::{configure_hostile, hostile_plugin_dir};
use warden_tests::util::TempDir;
use warden_tests::{DbEnv, ServerOptions, check_error};

/// The server's deadline of one plugin call in these tests (its default is
/// 30 s; shorter keeps the test quick, the mechanism is the same).
const PLUGIN_TIMEOUT: &str = "10s";
/// A hostile call must fail within this.
const HOSTILE_DEADLINE: Duration = Duration::from_secs(30);
/// A normal call made while a hostile one runs must finish within this.
const PROMPT: Duration = Duration::from_secs(5);

/// A server with `db/config/pg` (PostgreSQL, role `app`) and `db/config/h`
/// (the hostile driver, one role per misbehaviour: `loop`, `trap`, `bomb`,
/// `recurse`, `huge`, `hammer`, `sneak`, `tunnel`).
async fn hostile_env(label: &str) -> Result<(DbEnv, TempDir)> {
    let plugins = hostile_plugin_dir()?;
    let options = ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        extra_args: vec![format!("-plugin-timeout={PLUGIN_TIMEOUT}")],
        ..ServerOptions::default()
    };
    let env = DbEnv::start_with(label, &["app"], options, json!({})).await?;
    env.write_role("app", json!({})).await?;
    configure_hostile(
        &env.client,
        &["loop", "trap", "bomb", "recurse", "huge", "hammer", "sneak", "tunnel"],
    )
    .await?;
    Ok((env, plugins))
}

/// GET db/creds/<role> must fail with `{"errors": [...]}` within the deadline.
async fn hostile_call_fails(env: &DbEnv, role: &str) -> Result<Duration> {
    let started = Instant::now();
    let path = format!("/v1/db/creds/{role}");
    let got = tokio::time::timeout(HOSTILE_DEADLINE, env.client.get(&path))
        .await
        .with_context(|| format!("GET {path} did not answer within {}s", HOSTILE_DEADLINE.as_secs()))??;
    check_error(&format!("GET {path} (hostile driver)"), &got, 0)?;
    Ok(started.elapsed())
}

/// The server is healthy and the PostgreSQL driver issues a working login,
/// all within [`PROMPT`].
async fn still_serves(env: &DbEnv, when: &str) -> Result<()> {
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(PROMPT, env.client.get("/v1/sys/health"))
        .await
        .with_context(|| format!("{when}: GET sys/health took over {PROMPT:?}"))??;
    if status != 200 {
        bail!("{when}: GET sys/health: expected 200, got {status} {body}");
    }
    let creds = tokio::time::timeout(PROMPT, env.creds("app"))
        .await
        .with_context(|| format!("{when}: GET db/creds/app took over {PROMPT:?}"))??;
    let mut conn = env
        .scratch
        .connect_as(&creds.username, &creds.password)
        .await
        .with_context(|| format!("{when}: log in as {}", creds.username))?;
    sqlx::query("SELECT 1").execute(&mut conn).await?;
    conn.close().await?;
    eprintln!("{when}: health and creds answered in {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_component_fails_only_its_own_request() -> Result<()> {
    let (env, _plugins) = hostile_env("hloop").await?;
    let client = env.client.clone();
    let looping = tokio::spawn(async move { client.get("/v1/db/creds/loop").await });

    // While the loop runs, the rest of the server answers promptly.
    tokio::time::sleep(Duration::from_millis(500)).await;
    still_serves(&env, "during the loop").await?;
    if looping.is_finished() {
        eprintln!("note: the loop request ended before the check ran; concurrency was not exercised");
    }

    let got = tokio::time::timeout(HOSTILE_DEADLINE, looping)
        .await
        .context("GET db/creds/loop did not answer within 30 s")???;
    check_error("GET db/creds/loop (infinite loop)", &got, 0)?;
    still_serves(&env, "after the loop").await?;
    // And again: the driver's next call fails the same way, not by hanging.
    hostile_call_fails(&env, "loop").await?;
    still_serves(&env, "after the second loop").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_component_fails_only_its_own_request() -> Result<()> {
    let (env, _plugins) = hostile_env("htrap").await?;
    let took = hostile_call_fails(&env, "trap").await?;
    eprintln!("trap failed in {took:?}");
    still_serves(&env, "after the trap").await?;
    hostile_call_fails(&env, "trap").await?;
    still_serves(&env, "after the second trap").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_fails_only_its_own_request() -> Result<()> {
    let (env, _plugins) = hostile_env("hbomb").await?;
    let took = hostile_call_fails(&env, "bomb").await?;
    eprintln!("bomb failed in {took:?}");
    still_serves(&env, "after the bomb").await?;
    Ok(())
}

/// The error text of a failed hostile call.
async fn hostile_error(env: &DbEnv, role: &str) -> Result<String> {
    let path = format!("/v1/db/creds/{role}");
    let got = tokio::time::timeout(HOSTILE_DEADLINE, env.client.get(&path))
        .await
        .with_context(|| format!("GET {path} did not answer within {}s", HOSTILE_DEADLINE.as_secs()))??;
    check_error(&format!("GET {path} (hostile driver)"), &got, 0)?;
    Ok(got.1["errors"][0].as_str().unwrap_or_default().to_string())
}

/// Deep recursion (a stack trap), a 32 MiB answer (the host's size limit)
/// and a connection to a database the grant does not name each fail their
/// own request with an error that says why; the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursion_a_huge_answer_and_an_ungranted_host_fail_only_their_own_request() -> Result<()> {
    let (env, _plugins) = hostile_env("hmisc").await?;
    // Rust's shadow stack in linear memory runs out first (an out-of-bounds
    // access below address 0), else wasmtime's stack limit: a trap either way.
    let recurse = hostile_error(&env, "recurse").await?;
    if !(recurse.contains("wasm trap") && (recurse.contains("stack") || recurse.contains("out of bounds"))) {
        bail!("recursion: expected a stack trap, got {recurse:?}");
    }
    still_serves(&env, "after the recursion").await?;
    let huge = hostile_error(&env, "huge").await?;
    if !huge.contains("user name of 33554432 bytes") {
        bail!("huge answer: expected the host's size limit, got {huge:?}");
    }
    still_serves(&env, "after the huge answer").await?;
    let sneak = hostile_error(&env, "sneak").await?;
    if !sneak.contains("192.0.2.1:5432 is not the host this connection is configured for") {
        bail!("ungranted host: expected the grant's refusal, got {sneak:?}");
    }
    still_serves(&env, "after the ungranted connection").await?;
    let tunnel = hostile_error(&env, "tunnel").await?;
    if !tunnel.contains("192.0.2.1:6379 is not the host this connection is configured for") {
        bail!("ungranted TCP host: expected the allowlist's refusal, got {tunnel:?}");
    }
    still_serves(&env, "after the ungranted TCP connection").await?;
    Ok(())
}

/// A component calling a host import in a tight loop is stopped by the
/// deadline like a plain loop, and the server answers meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_hammering_host_imports_fails_only_its_own_request() -> Result<()> {
    let (env, _plugins) = hostile_env("hhammer").await?;
    let client = env.client.clone();
    let hammering = tokio::spawn(async move { client.get("/v1/db/creds/hammer").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    still_serves(&env, "during the hammering").await?;
    let got = tokio::time::timeout(HOSTILE_DEADLINE, hammering)
        .await
        .context("GET db/creds/hammer did not answer within 30 s")???;
    check_error("GET db/creds/hammer (host import loop)", &got, 0)?;
    let text = got.1["errors"][0].as_str().unwrap_or_default();
    if !text.contains("did not answer within") {
        bail!("hammer: expected the deadline, got {text:?}");
    }
    still_serves(&env, "after the hammering").await?;
    Ok(())
}
