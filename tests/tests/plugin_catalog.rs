//! The plugin catalog with real components and a real PostgreSQL: a driver
//! dropped into the plugin directory is registered (`sys/plugins/catalog`)
//! with its SHA-256, listed, read, used by a connection (its credentials log
//! in), refused once its file changes (checked again at every load, here
//! after `sys/plugins/reload/backend`), and deregistered. Every bad
//! registration (no or bad digest, wrong digest, missing file, a path
//! outside the directory, a component importing sockets) is a 400 with
//! nothing registered. The real `bao` CLI registers, lists, describes,
//! reloads and deregisters a driver unchanged.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_tests::bao::{Bao, ensure_bao};
use warden_tests::util::{TempDir, target_dir};
use warden_tests::{DbEnv, ServerOptions, check_error};

/// A component of the components workspace (built with the host).
fn component(artefact: &str) -> Result<PathBuf> {
    let path = target_dir().join(format!("wasm/wasm32-wasip2/release/{artefact}.wasm"));
    ensure!(
        path.is_file(),
        "{} not built (build the workspace first)",
        path.display()
    );
    Ok(path)
}

/// Copy a component into the plugin directory; returns its hex SHA-256.
fn drop_in(plugins: &Path, artefact: &str, file: &str) -> Result<String> {
    let bytes = std::fs::read(component(artefact)?)?;
    std::fs::write(plugins.join(file), &bytes).with_context(|| format!("write {file}"))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// A server whose (empty) dev plugin directory is `plugins`, with `db/`
/// mounted and `db/config/pg` on the built-in PostgreSQL driver.
async fn env_with_plugin_dir(label: &str) -> Result<(DbEnv, TempDir)> {
    let plugins = TempDir::new("warden-plugins")?;
    let options = ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        ..ServerOptions::default()
    };
    let env = DbEnv::start_with(label, &["app"], options, json!({})).await?;
    Ok((env, plugins))
}

/// The names `LIST sys/plugins/catalog/database` shows.
async fn database_plugins(env: &DbEnv) -> Result<Vec<String>> {
    let body = env
        .client
        .expect("LIST", "/v1/sys/plugins/catalog/database", None, 200)
        .await?;
    warden_tests::keys_of(&body)
}

fn first_error(body: &Value) -> String {
    body["errors"][0].as_str().unwrap_or_default().to_string()
}

/// A refused registration: 400, an error containing `needle`, and the
/// name still unknown to the catalog.
async fn refused(env: &DbEnv, name: &str, body: Value, needle: &str) -> Result<()> {
    let path = format!("/v1/sys/plugins/catalog/database/{name}");
    let got = env.client.put(&path, body.clone()).await?;
    check_error(&format!("PUT {path} {body}"), &got, 400)?;
    ensure!(
        first_error(&got.1).contains(needle),
        "PUT {path} {body}: expected an error containing {needle:?}, got {}",
        got.1
    );
    ensure!(
        !database_plugins(env).await?.contains(&name.to_string()),
        "{name} was registered after a refusal"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_driver_is_checked_used_reloaded_and_removed() -> Result<()> {
    let (env, plugins) = env_with_plugin_dir("pcat").await?;
    let dir = plugins.path();
    let sha = drop_in(dir, "postgres_driver", "pg-ext.wasm")?;
    let net_sha = drop_in(dir, "hostile_net_driver", "sneaky.wasm")?;
    let outside = TempDir::new("warden-outside")?;
    let outside_sha = drop_in(outside.path(), "postgres_driver", "pg-out.wasm")?;

    // Every bad registration is a 400 and registers nothing.
    refused(
        &env,
        "pg-ext",
        json!({"command": "pg-ext.wasm"}),
        "missing SHA-256 value",
    )
    .await?;
    refused(&env, "pg-ext", json!({"sha256": sha}), "missing command value").await?;
    refused(
        &env,
        "pg-ext",
        json!({"command": "pg-ext.wasm", "sha256": "zz-not-hex"}),
        "Could not decode SHA-256 value from Hex",
    )
    .await?;
    refused(
        &env,
        "pg-ext",
        json!({"command": "pg-ext.wasm", "sha256": "00".repeat(32)}),
        "checksums did not match",
    )
    .await?;
    refused(
        &env,
        "pg-ext",
        json!({"command": "nothing-here.wasm", "sha256": sha}),
        "not found in the plugin directory",
    )
    .await?;
    let escape = format!(
        "../{}/pg-out.wasm",
        outside.path().file_name().and_then(|n| n.to_str()).unwrap_or_default()
    );
    refused(
        &env,
        "pg-ext",
        json!({"command": escape, "sha256": outside_sha}),
        "outside of configured plugin directory",
    )
    .await?;
    let absolute = outside.path().join("pg-out.wasm");
    refused(
        &env,
        "pg-ext",
        json!({"command": absolute.to_string_lossy(), "sha256": outside_sha}),
        "outside of configured plugin directory",
    )
    .await?;
    refused(
        &env,
        "sneaky",
        json!({"command": "sneaky.wasm", "sha256": net_sha}),
        "wasi:sockets",
    )
    .await?;
    refused(
        &env,
        "pg-ext",
        json!({"command": "pg-ext.wasm", "sha256": sha, "version": "not-a-version"}),
        "not a valid semantic version",
    )
    .await?;
    let got = env
        .client
        .put(
            "/v1/sys/plugins/catalog/secret/pg-ext",
            json!({"command": "pg-ext.wasm", "sha256": sha}),
        )
        .await?;
    check_error("register a secret plugin", &got, 400)?;

    // Registered as version 1.0.0 (args and env accepted, ignored).
    env.client
        .expect(
            "PUT",
            "/v1/sys/plugins/catalog/database/pg-ext",
            Some(json!({"command": "pg-ext.wasm", "sha256": sha, "version": "1.0.0", "args": ["-x"], "env": ["A=b"]})),
            204,
        )
        .await?;
    ensure!(database_plugins(&env).await?.contains(&"pg-ext".to_string()));
    let read = env
        .client
        .expect(
            "GET",
            "/v1/sys/plugins/catalog/database/pg-ext?version=v1.0.0",
            None,
            200,
        )
        .await?;
    let data = &read["data"];
    ensure!(
        data["builtin"] == json!(false)
            && data["command"] == json!("pg-ext.wasm")
            && data["sha256"] == json!(sha)
            && data["version"] == json!("v1.0.0")
            && data["name"] == json!("pg-ext"),
        "{read}"
    );
    // No unversioned registration and no built-in of that name.
    env.client
        .expect("GET", "/v1/sys/plugins/catalog/database/pg-ext", None, 404)
        .await?;
    let all = env.client.expect("GET", "/v1/sys/plugins/catalog", None, 200).await?;
    let detailed = all["data"]["detailed"].as_array().context("no detailed")?;
    ensure!(
        detailed.iter().any(|d| d["name"] == json!("pg-ext")
            && d["version"] == json!("v1.0.0")
            && d["builtin"] == json!(false)
            && d["sha256"] == json!(sha)),
        "{all}"
    );
    let untyped = env
        .client
        .expect("GET", "/v1/sys/plugins/catalog/pg-ext", None, 200)
        .await?;
    ensure!(
        untyped["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("Deprecated")),
        "{untyped}"
    );

    // A connection that names no version gets the registered one, and its
    // credentials log in.
    let mut config = warden_tests::fixtures::postgres_config(&env.scratch, &["ext-role"]);
    config["plugin_name"] = json!("pg-ext");
    env.client
        .expect("POST", "/v1/db/config/ext", Some(config), 204)
        .await?;
    let cfg = env.client.expect("GET", "/v1/db/config/ext", None, 200).await?;
    ensure!(cfg["data"]["plugin_version"] == json!("v1.0.0"), "{cfg}");
    env.write_role("ext-role", json!({"db_name": "ext"})).await?;
    let creds = env.creds("ext-role").await?;
    let conn = env.scratch.connect_as(&creds.username, &creds.password).await;
    ensure!(conn.is_ok(), "the registered driver's login failed: {:?}", conn.err());

    // The file changes: a reload makes the next use read it again, and the
    // digest refuses it; the built-in driver on the same mount is unaffected.
    let good = std::fs::read(dir.join("pg-ext.wasm"))?;
    let mut changed = good.clone();
    changed.extend_from_slice(b"\0tampered");
    std::fs::write(dir.join("pg-ext.wasm"), &changed)?;
    let reloaded = env
        .client
        .expect(
            "PUT",
            "/v1/sys/plugins/reload/backend",
            Some(json!({"mounts": ["db"]})),
            200,
        )
        .await?;
    ensure!(
        reloaded["data"]["reload_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{reloaded}"
    );
    let got = env.client.get("/v1/db/creds/ext-role").await?;
    check_error("creds from a changed driver file", &got, 0)?;
    ensure!(first_error(&got.1).contains("checksums did not match"), "{}", got.1);
    env.write_role("app", json!({})).await?;
    env.creds("app").await?;
    // Restored, reloaded: it serves again.
    std::fs::write(dir.join("pg-ext.wasm"), &good)?;
    env.client
        .expect(
            "PUT",
            "/v1/sys/plugins/reload/backend",
            Some(json!({"plugin": "database"})),
            200,
        )
        .await?;
    env.creds("ext-role").await?;

    // Vault's reload refusals.
    for (body, needle) in [
        (json!({}), "plugin or mounts must be provided"),
        (
            json!({"plugin": "database", "mounts": ["db"]}),
            "cannot be set at the same time",
        ),
        (
            json!({"plugin": "pg-ext"}),
            "only plugins of type auth and secret can be reloaded",
        ),
        (json!({"plugin": "nosuch-plugin"}), "plugin not found in the catalog"),
        (json!({"mounts": ["nosuch"]}), "cannot fetch mount entry on \"nosuch/\""),
    ] {
        let got = env.client.put("/v1/sys/plugins/reload/backend", body.clone()).await?;
        check_error(&format!("reload {body}"), &got, 400)?;
        ensure!(first_error(&got.1).contains(needle), "reload {body}: {}", got.1);
    }

    // Deregistered: gone from the catalog; its connection fails clearly.
    env.client
        .expect(
            "DELETE",
            "/v1/sys/plugins/catalog/database/pg-ext?version=v1.0.0",
            None,
            204,
        )
        .await?;
    ensure!(!database_plugins(&env).await?.contains(&"pg-ext".to_string()));
    env.client
        .expect(
            "GET",
            "/v1/sys/plugins/catalog/database/pg-ext?version=v1.0.0",
            None,
            404,
        )
        .await?;
    let got = env.client.get("/v1/db/creds/ext-role").await?;
    check_error("creds from a deregistered driver", &got, 400)?;
    ensure!(
        first_error(&got.1).contains("plugin not found in the catalog: pg-ext"),
        "{}",
        got.1
    );
    // Deregistering a built-in or an unknown plugin changes nothing (204).
    env.client
        .expect(
            "DELETE",
            "/v1/sys/plugins/catalog/database/postgresql-database-plugin",
            None,
            204,
        )
        .await?;
    env.creds("app").await?;
    Ok(())
}

fn cli_json(run: &warden_tests::bao::Run) -> Result<Value> {
    serde_json::from_str(&run.stdout).with_context(|| format!("not JSON:\n{run}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bao_cli_registers_lists_describes_and_removes_a_driver() -> Result<()> {
    let bin = tokio::task::spawn_blocking(ensure_bao).await??;
    let (env, plugins) = env_with_plugin_dir("pcli").await?;
    let sha = drop_in(plugins.path(), "postgres_driver", "pg-cli.wasm")?;
    let mut bao = Bao::new(&bin, &env.server.url())?;
    bao.token = Some(env.server.root_token().to_string());
    let name = "pg-cli-database-plugin";
    let sha_arg = format!("-sha256={sha}");
    tokio::task::block_in_place(|| -> Result<()> {
        bao.expect(
            &[
                "plugin",
                "register",
                &sha_arg,
                "-command=pg-cli.wasm",
                "-version=v1.2.0",
                "database",
                name,
            ],
            0,
        )?;
        let list = bao.expect(&["plugin", "list", "database"], 0)?;
        ensure!(list.stdout.contains(name), "{list}");
        let detailed = cli_json(&bao.expect(&["plugin", "list", "-detailed", "-format=json", "database"], 0)?)?;
        let found = detailed["details"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == json!(name)))
            .cloned()
            .unwrap_or(Value::Null);
        ensure!(found["version"] == json!("v1.2.0"), "{detailed}");
        let info = cli_json(&bao.expect(
            &["plugin", "info", "-format=json", "-version=v1.2.0", "database", name],
            0,
        )?)?;
        ensure!(
            info["sha256"] == json!(sha) && info["command"] == json!("pg-cli.wasm"),
            "{info}"
        );
        // A wrong digest is refused with the server's message.
        let bad = bao.run(&[
            "plugin",
            "register",
            &format!("-sha256={}", "ab".repeat(32)),
            "-command=pg-cli.wasm",
            "database",
            "pg-bad",
        ])?;
        ensure!(bad.code == 2 && bad.stderr.contains("checksums did not match"), "{bad}");
        bao.expect(&["plugin", "reload", "-mounts=db/"], 0)?;
        bao.expect(&["plugin", "deregister", "-version=v1.2.0", "database", name], 0)?;
        let gone = bao.run(&["plugin", "info", "-version=v1.2.0", "database", name])?;
        if gone.code == 0 {
            bail!("plugin info after deregister succeeded:\n{gone}");
        }
        Ok(())
    })
}

/// A persistent server: a registration survives restarts (stored, then read
/// and checked again at start-up's first use), and a file changed while the
/// server was down is refused after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_survives_restarts_and_a_changed_file_is_refused_after_one() -> Result<()> {
    use warden_tests::configured::{Node, NodeStorage};
    let scratch = warden_tests::TestPostgres::shared().scratch("prestart").await?;
    let plugins = TempDir::new("warden-plugins")?;
    let sha = drop_in(plugins.path(), "postgres_driver", "pg-kept.wasm")?;
    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.extra_config = format!("plugin_directory = \"{}\"\n", plugins.path().display());
    node.start().await?;
    let (keys, token) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    let client = node.client(Some(&token));
    client
        .expect(
            "PUT",
            "/v1/sys/plugins/catalog/database/pg-kept",
            Some(json!({"command": "pg-kept.wasm", "sha256": sha})),
            204,
        )
        .await?;
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let mut config = warden_tests::fixtures::postgres_config(&scratch, &["r"]);
    config["plugin_name"] = json!("pg-kept");
    client.expect("POST", "/v1/db/config/pg", Some(config), 204).await?;
    client
        .expect(
            "POST",
            "/v1/db/roles/r",
            Some(json!({"db_name": "pg", "creation_statements": [warden_tests::CREATE_ROLE]})),
            204,
        )
        .await?;
    for round in ["after a restart", "after a second restart"] {
        node.stop();
        node.start().await?;
        node.unseal(&[&keys[0]]).await?;
        let body = client.expect("GET", "/v1/db/creds/r", None, 200).await.context(round)?;
        let creds = warden_tests::Creds::from_body(body)?;
        ensure!(
            scratch.connect_as(&creds.username, &creds.password).await.is_ok(),
            "{round}: the login of the registered driver failed"
        );
        let keys = warden_tests::keys_of(
            &client
                .expect("LIST", "/v1/sys/plugins/catalog/database", None, 200)
                .await?,
        )?;
        ensure!(keys.contains(&"pg-kept".to_string()), "{round}: {keys:?}");
    }

    // Changed while the server is down: refused at the first use after it.
    node.stop();
    let mut bytes = std::fs::read(plugins.path().join("pg-kept.wasm"))?;
    bytes.push(0);
    std::fs::write(plugins.path().join("pg-kept.wasm"), &bytes)?;
    node.start().await?;
    node.unseal(&[&keys[0]]).await?;
    let got = client.get("/v1/db/creds/r").await?;
    check_error("creds after the file changed", &got, 0)?;
    ensure!(first_error(&got.1).contains("checksums did not match"), "{}", got.1);
    Ok(())
}

/// The PostgreSQL driver built against the frozen warden:plugin 1.0.0
/// contract (components/previous-contract) registers and issues working
/// logins on this host, whatever the contract's current version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_built_against_the_previous_contract_still_works() -> Result<()> {
    let (env, plugins) = env_with_plugin_dir("pprev").await?;
    let sha = drop_in(plugins.path(), "previous_contract_driver", "pg-1-0.wasm")?;
    env.client
        .expect(
            "PUT",
            "/v1/sys/plugins/catalog/database/pg-1-0",
            Some(json!({"command": "pg-1-0.wasm", "sha256": sha, "version": "1.0.0"})),
            204,
        )
        .await?;
    let mut config = warden_tests::fixtures::postgres_config(&env.scratch, &["old"]);
    config["plugin_name"] = json!("pg-1-0");
    config["plugin_version"] = json!("v1.0.0");
    env.client
        .expect("POST", "/v1/db/config/old", Some(config), 204)
        .await?;
    env.write_role("old", json!({"db_name": "old"})).await?;
    let creds = env.creds("old").await?;
    let conn = env.scratch.connect_as(&creds.username, &creds.password).await;
    ensure!(
        conn.is_ok(),
        "the previous-contract driver's login failed: {:?}",
        conn.err()
    );
    env.client
        .expect(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(json!({"lease_id": creds.lease_id})),
            204,
        )
        .await?;
    let refused = env.scratch.connect_as(&creds.username, &creds.password).await;
    ensure!(refused.is_err(), "the login still works after its lease was revoked");
    Ok(())
}

/// A namespace registers plugins of its own: its connections use them, the
/// root namespace and other namespaces do not see them, and deleting the
/// namespace removes them.
#[tokio::test]
async fn a_namespace_registers_plugins_of_its_own() -> Result<()> {
    let (env, plugins) = env_with_plugin_dir("pcat_ns").await?;
    let sha = drop_in(plugins.path(), "postgres_driver", "pg-tenant.wasm")?;
    let root = &env.client;
    for ns in ["team-a", "team-b"] {
        root.expect("POST", &format!("/v1/sys/namespaces/{ns}"), None, 200)
            .await?;
    }
    let a = root.with_header("X-Vault-Namespace", "team-a");
    let b = root.with_header("X-Vault-Namespace", "team-b");
    a.expect(
        "PUT",
        "/v1/sys/plugins/catalog/database/pg-tenant",
        Some(json!({"command": "pg-tenant.wasm", "sha256": sha, "version": "1.2.0"})),
        204,
    )
    .await?;
    let listed = warden_tests::keys_of(&a.expect("LIST", "/v1/sys/plugins/catalog/database", None, 200).await?)?;
    ensure!(listed.contains(&"pg-tenant".to_string()), "{listed:?}");
    let read = a
        .expect(
            "GET",
            "/v1/sys/plugins/catalog/database/pg-tenant?version=v1.2.0",
            None,
            200,
        )
        .await?;
    ensure!(
        read["data"]["name"] == json!("pg-tenant") && read["data"]["sha256"] == json!(sha),
        "{read}"
    );
    ensure!(
        !database_plugins(&env).await?.contains(&"pg-tenant".to_string()),
        "the root sees a's plugin"
    );
    let b_listed = warden_tests::keys_of(&b.expect("LIST", "/v1/sys/plugins/catalog/database", None, 200).await?)?;
    ensure!(
        !b_listed.contains(&"pg-tenant".to_string()),
        "b sees a's plugin: {b_listed:?}"
    );
    // Reloading is the root's.
    let (status, _) = a
        .put("/v1/sys/plugins/reload/backend", json!({"mounts": ["db"]}))
        .await?;
    ensure!(status == 404, "reload in a namespace: {status}");

    // a's connection gets a's plugin (and its version); b's cannot name it.
    let mut config = warden_tests::fixtures::postgres_config(&env.scratch, &["app"]);
    config["plugin_name"] = json!("pg-tenant");
    for client in [&a, &b] {
        client
            .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
            .await?;
    }
    a.expect("POST", "/v1/db/config/pg", Some(config.clone()), 204).await?;
    let cfg = a.expect("GET", "/v1/db/config/pg", None, 200).await?;
    ensure!(cfg["data"]["plugin_version"] == json!("v1.2.0"), "{cfg}");
    a.expect(
        "POST",
        "/v1/db/roles/app",
        Some(json!({"db_name": "pg", "creation_statements": [warden_tests::CREATE_ROLE]})),
        204,
    )
    .await?;
    let creds = a.expect("GET", "/v1/db/creds/app", None, 200).await?;
    let (user, password) = (
        creds["data"]["username"].as_str().context("username")?,
        creds["data"]["password"].as_str().context("password")?,
    );
    ensure!(env.scratch.logs_in(user, password).await, "a's plugin's login");
    let (status, body) = b.post("/v1/db/config/pg", config).await?;
    ensure!(
        status == 400 && body.to_string().contains("pg-tenant"),
        "b names a's plugin: {status} {body}"
    );

    // Deleting the namespace removes its registration.
    root.expect("DELETE", "/v1/sys/namespaces/team-a", None, 200).await?;
    root.expect("POST", "/v1/sys/namespaces/team-a", None, 200).await?;
    let (status, _) = a.list("/v1/sys/plugins/catalog/database").await?;
    let again = match status {
        200 => warden_tests::keys_of(&a.expect("LIST", "/v1/sys/plugins/catalog/database", None, 200).await?)?,
        _ => Vec::new(),
    };
    ensure!(!again.contains(&"pg-tenant".to_string()), "{again:?}");
    Ok(())
}
