//! The MySQL plugin family against a real MariaDB (a throwaway server, see
//! tests/src/mariadb.rs) through a real `warden server -dev`: Go DSNs and
//! mysql:// URLs, verify, roles, creds that log in with exactly the granted
//! privileges, revoke / expiry / revoke-prefix dropping the user, a failed
//! creation leaving nothing behind, the username limits of each plugin
//! name, TLS settings checks, and the pool limits seen from the server's
//! process list.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sqlx::{Connection, Row};
use warden_tests::fixtures::merge;
use warden_tests::{Client, Creds, MyScratch, TestMariaDb, WardenServer, check_error, keys_of};

/// Vault's docs' role: a user that may read the scratch database.
fn create_user(database: &str) -> String {
    format!(
        "CREATE USER '{{{{name}}}}'@'%' IDENTIFIED BY '{{{{password}}}}'; GRANT SELECT ON `{database}`.* TO '{{{{name}}}}'@'%';"
    )
}

struct MyEnv {
    _server: WardenServer,
    client: Client,
    scratch: MyScratch,
}

impl MyEnv {
    /// A server with `db/` mounted and `db/config/my` for a scratch database
    /// (the Go DSN of Vault's docs), with `extra` config fields.
    async fn start(label: &str, extra: Value) -> Result<MyEnv> {
        let scratch = TestMariaDb::shared().scratch(label).await?;
        let server = WardenServer::start().await?;
        let client = server.client();
        client
            .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
            .await?;
        let mut config = json!({
            "plugin_name": "mysql-database-plugin",
            "connection_url": scratch.go_dsn_template(),
            "username": scratch.admin_user,
            "password": scratch.admin_password,
            "allowed_roles": "*",
        });
        merge(&mut config, extra);
        client.expect("POST", "/v1/db/config/my", Some(config), 204).await?;
        Ok(MyEnv {
            _server: server,
            client,
            scratch,
        })
    }

    async fn write_role(&self, role: &str, extra: Value) -> Result<()> {
        let mut body = json!({
            "db_name": "my",
            "creation_statements": [create_user(&self.scratch.database)],
            "default_ttl": "1h",
            "max_ttl": "24h",
        });
        merge(&mut body, extra);
        self.client
            .expect("POST", &format!("/v1/db/roles/{role}"), Some(body), 204)
            .await?;
        Ok(())
    }

    async fn creds(&self, role: &str) -> Result<Creds> {
        let body = self
            .client
            .expect("GET", &format!("/v1/db/creds/{role}"), None, 200)
            .await?;
        Creds::from_body(body)
    }

    async fn lease_keys(&self, role: &str) -> Result<Vec<String>> {
        let (status, body) = self
            .client
            .list(&format!("/v1/sys/leases/lookup/db/creds/{role}/"))
            .await?;
        if status == 404 {
            return Ok(Vec::new());
        }
        keys_of(&body)
    }
}

#[tokio::test]
async fn config_takes_a_go_dsn_or_a_mysql_url_and_verifies() -> Result<()> {
    let env = MyEnv::start("config", json!({})).await?;
    let body = env.client.expect("GET", "/v1/db/config/my", None, 200).await?;
    let details = &body["data"]["connection_details"];
    assert_eq!(
        details["connection_url"],
        json!(env.scratch.go_dsn_template()),
        "{body}"
    );
    assert!(details.get("password").is_none(), "password shown: {body}");
    assert_eq!(body["data"]["plugin_name"], json!("mysql-database-plugin"));

    // A mysql:// URL naming the database works too.
    let url = json!({
        "plugin_name": "mysql-database-plugin",
        "connection_url": env.scratch.url_template(),
        "username": env.scratch.admin_user,
        "password": env.scratch.admin_password,
        "allowed_roles": "*",
    });
    env.client.expect("POST", "/v1/db/config/url", Some(url), 204).await?;

    // A wrong password fails verification: 400 and nothing stored.
    let wrong = json!({
        "plugin_name": "mysql-database-plugin",
        "connection_url": env.scratch.go_dsn_template(),
        "username": env.scratch.admin_user,
        "password": format!("{}x", env.scratch.admin_password),
    });
    let got = env.client.post("/v1/db/config/wrong", wrong).await?;
    check_error("config with a wrong password", &got, 400)?;
    let text = got.1.to_string();
    assert!(text.contains("Access denied"), "{text}");
    assert!(
        !text.contains(&format!("{}x", env.scratch.admin_password)),
        "password in error: {text}"
    );
    let got = env.client.get("/v1/db/config/wrong").await?;
    assert_eq!(got.0, 404, "a failed config was stored: {got:?}");

    // A unix socket DSN or a DSN to another scheme is refused.
    for bad in [
        "{{username}}:{{password}}@unix(/run/mysqld/mysqld.sock)/",
        "{{username}}:{{password}}@tcp(127.0.0.1:1",
    ] {
        let got = env
            .client
            .post(
                "/v1/db/config/bad",
                json!({"plugin_name": "mysql-database-plugin", "connection_url": bad, "username": "u", "password": "p"}),
            )
            .await?;
        check_error(&format!("config {bad}"), &got, 400)?;
    }
    Ok(())
}

#[tokio::test]
async fn tls_settings_are_checked() -> Result<()> {
    let env = MyEnv::start("tls", json!({})).await?;
    let base = |extra: Value| {
        let mut c = json!({
            "plugin_name": "mysql-database-plugin",
            "connection_url": env.scratch.go_dsn_template(),
            "username": env.scratch.admin_user,
            "password": env.scratch.admin_password,
        });
        merge(&mut c, extra);
        c
    };
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
    let key = format!("{pem}-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n");
    for (what, extra) in [
        ("a CA that is not PEM", json!({"tls_ca": "not a certificate"})),
        (
            "a client certificate without its key",
            json!({"tls_certificate_key": pem}),
        ),
        ("another server name", json!({"tls_server_name": "db.example"})),
        (
            "tls_skip_verify that is not a flag",
            json!({"tls_skip_verify": "maybe"}),
        ),
    ] {
        let got = env.client.post("/v1/db/config/tls", base(extra)).await?;
        check_error(what, &got, 400)?;
    }
    // The test server speaks no TLS: asking for it fails the verify.
    let got = env
        .client
        .post(
            "/v1/db/config/tls",
            base(json!({"tls_ca": pem, "tls_skip_verify": true})),
        )
        .await?;
    check_error("TLS to a server without TLS", &got, 400)?;
    assert_eq!(env.client.get("/v1/db/config/tls").await?.0, 404);
    // Well-formed settings are stored without verify; the key is never shown.
    env.client
        .expect(
            "POST",
            "/v1/db/config/tls",
            Some(base(json!({
                "tls_ca": pem, "tls_certificate_key": key, "tls_server_name": "127.0.0.1",
                "verify_connection": false
            }))),
            204,
        )
        .await?;
    let body = env.client.expect("GET", "/v1/db/config/tls", None, 200).await?;
    let details = &body["data"]["connection_details"];
    assert_eq!(details["tls_ca"], json!(pem), "{body}");
    assert!(details.get("tls_certificate_key").is_none(), "{body}");
    Ok(())
}

#[tokio::test]
async fn creds_log_in_with_the_granted_privileges_until_revoked() -> Result<()> {
    let env = MyEnv::start("creds", json!({})).await?;
    env.write_role("reader", json!({})).await?;
    let creds = env.creds("reader").await?;
    assert!(
        creds.username.starts_with("v-token-reader-") && creds.username.len() <= 32,
        "{}",
        creds.username
    );
    let mut conn = env
        .scratch
        .connect_as(&creds.username, &creds.password)
        .await
        .with_context(|| format!("log in as {}", creds.username))?;
    let row = sqlx::query("SELECT name FROM items WHERE id = 1")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(row.try_get::<String, _>(0)?, "one");
    let insert = sqlx::raw_sql("INSERT INTO items VALUES (2, 'two')")
        .execute(&mut conn)
        .await;
    assert!(insert.is_err(), "a SELECT-only user could insert");
    conn.close().await.ok();

    let wrong = env
        .scratch
        .connect_as(&creds.username, &format!("{}x", creds.password))
        .await;
    assert!(wrong.is_err(), "a wrong password logged in");

    env.client
        .expect(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(json!({"lease_id": creds.lease_id})),
            204,
        )
        .await?;
    assert!(
        !env.scratch.user_exists(&creds.username).await?,
        "user left after revoke"
    );
    assert!(env.scratch.connect_as(&creds.username, &creds.password).await.is_err());
    assert!(env.lease_keys("reader").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn expiry_and_revoke_prefix_drop_the_users() -> Result<()> {
    let env = MyEnv::start("expiry", json!({})).await?;
    env.write_role("short", json!({"default_ttl": "2s", "max_ttl": "2s"}))
        .await?;
    let short = env.creds("short").await?;
    assert!(env.scratch.user_exists(&short.username).await?);
    let left = env
        .scratch
        .wait_users_gone(std::slice::from_ref(&short.username), Duration::from_secs(20))
        .await?;
    assert!(left.is_empty(), "expired user still there: {left:?}");

    env.write_role("many", json!({})).await?;
    let mut names = Vec::new();
    for _ in 0..5 {
        names.push(env.creds("many").await?.username);
    }
    assert_eq!(env.lease_keys("many").await?.len(), 5);
    env.client
        .expect("PUT", "/v1/sys/leases/revoke-prefix/db/creds/many", None, 204)
        .await?;
    let left = env.scratch.wait_users_gone(&names, Duration::from_secs(20)).await?;
    assert!(left.is_empty(), "users left after revoke-prefix: {left:?}");
    assert!(env.lease_keys("many").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_failed_creation_leaves_no_user_and_no_lease() -> Result<()> {
    let env = MyEnv::start("failing", json!({})).await?;
    // CREATE USER commits at once in MySQL; the GRANT on a missing table
    // then fails. Warden must drop the user the first statement made.
    let statements = format!(
        "CREATE USER '{{{{name}}}}'@'%' IDENTIFIED BY '{{{{password}}}}'; GRANT SELECT ON `{}`.no_such_table TO '{{{{name}}}}'@'%';",
        env.scratch.database
    );
    env.write_role("broken", json!({"creation_statements": [statements]}))
        .await?;
    let got = env.client.get("/v1/db/creds/broken").await?;
    check_error("creds with a failing GRANT", &got, 0)?;
    assert!(env.lease_keys("broken").await?.is_empty(), "a lease was stored");
    let users = env.scratch.users_like("v-token-broken-%").await?;
    assert!(
        users.is_empty(),
        "users left by a failed creation: {users:?} (creds answered {got:?})"
    );

    // With rollback statements, they run first (here: harmless).
    env.write_role(
        "broken2",
        json!({"creation_statements": [statements], "rollback_statements": ["DROP USER IF EXISTS '{{name}}'@'%'"]}),
    )
    .await?;
    check_error("creds with rollback", &env.client.get("/v1/db/creds/broken2").await?, 0)?;
    assert!(env.scratch.users_like("v-token-broken2-%").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn username_limits_follow_the_plugin_name() -> Result<()> {
    let env = MyEnv::start("names", json!({})).await?;
    for (plugin, limit) in [
        ("mysql-database-plugin", 32),
        ("mysql-aurora-database-plugin", 16),
        ("mysql-rds-database-plugin", 16),
        ("mysql-legacy-database-plugin", 16),
    ] {
        let config = json!({
            "plugin_name": plugin,
            "connection_url": env.scratch.go_dsn_template(),
            "username": env.scratch.admin_user,
            "password": env.scratch.admin_password,
            "allowed_roles": "*",
        });
        env.client.expect("POST", "/v1/db/config/my", Some(config), 204).await?;
        env.write_role("averyveryverylongrolename", json!({})).await?;
        let creds = env.creds("averyveryverylongrolename").await?;
        assert_eq!(creds.username.len(), limit, "{plugin}: {}", creds.username);
        let prefix = if limit == 16 { "v-aver-" } else { "v-token-averyveryv-" };
        assert!(creds.username.starts_with(prefix), "{plugin}: {}", creds.username);
        let conn = env.scratch.connect_as(&creds.username, &creds.password).await;
        assert!(conn.is_ok(), "{plugin}: log in as {}", creds.username);
        conn?.close().await.ok();
    }
    // A username_template of the connection overrides the default.
    let config = json!({
        "plugin_name": "mysql-legacy-database-plugin",
        "connection_url": env.scratch.go_dsn_template(),
        "username": env.scratch.admin_user,
        "password": env.scratch.admin_password,
        "allowed_roles": "*",
        "username_template": "tmpl-{{.RoleName | truncate 3}}-{{random 4}}",
    });
    env.client.expect("POST", "/v1/db/config/my", Some(config), 204).await?;
    let creds = env.creds("averyveryverylongrolename").await?;
    assert!(
        creds.username.starts_with("tmpl-ave-") && creds.username.len() == 13,
        "{}",
        creds.username
    );
    Ok(())
}

#[tokio::test]
async fn pools_honour_max_open_idle_and_lifetime() -> Result<()> {
    let env = MyEnv::start(
        "pools",
        json!({"max_open_connections": 3, "max_idle_connections": 1, "max_connection_lifetime": "3s"}),
    )
    .await?;
    env.write_role("pool", json!({})).await?;
    let admin = env.scratch.admin_user.clone();

    // 24 creds, 8 at a time, while sampling the server's process list.
    let sampler = {
        let scratch = env.scratch.clone();
        let admin = admin.clone();
        tokio::spawn(async move {
            let mut most = 0;
            for _ in 0..100 {
                most = most.max(scratch.sessions_of(&admin).await.unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            most
        })
    };
    for _ in 0..3 {
        let batch: Vec<_> = (0..8).map(|_| env.creds("pool")).collect();
        for creds in futures::future::join_all(batch).await {
            creds?;
        }
    }
    let most = sampler.await?;
    assert!((1..=3).contains(&most), "max_open_connections 3, saw {most} sessions");
    // At rest, at most max_idle_connections are kept (a closed session
    // leaves the process list a moment later).
    let mut idle = env.scratch.sessions_of(&admin).await?;
    for _ in 0..80 {
        if idle <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        idle = env.scratch.sessions_of(&admin).await?;
    }
    assert!(idle <= 1, "max_idle_connections 1, {idle} sessions at rest");

    // After max_connection_lifetime, the kept connection is replaced.
    let ids = session_ids(&env.scratch, &admin).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    env.creds("pool").await?;
    let mut now = session_ids(&env.scratch, &admin).await?;
    for _ in 0..80 {
        if ids.is_disjoint(&now) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = session_ids(&env.scratch, &admin).await?;
    }
    assert!(
        ids.is_disjoint(&now),
        "sessions older than 3s still used: {ids:?} then {now:?}"
    );
    Ok(())
}

#[tokio::test]
async fn without_an_idle_cap_the_pool_keeps_its_connections() -> Result<()> {
    // The contrast to the test above: max_idle defaults to max_open.
    let env = MyEnv::start("poolsdefault", json!({"max_open_connections": 3})).await?;
    env.write_role("pool", json!({})).await?;
    for _ in 0..3 {
        let batch: Vec<_> = (0..8).map(|_| env.creds("pool")).collect();
        for creds in futures::future::join_all(batch).await {
            creds?;
        }
    }
    let kept = env.scratch.sessions_of(&env.scratch.admin_user).await?;
    assert!(
        (2..=3).contains(&kept),
        "expected the pool to keep 2-3 sessions, saw {kept}"
    );
    Ok(())
}

async fn session_ids(_scratch: &MyScratch, user: &str) -> Result<BTreeSet<i64>> {
    let mut conn = TestMariaDb::shared().root().await?;
    let rows = sqlx::query("SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST WHERE USER = ?")
        .bind(user)
        .fetch_all(&mut conn)
        .await?;
    conn.close().await.ok();
    rows.iter()
        .map(|r| r.try_get::<i64, _>(0).map_err(Into::into))
        .collect()
}

/// update-user (what rotate-root and static roles call) straight through
/// the host's runtime, since this branch has no endpoint for it yet: the
/// default statement changes the password, custom statements run instead,
/// an expiration change is a no-op as in Vault, and bad requests fail.
#[tokio::test]
async fn update_user_changes_passwords_like_vault() -> Result<()> {
    use std::sync::Arc;
    use warden::bindings::db::{ChangeExpiration, ChangePassword, UpdateUserRequest};
    use warden::imports::Grant;
    use warden::imports::outbound::Outbound;
    use warden::imports::sql::{SqlGrant, SqlPools};

    let scratch = TestMariaDb::shared().scratch("update").await?;
    let runtime = warden::runtime::Runtime::new(Duration::from_secs(30))?;
    warden::runtime::catalog::register_builtins(&runtime);
    let details = json!({"connection_url": scratch.go_dsn_template()});
    let grant = Grant {
        component: "mysql-database-plugin".into(),
        storage: None,
        outbound: Outbound::for_connection(details.as_object().expect("an object")),
        sql: Some(SqlGrant {
            pools: Arc::new(SqlPools::default()),
            scope: "t".into(),
            max_open: None,
        }),
        mongo: None,
        limits: warden::imports::Limits::default(),
    };
    let mut driver = runtime.driver("mysql-database-plugin", "", "t", grant).await?;
    let config = json!({
        "plugin_name": "mysql-database-plugin",
        "connection_url": scratch.go_dsn_template(),
        "username": scratch.admin_user,
        "password": scratch.admin_password,
    })
    .to_string();
    driver.initialize(&config, true).await?;

    let user = format!("upd_{}", warden_tests::util::random_alnum(6));
    let mut conn = TestMariaDb::shared().root().await?;
    sqlx::raw_sql(&format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'old-pass'"))
        .execute(&mut conn)
        .await?;
    conn.close().await.ok();

    // The user has no grants on the scratch database: log in without one.
    let login = |user: &str, password: &str| {
        let options = TestMariaDb::shared().login_options(user, password);
        async move { sqlx::mysql::MySqlConnection::connect_with(&options).await }
    };
    let change = |password: &str, statements: Vec<String>| UpdateUserRequest {
        username: user.clone(),
        password: Some(ChangePassword {
            new_password: password.to_string(),
            statements,
        }),
        expiration: None,
    };
    driver.update_user(&config, &change("new-pass-1", vec![])).await?;
    assert!(login(&user, "new-pass-1").await.is_ok(), "default ALTER USER");
    assert!(login(&user, "old-pass").await.is_err(), "the old password still works");

    let custom = "SET PASSWORD FOR '{{username}}'@'%' = PASSWORD('{{password}}')".to_string();
    driver.update_user(&config, &change("new-pass-2", vec![custom])).await?;
    assert!(login(&user, "new-pass-2").await.is_ok(), "custom statements");

    let expiration_only = UpdateUserRequest {
        username: user.clone(),
        password: None,
        expiration: Some(ChangeExpiration {
            new_expiration: 2_000_000_000,
            statements: vec![],
        }),
    };
    driver.update_user(&config, &expiration_only).await?;
    assert!(login(&user, "new-pass-2").await.is_ok());

    let nothing = UpdateUserRequest {
        username: user.clone(),
        password: None,
        expiration: None,
    };
    let e = driver.update_user(&config, &nothing).await.expect_err("no change");
    assert!(e.to_string().contains("no change requested"), "{e}");
    let e = driver
        .update_user(&config, &change("", vec![]))
        .await
        .expect_err("empty");
    assert!(e.to_string().contains("must provide both username and password"), "{e}");
    // A failing statement names the problem but never the new password.
    let bad = vec!["ALTER USER 'no_such_user_x'@'%' IDENTIFIED BY '{{password}}'".to_string()];
    let e = driver
        .update_user(&config, &change("secret-pass-3", bad))
        .await
        .expect_err("bad");
    assert!(e.to_string().contains("failed to change password"), "{e}");
    assert!(!e.to_string().contains("secret-pass-3"), "{e}");
    Ok(())
}

/// Identity on MariaDB (issue 13): a token whose policy grants read on one
/// role's creds gets them and a 403 elsewhere; revoking the token drops
/// the MariaDB user its lease created.
#[tokio::test]
async fn a_policy_limited_token_and_its_users_die_together() -> Result<()> {
    let env = MyEnv::start("acl_token", json!({})).await?;
    env.write_role("reader", json!({})).await?;
    env.write_role("other", json!({})).await?;
    let root = &env.client;
    root.expect(
        "PUT",
        "/v1/sys/policies/acl/my-reader",
        Some(json!({"policy": r#"path "db/creds/reader" { capabilities = ["read"] }"#})),
        204,
    )
    .await?;
    let created = root
        .expect(
            "POST",
            "/v1/auth/token/create",
            Some(json!({"policies": ["my-reader"]})),
            200,
        )
        .await?;
    let token = created["auth"]["client_token"].as_str().context("client_token")?;
    let app = root.with_token(Some(token));
    let (status, body) = app.get("/v1/db/creds/reader").await?;
    assert_eq!(status, 200, "{body}");
    let creds = Creds::from_body(body)?;
    assert!(env.scratch.user_exists(&creds.username).await?);
    for path in [
        "/v1/db/creds/other",
        "/v1/db/config/my",
        "/v1/db/roles/reader",
        "/v1/sys/mounts",
    ] {
        let (status, _) = app.get(path).await?;
        assert_eq!(status, 403, "{path}");
    }
    root.expect("POST", "/v1/auth/token/revoke", Some(json!({"token": token})), 204)
        .await?;
    let left = env
        .scratch
        .wait_users_gone(std::slice::from_ref(&creds.username), Duration::from_secs(30))
        .await?;
    assert!(left.is_empty(), "MariaDB user outlived its token: {left:?}");
    assert!(env.lease_keys("reader").await?.is_empty());
    Ok(())
}
