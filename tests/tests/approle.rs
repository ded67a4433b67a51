//! The AppRole auth method and `sys/auth` against the real binary (issue
//! 13): a login yields a token with exactly the role's policies (plus
//! `default`), which reaches what they allow and gets 403 elsewhere;
//! secret IDs run out, wrong credentials and bad input are Vault's 400s
//! with nothing stored; `sys/auth` lists `token/` and `approle/`, and
//! disabling revokes the method's tokens. The real `bao` CLI drives the
//! same flow unchanged, and the table survives a restart.

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use warden_tests::bao::{Bao, ensure_bao};
use warden_tests::client::Client;
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::server::WardenServer;

async fn ok(c: &Client, method: &str, path: &str, body: Option<Value>, status: u16) -> Result<Value> {
    let (got, resp) = c.req(method, path, body).await?;
    ensure!(got == status, "{method} {path}: {got} {resp}");
    Ok(resp)
}

/// Enable approle, write a role, and return (role_id, secret_id).
async fn role_and_secret(root: &Client, role: &str, body: Value) -> Result<(String, String)> {
    ok(root, "POST", &format!("/v1/auth/approle/role/{role}"), Some(body), 204).await?;
    let r = ok(root, "GET", &format!("/v1/auth/approle/role/{role}/role-id"), None, 200).await?;
    let role_id = r["data"]["role_id"].as_str().context("role_id")?.to_string();
    let s = ok(
        root,
        "POST",
        &format!("/v1/auth/approle/role/{role}/secret-id"),
        None,
        200,
    )
    .await?;
    let secret_id = s["data"]["secret_id"].as_str().context("secret_id")?.to_string();
    Ok((role_id, secret_id))
}

async fn login(anon: &Client, role_id: &str, secret_id: &str) -> Result<(u16, Value)> {
    anon.post(
        "/v1/auth/approle/login",
        json!({"role_id": role_id, "secret_id": secret_id}),
    )
    .await
}

#[tokio::test]
async fn an_approle_login_yields_exactly_the_roles_policies() -> Result<()> {
    let server = WardenServer::start().await?;
    let root = server.client();
    let anon = root.with_token(None);
    ok(
        &root,
        "POST",
        "/v1/sys/auth/approle",
        Some(json!({"type": "approle"})),
        204,
    )
    .await?;
    ok(
        &root,
        "PUT",
        "/v1/sys/policies/acl/read-policies",
        Some(json!({"policy": r#"path "sys/policies/acl/*" { capabilities = ["read"] }"#})),
        204,
    )
    .await?;
    let (role_id, secret_id) = role_and_secret(
        &root,
        "app",
        json!({"token_policies": "read-policies", "token_ttl": "10m", "token_max_ttl": "1h"}),
    )
    .await?;
    // A tidy answers 202 at once (the work runs in the background) and
    // leaves the live secret ID alone: the login below still works.
    let tidy = ok(&root, "POST", "/v1/auth/approle/tidy/secret-id", None, 202).await?;
    assert!(
        tidy["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("Tidy operation successfully started")),
        "{tidy}"
    );

    // No token needed to log in; the auth block is Vault's.
    let (status, body) = login(&anon, &role_id, &secret_id).await?;
    ensure!(status == 200, "login: {status} {body}");
    let auth = &body["auth"];
    assert_eq!(auth["policies"], json!(["default", "read-policies"]), "{body}");
    assert_eq!(auth["token_policies"], auth["policies"]);
    assert_eq!(auth["metadata"], json!({"role_name": "app"}));
    assert_eq!(auth["lease_duration"], 600);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["orphan"], true);
    assert_eq!(auth["token_type"], "service");
    let token = auth["client_token"].as_str().context("client_token")?;

    // The token reaches what its policy allows, and nothing else.
    let t = root.with_token(Some(token));
    ok(&t, "GET", "/v1/sys/policies/acl/read-policies", None, 200).await?;
    for (method, path) in [
        ("GET", "/v1/sys/mounts"),
        ("GET", "/v1/sys/auth"),
        ("PUT", "/v1/sys/policies/acl/read-policies"),
        ("GET", "/v1/auth/approle/role/app"),
        ("POST", "/v1/auth/approle/role/app/secret-id"),
    ] {
        let body = if method == "GET" {
            None
        } else {
            Some(json!({"policy": ""}))
        };
        let (status, resp) = t.req(method, path, body).await?;
        assert_eq!(status, 403, "{method} {path}: {resp}");
    }
    let me = ok(&t, "GET", "/v1/auth/token/lookup-self", None, 200).await?;
    assert_eq!(me["data"]["policies"], json!(["default", "read-policies"]));
    assert_eq!(me["data"]["path"], "auth/approle/login");
    assert_eq!(me["data"]["display_name"], "approle");
    assert_eq!(me["data"]["meta"], json!({"role_name": "app"}));

    // token_no_default_policy: exactly the role's policies.
    let (rid, sid) = role_and_secret(
        &root,
        "bare",
        json!({"token_policies": ["read-policies"], "token_no_default_policy": true}),
    )
    .await?;
    let (_, body) = login(&anon, &rid, &sid).await?;
    assert_eq!(body["auth"]["policies"], json!(["read-policies"]), "{body}");

    // Wrong secret, unknown role-id, missing fields: Vault's 400s.
    for (rid, sid, text) in [
        (role_id.as_str(), "wrong", "invalid role or secret ID"),
        ("no-such-role", secret_id.as_str(), "invalid role or secret ID"),
        ("", secret_id.as_str(), "missing role_id"),
        (role_id.as_str(), "", "missing secret_id"),
    ] {
        let (status, body) = login(&anon, rid, sid).await?;
        assert_eq!(status, 400, "{rid}/{sid}: {body}");
        assert_eq!(body["errors"], json!([text]));
    }
    // Other approle paths need a token.
    let (status, _) = anon.get("/v1/auth/approle/role/app").await?;
    assert_eq!(status, 403);
    Ok(())
}

#[tokio::test]
async fn secret_ids_run_out_and_bad_input_stores_nothing() -> Result<()> {
    let server = WardenServer::start().await?;
    let root = server.client();
    let anon = root.with_token(None);
    ok(
        &root,
        "POST",
        "/v1/sys/auth/approle",
        Some(json!({"type": "approle"})),
        204,
    )
    .await?;
    let (role_id, secret_id) = role_and_secret(&root, "once", json!({"secret_id_num_uses": 1})).await?;
    let looked = ok(
        &root,
        "POST",
        "/v1/auth/approle/role/once/secret-id/lookup",
        Some(json!({"secret_id": secret_id})),
        200,
    )
    .await?;
    assert_eq!(looked["data"]["secret_id_num_uses"], 1);
    let (status, body) = login(&anon, &role_id, &secret_id).await?;
    ensure!(status == 200, "{body}");
    let (status, body) = login(&anon, &role_id, &secret_id).await?;
    assert_eq!((status, &body["errors"]), (400, &json!(["invalid role or secret ID"])));
    let (status, _) = root.list("/v1/auth/approle/role/once/secret-id").await?;
    assert_eq!(status, 404, "the used-up secret ID is gone");

    for (body, text) in [
        (
            json!({"token_ttl": "2h", "token_max_ttl": "1h"}),
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ),
        (
            json!({"secret_id_num_uses": -1}),
            "secret_id_num_uses cannot be negative",
        ),
        (
            json!({"bind_secret_id": false}),
            "at least one constraint should be enabled on the role",
        ),
        (
            json!({"secret_id_bound_cidrs": "not-a-cidr"}),
            "failed to validate CIDR blocks: invalid CIDR address: not-a-cidr",
        ),
    ] {
        let (status, resp) = root.post("/v1/auth/approle/role/bad", body.clone()).await?;
        assert_eq!(status, 400, "{body}: {resp}");
        assert_eq!(resp["errors"], json!([text]), "{body}");
    }
    let (status, _) = root.get("/v1/auth/approle/role/bad").await?;
    assert_eq!(status, 404, "nothing stored");
    let roles = ok(&root, "LIST", "/v1/auth/approle/role", None, 200).await?;
    assert_eq!(roles["data"]["keys"], json!(["once"]));

    // A login from an address outside the role's blocks is refused; the
    // test client is 127.0.0.1.
    let (rid, sid) = role_and_secret(&root, "net", json!({"secret_id_bound_cidrs": "10.0.0.0/8"})).await?;
    let (status, body) = login(&anon, &rid, &sid).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"],
        json!(["source address \"127.0.0.1\" unauthorized by CIDR restrictions on the role"])
    );
    // A token bound to other addresses is refused where it is used.
    let (rid, sid) = role_and_secret(&root, "bound", json!({"token_bound_cidrs": "10.0.0.0/8"})).await?;
    let (status, body) = login(&anon, &rid, &sid).await?;
    ensure!(status == 200, "{body}");
    let t = root.with_token(body["auth"]["client_token"].as_str());
    let (status, _) = t.get("/v1/auth/token/lookup-self").await?;
    assert_eq!(status, 403);
    let (rid, sid) = role_and_secret(&root, "local", json!({"token_bound_cidrs": "127.0.0.1/32"})).await?;
    let (_, body) = login(&anon, &rid, &sid).await?;
    let t = root.with_token(body["auth"]["client_token"].as_str());
    ok(&t, "GET", "/v1/auth/token/lookup-self", None, 200).await?;
    Ok(())
}

#[tokio::test]
async fn sys_auth_lists_token_and_approle_and_disable_revokes() -> Result<()> {
    let server = WardenServer::start().await?;
    let root = server.client();
    let anon = root.with_token(None);
    let listed = ok(&root, "GET", "/v1/sys/auth", None, 200).await?;
    assert_eq!(listed["data"]["token/"]["type"], "token", "{listed}");
    ok(
        &root,
        "POST",
        "/v1/sys/auth/approle",
        Some(json!({"type": "approle", "description": "machines", "config": {"max_lease_ttl": "30m"}})),
        204,
    )
    .await?;
    let listed = ok(&root, "GET", "/v1/sys/auth", None, 200).await?;
    let data = listed["data"].as_object().context("data")?;
    let mut paths: Vec<&String> = data.keys().collect();
    paths.sort();
    assert_eq!(paths, vec!["approle/", "token/"]);
    let approle = &data["approle/"];
    assert_eq!(approle["type"], "approle");
    assert_eq!(approle["description"], "machines");
    assert_eq!(approle["config"]["max_lease_ttl"], 1800);
    assert!(
        approle["accessor"]
            .as_str()
            .unwrap_or_default()
            .starts_with("auth_approle_")
    );
    assert_eq!(listed["approle/"], *approle, "copied to the top level");
    // Not a secrets engine.
    let mounts = ok(&root, "GET", "/v1/sys/mounts", None, 200).await?;
    assert!(mounts["data"].get("approle/").is_none() && mounts["data"].get("auth/approle/").is_none());
    // Errors: a used path, an unknown type, token/.
    for (path, body, code) in [
        ("approle", json!({"type": "approle"}), 400),
        ("other", json!({"type": "nope"}), 400),
        ("token", json!({"type": "approle"}), 400),
    ] {
        let (status, resp) = root.post(&format!("/v1/sys/auth/{path}"), body).await?;
        assert_eq!(status, code, "{path}: {resp}");
    }
    let (status, _) = root.delete("/v1/sys/auth/token").await?;
    assert_eq!(status, 400, "token/ cannot be disabled");

    // The mount's max caps the token's TTL.
    let (rid, sid) = role_and_secret(&root, "r", json!({"token_ttl": "2h"})).await?;
    let (_, body) = login(&anon, &rid, &sid).await?;
    assert_eq!(body["auth"]["lease_duration"], 1800, "{body}");
    let token = body["auth"]["client_token"].as_str().context("token")?.to_string();
    let t = root.with_token(Some(&token));
    ok(&t, "GET", "/v1/auth/token/lookup-self", None, 200).await?;

    // Disabling revokes the method's tokens and removes its data.
    ok(&root, "DELETE", "/v1/sys/auth/approle", None, 204).await?;
    let (status, _) = t.get("/v1/auth/token/lookup-self").await?;
    assert_eq!(status, 403, "the login's token is revoked");
    let listed = ok(&root, "GET", "/v1/sys/auth", None, 200).await?;
    assert!(listed["data"].get("approle/").is_none());
    let (status, _) = login(&anon, &rid, &sid).await?;
    assert!(status == 403 || status == 404, "no login route left: {status}");
    ok(
        &root,
        "POST",
        "/v1/sys/auth/approle",
        Some(json!({"type": "approle"})),
        204,
    )
    .await?;
    let (status, _) = root.get("/v1/auth/approle/role/r").await?;
    assert_eq!(status, 404, "a new mount starts empty");
    Ok(())
}

#[tokio::test]
async fn the_auth_table_survives_a_restart() -> Result<()> {
    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.start().await?;
    let (keys, root_token) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    let root = node.client(Some(&root_token));
    ok(
        &root,
        "POST",
        "/v1/sys/auth/approle",
        Some(json!({"type": "approle"})),
        204,
    )
    .await?;
    let (rid, sid) = role_and_secret(&root, "r", json!({"token_policies": "p"})).await?;
    node.stop();
    node.start().await?;
    node.unseal(&[&keys[0]]).await?;
    let anon = node.client(None);
    let (status, body) = login(&anon, &rid, &sid).await?;
    ensure!(status == 200, "{body}");
    assert_eq!(body["auth"]["policies"], json!(["default", "p"]));
    node.stop();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bao_cli_enables_approle_and_logs_in() -> Result<()> {
    let bin = tokio::task::spawn_blocking(ensure_bao).await??;
    let server = WardenServer::start().await?;
    let (url, token) = (server.url(), server.root_token().to_string());
    tokio::task::spawn_blocking(move || cli_flow(&bin, &url, &token)).await??;
    drop(server);
    Ok(())
}

fn cli_json(run: &warden_tests::bao::Run) -> Result<Value> {
    serde_json::from_str(&run.stdout).with_context(|| format!("not JSON:\n{run}"))
}

fn cli_flow(bin: &std::path::Path, url: &str, root_token: &str) -> Result<()> {
    let mut bao = Bao::new(bin, url)?;
    bao.token = Some(root_token.to_string());
    let enabled = bao.expect(&["auth", "enable", "approle"], 0)?;
    ensure!(
        enabled.stdout.contains("Enabled approle auth method at: approle/"),
        "{enabled}"
    );
    let listed = bao.expect(&["auth", "list"], 0)?;
    ensure!(
        listed.stdout.contains("approle/") && listed.stdout.contains("token/"),
        "{listed}"
    );
    let listed = cli_json(&bao.expect(&["auth", "list", "-format=json"], 0)?)?;
    ensure!(listed["approle/"]["type"] == "approle", "{listed}");
    // `auth tune` goes through sys/mounts/auth/<path>/tune.
    bao.expect(&["auth", "tune", "-max-lease-ttl=1h", "approle/"], 0)?;
    let tuned = cli_json(&bao.expect(&["read", "-format=json", "sys/auth/approle/tune"], 0)?)?;
    ensure!(tuned["data"]["max_lease_ttl"] == 3600, "{tuned}");
    bao.expect(
        &[
            "write",
            "sys/policies/acl/reader",
            r#"policy=path "sys/policies/acl/*" { capabilities = ["read"] }"#,
        ],
        0,
    )?;
    bao.expect(
        &[
            "write",
            "auth/approle/role/x",
            "token_policies=reader",
            "token_ttl=20m",
            "secret_id_num_uses=5",
        ],
        0,
    )?;
    let role = cli_json(&bao.expect(&["read", "-format=json", "auth/approle/role/x"], 0)?)?;
    ensure!(role["data"]["token_policies"] == json!(["reader"]), "{role}");
    // One setting through its own path, as scripts written for Vault do.
    bao.expect(&["write", "auth/approle/role/x/secret-id-ttl", "secret_id_ttl=20m"], 0)?;
    let ttl = bao.expect(
        &["read", "-field=secret_id_ttl", "auth/approle/role/x/secret-id-ttl"],
        0,
    )?;
    ensure!(ttl.stdout.trim() == "1200", "{ttl}");
    let role_id = bao.expect(&["read", "-field=role_id", "auth/approle/role/x/role-id"], 0)?;
    let role_id = role_id.stdout.trim().to_string();
    let secret = cli_json(&bao.expect(&["write", "-f", "-format=json", "auth/approle/role/x/secret-id"], 0)?)?;
    let secret_id = secret["data"]["secret_id"].as_str().context("secret_id")?.to_string();
    ensure!(secret["data"]["secret_id_num_uses"] == 5, "{secret}");

    // The login, with no token of its own.
    let mut anon = Bao::new(bin, url)?;
    anon.token = None;
    let login = cli_json(&anon.expect(
        &[
            "write",
            "-format=json",
            "auth/approle/login",
            &format!("role_id={role_id}"),
            &format!("secret_id={secret_id}"),
        ],
        0,
    )?)?;
    ensure!(login["auth"]["policies"] == json!(["default", "reader"]), "{login}");
    let token = login["auth"]["client_token"]
        .as_str()
        .context("client_token")?
        .to_string();
    // `-field=token` as scripts use it.
    let field = anon.expect(
        &[
            "write",
            "-field=token",
            "auth/approle/login",
            &format!("role_id={role_id}"),
            &format!("secret_id={secret_id}"),
        ],
        0,
    )?;
    ensure!(field.stdout.trim().starts_with("hvs."), "{field}");
    // The CLI has no approle login helper (neither has OpenBao's): it says
    // so itself, before any request. The token logs in with the token method.
    let helper = anon.run(&[
        "login",
        "-method=approle",
        &format!("role_id={role_id}"),
        &format!("secret_id={secret_id}"),
    ])?;
    if helper.code == 0 {
        ensure!(helper.stdout.contains("reader"), "{helper}");
    } else {
        ensure!(helper.stderr.contains("Unknown auth method"), "{helper}");
    }
    let logged = anon.expect(&["login", "-no-store", &token], 0)?;
    ensure!(logged.stdout.contains("reader"), "{logged}");
    let mut t = Bao::new(bin, url)?;
    t.token = Some(token);
    t.expect(&["read", "sys/policies/acl/reader"], 0)?;
    let denied = t.run(&["read", "sys/mounts"])?;
    ensure!(
        denied.code == 2 && denied.stderr.contains("permission denied"),
        "{denied}"
    );

    bao.expect(&["auth", "disable", "approle"], 0)?;
    let listed = bao.expect(&["auth", "list"], 0)?;
    ensure!(!listed.stdout.contains("approle/"), "{listed}");
    let gone = t.run(&["token", "lookup"])?;
    ensure!(gone.code != 0, "the login's token is revoked: {gone}");
    Ok(())
}
