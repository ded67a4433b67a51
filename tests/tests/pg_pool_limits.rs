//! The host's PostgreSQL pools honour max_open_connections,
//! max_idle_connections and max_connection_lifetime, as seen from the
//! server's pg_stat_activity (the MySQL side is in mysql.rs).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use sqlx::{Connection, Row};
use warden_tests::{DbEnv, Scratch, ServerOptions};

async fn sessions(scratch: &Scratch) -> Result<BTreeSet<i32>> {
    let mut conn = scratch.superuser().await?;
    let rows = sqlx::query("SELECT pid FROM pg_stat_activity WHERE usename = $1")
        .bind(&scratch.admin_user)
        .fetch_all(&mut conn)
        .await?;
    conn.close().await.ok();
    rows.iter()
        .map(|r| r.try_get::<i32, _>(0).map_err(Into::into))
        .collect()
}

async fn load(env: &DbEnv) -> Result<()> {
    for _ in 0..3 {
        let batch: Vec<_> = (0..8).map(|_| env.creds("app")).collect();
        for creds in futures::future::join_all(batch).await {
            creds?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn pools_honour_max_open_idle_and_lifetime() -> Result<()> {
    let env = DbEnv::start_with(
        "pgpools",
        &["app"],
        ServerOptions::default(),
        json!({"max_open_connections": 3, "max_idle_connections": 1, "max_connection_lifetime": "3s"}),
    )
    .await?;
    env.write_role("app", json!({})).await?;
    // A connection the pool closed (past max_idle) has its slot back once
    // the client side is closed, but its backend leaves pg_stat_activity a
    // moment later; on a busy machine a sample can catch it beside the
    // connection that took the slot. So a session counts only if it is in
    // two samples in a row, 20 ms apart: a connection the pool holds is.
    let sampler = {
        let scratch = env.scratch.clone();
        tokio::spawn(async move {
            let (mut most, mut last) = (0, BTreeSet::new());
            for _ in 0..100 {
                let now = sessions(&scratch).await.unwrap_or_default();
                most = most.max(now.intersection(&last).count());
                last = now;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            most
        })
    };
    load(&env).await?;
    let most = sampler.await?;
    assert!((1..=3).contains(&most), "max_open_connections 3, saw {most} sessions");
    // A closed connection's backend exits a moment later (longer on a busy
    // machine).
    let mut at_rest = sessions(&env.scratch).await?;
    for _ in 0..80 {
        if at_rest.len() <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        at_rest = sessions(&env.scratch).await?;
    }
    assert!(
        at_rest.len() <= 1,
        "max_idle_connections 1, {} sessions at rest",
        at_rest.len()
    );

    tokio::time::sleep(Duration::from_secs(4)).await;
    env.creds("app").await?;
    let mut now = sessions(&env.scratch).await?;
    for _ in 0..20 {
        if at_rest.is_disjoint(&now) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = sessions(&env.scratch).await?;
    }
    assert!(
        at_rest.is_disjoint(&now),
        "sessions older than 3s still used: {at_rest:?} then {now:?}"
    );
    Ok(())
}

#[tokio::test]
async fn without_an_idle_cap_the_pool_keeps_its_connections() -> Result<()> {
    let env = DbEnv::start_with(
        "pgpoolsdefault",
        &["app"],
        ServerOptions::default(),
        json!({"max_open_connections": 3}),
    )
    .await?;
    env.write_role("app", json!({})).await?;
    load(&env).await?;
    let kept = sessions(&env.scratch).await?.len();
    assert!(
        (2..=3).contains(&kept),
        "expected the pool to keep 2-3 sessions, saw {kept}"
    );
    Ok(())
}
