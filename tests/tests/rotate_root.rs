//! rotate-root and reset end to end: after rotate-root the connection's own
//! login has a new password that Warden never shows, the old password fails
//! against the real PostgreSQL, and the engine keeps issuing and revoking
//! credentials; reset re-initialises a connection from its stored config.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sqlx::Connection;
use warden_tests::{DbEnv, ServerOptions};

async fn admin_logs_in(env: &DbEnv, password: &str) -> bool {
    match env.scratch.connect_as(&env.scratch.admin_user, password).await {
        Ok(c) => {
            c.close().await.ok();
            true
        }
        Err(_) => false,
    }
}

/// An issued credential logs in, and revoking its lease drops it.
async fn engine_works(env: &DbEnv) -> Result<()> {
    let creds = env.creds("app").await?;
    let conn = env
        .scratch
        .connect_as(&creds.username, &creds.password)
        .await
        .with_context(|| format!("log in as {}", creds.username))?;
    conn.close().await.ok();
    env.client
        .expect(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(json!({"lease_id": creds.lease_id})),
            204,
        )
        .await?;
    assert!(
        !env.scratch.role_exists(&creds.username).await?,
        "revoke left {}",
        creds.username
    );
    Ok(())
}

#[tokio::test]
async fn rotate_root_changes_the_password_and_the_engine_keeps_working() -> Result<()> {
    let env = DbEnv::start("rotroot", &["app", "st"]).await?;
    env.write_role("app", json!({})).await?;
    let old = env.scratch.admin_password.clone();
    // A static role on the same connection.
    let static_user = format!("st_rr_{}", warden_tests::util::random_alnum(6).to_lowercase());
    let mut admin = env.scratch.connect_as(&env.scratch.admin_user, &old).await?;
    sqlx::raw_sql(&format!("CREATE ROLE \"{static_user}\" WITH LOGIN PASSWORD 'initial'"))
        .execute(&mut admin)
        .await?;
    admin.close().await.ok();
    env.client
        .expect(
            "POST",
            "/v1/db/static-roles/st",
            Some(json!({"db_name": "pg", "username": static_user, "rotation_period": "1h"})),
            204,
        )
        .await?;
    // A lease issued before the rotation is revoked after it, with the new
    // root password.
    let before = env.creds("app").await?;

    env.client.expect("POST", "/v1/db/rotate-root/pg", None, 204).await?;
    assert!(!admin_logs_in(&env, &old).await, "the old root password still logs in");

    // The stored config is updated but never shows the password.
    let config = env.client.expect("GET", "/v1/db/config/pg", None, 200).await?;
    let details = &config["data"]["connection_details"];
    let mut keys: Vec<&String> = details.as_object().context("connection_details")?.keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["connection_url", "username"], "{config}");
    assert!(!config.to_string().contains(&old), "{config}");
    assert_eq!(config["data"]["root_credentials_rotate_statements"], json!([]));

    engine_works(&env).await?;
    // Static rotations run with the new root password too.
    env.client.expect("POST", "/v1/db/rotate-role/st", None, 204).await?;
    let creds = env.client.expect("GET", "/v1/db/static-creds/st", None, 200).await?;
    let password = creds["data"]["password"].as_str().context("static password")?;
    let conn = env.scratch.connect_as(&static_user, password).await?;
    conn.close().await.ok();
    env.client
        .expect(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(json!({"lease_id": before.lease_id})),
            204,
        )
        .await?;
    assert!(!env.scratch.role_exists(&before.username).await?);

    // Again: every rotation leaves a working engine.
    env.client.expect("POST", "/v1/db/rotate-root/pg", None, 204).await?;
    engine_works(&env).await?;
    // And reset (close, re-initialise from the stored config) too.
    env.client.expect("POST", "/v1/db/reset/pg", None, 204).await?;
    engine_works(&env).await?;
    Ok(())
}

#[tokio::test]
async fn rotate_root_runs_root_rotation_statements() -> Result<()> {
    let statement = "ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}' CONNECTION LIMIT 50";
    let env = DbEnv::start_with(
        "rotrootstmt",
        &["app"],
        ServerOptions::default(),
        json!({"root_rotation_statements": [statement]}),
    )
    .await?;
    env.write_role("app", json!({})).await?;
    let config = env.client.expect("GET", "/v1/db/config/pg", None, 200).await?;
    assert_eq!(config["data"]["root_credentials_rotate_statements"], json!([statement]));
    env.client.expect("POST", "/v1/db/rotate-root/pg", None, 204).await?;
    assert!(!admin_logs_in(&env, &env.scratch.admin_password).await);
    // The custom statement ran: it set a connection limit.
    let mut su = env.scratch.superuser().await?;
    let limit: i32 = sqlx::query_scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1")
        .bind(&env.scratch.admin_user)
        .fetch_one(&mut su)
        .await?;
    su.close().await.ok();
    assert_eq!(limit, 50);
    engine_works(&env).await?;
    Ok(())
}

#[tokio::test]
async fn a_failed_rotate_root_keeps_the_old_password() -> Result<()> {
    let env = DbEnv::start_with(
        "rotrootfail",
        &["app"],
        ServerOptions::default(),
        json!({"root_rotation_statements": ["ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}'", "SELECT 1/0"]}),
    )
    .await?;
    env.write_role("app", json!({})).await?;
    let (status, body) = env.client.post("/v1/db/rotate-root/pg", json!({})).await?;
    assert_eq!(status, 500, "{body}");
    let error = body["errors"][0].as_str().unwrap_or_default();
    assert!(error.contains("division by zero"), "{error}");
    assert!(admin_logs_in(&env, &env.scratch.admin_password).await);
    engine_works(&env).await?;
    Ok(())
}

#[tokio::test]
async fn missing_connections_answer_as_openbao() -> Result<()> {
    let env = DbEnv::start("rotrootmissing", &["app"]).await?;
    let expected = |_: ()| -> Value {
        json!({"errors": ["1 error occurred:\n\t* failed to find entry for connection with name: \"nope\"\n\n"]})
    };
    let got = env.client.post("/v1/db/rotate-root/nope", json!({})).await?;
    assert_eq!(got, (500, expected(())));
    let got = env.client.post("/v1/db/reset/nope", json!({})).await?;
    assert_eq!(got, (500, expected(())));
    let (status, _) = env.client.get("/v1/db/rotate-root/pg").await?;
    assert_eq!(status, 405);
    Ok(())
}
