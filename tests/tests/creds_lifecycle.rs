//! The walking skeleton, end to end: a database mount issues PostgreSQL
//! logins that work, leases that can be looked up, renewed and revoked, and
//! every way a lease ends drops the login from the server.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sqlx::{Connection, Row};
use warden_tests::{CREATE_ROLE, DbEnv, check_error, errors_of, keys_of};

/// How far apart two clocks (Warden's lease, PostgreSQL's VALID UNTIL) may be.
const CLOCK_SLACK: f64 = 5.0;

#[tokio::test]
async fn creds_response_has_the_vault_shape() -> Result<()> {
    let env = DbEnv::start("shape", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let creds = env.creds("app").await?;
    let body = &creds.body;
    assert!(
        body["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "request_id: {body}"
    );
    let suffix = creds
        .lease_id
        .strip_prefix("db/creds/app/")
        .with_context(|| format!("lease_id should start with db/creds/app/: {body}"))?;
    assert!(!suffix.is_empty() && !suffix.contains('/'), "lease_id: {body}");
    assert_eq!(body["renewable"], json!(true), "{body}");
    assert_eq!(body["lease_duration"], json!(3600), "{body}");
    assert_eq!(body["wrap_info"], Value::Null, "{body}");
    assert_eq!(body["warnings"], Value::Null, "{body}");
    assert_eq!(body["auth"], Value::Null, "{body}");
    assert!(!creds.username.is_empty() && !creds.password.is_empty(), "{body}");
    let data_keys: Vec<&String> = body["data"].as_object().map(|o| o.keys().collect()).unwrap_or_default();
    assert_eq!(data_keys, vec!["password", "username"], "{body}");
    Ok(())
}

#[tokio::test]
async fn issued_login_works_and_a_wrong_password_does_not() -> Result<()> {
    let env = DbEnv::start("login", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let creds = env.creds("app").await?;

    let mut conn = env
        .scratch
        .connect_as(&creds.username, &creds.password)
        .await
        .with_context(|| format!("log in as the issued user {}", creds.username))?;
    let row = sqlx::query("SELECT 1, current_user::text").fetch_one(&mut conn).await?;
    assert_eq!(row.try_get::<i32, _>(0)?, 1);
    assert_eq!(row.try_get::<String, _>(1)?, creds.username);
    conn.close().await?;

    if warden_tests::TestPostgres::shared().password_auth_enforced().await? {
        let wrong = env
            .scratch
            .connect_as(&creds.username, &format!("{}x", creds.password))
            .await;
        assert!(wrong.is_err(), "a wrong password logged in as {}", creds.username);
    }

    let hash = env.scratch.password_hash(&creds.username).await?;
    assert!(
        hash.as_deref().is_some_and(|h| h.starts_with("SCRAM-SHA-256$")),
        "pg_authid.rolpassword of {}: {hash:?}",
        creds.username
    );
    Ok(())
}

#[tokio::test]
async fn valid_until_matches_the_lease_expiry() -> Result<()> {
    let env = DbEnv::start("validuntil", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let creds = env.creds("app").await?;
    let lease = env.lookup(&creds.lease_id).await?;
    let expire_time = lease["expire_time"]
        .as_str()
        .with_context(|| format!("lookup has no expire_time: {lease}"))?;
    let expires = env.scratch.parse_timestamp(expire_time).await?;
    let until = env
        .scratch
        .valid_until(&creds.username)
        .await?
        .context("the issued role has no VALID UNTIL")?;
    assert!(
        (until - expires).abs() <= CLOCK_SLACK,
        "rolvaliduntil {until} vs lease expire_time {expire_time} ({expires})"
    );
    let now = env.scratch.now().await?;
    assert!(
        (until - (now + 3600.0)).abs() <= CLOCK_SLACK,
        "rolvaliduntil {until} should be about an hour from now ({now})"
    );
    Ok(())
}

#[tokio::test]
async fn lease_lookup_describes_the_lease() -> Result<()> {
    let env = DbEnv::start("lookup", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let creds = env.creds("app").await?;
    let data = env.lookup(&creds.lease_id).await?;
    assert_eq!(data["id"], json!(creds.lease_id), "{data}");
    assert_eq!(data["path"], json!("db/creds/app"), "{data}");
    assert_eq!(data["renewable"], json!(true), "{data}");
    assert_eq!(data["last_renewal"], Value::Null, "{data}");
    let ttl = data["ttl"].as_i64().with_context(|| format!("ttl: {data}"))?;
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}: {data}");
    let issue = env
        .scratch
        .parse_timestamp(data["issue_time"].as_str().context("issue_time")?)
        .await?;
    let expire = env
        .scratch
        .parse_timestamp(data["expire_time"].as_str().context("expire_time")?)
        .await?;
    assert!((expire - issue - 3600.0).abs() < 1.0, "issue {issue}, expire {expire}");

    let keys = env.lease_keys("app").await?;
    let suffix = creds.lease_id.rsplit('/').next().unwrap_or_default();
    assert_eq!(keys, vec![suffix.to_string()]);
    Ok(())
}

#[tokio::test]
async fn renew_moves_valid_until() -> Result<()> {
    let env = DbEnv::start("renew", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let creds = env.creds("app").await?;
    let before = env
        .scratch
        .valid_until(&creds.username)
        .await?
        .context("no VALID UNTIL")?;

    let body = env
        .client
        .expect(
            "PUT",
            "/v1/sys/leases/renew",
            Some(json!({"lease_id": creds.lease_id, "increment": 600})),
            200,
        )
        .await?;
    assert_eq!(body["lease_id"], json!(creds.lease_id), "{body}");
    assert_eq!(body["lease_duration"], json!(600), "{body}");
    assert_eq!(body["renewable"], json!(true), "{body}");
    assert_eq!(body["warnings"], Value::Null, "{body}");

    let after = env
        .scratch
        .valid_until(&creds.username)
        .await?
        .context("no VALID UNTIL")?;
    let now = env.scratch.now().await?;
    assert!(
        (after - (now + 600.0)).abs() <= CLOCK_SLACK,
        "after renew rolvaliduntil {after} should be now ({now}) + 600 (was {before})"
    );

    let data = env.lookup(&creds.lease_id).await?;
    let ttl = data["ttl"].as_i64().unwrap_or(-1);
    assert!((590..=600).contains(&ttl), "ttl after renew: {data}");
    assert!(data["last_renewal"].is_string(), "last_renewal after renew: {data}");
    Ok(())
}

#[tokio::test]
async fn renew_beyond_max_ttl_is_capped_with_a_warning() -> Result<()> {
    let env = DbEnv::start("renewcap", &["app"]).await?;
    env.write_role("app", json!({"default_ttl": "1h", "max_ttl": "2h"}))
        .await?;
    let creds = env.creds("app").await?;
    let body = env
        .client
        .expect(
            "PUT",
            "/v1/sys/leases/renew",
            Some(json!({"lease_id": creds.lease_id, "increment": 36000})),
            200,
        )
        .await?;
    let duration = body["lease_duration"].as_i64().unwrap_or(-1);
    assert!(
        (7190..=7200).contains(&duration),
        "lease_duration should be capped to max_ttl (7200): {body}"
    );
    assert!(
        body["warnings"].as_array().is_some_and(|w| !w.is_empty()),
        "a capped renewal should warn: {body}"
    );
    let until = env
        .scratch
        .valid_until(&creds.username)
        .await?
        .context("no VALID UNTIL")?;
    let now = env.scratch.now().await?;
    assert!(
        (until - (now + duration as f64)).abs() <= CLOCK_SLACK,
        "rolvaliduntil {until} vs now {now} + {duration}"
    );
    Ok(())
}

#[tokio::test]
async fn revoke_drops_the_role() -> Result<()> {
    let env = DbEnv::start("revoke", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let creds = env.creds("app").await?;
    assert!(env.scratch.role_exists(&creds.username).await?);

    let body = env
        .client
        .expect(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(json!({"lease_id": creds.lease_id})),
            204,
        )
        .await?;
    assert_eq!(body, Value::Null, "204 should have no body");
    assert!(
        !env.scratch.role_exists(&creds.username).await?,
        "role {} still exists when revoke has returned",
        creds.username
    );

    let got = env.lookup_raw(&creds.lease_id).await?;
    check_error("PUT sys/leases/lookup of a revoked lease", &got, 400)?;
    let got = env.client.list("/v1/sys/leases/lookup/db/creds/app/").await?;
    assert_eq!(got, (404, json!({"errors": []})), "LIST leases after revoke");
    Ok(())
}

#[tokio::test]
async fn expiry_drops_the_role() -> Result<()> {
    let env = DbEnv::start("expiry", &["app"]).await?;
    env.write_role("app", json!({"default_ttl": "2s", "max_ttl": "1h"}))
        .await?;
    let creds = env.creds("app").await?;
    assert_eq!(creds.lease_duration, 2, "{}", creds.body);
    assert!(env.scratch.role_exists(&creds.username).await?);

    let left = env
        .scratch
        .wait_roles_gone(std::slice::from_ref(&creds.username), Duration::from_secs(12))
        .await?;
    assert!(
        left.is_empty(),
        "role {} still exists 12 s after a 2 s lease",
        creds.username
    );

    let got = env.lookup_raw(&creds.lease_id).await?;
    check_error("PUT sys/leases/lookup of an expired lease", &got, 400)?;
    assert_eq!(env.lease_keys("app").await?, Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn revoke_prefix_drops_every_role() -> Result<()> {
    let env = DbEnv::start("prefix", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let mut issued = Vec::new();
    for _ in 0..3 {
        issued.push(env.creds("app").await?);
    }
    let names: Vec<String> = issued.iter().map(|c| c.username.clone()).collect();
    for name in &names {
        assert!(env.scratch.role_exists(name).await?, "{name} was not created");
    }
    let mut keys = env.lease_keys("app").await?;
    keys.sort();
    let mut expected: Vec<String> = issued
        .iter()
        .map(|c| c.lease_id.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    expected.sort();
    assert_eq!(keys, expected, "LIST sys/leases/lookup/db/creds/app/");

    env.client
        .expect("PUT", "/v1/sys/leases/revoke-prefix/db/creds/app", None, 204)
        .await?;
    let mut left = Vec::new();
    for name in &names {
        if env.scratch.role_exists(name).await? {
            left.push(name.clone());
        }
    }
    assert!(left.is_empty(), "roles left after revoke-prefix returned: {left:?}");
    let got = env.client.list("/v1/sys/leases/lookup/db/creds/app/").await?;
    assert_eq!(got, (404, json!({"errors": []})), "LIST leases after revoke-prefix");
    Ok(())
}

#[tokio::test]
async fn failing_creation_statement_leaves_no_role_and_no_lease() -> Result<()> {
    let env = DbEnv::start("failing", &["*"]).await?;
    env.write_role(
        "broken",
        json!({"creation_statements": [CREATE_ROLE, "THIS IS NOT SQL AT ALL;"]}),
    )
    .await?;
    let got = env.client.get("/v1/db/creds/broken").await?;
    check_error("GET db/creds/broken (second statement invalid)", &got, 0)?;
    let got = env.client.list("/v1/sys/leases/lookup/db/creds/broken/").await?;
    assert_eq!(got, (404, json!({"errors": []})), "LIST leases after a failed creds");
    let roles = env.scratch.roles_like("%broken%").await?;
    assert!(roles.is_empty(), "roles left by a failed creation: {roles:?}");
    Ok(())
}

#[tokio::test]
async fn disabling_the_mount_revokes_its_leases_first() -> Result<()> {
    let env = DbEnv::start("unmount", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let a = env.creds("app").await?;
    let b = env.creds("app").await?;
    env.client.expect("DELETE", "/v1/sys/mounts/db", None, 204).await?;
    for name in [&a.username, &b.username] {
        assert!(
            !env.scratch.role_exists(name).await?,
            "role {name} still exists after the mount was disabled"
        );
    }
    let mounts = env.client.expect("GET", "/v1/sys/mounts", None, 200).await?;
    assert!(mounts["data"].get("db/").is_none(), "db/ still mounted: {mounts}");
    let got = env.client.get("/v1/db/roles/app").await?;
    if got.0 != 404 {
        bail!("GET db/roles/app after unmount: expected 404, got {} {}", got.0, got.1);
    }
    Ok(())
}

#[tokio::test]
async fn creds_for_a_role_not_in_allowed_roles_fail() -> Result<()> {
    let env = DbEnv::start("notallowed", &["app"]).await?;
    env.write_role("other", json!({})).await?;
    let got = env.client.get("/v1/db/creds/other").await?;
    check_error("GET db/creds/other (not in allowed_roles)", &got, 0)?;
    let message = errors_of(&got.1)
        .and_then(|e| e.first())
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("not an allowed role"), "{message}");
    assert!(env.scratch.roles_like("%other%").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn roles_are_listed_with_list_and_get_list_true() -> Result<()> {
    let env = DbEnv::start("listroles", &["*"]).await?;
    let got = env.client.list("/v1/db/roles").await?;
    assert_eq!(got, (404, json!({"errors": []})), "LIST db/roles with no roles");
    env.write_role("beta", json!({})).await?;
    env.write_role("alpha", json!({})).await?;
    for (method, path) in [
        ("LIST", "/v1/db/roles"),
        ("LIST", "/v1/db/roles/"),
        ("GET", "/v1/db/roles?list=true"),
        ("GET", "/v1/db/roles/?list=true"),
    ] {
        let body = env.client.expect(method, path, None, 200).await?;
        let keys = keys_of(&body).with_context(|| format!("{method} {path}: {body}"))?;
        assert_eq!(keys, vec!["alpha", "beta"], "{method} {path}");
    }
    Ok(())
}

#[tokio::test]
async fn revoke_prefix_drops_many_roles_at_once() -> Result<()> {
    const COUNT: usize = 100;
    let env = DbEnv::start("prefixmany", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let mut names = Vec::with_capacity(COUNT);
    for chunk in 0..COUNT / 10 {
        let batch = futures::future::try_join_all((0..10).map(|_| env.creds("app")))
            .await
            .with_context(|| format!("issuing batch {chunk}"))?;
        names.extend(batch.into_iter().map(|c| c.username));
    }
    assert_eq!(env.lease_keys("app").await?.len(), COUNT);

    let got = env
        .client
        .req("PUT", "/v1/sys/leases/revoke-prefix/db/creds/app", None)
        .await?;
    if got.0 != 204 {
        let shown: String = got.1.to_string().chars().take(600).collect();
        bail!(
            "PUT sys/leases/revoke-prefix/db/creds/app of {COUNT} leases: expected 204, got {} {shown}",
            got.0
        );
    }
    let mut left = Vec::new();
    for name in &names {
        if env.scratch.role_exists(name).await? {
            left.push(name.clone());
        }
    }
    assert!(
        left.is_empty(),
        "{} of {COUNT} roles left after revoke-prefix",
        left.len()
    );
    assert_eq!(env.lease_keys("app").await?, Vec::<String>::new());
    Ok(())
}
