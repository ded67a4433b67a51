//! Issue 11's reproductions that concern the seal, TTL arithmetic, static
//! roles, login names and reads of connections, each against the real
//! binary (and a real PostgreSQL where a database is involved):
//! 1. `sys/unseal` on an unsealed node answered never and hung the server;
//!    seal, unseal, seal-status and requests hammered at once must all answer;
//! 2. a static role with a huge `rotation_period` changed the user's
//!    password, then panicked and lost it;
//! 3. a huge `rotation_window` was accepted and panicked the scheduler;
//! 4. huge mount TTLs were accepted and panicked every later issue and renew;
//! 5. a login name PostgreSQL's SASLprep refuses panicked sqlx;
//! 7. a password written into `connection_url` was returned by a read.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::{Client, DbEnv, WardenServer, check_error};

/// Longer than any answer may take: a request still open after this hangs.
const HANG: Duration = Duration::from_secs(5);

/// One request that must answer within [`HANG`].
async fn answer(client: &Client, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
    tokio::time::timeout(HANG, client.req(method, path, body.clone()))
        .await
        .with_context(|| format!("{method} {path} {body:?} did not answer within {HANG:?}"))?
}

#[tokio::test]
async fn unseal_on_an_unsealed_node_answers_its_status() -> Result<()> {
    let server = WardenServer::start().await?;
    let anon = server.client().with_token(None);
    for body in [
        json!({}),
        json!({"key": "abc"}),
        json!({"reset": true}),
        json!({"key": "00"}),
    ] {
        let (status, reply) = answer(&anon, "PUT", "/v1/sys/unseal", Some(body.clone())).await?;
        ensure!(
            status == 200 && reply["sealed"] == json!(false),
            "unseal {body} on an unsealed node: {status} {reply}"
        );
    }
    let (status, _) = answer(&anon, "GET", "/v1/sys/health", None).await?;
    ensure!(status == 200, "health after the unseals: {status}");
    let (status, _) = answer(&server.client(), "GET", "/v1/sys/mounts", None).await?;
    ensure!(status == 200, "sys/mounts after the unseals: {status}");
    Ok(())
}

/// Seal, unseal (with every share, one more than the threshold), seal-status
/// and ordinary requests from several clients at once for a few seconds:
/// every request answers, and the node ends up usable.
#[tokio::test]
async fn seal_and_unseal_hammered_concurrently_never_hang() -> Result<()> {
    let mut node = Node::new(NodeStorage::Inmem)?;
    node.start().await?;
    let (keys, root) = node.init(3, 2).await?;
    let anon = node.client(None);
    let authed = node.client(Some(&root));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut workers = Vec::new();
    for worker in 0..6usize {
        let (anon, authed, keys) = (anon.clone(), authed.clone(), keys.clone());
        workers.push(tokio::spawn(async move {
            let mut i = worker;
            let mut answered = 0usize;
            while tokio::time::Instant::now() < deadline {
                let (method, path, body, client) = match i % 5 {
                    0 => (
                        "PUT",
                        "/v1/sys/unseal",
                        Some(json!({"key": keys[i % keys.len()]})),
                        &anon,
                    ),
                    1 => ("GET", "/v1/sys/seal-status", None, &anon),
                    2 => ("PUT", "/v1/sys/seal", None, &authed),
                    3 => ("GET", "/v1/sys/mounts", None, &authed),
                    _ => ("GET", "/v1/sys/health", None, &anon),
                };
                let (status, reply) = answer(client, method, path, body).await?;
                ensure!(status < 500 || status == 503, "{method} {path}: {status} {reply}");
                answered += 1;
                i += 1;
            }
            Ok::<usize, anyhow::Error>(answered)
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await??;
    }
    ensure!(total > 50, "only {total} requests answered in 4 s");
    // Usable afterwards: unseal (if the last word was a seal) and serve.
    let status = node.unseal(&[&keys[0], &keys[1], &keys[2]]).await?;
    ensure!(status["sealed"] == json!(false), "not unsealed at the end: {status}");
    let (code, _) = answer(&authed, "GET", "/v1/sys/mounts", None).await?;
    ensure!(code == 200, "sys/mounts at the end: {code}");
    Ok(())
}

#[tokio::test]
async fn out_of_range_rotation_settings_are_refused_before_the_password_changes() -> Result<()> {
    let env = DbEnv::start("rb_static", &["*"]).await?;
    let (user, initial) = env.scratch.create_login("rb_period").await?;
    let c = &env.client;
    for period in [
        json!(10_000_000_000_000i64),
        json!(i64::MAX),
        json!(1e308),
        json!("9999999999999h"),
        json!(-5),
    ] {
        let body = json!({"db_name": "pg", "username": user, "rotation_period": period});
        let got = answer(c, "POST", "/v1/db/static-roles/huge", Some(body)).await?;
        check_error(&format!("rotation_period {period}"), &got, 400)?;
        ensure!(
            env.scratch.logs_in(&user, &initial).await,
            "rotation_period {period}: the user's password was changed anyway"
        );
    }
    let (status, _) = answer(c, "GET", "/v1/db/static-roles/huge", None).await?;
    ensure!(status == 404, "a refused role was stored: {status}");

    // Repro 3: a window past the end of time is refused too (it was
    // accepted, then panicked the mount's scheduler at the next minute).
    let body = json!({"db_name": "pg", "username": user,
        "rotation_schedule": "* * * * *", "rotation_window": 10_000_000_000_000i64});
    let got = answer(c, "POST", "/v1/db/static-roles/window", Some(body)).await?;
    check_error("rotation_window 1e13", &got, 400)?;
    ensure!(
        env.scratch.logs_in(&user, &initial).await,
        "the window write changed the password"
    );

    // The mount's scheduler still rotates: a 5 s role rotates again.
    c.expect(
        "POST",
        "/v1/db/static-roles/ok",
        Some(json!({"db_name": "pg", "username": user, "rotation_period": "5s"})),
        204,
    )
    .await?;
    let first = c.expect("GET", "/v1/db/static-creds/ok", None, 200).await?;
    let first = first["data"]["password"].as_str().unwrap_or_default().to_string();
    let rotated = warden_tests::eventually(Duration::from_secs(30), || async {
        let now = c.expect("GET", "/v1/db/static-creds/ok", None, 200).await?;
        Ok(now["data"]["password"].as_str().unwrap_or_default() != first)
    })
    .await?;
    ensure!(rotated, "the scheduler did not rotate a 5 s role within 30 s");
    Ok(())
}

#[tokio::test]
async fn out_of_range_ttls_are_refused_and_the_largest_valid_ones_work() -> Result<()> {
    let env = DbEnv::start("rb_ttl", &["*"]).await?;
    let c = &env.client;
    env.write_role("app", json!({"default_ttl": "1h", "max_ttl": "0"}))
        .await?;
    for body in [
        json!({"max_lease_ttl": 1e13, "default_lease_ttl": 1e13}),
        json!({"max_lease_ttl": "9999999999h"}),
        json!({"default_lease_ttl": i64::MAX}),
    ] {
        let got = answer(c, "POST", "/v1/sys/mounts/db/tune", Some(body.clone())).await?;
        check_error(&format!("tune {body}"), &got, 400)?;
    }
    let got = answer(
        c,
        "POST",
        "/v1/sys/mounts/db2",
        Some(json!({"type": "database", "config": {"max_lease_ttl": "9999999999h"}})),
    )
    .await?;
    check_error("mount with max_lease_ttl 9999999999h", &got, 400)?;
    let (status, _) = answer(c, "GET", "/v1/sys/mounts/db2", None).await?;
    ensure!(status >= 400, "the refused mount exists: {status}");
    for field in ["default_ttl", "max_ttl"] {
        let body = json!({"db_name": "pg", "creation_statements": [warden_tests::CREATE_ROLE], field: 1e13});
        let got = answer(c, "POST", "/v1/db/roles/huge", Some(body)).await?;
        check_error(&format!("role {field} 1e13"), &got, 400)?;
    }

    // The longest a Go duration holds is fine: issue and renew work.
    c.expect(
        "POST",
        "/v1/sys/mounts/db/tune",
        Some(json!({"max_lease_ttl": "2562047h", "default_lease_ttl": "2562047h"})),
        204,
    )
    .await?;
    env.write_role("long", json!({"default_ttl": "0", "max_ttl": "0"}))
        .await?;
    let (status, creds) = answer(c, "GET", "/v1/db/creds/long", None).await?;
    ensure!(status == 200, "creds with the longest TTL: {status} {creds}");
    let lease = creds["lease_id"].as_str().unwrap_or_default().to_string();
    let (status, renewed) = answer(
        c,
        "PUT",
        "/v1/sys/leases/renew",
        Some(json!({"lease_id": lease, "increment": i64::MAX})),
    )
    .await?;
    // The increment is out of range for a duration: a 400, not a panic.
    ensure!(status == 400, "renew by i64::MAX: {status} {renewed}");
    let (status, renewed) = answer(
        c,
        "PUT",
        "/v1/sys/leases/renew",
        Some(json!({"lease_id": lease, "increment": "2562047h"})),
    )
    .await?;
    ensure!(status == 200, "renew by the longest duration: {status} {renewed}");
    let (status, _) = answer(c, "PUT", "/v1/sys/leases/revoke", Some(json!({"lease_id": lease}))).await?;
    ensure!(status == 204, "revoke: {status}");
    Ok(())
}

#[tokio::test]
async fn login_names_saslprep_refuses_are_refused_at_write_time() -> Result<()> {
    let env = DbEnv::start("rb_sasl", &["*"]).await?;
    let c = &env.client;
    env.write_role("app", json!({})).await?;
    let creds = env.creds("app").await?;
    for (name, verify) in [("app\u{1F511}", false), ("app\u{1F511}", true), ("\u{0221}x", false)] {
        let body = json!({"username": name, "verify_connection": verify});
        let got = answer(c, "POST", "/v1/db/config/pg", Some(body)).await?;
        check_error(&format!("username {name:?} verify {verify}"), &got, 400)?;
    }
    // The stored connection is untouched: the lease issued before revokes.
    let (status, body) = answer(
        c,
        "PUT",
        "/v1/sys/leases/revoke",
        Some(json!({"lease_id": creds.lease_id})),
    )
    .await?;
    ensure!(
        status == 204,
        "revoke through the untouched connection: {status} {body}"
    );
    ensure!(!env.scratch.role_exists(&creds.username).await?, "the login stayed");
    env.creds("app").await?;
    Ok(())
}

#[tokio::test]
async fn a_password_written_into_the_connection_url_is_never_read_back() -> Result<()> {
    let env = DbEnv::start("rb_mask", &["*"]).await?;
    let c = &env.client;
    let s = &env.scratch;
    let url = s
        .connection_url_template()
        .replace("{{username}}", &s.admin_user)
        .replace("{{password}}", &s.admin_password);
    ensure!(
        url.contains(&s.admin_password),
        "the test URL carries no password: {url}"
    );
    c.expect(
        "POST",
        "/v1/db/config/literal",
        Some(json!({"plugin_name": "postgresql-database-plugin", "connection_url": url, "allowed_roles": "*"})),
        204,
    )
    .await?;
    let read = c.expect("GET", "/v1/db/config/literal", None, 200).await?;
    let shown = read["data"]["connection_details"]["connection_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if read.to_string().contains(&s.admin_password) {
        bail!("the read returned the password: {read}");
    }
    ensure!(
        shown.contains(&format!("{}:***@", s.admin_user)),
        "the URL is not shown masked: {shown}"
    );
    // The masked form is only for reading: the connection still works.
    let role = json!({"db_name": "literal", "creation_statements": [warden_tests::CREATE_ROLE]});
    c.expect("POST", "/v1/db/roles/lit", Some(role), 204).await?;
    let (status, body) = answer(c, "GET", "/v1/db/creds/lit", None).await?;
    ensure!(status == 200, "creds through the literal URL: {status} {body}");
    Ok(())
}
