//! ACL policies over real HTTP against a real `warden server -dev`:
//! `sys/policies/acl` and the legacy `sys/policy` (write HCL, JSON or
//! base64, read, LIST, delete), the built-in `root` and `default`, Vault's
//! refusals (bad HCL, an unknown capability, writing `root`, deleting `root`
//! or `default`) with nothing stored, and `sys/capabilities-self`. Then the
//! real `bao` CLI: `policy fmt/write/read/list/delete` and `token
//! capabilities`. (Enforcement of policies on requests comes with tokens;
//! here every request is the root token's.)

use anyhow::{Context, Result, ensure};
use base64::Engine;
use serde_json::{Value, json};
use warden_tests::bao::{Bao, ensure_bao};
use warden_tests::util::TempDir;
use warden_tests::{Client, WardenServer, keys_of};

const ACL: &str = "/v1/sys/policies/acl";
const LEGACY: &str = "/v1/sys/policy";

const OPS: &str = r#"
# Operators read secrets and manage database roles.
path "secret/*" {
  capabilities = ["read", "list"]
}
path "db/roles/+" {
  capabilities = ["create", "read", "update", "delete"]
}
"#;

const JSON_POLICY: &str = r#"{"path": {"db/creds/*": {"capabilities": ["read"]}}}"#;

/// The `errors` of a refused request, which must have answered `status`.
async fn refused(c: &Client, method: &str, path: &str, body: Option<Value>, status: u16) -> Result<Vec<String>> {
    let (got, body) = c.req(method, path, body).await?;
    ensure!(got == status, "{method} {path}: expected {status}, got {got} {body}");
    let errors = body["errors"]
        .as_array()
        .with_context(|| format!("{method} {path}: no errors in {body}"))?;
    Ok(errors.iter().filter_map(|e| e.as_str().map(String::from)).collect())
}

#[tokio::test]
async fn acl_policies_are_written_read_listed_and_deleted() -> Result<()> {
    let server = WardenServer::start().await?;
    let c = server.client();

    // A new server has default (stored at first start) and root (built in).
    let listed = c.expect("LIST", ACL, None, 200).await?;
    assert_eq!(keys_of(&listed)?, vec!["default", "root"], "{listed}");
    let default = c.expect("GET", &format!("{ACL}/default"), None, 200).await?;
    assert_eq!(default["data"]["name"], "default", "{default}");
    let text = default["data"]["policy"].as_str().context("default text")?;
    assert!(text.contains(r#"path "auth/token/lookup-self""#), "{default}");
    assert!(text.contains(r#"path "sys/capabilities-self""#), "{default}");
    let root = c.expect("GET", &format!("{ACL}/root"), None, 200).await?;
    assert_eq!(root["data"], json!({"name": "root", "policy": ""}), "{root}");
    // response-wrapping is stored but not listed, as Vault's.
    let wrapping = c.expect("GET", &format!("{ACL}/response-wrapping"), None, 200).await?;
    assert!(
        wrapping["data"]["policy"]
            .as_str()
            .is_some_and(|t| t.contains("cubbyhole/response"))
    );

    // HCL under a name that is sanitized (lower-cased) as Vault does.
    c.expect("PUT", &format!("{ACL}/Ops"), Some(json!({"policy": OPS})), 204)
        .await?;
    let read = c.expect("GET", &format!("{ACL}/OPS"), None, 200).await?;
    assert_eq!(read["data"], json!({"name": "ops", "policy": OPS}), "{read}");
    // JSON, and base64-encoded HCL (kept decoded).
    c.expect(
        "POST",
        &format!("{ACL}/json"),
        Some(json!({"policy": JSON_POLICY})),
        204,
    )
    .await?;
    let read = c.expect("GET", &format!("{ACL}/json"), None, 200).await?;
    assert_eq!(read["data"]["policy"], JSON_POLICY, "{read}");
    let encoded = base64::engine::general_purpose::STANDARD.encode(OPS);
    c.expect("PUT", &format!("{ACL}/b64"), Some(json!({"policy": encoded})), 204)
        .await?;
    let read = c.expect("GET", &format!("{ACL}/b64"), None, 200).await?;
    assert_eq!(read["data"]["policy"], OPS, "{read}");

    // Stored names sorted, root last (Vault appends it); ?list=true too.
    let want = vec!["b64", "default", "json", "ops", "root"];
    let listed = c.expect("LIST", ACL, None, 200).await?;
    assert_eq!(keys_of(&listed)?, want, "{listed}");
    let listed = c.expect("GET", &format!("{ACL}?list=true"), None, 200).await?;
    assert_eq!(keys_of(&listed)?, want, "{listed}");

    // Rewrites replace the text; default can be edited.
    c.expect("PUT", &format!("{ACL}/ops"), Some(json!({"policy": JSON_POLICY})), 204)
        .await?;
    let read = c.expect("GET", &format!("{ACL}/ops"), None, 200).await?;
    assert_eq!(read["data"]["policy"], JSON_POLICY, "{read}");
    c.expect("PUT", &format!("{ACL}/default"), Some(json!({"policy": OPS})), 204)
        .await?;
    let read = c.expect("GET", &format!("{ACL}/default"), None, 200).await?;
    assert_eq!(read["data"]["policy"], OPS, "{read}");

    // Delete: 204, then 404 with no errors; again 204 (as Vault).
    c.expect("DELETE", &format!("{ACL}/b64"), None, 204).await?;
    assert!(refused(&c, "GET", &format!("{ACL}/b64"), None, 404).await?.is_empty());
    c.expect("DELETE", &format!("{ACL}/b64"), None, 204).await?;
    let listed = c.expect("LIST", ACL, None, 200).await?;
    assert_eq!(keys_of(&listed)?, vec!["default", "json", "ops", "root"], "{listed}");
    Ok(())
}

#[tokio::test]
async fn bad_policies_and_built_in_ones_are_refused_with_vaults_words() -> Result<()> {
    let server = WardenServer::start().await?;
    let c = server.client();
    let bad = [
        (
            "fly",
            r#"path "secret/*" { capabilities = ["fly"] }"#,
            r#"failed to parse policy: path "secret/*": invalid capability "fly""#,
        ),
        (
            "legacy",
            r#"path "secret/*" { policy = "admin" }"#,
            r#"failed to parse policy: path "secret/*": invalid policy "admin""#,
        ),
        (
            "wildcard",
            r#"path "secret/+*" { capabilities = ["read"] }"#,
            r#"failed to parse policy: path "secret/+*": invalid use of wildcards ('+*' is forbidden)"#,
        ),
    ];
    for (name, text, want) in bad {
        let errors = refused(&c, "PUT", &format!("{ACL}/{name}"), Some(json!({"policy": text})), 400).await?;
        assert_eq!(errors, vec![want.to_string()], "{name}");
        c.expect("GET", &format!("{ACL}/{name}"), None, 404).await?;
    }
    // Not HCL at all: the parser's position error.
    let errors = refused(
        &c,
        "PUT",
        &format!("{ACL}/broken"),
        Some(json!({"policy": "path \"secret/*\" {\n  capabilities = [\"read\"\n"})),
        400,
    )
    .await?;
    assert!(
        errors.len() == 1 && errors[0].starts_with("failed to parse policy: At "),
        "{errors:?}"
    );
    // An unknown key, with its line, in go-multierror's list.
    let errors = refused(
        &c,
        "PUT",
        &format!("{ACL}/keys"),
        Some(json!({"policy": "path \"x\" {\n  capabilities = [\"read\"]\n  colour = \"red\"\n}\n"})),
        400,
    )
    .await?;
    assert_eq!(
        errors,
        vec!["failed to parse policy: 1 error occurred:\n\t* path \"x\": invalid key \"colour\" on line 3\n\n"],
    );
    // A bad rewrite leaves the stored policy alone.
    c.expect("PUT", &format!("{ACL}/ops"), Some(json!({"policy": OPS})), 204)
        .await?;
    refused(&c, "PUT", &format!("{ACL}/ops"), Some(json!({"policy": "path {"})), 400).await?;
    let read = c.expect("GET", &format!("{ACL}/ops"), None, 200).await?;
    assert_eq!(read["data"]["policy"], OPS, "{read}");

    // No text; the built-in policies.
    for body in [json!({}), json!({"policy": ""})] {
        let errors = refused(&c, "PUT", &format!("{ACL}/empty"), Some(body), 400).await?;
        assert_eq!(errors, vec!["'policy' parameter not supplied or empty"]);
    }
    let cases = [
        ("PUT", "root", r#"cannot update "root" policy"#),
        (
            "PUT",
            "response-wrapping",
            r#"cannot update "response-wrapping" policy"#,
        ),
        ("DELETE", "root", r#"cannot delete "root" policy"#),
        (
            "DELETE",
            "response-wrapping",
            r#"cannot delete "response-wrapping" policy"#,
        ),
        ("DELETE", "default", "cannot delete default policy"),
    ];
    for (method, name, want) in cases {
        let body = (method == "PUT").then(|| json!({"policy": OPS}));
        let errors = refused(&c, method, &format!("{ACL}/{name}"), body, 400).await?;
        assert_eq!(errors, vec![want.to_string()], "{method} {name}");
    }
    let listed = c.expect("LIST", ACL, None, 200).await?;
    assert_eq!(keys_of(&listed)?, vec!["default", "ops", "root"], "{listed}");
    let root = c.expect("GET", &format!("{ACL}/root"), None, 200).await?;
    assert_eq!(root["data"]["policy"], "", "{root}");
    Ok(())
}

#[tokio::test]
async fn the_legacy_sys_policy_paths_answer_as_vaults() -> Result<()> {
    let server = WardenServer::start().await?;
    let c = server.client();
    // GET and LIST: keys and policies, in data and at the top level.
    for method in ["GET", "LIST"] {
        let body = c.expect(method, LEGACY, None, 200).await?;
        let both = json!(["default", "root"]);
        assert_eq!(body["data"], json!({"keys": both, "policies": both}), "{body}");
        assert_eq!((&body["keys"], &body["policies"]), (&both, &both), "{body}");
    }
    // `rules` works, with Vault's deprecation warning (hence 200);
    // `policy` is the plain 204.
    let written = c
        .expect("PUT", &format!("{LEGACY}/old"), Some(json!({"rules": OPS})), 200)
        .await?;
    assert_eq!(
        written["warnings"],
        json!(["'rules' is deprecated, please use 'policy' instead"]),
        "{written}"
    );
    c.expect(
        "POST",
        &format!("{LEGACY}/new"),
        Some(json!({"policy": JSON_POLICY})),
        204,
    )
    .await?;
    let read = c.expect("GET", &format!("{LEGACY}/old"), None, 200).await?;
    assert_eq!(read["data"], json!({"name": "old", "rules": OPS}), "{read}");
    assert_eq!((&read["name"], &read["rules"]), (&json!("old"), &json!(OPS)), "{read}");
    // The same store as sys/policies/acl.
    let read = c.expect("GET", &format!("{ACL}/new"), None, 200).await?;
    assert_eq!(read["data"]["policy"], JSON_POLICY, "{read}");
    let body = c.expect("GET", LEGACY, None, 200).await?;
    assert_eq!(body["keys"], json!(["default", "new", "old", "root"]), "{body}");

    let errors = refused(&c, "PUT", &format!("{LEGACY}/x"), Some(json!({"rules": ""})), 400).await?;
    assert_eq!(errors, vec!["'policy' parameter not supplied or empty"]);
    let errors = refused(&c, "PUT", &format!("{LEGACY}/root"), Some(json!({"rules": OPS})), 400).await?;
    assert_eq!(errors, vec![r#"cannot update "root" policy"#]);
    c.expect("DELETE", &format!("{LEGACY}/old"), None, 204).await?;
    c.expect("GET", &format!("{LEGACY}/old"), None, 404).await?;
    Ok(())
}

#[tokio::test]
async fn capabilities_self_answers_for_the_callers_policies() -> Result<()> {
    let server = WardenServer::start().await?;
    let c = server.client();
    // The root token: root everywhere; one path also fills `capabilities`,
    // and the data is at the top level too (Vault's injection).
    let one = c
        .expect(
            "POST",
            "/v1/sys/capabilities-self",
            Some(json!({"paths": ["secret/x"]})),
            200,
        )
        .await?;
    let want = json!({"capabilities": ["root"], "secret/x": ["root"]});
    assert_eq!(one["data"], want, "{one}");
    assert_eq!(one["capabilities"], json!(["root"]), "{one}");
    // Several paths (comma-separated is a list too): one key per path.
    let two = c
        .expect(
            "PUT",
            "/v1/sys/capabilities-self",
            Some(json!({"paths": "a/b,sys/mounts"})),
            200,
        )
        .await?;
    assert_eq!(two["data"], json!({"a/b": ["root"], "sys/mounts": ["root"]}), "{two}");
    // The deprecated `path`.
    let old = c
        .expect(
            "PUT",
            "/v1/sys/capabilities-self",
            Some(json!({"path": "db/creds/app"})),
            200,
        )
        .await?;
    assert_eq!(old["data"]["capabilities"], json!(["root"]), "{old}");
    let errors = refused(&c, "PUT", "/v1/sys/capabilities-self", Some(json!({})), 400).await?;
    assert_eq!(errors, vec!["paths must be supplied"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bao_cli_manages_policies() -> Result<()> {
    let bin = tokio::task::spawn_blocking(ensure_bao).await??;
    let server = WardenServer::start().await?;
    let url = server.url();
    let token = server.root_token().to_string();
    tokio::task::spawn_blocking(move || policies_with_the_cli(&bin, &url, &token)).await??;
    Ok(())
}

fn policies_with_the_cli(bin: &std::path::Path, url: &str, token: &str) -> Result<()> {
    let mut bao = Bao::new(bin, url)?;
    bao.token = Some(token.to_string());
    let dir = TempDir::new("acl-policies")?;
    let file = dir.path().join("ops.hcl");
    let file_arg = file.to_str().context("utf-8 path")?;

    // fmt is the CLI's own parser rewriting the file: what it accepts,
    // Warden stores and gives back byte for byte.
    std::fs::write(&file, "path \"secret/*\" {\ncapabilities=[\"read\",\"list\"]\n}\n")?;
    bao.expect(&["policy", "fmt", file_arg], 0)?;
    let formatted = std::fs::read_to_string(&file)?;
    ensure!(formatted.contains("capabilities = [\"read\", \"list\"]"), "{formatted}");
    let written = bao.expect(&["policy", "write", "ops", file_arg], 0)?;
    ensure!(written.stdout.contains("Success! Uploaded policy: ops"), "{written}");
    let read = bao.expect(&["policy", "read", "ops"], 0)?;
    ensure!(
        read.stdout.trim_end() == formatted.trim_end(),
        "{read}\nwanted:\n{formatted}"
    );
    let read = bao.expect(&["policy", "read", "-format=json", "ops"], 0)?;
    let read: Value = serde_json::from_str(&read.stdout)?;
    ensure!(read == json!({"policy": formatted}), "{read}");

    let list = bao.expect(&["policy", "list"], 0)?;
    let names: Vec<&str> = list.stdout.lines().collect();
    ensure!(names == ["default", "ops", "root"], "{list}");

    // Refusals come back as the CLI's errors (exit 2) with Vault's words.
    std::fs::write(&file, "path \"secret/*\" { capabilities = [\"fly\"] }\n")?;
    let bad = bao.expect(&["policy", "write", "bad", file_arg], 2)?;
    ensure!(
        bad.stderr.contains("Code: 400")
            && bad
                .stderr
                .contains(r#"* failed to parse policy: path "secret/*": invalid capability "fly""#),
        "{bad}"
    );
    let missing = bao.expect(&["policy", "read", "bad"], 2)?;
    ensure!(missing.stderr.contains("No policy named: bad"), "{missing}");
    let root = bao.expect(&["policy", "delete", "root"], 2)?;
    ensure!(root.stderr.contains(r#"* cannot delete "root" policy"#), "{root}");

    let caps = bao.expect(&["token", "capabilities", "secret/x"], 0)?;
    ensure!(caps.stdout.trim() == "root", "{caps}");
    let legacy = bao.expect(&["read", "-format=json", "sys/policy"], 0)?;
    let legacy: Value = serde_json::from_str(&legacy.stdout)?;
    ensure!(
        legacy["data"]["policies"] == json!(["default", "ops", "root"]),
        "{legacy}"
    );

    let deleted = bao.expect(&["policy", "delete", "ops"], 0)?;
    ensure!(deleted.stdout.contains("Success! Deleted policy: ops"), "{deleted}");
    let list = bao.expect(&["policy", "list"], 0)?;
    ensure!(list.stdout.lines().collect::<Vec<_>>() == ["default", "root"], "{list}");
    Ok(())
}

/// On SQLite storage: `default` is written at the first unseal, an edit of
/// it and a written policy survive a restart (the edit is not overwritten
/// by the start-up bootstrap), and a sealed node answers 503.
#[tokio::test]
async fn policies_survive_a_restart_and_default_keeps_its_edit() -> Result<()> {
    use warden_tests::configured::{Node, NodeStorage};
    let mut node = Node::new(NodeStorage::Sqlite)?;
    node.start().await?;
    let (keys, root) = node.init(1, 1).await?;
    node.unseal(&[&keys[0]]).await?;
    let c = node.client(Some(&root));
    let listed = c.expect("LIST", ACL, None, 200).await?;
    assert_eq!(keys_of(&listed)?, vec!["default", "root"], "{listed}");
    c.expect("PUT", &format!("{ACL}/ops"), Some(json!({"policy": OPS})), 204)
        .await?;
    c.expect(
        "PUT",
        &format!("{ACL}/default"),
        Some(json!({"policy": JSON_POLICY})),
        204,
    )
    .await?;

    node.stop();
    node.start().await?;
    let c = node.client(Some(&root));
    c.expect("GET", &format!("{ACL}/ops"), None, 503).await?;
    node.unseal(&[&keys[0]]).await?;
    let read = c.expect("GET", &format!("{ACL}/ops"), None, 200).await?;
    assert_eq!(read["data"]["policy"], OPS, "{read}");
    let read = c.expect("GET", &format!("{ACL}/default"), None, 200).await?;
    assert_eq!(read["data"]["policy"], JSON_POLICY, "{read}");
    let listed = c.expect("LIST", ACL, None, 200).await?;
    assert_eq!(keys_of(&listed)?, vec!["default", "ops", "root"], "{listed}");
    node.stop();
    Ok(())
}
