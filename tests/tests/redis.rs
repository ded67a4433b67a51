//! The Redis driver (redis-database-plugin, components/redis, built on the
//! driver SDK) against a real redis-server: issued ACL users log in and
//! hold exactly their rules, revocation drops them, rotate-root and static
//! roles change passwords, TLS works with the right CA and fails with
//! another, bad configurations are refused with Vault's texts, and the same
//! component dropped in as a file is registered and used through the real
//! `bao` CLI.

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_tests::bao::{Bao, ensure_bao};
use warden_tests::redis::Resp;
use warden_tests::util::{TempDir, random_alnum, target_dir};
use warden_tests::{Client, Creds, ServerOptions, TestRedis, WardenServer, check_error};

fn config(redis: &TestRedis, user: &str, password: &str) -> Value {
    json!({
        "plugin_name": "redis-database-plugin",
        "host": "127.0.0.1",
        "port": redis.port(),
        "username": user,
        "password": password,
        "allowed_roles": "*",
    })
}

async fn mount(client: &Client) -> Result<()> {
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await
        .map(drop)
}

/// A write below the mount that answers 204.
async fn post(client: &Client, path: &str, body: Value) -> Result<()> {
    client
        .expect("POST", &format!("/v1/db/{path}"), Some(body), 204)
        .await
        .map(drop)
}

async fn creds(client: &Client, role: &str) -> Result<Creds> {
    Creds::from_body(client.expect("GET", &format!("/v1/db/creds/{role}"), None, 200).await?)
}

/// Runs `args` as `user`: Ok(()) when Redis accepts it, Err with the text otherwise.
fn try_as(redis: &TestRedis, user: &str, password: &str, args: &[&str]) -> Result<()> {
    Resp::login(redis.port(), user, password)?.command(args).map(drop)
}

#[tokio::test]
async fn issued_redis_users_hold_their_rules_and_are_dropped_on_revoke() -> Result<()> {
    let redis = TestRedis::shared();
    let server = WardenServer::start().await?;
    let client = server.client();
    mount(&client).await?;
    post(
        &client,
        "config/redis",
        config(redis, redis.admin_user(), redis.admin_password()),
    )
    .await?;
    let read = client.expect("GET", "/v1/db/config/redis", None, 200).await?;
    ensure!(
        !read.to_string().contains(redis.admin_password()),
        "config read shows the password: {read}"
    );
    post(
        &client,
        "roles/app",
        json!({"db_name": "redis", "creation_statements": r#"["~app:*", "+@read", "+@write"]"#}),
    )
    .await?;
    post(&client, "roles/reader", json!({"db_name": "redis"})).await?;

    let app = creds(&client, "app").await?;
    ensure!(
        app.username.starts_with("V-TOKEN-APP-"),
        "Vault's upper-case name: {}",
        app.username
    );
    try_as(redis, &app.username, &app.password, &["SET", "app:k", "v"])?;
    try_as(redis, &app.username, &app.password, &["GET", "app:k"])?;
    let other_key = try_as(redis, &app.username, &app.password, &["GET", "other:k"]);
    ensure!(
        other_key.is_err_and(|e| e.to_string().contains("NOPERM")),
        "a key outside ~app:* was readable"
    );
    let admin_cmd = try_as(redis, &app.username, &app.password, &["ACL", "LIST"]);
    ensure!(
        admin_cmd.is_err_and(|e| e.to_string().contains("NOPERM")),
        "ACL LIST was allowed"
    );
    ensure!(
        !redis.logs_in(&app.username, "wrong-password"),
        "a wrong password logged in"
    );

    // No creation statements: Vault's default, ["~*", "+@read"].
    let reader = creds(&client, "reader").await?;
    try_as(redis, &reader.username, &reader.password, &["GET", "app:k"])?;
    let write = try_as(redis, &reader.username, &reader.password, &["SET", "app:k", "x"]);
    ensure!(
        write.is_err_and(|e| e.to_string().contains("NOPERM")),
        "the default rules allowed a write"
    );

    // Revoke: the user is gone.
    client
        .expect(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(json!({"lease_id": app.lease_id})),
            204,
        )
        .await?;
    ensure!(!redis.user_exists(&app.username)?, "the revoked user still exists");
    ensure!(
        !redis.logs_in(&app.username, &app.password),
        "the revoked login still works"
    );
    ensure!(
        redis.logs_in(&reader.username, &reader.password),
        "revoking one login dropped another"
    );

    // Malformed rules: the plugin's error (a 500, as Vault answers a
    // plugin's failure to create a user), and no lease.
    post(
        &client,
        "roles/broken",
        json!({"db_name": "redis", "creation_statements": "~* +@all"}),
    )
    .await?;
    let got = client.get("/v1/db/creds/broken").await?;
    check_error("malformed rules", &got, 500)?;
    ensure!(got.1.to_string().contains("creation statement JSON"), "{}", got.1);
    Ok(())
}

#[tokio::test]
async fn bad_redis_configurations_are_refused_with_vaults_texts() -> Result<()> {
    let redis = TestRedis::shared();
    let server = WardenServer::start().await?;
    let client = server.client();
    mount(&client).await?;
    let good = config(redis, redis.admin_user(), redis.admin_password());
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    for (body, needle) in [
        (with("host", json!("")), "host cannot be empty"),
        (with("port", json!(0)), "port cannot be empty"),
        (with("username", json!("")), "username cannot be empty"),
        (with("password", json!("")), "password cannot be empty"),
        (with("tls", json!(true)), "ca_cert cannot be empty"),
        (with("password", json!("not-the-password")), "WRONGPASS"),
        (
            with("port", json!(warden_tests::util::free_port()?)),
            "error verifying connection",
        ),
    ] {
        let got = client.post("/v1/db/config/bad", body.clone()).await?;
        check_error(needle, &got, 400)?;
        ensure!(got.1.to_string().contains(needle), "{needle}: {}", got.1);
        ensure!(
            !got.1.to_string().contains(redis.admin_password()),
            "an error shows the password: {}",
            got.1
        );
        let (status, _) = client.get("/v1/db/config/bad").await?;
        ensure!(status == 404, "a refused configuration was stored");
    }
    Ok(())
}

#[tokio::test]
async fn redis_rotate_root_and_static_roles() -> Result<()> {
    let redis = TestRedis::shared();
    // An admin of its own: rotating the shared admin would break other tests.
    let admin = format!("rot-admin-{}", random_alnum(8));
    let static_user = format!("static-{}", random_alnum(8));
    let mut root = redis.admin()?;
    root.command(&["ACL", "SETUSER", &admin, "on", ">initial-admin-pw", "~*", "&*", "+@all"])?;
    root.command(&["ACL", "SETUSER", &static_user, "on", ">initial-pw", "~*", "+@read"])?;
    let server = WardenServer::start().await?;
    let client = server.client();
    mount(&client).await?;
    post(&client, "config/redis", config(redis, &admin, "initial-admin-pw")).await?;
    client.expect("POST", "/v1/db/rotate-root/redis", None, 204).await?;
    ensure!(
        !redis.logs_in(&admin, "initial-admin-pw"),
        "the old admin password still logs in"
    );
    post(&client, "roles/reader", json!({"db_name": "redis"})).await?;
    let c = creds(&client, "reader").await?;
    ensure!(redis.logs_in(&c.username, &c.password), "no login after rotate-root");

    post(
        &client,
        "static-roles/st",
        json!({"db_name": "redis", "username": static_user, "rotation_period": "1h"}),
    )
    .await?;
    ensure!(
        !redis.logs_in(&static_user, "initial-pw"),
        "the initial static password survived"
    );
    let password = |body: &Value| body["data"]["password"].as_str().unwrap_or_default().to_string();
    let first = password(&client.expect("GET", "/v1/db/static-creds/st", None, 200).await?);
    ensure!(
        redis.logs_in(&static_user, &first),
        "the static password does not log in"
    );
    client.expect("POST", "/v1/db/rotate-role/st", None, 204).await?;
    let second = password(&client.expect("GET", "/v1/db/static-creds/st", None, 200).await?);
    ensure!(
        second != first && redis.logs_in(&static_user, &second),
        "rotate-role did not rotate"
    );
    ensure!(
        !redis.logs_in(&static_user, &first),
        "the old static password still logs in"
    );
    // A static role over a user Redis does not have: Vault's text, nothing stored.
    let got = client
        .post(
            "/v1/db/static-roles/ghost",
            json!({"db_name": "redis", "username": "no-such-user", "rotation_period": "1h"}),
        )
        .await?;
    check_error("static role for a missing user", &got, 400)?;
    ensure!(got.1.to_string().contains("user not found"), "{}", got.1);
    root.command(&["ACL", "DELUSER", &admin, &static_user])?;
    Ok(())
}

#[tokio::test]
async fn redis_over_tls_checks_the_servers_certificate() -> Result<()> {
    let redis = TestRedis::shared();
    let server = WardenServer::start().await?;
    let client = server.client();
    mount(&client).await?;
    let mut tls = config(redis, redis.admin_user(), redis.admin_password());
    tls["port"] = json!(redis.tls_port());
    tls["tls"] = json!(true);
    tls["ca_cert"] = json!(redis.other_ca_pem());
    let got = client.post("/v1/db/config/tls", tls.clone()).await?;
    check_error("a CA that did not sign the server's certificate", &got, 400)?;
    ensure!(got.1.to_string().contains("TLS handshake"), "{}", got.1);
    tls["ca_cert"] = json!(redis.ca_pem());
    post(&client, "config/tls", tls).await?;
    post(&client, "roles/reader", json!({"db_name": "tls"})).await?;
    let c = creds(&client, "reader").await?;
    ensure!(
        redis.logs_in(&c.username, &c.password),
        "the login made over TLS does not work"
    );
    client
        .expect(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(json!({"lease_id": c.lease_id})),
            204,
        )
        .await?;
    ensure!(!redis.user_exists(&c.username)?, "revoking over TLS left the user");
    Ok(())
}

/// The issue's flow: the driver dropped in as `redis.wasm`, registered with
/// `bao plugin register` under the built-in's name (an unversioned
/// registration shadows the built-in, as in Vault), listed, described,
/// used, reloaded and deregistered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_driver_as_a_file_through_the_bao_cli() -> Result<()> {
    let redis = TestRedis::shared();
    let bin = tokio::task::spawn_blocking(ensure_bao).await??;
    let plugins = TempDir::new("warden-plugins")?;
    let wasm = target_dir().join("wasm/wasm32-wasip2/release/redis_driver.wasm");
    let bytes = std::fs::read(&wasm).with_context(|| format!("{} (build the workspace first)", wasm.display()))?;
    std::fs::write(plugins.path().join("redis.wasm"), &bytes)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let server = WardenServer::start_with(ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        ..ServerOptions::default()
    })
    .await?;
    // -dev-plugin-dir registered redis.wasm as "redis"; this registers it again under Vault's name.
    let client = server.client();
    mount(&client).await?;
    let mut bao = Bao::new(&bin, &server.url())?;
    bao.token = Some(server.root_token().to_string());
    let name = "redis-database-plugin";
    tokio::task::block_in_place(|| -> Result<()> {
        bao.expect(
            &[
                "plugin",
                "register",
                &format!("-sha256={sha}"),
                "-command=redis.wasm",
                "database",
                name,
            ],
            0,
        )?;
        let list = bao.expect(&["plugin", "list", "database"], 0)?;
        ensure!(list.stdout.contains(name), "{list}");
        let info = bao.expect(&["plugin", "info", "-format=json", "database", name], 0)?;
        let info: Value = serde_json::from_str(&info.stdout).with_context(|| info.to_string())?;
        ensure!(
            info["command"] == json!("redis.wasm") && info["builtin"] == json!(false),
            "{info}"
        );
        Ok(())
    })?;
    post(
        &client,
        "config/redis",
        config(redis, redis.admin_user(), redis.admin_password()),
    )
    .await?;
    post(&client, "roles/reader", json!({"db_name": "redis"})).await?;
    let c = creds(&client, "reader").await?;
    ensure!(
        redis.logs_in(&c.username, &c.password),
        "the registered driver's login does not work"
    );
    tokio::task::block_in_place(|| -> Result<()> {
        bao.expect(&["plugin", "reload", "-mounts=db/"], 0)?;
        Ok(())
    })?;
    let again = creds(&client, "reader").await?;
    ensure!(redis.logs_in(&again.username, &again.password), "no login after reload");
    tokio::task::block_in_place(|| -> Result<()> {
        bao.expect(&["plugin", "deregister", "database", name], 0)?;
        // The built-in remains.
        let info = bao.expect(&["plugin", "info", "-format=json", "database", name], 0)?;
        let info: Value = serde_json::from_str(&info.stdout).with_context(|| info.to_string())?;
        if info["builtin"] != json!(true) {
            bail!("after deregister the built-in should show: {info}");
        }
        Ok(())
    })?;
    Ok(())
}
