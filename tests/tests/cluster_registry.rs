//! The cluster registry (issue 15), first part: registering a PostgreSQL
//! cluster takes over its admin login (its password rotated, a management
//! role created), reads return both passwords, DELETE disables and a write
//! enables again without rotating; bad registrations store nothing and
//! leave the password as it was; a crash between the steps is settled at
//! the next start (tests of their own: fault points stop the server there).

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use std::time::Duration;
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::fixtures::keys_of;
use warden_tests::{Scratch, TestPostgres, WardenServer, eventually};

/// A login that can create databases and roles, as a cluster's admin has.
async fn cluster_admin(scratch: &Scratch, prefix: &str) -> Result<(String, String)> {
    let name = format!("{prefix}_{}", warden_tests::util::random_alnum(6).to_lowercase());
    let password = format!("initial-{}", warden_tests::util::random_alnum(12));
    let mut su = scratch.superuser().await?;
    sqlx::raw_sql(&format!(
        "CREATE ROLE \"{name}\" WITH LOGIN CREATEDB CREATEROLE PASSWORD '{password}'"
    ))
    .execute(&mut su)
    .await
    .context("create the cluster admin")?;
    Ok((name, password))
}

/// A cluster name no other test (or run on a shared PostgreSQL) uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", warden_tests::util::random_alnum(8).to_lowercase())
}

/// The management roles of cluster `name`, found by their comment.
async fn management_roles(scratch: &Scratch, name: &str) -> Result<Vec<String>> {
    let mut su = scratch.superuser().await?;
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT rolname::text FROM pg_roles WHERE shobj_description(oid, 'pg_authid') = $1")
            .bind(format!("Warden: the management role of cluster {name}"))
            .fetch_all(&mut su)
            .await?;
    Ok(rows.into_iter().map(|(r,)| r).collect())
}

fn registration(scratch: &Scratch, user: &str, password: &str) -> Value {
    json!({
        "host": scratch.host(),
        "port": scratch.port(),
        "database": scratch.database,
        "username": user,
        "password": password,
        "ssl_mode": "disable",
    })
}

fn text(v: &Value, field: &str) -> Result<String> {
    v["data"][field]
        .as_str()
        .map(String::from)
        .with_context(|| format!("no data.{field} in {v}"))
}

#[tokio::test]
async fn registering_a_postgres_cluster_takes_over_its_login() -> Result<()> {
    let scratch = TestPostgres::shared().scratch("cluster").await?;
    let server = WardenServer::start().await?;
    let client = server.client();
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let (admin, initial) = cluster_admin(&scratch, "cl_admin").await?;
    let name = unique("main");
    let path = format!("/v1/db/cluster/{name}");

    // Nothing registered: an empty LIST is a 404 with no errors, as Vault's.
    let (status, body) = client.req("LIST", "/v1/db/cluster", None).await?;
    ensure!(status == 404 && body == json!({"errors": []}), "{status} {body}");

    // Bad registrations: 4xx, nothing stored, the password unchanged.
    let good = registration(&scratch, &admin, &initial);
    for field in ["host", "database", "username", "password"] {
        let mut body = good.clone();
        body.as_object_mut().map(|o| o.remove(field));
        let out = client.expect("POST", &path, Some(body), 400).await?;
        ensure!(out.to_string().contains(&format!("{field} is required")), "{out}");
    }
    let mut wrong = good.clone();
    wrong["password"] = json!("not-the-password");
    client.expect("POST", &path, Some(wrong), 400).await?;
    let mut closed = good.clone();
    closed["port"] = json!(warden_tests::util::free_port()?);
    client.expect("POST", &path, Some(closed), 400).await?;
    let mut unknown = good.clone();
    unknown["plugin_name"] = json!("mongodb-database-plugin");
    let out = client.expect("POST", &path, Some(unknown), 400).await?;
    ensure!(out.to_string().contains("unsupported plugin_name"), "{out}");
    let mut port = good.clone();
    port["port"] = json!(70000);
    client.expect("POST", &path, Some(port), 400).await?;
    let mut host = good.clone();
    host["host"] = json!(format!("{}:{}", scratch.host(), scratch.port()));
    client.expect("POST", &path, Some(host), 400).await?;
    // Names outside Vault's pattern have no route.
    let (status, _) = client.req("POST", "/v1/db/cluster/-bad", Some(good.clone())).await?;
    ensure!(status == 404, "invalid name: {status}");
    // A login without the right to create roles and databases.
    let (weak, weak_password) = scratch.create_login("cl_weak").await?;
    let out = client
        .expect("POST", &path, Some(registration(&scratch, &weak, &weak_password)), 400)
        .await?;
    ensure!(out.to_string().contains("management role"), "{out}");
    ensure!(
        scratch.logs_in(&weak, &weak_password).await,
        "the weak login's password changed"
    );
    ensure!(
        scratch.logs_in(&admin, &initial).await,
        "a failed registration changed the password"
    );
    ensure!(
        management_roles(&scratch, &name).await?.is_empty(),
        "a management role was left behind"
    );
    let (status, _) = client.req("LIST", "/v1/db/cluster", None).await?;
    ensure!(status == 404, "a failed registration stored something");

    // Registration: the given password stops working, a management role exists.
    let registered = client.expect("POST", &path, Some(good.clone()), 200).await?;
    let mgmt = text(&registered, "management_role")?;
    ensure!(mgmt.starts_with("warden_mgmt_"), "{registered}");
    ensure!(
        management_roles(&scratch, &name).await? == [mgmt.clone()],
        "the role's comment"
    );
    ensure!(
        registered["data"].get("password").is_none(),
        "a write answered with a password"
    );
    ensure!(
        !scratch.logs_in(&admin, &initial).await,
        "the given password still works"
    );
    let read = client.expect("GET", &path, None, 200).await?;
    let (password, mgmt_password) = (text(&read, "password")?, text(&read, "management_password")?);
    ensure!(read["data"]["disabled"] == json!(false), "{read}");
    ensure!(text(&read, "username")? == admin && text(&read, "management_role")? == mgmt);
    ensure!(
        scratch.logs_in(&admin, &password).await,
        "the stored password does not log in"
    );
    ensure!(
        scratch.logs_in(&mgmt, &mgmt_password).await,
        "the management role does not log in"
    );
    // The management role can create databases and roles.
    let mut conn = scratch.connect_as(&mgmt, &mgmt_password).await?;
    let db = format!("cl_tenant_{}", warden_tests::util::random_alnum(6).to_lowercase());
    sqlx::raw_sql(&format!("CREATE DATABASE \"{db}\""))
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql(&format!("DROP DATABASE \"{db}\""))
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql(&format!("CREATE ROLE \"{db}_owner\"; DROP ROLE \"{db}_owner\""))
        .execute(&mut conn)
        .await?;

    // A later write changes settings, not passwords.
    let updated = client
        .expect("POST", &path, Some(json!({"max_open_connections": 2})), 200)
        .await?;
    ensure!(updated["data"]["max_open_connections"] == json!(2), "{updated}");
    let read = client.expect("GET", &path, None, 200).await?;
    ensure!(text(&read, "password")? == password && text(&read, "management_role")? == mgmt);

    // Running the registration again changes nothing; the login cannot change.
    client.expect("POST", &path, Some(good.clone()), 200).await?;
    let read = client.expect("GET", &path, None, 200).await?;
    ensure!(text(&read, "password")? == password, "a repeated registration rotated");
    let out = client
        .expect("POST", &path, Some(json!({"username": weak})), 400)
        .await?;
    ensure!(out.to_string().contains("username cannot change"), "{out}");

    // DELETE disables; the cluster stays listed and readable; a write enables.
    client.expect("DELETE", &path, None, 204).await?;
    let read = client.expect("GET", &path, None, 200).await?;
    ensure!(read["data"]["disabled"] == json!(true), "{read}");
    let list = client.expect("LIST", "/v1/db/cluster", None, 200).await?;
    ensure!(keys_of(&list)? == [name.clone()], "{list}");
    let list = client.expect("GET", "/v1/db/cluster?list=true", None, 200).await?;
    ensure!(keys_of(&list)? == [name.clone()], "{list}");
    client.expect("POST", &path, Some(json!({})), 200).await?;
    let read = client.expect("GET", &path, None, 200).await?;
    ensure!(read["data"]["disabled"] == json!(false), "{read}");
    ensure!(text(&read, "password")? == password, "re-enabling rotated the password");
    ensure!(scratch.logs_in(&admin, &password).await);
    Ok(())
}

/// The server dies at a fault point of the registration; the next start
/// rolls it back (before the rotation) or forward (after it).
#[tokio::test]
async fn a_registration_cut_short_is_settled_at_the_next_start() -> Result<()> {
    let scratch = TestPostgres::shared().scratch("cluster_crash").await?;
    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.start().await?;
    let (keys, root) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    node.client(Some(&root))
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;

    for (fault, forward) in [("cluster-role-created", false), ("cluster-password-rotated", true)] {
        let (admin, initial) = cluster_admin(&scratch, "cl_crash").await?;
        let name = unique("crashed");
        let path = format!("/v1/db/cluster/{name}");
        node.stop();
        node.env = vec![("WARDEN_TEST_FAULT".into(), fault.into())];
        node.start().await?;
        node.unseal(&[&keys[0]]).await?;
        let client = node.client(Some(&root));
        // The server dies answering.
        let died = client
            .req("POST", &path, Some(registration(&scratch, &admin, &initial)))
            .await;
        ensure!(
            died.is_err() || died.as_ref().is_ok_and(|(s, _)| *s >= 500),
            "{fault}: {died:?}"
        );
        node.kill();
        ensure!(
            management_roles(&scratch, &name).await?.len() == 1,
            "{fault}: no management role was created"
        );
        ensure!(
            scratch.logs_in(&admin, &initial).await != forward,
            "{fault}: the fault point is not where the test expects it"
        );

        node.env.clear();
        node.start().await?;
        node.unseal(&[&keys[0]]).await?;
        let client = node.client(Some(&root));
        if forward {
            // Only the new password works: the registration is finished.
            // Recovery runs in the background after the unseal.
            let settled = eventually(Duration::from_secs(30), || async {
                Ok(client.req("GET", &path, None).await?.0 == 200)
            })
            .await?;
            ensure!(settled, "{fault}: the registration did not roll forward");
            let read = client.expect("GET", &path, None, 200).await?;
            ensure!(scratch.logs_in(&admin, &text(&read, "password")?).await);
            ensure!(!scratch.logs_in(&admin, &initial).await);
            let mgmt = text(&read, "management_role")?;
            ensure!(scratch.logs_in(&mgmt, &text(&read, "management_password")?).await);
        } else {
            // The old password still works: the registration never happened.
            let settled = eventually(Duration::from_secs(30), || async {
                Ok(management_roles(&scratch, &name).await?.is_empty())
            })
            .await?;
            ensure!(settled, "{fault}: the management role was not dropped");
            let (status, _) = client.req("GET", &path, None).await?;
            ensure!(status == 404, "{fault}: a rolled-back registration is stored");
            ensure!(scratch.logs_in(&admin, &initial).await);
            // Registering again works.
            client
                .expect("POST", &path, Some(registration(&scratch, &admin, &initial)), 200)
                .await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn registering_a_mariadb_cluster_takes_over_its_login() -> Result<()> {
    let scratch = warden_tests::TestMariaDb::shared().scratch("cluster").await?;
    let server = WardenServer::start().await?;
    let client = server.client();
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let path = format!("/v1/db/cluster/{}", unique("maria"));
    let body = json!({
        "plugin_name": "mysql-database-plugin",
        "host": "127.0.0.1",
        "port": scratch.port(),
        "database": scratch.database,
        "username": scratch.admin_user,
        "password": scratch.admin_password,
    });
    let mut wrong = body.clone();
    wrong["password"] = json!("not-the-password");
    client.expect("POST", &path, Some(wrong), 400).await?;
    let mut tls = body.clone();
    tls["ssl_mode"] = json!("require");
    client.expect("POST", &path, Some(tls), 400).await?;

    let registered = client.expect("POST", &path, Some(body), 200).await?;
    let mgmt = text(&registered, "management_role")?;
    ensure!(
        scratch
            .connect_as(&scratch.admin_user, &scratch.admin_password)
            .await
            .is_err(),
        "the given password still works"
    );
    let read = client.expect("GET", &path, None, 200).await?;
    let (password, mgmt_password) = (text(&read, "password")?, text(&read, "management_password")?);
    ensure!(scratch.connect_as(&scratch.admin_user, &password).await.is_ok());
    // The management user creates a database and a user with rights on it
    // (not ALL PRIVILEGES: MariaDB's includes DELETE HISTORY, which MySQL
    // does not know, so the management user is not given it).
    let mut conn = scratch.connect_as(&mgmt, &mgmt_password).await?;
    let tenant = format!("cl_tenant_{}", warden_tests::util::random_alnum(6).to_lowercase());
    sqlx::raw_sql(&format!(
        "CREATE DATABASE `{tenant}`; CREATE USER '{tenant}'@'%' IDENTIFIED BY 'x-{tenant}'; \
         GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON `{tenant}`.* TO '{tenant}'@'%'; DROP USER '{tenant}'@'%'; DROP DATABASE `{tenant}`"
    ))
    .execute(&mut conn)
    .await
    .context("the management user creates a tenant")?;
    Ok(())
}
