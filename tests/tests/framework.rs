//! The declarative request framework seen from outside, against the real
//! binary and a real PostgreSQL: Vault's routing answers (name patterns,
//! writes to a path ending in '/', unsupported paths and operations),
//! field rules, path-help (`?help=1`, which must not run the operation),
//! the generated OpenAPI document, form bodies and `bao write -f`'s JSON
//! `null` body.

use anyhow::Result;
use serde_json::{Value, json};
use warden_tests::DbEnv;
use warden_tests::WardenServer;

fn first_error(body: &Value) -> String {
    body["errors"][0].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn names_outside_vaults_pattern_do_not_route() -> Result<()> {
    let env = DbEnv::start("fw_names", &["*"]).await?;
    env.write_role("app", json!({})).await?;
    for bad in ["a%20b", "-abc", "abc.", "a%2Fb"] {
        let (status, body) = env.client.get(&format!("/v1/db/creds/{bad}")).await?;
        assert_eq!(status, 404, "creds/{bad}: {body}");
        assert!(first_error(&body).contains("unsupported path"), "creds/{bad}: {body}");
    }
    // A valid name of a role that does not exist is the handler's 400.
    let (status, body) = env.client.get("/v1/db/creds/nope").await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(first_error(&body), "unknown role: nope");
    Ok(())
}

#[tokio::test]
async fn writes_to_a_path_ending_in_a_slash_are_refused() -> Result<()> {
    let env = DbEnv::start("fw_slash", &["*"]).await?;
    for (method, path) in [
        ("POST", "/v1/db/roles/"),
        ("PUT", "/v1/sys/leases/revoke-prefix/db/creds/"),
        ("PUT", "/v1/db/config/"),
    ] {
        let (status, body) = env.client.req(method, path, Some(json!({}))).await?;
        assert_eq!(status, 400, "{method} {path}: {body}");
        assert_eq!(first_error(&body), "cannot write to a path ending in '/'", "{body}");
    }
    Ok(())
}

#[tokio::test]
async fn vaults_answers_for_missing_mounts_leases_and_operations() -> Result<()> {
    let server = WardenServer::start().await?;
    let c = server.client();
    let (status, body) = c.get("/v1/sys/mounts/nothere").await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(first_error(&body), "No secret engine mount at nothere/");
    let (status, body) = c.put("/v1/sys/leases/lookup", json!({})).await?;
    assert_eq!(
        (status, first_error(&body)),
        (400, "lease_id must be specified".into()),
        "{body}"
    );
    c.expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let (status, body) = c.delete("/v1/db/creds/app").await?;
    assert_eq!(status, 405, "{body}");
    let (status, body) = c.get("/v1/db/nowhere/at/all").await?;
    assert_eq!(status, 404, "{body}");
    assert!(first_error(&body).contains("unsupported path"), "{body}");
    // A field of the wrong type: Vault's conversion error, nothing stored.
    let (status, body) = c
        .post("/v1/db/roles/r", json!({"db_name": "pg", "default_ttl": "soon"}))
        .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        first_error(&body).starts_with("error converting input for field \"default_ttl\""),
        "{body}"
    );
    let (status, _) = c.get("/v1/db/roles/r").await?;
    assert_eq!(status, 404);
    Ok(())
}

#[tokio::test]
async fn path_help_answers_without_running_the_operation() -> Result<()> {
    let env = DbEnv::start("fw_help", &["*"]).await?;
    env.write_role("app", json!({})).await?;
    let (status, body) = env.client.get("/v1/db/creds/app?help=1").await?;
    assert_eq!(status, 200, "{body}");
    let help = body["help"].as_str().unwrap_or_default();
    assert!(help.contains("Request:        creds/app"), "{help}");
    assert!(help.contains("Matching Route: ^creds/(?P<name>"), "{help}");
    assert!(
        body["openapi"]["paths"]["/db/creds/{name}"]["get"].is_object(),
        "{body}"
    );
    // No credential was made: no lease below db/creds/app.
    let (status, body) = env.client.list("/v1/sys/leases/lookup/db/creds/app/").await?;
    assert_eq!(status, 404, "help issued a credential: {body}");
    // The mount's root lists its paths; sys/ paths have help too.
    let (status, body) = env.client.get("/v1/db/?help=1").await?;
    assert_eq!(status, 200, "{body}");
    assert!(body["help"].as_str().unwrap_or_default().contains("## PATHS"), "{body}");
    for path in [
        "sys/mounts",
        "sys/leases/lookup",
        "sys/policies/password/x",
        "db/roles/app",
        "db/static-roles/s",
    ] {
        let (status, body) = env.client.get(&format!("/v1/{path}?help=1")).await?;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            body["help"].as_str().unwrap_or_default().contains("## DESCRIPTION"),
            "{path}: {body}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_openapi_document_covers_sys_and_every_mount() -> Result<()> {
    let env = DbEnv::start("fw_openapi", &["*"]).await?;
    let (status, doc) = env.client.get("/v1/sys/internal/specs/openapi").await?;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.0.2");
    let paths = doc["paths"].as_object().expect("paths");
    for p in [
        "/db/creds/{name}",
        "/db/roles/{name}",
        "/db/roles/",
        "/db/config/{name}",
        "/db/static-roles/{name}",
        "/sys/mounts/{path}",
        "/sys/leases/lookup",
        "/sys/health",
        "/auth/token/lookup-self",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    let roles = &paths["/db/roles/{name}"];
    assert_eq!(roles["x-vault-createSupported"], true);
    let schema = &doc["components"]["schemas"]["DbRolesRequest"]["properties"];
    assert_eq!(schema["default_ttl"]["format"], "duration", "{schema}");
    assert_eq!(schema["creation_statements"]["type"], "array", "{schema}");
    Ok(())
}

#[tokio::test]
async fn form_bodies_and_a_json_null_body_are_accepted() -> Result<()> {
    let env = DbEnv::start("fw_bodies", &["*"]).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/db/roles/form", env.server.url());
    let statement = warden_tests::CREATE_ROLE;
    let resp = http
        .post(&url)
        .header("X-Vault-Token", env.server.root_token())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "db_name=pg&default_ttl=90m&creation_statements={}",
            url::form_urlencoded::byte_serialize(statement.as_bytes()).collect::<String>()
        ))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 204, "{}", resp.text().await?);
    let body = env.client.expect("GET", "/v1/db/roles/form", None, 200).await?;
    assert_eq!(body["data"]["default_ttl"], 5400, "{body}");
    assert_eq!(body["data"]["creation_statements"], json!([statement]), "{body}");
    // `bao write -f db/rotate-root/pg` sends `null`: no fields.
    let (status, body) = env
        .client
        .req_raw("POST", "/v1/db/reset/pg", Some(b"null".to_vec()))
        .await?;
    assert_eq!(status, 204, "{body}");
    Ok(())
}

#[tokio::test]
async fn head_of_sys_health_is_the_status_alone() -> Result<()> {
    let server = WardenServer::start().await?;
    let resp = reqwest::Client::new()
        .head(format!("{}/v1/sys/health", server.url()))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.bytes().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn the_plugin_catalog_lists_keys() -> Result<()> {
    let server = WardenServer::start().await?;
    let (status, body) = server.client().list("/v1/sys/plugins/catalog/database").await?;
    assert_eq!(status, 200, "{body}");
    let keys = body["data"]["keys"].as_array().expect("keys");
    assert!(keys.contains(&json!("postgresql-database-plugin")), "{body}");
    Ok(())
}
