//! Lease robustness against a database that goes away: expired leases whose
//! revocation fails are retried with back-off and all revoked once the
//! database is back, while other mounts keep answering; past the retry limit
//! a lease becomes irrevocable, is listed and counted, and revoke-force
//! removes it; a role deleted after issuing still revokes its leases.
//!
//! The outage tests stop and start their own throwaway PostgreSQL cluster;
//! the server runs with `-revoke-retry-base=1s` so the back-off fits a test.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use warden_tests::fixtures::postgres_config;
use warden_tests::postgres::{Scratch, TestPostgres};
use warden_tests::server::{ServerOptions, WardenServer};
use warden_tests::{CREATE_ROLE, Client, Creds, DbEnv, check_error, eventually};

/// Mount a database engine at `mount`, connection `pg` to `scratch`, and
/// role `app` with the standard creation statement and `ttl`.
async fn mount(client: &Client, mount: &str, scratch: &Scratch, ttl: &str) -> Result<()> {
    client
        .expect(
            "POST",
            &format!("/v1/sys/mounts/{mount}"),
            Some(json!({"type": "database"})),
            204,
        )
        .await?;
    client
        .expect(
            "POST",
            &format!("/v1/{mount}/config/pg"),
            Some(postgres_config(scratch, &["app"])),
            204,
        )
        .await?;
    client
        .expect(
            "POST",
            &format!("/v1/{mount}/roles/app"),
            Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE], "default_ttl": ttl, "max_ttl": "1h"})),
            204,
        )
        .await?;
    Ok(())
}

async fn creds(client: &Client, mount: &str) -> Result<Creds> {
    let body = client
        .expect("GET", &format!("/v1/{mount}/creds/app"), None, 200)
        .await?;
    Creds::from_body(body)
}

async fn lease_exists(client: &Client, lease_id: &str) -> Result<bool> {
    let (status, body) = client
        .req("PUT", "/v1/sys/leases/lookup", Some(json!({"lease_id": lease_id})))
        .await?;
    match status {
        200 => Ok(true),
        400 => Ok(false),
        _ => bail!("lookup {lease_id}: {status} {body}"),
    }
}

async fn irrevocable(client: &Client) -> Result<Value> {
    client
        .expect("GET", "/v1/sys/leases?type=irrevocable", None, 200)
        .await
        .map(|b| b["data"].clone())
}

fn server_options(limit: u32) -> ServerOptions {
    ServerOptions {
        extra_args: vec!["-revoke-retry-base=1s".into(), format!("-revoke-retry-limit={limit}")],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_30s_outage_delays_revocation_then_every_lease_is_revoked_while_other_mounts_answer() -> Result<()> {
    let own = TestPostgres::start().context("start a throwaway cluster to stop")?;
    let scratch_a = own.scratch("outage").await?;
    let scratch_b = TestPostgres::shared().scratch("outage_other").await?;
    let server = WardenServer::start_with(server_options(20)).await?;
    let client = server.client();
    mount(&client, "dba", &scratch_a, "3s").await?;
    mount(&client, "dbb", &scratch_b, "1h").await?;

    let mut issued = Vec::new();
    for _ in 0..5 {
        issued.push(creds(&client, "dba").await?);
    }
    own.pause()?;
    let stopped = Instant::now();

    // 30 s without the database: the leases expire and their revocations
    // fail; mount B and health answer throughout.
    let mut slowest = Duration::ZERO;
    let mut answered = 0;
    while stopped.elapsed() < Duration::from_secs(30) {
        let t = Instant::now();
        let c = creds(&client, "dbb").await.context("mount B during the outage")?;
        client.expect("GET", "/v1/sys/health", None, 200).await?;
        slowest = slowest.max(t.elapsed());
        answered += 1;
        let login = scratch_b.connect_as(&c.username, &c.password).await?;
        sqlx::Connection::close(login).await.ok();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("during the outage: {answered} creds+health round trips on mount B, slowest {slowest:?}");
    // A mount blocked behind the stopped database would wait out the
    // plugin timeout (30 s); well below that means it was not blocked.
    assert!(slowest < Duration::from_secs(10), "mount B was blocked: {slowest:?}");
    for c in &issued {
        assert!(
            lease_exists(&client, &c.lease_id).await?,
            "{} was dropped although its revocation cannot have succeeded",
            c.lease_id
        );
    }

    own.resume()?;
    let resumed = Instant::now();
    let all_gone = eventually(Duration::from_secs(120), || async {
        for c in &issued {
            if lease_exists(&client, &c.lease_id).await? {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    assert!(
        all_gone,
        "leases left 120 s after the database returned\n{}",
        server.log_tail(4000)
    );
    println!(
        "every lease revoked {:?} after the database returned",
        resumed.elapsed()
    );
    for c in &issued {
        assert!(!scratch_a.role_exists(&c.username).await?, "{} left behind", c.username);
    }
    assert_eq!(irrevocable(&client).await?["lease_count"], json!(0));
    Ok(())
}

#[tokio::test]
async fn past_the_retry_limit_leases_are_irrevocable_listed_and_revoke_force_removes_them() -> Result<()> {
    let own = TestPostgres::start().context("start a throwaway cluster to stop")?;
    let scratch = own.scratch("irrevocable").await?;
    let server = WardenServer::start_with(server_options(2)).await?;
    let client = server.client();
    mount(&client, "db", &scratch, "2s").await?;
    let first = creds(&client, "db").await?;
    let second = creds(&client, "db").await?;
    own.pause()?;

    let marked = eventually(Duration::from_secs(90), || async {
        Ok(irrevocable(&client).await?["lease_count"] == json!(2))
    })
    .await?;
    assert!(marked, "not irrevocable after 90 s\n{}", server.log_tail(4000));
    let data = irrevocable(&client).await?;
    let leases = data["leases"].as_array().context("leases")?;
    let mut ids: Vec<&str> = leases.iter().filter_map(|l| l["lease_id"].as_str()).collect();
    ids.sort();
    let mut want = vec![first.lease_id.as_str(), second.lease_id.as_str()];
    want.sort();
    assert_eq!(ids, want, "{data}");
    for l in leases {
        assert!(l["mount_id"].as_str().is_some_and(|s| !s.is_empty()), "{l}");
        assert!(l["error"].as_str().is_some_and(|s| !s.is_empty()), "{l}");
    }
    let (status, listed) = client.list("/v1/sys/leases?type=irrevocable").await?;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"]["lease_count"], json!(2), "{listed}");
    let count = client
        .expect("GET", "/v1/sys/leases/count?type=irrevocable", None, 200)
        .await?;
    assert_eq!(count["data"]["lease_count"], json!(2), "{count}");
    let per_mount: i64 = count["data"]["counts"]
        .as_object()
        .context("counts")?
        .values()
        .filter_map(Value::as_i64)
        .sum();
    assert_eq!(per_mount, 2, "{count}");
    check_error("no type", &client.get("/v1/sys/leases").await?, 400)?;
    check_error("type=all", &client.get("/v1/sys/leases/count?type=all").await?, 400)?;

    // Irrevocable leases are no longer retried: back up, they stay.
    own.resume()?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(scratch.role_exists(&first.username).await? && scratch.role_exists(&second.username).await?);
    assert_eq!(irrevocable(&client).await?["lease_count"], json!(2));

    // revoke-force of one lease id while the database is down: the lease
    // goes, the engine's error is ignored, the login stays behind.
    own.pause()?;
    client
        .expect(
            "PUT",
            &format!("/v1/sys/leases/revoke-force/{}", first.lease_id),
            None,
            204,
        )
        .await?;
    assert!(!lease_exists(&client, &first.lease_id).await?);
    assert_eq!(irrevocable(&client).await?["lease_count"], json!(1));
    own.resume()?;
    assert!(
        scratch.role_exists(&first.username).await?,
        "revoke-force could not have dropped the login with the database down"
    );

    // revoke-force of the prefix with the database up: revoked for real.
    client
        .expect("PUT", "/v1/sys/leases/revoke-force/db/creds/app", None, 204)
        .await?;
    assert!(!lease_exists(&client, &second.lease_id).await?);
    assert!(!scratch.role_exists(&second.username).await?);
    assert_eq!(irrevocable(&client).await?["lease_count"], json!(0));
    check_error(
        "revoke-force without a prefix",
        &client.req("PUT", "/v1/sys/leases/revoke-force/", None).await?,
        400,
    )?;
    Ok(())
}

#[tokio::test]
async fn a_role_deleted_after_issuing_still_revokes_its_leases() -> Result<()> {
    let env = DbEnv::start("role_deleted", &["app", "short"]).await?;
    env.write_role("app", json!({})).await?;
    env.write_role("short", json!({"default_ttl": "2s"})).await?;
    let explicit = env.creds("app").await?;
    let expiring = env.creds("short").await?;
    env.client.expect("DELETE", "/v1/db/roles/app", None, 204).await?;
    env.client.expect("DELETE", "/v1/db/roles/short", None, 204).await?;

    env.client
        .expect(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(json!({"lease_id": explicit.lease_id})),
            204,
        )
        .await?;
    assert!(!env.scratch.role_exists(&explicit.username).await?);

    let gone = eventually(Duration::from_secs(30), || async {
        Ok(!env.scratch.role_exists(&expiring.username).await?
            && !lease_exists(&env.client, &expiring.lease_id).await?)
    })
    .await?;
    assert!(gone, "the expired lease of a deleted role was not revoked");
    Ok(())
}

#[tokio::test]
async fn a_hung_database_fails_its_own_requests_without_blocking_other_mounts() -> Result<()> {
    // A "database" that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let other = TestPostgres::shared().scratch("hung_other").await?;
    let server = WardenServer::start().await?;
    let client = server.client();
    mount(&client, "dbb", &other, "1h").await?;
    client
        .expect("POST", "/v1/sys/mounts/hung", Some(json!({"type": "database"})), 204)
        .await?;
    client
        .expect(
            "POST",
            "/v1/hung/config/pg",
            Some(json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{port}/db"),
                "username": "admin", "password": "secret",
                "allowed_roles": ["app"], "verify_connection": false,
            })),
            204,
        )
        .await?;
    client
        .expect(
            "POST",
            "/v1/hung/roles/app",
            Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE]})),
            204,
        )
        .await?;

    let hung_client = client.clone();
    let hung = tokio::spawn(async move {
        let t = Instant::now();
        let r = hung_client.get("/v1/hung/creds/app").await;
        (r, t.elapsed())
    });
    let mut slowest = Duration::ZERO;
    let start = Instant::now();
    while !hung.is_finished() && start.elapsed() < Duration::from_secs(60) {
        let t = Instant::now();
        creds(&client, "dbb")
            .await
            .context("mount B while the other database hangs")?;
        client.expect("GET", "/v1/sys/health", None, 200).await?;
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (result, took) = hung.await?;
    let (status, body) = result?;
    println!("the hung database's request failed after {took:?}; other mount's slowest round trip {slowest:?}");
    check_error("creds from a hung database", &(status, body), 0)?;
    // Bounded by the pool's acquire timeout, well inside the plugin timeout.
    assert!(took < Duration::from_secs(30), "the request waited {took:?}");
    assert!(slowest < Duration::from_secs(5), "mount B was blocked: {slowest:?}");
    hold.abort();
    Ok(())
}

#[tokio::test]
async fn a_hung_database_does_not_hold_up_the_expiry_of_another_mounts_leases() -> Result<()> {
    let own = TestPostgres::start().context("start a throwaway cluster to freeze")?;
    let scratch_a = own.scratch("frozen").await?;
    let scratch_b = TestPostgres::shared().scratch("frozen_other").await?;
    let server = WardenServer::start_with(server_options(20)).await?;
    let client = server.client();
    mount(&client, "dba", &scratch_a, "6s").await?;
    mount(&client, "dbb", &scratch_b, "8s").await?;
    // More leases on the hung mount than revocations run at once (16):
    // with one queue for all mounts, mount B's would wait for two rounds
    // of hung calls (10 s each, the pool's acquire timeout) or more.
    let mut stuck = Vec::new();
    for _ in 0..40 {
        stuck.push(creds(&client, "dba").await?);
    }
    let mut other = Vec::new();
    for _ in 0..3 {
        other.push(creds(&client, "dbb").await?);
    }
    own.freeze(true)?;
    let frozen = Instant::now();
    // Mount A's revocations now hang; mount B's leases, due a little
    // later, are revoked on time regardless.
    let b_done = eventually(Duration::from_secs(15), || async {
        for c in &other {
            if lease_exists(&client, &c.lease_id).await? || scratch_b.role_exists(&c.username).await? {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await;
    own.freeze(false)?;
    assert!(b_done?, "mount B's expired leases waited behind the hung database");
    println!(
        "mount B's leases revoked {:?} after mount A's database hung",
        frozen.elapsed()
    );
    let all_gone = eventually(Duration::from_secs(120), || async {
        for c in &stuck {
            if lease_exists(&client, &c.lease_id).await? {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    assert!(
        all_gone,
        "leases left after the database thawed\n{}",
        server.log_tail(4000)
    );
    for c in &stuck {
        assert!(!scratch_a.role_exists(&c.username).await?, "{} left behind", c.username);
    }
    Ok(())
}
