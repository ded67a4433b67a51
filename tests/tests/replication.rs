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
        refused["errors"].to_string().contains("must be a superuser"),
        "{refused}"
    );
    assert_eq!(performance_status(&anon).await?, json!({"mode": "disabled"}));
    // The harness's PostgreSQL is 15: only a superuser may create the
    // secondaries' replication logins (16 and later: REPLICATION and
    // CREATEROLE).
    sqlx::raw_sql(&format!("ALTER ROLE \"{}\" SUPERUSER", scratch.admin_user))
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
        "ALTER ROLE \"{}\" SUPERUSER; \
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

/// The subscriber's copy of the storage table: the same columns, key and
/// replica identity (what `secondary/enable` will create).
async fn subscriber_table(scratch: &Scratch) -> Result<()> {
    let mut conn = scratch.superuser().await?;
    sqlx::raw_sql(&format!(
        "CREATE TABLE {TABLE} (key TEXT COLLATE \"C\" PRIMARY KEY, value BYTEA NOT NULL, \
         replicated BOOLEAN NOT NULL DEFAULT false, wal_index BIGINT, leaf_hash BYTEA); \
         CREATE UNIQUE INDEX {TABLE}_identity ON {TABLE} (key, replicated); \
         ALTER TABLE {TABLE} REPLICA IDENTITY USING INDEX {TABLE}_identity"
    ))
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// The root the subscriber's rows make, by the same SQL the primary uses,
/// and how many of its rows are not replicated ones.
async fn subscriber_root(scratch: &Scratch) -> Result<(String, i64)> {
    let mut conn = scratch.superuser().await?;
    let root: String = sqlx::query_scalar(&format!(
        "SELECT encode(sha256(COALESCE(string_agg(leaf_hash, ''::bytea ORDER BY key), ''::bytea)), 'hex') \
         FROM {TABLE} WHERE replicated"
    ))
    .fetch_one(&mut conn)
    .await?;
    let local: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {TABLE} WHERE NOT replicated"))
        .fetch_one(&mut conn)
        .await?;
    Ok((root, local))
}

/// Wait until the subscriber's root is the primary's; the primary's root.
async fn in_sync(primary: &Client, subscriber: &Scratch, timeout: std::time::Duration) -> Result<bool> {
    warden_tests::eventually(timeout, || async {
        let want = performance_status(primary).await?["merkle_root"].clone();
        let (root, local) = subscriber_root(subscriber).await?;
        ensure!(local == 0, "local rows reached the subscriber");
        Ok(json!(root) == want)
    })
    .await
}

/// An activation token makes the secondary's publication and login and
/// wraps how to reach them; a real PostgreSQL subscription with what it
/// unwraps to receives the replicated rows (inserts, updates, deletes) and
/// no local one, while every kind of write on the primary keeps working;
/// revoke-secondary cuts the stream at once; bad requests change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activation_token_publishes_the_replicated_rows_and_revoke_cuts_them_off() -> Result<()> {
    let primary_pg = tokio::task::spawn_blocking(TestPostgres::start).await??;
    let scratch = primary_pg.scratch("primary").await?;
    sqlx::raw_sql(&format!("ALTER ROLE \"{}\" SUPERUSER", scratch.admin_user))
        .execute(&mut scratch.superuser().await?)
        .await?;
    let (node, root, _) = node_on(&scratch).await?;
    let anon = node.client(None);
    let token_path = "/v1/sys/replication/performance/primary/secondary-token";

    // Not a primary yet: refused.
    let refused = root
        .expect("POST", token_path, Some(json!({"id": "us-east"})), 400)
        .await?;
    ensure!(
        refused["errors"].to_string().contains("not a performance primary"),
        "{refused}"
    );
    root.expect(
        "POST",
        "/v1/sys/replication/performance/primary/enable",
        Some(json!({})),
        204,
    )
    .await?;
    // No id, a public key: refused, nothing made.
    root.expect("POST", token_path, Some(json!({})), 400).await?;
    let refused = root
        .expect(
            "POST",
            token_path,
            Some(json!({"id": "x", "secondary_public_key": "abc"})),
            400,
        )
        .await?;
    ensure!(
        refused["errors"].to_string().contains("secondary_public_key"),
        "{refused}"
    );
    anon.expect("POST", token_path, Some(json!({"id": "us-east"})), 403)
        .await?;
    assert_eq!(performance_status(&anon).await?["known_secondaries"], json!([]));

    // The token: wrap_info only.
    let issued = root
        .expect("POST", token_path, Some(json!({"id": "us-east", "ttl": "10m"})), 200)
        .await?;
    assert_eq!(issued["data"], Value::Null, "{issued}");
    assert_eq!(issued["wrap_info"]["ttl"], json!(600), "{issued}");
    let wrapping = issued["wrap_info"]["token"]
        .as_str()
        .context("wrapping token")?
        .to_string();
    let dup = root
        .expect("POST", token_path, Some(json!({"id": "us-east"})), 400)
        .await?;
    ensure!(dup["errors"].to_string().contains("already has a token"), "{dup}");

    // Unwrapped once, by whoever holds it.
    let unwrapper = node.client(Some(&wrapping));
    let activation = unwrapper.expect("POST", "/v1/sys/wrapping/unwrap", None, 200).await?["data"].clone();
    unwrapper.expect("POST", "/v1/sys/wrapping/unwrap", None, 403).await?;
    assert_eq!(activation["secondary_id"], json!("us-east"));
    let db = &activation["database"];
    let publication = db["publication"].as_str().context("publication")?.to_string();
    let login = db["user"].as_str().context("user")?.to_string();

    // A real subscription on another PostgreSQL with what it says.
    let secondary_pg = tokio::task::spawn_blocking(TestPostgres::start).await??;
    let subscriber = secondary_pg.scratch("secondary").await?;
    subscriber_table(&subscriber).await?;
    let connection = format!(
        "host={} port={} dbname={} user={} password={}",
        db["host"].as_str().unwrap_or_default(),
        db["port"],
        db["dbname"].as_str().unwrap_or_default(),
        login,
        db["password"].as_str().unwrap_or_default()
    );
    sqlx::raw_sql(&format!(
        "CREATE SUBSCRIPTION warden_sub CONNECTION '{connection}' PUBLICATION \"{publication}\" \
         WITH (slot_name = '{}', copy_data = true)",
        db["slot_name"].as_str().unwrap_or_default()
    ))
    .execute(&mut subscriber.superuser().await?)
    .await?;
    let wait = std::time::Duration::from_secs(20);
    ensure!(
        in_sync(&anon, &subscriber, wait).await?,
        "the initial copy did not arrive"
    );

    // Inserts, updates and deletes of replicated rows follow; local writes
    // (tokens, their revocation) keep working on the primary and stay there.
    let policy = |rules: &str| json!({"policy": format!("path \"secret/{rules}\" {{ capabilities = [\"read\"] }}")});
    root.expect("PUT", "/v1/sys/policies/acl/app", Some(policy("a")), 204)
        .await?;
    ensure!(in_sync(&anon, &subscriber, wait).await?, "an insert did not arrive");
    root.expect("PUT", "/v1/sys/policies/acl/app", Some(policy("b")), 204)
        .await?;
    ensure!(in_sync(&anon, &subscriber, wait).await?, "an update did not arrive");
    root.expect("DELETE", "/v1/sys/policies/acl/app", None, 204).await?;
    ensure!(in_sync(&anon, &subscriber, wait).await?, "a delete did not arrive");
    let child = root
        .expect(
            "POST",
            "/v1/auth/token/create",
            Some(json!({"policies": ["default"]})),
            200,
        )
        .await?["auth"]["client_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    node.client(Some(&child))
        .expect("POST", "/v1/auth/token/revoke-self", None, 204)
        .await?;
    ensure!(
        in_sync(&anon, &subscriber, wait).await?,
        "out of sync after local writes"
    );

    // The primary sees its secondary streaming.
    let status = performance_status(&anon).await?;
    assert_eq!(status["known_secondaries"], json!(["us-east"]), "{status}");
    assert_eq!(status["secondaries"][0]["node_id"], json!("us-east"), "{status}");
    assert_eq!(
        status["secondaries"][0]["connection_status"],
        json!("connected"),
        "{status}"
    );

    // Revoked: the publication, the login and the slot are gone, and later
    // writes do not arrive.
    root.expect(
        "POST",
        "/v1/sys/replication/performance/primary/revoke-secondary",
        Some(json!({"id": "us-east"})),
        204,
    )
    .await?;
    let mut conn = scratch.superuser().await?;
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM pg_publication WHERE pubname = $1) \
              + (SELECT count(*) FROM pg_roles WHERE rolname = $2) \
              + (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)",
    )
    .bind(&publication)
    .bind(&login)
    .fetch_one(&mut conn)
    .await?;
    assert_eq!(left, 0, "the secondary's publication, login or slot is left");
    root.expect("PUT", "/v1/sys/policies/acl/after", Some(policy("c")), 204)
        .await?;
    ensure!(
        !in_sync(&anon, &subscriber, std::time::Duration::from_secs(3)).await?,
        "a revoked secondary still receives writes"
    );
    assert_eq!(performance_status(&anon).await?["known_secondaries"], json!([]));
    root.expect(
        "POST",
        "/v1/sys/replication/performance/primary/revoke-secondary",
        Some(json!({"id": "us-east"})),
        400,
    )
    .await?;

    // Disabling the primary cuts every secondary off too.
    root.expect("POST", token_path, Some(json!({"id": "eu-west"})), 200)
        .await?;
    root.expect("POST", "/v1/sys/replication/performance/primary/disable", None, 204)
        .await?;
    let publications: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_publication")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(publications, 0);
    // The subscriber would retry a login that is gone: stop it.
    sqlx::raw_sql(
        "ALTER SUBSCRIPTION warden_sub DISABLE; ALTER SUBSCRIPTION warden_sub SET (slot_name = NONE); \
         DROP SUBSCRIPTION warden_sub",
    )
    .execute(&mut subscriber.superuser().await?)
    .await?;
    Ok(())
}
