//! Crash safety of issuing (issue 3): 8 clients issue credentials while the
//! server is killed with SIGKILL. After a restart every credential a client
//! received has its lease, no generated database role is left without a
//! lease (the write-ahead records of creations in flight are rolled back),
//! and revoke-prefix leaves no role behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use serde_json::json;
use tokio::sync::Mutex;
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::fixtures::postgres_config;
use warden_tests::{CREATE_ROLE, Creds, TestPostgres, keys_of};

const CLIENTS: usize = 8;

#[tokio::test]
async fn sigkill_while_issuing_leaves_no_role_without_a_lease() -> Result<()> {
    let scratch = TestPostgres::shared().scratch("crash").await?;
    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.start().await?;
    let (keys, root) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    let client = node.client(Some(&root));
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    client
        .expect("POST", "/v1/db/config/pg", Some(postgres_config(&scratch, &["*"])), 204)
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/roles/crash",
            Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE], "default_ttl": "1h"})),
            204,
        )
        .await?;

    let received: Arc<Mutex<Vec<Creds>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let client = node.client(Some(&root));
        let received = received.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // Errors are expected once the server is gone.
                if let Ok((200, body)) = client.req("GET", "/v1/db/creds/crash", None).await
                    && let Ok(c) = Creds::from_body(body)
                {
                    received.lock().await.push(c);
                }
            }
        }));
    }
    // Let the load run, then kill the server mid-flight.
    let started = Instant::now();
    while received.lock().await.len() < 150 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    let received = received.lock().await.clone();
    ensure!(
        received.len() >= 20,
        "only {} credentials before the kill",
        received.len()
    );

    node.start().await?;
    node.unseal(&[&keys[0]]).await?;

    // Every credential a client received has its lease.
    for c in &received {
        let (status, body) = client
            .req("PUT", "/v1/sys/leases/lookup", Some(json!({"lease_id": c.lease_id})))
            .await?;
        ensure!(status == 200, "a received credential lost its lease: {status} {body}");
    }
    // Every generated role has a lease: as many roles as leases (one user per
    // lease), and every received user among them. Crash recovery drops the
    // users whose lease was never stored in the background, so wait for it.
    let (status, body) = client.list("/v1/sys/leases/lookup/db/creds/crash/").await?;
    ensure!(status == 200, "{status} {body}");
    let leases = keys_of(&body)?;
    let mut roles = scratch.roles_like("v-token-crash-%").await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while roles.len() != leases.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        roles = scratch.roles_like("v-token-crash-%").await?;
    }
    ensure!(
        roles.len() == leases.len(),
        "{} generated roles but {} leases after the crash (received {})",
        roles.len(),
        leases.len(),
        received.len()
    );
    for c in &received {
        ensure!(roles.contains(&c.username), "received user {} is missing", c.username);
    }

    client
        .expect("PUT", "/v1/sys/leases/revoke-prefix/db/creds/crash", None, 204)
        .await?;
    let left = scratch.roles_like("v-token-crash-%").await?;
    ensure!(
        left.is_empty(),
        "revoke-prefix left {} roles: {:?}",
        left.len(),
        &left[..left.len().min(5)]
    );
    println!(
        "crash test: {} credentials received before SIGKILL, {} leases after restart",
        received.len(),
        leases.len()
    );
    Ok(())
}
