//! Performance replication's groundwork (issue 18), on real `warden server
//! -config` processes and throwaway PostgreSQL clusters: the storage table
//! keeps replicated rows (with their WAL index and leaf hash, computed by
//! PostgreSQL in the write) apart from local ones, and the status a primary
//! reports (last_wal, merkle_root) is what the rows say, checked here
//! independently; `primary/enable` refuses SQLite storage, a database
//! without `wal_level = logical`, and a login that may not publish, each
//! with a 400 that says why and nothing changed; the state survives a
//! restart; a table of the earlier two-column schema gets the new columns.

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::{Client, Scratch, TestPostgres};

const TABLE: &str = "warden_store";

fn storage_url(scratch: &Scratch) -> String {
    scratch
        .connection_url_template()
        .replace("{{username}}", &scratch.admin_user)
        .replace("{{password}}", &scratch.admin_password)
}

/// A node on `scratch`'s database, started, initialised and unsealed;
/// returns it with a root client and its unseal key.
async fn node_on(scratch: &Scratch) -> Result<(Node, Client, String)> {
    let mut node = Node::new(NodeStorage::Postgresql {
        url: storage_url(scratch),
        table: TABLE.into(),
    })?;
    node.start().await?;
    let (keys, root) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    let client = node.client(Some(&root));
    Ok((node, client, keys[0].clone()))
}

async fn performance_status(client: &Client) -> Result<Value> {
    Ok(client
        .expect("GET", "/v1/sys/replication/performance/status", None, 200)
        .await?["data"]
        .clone())
}

/// The root over the replicated rows, recomputed here from the rows
/// themselves: each leaf hash checked against sha256(key, 0, value), local
/// rows checked to carry none; returns (root, last index, replicated rows).
async fn recompute(scratch: &Scratch) -> Result<(String, i64, usize)> {
    let mut conn = scratch.superuser().await?;
    let rows = sqlx::query(&format!(
        "SELECT key, value, replicated, wal_index, leaf_hash FROM {TABLE} ORDER BY key COLLATE \"C\""
    ))
    .fetch_all(&mut conn)
    .await?;
    let mut root = Sha256::new();
    let (mut last, mut replicated_rows) = (0i64, 0usize);
    for row in rows {
        let key: String = row.get("key");
        let value: Vec<u8> = row.get("value");
        let replicated: bool = row.get("replicated");
        let index: Option<i64> = row.get("wal_index");
        let leaf: Option<Vec<u8>> = row.get("leaf_hash");
        if !replicated {
            ensure!(
                index.is_none() && leaf.is_none(),
                "local row {key} carries replication columns"
            );
            continue;
        }
        let mut h = Sha256::new();
        h.update(key.as_bytes());
        h.update([0u8]);
        h.update(&value);
        let expected = h.finalize().to_vec();
        ensure!(leaf.as_deref() == Some(expected.as_slice()), "leaf hash of {key}");
        let index = index.with_context(|| format!("replicated row {key} has no WAL index"))?;
        last = last.max(index);
        root.update(&expected);
        replicated_rows += 1;
    }
    Ok((hex::encode(root.finalize()), last, replicated_rows))
}

/// The class of one stored key.
async fn replicated(scratch: &Scratch, key: &str) -> Result<bool> {
    let mut conn = scratch.superuser().await?;
    Ok(
        sqlx::query_scalar::<_, bool>(&format!("SELECT replicated FROM {TABLE} WHERE key = $1"))
            .bind(key)
            .fetch_one(&mut conn)
            .await?,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_reports_what_its_replicated_rows_say() -> Result<()> {
    let pg = tokio::task::spawn_blocking(TestPostgres::start).await??;
    let scratch = pg.scratch("replication").await?;
    let (mut node, root, key) = node_on(&scratch).await?;
    let anon = node.client(None);

    // Disabled: Vault's shapes, without a token.
    let all = anon.expect("GET", "/v1/sys/replication/status", None, 200).await?;
    assert_eq!(
        all["data"],
        json!({"dr": {"mode": "disabled"}, "performance": {"mode": "disabled"}})
    );
    assert_eq!(performance_status(&anon).await?, json!({"mode": "disabled"}));
    let dr = anon.expect("GET", "/v1/sys/replication/dr/status", None, 200).await?;
    assert_eq!(dr["data"], json!({"mode": "disabled"}));

    // Enabling needs a token, and a login that may publish.
    anon.expect(
        "POST",
        "/v1/sys/replication/performance/primary/enable",
        Some(json!({})),
        403,
    )
    .await?;
    let refused = root
        .expect(
            "POST",
            "/v1/sys/replication/performance/primary/enable",
            Some(json!({})),
            400,
        )
        .await?;
    ensure!(
        refused["errors"].to_string().contains("REPLICATION and CREATEROLE"),
        "{refused}"
    );
    assert_eq!(performance_status(&anon).await?, json!({"mode": "disabled"}));
    sqlx::raw_sql(&format!("ALTER ROLE \"{}\" REPLICATION", scratch.admin_user))
        .execute(&mut scratch.superuser().await?)
        .await?;
    root.expect(
        "POST",
        "/v1/sys/replication/performance/primary/enable",
        Some(json!({"primary_cluster_addr": "https://primary.example:8201"})),
        204,
    )
    .await?;
    let again = root
        .expect(
            "POST",
            "/v1/sys/replication/performance/primary/enable",
            Some(json!({})),
            400,
        )
        .await?;
    ensure!(
        again["errors"].to_string().contains("already a performance primary"),
        "{again}"
    );

    // The status is what the rows say.
    let cluster_id = anon.expect("GET", "/v1/sys/seal-status", None, 200).await?["cluster_id"].clone();
    let status = performance_status(&anon).await?;
    assert_eq!(status["mode"], json!("primary"), "{status}");
    assert_eq!(status["cluster_id"], cluster_id, "{status}");
    assert_eq!(status["primary_cluster_addr"], json!("https://primary.example:8201"));
    assert_eq!(
        (status["known_secondaries"].clone(), status["secondaries"].clone()),
        (json!([]), json!([]))
    );
    let (root_hash, last, rows) = recompute(&scratch).await?;
    ensure!(rows > 0, "no replicated rows after the core started");
    assert_eq!(status["merkle_root"], json!(root_hash));
    assert_eq!(status["last_wal"], json!(last));

    // A replicated write (a mount) moves both; a local one (a token) moves
    // neither. The seal's keys, tokens and the replication state are local;
    // the mount table is replicated.
    root.expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let after_mount = performance_status(&anon).await?;
    ensure!(
        after_mount["last_wal"].as_i64() > status["last_wal"].as_i64(),
        "{after_mount}"
    );
    ensure!(after_mount["merkle_root"] != status["merkle_root"], "{after_mount}");
    let (root_hash, last, _) = recompute(&scratch).await?;
    assert_eq!(
        (after_mount["merkle_root"].clone(), after_mount["last_wal"].clone()),
        (json!(root_hash), json!(last))
    );
    root.expect(
        "POST",
        "/v1/auth/token/create",
        Some(json!({"policies": ["default"]})),
        200,
    )
    .await?;
    let after_token = performance_status(&anon).await?;
    assert_eq!(after_token, after_mount);
    for key in [
        "core/seal-config",
        "core/root-key",
        "core/keyring",
        "core/replication/state",
    ] {
        ensure!(!replicated(&scratch, key).await?, "{key} is replicated");
    }
    let mut conn = scratch.superuser().await?;
    let mounts: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {TABLE} WHERE key LIKE 'core/mounts/%' AND replicated"
    ))
    .fetch_one(&mut conn)
    .await?;
    ensure!(mounts >= 1, "the mount table is not replicated");
    let tokens: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {TABLE} WHERE key LIKE 'sys/token/%' AND replicated"
    ))
    .fetch_one(&mut conn)
    .await?;
    assert_eq!(tokens, 0, "tokens are local");

    // The state survives a restart; disable, once.
    node.stop();
    node.start().await?;
    node.unseal(&[&key]).await?;
    assert_eq!(performance_status(&anon).await?["mode"], json!("primary"));
    root.expect("POST", "/v1/sys/replication/performance/primary/disable", None, 204)
        .await?;
    assert_eq!(performance_status(&anon).await?, json!({"mode": "disabled"}));
    let twice = root
        .expect("POST", "/v1/sys/replication/performance/primary/disable", None, 400)
        .await?;
    ensure!(twice["errors"].to_string().contains("not enabled"), "{twice}");
    Ok(())
}

/// What cannot be a primary is refused with the reason, nothing changed:
/// SQLite storage, and a database with `wal_level = replica` (whose table,
/// made by the earlier two-column schema, gets the new columns at start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_a_primary_is_refused() -> Result<()> {
    let mut sqlite = Node::new(NodeStorage::Sqlite)?;
    sqlite.start().await?;
    let (keys, token) = sqlite.init(1, 1).await?;
    sqlite.unseal(&[&keys[0]]).await?;
    let refused = sqlite
        .client(Some(&token))
        .expect(
            "POST",
            "/v1/sys/replication/performance/primary/enable",
            Some(json!({})),
            400,
        )
        .await?;
    ensure!(
        refused["errors"].to_string().contains("needs PostgreSQL storage")
            && refused["errors"].to_string().contains("sqlite"),
        "{refused}"
    );
    assert_eq!(
        performance_status(&sqlite.client(None)).await?,
        json!({"mode": "disabled"})
    );

    let pg = tokio::task::spawn_blocking(|| TestPostgres::start_with_conf("wal_level = replica\n")).await??;
    let scratch = pg.scratch("replica").await?;
    let mut conn = scratch.superuser().await?;
    sqlx::raw_sql(&format!(
        "ALTER ROLE \"{}\" REPLICATION; \
         CREATE TABLE {TABLE} (key TEXT COLLATE \"C\" PRIMARY KEY, value BYTEA NOT NULL); \
         ALTER TABLE {TABLE} OWNER TO \"{}\"",
        scratch.admin_user, scratch.admin_user
    ))
    .execute(&mut conn)
    .await?;
    let (_node, root, _) = node_on(&scratch).await?;
    let refused = root
        .expect(
            "POST",
            "/v1/sys/replication/performance/primary/enable",
            Some(json!({})),
            400,
        )
        .await?;
    ensure!(
        refused["errors"].to_string().contains("wal_level = replica"),
        "{refused}"
    );
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
    )
    .bind(TABLE)
    .fetch_all(&mut conn)
    .await?;
    assert_eq!(columns, ["key", "value", "replicated", "wal_index", "leaf_hash"]);
    let (_, _, rows) = recompute(&scratch).await?;
    ensure!(rows > 0, "no replicated rows in the migrated table");
    Ok(())
}
