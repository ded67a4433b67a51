//! Tokens and ACL policies against the real binary and a real PostgreSQL
//! (issue 13, first part): a token made with a policy reaches what the
//! policy grants and gets 403 elsewhere; create vs update come from the
//! path's existence check; children die with their parent; a token's uses
//! run out; token lookups, renewals and revocations answer as Vault's.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use warden_tests::client::Client;
use warden_tests::{Creds, DbEnv};

/// An ACL refusal, worded as Vault's and OpenBao's multierror (a missing or
/// unknown token is the bare "permission denied").
const ACL_DENIED: &str = "1 error occurred:\n\t* permission denied\n\n";

/// Make a token with `policies` (and any extra fields) as the root client.
async fn token(root: &Client, body: Value) -> Result<(String, Value)> {
    let (status, resp) = root.post("/v1/auth/token/create", body).await?;
    anyhow::ensure!(status == 200, "token create: {status} {resp}");
    let t = resp["auth"]["client_token"]
        .as_str()
        .context("client_token")?
        .to_string();
    Ok((t, resp))
}

async fn policy(root: &Client, name: &str, text: &str) -> Result<()> {
    root.expect(
        "PUT",
        &format!("/v1/sys/policies/acl/{name}"),
        Some(json!({ "policy": text })),
        204,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_policy_grants_its_paths_and_nothing_else() -> Result<()> {
    let env = DbEnv::start("acl_grant", &["*"]).await?;
    env.write_role("app", json!({})).await?;
    env.write_role("other", json!({})).await?;
    let root = &env.client;
    policy(root, "app-creds", r#"path "db/creds/app" { capabilities = ["read"] }"#).await?;
    let (t, created) = token(root, json!({"policies": ["app-creds"]})).await?;
    let auth = &created["auth"];
    assert_eq!(auth["policies"], json!(["app-creds", "default"]), "{created}");
    assert_eq!(auth["token_policies"], auth["policies"]);
    assert_eq!(auth["token_type"], "service");
    assert_eq!(auth["orphan"], false);
    assert!(t.starts_with("hvs."), "{t}");
    assert!(auth["lease_duration"].as_i64().unwrap_or_default() > 0, "{created}");

    let c = root.with_token(Some(&t));
    let (status, body) = c.get("/v1/db/creds/app").await?;
    assert_eq!(status, 200, "{body}");
    let creds = Creds::from_body(body)?;
    for (method, path) in [
        ("GET", "/v1/db/creds/other"),
        ("GET", "/v1/db/roles/app"),
        ("GET", "/v1/db/config/pg"),
        ("GET", "/v1/sys/mounts"),
        ("GET", "/v1/sys/policies/acl/app-creds"),
        ("POST", "/v1/sys/leases/revoke-prefix/db"),
    ] {
        let (status, body) = c.req(method, path, None).await?;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["errors"], json!([ACL_DENIED]), "{method} {path}");
    }
    // The default policy lets a token look itself up.
    let (status, body) = c.get("/v1/auth/token/lookup-self").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["id"], t.as_str());
    assert_eq!(body["data"]["policies"], json!(["app-creds", "default"]));
    assert_eq!(body["data"]["display_name"], "token");
    // The credential it got is real and leased.
    assert!(env.lookup(&creds.lease_id).await.is_ok());
    // An unknown token is a 403 everywhere.
    let nobody = root.with_token(Some("hvs.nobodyhasthistoken0000"));
    let (status, _) = nobody.get("/v1/db/creds/app").await?;
    assert_eq!(status, 403);
    Ok(())
}

#[tokio::test]
async fn create_and_update_are_told_apart_by_existence() -> Result<()> {
    let env = DbEnv::start("acl_create", &["*"]).await?;
    env.write_role("existing", json!({})).await?;
    let root = &env.client;
    policy(
        root,
        "create-only",
        r#"path "db/roles/*" { capabilities = ["create"] }"#,
    )
    .await?;
    policy(
        root,
        "update-only",
        r#"path "db/roles/*" { capabilities = ["update"] }"#,
    )
    .await?;
    let (creator, _) = token(root, json!({"policies": "create-only"})).await?;
    let (updater, _) = token(root, json!({"policies": "update-only"})).await?;
    let role = json!({"db_name": "pg", "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"]});
    let c = root.with_token(Some(&creator));
    let u = root.with_token(Some(&updater));
    // A create-only token creates a new role but cannot change one.
    let (status, body) = c.post("/v1/db/roles/fresh", role.clone()).await?;
    assert_eq!(status, 204, "{body}");
    let (status, _) = c.post("/v1/db/roles/existing", role.clone()).await?;
    assert_eq!(status, 403);
    // An update-only token changes an existing role but cannot create one.
    let (status, body) = u.post("/v1/db/roles/existing", role.clone()).await?;
    assert_eq!(status, 204, "{body}");
    let (status, _) = u.post("/v1/db/roles/brand-new", role).await?;
    assert_eq!(status, 403);
    let (status, _) = root.get("/v1/db/roles/brand-new").await?;
    assert_eq!(status, 404, "a refused create leaves nothing");
    Ok(())
}

#[tokio::test]
async fn children_die_with_their_parent_and_uses_run_out() -> Result<()> {
    let env = DbEnv::start("acl_tree", &["*"]).await?;
    let root = &env.client;
    policy(
        root,
        "tokens",
        r#"path "auth/token/create" { capabilities = ["update"] }"#,
    )
    .await?;
    let (parent, _) = token(root, json!({"policies": ["tokens"]})).await?;
    let p = root.with_token(Some(&parent));
    // A child may only have a subset of its parent's policies.
    let (status, body) = p.post("/v1/auth/token/create", json!({"policies": ["root"]})).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"], json!(["child policies must be subset of parent"]));
    let (status, body) = p.post("/v1/auth/token/create", json!({})).await?;
    assert_eq!(status, 200, "{body}");
    let child = body["auth"]["client_token"].as_str().context("child")?.to_string();
    let child_accessor = body["auth"]["accessor"].as_str().context("accessor")?.to_string();
    assert_eq!(body["auth"]["policies"], json!(["default", "tokens"]));
    let (status, body) = root
        .post("/v1/auth/token/lookup-accessor", json!({"accessor": child_accessor}))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["id"], "", "an accessor lookup hides the token");
    assert_eq!(body["data"]["orphan"], false);
    // Revoking the parent revokes the child.
    root.expect("POST", "/v1/auth/token/revoke", Some(json!({"token": parent})), 204)
        .await?;
    for t in [&parent, &child] {
        let (status, _) = root.with_token(Some(t)).get("/v1/auth/token/lookup-self").await?;
        assert_eq!(status, 403, "revoked: {t}");
    }
    let (status, body) = root.post("/v1/auth/token/lookup", json!({"token": child})).await?;
    assert_eq!(
        (status, body["errors"].clone()),
        (403, json!(["bad token"])),
        "as OpenBao"
    );

    // Two uses: the second request is served, then the token is gone.
    let (limited, created) = token(root, json!({"num_uses": 2})).await?;
    assert_eq!(created["auth"]["num_uses"], 2);
    let l = root.with_token(Some(&limited));
    let (status, body) = l.get("/v1/auth/token/lookup-self").await?;
    assert_eq!((status, body["data"]["num_uses"].clone()), (200, json!(1)), "{body}");
    let (status, _) = l.get("/v1/sys/mounts").await?;
    assert_eq!(status, 200);
    let (status, _) = l.get("/v1/sys/mounts").await?;
    assert_eq!(status, 403, "no use left");
    Ok(())
}

#[tokio::test]
async fn token_ttls_renewal_and_bad_input() -> Result<()> {
    let env = DbEnv::start("acl_ttl", &["*"]).await?;
    let root = &env.client;
    let (t, created) = token(
        root,
        json!({"ttl": "1h", "explicit_max_ttl": "2h", "display_name": "ci job", "meta": {"team": "db"}}),
    )
    .await?;
    assert_eq!(created["auth"]["lease_duration"], 3600);
    assert_eq!(created["auth"]["metadata"], json!({"team": "db"}));
    let c = root.with_token(Some(&t));
    let (status, body) = c.get("/v1/auth/token/lookup-self").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["display_name"], "token-ci-job");
    assert_eq!(body["data"]["explicit_max_ttl"], 7200);
    assert_eq!(body["data"]["creation_ttl"], 3600);
    assert!(body["data"]["expire_time"].is_string(), "{body}");
    // Renewal past explicit_max_ttl is capped at it.
    let (status, body) = c.post("/v1/auth/token/renew-self", json!({"increment": "5h"})).await?;
    assert_eq!(status, 200, "{body}");
    let granted = body["auth"]["lease_duration"].as_i64().unwrap_or_default();
    assert!((7100..=7200).contains(&granted), "{body}");
    // The token's expiry is a lease the expiration manager holds.
    // Bad input: a 4xx with Vault's words, nothing made.
    for (body, text) in [
        (json!({"num_uses": -1}), "number of uses cannot be negative"),
        (json!({"ttl": "soon"}), "error converting input for field \"ttl\""),
        (
            json!({"type": "batch", "num_uses": 3}),
            "batch tokens cannot have \"num_uses\" set",
        ),
        (
            json!({"type": "batch", "period": "1h"}),
            "batch tokens cannot have \"period\" set",
        ),
        // Without policies a child of root is a root token: never a batch one.
        (json!({"type": "batch"}), "batch tokens cannot be root tokens"),
    ] {
        let (status, resp) = root.post("/v1/auth/token/create", body.clone()).await?;
        assert_eq!(status, 400, "{body}: {resp}");
        let msg = resp["errors"][0].as_str().unwrap_or_default();
        assert!(msg.starts_with(text), "{body}: {resp}");
    }
    // A token without policies inherits its parent's: root's children are
    // root tokens that never expire.
    let (_, rooted) = token(root, json!({})).await?;
    assert_eq!(rooted["auth"]["policies"], json!(["root"]));
    assert_eq!(rooted["auth"]["lease_duration"], 0);
    Ok(())
}

/// Every lease is indexed by the token that obtained it: revoking a token
/// (or its parent, or its expiry, or its last use) revokes its leases, and
/// their database logins are dropped; a root-issued lease survives.
#[tokio::test]
async fn leases_die_with_the_token_that_obtained_them() -> Result<()> {
    let env = DbEnv::start("acl_leases", &["*"]).await?;
    env.write_role("app", json!({})).await?;
    let root = &env.client;
    policy(
        root,
        "app",
        r#"path "db/creds/app" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["update"] }"#,
    )
    .await?;
    let creds_as = |c: Client| async move {
        let (status, body) = c.get("/v1/db/creds/app").await?;
        anyhow::ensure!(status == 200, "creds: {status} {body}");
        Creds::from_body(body)
    };
    let creds_with = |t: &str| creds_as(root.with_token(Some(t)));
    let kept = creds_as(root.clone()).await?;
    let (parent, _) = token(root, json!({"policies": ["app"]})).await?;
    let (status, body) = root
        .with_token(Some(&parent))
        .post("/v1/auth/token/create", json!({}))
        .await?;
    anyhow::ensure!(status == 200, "child: {status} {body}");
    let child = body["auth"]["client_token"].as_str().context("child")?.to_string();
    let of_parent = creds_with(&parent).await?;
    let of_child = creds_with(&child).await?;
    for c in [&kept, &of_parent, &of_child] {
        assert!(env.scratch.role_exists(&c.username).await?, "{}", c.username);
    }
    // Revoking the parent revokes the child, and both tokens' leases: the
    // logins are gone from PostgreSQL and the leases from Warden.
    root.expect("POST", "/v1/auth/token/revoke", Some(json!({"token": parent})), 204)
        .await?;
    for c in [&of_parent, &of_child] {
        assert!(
            !env.scratch.role_exists(&c.username).await?,
            "{} outlived its token",
            c.username
        );
        assert!(
            env.lookup(&c.lease_id).await.is_err(),
            "lease {} outlived its token",
            c.lease_id
        );
    }
    assert!(
        env.scratch.role_exists(&kept.username).await?,
        "the root token's lease stays"
    );
    assert!(env.lookup(&kept.lease_id).await.is_ok());

    // A token's expiry does the same.
    let (short, _) = token(root, json!({"policies": ["app"], "ttl": "2s"})).await?;
    let of_short = creds_with(&short).await?;
    let gone = env
        .scratch
        .wait_roles_gone(
            std::slice::from_ref(&of_short.username),
            std::time::Duration::from_secs(30),
        )
        .await?;
    assert!(gone.is_empty(), "login of an expired token stayed: {gone:?}");

    // And its last use: a one-use token's credential is revoked with it,
    // as Vault does.
    let (once, _) = token(root, json!({"policies": ["app"], "num_uses": 1})).await?;
    let of_once = creds_with(&once).await?;
    let gone = env
        .scratch
        .wait_roles_gone(
            std::slice::from_ref(&of_once.username),
            std::time::Duration::from_secs(30),
        )
        .await?;
    assert!(gone.is_empty(), "login of a used-up token stayed: {gone:?}");
    Ok(())
}

/// Batch tokens (`hvb.`): nothing stored, not renewable nor revocable, no
/// children; a non-orphan dies with its parent, and its leases are the
/// parent's (revoked with it) and never outlive the batch token.
#[tokio::test]
async fn batch_tokens_carry_themselves_and_die_with_their_parent() -> Result<()> {
    let env = DbEnv::start("acl_batch", &["*"]).await?;
    env.write_role("app", json!({"default_ttl": "1h"})).await?;
    let root = &env.client;
    policy(
        root,
        "app",
        r#"path "db/creds/app" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["update"] }"#,
    )
    .await?;
    let accessors = || async {
        let (_, body) = root.list("/v1/auth/token/accessors").await?;
        anyhow::Ok(body["data"]["keys"].as_array().map_or(0, Vec::len))
    };
    let stored_before = accessors().await?;

    // Made by root: OpenBao's answer, renewable asked but not granted.
    let (batch, created) = token(
        root,
        json!({"type": "batch", "policies": ["app"], "ttl": "20m", "renewable": true, "display_name": "w2-batch"}),
    )
    .await?;
    assert!(batch.starts_with("hvb."), "{batch}");
    let auth = &created["auth"];
    assert_eq!(auth["accessor"], "", "{created}");
    assert_eq!(auth["token_type"], "batch");
    assert_eq!(auth["renewable"], false);
    assert_eq!(auth["orphan"], false);
    assert_eq!(auth["lease_duration"], 1200);
    assert_eq!(auth["policies"], json!(["app", "default"]));
    assert_eq!(accessors().await?, stored_before, "a batch token is not stored");

    let as_batch = root.with_token(Some(&batch));
    for (status, body) in [
        as_batch.get("/v1/auth/token/lookup-self").await?,
        root.post("/v1/auth/token/lookup", json!({"token": batch})).await?,
    ] {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["type"], "batch");
        assert_eq!(body["data"]["id"], batch.as_str());
        assert_eq!(body["data"]["display_name"], "token-w2-batch");
        assert_eq!(body["data"]["renewable"], false);
        assert!(
            body["data"]["ttl"].as_i64().is_some_and(|t| (1100..=1200).contains(&t)),
            "{body}"
        );
    }
    // Its policy holds: creds yes, the connection config no.
    let (status, _) = as_batch.get("/v1/db/config/pg").await?;
    assert_eq!(status, 403);
    // What a batch token cannot do, in Vault's words.
    for (c, path, body, text) in [
        (
            root,
            "auth/token/renew",
            json!({"token": batch}),
            "batch tokens cannot be renewed",
        ),
        (
            root,
            "auth/token/revoke",
            json!({"token": batch}),
            "batch tokens cannot be revoked",
        ),
        (
            &as_batch,
            "auth/token/revoke-self",
            json!({}),
            "batch tokens cannot be revoked",
        ),
        (
            &as_batch,
            "auth/token/renew-self",
            json!({}),
            "batch tokens cannot be renewed",
        ),
        (
            &as_batch,
            "auth/token/create",
            json!({"policies": ["app"]}),
            "batch tokens cannot create more tokens",
        ),
    ] {
        let (status, resp) = c.post(&format!("/v1/{path}"), body).await?;
        assert_eq!(
            (status, resp["errors"][0].as_str()),
            (400, Some(text)),
            "{path}: {resp}"
        );
    }
    // A forged or altered batch token is nobody.
    let mut altered = batch.clone().into_bytes();
    let i = altered.len() - 3;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered)?;
    let (status, _) = root
        .with_token(Some(&altered))
        .get("/v1/auth/token/lookup-self")
        .await?;
    assert_eq!(status, 403);

    // A batch child of a service token: its lease is the parent's and
    // ends with the batch token (30 s, not the role's hour).
    let (parent, _) = token(root, json!({"policies": ["app"]})).await?;
    let (status, body) = root
        .with_token(Some(&parent))
        .post("/v1/auth/token/create", json!({"type": "batch", "ttl": "30s"}))
        .await?;
    anyhow::ensure!(status == 200, "batch child: {status} {body}");
    let child = body["auth"]["client_token"].as_str().context("child")?.to_string();
    let (status, body) = root.with_token(Some(&child)).get("/v1/db/creds/app").await?;
    anyhow::ensure!(status == 200, "creds: {status} {body}");
    assert!(body["lease_duration"].as_i64().is_some_and(|d| d <= 30), "{body}");
    let creds = Creds::from_body(body)?;
    assert!(env.scratch.role_exists(&creds.username).await?);
    // Renewed, it still ends with the batch token.
    let (status, body) = root
        .put(
            "/v1/sys/leases/renew",
            json!({"lease_id": creds.lease_id, "increment": "1h"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert!(body["lease_duration"].as_i64().is_some_and(|d| d <= 30), "{body}");
    root.expect("POST", "/v1/auth/token/revoke", Some(json!({"token": parent})), 204)
        .await?;
    let (status, _) = root.with_token(Some(&child)).get("/v1/auth/token/lookup-self").await?;
    assert_eq!(status, 403, "a batch token outlived its parent");
    assert!(
        !env.scratch.role_exists(&creds.username).await?,
        "the batch token's login outlived its parent"
    );
    // An orphan batch token outlives nothing but itself.
    let (orphan, created) = token(root, json!({"type": "batch", "policies": ["app"], "no_parent": true})).await?;
    assert_eq!(created["auth"]["orphan"], true);
    let (status, _) = root.with_token(Some(&orphan)).get("/v1/db/creds/app").await?;
    assert_eq!(status, 200);
    Ok(())
}

/// `sys/capabilities` and `sys/capabilities-accessor` answer for another
/// token; the response-wrapping policy cannot be given to a token.
#[tokio::test]
async fn capabilities_of_another_token() -> Result<()> {
    let env = DbEnv::start("acl_caps", &["*"]).await?;
    let root = &env.client;
    policy(root, "reader", r#"path "db/creds/*" { capabilities = ["read"] }"#).await?;
    let (t, created) = token(root, json!({"policies": ["reader"]})).await?;
    let accessor = created["auth"]["accessor"].as_str().context("accessor")?;
    let (status, body) = root
        .post(
            "/v1/sys/capabilities",
            json!({"token": t, "paths": ["db/creds/app", "db/config/pg"]}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["db/creds/app"], json!(["read"]));
    assert_eq!(body["data"]["db/config/pg"], json!(["deny"]));
    let (status, body) = root
        .post(
            "/v1/sys/capabilities-accessor",
            json!({"accessor": accessor, "path": "db/creds/x"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["capabilities"], json!(["read"]));
    assert_eq!(body["capabilities"], json!(["read"]), "copied to the top level");
    for (path, field, value, text) in [
        (
            "/v1/sys/capabilities",
            "token",
            "hvs.nosuchtoken",
            "1 error occurred:\n\t* invalid token\n\n",
        ),
        (
            "/v1/sys/capabilities-accessor",
            "accessor",
            "nosuchaccessor",
            "1 error occurred:\n\t* invalid accessor\n\n",
        ),
        (
            "/v1/auth/token/lookup-accessor",
            "accessor",
            "nosuchaccessor",
            "1 error occurred:\n\t* invalid accessor\n\n",
        ),
        ("/v1/auth/token/renew", "token", "", "missing token ID"),
    ] {
        let (status, body) = root.post(path, json!({field: value, "paths": ["x"]})).await?;
        assert_eq!((status, body["errors"].clone()), (400, json!([text])), "{path}");
    }
    // Revoking a token that is not there is done already (OpenBao's 204).
    root.expect(
        "POST",
        "/v1/auth/token/revoke",
        Some(json!({"token": "hvs.nosuchtoken"})),
        204,
    )
    .await?;
    // The token itself cannot ask about others (no policy grants it).
    let (status, _) = root
        .with_token(Some(&t))
        .post("/v1/sys/capabilities", json!({"token": t, "paths": ["x"]}))
        .await?;
    assert_eq!(status, 403);
    let (status, body) = root
        .post(
            "/v1/auth/token/create",
            json!({"policies": ["response-wrapping"], "no_default_policy": true}),
        )
        .await?;
    assert_eq!(
        (status, body["errors"].clone()),
        (400, json!(["cannot assign policy \"response-wrapping\""]))
    );
    Ok(())
}

/// Token roles: written, read, listed and deleted as OpenBao's; a token
/// made against a role gets the role's terms, whatever its caller holds.
#[tokio::test]
async fn token_roles_decide_what_their_tokens_get() -> Result<()> {
    let env = DbEnv::start("acl_roles", &["*"]).await?;
    let root = &env.client;
    policy(root, "w2-reader", r#"path "db/creds/*" { capabilities = ["read"] }"#).await?;
    let (status, _) = root.list("/v1/auth/token/roles").await?;
    assert_eq!(status, 404, "no roles yet");
    root.expect(
        "POST",
        "/v1/auth/token/roles/w2-role",
        Some(
            json!({"allowed_policies": ["default", "w2-reader"], "disallowed_policies": ["w2-tokcreator"],
            "orphan": true, "renewable": true, "path_suffix": "w2-v1", "token_explicit_max_ttl": "4h",
            "token_type": "service", "token_no_default_policy": false, "allowed_entity_aliases": ["w2-alias"]}),
        ),
        204,
    )
    .await?;
    // OpenBao's answer, recorded (id_token_role_read).
    let (status, body) = root.get("/v1/auth/token/roles/w2-role").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({"allowed_entity_aliases": ["w2-alias"], "allowed_policies": ["default", "w2-reader"],
            "allowed_policies_glob": [], "disallowed_policies": ["w2-tokcreator"], "disallowed_policies_glob": [],
            "explicit_max_ttl": 0, "name": "w2-role", "orphan": true, "path_suffix": "w2-v1", "period": 0,
            "renewable": true, "token_explicit_max_ttl": 14400, "token_no_default_policy": false,
            "token_period": 0, "token_type": "service"})
    );
    root.expect(
        "POST",
        "/v1/auth/token/roles/w2-periodic",
        Some(json!({"allowed_policies": ["default"], "token_period": "1h"})),
        204,
    )
    .await?;
    let (_, body) = root.list("/v1/auth/token/roles").await?;
    assert_eq!(body["data"]["keys"], json!(["w2-periodic", "w2-role"]));

    // A token with only the right to create against the role gets the
    // role's policies, which it does not hold itself.
    policy(
        root,
        "creator",
        r#"path "auth/token/create/w2-role" { capabilities = ["update"] }"#,
    )
    .await?;
    let (creator, _) = token(root, json!({"policies": ["creator"]})).await?;
    let c = root.with_token(Some(&creator));
    let (status, body) = c
        .post(
            "/v1/auth/token/create/w2-role",
            json!({"policies": ["w2-reader"], "ttl": "30m", "meta": {"via": "role"}}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let auth = &body["auth"];
    assert_eq!(auth["policies"], json!(["default", "w2-reader"]));
    assert_eq!(auth["orphan"], true);
    assert_eq!(auth["lease_duration"], 1800);
    assert_eq!(auth["metadata"], json!({"via": "role"}));
    let made = auth["client_token"].as_str().context("token")?;
    let (status, body) = root.post("/v1/auth/token/lookup", json!({"token": made})).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["path"], "auth/token/create/w2-role/w2-v1");
    assert_eq!(body["data"]["role"], "w2-role");
    // As OpenBao: the lookup shows what was asked (nothing); the role's
    // explicit max TTL still caps a renewal, read from the role each time.
    assert_eq!(body["data"]["explicit_max_ttl"], 0);
    let (status, body) = root
        .post("/v1/auth/token/renew", json!({"token": made, "increment": "5h"}))
        .await?;
    assert_eq!(status, 200, "{body}");
    let granted = body["auth"]["lease_duration"].as_i64().unwrap_or_default();
    assert!((14000..=14400).contains(&granted), "{body}");
    let (status, _) = root.with_token(Some(made)).get("/v1/db/creds/nosuch").await?;
    assert_ne!(status, 403, "the role's policy is in force");
    // Revoking the creator does not take the orphan with it.
    root.expect("POST", "/v1/auth/token/revoke", Some(json!({"token": creator})), 204)
        .await?;
    let (status, _) = root.with_token(Some(made)).get("/v1/auth/token/lookup-self").await?;
    assert_eq!(status, 200);

    // Without policies: the role's allowed ones. A periodic role's token.
    let (status, body) = root.post("/v1/auth/token/create/w2-role", json!({"ttl": "5m"})).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["policies"], json!(["default", "w2-reader"]));
    assert_eq!(body["auth"]["lease_duration"], 300);
    let (status, body) = root.post("/v1/auth/token/create/w2-periodic", json!({})).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["lease_duration"], 3600);

    // Bad input, with OpenBao's words; nothing stored.
    for (path, body, text) in [
        ("/v1/auth/token/create/nosuch", json!({}), "unknown role nosuch".to_string()),
        (
            "/v1/auth/token/create/w2-role",
            json!({"policies": ["w2-other"]}),
            r#"token policies (["default" "w2-other"]) must be subset of the role's allowed policies (["default" "w2-reader"]) or glob policies ([])"#.to_string(),
        ),
        (
            "/v1/auth/token/roles/w2-bad",
            json!({"path_suffix": "a/b"}),
            r"given role path suffix contains invalid characters; must match \w[\w-.]+\w".to_string(),
        ),
        (
            "/v1/auth/token/roles/w2-bad",
            json!({"token_type": "bogus"}),
            "invalid 'token_type' value \"bogus\"".to_string(),
        ),
    ] {
        let (status, got) = root.post(path, body).await?;
        assert_eq!((status, got["errors"].clone()), (400, json!([text])), "{path}");
    }
    let (status, _) = root.get("/v1/auth/token/roles/w2-bad").await?;
    assert_eq!(status, 404, "a refused role is not stored");
    root.expect(
        "POST",
        "/v1/auth/token/roles/w2-deny",
        Some(json!({"disallowed_policies": ["w2-reader"]})),
        204,
    )
    .await?;
    let (status, body) = root
        .post("/v1/auth/token/create/w2-deny", json!({"policies": ["w2-reader"]}))
        .await?;
    assert_eq!(
        (status, body["errors"].clone()),
        (400, json!(["token policy \"w2-reader\" is disallowed by this role"]))
    );

    // Accessors: listed for sudo callers only.
    let (status, body) = root.list("/v1/auth/token/accessors").await?;
    assert_eq!(status, 200, "{body}");
    assert!(!body["data"]["keys"].as_array().context("keys")?.is_empty());
    let (status, _) = root.with_token(Some(made)).list("/v1/auth/token/accessors").await?;
    assert_eq!(status, 403);

    for name in ["w2-role", "w2-periodic", "w2-deny"] {
        root.expect("DELETE", &format!("/v1/auth/token/roles/{name}"), None, 204)
            .await?;
    }
    // A token whose role is gone is not renewed (Vault's words).
    let (status, body) = root.post("/v1/auth/token/renew", json!({"token": made})).await?;
    assert_eq!(
        (status, body["errors"].clone()),
        (
            400,
            json!(["original token role (w2-role) could not be found, not renewing"])
        )
    );
    root.expect("DELETE", "/v1/auth/token/roles/w2-role", None, 204).await?;
    let (status, _) = root.get("/v1/auth/token/roles/w2-role").await?;
    assert_eq!(status, 404);
    let (status, _) = root.list("/v1/auth/token/roles").await?;
    assert_eq!(status, 404);
    Ok(())
}
