//! Audit devices against the real binary and a real PostgreSQL (issue 13):
//! a `file` device records one JSON line per request and per response,
//! with no secret in plaintext (issued passwords, the connection's
//! password, tokens and accessors: the file is grepped), and
//! `sys/audit-hash` reproduces the HMACs it holds; a request that no
//! device can record is refused with 500 and runs nothing (no database
//! login is made); SIGHUP reopens the file after a rotation; the real
//! `bao` CLI enables, lists and disables devices unchanged.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::json;
use warden_tests::bao::{Bao, ensure_bao};
use warden_tests::client::Client;
use warden_tests::fixtures::{audit_entries as entries, postgres_config};
use warden_tests::util::TempDir;
use warden_tests::{Creds, DbEnv};

async fn enable_file(root: &Client, name: &str, file: &Path) -> Result<()> {
    root.expect(
        "PUT",
        &format!("/v1/sys/audit/{name}"),
        Some(json!({"type": "file", "options": {"file_path": file.to_str().context("utf-8 path")?}})),
        204,
    )
    .await?;
    Ok(())
}

async fn hash(root: &Client, device: &str, input: &str) -> Result<String> {
    let body = root
        .expect(
            "PUT",
            &format!("/v1/sys/audit-hash/{device}"),
            Some(json!({ "input": input })),
            200,
        )
        .await?;
    Ok(body["data"]["hash"].as_str().context("data.hash")?.to_string())
}

/// A token limited to `db/creds/app`.
async fn app_token(root: &Client) -> Result<(String, String)> {
    root.expect(
        "PUT",
        "/v1/sys/policies/acl/app",
        Some(json!({"policy": r#"path "db/creds/app" { capabilities = ["read"] }"#})),
        204,
    )
    .await?;
    let body = root
        .expect("POST", "/v1/auth/token/create", Some(json!({"policies": ["app"]})), 200)
        .await?;
    Ok((
        body["auth"]["client_token"]
            .as_str()
            .context("client_token")?
            .to_string(),
        body["auth"]["accessor"].as_str().context("accessor")?.to_string(),
    ))
}

fn send_sighup(pid: u32) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -HUP {pid}: {status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_lines_hold_no_plaintext_secret_and_the_hashes_reproduce() -> Result<()> {
    let env = DbEnv::start("audit_hmac", &["*"]).await?;
    env.write_role("app", json!({})).await?;
    let root = &env.client;
    let dir = TempDir::new("audit-hmac")?;
    let log = dir.path().join("logs/audit.log");
    enable_file(root, "file", &log).await?;
    // Vault's defaults, listed back.
    let listed = root.expect("GET", "/v1/sys/audit", None, 200).await?;
    let device = &listed["data"]["file/"];
    assert_eq!(device["type"], "file", "{listed}");
    assert_eq!(device["path"], "file/");
    assert_eq!(device["local"], false);
    assert_eq!(device["options"]["file_path"], log.to_str().unwrap_or_default());
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&log)?.mode() & 0o777, 0o600, "mode defaults to 0600");
    }

    // A non-root token issues creds; the connection is written again with
    // its password while the device records.
    let (token, accessor) = app_token(root).await?;
    let app = root.with_token(Some(&token));
    let (status, body) = app.get("/v1/db/creds/app").await?;
    assert_eq!(status, 200, "{body}");
    let creds = Creds::from_body(body)?;
    root.expect(
        "POST",
        "/v1/db/config/pg",
        Some(postgres_config(&env.scratch, &["*"])),
        204,
    )
    .await?;
    // lookup-self answers with the token itself: HMAC'd in the log too.
    app.expect("GET", "/v1/auth/token/lookup-self", None, 200).await?;
    // A refused token is recorded with its error.
    let (status, _) = root
        .with_token(Some("hvs.notarealtoken000000000"))
        .get("/v1/db/creds/app")
        .await?;
    assert_eq!(status, 403);

    let text = std::fs::read_to_string(&log)?;
    for (what, secret) in [
        ("issued password", creds.password.as_str()),
        ("connection password", env.scratch.admin_password.as_str()),
        ("token", token.as_str()),
        ("accessor", accessor.as_str()),
        ("root token", env.server.root_token()),
        ("refused token", "hvs.notarealtoken000000000"),
    ] {
        assert!(!text.contains(secret), "the audit log holds the {what} in plaintext");
    }
    let lines = entries(&log)?;
    let creds_req = lines
        .iter()
        .find(|e| e["type"] == "request" && e["request"]["path"] == "db/creds/app")
        .context("no request entry for db/creds/app")?;
    let creds_resp = lines
        .iter()
        .find(|e| e["type"] == "response" && e["request"]["path"] == "db/creds/app" && e.get("error").is_none())
        .context("no response entry for db/creds/app")?;
    assert_eq!(creds_req["request"]["operation"], "read");
    assert_eq!(creds_req["request"]["mount_type"], "database");
    assert_eq!(creds_req["request"]["namespace"]["id"], "root");
    assert_eq!(creds_req["auth"]["policies"], json!(["app", "default"]));
    assert_eq!(creds_resp["response"]["secret"]["lease_id"], creds.lease_id.as_str());

    // sys/audit-hash reproduces the HMACs in the file.
    assert_eq!(
        creds_req["auth"]["client_token"],
        json!(hash(root, "file", &token).await?)
    );
    assert_eq!(
        creds_req["auth"]["accessor"],
        json!(hash(root, "file", &accessor).await?)
    );
    assert_eq!(
        creds_resp["response"]["data"]["password"],
        json!(hash(root, "file", &creds.password).await?)
    );
    assert_eq!(
        creds_resp["response"]["data"]["username"],
        json!(hash(root, "file", &creds.username).await?)
    );
    let config_req = lines
        .iter()
        .find(|e| e["type"] == "request" && e["request"]["path"] == "db/config/pg")
        .context("no request entry for db/config/pg")?;
    assert_eq!(
        config_req["request"]["data"]["password"],
        json!(hash(root, "file", &env.scratch.admin_password).await?)
    );
    let refused = lines
        .iter()
        .find(|e| e["type"] == "request" && e["error"] == "permission denied")
        .context("the refused token's request is not recorded")?;
    assert_eq!(
        refused["request"]["client_token"],
        json!(hash(root, "file", "hvs.notarealtoken000000000").await?)
    );
    // Unauthenticated paths are not audited.
    root.expect("GET", "/v1/sys/health", None, 200).await?;
    assert!(!entries(&log)?.iter().any(|e| e["request"]["path"] == "sys/health"));

    // Errors of sys/audit-hash and sys/audit, as Vault's.
    let (status, body) = root.put("/v1/sys/audit-hash/nowhere", json!({"input": "x"})).await?;
    assert_eq!(
        (status, &body["errors"]),
        (400, &json!(["unknown audit backend \"nowhere/\""]))
    );
    let (status, body) = root.put("/v1/sys/audit-hash/file", json!({})).await?;
    assert_eq!(
        (status, &body["errors"]),
        (400, &json!(["the \"input\" parameter is empty"]))
    );
    let (status, body) = root
        .put(
            "/v1/sys/audit/file",
            json!({"type": "file", "options": {"file_path": "discard"}}),
        )
        .await?;
    assert_eq!((status, &body["errors"]), (400, &json!(["path already in use"])));
    let (status, body) = root
        .put("/v1/sys/audit/sock", json!({"type": "socket", "options": {}}))
        .await?;
    assert_eq!(
        (status, &body["errors"]),
        (400, &json!(["unknown backend type: \"socket\""]))
    );
    // sys/audit needs sudo: the app token is refused.
    let (status, _) = app.get("/v1/sys/audit").await?;
    assert_eq!(status, 403);
    Ok(())
}

/// A device whose file cannot be written: a directory where the file was,
/// reached by a SIGHUP's reopen (as root, a chmod would not stop a write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_no_device_can_record_is_refused_and_runs_nothing() -> Result<()> {
    let env = DbEnv::start("audit_refuse", &["*"]).await?;
    // A role of its own: PostgreSQL roles are cluster-wide, shared with
    // the tests running beside this one.
    env.write_role("refusal", json!({})).await?;
    let root = &env.client;
    let pid = env.server.pid().context("server pid")?;
    let dir = TempDir::new("audit-refuse")?;
    let log = dir.path().join("audit.log");
    enable_file(root, "file", &log).await?;
    env.creds("refusal").await?;
    let roles_before = env.scratch.roles_like("v-%refusal%").await?.len();

    // Rotation: the file moves away and SIGHUP reopens one at the path.
    let rotated = dir.path().join("audit.log.1");
    std::fs::rename(&log, &rotated)?;
    send_sighup(pid)?;
    let reopened = wait_for_file(&log).await;
    ensure!(reopened, "SIGHUP did not reopen {}", log.display());
    env.creds("refusal").await?;
    ensure!(
        entries(&log)?
            .iter()
            .any(|e| e["request"]["path"] == "db/creds/refusal"),
        "the request after the reopen is not in the new file"
    );
    let rotated_len = std::fs::metadata(&rotated)?.len();

    // The path becomes unusable: every request is refused, nothing runs.
    std::fs::remove_file(&log)?;
    std::fs::create_dir(&log)?;
    send_sighup(pid)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let (status, body) = root.get("/v1/db/creds/refusal").await?;
        assert_eq!((status, &body["errors"]), (500, &json!(["internal error"])), "{body}");
    }
    let (status, _) = root.get("/v1/sys/mounts").await?;
    assert_eq!(status, 500);
    assert_eq!(
        env.scratch.roles_like("v-%refusal%").await?.len(),
        roles_before + 1,
        "a refused request made a database login"
    );
    assert_eq!(std::fs::metadata(&rotated)?.len(), rotated_len);

    // With a second device that works, requests are served again.
    let second = dir.path().join("second.log");
    // sys/audit itself cannot be reached while nothing records: repair,
    // add the second device, and break the first again.
    std::fs::remove_dir(&log)?;
    enable_file(root, "second", &second).await?;
    std::fs::remove_file(&log)?;
    std::fs::create_dir(&log)?;
    send_sighup(pid)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.creds("refusal").await?;
    ensure!(
        entries(&second)?
            .iter()
            .any(|e| e["request"]["path"] == "db/creds/refusal")
    );
    // Disabling the broken one leaves the working one.
    root.expect("DELETE", "/v1/sys/audit/file", None, 204).await?;
    root.expect("DELETE", "/v1/sys/audit/file", None, 204).await?;
    let listed = root.expect("GET", "/v1/sys/audit", None, 200).await?;
    assert_eq!(listed["data"].as_object().map(|m| m.len()), Some(1), "{listed}");
    root.expect("DELETE", "/v1/sys/audit/second", None, 204).await?;
    // No device: nothing is audited and nothing is refused.
    env.creds("refusal").await?;
    Ok(())
}

/// The file appears at `path` within a few seconds.
async fn wait_for_file(path: &Path) -> bool {
    for _ in 0..50 {
        if path.is_file() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bao_cli_enables_lists_and_disables_a_file_device() -> Result<()> {
    let bin = tokio::task::spawn_blocking(ensure_bao).await??;
    let env = DbEnv::start("audit_cli", &["*"]).await?;
    let dir = TempDir::new("audit-cli")?;
    let log = dir.path().join("audit.log");
    let url = env.server.url();
    let token = env.server.root_token().to_string();
    let log_arg = format!("file_path={}", log.display());
    let listed = tokio::task::spawn_blocking(move || -> Result<(String, String, String)> {
        let mut bao = Bao::new(&bin, &url)?;
        bao.token = Some(token);
        let enabled = bao.expect(&["audit", "enable", "file", &log_arg], 0)?;
        ensure!(
            enabled
                .stdout
                .contains("Success! Enabled the file audit device at: file/"),
            "{enabled}"
        );
        let list = bao.expect(&["audit", "list"], 0)?;
        let detailed = bao.expect(&["audit", "list", "-detailed"], 0)?;
        let disabled = bao.expect(&["audit", "disable", "file/"], 0)?;
        ensure!(
            disabled
                .stdout
                .contains("Success! Disabled audit device (if it was enabled) at: file/"),
            "{disabled}"
        );
        // The CLI's exit code for an empty list is 2.
        let empty = bao.expect(&["audit", "list"], 2)?;
        ensure!(empty.stdout.contains("No audit devices are enabled."), "{empty}");
        Ok((list.stdout, detailed.stdout, empty.stdout))
    })
    .await??;
    let (list, detailed, _) = listed;
    assert!(list.contains("file/") && list.contains("file"), "{list}");
    assert!(
        detailed.contains("replicated") && detailed.contains(&format!("file_path={}", log.display())),
        "{detailed}"
    );
    // The CLI's own requests went through the device while it was on.
    let lines = entries(&log)?;
    assert!(lines.iter().any(|e| e["request"]["path"] == "sys/audit"), "{lines:?}");
    Ok(())
}
