//! A dynamic role's four kinds of statements, end to end against a real
//! PostgreSQL: stored and shown on read as Vault shows them, and each run
//! when Vault runs it: creation on creds, renew statements on lease renew,
//! revocation statements on revoke, rollback statements when creation fails.
//! Every statement leaves a row in an audit table that the test reads.

use anyhow::{Context, Result};
use serde_json::json;
use sqlx::{Connection, Row};
use warden_tests::{CREATE_ROLE, DbEnv, check_error};

/// The audit table's rows for `name`, as `event` strings in order.
async fn events(env: &DbEnv, name: &str) -> Result<Vec<String>> {
    let mut conn = env.scratch.superuser().await?;
    let rows = sqlx::query("SELECT event FROM audit WHERE name = $1 ORDER BY id")
        .bind(name)
        .fetch_all(&mut conn)
        .await?;
    conn.close().await.ok();
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).map_err(Into::into))
        .collect()
}

/// The scratch admin (the connection's login) owns the audit table, so the
/// role's statements may write to it.
async fn create_audit_table(env: &DbEnv) -> Result<()> {
    let mut conn = env
        .scratch
        .connect_as(&env.scratch.admin_user, &env.scratch.admin_password)
        .await
        .context("log in as the scratch admin")?;
    sqlx::raw_sql("CREATE TABLE audit (id serial PRIMARY KEY, event text NOT NULL, name text NOT NULL)")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

#[tokio::test]
async fn role_statements_are_stored_shown_and_run() -> Result<()> {
    let env = DbEnv::start("statements", &["app", "broken"]).await?;
    create_audit_table(&env).await?;
    let creation = vec![
        CREATE_ROLE.to_string(),
        "INSERT INTO audit (event, name) VALUES ('created', '{{name}}')".to_string(),
    ];
    let revocation = vec![
        "INSERT INTO audit (event, name) VALUES ('revoked', '{{name}}')".to_string(),
        "DROP ROLE \"{{name}}\"".to_string(),
    ];
    let renew = vec![
        "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}'".to_string(),
        "INSERT INTO audit (event, name) VALUES ('renewed', '{{name}}')".to_string(),
    ];
    let rollback = vec!["INSERT INTO audit (event, name) VALUES ('rolled back', '{{name}}')".to_string()];
    env.write_role(
        "app",
        json!({
            "creation_statements": creation,
            "revocation_statements": revocation,
            "renew_statements": renew,
            "rollback_statements": rollback,
        }),
    )
    .await?;

    // Read shows every list as written, in Vault's shape.
    let role = env.client.expect("GET", "/v1/db/roles/app", None, 200).await?;
    let data = &role["data"];
    assert_eq!(data["creation_statements"], json!(creation), "{role}");
    assert_eq!(data["revocation_statements"], json!(revocation), "{role}");
    assert_eq!(data["renew_statements"], json!(renew), "{role}");
    assert_eq!(data["rollback_statements"], json!(rollback), "{role}");
    assert_eq!(data["credential_type"], json!("password"), "{role}");

    let creds = env.creds("app").await?;
    assert_eq!(events(&env, &creds.username).await?, vec!["created"]);

    // Renew runs the renew statements (and they move VALID UNTIL).
    let before = env.scratch.valid_until(&creds.username).await?.context("VALID UNTIL")?;
    env.client
        .expect(
            "PUT",
            "/v1/sys/leases/renew",
            Some(json!({"lease_id": creds.lease_id, "increment": "5h"})),
            200,
        )
        .await?;
    assert_eq!(events(&env, &creds.username).await?, vec!["created", "renewed"]);
    let after = env.scratch.valid_until(&creds.username).await?.context("VALID UNTIL")?;
    assert!(after > before + 3600.0, "VALID UNTIL {before} -> {after}");

    // Revoke runs the revocation statements (not the default revocation).
    env.client
        .expect(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(json!({"lease_id": creds.lease_id})),
            204,
        )
        .await?;
    assert_eq!(
        events(&env, &creds.username).await?,
        vec!["created", "renewed", "revoked"]
    );
    assert!(!env.scratch.role_exists(&creds.username).await?);

    // A creation that fails part-way runs the rollback statements; the
    // creation itself (one transaction) leaves nothing behind.
    env.write_role(
        "broken",
        json!({
            "creation_statements": [
                CREATE_ROLE,
                "INSERT INTO audit (event, name) VALUES ('created', '{{name}}')",
                "SELECT no_such_function()",
            ],
            "rollback_statements": ["INSERT INTO audit (event, name) VALUES ('rolled back', '{{name}}')"],
        }),
    )
    .await?;
    let got = env.client.get("/v1/db/creds/broken").await?;
    check_error("creds with a failing creation statement", &got, 500)?;
    let mut conn = env.scratch.superuser().await?;
    let rows = sqlx::query("SELECT event, name FROM audit WHERE name LIKE 'v-token-broken-%' ORDER BY id")
        .fetch_all(&mut conn)
        .await?;
    conn.close().await.ok();
    let events: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    assert_eq!(events, vec!["rolled back"], "only the rollback's row survives");
    let name: String = rows[0].try_get(1)?;
    assert!(!env.scratch.role_exists(&name).await?, "{name} must not exist");
    assert!(env.lease_keys("broken").await?.is_empty());

    // Statements given as one string are kept whole, as Vault does.
    env.write_role(
        "app",
        json!({"revocation_statements": "DROP ROLE \"{{name}}\"", "renew_statements": ""}),
    )
    .await?;
    let role = env.client.expect("GET", "/v1/db/roles/app", None, 200).await?;
    assert_eq!(
        role["data"]["revocation_statements"],
        json!(["DROP ROLE \"{{name}}\""]),
        "{role}"
    );
    assert_eq!(role["data"]["renew_statements"], json!([]), "{role}");
    assert_eq!(role["data"]["rollback_statements"], json!(rollback), "{role}");
    Ok(())
}
