//! rotate-root and static roles through the MySQL and MongoDB drivers
//! (the engine endpoints are driver-neutral; these show the drivers'
//! password change works against a real MariaDB and a real
//! MongoDB-compatible server): the old admin password stops working, the
//! engine keeps issuing, and a MySQL static role's passwords log in.

use anyhow::{Result, ensure};
use serde_json::json;
use warden_tests::util::random_alnum;
use warden_tests::{Creds, TestMariaDb, TestMongo, WardenServer};

#[tokio::test]
async fn mysql_rotate_root_and_static_roles() -> Result<()> {
    let scratch = TestMariaDb::shared().scratch("rotation").await?;
    let server = WardenServer::start().await?;
    let client = server.client();
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/config/my",
            Some(json!({
                "plugin_name": "mysql-database-plugin",
                "connection_url": scratch.go_dsn_template(),
                "username": scratch.admin_user,
                "password": scratch.admin_password,
                "allowed_roles": "*",
            })),
            204,
        )
        .await?;
    let db = &scratch.database;
    client
        .expect(
            "POST",
            "/v1/db/roles/reader",
            Some(json!({
                "db_name": "my",
                "creation_statements": [format!(
                    "CREATE USER '{{{{name}}}}'@'%' IDENTIFIED BY '{{{{password}}}}'; GRANT SELECT ON `{db}`.* TO '{{{{name}}}}'@'%';"
                )],
            })),
            204,
        )
        .await?;

    // rotate-root: the old admin password fails, the engine keeps working.
    client.expect("POST", "/v1/db/rotate-root/my", None, 204).await?;
    ensure!(
        scratch
            .connect_as(&scratch.admin_user, &scratch.admin_password)
            .await
            .is_err(),
        "the old admin password still logs in after rotate-root"
    );
    let c = Creds::from_body(client.expect("GET", "/v1/db/creds/reader", None, 200).await?)?;
    scratch.connect_as(&c.username, &c.password).await?;
    let config = client.expect("GET", "/v1/db/config/my", None, 200).await?;
    ensure!(
        !config.to_string().contains("\"password\""),
        "config read shows a password: {config}"
    );

    // A static role over an existing MariaDB user.
    let user = format!("st_{}", random_alnum(8).to_lowercase());
    let mut root = TestMariaDb::shared().root().await?;
    for statement in [
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'initial-pw'"),
        format!("GRANT SELECT ON `{db}`.* TO '{user}'@'%'"),
    ] {
        sqlx::raw_sql(&statement).execute(&mut root).await?;
    }
    client
        .expect(
            "POST",
            "/v1/db/static-roles/st",
            Some(json!({"db_name": "my", "username": user, "rotation_period": "1h"})),
            204,
        )
        .await?;
    ensure!(
        scratch.connect_as(&user, "initial-pw").await.is_err(),
        "the initial password survived"
    );
    let first = client.expect("GET", "/v1/db/static-creds/st", None, 200).await?;
    let first_pw = first["data"]["password"].as_str().unwrap_or_default().to_string();
    scratch.connect_as(&user, &first_pw).await?;
    client.expect("POST", "/v1/db/rotate-role/st", None, 204).await?;
    let second = client.expect("GET", "/v1/db/static-creds/st", None, 200).await?;
    let second_pw = second["data"]["password"].as_str().unwrap_or_default().to_string();
    ensure!(second_pw != first_pw, "rotate-role kept the password");
    scratch.connect_as(&user, &second_pw).await?;
    ensure!(
        scratch.connect_as(&user, &first_pw).await.is_err(),
        "the old static password still logs in"
    );
    // A static role for a user that does not exist: 400, nothing stored.
    let (status, body) = client
        .post(
            "/v1/db/static-roles/ghost",
            json!({"db_name": "my", "username": "no_such_user", "rotation_period": "1h"}),
        )
        .await?;
    ensure!(status == 400, "{status} {body}");
    let (status, _) = client.get("/v1/db/static-roles/ghost").await?;
    ensure!(status == 404, "a failed static role was stored");
    Ok(())
}

#[tokio::test]
async fn mongodb_rotate_root_changes_the_admin_password_and_the_engine_keeps_working() -> Result<()> {
    let mongo = TestMongo::shared();
    // An admin of its own: rotating the shared server's admin would break
    // the other tests.
    let admin_user = format!("rot-admin-{}", random_alnum(8));
    let initial = "initial-admin-pw";
    let admin = mongo.admin().await?;
    admin
        .database("admin")
        .run_command(mongodb::bson::doc! {
            "createUser": &admin_user,
            "pwd": initial,
            "roles": ["root"],
            "mechanisms": ["SCRAM-SHA-256", "SCRAM-SHA-1"],
        })
        .await?;
    admin.shutdown().await;

    let server = WardenServer::start().await?;
    let client = server.client();
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/config/mg",
            Some(json!({
                "plugin_name": "mongodb-database-plugin",
                "connection_url": mongo.url_template(),
                "username": admin_user,
                "password": initial,
                "allowed_roles": "*",
            })),
            204,
        )
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/roles/app",
            Some(json!({
                "db_name": "mg",
                "creation_statements": [r#"{"db": "admin", "roles": [{"role": "readWrite", "db": "rotation"}]}"#],
            })),
            204,
        )
        .await?;
    let before = Creds::from_body(client.expect("GET", "/v1/db/creds/app", None, 200).await?)?;
    mongo.login(&before.username, &before.password, "admin").await?;

    client.expect("POST", "/v1/db/rotate-root/mg", None, 204).await?;
    ensure!(
        mongo.login(&admin_user, initial, "admin").await.is_err(),
        "the old admin password still logs in after rotate-root"
    );
    let after = Creds::from_body(client.expect("GET", "/v1/db/creds/app", None, 200).await?)?;
    mongo.login(&after.username, &after.password, "admin").await?;
    // A lease issued before the rotation is revoked with the new password.
    client
        .expect(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(json!({"lease_id": before.lease_id})),
            204,
        )
        .await?;
    ensure!(
        !mongo.user_exists(&before.username, "admin").await?,
        "revoke after rotate-root left the user"
    );
    Ok(())
}
