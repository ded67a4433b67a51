//! Issue 3 end to end, on SQLite and on PostgreSQL storage: init with 5
//! shares and threshold 3, 503 while sealed, a wrong key refused, unseal with
//! any 3 shares, everything kept across a restart (mounts, configs, roles,
//! leases; a lease issued before the restart is revoked on expiry after it),
//! rotate keeps older values readable, and the storage's raw bytes never hold
//! a password. And a mount table written by an earlier version (one
//! `core/mounts` value) is split into one key per mount at unseal.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::fixtures::postgres_config;
use warden_tests::{CREATE_ROLE, Creds, Scratch, TestPostgres, eventually};

async fn expect(
    client: &warden_tests::Client,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Result<Value> {
    client.expect(method, path, body, status).await
}

/// Every byte the storage holds, whatever the backend.
async fn raw_storage_bytes(node: &Node, scratch: &Scratch) -> Result<Vec<u8>> {
    match &node.storage {
        NodeStorage::Inmem => bail!("in-memory storage has no bytes at rest"),
        NodeStorage::Sqlite => {
            let mut all = Vec::new();
            for entry in std::fs::read_dir(node.dir.path())? {
                let path = entry?.path();
                let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
                // The database, its WAL and shared-memory files.
                if name.starts_with("warden.db") {
                    all.extend(std::fs::read(&path)?);
                }
            }
            Ok(all)
        }
        NodeStorage::Postgresql { table, .. } | NodeStorage::PostgresqlHa { table, .. } => {
            let mut conn = scratch.superuser().await?;
            let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(&format!("SELECT key, value FROM \"{table}\""))
                .fetch_all(&mut conn)
                .await?;
            ensure!(!rows.is_empty(), "the storage table is empty");
            Ok(rows
                .into_iter()
                .flat_map(|(k, v)| k.into_bytes().into_iter().chain(v))
                .collect())
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn lifecycle(storage: &str) -> Result<()> {
    let scratch = TestPostgres::shared().scratch(&format!("persist-{storage}")).await?;
    let node_storage = match storage {
        "sqlite" => NodeStorage::Sqlite,
        _ => NodeStorage::Postgresql {
            url: scratch
                .connection_url_template()
                .replace("{{username}}", &scratch.admin_user)
                .replace("{{password}}", &scratch.admin_password),
            table: "warden_store".into(),
        },
    };
    let mut node = Node::new(node_storage)?;
    node.start().await?;
    let anon = node.client(None);

    // Not initialised: 501 health, init status false, 503 elsewhere.
    let (status, _) = anon.req("GET", "/v1/sys/health", None).await?;
    ensure!(status == 501, "health before init: {status}");
    let init = expect(&anon, "GET", "/v1/sys/init", None, 200).await?;
    ensure!(init["initialized"] == json!(false));
    expect(&anon, "GET", "/v1/sys/mounts", None, 503).await?;
    expect(&anon, "PUT", "/v1/sys/unseal", Some(json!({"key": "aa"})), 400).await?;
    // Bad init settings store nothing.
    expect(
        &anon,
        "PUT",
        "/v1/sys/init",
        Some(json!({"secret_shares": 3, "secret_threshold": 5})),
        400,
    )
    .await?;
    expect(&anon, "GET", "/v1/sys/init", None, 200).await?;

    let (keys, root) = node.init(5, 3).await?;
    ensure!(keys.len() == 5 && root.starts_with("hvs."), "init: {keys:?}");
    expect(
        &anon,
        "PUT",
        "/v1/sys/init",
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        400,
    )
    .await?;
    let client = node.client(Some(&root));

    // Sealed: 503 with Vault's message, even with the root token.
    let status = expect(&anon, "GET", "/v1/sys/seal-status", None, 200).await?;
    ensure!(
        status["sealed"] == json!(true) && status["t"] == json!(3) && status["n"] == json!(5),
        "{status}"
    );
    let sealed = expect(&client, "GET", "/v1/sys/mounts", None, 503).await?;
    ensure!(sealed["errors"] == json!(["Vault is sealed"]), "{sealed}");

    // A wrong key set: three shares of which one is forged fail, and the
    // progress starts over.
    let mut forged = keys[1].clone();
    forged.replace_range(0..2, if &forged[0..2] == "00" { "01" } else { "00" });
    node.unseal(&[&keys[0], &forged]).await?;
    let wrong = anon.req("PUT", "/v1/sys/unseal", Some(json!({"key": keys[2]}))).await?;
    ensure!(wrong.0 == 400, "a forged share unsealed: {wrong:?}");
    let status = expect(&anon, "GET", "/v1/sys/seal-status", None, 200).await?;
    ensure!(
        status["sealed"] == json!(true) && status["progress"] == json!(0),
        "{status}"
    );
    expect(&anon, "PUT", "/v1/sys/unseal", Some(json!({"key": "not-a-key!"})), 400).await?;

    // Any three shares.
    let status = node.unseal(&[&keys[0], &keys[2], &keys[4]]).await?;
    ensure!(status["sealed"] == json!(false), "{status}");
    let (h, _) = anon.req("GET", "/v1/sys/health", None).await?;
    ensure!(h == 200, "health unsealed: {h}");

    // Mount, config, roles, and credentials: one short, one long.
    expect(
        &client,
        "POST",
        "/v1/sys/mounts/db",
        Some(json!({"type": "database"})),
        204,
    )
    .await?;
    expect(
        &client,
        "POST",
        "/v1/db/config/pg",
        Some(postgres_config(&scratch, &["*"])),
        204,
    )
    .await?;
    for (role, ttl) in [("short", "6s"), ("long", "1h")] {
        expect(
            &client,
            "POST",
            &format!("/v1/db/roles/{role}"),
            Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE], "default_ttl": ttl, "max_ttl": "24h"})),
            204,
        )
        .await?;
    }
    let short = Creds::from_body(expect(&client, "GET", "/v1/db/creds/short", None, 200).await?)?;
    let long = Creds::from_body(expect(&client, "GET", "/v1/db/creds/long", None, 200).await?)?;

    // Rotate: a new term; a role written after it; older values still read.
    let before = expect(&client, "GET", "/v1/sys/key-status", None, 200).await?;
    expect(&client, "PUT", "/v1/sys/rotate", None, 204).await?;
    let after = expect(&client, "GET", "/v1/sys/key-status", None, 200).await?;
    ensure!(
        after["data"]["term"].as_i64() == before["data"]["term"].as_i64().map(|t| t + 1),
        "{before} {after}"
    );
    expect(
        &client,
        "POST",
        "/v1/db/roles/after-rotate",
        Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE]})),
        204,
    )
    .await?;
    expect(&client, "GET", "/v1/db/roles/short", None, 200).await?;

    // Seal through the API: 503 again, then unseal again.
    expect(&client, "PUT", "/v1/sys/seal", None, 204).await?;
    expect(&client, "GET", "/v1/db/roles/short", None, 503).await?;
    node.unseal(&[&keys[4], &keys[3], &keys[1]]).await?;
    expect(&client, "GET", "/v1/db/roles/short", None, 200).await?;

    // No password in the raw bytes: neither the connection's nor an issued one.
    let raw = raw_storage_bytes(&node, &scratch).await?;
    ensure!(!raw.is_empty());
    for (what, secret) in [
        ("the connection password", scratch.admin_password.as_str()),
        ("an issued password", short.password.as_str()),
        ("an issued password", long.password.as_str()),
        ("the root token", root.as_str()),
    ] {
        ensure!(!contains(&raw, secret), "{what} is readable in the {storage} storage");
    }
    // While the names (keys) are there in clear, as in Vault.
    ensure!(
        contains(&raw, "core/mounts") || contains(&raw, "sys/expire/"),
        "storage looks empty"
    );

    // Restart: sealed again; any other three shares.
    node.stop();
    node.start().await?;
    expect(&client, "GET", "/v1/db/roles/short", None, 503).await?;
    node.unseal(&[&keys[1], &keys[3], &keys[4]]).await?;
    for path in [
        "/v1/db/roles/short",
        "/v1/db/roles/long",
        "/v1/db/roles/after-rotate",
        "/v1/db/config/pg",
    ] {
        expect(&client, "GET", path, None, 200)
            .await
            .with_context(|| path.to_string())?;
    }
    let mounts = expect(&client, "GET", "/v1/sys/mounts", None, 200).await?;
    ensure!(mounts["data"]["db/"]["type"] == json!("database"), "{mounts}");
    for c in [&short, &long] {
        expect(
            &client,
            "PUT",
            "/v1/sys/leases/lookup",
            Some(json!({"lease_id": c.lease_id})),
            200,
        )
        .await?;
    }
    // The engine still works after the restart.
    let fresh = Creds::from_body(expect(&client, "GET", "/v1/db/creds/long", None, 200).await?)?;
    scratch.connect_as(&fresh.username, &fresh.password).await?;

    // The short lease, issued before the restart, expires after it.
    ensure!(scratch.role_exists(&short.username).await?);
    let gone = eventually(Duration::from_secs(30), || async {
        Ok(!scratch.role_exists(&short.username).await?)
    })
    .await?;
    ensure!(gone, "the short lease's role outlived its lease across a restart");
    expect(
        &client,
        "PUT",
        "/v1/sys/leases/lookup",
        Some(json!({"lease_id": short.lease_id})),
        400,
    )
    .await?;
    ensure!(scratch.role_exists(&long.username).await?);

    // Clean up what the database holds.
    expect(&client, "PUT", "/v1/sys/leases/revoke-prefix/db/creds", None, 204).await?;
    for c in [&long, &fresh] {
        if scratch.role_exists(&c.username).await? {
            bail!("{} survived revoke-prefix", c.username);
        }
    }
    Ok(())
}

#[tokio::test]
async fn sqlite_storage_keeps_everything_encrypted_across_restarts() -> Result<()> {
    lifecycle("sqlite").await
}

#[tokio::test]
async fn postgresql_storage_keeps_everything_encrypted_across_restarts() -> Result<()> {
    lifecycle("postgresql").await
}

#[tokio::test]
async fn bad_storage_and_bad_config_stop_start_up_and_change_nothing() -> Result<()> {
    let node = Node::new(NodeStorage::Sqlite)?;
    let config = node.config_path();

    // A storage file that is not a database: a clear error, the file untouched.
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(node.sqlite_path(), &garbage)?;
    std::fs::write(&config, node.config_text())?;
    let out = node.start_expecting_failure(&config)?;
    ensure!(out.contains("sqlite"), "unclear error for a corrupt file: {out}");
    ensure!(
        std::fs::read(node.sqlite_path())? == garbage,
        "the corrupt file was changed"
    );

    // A configuration with a syntax error: the message names the file and line.
    std::fs::remove_file(node.sqlite_path())?;
    let broken = format!(
        "{}\nlistener \"tcp\" {{\n  address = 127.0.0.1:1\n}}\n",
        node.config_text()
    );
    std::fs::write(&config, &broken)?;
    let out = node.start_expecting_failure(&config)?;
    let line = broken.lines().position(|l| l.contains("address = 127")).map(|i| i + 1);
    let expected = format!("{}:{}:", config.display(), line.unwrap_or(0));
    ensure!(out.contains(&expected), "error does not name {expected}: {out}");
    ensure!(!node.sqlite_path().exists(), "a failed start created the storage file");

    // An unknown setting, likewise.
    std::fs::write(&config, format!("{}\nsecret_sauce = true\n", node.config_text()))?;
    let out = node.start_expecting_failure(&config)?;
    ensure!(out.contains("unknown setting \"secret_sauce\""), "{out}");
    Ok(())
}

#[tokio::test]
async fn a_truncated_storage_file_is_refused_and_left_alone() -> Result<()> {
    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.start().await?;
    let (keys, root) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    let client = node.client(Some(&root));
    expect(
        &client,
        "POST",
        "/v1/sys/mounts/db",
        Some(json!({"type": "database"})),
        204,
    )
    .await?;
    node.stop();
    // Fold the WAL into the main file, then cut the file in half.
    {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(node.sqlite_path())
            .connect()
            .await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await?;
    }
    let full = std::fs::read(node.sqlite_path())?;
    let half = &full[..full.len() / 2];
    std::fs::write(node.sqlite_path(), half)?;
    let _ = std::fs::remove_file(node.dir.path().join("warden.db-wal"));
    let _ = std::fs::remove_file(node.dir.path().join("warden.db-shm"));

    // Either start-up refuses, or unsealing reports the damage; never a
    // silent "not initialised" that would let init overwrite the data.
    match node.start_expecting_failure(&node.config_path()) {
        Ok(out) => ensure!(
            out.to_lowercase().contains("malformed") || out.contains("sqlite"),
            "{out}"
        ),
        Err(_) => {
            let mut node2 = Node::new(NodeStorage::Sqlite)?;
            std::fs::copy(node.sqlite_path(), node2.sqlite_path())?;
            node2.start().await?;
            let status = expect(&node2.client(None), "GET", "/v1/sys/seal-status", None, 200).await?;
            ensure!(
                status["initialized"] == json!(true),
                "a damaged file reads as uninitialised: {status}"
            );
            let (code, body) = node2
                .client(None)
                .req("PUT", "/v1/sys/unseal", Some(json!({"key": keys[0]})))
                .await?;
            ensure!(code >= 400, "a damaged store unsealed: {code} {body}");
        }
    }
    ensure!(
        std::fs::read(node.sqlite_path())? == half,
        "the damaged file was changed"
    );
    Ok(())
}

/// Issue 11, item 9: a SQLite file whose mount table is the single value
/// `core/mounts` that versions before the split wrote (made here by
/// rewriting the file while the node is stopped, encrypted as the barrier
/// does) unseals with every mount, its config and role intact, and holds
/// one key per mount afterwards.
#[tokio::test]
async fn a_mount_table_from_an_earlier_version_is_split_at_unseal() -> Result<()> {
    use sqlx::ConnectOptions;
    use warden::storage::barrier;

    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.start().await?;
    let (keys, root) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    let client = node.client(Some(&root));
    for m in ["one", "two/deep"] {
        expect(
            &client,
            "POST",
            &format!("/v1/sys/mounts/{m}"),
            Some(json!({"type": "database"})),
            204,
        )
        .await?;
        expect(
            &client,
            "POST",
            &format!("/v1/{m}/roles/r"),
            Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE]})),
            204,
        )
        .await?;
    }
    node.stop();

    // Fold the per-mount records back into one `core/mounts` value.
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(node.sqlite_path())
        .connect()
        .await?;
    let get = |key: &'static str| sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM kv WHERE key = ?1").bind(key);
    let sealed_root = get("core/root-key").fetch_one(&mut conn).await?;
    let sealed_keyring = get("core/keyring").fetch_one(&mut conn).await?;
    let unseal: [u8; 32] = hex::decode(&keys[0])?
        .try_into()
        .map_err(|_| anyhow::anyhow!("key length"))?;
    let keyring = barrier::open_keyring(&*barrier::open_root_key(&unseal, &sealed_root)?, &sealed_keyring)?;
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT key, value FROM kv WHERE key LIKE 'core/mounts/%' ORDER BY key")
            .fetch_all(&mut conn)
            .await?;
    ensure!(rows.len() == 2, "expected one key per mount, found {}", rows.len());
    let mut table = Vec::new();
    for (key, value) in &rows {
        table.push(serde_json::from_slice::<Value>(
            &keyring.decrypt(value, key.as_bytes())?,
        )?);
    }
    let legacy = keyring.encrypt(&serde_json::to_vec(&table)?, b"core/mounts")?;
    sqlx::query("INSERT INTO kv (key, value) VALUES ('core/mounts', ?1)")
        .bind(legacy)
        .execute(&mut conn)
        .await?;
    sqlx::query("DELETE FROM kv WHERE key LIKE 'core/mounts/%'")
        .execute(&mut conn)
        .await?;
    drop(conn);

    node.start().await?;
    node.unseal(&[&keys[0]]).await?;
    let client = node.client(Some(&root));
    let mounts = expect(&client, "GET", "/v1/sys/mounts", None, 200).await?;
    for m in ["one/", "two/deep/"] {
        ensure!(
            mounts["data"][m]["type"] == "database",
            "{m} missing after the split: {mounts}"
        );
        let path = format!("/v1/{m}roles/r");
        let role = expect(&client, "GET", &path, None, 200).await?;
        ensure!(role["data"]["db_name"] == "pg", "{path}: {role}");
    }
    node.stop();
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(node.sqlite_path())
        .connect()
        .await?;
    let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM kv WHERE key LIKE 'core/mounts%' ORDER BY key")
        .fetch_all(&mut conn)
        .await?;
    let expected: Vec<String> = rows.into_iter().map(|(k, _)| k).collect();
    ensure!(keys == expected, "after the split: {keys:?}, expected {expected:?}");
    Ok(())
}
