//! Passwords never reach an error, and redacting them leaves the error
//! readable: only whole occurrences are replaced, so a one-letter password
//! (`e`) does not turn "error verifying connection" into
//! "[password]rror v[password]rifying ...", while a long one is gone
//! wherever a driver quoted it (a connection URL, a statement's value).

use anyhow::{Result, ensure};
use serde_json::{Value, json};
use warden_tests::{Client, TestPostgres, WardenServer};

/// Write `db/config/<name>` and return the refusal's text (any 4xx/5xx).
async fn refused_config(client: &Client, name: &str, config: Value) -> Result<String> {
    let (status, body) = client
        .req("POST", &format!("/v1/db/config/{name}"), Some(config))
        .await?;
    ensure!(status >= 400, "the connection was accepted: {status} {body}");
    Ok(body["errors"].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_keeps_errors_readable_and_passwords_out() -> Result<()> {
    let pg = TestPostgres::shared();
    let scratch = pg.scratch("redact").await?;
    let server = WardenServer::start().await?;
    let client = server.client();
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let config = |url: String, password: &str| {
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": url,
            "username": scratch.admin_user,
            "password": password,
            "allowed_roles": "*",
        })
    };
    // Nothing listens on the discard port.
    let closed = |password: &str| format!("postgresql://{}:{password}@127.0.0.1:9/postgres", scratch.admin_user);

    // A one-letter password: the text around it stays whole.
    for (what, url) in [
        (
            "closed port, templated URL",
            "postgresql://{{username}}:{{password}}@127.0.0.1:9/postgres".to_string(),
        ),
        ("closed port, literal URL", closed("e")),
    ] {
        let text = refused_config(&client, "short", config(url, "e")).await?;
        ensure!(
            text.contains("error verifying connection") && !text.contains("[password]") && !text.contains(":e@"),
            "{what}: {text}"
        );
    }
    if pg.password_auth_enforced().await? {
        let text = refused_config(&client, "short", config(scratch.connection_url_template(), "e")).await?;
        ensure!(
            text.contains("error verifying connection")
                && text.contains("password authentication failed")
                && !text.contains("[password]"),
            "wrong short password: {text}"
        );
    }

    // A long password is gone wherever it stood.
    let long = "Zq9-long-Wrong-pa55word";
    for url in [closed(long), scratch.connection_url_template()] {
        let text = refused_config(&client, "long", config(url.clone(), long)).await?;
        ensure!(
            text.contains("error verifying connection") && !text.contains(long),
            "{url}: {text}"
        );
    }

    // A statement that makes PostgreSQL quote the generated password back.
    client
        .expect(
            "POST",
            "/v1/db/config/pg",
            Some(config(scratch.connection_url_template(), &scratch.admin_password)),
            204,
        )
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/roles/echo",
            Some(json!({"db_name": "pg", "creation_statements": ["SELECT '{{password}}'::int;"]})),
            204,
        )
        .await?;
    let (status, body) = client.req("GET", "/v1/db/creds/echo", None).await?;
    let text = body["errors"].to_string();
    ensure!(status >= 400, "{status} {body}");
    // PostgreSQL's text: invalid input syntax for type integer: "<value>".
    let quoted = text
        .split("integer: \\\"")
        .nth(1)
        .and_then(|rest| rest.split("\\\"").next())
        .unwrap_or_default();
    ensure!(
        quoted == "[password]" || quoted == "[redacted]",
        "the quoted value is not the redaction mark: {text}"
    );
    Ok(())
}
