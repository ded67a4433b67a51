//! MongoDB end to end, against a real MongoDB-compatible server (secantusdb,
//! started by the harness) and a real `warden server -dev`: the database
//! engine with `mongodb-database-plugin`, and the legacy `mongodb` engine.
//! Issued users log in and hold exactly the roles asked for (they write
//! where readWrite was granted and cannot where only read was); renew,
//! revoke and expiry behave; bad input is a 400 that stores nothing.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use warden_tests::mongo::{is_unauthorized, try_count, try_insert};
use warden_tests::util::random_alnum;
use warden_tests::{Client, TestMongo, WardenServer, check_error, eventually, keys_of};

const READ_WARNING: &str = "Read access to this endpoint should be controlled via ACLs as it will return the connection URI as it is, including passwords, if any.";

/// A server with the database engine at `db/` and a connection `mongo`.
async fn database_engine(allowed_roles: &str) -> Result<(WardenServer, Client)> {
    let mongo = TestMongo::shared();
    let server = WardenServer::start().await?;
    let client = server.client();
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/config/mongo",
            Some(json!({
                "plugin_name": "mongodb-database-plugin",
                "connection_url": mongo.url_template(),
                "username": "admin",
                "password": mongo.admin_password(),
                "allowed_roles": allowed_roles,
                "write_concern": "{\"wmode\": \"majority\", \"wtimeout\": 5000}",
            })),
            204,
        )
        .await?;
    Ok((server, client))
}

/// A server with the legacy engine at `mongodb/`, connected as the admin.
async fn legacy_engine() -> Result<(WardenServer, Client)> {
    let mongo = TestMongo::shared();
    let server = WardenServer::start().await?;
    let client = server.client();
    client
        .expect("POST", "/v1/sys/mounts/mongodb", Some(json!({"type": "mongodb"})), 204)
        .await?;
    let body = client
        .expect(
            "POST",
            "/v1/mongodb/config/connection",
            Some(json!({"url": mongo.admin_url()})),
            200,
        )
        .await?;
    assert_eq!(body["warnings"], json!([READ_WARNING]), "{body}");
    assert_eq!(body["data"], Value::Null);
    Ok((server, client))
}

fn text<'a>(body: &'a Value, pointer: &str) -> Result<&'a str> {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .with_context(|| format!("no string at {pointer} in {body}"))
}

/// Two fresh database names: one the user may write, one it may only read.
fn databases() -> (String, String) {
    let suffix = random_alnum(8);
    (format!("rw_{suffix}"), format!("ro_{suffix}"))
}

/// Logs in as the issued user and checks its rights: writes in `rw`, reads
/// but cannot write in `ro`.
async fn check_rights(mongo: &TestMongo, user: &str, password: &str, auth_db: &str, rw: &str, ro: &str) -> Result<()> {
    // Something to read in `ro`, written by the admin.
    let admin = mongo.admin().await?;
    try_insert(&admin, ro).await?;
    admin.shutdown().await;

    let client = mongo.login(user, password, auth_db).await?;
    try_insert(&client, rw)
        .await
        .context("insert where readWrite was granted")?;
    assert_eq!(try_count(&client, rw).await?, 1);
    assert_eq!(try_count(&client, ro).await.context("read where read was granted")?, 1);
    match try_insert(&client, ro).await {
        Ok(()) => bail!("{user} could write to {ro}, where it was only granted read"),
        Err(e) if is_unauthorized(&e) => {}
        Err(e) => bail!("insert into {ro} failed, but not for lack of rights: {e}"),
    }
    client.shutdown().await;
    assert!(
        mongo.login(user, "wrong-password", auth_db).await.is_err(),
        "a wrong password must not log in"
    );
    Ok(())
}

async fn user_gone_soon(mongo: &TestMongo, user: &str, db: &str, within: Duration) -> Result<bool> {
    eventually(within, || async { Ok(!mongo.user_exists(user, db).await?) }).await
}

#[tokio::test]
async fn database_engine_issues_users_with_exactly_the_requested_roles() -> Result<()> {
    let mongo = TestMongo::shared();
    let (_server, client) = database_engine("app").await?;
    let (rw, ro) = databases();
    let statement = json!({"db": "admin", "roles": [{"role": "readWrite", "db": rw}, {"role": "read", "db": ro}]});
    client
        .expect(
            "POST",
            "/v1/db/roles/app",
            Some(
                json!({"db_name": "mongo", "creation_statements": [statement.to_string()],
                        "default_ttl": "1h", "max_ttl": "2h"}),
            ),
            204,
        )
        .await?;
    let body = client.expect("GET", "/v1/db/creds/app", None, 200).await?;
    let lease_id = text(&body, "/lease_id")?.to_string();
    let user = text(&body, "/data/username")?.to_string();
    let password = text(&body, "/data/password")?.to_string();
    assert!(lease_id.starts_with("db/creds/app/"), "{lease_id}");
    assert_eq!(body["lease_duration"], 3600);
    assert_eq!(body["renewable"], true);
    // Vault's default template: v-<display name>-<role>-<20 random>-<unix time>.
    assert!(user.starts_with("v-token-app-"), "{user}");
    assert_eq!(user.split('-').count(), 5, "{user}");

    assert_eq!(
        mongo.roles_of(&user, "admin").await?,
        vec![("read".to_string(), ro.clone()), ("readWrite".to_string(), rw.clone())]
    );
    check_rights(mongo, &user, &password, "admin", &rw, &ro).await?;

    // Renew: the lease moves, the user stays.
    let renewed = client
        .expect(
            "PUT",
            "/v1/sys/leases/renew",
            Some(json!({"lease_id": lease_id, "increment": 600})),
            200,
        )
        .await?;
    assert_eq!(renewed["lease_duration"], 600, "{renewed}");
    assert!(mongo.user_exists(&user, "admin").await?);

    // Revoke drops the user.
    client
        .expect("PUT", "/v1/sys/leases/revoke", Some(json!({"lease_id": lease_id})), 204)
        .await?;
    assert!(!mongo.user_exists(&user, "admin").await?, "revoked user still exists");
    assert!(mongo.login(&user, &password, "admin").await.is_err());
    // Revoking again is fine (the lease is gone).
    client
        .expect("PUT", "/v1/sys/leases/revoke", Some(json!({"lease_id": lease_id})), 204)
        .await?;
    Ok(())
}

#[tokio::test]
async fn database_engine_users_in_another_db_expire_and_are_dropped_there() -> Result<()> {
    let mongo = TestMongo::shared();
    let (_server, client) = database_engine("short").await?;
    let (rw, ro) = databases();
    let statement = json!({"db": rw, "roles": ["readWrite", {"role": "read", "db": ro}]});
    client
        .expect(
            "POST",
            "/v1/db/roles/short",
            Some(json!({"db_name": "mongo", "creation_statements": statement.to_string(),
                        "revocation_statements": json!({"db": rw}).to_string(),
                        "default_ttl": "3s", "max_ttl": "1h"})),
            204,
        )
        .await?;
    let body = client.expect("GET", "/v1/db/creds/short", None, 200).await?;
    let user = text(&body, "/data/username")?.to_string();
    let password = text(&body, "/data/password")?.to_string();
    assert_eq!(body["lease_duration"], 3);
    assert!(mongo.user_exists(&user, &rw).await?);
    assert!(!mongo.user_exists(&user, "admin").await?);
    check_rights(mongo, &user, &password, &rw, &rw, &ro).await?;
    assert!(
        user_gone_soon(mongo, &user, &rw, Duration::from_secs(20)).await?,
        "the expired user {user} was not dropped"
    );
    Ok(())
}

#[tokio::test]
async fn database_engine_refuses_bad_connections_and_statements() -> Result<()> {
    let mongo = TestMongo::shared();
    let (_server, client) = database_engine("bad*").await?;
    // A closed port with verify_connection (the default): 400, nothing stored.
    let closed = TestMongo::closed_port()?;
    let got = client
        .post(
            "/v1/db/config/closed",
            json!({"plugin_name": "mongodb-database-plugin",
                   "connection_url": format!("mongodb://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{closed}/admin"),
                   "username": "admin", "password": "s3cret-not-shown"}),
        )
        .await?;
    check_error("closed port", &got, 400)?;
    assert!(!got.1.to_string().contains("s3cret-not-shown"), "{}", got.1);
    assert_eq!(client.get("/v1/db/config/closed").await?.0, 404);

    // A wrong password: 400, and the password is not in the error.
    let got = client
        .post(
            "/v1/db/config/wrong",
            json!({"plugin_name": "mongodb-database-plugin", "connection_url": mongo.url_template(),
                   "username": "admin", "password": "Wr0ng-pass-word"}),
        )
        .await?;
    check_error("wrong password", &got, 400)?;
    assert!(!got.1.to_string().contains("Wr0ng-pass-word"), "{}", got.1);
    assert_eq!(client.get("/v1/db/config/wrong").await?.0, 404);

    // Creation statements that are not JSON, or name a role MongoDB does not
    // know: the request fails, no lease, no user.
    let (rw, _) = databases();
    for (role, statement) in [
        ("bad_json", "{\"db\": \"admin\", roles: [".to_string()),
        (
            "bad_role",
            json!({"db": rw, "roles": [{"role": "noSuchRole", "db": rw}]}).to_string(),
        ),
    ] {
        client
            .expect(
                "POST",
                &format!("/v1/db/roles/{role}"),
                Some(json!({"db_name": "mongo", "creation_statements": [statement]})),
                204,
            )
            .await?;
        let got = client.get(&format!("/v1/db/creds/{role}")).await?;
        check_error(role, &got, 0)?;
        let (status, _) = client.list(&format!("/v1/sys/leases/lookup/db/creds/{role}/")).await?;
        assert_eq!(status, 404, "{role}: a lease was stored");
    }
    assert_eq!(mongo.users_in(&rw).await?, Vec::<String>::new());

    // A server that went away: stored without verification, creds fail
    // within the configured server selection timeout instead of hanging.
    client
        .expect(
            "POST",
            "/v1/db/config/down",
            Some(json!({"plugin_name": "mongodb-database-plugin",
                   "connection_url": format!("mongodb://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{closed}/admin"),
                   "username": "admin", "password": "x", "verify_connection": false,
                   "allowed_roles": "bad_down", "server_selection_timeout": "1s"})),
            204,
        )
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/roles/bad_down",
            Some(json!({"db_name": "down", "creation_statements": [json!({"roles": ["read"]}).to_string()]})),
            204,
        )
        .await?;
    let started = std::time::Instant::now();
    let got = client.get("/v1/db/creds/bad_down").await?;
    check_error("server down", &got, 500)?;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    let (status, _) = client.list("/v1/sys/leases/lookup/db/creds/bad_down/").await?;
    assert_eq!(status, 404, "a lease was stored");
    Ok(())
}

#[tokio::test]
async fn legacy_engine_config_roles_creds_renew_revoke() -> Result<()> {
    let mongo = TestMongo::shared();
    let (_server, client) = legacy_engine().await?;
    let body = client.expect("GET", "/v1/mongodb/config/connection", None, 200).await?;
    assert_eq!(body["data"], json!({"uri": mongo.admin_url()}));

    client
        .expect(
            "POST",
            "/v1/mongodb/config/lease",
            Some(json!({"lease": "1h", "lease_max": "2h"})),
            204,
        )
        .await?;
    let body = client.expect("GET", "/v1/mongodb/config/lease", None, 200).await?;
    assert_eq!(body["data"], json!({"ttl": 3600, "max_ttl": 7200}));

    let (rw, ro) = databases();
    let roles = format!("[\"readWrite\",{{\"db\":\"{ro}\",\"role\":\"read\"}}]");
    client
        .expect(
            "POST",
            "/v1/mongodb/roles/app",
            Some(json!({"db": rw, "roles": roles})),
            204,
        )
        .await?;
    let body = client.expect("GET", "/v1/mongodb/roles/app", None, 200).await?;
    assert_eq!(body["data"], json!({"db": rw, "roles": roles}));
    let (status, list) = client.list("/v1/mongodb/roles").await?;
    assert_eq!((status, keys_of(&list)?), (200, vec!["app".to_string()]));

    let body = client.expect("GET", "/v1/mongodb/creds/app", None, 200).await?;
    let lease_id = text(&body, "/lease_id")?.to_string();
    assert!(lease_id.starts_with("mongodb/creds/app/"), "{lease_id}");
    assert_eq!(body["renewable"], true);
    assert_eq!(body["lease_duration"], 3600);
    assert_eq!(body["data"]["db"], json!(rw));
    let user = text(&body, "/data/username")?.to_string();
    let password = text(&body, "/data/password")?.to_string();
    // vault-<display name>-<uuid>, and a UUID password.
    assert!(
        user.starts_with("vault-token-") && user.len() == "vault-token-".len() + 36,
        "{user}"
    );
    assert_eq!(password.len(), 36, "the password is a UUID");

    assert_eq!(
        mongo.roles_of(&user, &rw).await?,
        vec![("read".to_string(), ro.clone()), ("readWrite".to_string(), rw.clone())]
    );
    check_rights(mongo, &user, &password, &rw, &rw, &ro).await?;

    // Renew within lease_max: 600 s granted; more than lease_max is capped.
    let renewed = client
        .expect(
            "PUT",
            "/v1/sys/leases/renew",
            Some(json!({"lease_id": lease_id, "increment": "10m"})),
            200,
        )
        .await?;
    assert_eq!(renewed["lease_duration"], 600, "{renewed}");
    let capped = client
        .expect(
            "PUT",
            "/v1/sys/leases/renew",
            Some(json!({"lease_id": lease_id, "increment": "5h"})),
            200,
        )
        .await?;
    let granted = capped["lease_duration"].as_i64().unwrap_or_default();
    assert!((7100..=7200).contains(&granted), "{capped}");
    assert!(capped["warnings"].is_array(), "{capped}");
    assert!(mongo.user_exists(&user, &rw).await?);

    client
        .expect("PUT", "/v1/sys/leases/revoke", Some(json!({"lease_id": lease_id})), 204)
        .await?;
    assert!(!mongo.user_exists(&user, &rw).await?, "revoked user still exists");
    assert!(mongo.login(&user, &password, &rw).await.is_err());

    client.expect("DELETE", "/v1/mongodb/roles/app", None, 204).await?;
    assert_eq!(client.get("/v1/mongodb/roles/app").await?.0, 404);
    Ok(())
}

#[tokio::test]
async fn legacy_engine_leases_expire_and_drop_the_user() -> Result<()> {
    let mongo = TestMongo::shared();
    let (_server, client) = legacy_engine().await?;
    client
        .expect(
            "POST",
            "/v1/mongodb/config/lease",
            Some(json!({"lease": "3s", "lease_max": "1h"})),
            204,
        )
        .await?;
    let (rw, _) = databases();
    client
        .expect(
            "POST",
            "/v1/mongodb/roles/short",
            Some(json!({"db": rw, "roles": "[\"readWrite\"]"})),
            204,
        )
        .await?;
    let body = client.expect("GET", "/v1/mongodb/creds/short", None, 200).await?;
    assert_eq!(body["lease_duration"], 3);
    let user = text(&body, "/data/username")?.to_string();
    assert!(mongo.user_exists(&user, &rw).await?);
    assert!(
        user_gone_soon(mongo, &user, &rw, Duration::from_secs(20)).await?,
        "the expired user {user} was not dropped"
    );
    Ok(())
}

#[tokio::test]
async fn legacy_engine_bad_input_is_a_400_that_stores_nothing() -> Result<()> {
    let mongo = TestMongo::shared();
    let server = WardenServer::start().await?;
    let client = server.client();
    client
        .expect("POST", "/v1/sys/mounts/mongodb", Some(json!({"type": "mongodb"})), 204)
        .await?;

    // A closed port with verify_connection true: 400, no connection stored.
    let closed = TestMongo::closed_port()?;
    let url = format!("mongodb://admin:Cl0sed-secret@127.0.0.1:{closed}/admin");
    let got = client
        .post(
            "/v1/mongodb/config/connection",
            json!({"url": url, "verify_connection": true}),
        )
        .await?;
    check_error("closed port", &got, 400)?;
    assert!(!got.1.to_string().contains("Cl0sed-secret"), "{}", got.1);
    assert_eq!(client.get("/v1/mongodb/config/connection").await?.0, 404);
    // Without verification the same URL is stored (the flag is what refused it).
    client
        .expect(
            "POST",
            "/v1/mongodb/config/connection",
            Some(json!({"url": url, "verify_connection": false})),
            200,
        )
        .await?;
    client
        .expect(
            "POST",
            "/v1/mongodb/config/connection",
            Some(json!({"url": mongo.admin_url()})),
            200,
        )
        .await?;

    // A lease with a 'd' suffix ("h" is the largest): 400, nothing stored.
    let got = client
        .post("/v1/mongodb/config/lease", json!({"lease": "1d", "lease_max": "2d"}))
        .await?;
    check_error("lease in days", &got, 400)?;
    assert!(got.1.to_string().contains("unknown unit"), "{}", got.1);
    assert_eq!(client.get("/v1/mongodb/config/lease").await?.0, 404);

    // Roles that are not valid JSON: 400, no role stored.
    let (rw, _) = databases();
    let got = client
        .post(
            "/v1/mongodb/roles/broken",
            json!({"db": rw, "roles": "[\"readWrite\","}),
        )
        .await?;
    check_error("roles not JSON", &got, 400)?;
    assert_eq!(client.get("/v1/mongodb/roles/broken").await?.0, 404);

    // Credentials for a role that does not exist: 400, no lease.
    let got = client.get("/v1/mongodb/creds/nosuch").await?;
    check_error("unknown role", &got, 400)?;

    // A MongoDB role name the server does not know: 400, no user, no lease.
    client
        .expect(
            "POST",
            "/v1/mongodb/roles/unknown",
            Some(json!({"db": rw, "roles": "[\"readWrite\",\"noSuchMongoRole\"]"})),
            204,
        )
        .await?;
    let got = client.get("/v1/mongodb/creds/unknown").await?;
    check_error("unknown MongoDB role", &got, 400)?;
    assert_eq!(mongo.users_in(&rw).await?, Vec::<String>::new());
    for role in ["nosuch", "unknown"] {
        let (status, _) = client
            .list(&format!("/v1/sys/leases/lookup/mongodb/creds/{role}/"))
            .await?;
        assert_eq!(status, 404, "{role}: a lease was stored");
    }
    Ok(())
}
