//! Namespaces (issue 16, scope 1) against the real binary and a real
//! PostgreSQL: two namespaces with the same mount, connection, role and
//! policy names are isolated in every direction (tokens, LIST of mounts,
//! roles, leases, policies and accessors, creds, revoke-prefix, lease
//! lookups, audit lines tagged with the namespace); nested namespaces
//! answer the same through the X-Vault-Namespace header and through a path
//! prefix; deleting a namespace drops its database logins and its tokens
//! and is refused while it has children; bad input is a 4xx that stores
//! nothing; the real `bao` CLI runs the whole flow with `-namespace`.

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use warden_tests::client::Client;
use warden_tests::fixtures::{audit_entries, keys_of, postgres_config};
use warden_tests::util::TempDir;
use warden_tests::{CREATE_ROLE, Creds, Scratch, TestPostgres, WardenServer};

/// The same client, in namespace `ns` (the X-Vault-Namespace header).
fn in_ns(client: &Client, ns: &str) -> Client {
    client.with_header("X-Vault-Namespace", ns)
}

/// Mount db/, write db/config/pg and db/roles/app (with `ttl`) through
/// `client` (in some namespace).
async fn tenant_setup(client: &Client, scratch: &Scratch, ttl: &str) -> Result<()> {
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/config/pg",
            Some(postgres_config(scratch, &["app"])),
            204,
        )
        .await?;
    client
        .expect(
            "POST",
            "/v1/db/roles/app",
            Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE], "default_ttl": ttl, "max_ttl": "24h"})),
            204,
        )
        .await?;
    Ok(())
}

/// A token made in the namespace `client` is in, with `policies`.
async fn token_in(client: &Client, policies: &[&str]) -> Result<String> {
    let body = client
        .expect(
            "POST",
            "/v1/auth/token/create",
            Some(json!({"policies": policies, "ttl": "1h"})),
            200,
        )
        .await?;
    body["auth"]["client_token"]
        .as_str()
        .map(String::from)
        .with_context(|| format!("no client_token in {body}"))
}

#[tokio::test]
async fn two_namespaces_with_the_same_names_are_isolated() -> Result<()> {
    let scratch = TestPostgres::shared().scratch("ns_iso").await?;
    let server = WardenServer::start().await?;
    let root = server.client();
    let dir = TempDir::new("ns-audit")?;
    let log = dir.path().join("audit.log");
    root.expect(
        "PUT",
        "/v1/sys/audit/file",
        Some(json!({"type": "file", "options": {"file_path": log.to_str().context("utf-8")?}})),
        204,
    )
    .await?;

    let a_ns = root
        .expect(
            "POST",
            "/v1/sys/namespaces/team-a",
            Some(json!({"custom_metadata": {"owner": "a"}})),
            200,
        )
        .await?;
    ensure!(
        a_ns["data"]["path"] == "team-a/" && a_ns["data"]["custom_metadata"]["owner"] == "a",
        "{a_ns}"
    );
    let a_id = a_ns["data"]["id"].as_str().context("id")?.to_string();
    root.expect("POST", "/v1/sys/namespaces/team-b", Some(json!({})), 200)
        .await?;
    let listed = root.expect("LIST", "/v1/sys/namespaces", None, 200).await?;
    ensure!(keys_of(&listed)? == ["team-a/", "team-b/"], "{listed}");
    ensure!(listed["data"]["key_info"]["team-a/"]["id"] == a_id.as_str(), "{listed}");

    // The same names in both: a through the header, b through the path.
    let a = in_ns(&root, "team-a");
    let b_prefix = |path: &str| path.replacen("/v1/", "/v1/team-b/", 1);
    tenant_setup(&a, &scratch, "1h").await?;
    let b = in_ns(&root, "team-b");
    tenant_setup(&b, &scratch, "2h").await?;
    for (client, policy) in [
        (&a, "path \"db/creds/app\" { capabilities = [\"read\"] }"),
        (&b, "path \"db/roles/*\" { capabilities = [\"read\"] }"),
    ] {
        client
            .expect(
                "PUT",
                "/v1/sys/policies/acl/tenant",
                Some(json!({"policy": policy})),
                204,
            )
            .await?;
    }
    // The root namespace sees none of it.
    let (status, _) = root.get("/v1/db/roles/app").await?;
    ensure!(status == 404, "db/ of the root namespace: {status}");
    let mounts = root.expect("GET", "/v1/sys/mounts", None, 200).await?;
    ensure!(
        mounts["data"].get("db/").is_none() && mounts["data"].get("team-a/db/").is_none(),
        "{mounts}"
    );
    let policies = root.expect("LIST", "/v1/sys/policies/acl", None, 200).await?;
    ensure!(!keys_of(&policies)?.contains(&"tenant".to_string()), "{policies}");
    // Each sees its own.
    let a_mounts = a.expect("GET", "/v1/sys/mounts", None, 200).await?;
    ensure!(a_mounts["data"]["db/"]["type"] == "database", "{a_mounts}");
    let a_role = a.expect("GET", "/v1/db/roles/app", None, 200).await?;
    let b_role = root.expect("GET", &b_prefix("/v1/db/roles/app"), None, 200).await?;
    ensure!(
        a_role["data"]["default_ttl"] == 3600 && b_role["data"]["default_ttl"] == 7200,
        "{a_role} {b_role}"
    );
    let a_policy = a.expect("GET", "/v1/sys/policies/acl/tenant", None, 200).await?;
    ensure!(
        a_policy["data"]["policy"]
            .as_str()
            .is_some_and(|p| p.contains("db/creds/app")),
        "{a_policy}"
    );
    let b_policies = b.expect("LIST", "/v1/sys/policies/acl", None, 200).await?;
    ensure!(keys_of(&b_policies)?.contains(&"default".to_string()), "{b_policies}");

    // Tokens: made in a namespace, they end in its id and reach only it.
    let a_token = token_in(&a, &["tenant"]).await?;
    ensure!(a_token.ends_with(&format!(".{a_id}")), "{a_token}");
    let b_token = token_in(&b, &["tenant"]).await?;
    let a_user = root.with_token(Some(&a_token));
    let b_user = root.with_token(Some(&b_token));
    let a_creds = Creds::from_body(
        in_ns(&a_user, "team-a")
            .expect("GET", "/v1/db/creds/app", None, 200)
            .await?,
    )?;
    ensure!(a_creds.lease_duration == 3600, "{:?}", a_creds.body);
    ensure!(
        a_creds.lease_id.starts_with("db/creds/app/"),
        "lease ids are shown from the namespace: {}",
        a_creds.lease_id
    );
    // The same token through the path prefix.
    let again = Creds::from_body(a_user.expect("GET", "/v1/team-a/db/creds/app", None, 200).await?)?;
    ensure!(scratch.logs_in(&a_creds.username, &a_creds.password).await);
    // b's policy does not grant creds; a's token does not reach b, nor the root.
    for (client, path) in [
        (&in_ns(&b_user, "team-b"), "/v1/db/creds/app"),
        (&a_user, "/v1/team-b/db/creds/app"),
        (&in_ns(&a_user, "team-b"), "/v1/db/roles/app"),
        (&a_user, "/v1/sys/mounts"),
        (&a_user, "/v1/sys/policies/acl"),
    ] {
        let (status, body) = client.get(path).await?;
        ensure!(status == 403, "{path}: {status} {body}");
    }
    let b_read = in_ns(&b_user, "team-b")
        .expect("GET", "/v1/db/roles/app", None, 200)
        .await?;
    ensure!(b_read["data"]["default_ttl"] == 7200, "{b_read}");
    // lookup-self from the root namespace answers for the token's own.
    let me = a_user.expect("GET", "/v1/auth/token/lookup-self", None, 200).await?;
    ensure!(me["data"]["namespace_path"] == "team-a/", "{me}");
    let b_creds = Creds::from_body(b.expect("GET", "/v1/db/creds/app", None, 200).await?)?;

    // Leases: listed and looked up in their namespace only.
    let a_leases = a
        .expect("LIST", "/v1/sys/leases/lookup/db/creds/app", None, 200)
        .await?;
    let mut a_keys = keys_of(&a_leases)?;
    a_keys.sort();
    let mut want: Vec<String> = [&a_creds.lease_id, &again.lease_id]
        .iter()
        .map(|id| id.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    want.sort();
    ensure!(a_keys == want, "{a_leases} vs {want:?}");
    let (status, _) = root.list("/v1/sys/leases/lookup/db/creds/app").await?;
    ensure!(status == 404, "the root namespace has no db/ leases");
    let looked = a
        .expect(
            "PUT",
            "/v1/sys/leases/lookup",
            Some(json!({"lease_id": a_creds.lease_id})),
            200,
        )
        .await?;
    ensure!(looked["data"]["id"] == a_creds.lease_id.as_str(), "{looked}");
    let (status, _) = b
        .req(
            "PUT",
            "/v1/sys/leases/lookup",
            Some(json!({"lease_id": a_creds.lease_id})),
        )
        .await?;
    ensure!(status == 400, "a's lease looked up in b: {status}");
    // The root namespace reaches a's lease by its full id.
    root.expect(
        "PUT",
        "/v1/sys/leases/lookup",
        Some(json!({"lease_id": format!("team-a/{}", a_creds.lease_id)})),
        200,
    )
    .await?;

    // Token accessors: each namespace lists its own.
    let a_accessors = keys_of(&a.expect("LIST", "/v1/auth/token/accessors", None, 200).await?)?;
    let b_accessors = keys_of(&b.expect("LIST", "/v1/auth/token/accessors", None, 200).await?)?;
    ensure!(
        a_accessors.len() == 1 && a_accessors[0].ends_with(&a_id),
        "{a_accessors:?}"
    );
    ensure!(
        b_accessors.len() == 1 && !b_accessors.contains(&a_accessors[0]),
        "{b_accessors:?}"
    );
    let (status, _) = b
        .req("POST", "/v1/auth/token/lookup", Some(json!({"token": a_token})))
        .await?;
    ensure!(status == 403, "b looks up a's token: {status}");

    // revoke-prefix in a drops a's logins only.
    a.expect("PUT", "/v1/sys/leases/revoke-prefix/db/creds/app", None, 204)
        .await?;
    ensure!(!scratch.role_exists(&a_creds.username).await?, "a's login was dropped");
    ensure!(!scratch.role_exists(&again.username).await?);
    ensure!(
        scratch.logs_in(&b_creds.username, &b_creds.password).await,
        "b's login stays"
    );
    b.expect(
        "PUT",
        "/v1/sys/leases/lookup",
        Some(json!({"lease_id": b_creds.lease_id})),
        200,
    )
    .await?;

    // Audit lines carry the namespace; paths are from it.
    let entries = audit_entries(&log)?;
    let creds_lines: Vec<&Value> = entries
        .iter()
        .filter(|e| e["type"] == "request" && e["request"]["path"] == "db/creds/app")
        .collect();
    ensure!(creds_lines.len() >= 3, "{} creds requests recorded", creds_lines.len());
    for ns in ["team-a/", "team-b/"] {
        ensure!(
            creds_lines.iter().any(|e| e["request"]["namespace"]["path"] == ns),
            "no creds line tagged {ns}"
        );
    }
    ensure!(
        creds_lines
            .iter()
            .filter(|e| e["request"]["namespace"]["path"] == "team-a/")
            .all(|e| e["request"]["namespace"]["id"] == a_id.as_str()),
        "a's lines carry its id"
    );
    let root_line = entries
        .iter()
        .find(|e| e["type"] == "request" && e["request"]["path"] == "sys/namespaces/team-a")
        .context("the namespace's creation was recorded")?;
    ensure!(
        root_line["request"]["namespace"] == json!({"id": "root"}),
        "{root_line}"
    );
    Ok(())
}

#[tokio::test]
async fn nested_namespaces_agree_by_header_and_prefix_and_deleting_drops_their_logins() -> Result<()> {
    let scratch = TestPostgres::shared().scratch("ns_nest").await?;
    let server = WardenServer::start().await?;
    let root = server.client();
    root.expect("POST", "/v1/sys/namespaces/team-a", None, 200).await?;
    let a = in_ns(&root, "team-a");
    let prod = a.expect("POST", "/v1/sys/namespaces/prod", None, 200).await?;
    ensure!(prod["data"]["path"] == "team-a/prod/", "{prod}");
    let by_prefix = root.expect("GET", "/v1/team-a/sys/namespaces/prod", None, 200).await?;
    let by_header = a.expect("GET", "/v1/sys/namespaces/prod", None, 200).await?;
    let by_both = in_ns(&root, "/team-a/")
        .expect("GET", "/v1/sys/namespaces/prod", None, 200)
        .await?;
    ensure!(
        by_prefix["data"] == prod["data"] && by_header["data"] == prod["data"] && by_both["data"] == prod["data"],
        "{by_prefix} {by_header} {by_both}"
    );
    let (status, body) = root.get("/v1/sys/namespaces/team-a/prod").await?;
    ensure!(
        status == 400 && body.to_string().contains("cannot contain /"),
        "{status} {body}"
    );
    ensure!(keys_of(&a.expect("LIST", "/v1/sys/namespaces", None, 200).await?)? == ["prod/"]);
    ensure!(keys_of(&root.expect("LIST", "/v1/sys/namespaces", None, 200).await?)? == ["team-a/"]);

    // Mount through the prefix, issue through the header.
    let p = in_ns(&root, "team-a/prod");
    let prefixed = |path: &str| path.replacen("/v1/", "/v1/team-a/prod/", 1);
    root.expect(
        "POST",
        &prefixed("/v1/sys/mounts/db"),
        Some(json!({"type": "database"})),
        204,
    )
    .await?;
    p.expect(
        "POST",
        "/v1/db/config/pg",
        Some(postgres_config(&scratch, &["app"])),
        204,
    )
    .await?;
    p.expect(
        "POST",
        "/v1/db/roles/app",
        Some(json!({"db_name": "pg", "creation_statements": [CREATE_ROLE], "default_ttl": "1h"})),
        204,
    )
    .await?;
    let creds = Creds::from_body(p.expect("GET", "/v1/db/creds/app", None, 200).await?)?;
    let via_parent = Creds::from_body(a.expect("GET", "/v1/prod/db/creds/app", None, 200).await?)?;
    ensure!(scratch.logs_in(&creds.username, &creds.password).await);
    ensure!(scratch.logs_in(&via_parent.username, &via_parent.password).await);
    // team-a's mounts are not prod's.
    let a_mounts = a.expect("GET", "/v1/sys/mounts", None, 200).await?;
    ensure!(
        a_mounts["data"].get("db/").is_none() && a_mounts["data"].get("prod/db/").is_none(),
        "{a_mounts}"
    );
    // A token of the parent, with a policy naming the child's path, reaches it.
    a.expect(
        "PUT",
        "/v1/sys/policies/acl/prod-reader",
        Some(json!({"policy": "path \"prod/db/roles/*\" { capabilities = [\"read\"] }"})),
        204,
    )
    .await?;
    let parent_token = token_in(&a, &["prod-reader"]).await?;
    let prod_token = token_in(&p, &["default"]).await?;
    let parent_user = in_ns(&root.with_token(Some(&parent_token)), "team-a/prod");
    parent_user.expect("GET", "/v1/db/roles/app", None, 200).await?;
    let (status, _) = parent_user.get("/v1/db/creds/app").await?;
    ensure!(status == 403, "outside the policy: {status}");
    // A child's token does not reach the parent.
    let (status, _) = in_ns(&root.with_token(Some(&prod_token)), "team-a")
        .get("/v1/sys/namespaces/prod")
        .await?;
    ensure!(status == 403, "child token in the parent: {status}");

    // A parent with children is not deleted.
    let (status, body) = root.delete("/v1/sys/namespaces/team-a").await?;
    ensure!(
        status == 400 && body.to_string().contains("child namespaces"),
        "{status} {body}"
    );
    // Deleting prod revokes its leases (the logins are dropped) and tokens.
    a.expect("DELETE", "/v1/sys/namespaces/prod", None, 200).await?;
    ensure!(!scratch.role_exists(&creds.username).await?, "prod's login was dropped");
    ensure!(!scratch.role_exists(&via_parent.username).await?);
    let (status, body) = p.get("/v1/db/roles/app").await?;
    ensure!(
        status == 404 && body.to_string().contains("namespace not found"),
        "{status} {body}"
    );
    let (status, _) = root.get(&prefixed("/v1/db/roles/app")).await?;
    ensure!(status == 404, "prefix into a deleted namespace: {status}");
    let (status, _) = root
        .with_token(Some(&prod_token))
        .get("/v1/auth/token/lookup-self")
        .await?;
    ensure!(status == 403, "a deleted namespace's token: {status}");
    let (status, _) = a.get("/v1/sys/namespaces/prod").await?;
    ensure!(status == 404);
    // Deleting one that is not there: 200 with Vault's warning.
    let gone = a.expect("DELETE", "/v1/sys/namespaces/prod", None, 200).await?;
    ensure!(gone["warnings"][0] == "requested namespace does not exist", "{gone}");
    root.expect("DELETE", "/v1/sys/namespaces/team-a", None, 200).await?;
    let (status, _) = root.list("/v1/sys/namespaces").await?;
    ensure!(status == 404, "no namespace left");
    // The same name again is a new namespace with nothing in it.
    root.expect("POST", "/v1/sys/namespaces/team-a", None, 200).await?;
    let (status, _) = in_ns(&root, "team-a").list("/v1/sys/namespaces").await?;
    ensure!(status == 404);
    let policies = keys_of(
        &in_ns(&root, "team-a")
            .expect("LIST", "/v1/sys/policies/acl", None, 200)
            .await?,
    )?;
    ensure!(!policies.contains(&"prod-reader".to_string()), "{policies:?}");
    Ok(())
}

/// PATCH with the content type Vault requires.
async fn patch(server: &WardenServer, path: &str, body: Value, content_type: &str) -> Result<(u16, Value)> {
    let resp = reqwest::Client::new()
        .patch(format!("{}{path}", server.url()))
        .header("X-Vault-Token", server.root_token())
        .header("Content-Type", content_type)
        .body(body.to_string())
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

#[tokio::test]
async fn bad_namespace_input_is_a_4xx_and_stores_nothing() -> Result<()> {
    let server = WardenServer::start().await?;
    let root = server.client();
    for (name, status, says) in [
        ("bad%20name", 400, "space characters"),
        ("a*b", 400, "cannot be used in a namespace name"),
        ("a%3Fb", 400, "cannot be used in a namespace name"),
        ("sys", 400, "reserved path"),
        ("root", 400, "reserved path"),
    ] {
        let (got, body) = root.post(&format!("/v1/sys/namespaces/{name}"), json!({})).await?;
        ensure!(got == status && body.to_string().contains(says), "{name}: {got} {body}");
    }
    let (got, body) = root
        .post("/v1/sys/namespaces/meta", json!({"custom_metadata": {"n": 1}}))
        .await?;
    ensure!(
        got == 400 && body.to_string().contains("must be strings"),
        "{got} {body}"
    );
    let (status, _) = root.list("/v1/sys/namespaces").await?;
    ensure!(status == 404, "nothing was stored");

    // Unknown namespaces: by header and by prefix.
    let (status, body) = in_ns(&root, "nosuch").get("/v1/sys/mounts").await?;
    ensure!(
        status == 404 && body["errors"][0] == "namespace not found",
        "{status} {body}"
    );
    let (status, body) = root.get("/v1/nosuch/sys/mounts").await?;
    ensure!(
        status == 404 && body.to_string().contains("no handler for route"),
        "{status} {body}"
    );

    // A mount and a namespace cannot take each other's path.
    root.expect("POST", "/v1/sys/mounts/shop", Some(json!({"type": "database"})), 204)
        .await?;
    let (status, body) = root.post("/v1/sys/namespaces/shop", json!({})).await?;
    ensure!(
        status == 400 && body.to_string().contains("already in use"),
        "{status} {body}"
    );
    root.expect("POST", "/v1/sys/namespaces/team", None, 200).await?;
    for path in ["team", "team/db"] {
        let (status, body) = root
            .post(&format!("/v1/sys/mounts/{path}"), json!({"type": "database"}))
            .await?;
        ensure!(
            status == 400 && body.to_string().contains("already in use"),
            "{path}: {status} {body}"
        );
    }
    // Paths that only the root namespace serves.
    for path in ["/v1/sys/audit", "/v1/sys/quotas/config", "/v1/sys/seal-status"] {
        let (status, _) = in_ns(&root, "team").get(path).await?;
        ensure!(status == 404, "{path} in a namespace: {status}");
    }
    // PATCH: Vault's content type, a namespace that is there.
    let (status, body) = patch(
        &server,
        "/v1/sys/namespaces/team",
        json!({"custom_metadata": {"x": "y"}}),
        "application/json",
    )
    .await?;
    ensure!(
        status == 415 && body.to_string().contains("merge-patch"),
        "{status} {body}"
    );
    let merge = "application/merge-patch+json";
    let (status, _) = patch(
        &server,
        "/v1/sys/namespaces/nosuch",
        json!({"custom_metadata": {"x": "y"}}),
        merge,
    )
    .await?;
    ensure!(status == 400);
    let (status, body) = patch(
        &server,
        "/v1/sys/namespaces/team",
        json!({"custom_metadata": {"x": "y", "n": null}}),
        merge,
    )
    .await?;
    ensure!(
        status == 200 && body["data"]["custom_metadata"] == json!({"x": "y"}),
        "{status} {body}"
    );
    let (status, _) = patch(
        &server,
        "/v1/sys/namespaces/team",
        json!({"custom_metadata": {"x": 2}}),
        merge,
    )
    .await?;
    ensure!(status == 400);
    let read = root.expect("GET", "/v1/sys/namespaces/team", None, 200).await?;
    ensure!(
        read["data"]["custom_metadata"] == json!({"x": "y"}),
        "a refused patch stored nothing: {read}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bao_cli_works_in_namespaces() -> Result<()> {
    let bin = tokio::task::spawn_blocking(warden_tests::bao::ensure_bao).await??;
    let scratch = TestPostgres::shared().scratch("ns_bao").await?;
    let server = WardenServer::start().await?;
    let mut bao = warden_tests::bao::Bao::new(&bin, &server.url())?;
    bao.token = Some(server.root_token().to_string());
    let url = scratch.connection_url_template();
    let (user, password) = (scratch.admin_user.clone(), scratch.admin_password.clone());
    let (creds, token) = tokio::task::spawn_blocking(move || -> Result<(Value, Value)> {
        let json = |run: warden_tests::bao::Run| -> Result<Value> {
            serde_json::from_str(&run.stdout).with_context(|| format!("not JSON: {run}"))
        };
        bao.expect(&["namespace", "create", "team-a"], 0)?;
        bao.expect(&["namespace", "create", "-namespace=team-a", "prod"], 0)?;
        let listed = bao.expect(&["namespace", "list"], 0)?;
        ensure!(listed.stdout.contains("team-a/"), "{listed}");
        let nested = bao.expect(&["namespace", "list", "-namespace=team-a"], 0)?;
        ensure!(nested.stdout.contains("prod/"), "{nested}");
        let looked = json(bao.expect(&["namespace", "lookup", "-format=json", "team-a"], 0)?)?;
        ensure!(
            looked["path"] == "team-a/" || looked["data"]["path"] == "team-a/",
            "{looked}"
        );
        let ns = "-namespace=team-a";
        bao.expect(&["secrets", "enable", ns, "-path=db", "database"], 0)?;
        bao.expect(
            &[
                "write",
                ns,
                "db/config/pg",
                "plugin_name=postgresql-database-plugin",
                &format!("connection_url={url}"),
                &format!("username={user}"),
                &format!("password={password}"),
                "allowed_roles=app",
            ],
            0,
        )?;
        bao.expect(
            &[
                "write",
                ns,
                "db/roles/app",
                "db_name=pg",
                &format!("creation_statements={CREATE_ROLE}"),
                "default_ttl=1h",
            ],
            0,
        )?;
        let secrets = bao.expect(&["secrets", "list", ns], 0)?;
        ensure!(secrets.stdout.contains("db/"), "{secrets}");
        let root_secrets = bao.expect(&["secrets", "list"], 0)?;
        ensure!(!root_secrets.stdout.contains("db/"), "{root_secrets}");
        let creds = json(bao.expect(&["read", ns, "-format=json", "db/creds/app"], 0)?)?;
        let lease = creds["lease_id"].as_str().context("lease_id")?.to_string();
        bao.expect(&["lease", "renew", ns, &lease], 0)?;
        // From the root namespace the relative lease id is no lease.
        bao.expect(&["lease", "renew", &lease], 2)?;
        let token = json(bao.expect(&["token", "create", ns, "-format=json", "-policy=default"], 0)?)?;
        let refused = bao.expect(&["namespace", "delete", "team-a"], 2)?;
        ensure!(refused.stderr.contains("child namespaces"), "{refused}");
        bao.expect(&["namespace", "delete", ns, "prod"], 0)?;
        Ok((creds, token))
    })
    .await??;
    let username = creds["data"]["username"].as_str().context("username")?;
    ensure!(scratch.role_exists(username).await?, "the login is live");
    let client_token = token["auth"]["client_token"].as_str().context("client_token")?;
    let me = server
        .client()
        .with_token(Some(client_token))
        .expect("GET", "/v1/auth/token/lookup-self", None, 200)
        .await?;
    ensure!(me["data"]["namespace_path"] == "team-a/", "{me}");
    // Deleting the namespace drops the login.
    server
        .client()
        .expect("DELETE", "/v1/sys/namespaces/team-a", None, 200)
        .await?;
    ensure!(
        !scratch.role_exists(username).await?,
        "the namespace's login was dropped"
    );
    Ok(())
}

#[tokio::test]
async fn quotas_apply_per_namespace() -> Result<()> {
    let scratch = TestPostgres::shared().scratch("ns_quota").await?;
    let server = WardenServer::start().await?;
    let root = server.client();
    for ns in ["x", "y"] {
        root.expect("POST", &format!("/v1/sys/namespaces/{ns}"), None, 200)
            .await?;
        tenant_setup(&in_ns(&root, ns), &scratch, "1h").await?;
    }
    let (x, y) = (in_ns(&root, "x"), in_ns(&root, "y"));
    // The global lease-count quota is each namespace's own cap.
    root.expect(
        "POST",
        "/v1/sys/quotas/lease-count/default",
        Some(json!({"max_leases": 2})),
        204,
    )
    .await?;
    let first = Creds::from_body(x.expect("GET", "/v1/db/creds/app", None, 200).await?)?;
    x.expect("GET", "/v1/db/creds/app", None, 200).await?;
    let (status, body) = x.get("/v1/db/creds/app").await?;
    ensure!(
        status == 429 && body["errors"][0] == "lease count quota exceeded",
        "{status} {body}"
    );
    for _ in 0..2 {
        y.expect("GET", "/v1/db/creds/app", None, 200).await?;
    }
    x.expect(
        "PUT",
        "/v1/sys/leases/revoke",
        Some(json!({"lease_id": first.lease_id})),
        204,
    )
    .await?;
    x.expect("GET", "/v1/db/creds/app", None, 200).await?;
    root.expect("DELETE", "/v1/sys/quotas/lease-count/default", None, 204)
        .await?;

    // A rate limit on a namespace's path limits that namespace only.
    root.expect(
        "POST",
        "/v1/sys/quotas/rate-limit/x",
        Some(json!({"path": "x", "rate": 2, "interval": "1m"})),
        204,
    )
    .await?;
    let read = root.expect("GET", "/v1/sys/quotas/rate-limit/x", None, 200).await?;
    ensure!(read["data"]["path"] == "x/", "{read}");
    for _ in 0..2 {
        x.expect("GET", "/v1/db/roles/app", None, 200).await?;
    }
    let (status, body) = x.get("/v1/db/roles/app").await?;
    ensure!(
        status == 429 && body.to_string().contains("rate limit quota exceeded"),
        "{status} {body}"
    );
    for _ in 0..4 {
        y.expect("GET", "/v1/db/roles/app", None, 200).await?;
    }
    // Sandbox limits per tenant: a namespace's path is a whole scope.
    root.expect(
        "POST",
        "/v1/sys/quotas/sandbox/y",
        Some(json!({"path": "y/", "max_instances": 4, "max_memory_bytes": 16777216})),
        204,
    )
    .await?;
    y.expect("GET", "/v1/db/creds/app", None, 200).await?;
    // Quotas on a deleted namespace's paths go with it.
    root.expect("DELETE", "/v1/sys/namespaces/y", None, 200).await?;
    let (status, _) = root.get("/v1/sys/quotas/sandbox/y").await?;
    ensure!(
        status == 404,
        "the namespace's sandbox quota was deleted with it: {status}"
    );
    Ok(())
}

#[tokio::test]
async fn an_auth_method_in_a_namespace_issues_that_namespaces_tokens() -> Result<()> {
    let server = WardenServer::start().await?;
    let root = server.client();
    let a_ns = root.expect("POST", "/v1/sys/namespaces/team-a", None, 200).await?;
    let a_id = a_ns["data"]["id"].as_str().context("id")?.to_string();
    let a = in_ns(&root, "team-a");
    a.expect("POST", "/v1/sys/auth/approle", Some(json!({"type": "approle"})), 204)
        .await?;
    let methods = a.expect("GET", "/v1/sys/auth", None, 200).await?;
    ensure!(methods["data"]["approle/"]["type"] == "approle", "{methods}");
    let root_methods = root.expect("GET", "/v1/sys/auth", None, 200).await?;
    ensure!(
        root_methods["data"].get("approle/").is_none() && root_methods["data"].get("team-a/approle/").is_none(),
        "{root_methods}"
    );
    a.expect(
        "PUT",
        "/v1/sys/policies/acl/lister",
        Some(json!({"policy": "path \"sys/namespaces\" { capabilities = [\"list\"] }"})),
        204,
    )
    .await?;
    a.expect("POST", "/v1/sys/namespaces/child", None, 200).await?;
    a.expect(
        "POST",
        "/v1/auth/approle/role/app",
        Some(json!({"token_policies": ["lister"]})),
        204,
    )
    .await?;
    let role_id = a.expect("GET", "/v1/auth/approle/role/app/role-id", None, 200).await?["data"]["role_id"]
        .as_str()
        .context("role_id")?
        .to_string();
    let secret_id = a
        .expect("POST", "/v1/auth/approle/role/app/secret-id", None, 200)
        .await?["data"]["secret_id"]
        .as_str()
        .context("secret_id")?
        .to_string();
    // The login needs no token, in the namespace (here by path prefix).
    let anonymous = root.with_token(None);
    let login = anonymous
        .expect(
            "POST",
            "/v1/team-a/auth/approle/login",
            Some(json!({"role_id": role_id, "secret_id": secret_id})),
            200,
        )
        .await?;
    let token = login["auth"]["client_token"].as_str().context("client_token")?;
    ensure!(token.ends_with(&format!(".{a_id}")), "{login}");
    // The root namespace has no approle/ of its own.
    let (status, _) = anonymous
        .post(
            "/v1/auth/approle/login",
            json!({"role_id": role_id, "secret_id": secret_id}),
        )
        .await?;
    ensure!((400..500).contains(&status), "login in the root namespace: {status}");
    let user = in_ns(&root.with_token(Some(token)), "team-a");
    let me = user.expect("GET", "/v1/auth/token/lookup-self", None, 200).await?;
    ensure!(
        me["data"]["namespace_path"] == "team-a/" && me["data"]["path"] == "auth/approle/login",
        "{me}"
    );
    let listed = user.expect("LIST", "/v1/sys/namespaces", None, 200).await?;
    ensure!(keys_of(&listed)? == ["child/"], "{listed}");
    let (status, _) = root.with_token(Some(token)).list("/v1/sys/namespaces").await?;
    ensure!(status == 403, "the namespace's token in the root namespace: {status}");
    // Disabling the method revokes its tokens.
    a.expect("DELETE", "/v1/sys/auth/approle", None, 204).await?;
    let (status, _) = user.get("/v1/auth/token/lookup-self").await?;
    ensure!(status == 403, "token of a disabled method: {status}");
    Ok(())
}
