//! Schemathesis against the generated OpenAPI document
//! (`sys/internal/specs/openapi`), with the server on a real PostgreSQL:
//! every operation of every path is fuzzed from its declared schema, and
//! no answer may be a 5xx except the ones Vault itself gives (see
//! `warden_tests::schemathesis::VAULTS_OWN_500S`), nor may the server
//! crash or hang. Bounded in time (`WARDEN_SCHEMATHESIS_SECS`, default
//! 120). The seal's and the rekey's paths are left out: sealing the server
//! under test would turn every later answer into a 503; `auth/token/revoke-self`
//! too: called with the root token it revokes it, and every later answer
//! would be a 403; and the rate-limit quotas and their config: a global
//! quota of a fraction of a request per second, with no exempt paths,
//! would turn every later answer into a 429, and a sandbox quota of 1 MiB
//! would make every driver call fail (tests/tests/quotas.rs and
//! hostile_components.rs cover their bad input).

use anyhow::{Context, Result, ensure};
use serde_json::json;
use std::process::Command;
use warden_tests::DbEnv;
use warden_tests::schemathesis::{ensure_st, write_hooks};

#[tokio::test]
async fn schemathesis_finds_no_server_error_in_the_generated_document() -> Result<()> {
    let st = ensure_st()?;
    let hooks = write_hooks()?;
    let mut env = DbEnv::start("schemathesis", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let secs = std::env::var("WARDEN_SCHEMATHESIS_SECS").unwrap_or_else(|_| "120".into());
    let url = format!("{}/v1/sys/internal/specs/openapi", env.server.url());
    let run = Command::new(&st)
        .env("SCHEMATHESIS_HOOKS", "warden_hooks")
        .env("PYTHONPATH", &hooks)
        .args(["run", &url, "--url", &format!("{}/v1", env.server.url())])
        .args(["-H", &format!("X-Vault-Token: {}", env.server.root_token())])
        .args(["--checks", "no_5xx_but_vaults_own"])
        .args([
            "--exclude-path-regex",
            "^/(sys/(seal|unseal|init|rekey|rotate|generate-root|quotas/(rate-limit|config|sandbox))|auth/token/revoke-self)",
        ])
        .args(["--max-examples", "25", "--max-time", &secs, "--request-timeout", "30"])
        // One worker: with two threads, Python 3.11's ast module (which
        // Hypothesis calls to describe its filters) can fail with "AST
        // constructor recursion depth mismatch" (CPython gh-106905: its
        // recursion counter is shared between threads), a crash of the
        // tool, not a finding about the server.
        .args(["--workers", "1", "--seed", "1", "--no-color"])
        .output()
        .context("run schemathesis")?;
    let out = format!(
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!("{out}");
    ensure!(
        env.server.is_running(),
        "the server died under schemathesis:\n{}",
        env.server.log_tail(60)
    );
    ensure!(run.status.success(), "schemathesis found failures:\n{out}");
    // Still serving after the run.
    env.client.expect("GET", "/v1/sys/health", None, 200).await?;
    Ok(())
}
