//! The node's operator endpoints over HTTP, as Vault answers them, on a real
//! `warden server -config` (SQLite) through its whole life: `sys/health`'s
//! query parameters and HEAD, `sys/leader` on a single node, `sys/init` with
//! what the CLI sends, `sys/rotate/keyring` and `sys/key-status`, and the
//! rekey flow (`sys/rekey/init|update|verify`) with and without
//! verification: the new shares unseal after a seal and a restart, the old
//! ones no longer do, and the data behind the barrier is untouched. Also the
//! request bodies Vault accepts (`null`, forms) and the plugin catalog's
//! shapes on a dev server.

use anyhow::{Result, ensure};
use serde_json::{Value, json};
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::{Client, WardenServer};

/// Status and raw body of a request (HEAD answers have none).
async fn raw(base: &str, method: &str, path: &str, token: Option<&str>) -> Result<(u16, Vec<u8>)> {
    let mut req = reqwest::Client::new().request(method.parse()?, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.bytes().await?.to_vec()))
}

async fn status_of(client: &Client, path: &str) -> Result<u16> {
    Ok(client.req("GET", path, None).await?.0)
}

/// The error list of a body, as one string.
fn errors(body: &Value) -> String {
    body["errors"].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_leader_init_and_head_through_the_seal_life_cycle() -> Result<()> {
    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.start().await?;
    let anon = node.client(None);
    let url = node.url();

    // Not initialised: 501 by default, the caller's code when asked.
    assert_eq!(status_of(&anon, "/v1/sys/health").await?, 501);
    assert_eq!(status_of(&anon, "/v1/sys/health?uninitcode=299").await?, 299);
    let (status, body) = raw(&url, "HEAD", "/v1/sys/health", None).await?;
    ensure!(status == 501 && body.is_empty(), "HEAD health: {status} {body:?}");
    // sys/leader answers before init too, and without a token.
    let leader = anon.expect("GET", "/v1/sys/leader", None, 200).await?;
    assert_eq!(leader["ha_enabled"], json!(false), "{leader}");

    // sys/init refuses real PGP and recovery keys (a Shamir seal) ...
    let refused = anon
        .expect(
            "PUT",
            "/v1/sys/init",
            Some(json!({"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["a2V5"]})),
            400,
        )
        .await?;
    ensure!(errors(&refused).contains("pgp_keys is not supported"), "{refused}");
    let refused = anon
        .expect(
            "PUT",
            "/v1/sys/init",
            Some(json!({"secret_shares": 1, "secret_threshold": 1, "recovery_shares": 3, "recovery_threshold": 2})),
            400,
        )
        .await?;
    assert_eq!(
        refused["errors"],
        json!(["parameters recovery_shares,recovery_threshold not applicable to seal type shamir"])
    );
    // ... and takes the CLI's body: empty PGP fields, zero recovery fields.
    let init = anon
        .expect(
            "PUT",
            "/v1/sys/init",
            Some(json!({
                "secret_shares": 5, "secret_threshold": 3, "stored_shares": 0,
                "pgp_keys": null, "root_token_pgp_key": "",
                "recovery_shares": 0, "recovery_threshold": 0, "recovery_pgp_keys": null,
            })),
            200,
        )
        .await?;
    let keys: Vec<String> = serde_json::from_value(init["keys"].clone())?;
    let root = init["root_token"].as_str().unwrap_or_default().to_string();
    ensure!(keys.len() == 5 && !root.is_empty(), "{init}");
    let client = node.client(Some(&root));

    // Sealed: 503, or the caller's code; the cluster is not named yet.
    let (status, health) = anon.req("GET", "/v1/sys/health", None).await?;
    ensure!(status == 503 && health.get("cluster_id").is_none(), "{status} {health}");
    assert_eq!(status_of(&anon, "/v1/sys/health?sealedcode=200").await?, 200);
    assert_eq!(raw(&url, "HEAD", "/v1/sys/health", None).await?.0, 503);
    // HEAD elsewhere meets the seal first, as a GET would.
    assert_eq!(raw(&url, "HEAD", "/v1/sys/mounts", Some(&root)).await?.0, 503);
    // `bao status` masks exactly this error while sealed.
    let leader = anon.expect("GET", "/v1/sys/leader", None, 200).await?;
    assert_eq!(leader["ha_enabled"], json!(false));

    node.unseal(&[&keys[0], &keys[1], &keys[2]]).await?;

    // Active: 200, or activecode; the bool and code parameters are checked.
    let (status, health) = anon.req("GET", "/v1/sys/health", None).await?;
    ensure!(status == 200 && health["cluster_id"].is_string(), "{status} {health}");
    assert_eq!(status_of(&anon, "/v1/sys/health?activecode=299").await?, 299);
    assert_eq!(
        status_of(&anon, "/v1/sys/health?standbyok=true&perfstandbyok=true").await?,
        200
    );
    // standbycode does not apply to an active node.
    assert_eq!(status_of(&anon, "/v1/sys/health?standbycode=299").await?, 200);
    for bad in [
        "activecode=abc",
        "standbyok=maybe",
        "sealedcode=42",
        "drsecondarycode=x",
    ] {
        let (status, body) = anon.req("GET", &format!("/v1/sys/health?{bad}"), None).await?;
        ensure!(status == 400 && body == json!({"errors": []}), "{bad}: {status} {body}");
    }
    let (status, body) = raw(&url, "HEAD", "/v1/sys/health?activecode=299", None).await?;
    ensure!(status == 299 && body.is_empty(), "HEAD: {status} {body:?}");
    assert_eq!(raw(&url, "HEAD", "/v1/sys/health?activecode=x", None).await?.0, 400);
    // HEAD on another path: the token first (403), then no such operation.
    let (status, body) = raw(&url, "HEAD", "/v1/sys/mounts", None).await?;
    ensure!(status == 403 && body.is_empty(), "{status} {body:?}");
    assert_eq!(raw(&url, "HEAD", "/v1/sys/mounts", Some(&root)).await?.0, 405);
    assert_eq!(raw(&url, "HEAD", "/v1/sys/seal-status", None).await?.0, 405);

    let leader = anon.expect("GET", "/v1/sys/leader", None, 200).await?;
    assert_eq!(
        leader,
        json!({
            "ha_enabled": false, "is_self": false, "active_time": "0001-01-01T00:00:00Z",
            "leader_address": "", "leader_cluster_address": "",
            "performance_standby": false, "performance_standby_last_remote_wal": 0,
        })
    );
    anon.expect("PUT", "/v1/sys/leader", Some(json!({})), 405).await?;

    // Keyring rotation under both names; key-status in Vault's shape.
    let before = client.expect("GET", "/v1/sys/key-status", None, 200).await?;
    client.expect("POST", "/v1/sys/rotate/keyring", None, 204).await?;
    client.expect("PUT", "/v1/sys/rotate", None, 204).await?;
    let after = client.expect("GET", "/v1/sys/key-status", None, 200).await?;
    assert_eq!(
        after["data"]["term"],
        json!(before["data"]["term"].as_u64().unwrap_or(0) + 2)
    );
    assert_eq!(after["term"], after["data"]["term"]);
    ensure!(after["data"]["install_time"].is_string() && after["data"]["encryptions"].is_number());
    anon.expect("POST", "/v1/sys/rotate/keyring", None, 403).await?;
    client.expect("GET", "/v1/sys/rotate/keyring", None, 405).await?;
    Ok(())
}

/// Rekey 5/3 to 3/2 without verification, then to 1/1 with it; after each,
/// a seal shows the old shares no longer open the node and the new ones do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekey_replaces_the_shares_and_keeps_the_data() -> Result<()> {
    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.start().await?;
    let anon = node.client(None);
    let (old, root) = node.init(5, 3).await?;
    node.unseal(&[&old[0], &old[1], &old[2]]).await?;
    let client = node.client(Some(&root));
    // Something behind the barrier to find again.
    client
        .expect(
            "POST",
            "/v1/sys/mounts/keep",
            Some(json!({"type": "database", "description": "kept"})),
            204,
        )
        .await?;

    // Nothing started.
    let status = anon.expect("GET", "/v1/sys/rekey/init", None, 200).await?;
    assert_eq!(
        status,
        json!({"nonce": "", "started": false, "t": 0, "n": 0, "progress": 0, "required": 3,
               "pgp_fingerprints": null, "backup": false, "verification_required": false})
    );
    let err = anon
        .expect(
            "PUT",
            "/v1/sys/rekey/update",
            Some(json!({"key": old[0], "nonce": "x"})),
            400,
        )
        .await?;
    assert_eq!(err["errors"], json!(["no barrier rekey in progress"]));
    anon.expect("GET", "/v1/sys/rekey/verify", None, 400).await?;

    // Refusals: bad shape, PGP, backup.
    for (body, text) in [
        (
            json!({"secret_shares": 2, "secret_threshold": 3}),
            "provided threshold greater than the total shares",
        ),
        (
            json!({"secret_shares": 3, "secret_threshold": 1}),
            "invalid rekey seal configuration: threshold must be greater than one for multiple shares",
        ),
        (
            json!({"secret_shares": 0, "secret_threshold": 0}),
            "invalid rekey seal configuration: shares must be at least one",
        ),
        (
            json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": ["a2V5", "a2V5", "a2V5"]}),
            "pgp_keys is not supported: Warden does not encrypt unseal keys with PGP",
        ),
        (
            json!({"secret_shares": 3, "secret_threshold": 2, "backup": true}),
            "cannot request a backup of the new keys without providing PGP keys for encryption",
        ),
    ] {
        let err = anon
            .expect("PUT", "/v1/sys/rekey/init", Some(body.clone()), 400)
            .await?;
        assert_eq!(err["errors"], json!([text]), "{body}");
    }

    // Start (what the CLI sends), cancel, start again.
    let cli_body = json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": null, "backup": false, "require_verification": false});
    let started = anon
        .expect("PUT", "/v1/sys/rekey/init", Some(cli_body.clone()), 200)
        .await?;
    ensure!(
        started["started"] == json!(true) && started["t"] == json!(2) && started["n"] == json!(3),
        "{started}"
    );
    anon.expect("DELETE", "/v1/sys/rekey/init", None, 204).await?;
    assert_eq!(
        anon.expect("GET", "/v1/sys/rekey/init", None, 200).await?["started"],
        json!(false)
    );
    let started = anon
        .expect("PUT", "/v1/sys/rekey/init", Some(cli_body.clone()), 200)
        .await?;
    let err = anon.expect("PUT", "/v1/sys/rekey/init", Some(cli_body), 400).await?;
    assert_eq!(err["errors"], json!(["rekey already in progress"]));
    let nonce = started["nonce"].as_str().unwrap_or_default().to_string();

    // Shares: a wrong nonce, a repeated share, progress, then the new keys.
    let err = anon
        .expect(
            "PUT",
            "/v1/sys/rekey/update",
            Some(json!({"key": old[0], "nonce": "nope"})),
            400,
        )
        .await?;
    ensure!(errors(&err).contains("incorrect nonce supplied"), "{err}");
    let update = |key: &str| json!({"key": key, "nonce": nonce});
    let progress = anon
        .expect("PUT", "/v1/sys/rekey/update", Some(update(&old[3])), 200)
        .await?;
    ensure!(
        progress["progress"] == json!(1) && progress["required"] == json!(3),
        "{progress}"
    );
    let err = anon
        .expect("PUT", "/v1/sys/rekey/update", Some(update(&old[3])), 400)
        .await?;
    assert_eq!(
        err["errors"],
        json!(["given key has already been provided during this generation operation"])
    );
    anon.expect("PUT", "/v1/sys/rekey/update", Some(update("zz")), 400)
        .await?;
    anon.expect("PUT", "/v1/sys/rekey/update", Some(update(&old[1])), 200)
        .await?;
    let done = anon
        .expect("PUT", "/v1/sys/rekey/update", Some(update(&old[4])), 200)
        .await?;
    ensure!(
        done["complete"] == json!(true) && done["nonce"] == json!(nonce),
        "{done}"
    );
    ensure!(
        done["verification_required"] == json!(false) && done.get("verification_nonce").is_none(),
        "{done}"
    );
    let new: Vec<String> = serde_json::from_value(done["keys"].clone())?;
    let new_b64: Vec<String> = serde_json::from_value(done["keys_base64"].clone())?;
    ensure!(new.len() == 3 && new_b64.len() == 3, "{done}");
    assert_eq!(
        anon.expect("GET", "/v1/sys/rekey/init", None, 200).await?["started"],
        json!(false)
    );
    let seal = anon.expect("GET", "/v1/sys/seal-status", None, 200).await?;
    ensure!(
        seal["t"] == json!(2) && seal["n"] == json!(3) && seal["sealed"] == json!(false),
        "{seal}"
    );

    // Sealed: the old shares fail, two new ones (one in base64) open it.
    client.expect("PUT", "/v1/sys/seal", None, 204).await?;
    anon.expect("GET", "/v1/sys/rekey/init", None, 503).await?;
    node.unseal(&[&old[0]]).await?;
    let wrong = anon.req("PUT", "/v1/sys/unseal", Some(json!({"key": old[1]}))).await?;
    ensure!(wrong.0 == 400, "two old shares unsealed a 2-of-3 node: {wrong:?}");
    let unsealed = node.unseal(&[&new[2], &new_b64[0]]).await?;
    ensure!(unsealed["sealed"] == json!(false), "{unsealed}");
    let mount = client.expect("GET", "/v1/sys/mounts/keep", None, 200).await?;
    assert_eq!(mount["data"]["description"], json!("kept"));

    // With verification, 1 share: handed out, not yet in force.
    let started = anon
        .expect(
            "PUT",
            "/v1/sys/rekey/init",
            Some(json!({"secret_shares": 1, "secret_threshold": 1, "require_verification": true})),
            200,
        )
        .await?;
    let nonce = started["nonce"].as_str().unwrap_or_default().to_string();
    anon.expect(
        "PUT",
        "/v1/sys/rekey/update",
        Some(json!({"key": new[0], "nonce": nonce})),
        200,
    )
    .await?;
    let done = anon
        .expect(
            "PUT",
            "/v1/sys/rekey/update",
            Some(json!({"key": new[1], "nonce": nonce})),
            200,
        )
        .await?;
    ensure!(done["verification_required"] == json!(true), "{done}");
    let single = done["keys"][0].as_str().unwrap_or_default().to_string();
    let vnonce = done["verification_nonce"].as_str().unwrap_or_default().to_string();
    ensure!(!single.is_empty() && !vnonce.is_empty(), "{done}");
    let status = anon.expect("GET", "/v1/sys/rekey/init", None, 200).await?;
    assert_eq!(status["verification_nonce"], json!(vnonce), "{status}");
    let err = anon
        .expect(
            "PUT",
            "/v1/sys/rekey/update",
            Some(json!({"key": new[2], "nonce": nonce})),
            400,
        )
        .await?;
    ensure!(errors(&err).contains("verification must be performed"), "{err}");
    let verify = anon.expect("GET", "/v1/sys/rekey/verify", None, 200).await?;
    assert_eq!(
        verify,
        json!({"nonce": vnonce, "started": true, "t": 1, "n": 1, "progress": 0})
    );
    // A wrong share fails the round and changes the nonce.
    let err = anon
        .expect(
            "PUT",
            "/v1/sys/rekey/verify",
            Some(json!({"key": new[0], "nonce": vnonce})),
            400,
        )
        .await?;
    assert_eq!(
        err["errors"],
        json!(["rekey verification failed; incorrect key shares supplied"])
    );
    let vnonce2 = anon.expect("GET", "/v1/sys/rekey/verify", None, 200).await?["nonce"].clone();
    ensure!(vnonce2 != json!(vnonce), "the nonce did not change");
    // DELETE restarts with yet another nonce.
    let restarted = anon.expect("DELETE", "/v1/sys/rekey/verify", None, 200).await?;
    ensure!(
        restarted["nonce"] != vnonce2 && restarted["progress"] == json!(0),
        "{restarted}"
    );
    let vnonce3 = restarted["nonce"].as_str().unwrap_or_default().to_string();
    // Until verified the 2-of-3 shares are in force.
    assert_eq!(
        anon.expect("GET", "/v1/sys/seal-status", None, 200).await?["t"],
        json!(2)
    );
    let verified = anon
        .expect(
            "PUT",
            "/v1/sys/rekey/verify",
            Some(json!({"key": single, "nonce": vnonce3})),
            200,
        )
        .await?;
    assert_eq!(verified, json!({"nonce": vnonce3, "complete": true}));
    let seal = anon.expect("GET", "/v1/sys/seal-status", None, 200).await?;
    ensure!(seal["t"] == json!(1) && seal["n"] == json!(1), "{seal}");

    // A restart: only the single new key opens it.
    node.stop();
    node.start().await?;
    let wrong = anon.req("PUT", "/v1/sys/unseal", Some(json!({"key": new[0]}))).await?;
    ensure!(wrong.0 == 400, "an old share unsealed after the rekey: {wrong:?}");
    let unsealed = node.unseal(&[&single]).await?;
    ensure!(unsealed["sealed"] == json!(false), "{unsealed}");
    let mount = client.expect("GET", "/v1/sys/mounts/keep", None, 200).await?;
    assert_eq!(mount["data"]["description"], json!("kept"));
    Ok(())
}

/// XOR an encoded token back with its OTP (what the CLI's `-decode` does).
fn decode_root(encoded: &str, otp: &str) -> Result<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded)?;
    ensure!(bytes.len() == otp.len(), "encoded token and OTP differ in length");
    Ok(String::from_utf8(
        bytes.iter().zip(otp.bytes()).map(|(t, o)| t ^ o).collect(),
    )?)
}

/// The root token life cycle: the initial root token is revoked, a new one
/// is generated from a threshold of unseal shares (Vault's unauthenticated
/// sys/generate-root, and the real bao CLI on OpenBao's authenticated
/// sys/generate-root-token), returned XORed with the OTP, and survives a
/// restart; wrong shares, nonces and OTPs are refused with nothing made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_root_token_is_regenerated_from_unseal_shares() -> Result<()> {
    let mut node = Node::new(NodeStorage::Sqlite)?;
    // A second listener with OpenBao's switch for the token-less paths.
    let closed_port = warden_tests::util::free_port()?;
    node.extra_config = format!(
        "listener \"tcp\" {{\n  address = \"127.0.0.1:{closed_port}\"\n  tls_disable = true\n  disable_unauthed_generate_root_endpoints = true\n}}\n"
    );
    node.start().await?;
    let closed = Client::new(&format!("http://127.0.0.1:{closed_port}"), None);
    let off = closed.req("GET", "/v1/sys/generate-root/attempt", None).await?;
    assert_eq!(off, (405, json!({"errors": ["unsupported operation"]})));
    let anon = node.client(None);
    let (keys, initial) = node.init(5, 3).await?;
    node.unseal(&[&keys[0], &keys[1], &keys[2]]).await?;
    let initial_client = node.client(Some(&initial));

    // Nothing started; Vault's bare answer.
    let idle = anon.expect("GET", "/v1/sys/generate-root/attempt", None, 200).await?;
    assert_eq!(
        idle,
        json!({"started": false, "nonce": "", "progress": 0, "required": 3, "encoded_token": "",
               "encoded_root_token": "", "pgp_fingerprint": "", "otp": "", "otp_length": 28, "complete": false})
    );
    // Bad starts.
    let bad = anon
        .expect(
            "PUT",
            "/v1/sys/generate-root/attempt",
            Some(json!({"otp": "short"})),
            400,
        )
        .await?;
    assert_eq!(bad["errors"], json!(["OTP string has incorrect length"]));
    anon.expect(
        "PUT",
        "/v1/sys/generate-root/attempt",
        Some(json!({"pgp_key": "xyz"})),
        400,
    )
    .await?;
    // Start: the OTP is handed out once.
    let started = anon
        .expect("PUT", "/v1/sys/generate-root/attempt", Some(json!({})), 200)
        .await?;
    let otp = started["otp"].as_str().unwrap_or_default().to_string();
    let nonce = started["nonce"].as_str().unwrap_or_default().to_string();
    ensure!(otp.len() == 28 && !nonce.is_empty(), "{started}");
    let again = anon
        .expect("PUT", "/v1/sys/generate-root/attempt", Some(json!({})), 400)
        .await?;
    assert_eq!(
        again["errors"],
        json!(["root generation already in progress for this namespace"])
    );
    let status = anon.expect("GET", "/v1/sys/generate-root/attempt", None, 200).await?;
    assert_eq!(
        (status["started"].clone(), status["otp"].clone()),
        (json!(true), json!(""))
    );
    let update = |key: &str, nonce: &str| json!({"key": key, "nonce": nonce});
    let wrong_nonce = anon
        .expect(
            "PUT",
            "/v1/sys/generate-root/update",
            Some(update(&keys[0], "nope")),
            400,
        )
        .await?;
    ensure!(errors(&wrong_nonce).contains("incorrect nonce"), "{wrong_nonce}");
    let one = anon
        .expect(
            "PUT",
            "/v1/sys/generate-root/update",
            Some(update(&keys[0], &nonce)),
            200,
        )
        .await?;
    assert_eq!(
        (one["progress"].clone(), one["complete"].clone()),
        (json!(1), json!(false))
    );
    anon.expect(
        "PUT",
        "/v1/sys/generate-root/update",
        Some(update(&keys[0], &nonce)),
        400,
    )
    .await?;
    // A share of another key: the threshold is reached, the check fails,
    // no token is made and the shares are spent.
    let (other_keys, _) = {
        let mut other = Node::new(NodeStorage::Sqlite)?;
        other.start().await?;
        let made = other.init(5, 3).await?;
        other.stop();
        made
    };
    anon.expect(
        "PUT",
        "/v1/sys/generate-root/update",
        Some(update(&keys[1], &nonce)),
        200,
    )
    .await?;
    let failed = anon
        .expect(
            "PUT",
            "/v1/sys/generate-root/update",
            Some(update(&other_keys[2], &nonce)),
            400,
        )
        .await?;
    ensure!(errors(&failed).contains("root key verification failed"), "{failed}");
    let status = anon.expect("GET", "/v1/sys/generate-root/attempt", None, 200).await?;
    assert_eq!(status["progress"], json!(0), "{status}");
    for k in [&keys[2], &keys[3]] {
        anon.expect("PUT", "/v1/sys/generate-root/update", Some(update(k, &nonce)), 200)
            .await?;
    }
    let done = anon
        .expect(
            "PUT",
            "/v1/sys/generate-root/update",
            Some(update(&keys[4], &nonce)),
            200,
        )
        .await?;
    assert_eq!(done["complete"], json!(true), "{done}");
    let encoded = done["encoded_token"].as_str().unwrap_or_default();
    assert_eq!(done["encoded_root_token"], json!(encoded));
    let new_root = decode_root(encoded, &otp)?;
    ensure!(new_root.starts_with("hvs."), "decoded: not a token");
    // The attempt is over.
    let status = anon.expect("GET", "/v1/sys/generate-root/attempt", None, 200).await?;
    assert_eq!(status["started"], json!(false));
    // sys/decode-token agrees.
    let new_client = node.client(Some(&new_root));
    let decoded = new_client
        .expect(
            "PUT",
            "/v1/sys/decode-token",
            Some(json!({"encoded_token": encoded, "otp": otp})),
            200,
        )
        .await?;
    assert_eq!(decoded["data"]["token"], json!(new_root));

    // The new token is a root token.
    let me = new_client
        .expect("GET", "/v1/auth/token/lookup-self", None, 200)
        .await?;
    assert_eq!(me["data"]["policies"], json!(["root"]), "{me}");
    assert_eq!(me["data"]["path"], json!("auth/token/root"));
    assert_eq!(me["data"]["display_name"], json!("root"));
    assert_eq!(me["data"]["expire_time"], Value::Null);
    // Renewing a root token: nothing to renew.
    let renew = initial_client
        .expect("POST", "/v1/auth/token/renew-self", Some(json!({})), 400)
        .await?;
    assert_eq!(renew["errors"], json!(["lease is not renewable"]));
    // The initial root token is revoked, with its child.
    let child = initial_client
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
    initial_client
        .expect("POST", "/v1/auth/token/revoke-self", None, 204)
        .await?;
    assert_eq!(status_of(&initial_client, "/v1/sys/mounts").await?, 403);
    assert_eq!(
        status_of(&node.client(Some(&child)), "/v1/auth/token/lookup-self").await?,
        403
    );
    new_client
        .expect("POST", "/v1/sys/mounts/after", Some(json!({"type": "database"})), 204)
        .await?;

    // A restart: the revoked token stays revoked, the new one works.
    node.stop();
    node.start().await?;
    node.unseal(&[&keys[0], &keys[1], &keys[2]]).await?;
    assert_eq!(status_of(&initial_client, "/v1/sys/mounts").await?, 403);
    assert_eq!(status_of(&new_client, "/v1/sys/mounts/after").await?, 200);

    // OpenBao's authenticated paths: a token is needed (and is enough on
    // the listener that turns the token-less ones off).
    let refused = anon.req("GET", "/v1/sys/generate-root-token/attempt", None).await?;
    assert_eq!(refused.0, 403, "{refused:?}");
    let on_closed = closed
        .with_token(Some(&new_root))
        .req("GET", "/v1/sys/generate-root-token/attempt", None)
        .await?;
    assert_eq!(on_closed.0, 200, "{on_closed:?}");
    let off = closed
        .req("PUT", "/v1/sys/generate-root/attempt", Some(json!({})))
        .await?;
    assert_eq!(off.0, 405);
    let idle = new_client
        .expect("GET", "/v1/sys/generate-root-token/attempt", None, 200)
        .await?;
    assert_eq!(
        idle["data"],
        json!({"complete": false, "otp": "", "otp_length": 28, "progress": 0, "required": 3, "started": false})
    );

    // The real bao CLI: -generate-otp, -init, three shares, -decode.
    let bin = tokio::task::spawn_blocking(warden_tests::bao::ensure_bao).await??;
    let url = node.url();
    let (token, keys) = (new_root.clone(), keys.clone());
    let from_cli = tokio::task::spawn_blocking(move || -> Result<String> {
        let mut bao = warden_tests::bao::Bao::new(&bin, &url)?;
        bao.token = Some(token);
        bao.generate_root(&keys[..3])
    })
    .await??;
    ensure!(from_cli.starts_with("hvs.") && from_cli != new_root, "the CLI's token");
    let cli_client = node.client(Some(&from_cli));
    let me = cli_client
        .expect("GET", "/v1/auth/token/lookup-self", None, 200)
        .await?;
    assert_eq!(me["data"]["policies"], json!(["root"]));
    // Generated root tokens are revoked as any token.
    cli_client
        .expect("POST", "/v1/auth/token/revoke-self", None, 204)
        .await?;
    assert_eq!(status_of(&cli_client, "/v1/sys/mounts").await?, 403);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_and_form_bodies_and_the_plugin_catalog() -> Result<()> {
    let server = WardenServer::start().await?;
    let client = server.client();

    // `bao write -f` sends JSON null: no fields.
    let (status, body) = client.req_raw("PUT", "/v1/sys/rotate", Some(b"null".to_vec())).await?;
    ensure!(status == 204, "null body: {status} {body}");
    let (status, body) = client.req_raw("PUT", "/v1/sys/rotate", Some(b"[1]".to_vec())).await?;
    ensure!(status == 400, "array body: {status} {body}");

    // A form body: string fields, '+' and %XX decoded.
    let form = |body: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/v1/sys/mounts/formdb", server.url()))
            .header("X-Vault-Token", server.root_token())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let resp = form("type=database&description=made+by+a%20form").await?;
    ensure!(resp.status().as_u16() == 204, "form: {}", resp.text().await?);
    let mount = client.expect("GET", "/v1/sys/mounts/formdb", None, 200).await?;
    assert_eq!(mount["data"]["description"], json!("made by a form"));
    let resp = form("type=%zz").await?;
    ensure!(resp.status().as_u16() == 400, "bad form");
    let body: Value = resp.json().await?;
    assert_eq!(body, json!({"errors": ["error parsing form data"]}));

    // The catalog: one type's names, all types with details, one plugin.
    let list = client
        .expect("LIST", "/v1/sys/plugins/catalog/database", None, 200)
        .await?;
    let keys = list["data"]["keys"].as_array().cloned().unwrap_or_default();
    ensure!(keys.contains(&json!("postgresql-database-plugin")), "{list}");
    ensure!(
        list["data"].as_object().is_some_and(|d| d.len() == 1),
        "LIST answers keys only: {list}"
    );
    let all = client.expect("GET", "/v1/sys/plugins/catalog", None, 200).await?;
    assert_eq!(all["data"]["database"], json!(keys), "{all}");
    ensure!(all["data"]["secret"] == json!(["database", "mongodb"]), "{all}");
    let detailed = all["data"]["detailed"].as_array().cloned().unwrap_or_default();
    ensure!(
        detailed.iter().any(|d| d["name"] == json!("mysql-database-plugin")
            && d["type"] == json!("database")
            && d["builtin"] == json!(true)),
        "{all}"
    );
    let one = client
        .expect(
            "GET",
            "/v1/sys/plugins/catalog/database/postgresql-database-plugin",
            None,
            200,
        )
        .await?;
    ensure!(
        one["data"]["name"] == json!("postgresql-database-plugin") && one["data"]["builtin"] == json!(true),
        "{one}"
    );
    // The deprecated untyped path: Vault's warning, no data.
    let untyped = client
        .expect("GET", "/v1/sys/plugins/catalog/postgresql-database-plugin", None, 200)
        .await?;
    ensure!(
        untyped["data"].is_null()
            && untyped["warnings"][0]
                .as_str()
                .is_some_and(|w| w.starts_with("Deprecated API endpoint")),
        "{untyped}"
    );
    client
        .expect(
            "GET",
            "/v1/sys/plugins/catalog/database/nosuch-database-plugin",
            None,
            404,
        )
        .await?;
    client
        .expect("GET", "/v1/sys/plugins/catalog/database", None, 405)
        .await?;
    client
        .expect("LIST", "/v1/sys/plugins/catalog/bogus", None, 405)
        .await?;
    // Auth methods are built-in auth plugins, as OpenBao lists its own.
    let auth = client.expect("LIST", "/v1/sys/plugins/catalog/auth", None, 200).await?;
    ensure!(auth["data"]["keys"] == json!(["approle"]), "{auth}");
    Ok(())
}
