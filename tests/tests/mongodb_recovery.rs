//! Crash recovery of the legacy `mongodb` engine, in process (as
//! static_recovery.rs does for rotations): a core issues a user, its mount's
//! in-memory state is thrown away with write-ahead records left behind, and
//! a second core started on the same storage settles them. A record whose
//! lease was stored keeps its user; one without drops the user it names.
//! Against the real MongoDB-compatible server of the harness.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use warden::core::Core;
use warden::logical::{Operation, Response};
use warden::runtime::Runtime;
use warden::runtime::catalog;
use warden::storage::{MemoryBackend, Storage};
use warden_tests::in_process::start_core;
use warden_tests::util::random_alnum;
use warden_tests::{TestMongo, in_process};

const TOKEN: &str = "mongo-recovery-root";

async fn call(core: &Core, op: Operation, path: &str, data: Value) -> Result<Option<Response>> {
    in_process::call(core, TOKEN, op, path, data).await
}

async fn records(storage: &Storage, prefix: &str) -> Result<Vec<String>> {
    Ok(storage.list(prefix).await?)
}

#[tokio::test]
async fn a_user_created_before_a_crash_without_its_lease_is_dropped_at_start_up() -> Result<()> {
    let mongo = TestMongo::shared();
    let db = format!("rec_{}", random_alnum(6).to_lowercase());
    let runtime = Runtime::new(Duration::from_secs(30))?;
    catalog::register_builtins(&runtime);
    let storage: Storage = Arc::new(MemoryBackend::new());
    warden::core::token::store_root(storage.as_ref(), TOKEN).await?;

    let first = start_core(&storage, &runtime).await?;
    call(
        &first,
        Operation::Update,
        "sys/mounts/mongodb",
        json!({"type": "mongodb"}),
    )
    .await?;
    call(
        &first,
        Operation::Update,
        "mongodb/config/connection",
        json!({"url": mongo.admin_url()}),
    )
    .await?;
    call(
        &first,
        Operation::Update,
        "mongodb/roles/app",
        json!({"db": db, "roles": "[\"read\"]"}),
    )
    .await?;
    let mount = first.mount_for("mongodb/").context("mongodb/ mount")?;
    let pending = format!("logical/{}/wal/creds/", mount.record.uuid);

    // An ordinary issue: the user exists, its lease is stored, and the
    // write-ahead record is gone once the lease is (deleted in the background).
    let issued = call(&first, Operation::Read, "mongodb/creds/app", json!({}))
        .await?
        .context("creds")?;
    let lease_id = issued.lease.as_ref().context("a lease")?.lease_id.clone();
    let kept_user = issued.data.as_ref().context("data")?["username"]
        .as_str()
        .context("username")?
        .to_string();
    assert!(mongo.user_exists(&kept_user, &db).await?);
    for _ in 0..50 {
        if records(&storage, &pending).await?.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        records(&storage, &pending).await?.is_empty(),
        "the record outlived its lease"
    );

    // "Crash": a user created by a request whose lease was never stored,
    // and a record left next to a lease that was.
    let orphan = format!("vault-token-{}", random_alnum(12).to_lowercase());
    let admin = mongo.admin().await?;
    admin
        .database(&db)
        .run_command(mongodb::bson::doc! {
            "createUser": &orphan, "pwd": random_alnum(20), "roles": ["read"],
        })
        .await?;
    admin.shutdown().await;
    assert!(mongo.user_exists(&orphan, &db).await?);
    let write = |name: &str, record: Value| {
        let (storage, key) = (storage.clone(), format!("{pending}{name}"));
        async move {
            storage
                .put(&key, &serde_json::to_vec(&record)?)
                .await
                .map_err(anyhow::Error::from)
        }
    };
    write(
        "orphan",
        json!({"lease_id": "mongodb/creds/app/never-stored", "username": orphan, "db": db}),
    )
    .await?;
    write("leased", json!({"lease_id": lease_id, "username": kept_user, "db": db})).await?;
    mount.engine.unmount(&mount.view).await;
    drop(first);

    // Start-up settles both records (in the background: wait for it).
    let second = start_core(&storage, &runtime).await?;
    for _ in 0..300 {
        if records(&storage, &pending).await?.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !mongo.user_exists(&orphan, &db).await?,
        "the user without a lease was not rolled back"
    );
    assert!(
        mongo.user_exists(&kept_user, &db).await?,
        "the user with a lease was dropped"
    );
    assert!(records(&storage, &pending).await?.is_empty());
    let looked_up = call(
        &second,
        Operation::Update,
        "sys/leases/lookup",
        json!({"lease_id": lease_id}),
    )
    .await?;
    assert!(looked_up.is_some(), "the lease is still there");

    // The kept user is still revoked through its lease.
    call(
        &second,
        Operation::Update,
        "sys/leases/revoke",
        json!({"lease_id": lease_id}),
    )
    .await?;
    assert!(!mongo.user_exists(&kept_user, &db).await?);
    Ok(())
}
