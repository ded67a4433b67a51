//! The HTTP contract around the database engine: mounts, config reads,
//! missing things, malformed input and tokens, answered as Vault answers.

use anyhow::Result;
use serde_json::{Value, json};
use warden_tests::fixtures::postgres_config;
use warden_tests::{DbEnv, TestPostgres, WardenServer, check_error};

#[tokio::test]
async fn mounting_the_database_engine_lists_it_in_sys_mounts() -> Result<()> {
    let server = WardenServer::start().await?;
    let client = server.client();
    let body = client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    assert_eq!(body, Value::Null, "204 should have no body");
    let mounts = client.expect("GET", "/v1/sys/mounts", None, 200).await?;
    assert_eq!(
        mounts["data"]["db/"]["type"],
        json!("database"),
        "GET sys/mounts should list db/ with type database: {mounts}"
    );
    Ok(())
}

#[tokio::test]
async fn config_read_never_returns_the_password() -> Result<()> {
    let env = DbEnv::start("configread", &["app"]).await?;
    let body = env.client.expect("GET", "/v1/db/config/pg", None, 200).await?;
    let data = &body["data"];
    assert_eq!(data["plugin_name"], json!("postgresql-database-plugin"), "{body}");
    assert_eq!(data["allowed_roles"], json!(["app"]), "{body}");
    assert_eq!(
        data["connection_details"]["connection_url"],
        json!(env.scratch.connection_url_template()),
        "{body}"
    );
    assert_eq!(
        data["connection_details"]["username"],
        json!(env.scratch.admin_user),
        "{body}"
    );
    assert!(
        data["connection_details"].get("password").is_none(),
        "connection_details has a password field: {body}"
    );
    assert!(
        !body.to_string().contains(&env.scratch.admin_password),
        "the config read contains the password: {body}"
    );
    Ok(())
}

#[tokio::test]
async fn role_read_returns_what_was_written() -> Result<()> {
    let env = DbEnv::start("roleread", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let body = env.client.expect("GET", "/v1/db/roles/app", None, 200).await?;
    let data = &body["data"];
    assert_eq!(data["db_name"], json!("pg"), "{body}");
    assert_eq!(data["default_ttl"], json!(3600), "{body}");
    assert_eq!(data["max_ttl"], json!(86400), "{body}");
    assert_eq!(
        data["creation_statements"],
        json!([warden_tests::CREATE_ROLE]),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn role_without_db_name_is_rejected() -> Result<()> {
    let env = DbEnv::start("nodbname", &["*"]).await?;
    let got = env
        .client
        .req(
            "POST",
            "/v1/db/roles/nodb",
            Some(json!({"creation_statements": [warden_tests::CREATE_ROLE]})),
        )
        .await?;
    check_error("POST db/roles/nodb without db_name", &got, 400)?;
    let got = env.client.get("/v1/db/roles/nodb").await?;
    assert_eq!(got, (404, json!({"errors": []})), "the rejected role was stored");
    Ok(())
}

#[tokio::test]
async fn role_with_a_malformed_ttl_is_rejected() -> Result<()> {
    let env = DbEnv::start("badttl", &["*"]).await?;
    let got = env
        .client
        .req(
            "POST",
            "/v1/db/roles/badttl",
            Some(json!({
                "db_name": "pg",
                "creation_statements": [warden_tests::CREATE_ROLE],
                "default_ttl": "1x",
            })),
        )
        .await?;
    check_error("POST db/roles/badttl with default_ttl \"1x\"", &got, 400)?;
    let got = env.client.get("/v1/db/roles/badttl").await?;
    assert_eq!(got, (404, json!({"errors": []})), "the rejected role was stored");
    Ok(())
}

#[tokio::test]
async fn config_with_an_unknown_plugin_is_rejected_and_not_stored() -> Result<()> {
    let env = DbEnv::start("unknownplugin", &["*"]).await?;
    let mut config = postgres_config(&env.scratch, &["*"]);
    config["plugin_name"] = json!("nosuch-database-plugin");
    let got = env.client.req("POST", "/v1/db/config/bad", Some(config)).await?;
    check_error("POST db/config/bad with an unknown plugin_name", &got, 400)?;
    let got = env.client.get("/v1/db/config/bad").await?;
    assert_eq!(got, (404, json!({"errors": []})), "the rejected config was stored");
    Ok(())
}

#[tokio::test]
async fn config_that_cannot_connect_is_rejected_and_not_stored() -> Result<()> {
    let env = DbEnv::start("closedport", &["*"]).await?;
    let closed = warden_tests::util::free_port()?;
    let config = json!({
        "plugin_name": "postgresql-database-plugin",
        "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{closed}/postgres"),
        "username": env.scratch.admin_user,
        "password": env.scratch.admin_password,
        "allowed_roles": ["*"],
        "verify_connection": true,
    });
    let got = env.client.req("POST", "/v1/db/config/down", Some(config)).await?;
    check_error(
        &format!("POST db/config/down to closed port {closed} with verify_connection"),
        &got,
        400,
    )?;
    let got = env.client.get("/v1/db/config/down").await?;
    assert_eq!(got, (404, json!({"errors": []})), "the rejected config was stored");
    Ok(())
}

#[tokio::test]
async fn config_with_a_wrong_password_is_rejected() -> Result<()> {
    if !TestPostgres::shared().password_auth_enforced().await? {
        eprintln!("skipped: the test PostgreSQL trusts every login");
        return Ok(());
    }
    let env = DbEnv::start("wrongpw", &["*"]).await?;
    let mut config = postgres_config(&env.scratch, &["*"]);
    config["password"] = json!("wrong");
    let got = env.client.req("POST", "/v1/db/config/wrongpw", Some(config)).await?;
    check_error("POST db/config/wrongpw with a wrong password", &got, 400)?;
    let got = env.client.get("/v1/db/config/wrongpw").await?;
    assert_eq!(got, (404, json!({"errors": []})), "the rejected config was stored");
    Ok(())
}

#[tokio::test]
async fn a_body_that_is_not_json_is_rejected() -> Result<()> {
    let env = DbEnv::start("notjson", &["*"]).await?;
    let got = env
        .client
        .req_raw(
            "POST",
            "/v1/db/roles/garbled",
            Some(b"{\"db_name\": \"pg\", this is not json".to_vec()),
        )
        .await?;
    check_error("POST db/roles/garbled with a body that is not JSON", &got, 400)?;
    let got = env.client.get("/v1/db/roles/garbled").await?;
    assert_eq!(got, (404, json!({"errors": []})), "a role was stored");
    Ok(())
}

#[tokio::test]
async fn creds_for_an_unknown_role_are_a_400() -> Result<()> {
    let env = DbEnv::start("unknownrole", &["*"]).await?;
    let got = env.client.get("/v1/db/creds/nope").await?;
    check_error("GET db/creds/nope", &got, 400)?;
    Ok(())
}

#[tokio::test]
async fn reading_a_missing_role_or_config_is_a_404_with_no_errors() -> Result<()> {
    let env = DbEnv::start("missing", &["*"]).await?;
    for path in ["/v1/db/roles/nope", "/v1/db/config/nope"] {
        let got = env.client.get(path).await?;
        assert_eq!(got, (404, json!({"errors": []})), "GET {path}");
    }
    Ok(())
}

#[tokio::test]
async fn requests_without_a_valid_token_are_denied() -> Result<()> {
    let env = DbEnv::start("tokens", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let denied = (403, json!({"errors": ["permission denied"]}));
    for (who, client) in [
        ("no token", env.client.with_token(None)),
        ("a wrong token", env.client.with_token(Some("not-a-token"))),
    ] {
        for (method, path) in [
            ("GET", "/v1/db/roles/app"),
            ("GET", "/v1/db/creds/app"),
            ("GET", "/v1/sys/mounts"),
            ("LIST", "/v1/db/roles"),
        ] {
            let got = client.req(method, path, None).await?;
            assert_eq!(got, denied, "{method} {path} with {who}");
        }
        let got = client
            .req("POST", "/v1/sys/mounts/db2", Some(json!({"type": "database"})))
            .await?;
        assert_eq!(got, denied, "POST sys/mounts/db2 with {who}");
    }
    assert!(
        env.scratch.roles_like("%-app-%").await?.is_empty(),
        "a denied creds request created a role"
    );
    Ok(())
}

#[tokio::test]
async fn health_answers_without_a_token() -> Result<()> {
    let server = WardenServer::start().await?;
    let (status, body) = server.client().with_token(None).get("/v1/sys/health").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["initialized"], json!(true), "{body}");
    assert_eq!(body["sealed"], json!(false), "{body}");
    Ok(())
}

#[tokio::test]
async fn clients_can_check_their_token_and_the_seal_like_on_vault() -> Result<()> {
    let server = WardenServer::start().await?;
    let client = server.client();
    let me = client.expect("GET", "/v1/auth/token/lookup-self", None, 200).await?;
    assert_eq!(me["data"]["policies"], json!(["root"]), "{me}");
    assert_eq!(me["data"]["id"], json!(server.root_token()), "{me}");
    let denied = client
        .with_token(Some("not-the-root-token"))
        .req("GET", "/v1/auth/token/lookup-self", None)
        .await?;
    check_error("lookup-self with a wrong token", &denied, 403)?;

    let anonymous = client.with_token(None);
    let seal = anonymous.expect("GET", "/v1/sys/seal-status", None, 200).await?;
    assert_eq!(seal["sealed"], json!(false), "{seal}");
    assert_eq!(seal["initialized"], json!(true), "{seal}");
    let init = anonymous.expect("GET", "/v1/sys/init", None, 200).await?;
    assert_eq!(init, json!({"initialized": true}));
    Ok(())
}
