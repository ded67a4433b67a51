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

/// A sandbox quota (issue 16, scope 2) tightens the limits of its mount's
/// driver calls: a looping call ends at the quota's deadline rather than
/// the server's, an instance gets no memory past the quota's, a call past
/// its concurrent calls is refused with 429 while the others run, and a
/// pool keeps to its connections. Bad input stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_quota_tightens_the_limits_of_its_mount() -> Result<()> {
    let (env, _plugins) = hostile_env("hsandbox").await?;
    let client = &env.client;
    let quota = "/v1/sys/quotas/sandbox/db-box";
    for (body, says) in [
        (
            json!({"path": "db/", "max_memory_bytes": 1000}),
            "'max_memory_bytes' must be",
        ),
        (
            json!({"path": "db/", "max_memory_bytes": 1u64 << 30}),
            "'max_memory_bytes' must be",
        ),
        (json!({"path": "db/", "call_timeout": -1}), "'call_timeout'"),
        (json!({"path": "db/", "max_instances": -1}), "'max_instances'"),
        (json!({"path": "db/creds/app"}), "whole mount"),
        (json!({"path": "nope/"}), "invalid mount path"),
    ] {
        let (status, out) = client.post(quota, body.clone()).await?;
        if status != 400 || !out.to_string().contains(says) {
            bail!("{body}: expected 400 with {says:?}, got {status} {out}");
        }
    }
    let (status, _) = client.list("/v1/sys/quotas/sandbox").await?;
    if status != 404 {
        bail!("a refused sandbox quota was stored");
    }

    // Before: the 32 MiB name fits the runtime's 64 MiB.
    let (_, before) = client.get("/v1/db/creds/huge").await?;
    if before.to_string().contains("growing memory") {
        bail!("the huge call ran out of memory without a quota: {before}");
    }

    let (status, out) = client
        .post(
            quota,
            json!({"path": "db", "call_timeout": "2s", "max_memory_bytes": 16 << 20, "max_instances": 1}),
        )
        .await?;
    if status != 204 {
        bail!("write the quota: {status} {out}");
    }
    let (_, read) = client.get(quota).await?;
    if read["data"]["path"] != "db/" || read["data"]["call_timeout"] != 2 || read["data"]["max_instances"] != 1 {
        bail!("{read}");
    }
    // The quota's memory.
    let (_, huge) = client.get("/v1/db/creds/huge").await?;
    if !huge.to_string().contains("growing memory") {
        bail!("the huge call was not refused memory: {huge}");
    }
    // The quota's deadline, not the server's 10 s; and while the loop runs,
    // the mount's next call finds no free place.
    let looping = tokio::spawn({
        let client = client.clone();
        async move {
            let started = Instant::now();
            let got = client.get("/v1/db/creds/loop").await;
            (started.elapsed(), got)
        }
    });
    // Until the loop holds its place (a loaded machine may take a moment
    // to get there), the mount's calls go through; then one is refused.
    let mut refused = None;
    while refused.is_none() && !looping.is_finished() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, body) = client.get("/v1/db/creds/app").await?;
        if status == 429 {
            refused = Some(body);
        }
    }
    match refused {
        Some(body) if body.to_string().contains("concurrent driver calls") => {}
        other => bail!("no call was refused past the quota's concurrent calls: {other:?}"),
    }
    let (took, got) = looping.await?;
    check_error("GET db/creds/loop (under the quota)", &got?, 0)?;
    if took >= Duration::from_secs(8) {
        bail!("the loop ran {took:?}: the quota's 2 s deadline did not apply");
    }
    // The place is free again.
    still_serves(&env, "after the loop under the quota").await?;

    // Connections: at most one per pool, whatever the connection says.
    let (status, out) = client
        .post(quota, json!({"max_instances": 0, "max_connections": 1}))
        .await?;
    if status != 204 {
        bail!("{status} {out}");
    }
    let (status, out) = client.post("/v1/db/reset/pg", json!({})).await?;
    if status != 204 {
        bail!("reset: {status} {out}");
    }
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/v1/db/creds/app").await })
        })
        .collect();
    for call in calls {
        let (status, body) = call.await??;
        if status != 200 {
            bail!("creds under max_connections 1: {status} {body}");
        }
    }
    let mut su = env.scratch.superuser().await?;
    let (sessions,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_stat_activity WHERE usename = $1")
        .bind(&env.scratch.admin_user)
        .fetch_one(&mut su)
        .await?;
    if sessions > 1 {
        bail!("{sessions} sessions of the connection's login under max_connections 1");
    }

    // Deleted: the server's limits again.
    let (status, _) = client.delete(quota).await?;
    if status != 204 {
        bail!("delete: {status}");
    }
    let (_, huge) = client.get("/v1/db/creds/huge").await?;
    if huge.to_string().contains("growing memory") {
        bail!("the deleted quota still limits memory: {huge}");
    }
    Ok(())
}
