//! Revocation keeps up with issuance (issue 11, items 6 and 6b):
//! concurrent revocations with the PostgreSQL driver's default revocation
//! (no revocation_statements, whose REVOKEs all update the same catalog
//! rows) never fail nor leave a login behind; revoke-prefix honours Vault's
//! `sync` flag (false: 202 at once, the revocations queued); a synchronous
//! revoke-prefix longer than the request timeout still completes; expired
//! logins are dropped promptly while credentials keep being issued.
//!
//! Every test has its own role name, so the logins it looks for in the
//! shared cluster are its own.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use warden_tests::server::ServerOptions;
use warden_tests::{Client, Creds, DbEnv, eventually};

/// Issue `n` credentials of `role` from `clients` concurrent clients.
async fn issue(client: &Client, role: &str, n: usize, clients: usize) -> Result<Vec<Creds>> {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let path = format!("/v1/db/creds/{role}");
        let count = n / clients + usize::from(c < n % clients);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(count);
            for _ in 0..count {
                got.push(Creds::from_body(client.expect("GET", &path, None, 200).await?)?);
            }
            anyhow::Ok(got)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// The logins of `role` (Warden's default username template) still in
/// PostgreSQL.
async fn logins_left(env: &DbEnv, role: &str) -> Result<Vec<String>> {
    env.scratch.roles_like(&format!("v-token-{role}-%")).await
}

/// Vault's documented read-only role: the login, and SELECT on every table
/// in public. Its GRANT and the default revocation's REVOKEs rewrite the
/// same catalog rows (each table's pg_class row), so they race.
fn readonly_role(ttl: &str) -> Value {
    json!({
        "creation_statements": [
            warden_tests::CREATE_ROLE,
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";",
        ],
        "default_ttl": ttl,
        "max_ttl": ttl,
    })
}

/// An application's tables in the scratch database's public schema, owned
/// by the login Warden uses (so it may grant on them).
async fn app_tables(env: &DbEnv, n: usize) -> Result<()> {
    let mut conn = env
        .scratch
        .connect_as(&env.scratch.admin_user, &env.scratch.admin_password)
        .await?;
    for i in 0..n {
        sqlx::query(&format!("CREATE TABLE app_{i} (id int PRIMARY KEY, v text)"))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// Revocation statements that take `secs` in PostgreSQL before dropping the
/// login, so a revoke-prefix of many leases takes a known minimum time
/// (max_open_connections 4: at most 4 run at once).
fn slow_revocation(secs: f64) -> Value {
    json!([format!(
        "SELECT pg_sleep({secs}); DROP ROLE IF EXISTS \"{{{{name}}}}\";"
    )])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_default_revocations_leave_no_login_behind() -> Result<()> {
    let role = "dflt";
    let env = DbEnv::start("revoke_default", &[role, "side"]).await?;
    app_tables(&env, 20).await?;
    env.write_role(role, readonly_role("1h")).await?;
    env.write_role("side", readonly_role("1h")).await?;

    // Individual revocations from 8 clients at once.
    let creds = issue(&env.client, role, 120, 8).await?;
    let mut tasks = Vec::new();
    for chunk in creds.chunks(15) {
        let client = env.client.clone();
        let ids: Vec<String> = chunk.iter().map(|c| c.lease_id.clone()).collect();
        tasks.push(tokio::spawn(async move {
            for id in ids {
                client
                    .expect("PUT", "/v1/sys/leases/revoke", Some(json!({"lease_id": id})), 204)
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let left = logins_left(&env, role).await?;
    if !left.is_empty() {
        bail!(
            "{} of 120 logins left after their leases were revoked: {left:?}",
            left.len()
        );
    }

    // revoke-prefix (its revocations run concurrently too) while other
    // clients keep issuing: the issuing GRANTs race the REVOKEs.
    let creds = issue(&env.client, role, 300, 8).await?;
    let issuing = {
        let client = env.client.clone();
        tokio::spawn(async move { issue(&client, "side", 100, 4).await })
    };
    let (status, body) = env
        .client
        .req("PUT", &format!("/v1/sys/leases/revoke-prefix/db/creds/{role}"), None)
        .await?;
    let side = issuing.await?.context("issuing while revoke-prefix runs")?;
    if status != 204 {
        bail!(
            "revoke-prefix of {} leases: expected 204, got {status} {body}",
            creds.len()
        );
    }
    let left = logins_left(&env, role).await?;
    if !left.is_empty() {
        bail!(
            "{} of {} logins left after revoke-prefix: {left:?}",
            left.len(),
            creds.len()
        );
    }
    let leases = env.lease_keys(role).await?;
    if !leases.is_empty() {
        bail!("{} leases left after revoke-prefix", leases.len());
    }
    env.client
        .expect("PUT", "/v1/sys/leases/revoke-prefix/db/creds/side", None, 204)
        .await?;
    let left = logins_left(&env, "side").await?;
    if !left.is_empty() {
        bail!(
            "{} of {} logins left after revoke-prefix: {left:?}",
            left.len(),
            side.len()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_prefix_with_sync_false_answers_at_once_and_the_logins_go() -> Result<()> {
    let role = "lazy";
    let env = DbEnv::start("revoke_lazy", &[role]).await?;
    env.write_role(role, json!({"revocation_statements": slow_revocation(0.25)}))
        .await?;
    let creds = issue(&env.client, role, 40, 4).await?;

    // 40 revocations of 0.25 s, 4 at a time: at least 2.5 s when synchronous.
    let started = Instant::now();
    let (status, body) = env
        .client
        .req(
            "PUT",
            &format!("/v1/sys/leases/revoke-prefix/db/creds/{role}"),
            Some(json!({"sync": false})),
        )
        .await?;
    let took = started.elapsed();
    if status != 202 {
        bail!("revoke-prefix with sync=false: expected 202, got {status} {body}");
    }
    if took >= Duration::from_millis(2500) {
        bail!("revoke-prefix with sync=false took {took:?}: as long as revoking every lease");
    }
    let gone = eventually(Duration::from_secs(60), || async {
        Ok(logins_left(&env, role).await?.is_empty() && env.lease_keys(role).await?.is_empty())
    })
    .await?;
    if !gone {
        bail!(
            "60 s after a queued revoke-prefix of {} leases: {} logins and {} leases left",
            creds.len(),
            logins_left(&env, role).await?.len(),
            env.lease_keys(role).await?.len()
        );
    }

    // sync=true (Vault's default) still answers once all are revoked.
    issue(&env.client, role, 8, 4).await?;
    env.client
        .expect(
            "PUT",
            &format!("/v1/sys/leases/revoke-prefix/db/creds/{role}"),
            Some(json!({"sync": true})),
            204,
        )
        .await?;
    let left = logins_left(&env, role).await?;
    if !left.is_empty() {
        bail!("a synchronous revoke-prefix answered 204 with logins left: {left:?}");
    }
    // A sync that is not a boolean is refused before anything is revoked.
    let creds = issue(&env.client, role, 1, 1).await?;
    let got = env
        .client
        .req(
            "PUT",
            &format!("/v1/sys/leases/revoke-prefix/db/creds/{role}"),
            Some(json!({"sync": "sometimes"})),
        )
        .await?;
    warden_tests::check_error("revoke-prefix with sync=\"sometimes\"", &got, 400)?;
    env.lookup(&creds[0].lease_id)
        .await
        .context("the lease survives a refused revoke-prefix")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_revoke_prefix_longer_than_the_request_timeout_completes() -> Result<()> {
    let role = "long";
    let options = ServerOptions {
        env: vec![("WARDEN_REQUEST_TIMEOUT".into(), "5s".into())],
        ..Default::default()
    };
    let env = DbEnv::start_with("revoke_long", &[role], options, json!({})).await?;
    env.write_role(role, json!({"revocation_statements": slow_revocation(0.5)}))
        .await?;
    // 48 revocations of 0.5 s, 4 at a time: at least 6 s, past the limit.
    let creds = issue(&env.client, role, 48, 4).await?;
    let started = Instant::now();
    let (status, body) = env
        .client
        .req("PUT", &format!("/v1/sys/leases/revoke-prefix/db/creds/{role}"), None)
        .await?;
    let took = started.elapsed();
    if status != 204 {
        bail!(
            "revoke-prefix of {} leases (took {took:?}): expected 204, got {status} {body}",
            creds.len()
        );
    }
    let left = logins_left(&env, role).await?;
    let leases = env.lease_keys(role).await?;
    if !left.is_empty() || !leases.is_empty() {
        bail!(
            "revoke-prefix answered 204 after {took:?} with {} logins and {} leases left",
            left.len(),
            leases.len()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_logins_are_dropped_promptly_under_sustained_issuing() -> Result<()> {
    let role = "churn";
    let env = DbEnv::start("revoke_churn", &[role]).await?;
    app_tables(&env, 20).await?;
    // The driver's default revocation, as in the issue's reproduction.
    env.write_role(role, readonly_role("2s")).await?;

    // 8 clients issuing for 8 s; each login expires 2 s after it is issued.
    let load_for = Duration::from_secs(8);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = env.client.clone();
        let path = format!("/v1/db/creds/{role}");
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut n = 0usize;
            while started.elapsed() < load_for {
                client.expect("GET", &path, None, 200).await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut issued = 0;
    for t in tasks {
        issued += t.await??;
    }

    // A generous bound: the last logins expire 2 s after the load stops.
    let gone = eventually(Duration::from_secs(25), || async {
        Ok(logins_left(&env, role).await?.is_empty())
    })
    .await?;
    if !gone {
        let left = logins_left(&env, role).await?;
        bail!(
            "25 s after the load stopped, {} of {issued} expired logins are still in PostgreSQL",
            left.len()
        );
    }
    let leases = env.lease_keys(role).await?;
    if !leases.is_empty() {
        bail!(
            "{} leases of {issued} left after their logins were dropped",
            leases.len()
        );
    }
    let irrevocable = env
        .client
        .expect("GET", "/v1/sys/leases/count?type=irrevocable", None, 200)
        .await?;
    if irrevocable["data"]["lease_count"] != json!(0) {
        bail!("irrevocable leases after the load: {irrevocable}");
    }
    Ok(())
}
