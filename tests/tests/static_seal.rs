//! Auto-unseal with OpenBao's `seal "static"` stanza, on real `warden
//! server -config` processes: the node unseals itself at start and right
//! after init; the real bao CLI initialises it with recovery keys, which
//! then unseal a node sealed by hand and generate a root token, while wrong
//! shares are refused; the key rotates (current + previous, then the
//! previous dropped), and a key that does not open the storage, a missing
//! stanza, or Shamir storage under a static seal stop start-up with a clear
//! message that never shows the key. With HA on PostgreSQL, every node of
//! a cluster unseals itself, including one that saw another initialise the
//! storage and one restarted after kill -9.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::Rng;
use serde_json::{Value, json};
use warden_tests::Client;
use warden_tests::bao::{Bao, ensure_bao};
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::ha::{HaCluster, Role};
use warden_tests::postgres::TestPostgres;

fn random_key() -> [u8; 32] {
    rand::rng().random()
}

/// A `seal "static"` stanza: current key (and previous) by source.
fn stanza(current_id: &str, current: &str, previous: Option<(&str, &str)>) -> String {
    let mut s = format!("seal \"static\" {{\n  current_key_id = \"{current_id}\"\n  current_key = \"{current}\"\n");
    if let Some((id, key)) = previous {
        s.push_str(&format!("  previous_key_id = \"{id}\"\n  previous_key = \"{key}\"\n"));
    }
    s.push_str("}\n");
    s
}

fn file_source(path: &Path) -> String {
    format!("file://{}", path.display())
}

async fn seal_status(client: &Client) -> Result<Value> {
    client.expect("GET", "/v1/sys/seal-status", None, 200).await
}

/// The error list of a body, as one string.
fn errors(body: &Value) -> String {
    body["errors"].to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Init through the real CLI (recovery shares by its defaults, 5 and 3),
/// restarts that need nobody, a seal by hand undone by recovery shares,
/// root token generation from recovery shares, and what is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_seal_unseals_at_start_and_recovery_keys_authorise() -> Result<()> {
    let bin = tokio::task::spawn_blocking(ensure_bao).await??;
    let mut node = Node::new(NodeStorage::Sqlite)?;
    let key = random_key();
    let key_file = node.dir.path().join("unseal.key");
    std::fs::write(&key_file, key)?;
    node.extra_config = stanza("20261207-1", &file_source(&key_file), None);
    node.start().await?;
    let anon = node.client(None);

    // Before init the seal is already a recovery seal (the CLI reads it).
    let status = seal_status(&anon).await?;
    assert_eq!(
        (&status["type"], &status["recovery_seal"], &status["initialized"]),
        (&json!("static"), &json!(true), &json!(false)),
        "{status}"
    );

    // The real CLI's init: recovery keys, no unseal keys, and unsealed at
    // once.
    let url = node.url();
    let init = {
        let bin = bin.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || -> Result<Value> {
            let bao = Bao::new(&bin, &url)?;
            let run = bao.expect(&["operator", "init", "-format=json"], 0)?;
            Ok(serde_json::from_str(&run.stdout)?)
        })
        .await??
    };
    let recovery = strings(&init["recovery_keys_b64"]);
    ensure!(recovery.len() == 5, "recovery keys: {init}");
    ensure!(strings(&init["unseal_keys_b64"]).is_empty(), "unseal keys: {init}");
    assert_eq!(init["recovery_keys_threshold"], json!(3), "{init}");
    let root = init["root_token"].as_str().unwrap_or_default().to_string();
    let status = seal_status(&anon).await?;
    assert_eq!(
        (&status["sealed"], &status["t"], &status["n"], &status["type"]),
        (&json!(false), &json!(3), &json!(5), &json!("static")),
        "{status}"
    );
    let admin = node.client(Some(&root));
    admin
        .expect(
            "PUT",
            "/v1/sys/policies/acl/kept",
            Some(json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"})),
            204,
        )
        .await?;

    // Rekeying the root key is not a static seal's business.
    let rekey = anon
        .expect(
            "PUT",
            "/v1/sys/rekey/init",
            Some(json!({"secret_shares": 3, "secret_threshold": 2})),
            400,
        )
        .await?;
    ensure!(errors(&rekey).contains("static seal"), "{rekey}");

    // A restart and a kill -9: unsealed with nobody at the console.
    node.stop();
    node.start().await?;
    assert_eq!(seal_status(&anon).await?["sealed"], json!(false));
    node.kill();
    node.start().await?;
    assert_eq!(seal_status(&anon).await?["sealed"], json!(false));
    admin.expect("GET", "/v1/sys/policies/acl/kept", None, 200).await?;

    // Sealed by hand: it stays sealed (no auto-unseal), and three shares
    // of another recovery key are refused.
    admin.expect("PUT", "/v1/sys/seal", None, 204).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = seal_status(&anon).await?;
    assert_eq!((&status["sealed"], &status["t"]), (&json!(true), &json!(3)), "{status}");
    let strangers: Vec<String> = (0..3)
        .map(|i| {
            let mut share = random_key().to_vec();
            share.push(i + 1);
            B64.encode(share)
        })
        .collect();
    for share in &strangers[..2] {
        anon.expect("PUT", "/v1/sys/unseal", Some(json!({"key": share})), 200)
            .await?;
    }
    let refused = anon
        .expect("PUT", "/v1/sys/unseal", Some(json!({"key": strangers[2]})), 400)
        .await?;
    ensure!(
        errors(&refused).contains("recovery key verification failed"),
        "{refused}"
    );
    assert_eq!(seal_status(&anon).await?["sealed"], json!(true));

    // The CLI unseals it with three recovery shares.
    {
        let (bin, url, shares) = (bin.clone(), url.clone(), recovery.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            let bao = Bao::new(&bin, &url)?;
            for share in &shares[1..4] {
                bao.expect(&["operator", "unseal", share], 0)?;
            }
            let status = bao.expect(&["status", "-format=json"], 0)?;
            let status: Value = serde_json::from_str(&status.stdout)?;
            ensure!(status["sealed"] == json!(false), "{status}");
            ensure!(status["type"] == json!("static"), "{status}");
            Ok(())
        })
        .await??;
    }
    admin.expect("GET", "/v1/sys/policies/acl/kept", None, 200).await?;

    // Root token generation: the unauthenticated API refuses other shares,
    // the CLI's authenticated flow takes three recovery shares.
    let started = anon
        .expect("PUT", "/v1/sys/generate-root/attempt", Some(json!({})), 200)
        .await?;
    assert_eq!(started["required"], json!(3), "{started}");
    let nonce = started["nonce"].as_str().unwrap_or_default().to_string();
    for share in &strangers[..2] {
        anon.expect(
            "PUT",
            "/v1/sys/generate-root/update",
            Some(json!({"key": share, "nonce": nonce})),
            200,
        )
        .await?;
    }
    let refused = anon
        .expect(
            "PUT",
            "/v1/sys/generate-root/update",
            Some(json!({"key": strangers[2], "nonce": nonce})),
            400,
        )
        .await?;
    ensure!(
        errors(&refused).contains("recovery key verification failed"),
        "{refused}"
    );
    anon.expect("DELETE", "/v1/sys/generate-root/attempt", None, 204)
        .await?;
    let from_cli = {
        let (bin, url, shares, token) = (bin.clone(), url.clone(), recovery.clone(), root.clone());
        tokio::task::spawn_blocking(move || -> Result<String> {
            let mut bao = Bao::new(&bin, &url)?;
            bao.token = Some(token);
            bao.generate_root(&shares[2..5])
        })
        .await??
    };
    let me = node
        .client(Some(&from_cli))
        .expect("GET", "/v1/auth/token/lookup-self", None, 200)
        .await?;
    assert_eq!(me["data"]["policies"], json!(["root"]), "{me}");

    // No key material in the server's output.
    node.stop();
    let log = std::fs::read_dir(node.dir.path())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    ensure!(log.contains("unsealed with the static seal"), "{log}");
    for secret in [hex::encode(key), B64.encode(key)]
        .into_iter()
        .chain(recovery.iter().cloned())
    {
        ensure!(!log.contains(&secret), "key material in the log");
    }
    Ok(())
}

/// Rotation: the new key current and the old previous reseals the stored
/// keys, after which the old key can go; keys that do not open the storage,
/// a missing stanza, and Shamir storage under a static seal stop start-up
/// and say why, without the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_key_rotates_and_wrong_keys_stop_start_up() -> Result<()> {
    let mut node = Node::new(NodeStorage::Sqlite)?;
    let (old, new) = (random_key(), random_key());
    node.env.push(("WARDEN_TEST_OLD_KEY".into(), B64.encode(old)));
    node.extra_config = stanza("k1", "env://WARDEN_TEST_OLD_KEY", None);
    node.start().await?;
    let anon = node.client(None);

    // A bad recovery configuration is refused, and nothing is written.
    let bad = anon
        .expect(
            "PUT",
            "/v1/sys/init",
            Some(json!({"secret_shares": 0, "secret_threshold": 0, "recovery_shares": 3, "recovery_threshold": 4})),
            400,
        )
        .await?;
    ensure!(errors(&bad).contains("invalid recovery configuration"), "{bad}");
    assert_eq!(seal_status(&anon).await?["initialized"], json!(false));

    // Init over HTTP with one recovery share; secret_* are ignored.
    let init = anon
        .expect(
            "PUT",
            "/v1/sys/init",
            Some(json!({"secret_shares": 5, "secret_threshold": 3, "recovery_shares": 1, "recovery_threshold": 1})),
            200,
        )
        .await?;
    assert_eq!(init["keys"], json!([]), "{init}");
    assert_eq!(strings(&init["recovery_keys_base64"]).len(), 1, "{init}");
    let root = init["root_token"].as_str().unwrap_or_default().to_string();
    let admin = node.client(Some(&root));
    admin
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    let again = anon
        .expect(
            "PUT",
            "/v1/sys/init",
            Some(json!({"secret_shares": 0, "secret_threshold": 0, "recovery_shares": 1, "recovery_threshold": 1})),
            400,
        )
        .await?;
    ensure!(errors(&again).contains("already initialized"), "{again}");

    // Rotate: new key current (hex, in a file), old previous.
    let new_file = node.dir.path().join("new.key");
    std::fs::write(&new_file, format!("{}\n", hex::encode(new)))?;
    node.stop();
    node.extra_config = stanza("k2", &file_source(&new_file), Some(("k1", "env://WARDEN_TEST_OLD_KEY")));
    node.start().await?;
    assert_eq!(seal_status(&anon).await?["sealed"], json!(false));
    ensure!(
        node.log_tail().contains("sealed again under the current static key"),
        "{}",
        node.log_tail()
    );
    // The old key can go.
    node.stop();
    node.env.clear();
    node.extra_config = stanza("k2", &file_source(&new_file), None);
    node.start().await?;
    assert_eq!(seal_status(&anon).await?["sealed"], json!(false));
    admin.expect("GET", "/v1/sys/mounts/db/tune", None, 200).await?;
    node.stop();

    // The old key alone no longer opens it: start-up stops, naming ids.
    let config = node.dir.path().join("other.hcl");
    let old_file = node.dir.path().join("old.key");
    std::fs::write(&old_file, old)?;
    let base = node.config_text().replace(&node.extra_config, "");
    let refuse = |extra: String| -> Result<String> {
        std::fs::write(&config, format!("{base}{extra}"))?;
        node.start_expecting_failure(&config)
    };
    let out = refuse(stanza("k1", &file_source(&old_file), None))?;
    ensure!(
        out.contains("\"k2\"") && out.contains("neither current_key_id nor previous_key_id"),
        "{out}"
    );
    // The right id with the wrong key.
    let wrong = random_key();
    let out = refuse(stanza("k2", &B64.encode(wrong), None))?;
    ensure!(out.contains("message authentication failed"), "{out}");
    ensure!(!out.contains(&B64.encode(wrong)), "the key in the output");
    // A key that is no AES-256 key, and no stanza at all.
    let out = refuse(stanza("k2", "tooshort", None))?;
    ensure!(
        out.contains("a key of 8 characters") && !out.contains("tooshort"),
        "{out}"
    );
    let out = refuse(String::new())?;
    ensure!(out.contains("initialised with a static seal"), "{out}");

    // Shamir storage under a static seal: no silent migration.
    let mut shamir = Node::new(NodeStorage::Sqlite)?;
    shamir.start().await?;
    shamir.init(1, 1).await?;
    shamir.stop();
    let shamir_config = shamir.dir.path().join("static.hcl");
    std::fs::write(
        &shamir_config,
        format!(
            "{}{}",
            shamir.config_text(),
            stanza("k2", &file_source(&new_file), None)
        ),
    )?;
    let out = shamir.start_expecting_failure(&shamir_config)?;
    ensure!(out.contains("migrating between seals is not supported"), "{out}");
    Ok(())
}

/// Three HA nodes with one static key on a throwaway PostgreSQL: init
/// through one node (no recovery keys, as OpenBao allows) unseals every node
/// without a call, one becomes active, and the active node killed with -9
/// comes back as a standby by itself. Without recovery keys a node sealed
/// by hand says how to unseal it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_nodes_with_a_static_seal_unseal_themselves() -> Result<()> {
    let pg = TestPostgres::shared();
    let storage = pg.scratch("static_seal_ha").await?;
    let url = storage
        .connection_url_template()
        .replace("{{username}}", &storage.admin_user)
        .replace("{{password}}", &storage.admin_password);
    let key = hex::encode(random_key());
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let mut node = Node::new(NodeStorage::PostgresqlHa {
            url: url.clone(),
            table: "warden_store".into(),
            ha_table: "warden_ha".into(),
        })?;
        node.extra_config = stanza("ha-1", &key, None);
        node.start().await?;
        nodes.push(node);
    }
    let init = nodes[0]
        .client(None)
        .expect(
            "PUT",
            "/v1/sys/init",
            Some(json!({"secret_shares": 0, "secret_threshold": 0})),
            200,
        )
        .await?;
    ensure!(init.get("recovery_keys").is_none(), "{init}");
    let root = init["root_token"].as_str().context("root token")?.to_string();
    let mut cluster = HaCluster {
        nodes,
        keys: Vec::new(),
        root_token: root,
        storage,
    };
    let active = cluster.wait_active(Duration::from_secs(20)).await?;
    wait_roles(&cluster, 2, Duration::from_secs(20)).await?;
    cluster
        .client((active + 1) % 3)
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;

    // kill -9 of the active node: another takes over, and the killed one
    // comes back a standby with nobody unsealing it.
    cluster.kill(active);
    let next = cluster.wait_active(Duration::from_secs(20)).await?;
    cluster.nodes[active].start().await?;
    wait_roles(&cluster, 2, Duration::from_secs(20)).await?;
    ensure!(
        cluster.role(active).await == Role::Standby,
        "{:?}",
        cluster.roles().await
    );
    cluster
        .client(active)
        .expect("GET", "/v1/sys/mounts/db/tune", None, 200)
        .await?;

    // The active node sealed by hand, without recovery keys: a standby
    // takes over, and the sealed node stays sealed (the election loop does
    // not unseal it again) and says how to unseal it.
    cluster.client(next).expect("PUT", "/v1/sys/seal", None, 204).await?;
    let after = cluster.wait_active(Duration::from_secs(20)).await?;
    ensure!(after != next, "the sealed node is active");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure!(cluster.role(next).await == Role::Sealed, "{:?}", cluster.roles().await);
    let refused = cluster.nodes[next]
        .client(None)
        .expect(
            "PUT",
            "/v1/sys/unseal",
            Some(json!({"key": B64.encode(random_key())})),
            400,
        )
        .await?;
    ensure!(errors(&refused).contains("no recovery keys"), "{refused}");
    Ok(())
}

/// Wait until `n` nodes are standbys.
async fn wait_roles(cluster: &HaCluster, n: usize, timeout: Duration) -> Result<()> {
    let began = std::time::Instant::now();
    loop {
        let roles = cluster.roles().await;
        if roles.iter().filter(|r| **r == Role::Standby).count() == n {
            return Ok(());
        }
        ensure!(
            began.elapsed() < timeout,
            "not {n} standbys after {timeout:?}: {roles:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
