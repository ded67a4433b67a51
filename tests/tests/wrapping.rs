//! Response wrapping against the real binary and a real PostgreSQL: a
//! response asked to be wrapped (`X-Vault-Wrap-TTL`) comes back as
//! `wrap_info` only, unwraps once and never twice; `sys/wrapping/*` answer
//! as Vault's; a policy's wrapping-TTL bounds are enforced; bad input is a
//! 4xx with Vault's words.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use warden_tests::client::Client;
use warden_tests::{Creds, DbEnv};

const INVALID: &str = "wrapping token is not valid or does not exist";

fn wrap_token(body: &Value) -> Result<String> {
    Ok(body["wrap_info"]["token"]
        .as_str()
        .with_context(|| format!("no wrap_info.token in {body}"))?
        .to_string())
}

async fn unwrap_with_body(c: &Client, token: &str) -> Result<(u16, Value)> {
    c.post("/v1/sys/wrapping/unwrap", json!({ "token": token })).await
}

#[tokio::test]
async fn a_wrapped_credential_unwraps_once_and_never_twice() -> Result<()> {
    let env = DbEnv::start("wrap_creds", &["*"]).await?;
    env.write_role("app", json!({})).await?;
    let root = &env.client;
    let wrapping = root.with_header("X-Vault-Wrap-TTL", "60s");
    let (status, body) = wrapping.get("/v1/db/creds/app").await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        Value::Null,
        "the secret is not in the wrapped answer: {body}"
    );
    assert_eq!(body["lease_id"], "");
    let info = &body["wrap_info"];
    assert_eq!(info["ttl"], 60, "{body}");
    assert_eq!(info["creation_path"], "db/creds/app");
    assert!(info["accessor"].as_str().is_some_and(|a| !a.is_empty()), "{body}");
    assert!(info["creation_time"].is_string());
    let token = wrap_token(&body)?;
    assert!(token.starts_with("hvs."), "{token}");

    // Lookup is served without a token and does not spend it.
    let (status, looked) = root
        .with_token(None)
        .post("/v1/sys/wrapping/lookup", json!({ "token": token }))
        .await?;
    assert_eq!(status, 200, "{looked}");
    assert_eq!(looked["data"]["creation_path"], "db/creds/app");
    assert_eq!(looked["data"]["creation_ttl"], 60);

    // Unwrapping with the wrapping token itself gives the whole response.
    let w = root.with_token(Some(&token));
    let (status, unwrapped) = w.post("/v1/sys/wrapping/unwrap", json!({})).await?;
    assert_eq!(status, 200, "{unwrapped}");
    let creds = Creds::from_body(unwrapped)?;
    assert!(env.scratch.role_exists(&creds.username).await?);
    assert!(env.scratch.logs_in(&creds.username, &creds.password).await);
    assert!(
        env.lookup(&creds.lease_id).await.is_ok(),
        "the lease is the requester's"
    );

    // Never twice: by header (the token is gone) or by body.
    let (status, _) = w.post("/v1/sys/wrapping/unwrap", json!({})).await?;
    assert_eq!(status, 403);
    let (status, body) = unwrap_with_body(root, &token).await?;
    assert_eq!((status, body["errors"].clone()), (400, json!([INVALID])));
    let (status, body) = root
        .with_token(None)
        .post("/v1/sys/wrapping/lookup", json!({ "token": token }))
        .await?;
    assert_eq!((status, body["errors"].clone()), (400, json!([INVALID])));
    Ok(())
}

#[tokio::test]
async fn wrap_rewrap_and_token_wrapping() -> Result<()> {
    let env = DbEnv::start("wrap_sys", &["*"]).await?;
    let root = &env.client;
    let wrapping = root.with_header("X-Vault-Wrap-TTL", "5m");
    // sys/wrapping/wrap needs a wrap TTL.
    let (status, body) = root.post("/v1/sys/wrapping/wrap", json!({"a": "b"})).await?;
    assert_eq!(
        (status, body["errors"].clone()),
        (400, json!(["endpoint requires response wrapping to be used"]))
    );
    let (status, body) = wrapping
        .post("/v1/sys/wrapping/wrap", json!({"a": "b", "n": 1}))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wrap_info"]["ttl"], 300);
    assert_eq!(body["wrap_info"]["creation_path"], "sys/wrapping/wrap");
    let first = wrap_token(&body)?;

    // Rewrap: a new token for the same response; the old one is spent.
    let (status, body) = root.post("/v1/sys/wrapping/rewrap", json!({ "token": first })).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wrap_info"]["ttl"], 300);
    assert_eq!(body["wrap_info"]["creation_path"], "sys/wrapping/wrap");
    let second = wrap_token(&body)?;
    assert_ne!(first, second);
    let (status, body) = unwrap_with_body(root, &first).await?;
    assert_eq!((status, body["errors"].clone()), (400, json!([INVALID])));
    let (status, body) = unwrap_with_body(root, &second).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({"a": "b", "n": 1}));
    let (status, _) = unwrap_with_body(root, &second).await?;
    assert_eq!(status, 400);

    // Two unwraps at once: exactly one gets the response.
    let (_, body) = wrapping.post("/v1/sys/wrapping/wrap", json!({"x": "y"})).await?;
    let raced = wrap_token(&body)?;
    let (a, b) = tokio::join!(unwrap_with_body(root, &raced), unwrap_with_body(root, &raced));
    let mut statuses = [a?.0, b?.0];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);

    // A wrapped token: wrapped_accessor names it; it works once unwrapped.
    let (status, body) = wrapping
        .post("/v1/auth/token/create", json!({"policies": ["default"]}))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"], Value::Null);
    let wrapped_accessor = body["wrap_info"]["wrapped_accessor"]
        .as_str()
        .context("wrapped_accessor")?
        .to_string();
    let (status, body) = unwrap_with_body(root, &wrap_token(&body)?).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["accessor"], wrapped_accessor.as_str());
    let t = body["auth"]["client_token"].as_str().context("client_token")?;
    let (status, _) = root.with_token(Some(t)).get("/v1/auth/token/lookup-self").await?;
    assert_eq!(status, 200);

    // An expired wrapping token is no more.
    let (_, body) = root
        .with_header("X-Vault-Wrap-TTL", "1")
        .post("/v1/sys/wrapping/wrap", json!({"x": "y"}))
        .await?;
    let short = wrap_token(&body)?;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, body) = unwrap_with_body(root, &short).await?;
    assert_eq!((status, body["errors"].clone()), (400, json!([INVALID])));
    Ok(())
}

#[tokio::test]
async fn wrapping_ttl_bounds_and_bad_input() -> Result<()> {
    let env = DbEnv::start("wrap_acl", &["*"]).await?;
    env.write_role("wrapacl", json!({})).await?;
    let root = &env.client;
    root.expect(
        "PUT",
        "/v1/sys/policies/acl/wrapped",
        Some(json!({"policy": r#"path "db/creds/wrapacl" {
  capabilities = ["read"]
  min_wrapping_ttl = "30s"
  max_wrapping_ttl = "2m"
}"#})),
        204,
    )
    .await?;
    let (status, body) = root
        .post("/v1/auth/token/create", json!({"policies": ["wrapped"]}))
        .await?;
    assert_eq!(status, 200, "{body}");
    let t = body["auth"]["client_token"].as_str().context("token")?;
    let c = root.with_token(Some(t));
    // Not wrapped, or wrapped outside the bounds: Vault's bare 403.
    for ttl in [None, Some("10s"), Some("5m")] {
        let client = match ttl {
            Some(ttl) => c.with_header("X-Vault-Wrap-TTL", ttl),
            None => c.clone(),
        };
        let (status, body) = client.get("/v1/db/creds/wrapacl").await?;
        assert_eq!(
            (status, body["errors"].clone()),
            (403, json!(["1 error occurred:\n\t* permission denied\n\n"])),
            "{ttl:?}"
        );
    }
    assert!(
        env.scratch.roles_like("v-%wrapacl%").await?.is_empty(),
        "a refused request created no login"
    );
    let (status, body) = c
        .with_header("X-Vault-Wrap-TTL", "60")
        .get("/v1/db/creds/wrapacl")
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wrap_info"]["ttl"], 60);

    // A header that is no duration.
    let (status, body) = root
        .with_header("X-Vault-Wrap-TTL", "soon")
        .post("/v1/sys/wrapping/wrap", json!({"a": "b"}))
        .await?;
    assert_eq!(status, 400, "{body}");
    let text = body["errors"][0].as_str().unwrap_or_default();
    assert!(text.starts_with("error parsing X-Vault-Wrap-TTL header"), "{body}");
    // Unwrap without a token, or with one that is not a wrapping token.
    let (status, body) = unwrap_with_body(root, "").await?;
    assert_eq!((status, body["errors"].clone()), (400, json!([INVALID])));
    let (status, body) = unwrap_with_body(root, t).await?;
    assert_eq!((status, body["errors"].clone()), (400, json!([INVALID])));
    let (status, _) = c.get("/v1/auth/token/lookup-self").await?;
    assert_eq!(status, 200, "a refused unwrap does not spend or revoke another token");
    Ok(())
}
