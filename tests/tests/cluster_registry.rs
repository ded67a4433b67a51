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

    // Reading is protected: list and sudo are not enough, read is.
    for (policy, capabilities, status) in [("cl-sudo", r#"["list", "sudo"]"#, 403), ("cl-read", r#"["read"]"#, 200)] {
        let hcl = format!(r#"path "db/cluster/*" {{ capabilities = {capabilities} }}"#);
        client
            .expect(
                "PUT",
                &format!("/v1/sys/policies/acl/{policy}"),
                Some(json!({"policy": hcl})),
                204,
            )
            .await?;
        let token = client
            .expect(
                "POST",
                "/v1/auth/token/create",
                Some(json!({"policies": [policy]})),
                200,
            )
            .await?;
        let token = token["auth"]["client_token"].as_str().context("client_token")?;
        let (got, body) = client.with_token(Some(token)).req("GET", &path, None).await?;
        ensure!(got == status, "{policy}: {got} {body}");
    }
    // Audit devices write both passwords as HMACs.
    let dir = warden_tests::util::TempDir::new("cluster-audit")?;
    let log = dir.path().join("audit.log");
    client
        .expect(
            "PUT",
            "/v1/sys/audit/file",
            Some(json!({"type": "file", "options": {"file_path": log.to_str().context("utf-8 path")?}})),
            204,
        )
        .await?;
    client.expect("GET", &path, None, 200).await?;
    let audit = std::fs::read_to_string(&log)?;
    ensure!(
        !audit.contains(&password) && !audit.contains(&mgmt_password),
        "a cluster password in the audit log"
    );
    ensure!(
        audit.contains(r#""management_password":"hmac-sha256:"#) && audit.contains(r#""password":"hmac-sha256:"#),
        "the passwords are not HMAC'd in the audit log"
    );
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

/// A MariaDB scratch database and a server with `db/` mounted.
async fn maria_env(label: &str) -> Result<(warden_tests::MyScratch, WardenServer)> {
    let scratch = warden_tests::TestMariaDb::shared().scratch(label).await?;
    let server = WardenServer::start().await?;
    server
        .client()
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    Ok((scratch, server))
}

/// Registering the MariaDB scratch's admin login as a cluster.
fn maria_registration(scratch: &warden_tests::MyScratch) -> Value {
    json!({
        "plugin_name": "mysql-database-plugin",
        "host": "127.0.0.1",
        "port": scratch.port(),
        "database": scratch.database,
        "username": scratch.admin_user,
        "password": scratch.admin_password,
    })
}

#[tokio::test]
async fn registering_a_mariadb_cluster_takes_over_its_login() -> Result<()> {
    let (scratch, server) = maria_env("cluster").await?;
    let client = server.client();
    let path = format!("/v1/db/cluster/{}", unique("maria"));
    let body = maria_registration(&scratch);
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

/// Log in as `user` to `database` of the shared PostgreSQL.
async fn pg_login(user: &str, password: &str, database: &str) -> std::result::Result<sqlx::PgConnection, sqlx::Error> {
    use sqlx::Connection;
    sqlx::PgConnection::connect_with(&TestPostgres::shared().login_options(user, password, database)).await
}

/// Drop what a test made in the shared PostgreSQL outside its scratch
/// database: tenant databases and their owner roles (best effort).
async fn drop_tenants(scratch: &Scratch, databases: &[String]) {
    let Ok(mut su) = scratch.superuser().await else {
        return;
    };
    for db in databases {
        let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
            .execute(&mut su)
            .await;
        let _ = sqlx::raw_sql(&format!("DROP ROLE IF EXISTS \"{db}_owner\""))
            .execute(&mut su)
            .await;
    }
}

/// Tenant databases in a PostgreSQL cluster: each gets an owner role and a
/// connection; a login issued for one can create a table there and cannot
/// connect to another's; disabling a database or the cluster refuses new
/// logins and renewals, and a lease issued before still ends with its
/// login dropped; bad input is a 400 that stores nothing.
#[tokio::test]
async fn tenant_databases_in_a_postgres_cluster() -> Result<()> {
    let scratch = TestPostgres::shared().scratch("cluster_db").await?;
    let server = WardenServer::start().await?;
    let client = server.client();
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let (admin, initial) = cluster_admin(&scratch, "cl_tenants").await?;
    let name = unique("tenants");
    let cluster = format!("/v1/db/cluster/{name}");
    client
        .expect("POST", &cluster, Some(registration(&scratch, &admin, &initial)), 200)
        .await?;
    let suffix = warden_tests::util::random_alnum(6).to_lowercase();
    let (a, b) = (format!("ta_{suffix}"), format!("tb_{suffix}"));
    let result = tenants_flow(&client, &scratch, &name, &cluster, &a, &b).await;
    drop_tenants(&scratch, &[a, b]).await;
    result
}

async fn tenants_flow(
    client: &warden_tests::Client,
    scratch: &Scratch,
    name: &str,
    cluster: &str,
    a: &str,
    b: &str,
) -> Result<()> {
    let db_path = |db: &str| format!("{cluster}/database/{db}");
    // No databases yet.
    let (status, _) = client.req("LIST", cluster, None).await?;
    ensure!(status == 404, "LIST of a cluster without databases: {status}");

    // Bad input: 400, nothing stored.
    let (other, _) = scratch.create_login("cl_not_warden").await?;
    for (path, body, says) in [
        (
            format!("/v1/db/cluster/nope-{a}/database/{a}"),
            json!({}),
            "not registered",
        ),
        (db_path("a.b"), json!({}), "invalid database"),
        (db_path(a), json!({"owner_role": "bad role"}), "invalid owner_role"),
        (
            db_path(a),
            json!({"owner_role": other}),
            "not the owner role Warden made",
        ),
    ] {
        let out = client.expect("POST", &path, Some(body), 400).await?;
        ensure!(out.to_string().contains(says), "{path}: {out}");
    }
    let (status, _) = client.req("GET", &db_path(a), None).await?;
    ensure!(status == 404, "a refused database was stored");
    let (status, _) = client.req("GET", &format!("/v1/db/config/{name}.{a}"), None).await?;
    ensure!(status == 404, "a refused database's connection was stored");

    // Two tenants.
    let made = client
        .expect(
            "POST",
            &db_path(a),
            Some(json!({"allowed_roles": "app-a,short-a"})),
            200,
        )
        .await?;
    ensure!(text(&made, "connection")? == format!("{name}.{a}"), "{made}");
    ensure!(text(&made, "owner_role")? == format!("{a}_owner"), "{made}");
    client
        .expect("POST", &db_path(b), Some(json!({"allowed_roles": ["app-b"]})), 200)
        .await?;
    // Writing again finishes nothing new and changes nothing.
    client
        .expect(
            "POST",
            &db_path(a),
            Some(json!({"allowed_roles": "app-a,short-a"})),
            200,
        )
        .await?;
    let out = client
        .expect("POST", &db_path(a), Some(json!({"owner_role": "someone_else"})), 400)
        .await?;
    ensure!(out.to_string().contains("owner_role cannot change"), "{out}");
    let list = client.expect("LIST", cluster, None, 200).await?;
    ensure!(keys_of(&list)? == [a.to_string(), b.to_string()], "{list}");
    let read = client.expect("GET", &db_path(a), None, 200).await?;
    ensure!(read["data"]["disabled"] == json!(false), "{read}");
    ensure!(read["data"]["allowed_roles"] == json!(["app-a", "short-a"]), "{read}");

    // The connection is the registry's own.
    let conn = format!("/v1/db/config/{name}.{a}");
    let shown = client.expect("GET", &conn, None, 200).await?;
    ensure!(!shown.to_string().contains("password\":"), "{shown}");
    client
        .expect(
            "POST",
            &conn,
            Some(json!({"plugin_name": "postgresql-database-plugin"})),
            400,
        )
        .await?;
    client.expect("DELETE", &conn, None, 400).await?;
    client
        .expect("POST", &format!("/v1/db/rotate-root/{name}.{a}"), None, 400)
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/static-roles/st-a",
            Some(json!({"db_name": format!("{name}.{a}"), "username": "postgres", "rotation_period": "1h"})),
            400,
        )
        .await?;

    // Roles: no statements of their own.
    let out = client
        .expect(
            "POST",
            "/v1/db/roles/app-a",
            Some(
                json!({"db_name": format!("{name}.{a}"), "creation_statements": "CREATE ROLE \"{{name}}\" SUPERUSER"}),
            ),
            400,
        )
        .await?;
    ensure!(out.to_string().contains("takes no statements"), "{out}");
    for (role, db, ttl) in [("app-a", a, "1h"), ("short-a", a, "6s"), ("app-b", b, "1h")] {
        client
            .expect(
                "POST",
                &format!("/v1/db/roles/{role}"),
                Some(json!({"db_name": format!("{name}.{db}"), "default_ttl": ttl, "max_ttl": "2h"})),
                204,
            )
            .await?;
    }

    // A login for tenant A: works in A, is refused by B.
    let creds = client.expect("GET", "/v1/db/creds/app-a", None, 200).await?;
    let (user, password) = (text(&creds, "username")?, text(&creds, "password")?);
    let mut in_a = pg_login(&user, &password, a).await.context("log in to tenant A")?;
    sqlx::raw_sql("CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'hello')")
        .execute(&mut in_a)
        .await
        .context("create a table in tenant A")?;
    drop(in_a);
    let refused = pg_login(&user, &password, b).await;
    let err = refused.err().context("a tenant A login connected to tenant B")?;
    ensure!(err.to_string().contains("permission denied for database"), "{err}");
    // Nor may a login of the server at large connect to either.
    let (outsider, outsider_password) = scratch.create_login("cl_outsider").await?;
    ensure!(pg_login(&outsider, &outsider_password, a).await.is_err());
    // Revoking drops the login; the table stays, the owner's.
    let lease = creds["lease_id"].as_str().context("lease_id")?.to_string();
    client
        .expect("PUT", "/v1/sys/leases/revoke", Some(json!({"lease_id": lease})), 204)
        .await?;
    ensure!(!scratch.role_exists(&user).await?, "the revoked login remains");
    let mut su = TestPostgres::shared().superuser_connection(a).await?;
    let owner: (String,) = sqlx::query_as("SELECT tableowner::text FROM pg_tables WHERE tablename = 'notes'")
        .fetch_one(&mut su)
        .await?;
    ensure!(owner.0 == format!("{a}_owner"), "the table belongs to {}", owner.0);

    // Disabling a database refuses its logins; writing it enables it again.
    client.expect("DELETE", &db_path(b), None, 204).await?;
    let read = client.expect("GET", &db_path(b), None, 200).await?;
    ensure!(read["data"]["disabled"] == json!(true), "{read}");
    let out = client.expect("GET", "/v1/db/creds/app-b", None, 400).await?;
    ensure!(out.to_string().contains(&format!("database \\\"{b}\\\"")), "{out}");
    client.expect("POST", &db_path(b), Some(json!({})), 200).await?;
    client.expect("GET", "/v1/db/creds/app-b", None, 200).await?;

    // Disabling the cluster: no new logins, no renewals; a lease issued
    // before ends at its expiry with its login dropped.
    let short = client.expect("GET", "/v1/db/creds/short-a", None, 200).await?;
    let short_user = text(&short, "username")?;
    let short_lease = short["lease_id"].as_str().context("lease_id")?.to_string();
    client.expect("DELETE", cluster, None, 204).await?;
    for role in ["app-a", "app-b"] {
        let out = client.expect("GET", &format!("/v1/db/creds/{role}"), None, 400).await?;
        ensure!(out.to_string().contains("is disabled"), "{out}");
    }
    let out = client
        .expect(
            "PUT",
            "/v1/sys/leases/renew",
            Some(json!({"lease_id": short_lease})),
            400,
        )
        .await?;
    ensure!(out.to_string().contains("is disabled"), "{out}");
    for db in [a, b] {
        let read = client.expect("GET", &db_path(db), None, 200).await?;
        ensure!(read["data"]["disabled"] == json!(true), "{db}: {read}");
    }
    let out = client
        .expect("POST", &db_path(&format!("tc_{a}")), Some(json!({})), 400)
        .await?;
    ensure!(out.to_string().contains("is disabled"), "{out}");
    let gone = scratch
        .wait_roles_gone(std::slice::from_ref(&short_user), Duration::from_secs(30))
        .await?;
    ensure!(gone.is_empty(), "the expired lease's login remains: {gone:?}");

    // Enabled again (without rotating), logins are issued again.
    client.expect("POST", cluster, Some(json!({})), 200).await?;
    let creds = client.expect("GET", "/v1/db/creds/app-a", None, 200).await?;
    let mut in_a = pg_login(&text(&creds, "username")?, &text(&creds, "password")?, a).await?;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT body FROM notes").fetch_all(&mut in_a).await?;
    ensure!(rows == [("hello".to_string(),)], "{rows:?}");
    Ok(())
}

/// Tenant databases in a MariaDB cluster: the login issued for one has
/// rights in it and none in another.
#[tokio::test]
async fn tenant_databases_in_a_mariadb_cluster() -> Result<()> {
    let (scratch, server) = maria_env("cluster_db").await?;
    let client = server.client();
    let name = unique("maria-tenants");
    let cluster = format!("/v1/db/cluster/{name}");
    client
        .expect("POST", &cluster, Some(maria_registration(&scratch)), 200)
        .await?;
    let suffix = warden_tests::util::random_alnum(6).to_lowercase();
    let (a, b) = (format!("ma_{suffix}"), format!("mb_{suffix}"));
    for (db, role) in [(&a, "app-a"), (&b, "app-b")] {
        client
            .expect(
                "POST",
                &format!("{cluster}/database/{db}"),
                Some(json!({"allowed_roles": role})),
                200,
            )
            .await?;
        client
            .expect(
                "POST",
                &format!("/v1/db/roles/{role}"),
                Some(json!({"db_name": format!("{name}.{db}"), "default_ttl": "1h"})),
                204,
            )
            .await?;
    }
    let list = client.expect("LIST", &cluster, None, 200).await?;
    ensure!(keys_of(&list)? == [a.clone(), b.clone()], "{list}");
    let creds = client.expect("GET", "/v1/db/creds/app-a", None, 200).await?;
    let (user, password) = (text(&creds, "username")?, text(&creds, "password")?);
    let login = |db: &str| {
        warden_tests::TestMariaDb::shared()
            .login_options(&user, &password)
            .database(db)
    };
    use sqlx::Connection;
    let mut in_a = sqlx::MySqlConnection::connect_with(&login(&a))
        .await
        .context("log in to tenant A")?;
    sqlx::raw_sql("CREATE TABLE notes (id int PRIMARY KEY); INSERT INTO notes VALUES (1)")
        .execute(&mut in_a)
        .await
        .context("create a table in tenant A")?;
    drop(in_a);
    let err = sqlx::MySqlConnection::connect_with(&login(&b))
        .await
        .err()
        .context("a tenant A login connected to tenant B")?;
    ensure!(err.to_string().contains("denied"), "{err}");
    let lease = creds["lease_id"].as_str().context("lease_id")?.to_string();
    client
        .expect("PUT", "/v1/sys/leases/revoke", Some(json!({"lease_id": lease})), 204)
        .await?;
    ensure!(!scratch.user_exists(&user).await?, "the revoked login remains");
    // Drop the tenant databases (the scratch drops only its own).
    let mut root = warden_tests::TestMariaDb::shared().root().await?;
    for db in [&a, &b] {
        sqlx::raw_sql(&format!(
            "DROP DATABASE IF EXISTS `{db}`; DROP ROLE IF EXISTS '{db}_owner'"
        ))
        .execute(&mut root)
        .await?;
    }
    Ok(())
}

/// docs/cluster-registry.md's bao walk-through, with the real CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bao_cli_provisions_a_tenant_database() -> Result<()> {
    let bin = tokio::task::spawn_blocking(warden_tests::bao::ensure_bao).await??;
    let scratch = TestPostgres::shared().scratch("cluster_bao").await?;
    let (admin, initial) = cluster_admin(&scratch, "cl_bao").await?;
    let server = WardenServer::start().await?;
    let mut bao = warden_tests::bao::Bao::new(&bin, &server.url())?;
    bao.token = Some(server.root_token().to_string());
    let db = format!("shop_{}", warden_tests::util::random_alnum(6).to_lowercase());
    let (host, port) = (scratch.host().to_string(), scratch.port().to_string());
    let (database, tenant) = (scratch.database.clone(), db.clone());
    let creds = tokio::task::spawn_blocking(move || -> Result<Value> {
        let json = |run: warden_tests::bao::Run| -> Result<Value> {
            serde_json::from_str(&run.stdout).with_context(|| format!("not JSON: {run}"))
        };
        bao.expect(&["secrets", "enable", "-path=db", "database"], 0)?;
        bao.expect(
            &[
                "write",
                "db/cluster/main",
                &format!("host={host}"),
                &format!("port={port}"),
                &format!("database={database}"),
                &format!("username={admin}"),
                &format!("password={initial}"),
                "ssl_mode=disable",
            ],
            0,
        )?;
        let read = json(bao.expect(&["read", "-format=json", "db/cluster/main"], 0)?)?;
        ensure!(read["data"]["management_password"].is_string(), "{read}");
        bao.expect(
            &[
                "write",
                &format!("db/cluster/main/database/{tenant}"),
                "allowed_roles=shop-app",
            ],
            0,
        )?;
        let listed = bao.expect(&["list", "db/cluster/main"], 0)?;
        ensure!(listed.stdout.contains(&tenant), "{listed}");
        bao.expect(
            &[
                "write",
                "db/roles/shop-app",
                &format!("db_name=main.{tenant}"),
                "default_ttl=1h",
                "max_ttl=24h",
            ],
            0,
        )?;
        let creds = json(bao.expect(&["read", "-format=json", "db/creds/shop-app"], 0)?)?;
        let lease = creds["lease_id"].as_str().context("lease_id")?;
        bao.expect(&["lease", "renew", lease], 0)?;
        bao.expect(&["delete", &format!("db/cluster/main/database/{tenant}")], 0)?;
        let refused = bao.expect(&["read", "db/creds/shop-app"], 2)?;
        ensure!(refused.stderr.contains("is disabled"), "{refused}");
        bao.expect(&["delete", "db/cluster/main"], 0)?;
        let listed = bao.expect(&["list", "db/cluster"], 0)?;
        ensure!(listed.stdout.contains("main"), "{listed}");
        Ok(creds)
    })
    .await??;
    // The login worked in its database before it was disabled.
    let (user, password) = (
        creds["data"]["username"].as_str().context("username")?,
        creds["data"]["password"].as_str().context("password")?,
    );
    let connected = pg_login(user, password, &db).await;
    drop_tenants(&scratch, std::slice::from_ref(&db)).await;
    connected.context("log in to the tenant database")?;
    Ok(())
}
