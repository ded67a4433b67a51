//! Crash recovery of rotations, in process: a core runs on a storage, its
//! mount's in-memory state is thrown away (as a crash would) with a
//! write-ahead record left behind, and a second core started on the same
//! storage must finish the job. The server binary has no persistent storage
//! yet, so this drives `Core` directly; with persistence, the same checks
//! apply to a killed and restarted `warden server`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sqlx::Connection;
use warden::core::Core;
use warden::logical::Operation;
use warden::runtime::Runtime;
use warden::runtime::catalog;
use warden::storage::{MemoryBackend, Storage};
use warden_tests::in_process::start_core;
use warden_tests::{TestPostgres, in_process};

const TOKEN: &str = "recovery-root";

async fn call(core: &Core, op: Operation, path: &str, data: Value) -> Result<Option<Value>> {
    Ok(in_process::call(core, TOKEN, op, path, data)
        .await?
        .and_then(|r| r.data))
}

async fn put_json(storage: &Storage, key: &str, value: &Value) -> Result<()> {
    storage.put(key, &serde_json::to_vec(value)?).await?;
    Ok(())
}

async fn get_json(storage: &Storage, key: &str) -> Result<Option<Value>> {
    Ok(match storage.get(key).await? {
        Some(bytes) => Some(serde_json::from_slice(&bytes)?),
        None => None,
    })
}

#[tokio::test]
async fn interrupted_rotations_are_finished_or_undone_at_start_up() -> Result<()> {
    let scratch = TestPostgres::shared().scratch("recovery").await?;
    let runtime = Runtime::new(Duration::from_secs(30))?;
    catalog::register_builtins(&runtime);
    let storage: Storage = Arc::new(MemoryBackend::new());

    // A static user for the role, created by the admin.
    let user = format!("st_rec_{}", warden_tests::util::random_alnum(6).to_lowercase());
    let late_user = format!("{user}_late");
    let gated_user = format!("{user}_gated");
    let mut admin = scratch.connect_as(&scratch.admin_user, &scratch.admin_password).await?;
    // Rotations of the gated role fail while the gate table is empty.
    sqlx::raw_sql("CREATE TABLE rotation_gate (open int); INSERT INTO rotation_gate VALUES (1)")
        .execute(&mut admin)
        .await?;
    for u in [&user, &late_user, &gated_user] {
        sqlx::raw_sql(&format!("CREATE ROLE \"{u}\" WITH LOGIN PASSWORD 'initial'"))
            .execute(&mut admin)
            .await?;
    }
    admin.close().await.ok();

    // What sys/init leaves for the core: the root token's hash.
    warden::core::token::store_root(storage.as_ref(), TOKEN).await?;
    let first = start_core(&storage, &runtime).await?;
    call(&first, Operation::Update, "sys/mounts/db", json!({"type": "database"})).await?;
    call(
        &first,
        Operation::Update,
        "db/config/pg",
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": scratch.connection_url_template(),
            "username": scratch.admin_user,
            "password": scratch.admin_password,
            "allowed_roles": ["*"],
        }),
    )
    .await?;
    call(
        &first,
        Operation::Update,
        "db/static-roles/app",
        json!({"db_name": "pg", "username": user, "rotation_period": "1h"}),
    )
    .await?;
    call(
        &first,
        Operation::Update,
        "db/static-roles/late",
        json!({"db_name": "pg", "username": late_user, "rotation_period": "1h"}),
    )
    .await?;
    call(
        &first,
        Operation::Update,
        "db/static-roles/gated",
        json!({
            "db_name": "pg", "username": gated_user, "rotation_period": "1h",
            "rotation_statements": [
                "ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}'",
                "SELECT 1 / count(*) FROM rotation_gate",
            ],
        }),
    )
    .await?;
    let gated_before = call(&first, Operation::Read, "db/static-creds/gated", json!({}))
        .await?
        .context("static-creds gated")?;
    let late_before = call(&first, Operation::Read, "db/static-creds/late", json!({}))
        .await?
        .context("static-creds late")?;

    // "Crash": stop the mount's background work; keep only the storage.
    let mount = first.mount_for("db/").context("db/ mount")?;
    mount.engine.unmount(&mount.view).await;
    let base = format!("logical/{}/", mount.record.uuid);

    // A static rotation that recorded its password and crashed (the
    // database may or may not have it: here it does not).
    put_json(
        &storage,
        &format!("{base}wal/static/app"),
        &json!({"username": user, "password": "rolled-forward-pw", "created": chrono::Utc::now()}),
    )
    .await?;
    // The same for the gated role, whose roll-forward will fail: the
    // recorded password is then dropped and a new one generated.
    put_json(
        &storage,
        &format!("{base}wal/static/gated"),
        &json!({"username": gated_user, "password": "gated-wal-pw", "created": chrono::Utc::now()}),
    )
    .await?;
    let mut admin = scratch.connect_as(&scratch.admin_user, &scratch.admin_password).await?;
    sqlx::raw_sql("DELETE FROM rotation_gate").execute(&mut admin).await?;
    admin.close().await.ok();
    // A rotate-root that changed the database and crashed before storing
    // the new password.
    let new_root = "new-root-password-from-the-crash";
    let mut su = scratch.superuser().await?;
    sqlx::raw_sql(&format!(
        "ALTER ROLE \"{}\" WITH PASSWORD '{new_root}'",
        scratch.admin_user
    ))
    .execute(&mut su)
    .await?;
    su.close().await.ok();
    put_json(
        &storage,
        &format!("{base}wal/root/pg"),
        &json!({
            "username": scratch.admin_user,
            "old_password": scratch.admin_password,
            "new_password": new_root,
            "created": chrono::Utc::now(),
        }),
    )
    .await?;
    // A rotation that fell due while the server was down.
    let late_key = format!("{base}static-role/late");
    let mut late = get_json(&storage, &late_key).await?.context("late role")?;
    late["next_vault_rotation"] = json!(chrono::Utc::now() - chrono::Duration::minutes(5));
    put_json(&storage, &late_key, &late).await?;

    let second = start_core(&storage, &runtime).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut wals = storage.list(&format!("{base}wal/root/")).await?.len();
        if storage.get(&format!("{base}wal/static/app")).await?.is_some() {
            wals += 1;
        }
        let gated_wal = get_json(&storage, &format!("{base}wal/static/gated")).await?;
        if gated_wal.is_some_and(|w| w["password"] == json!("gated-wal-pw")) {
            wals += 1;
        }
        let late_now = call(&second, Operation::Read, "db/static-creds/late", json!({})).await?;
        if wals == 0 && late_now.is_some_and(|l| l["password"] != late_before["password"]) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("recovery did not finish in 30 s ({wals} write-ahead records left)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // rotate-root rolled back: the old password works again and is stored.
    assert!(scratch.logs_in(&scratch.admin_user, &scratch.admin_password).await);
    assert!(!scratch.logs_in(&scratch.admin_user, new_root).await);
    let config = get_json(&storage, &format!("{base}config/pg"))
        .await?
        .context("config")?;
    assert_eq!(config["connection_details"]["password"], json!(scratch.admin_password));

    // The static rotation rolled forward with the recorded password.
    let creds = call(&second, Operation::Read, "db/static-creds/app", json!({}))
        .await?
        .context("static-creds app")?;
    assert_eq!(creds["password"], json!("rolled-forward-pw"));
    assert!(scratch.logs_in(&user, "rolled-forward-pw").await);

    // The overdue one rotated at start-up, and its new password works.
    let late_now = call(&second, Operation::Read, "db/static-creds/late", json!({}))
        .await?
        .context("static-creds late")?;
    let password = late_now["password"].as_str().context("password")?;
    assert!(scratch.logs_in(&late_user, password).await);

    // The gated role's roll-forward failed once: its last password stays,
    // and once the gate opens a new password (not the recorded one) is set.
    let gated_now = call(&second, Operation::Read, "db/static-creds/gated", json!({}))
        .await?
        .context("static-creds gated")?;
    assert_eq!(gated_now["password"], gated_before["password"]);
    let mut admin = scratch.connect_as(&scratch.admin_user, &scratch.admin_password).await?;
    sqlx::raw_sql("INSERT INTO rotation_gate VALUES (1)")
        .execute(&mut admin)
        .await?;
    admin.close().await.ok();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let gated_after = loop {
        let now = call(&second, Operation::Read, "db/static-creds/gated", json!({}))
            .await?
            .context("static-creds gated")?;
        if now["password"] != gated_before["password"] {
            break now;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the gated role did not rotate within 40 s of the gate opening");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let password = gated_after["password"].as_str().context("password")?;
    assert_ne!(password, "gated-wal-pw");
    assert!(scratch.logs_in(&gated_user, password).await);
    assert!(!scratch.logs_in(&gated_user, "gated-wal-pw").await);

    // The engine works after all this.
    call(&second, Operation::Update, "db/rotate-role/app", json!({})).await?;
    let rotated = call(&second, Operation::Read, "db/static-creds/app", json!({}))
        .await?
        .context("static-creds app")?;
    assert!(
        scratch
            .logs_in(&user, rotated["password"].as_str().unwrap_or_default())
            .await
    );
    Ok(())
}
