//! Resource quotas (issue 16, scope 3), against the real binary: a
//! rate-limit quota answers 429 with Retry-After past its rate, leaves
//! other paths alone, and lets requests through again after its interval;
//! exempt paths pass; a lease-count quota refuses the next credential with
//! 429 and frees a slot when a lease is revoked; bad input is a 400 that
//! stores nothing.

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use std::time::Duration;
use warden_tests::fixtures::keys_of;
use warden_tests::{Creds, DbEnv, WardenServer};

/// A request whose Retry-After header the test reads.
async fn raw(server: &WardenServer, method: reqwest::Method, path: &str) -> Result<(u16, Option<u64>, Value)> {
    let resp = reqwest::Client::new()
        .request(method, format!("{}{path}", server.url()))
        .header("X-Vault-Token", server.root_token())
        .send()
        .await?;
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, retry, body))
}

#[tokio::test]
async fn a_rate_limit_quota_refuses_past_its_rate_and_resets() -> Result<()> {
    let server = WardenServer::start().await?;
    let client = server.client();
    client
        .expect("POST", "/v1/sys/mounts/db", Some(json!({"type": "database"})), 204)
        .await?;

    // Bad input: 400, nothing stored.
    for (body, says) in [
        (json!({"rate": -1, "path": "db/"}), "'rate' is invalid"),
        (json!({"rate": 0, "path": "db/"}), "'rate' is invalid"),
        (json!({"path": "db/"}), "'rate' is invalid"),
        (json!({"rate": 3, "path": "nope/"}), "invalid mount path"),
        (json!({"rate": 3, "path": "db/*/x"}), "invalid path"),
        (
            json!({"rate": 3, "path": "db/", "block_interval": -5}),
            "'block' is invalid",
        ),
        (json!({"rate": 3, "path": "db/", "role": "web"}), "role-based quotas"),
        (json!({"rate": "many", "path": "db/"}), "rate"),
    ] {
        let out = client
            .expect("POST", "/v1/sys/quotas/rate-limit/db-limit", Some(body.clone()), 400)
            .await?;
        ensure!(out.to_string().contains(says), "{body}: {out}");
    }
    let (status, _) = client.req("LIST", "/v1/sys/quotas/rate-limit", None).await?;
    ensure!(status == 404, "a refused quota was stored");

    // 3 requests per 4 s on the mount db/ (a token every 1.33 s: the
    // requests below take far less).
    client
        .expect(
            "POST",
            "/v1/sys/quotas/rate-limit/db-limit",
            Some(json!({"rate": 3, "interval": "4s", "path": "db"})),
            204,
        )
        .await?;
    let read = client
        .expect("GET", "/v1/sys/quotas/rate-limit/db-limit", None, 200)
        .await?;
    ensure!(
        read["data"]["path"] == "db/"
            && read["data"]["rate"] == json!(3.0)
            && read["data"]["interval"] == 4
            && read["data"]["type"] == "rate-limit",
        "{read}"
    );
    let list = client.expect("LIST", "/v1/sys/quotas/rate-limit", None, 200).await?;
    ensure!(keys_of(&list)? == ["db-limit"], "{list}");
    // A second quota on the same path is refused.
    let out = client
        .expect(
            "POST",
            "/v1/sys/quotas/rate-limit/other",
            Some(json!({"rate": 10, "path": "db/"})),
            400,
        )
        .await?;
    ensure!(out.to_string().contains("similar properties"), "{out}");

    let started = std::time::Instant::now();
    for _ in 0..3 {
        let (status, _, body) = raw(&server, reqwest::Method::GET, "/v1/db/roles/any").await?;
        ensure!(status == 404, "{status} {body}");
    }
    let (status, retry, body) = raw(&server, reqwest::Method::GET, "/v1/db/roles/any").await?;
    ensure!(status == 429, "past the rate: {status} {body}");
    ensure!(
        body["errors"][0] == "request path \"db/roles/any\": rate limit quota exceeded",
        "{body}"
    );
    ensure!(retry.is_some_and(|s| (1..=2).contains(&s)), "Retry-After: {retry:?}");
    // Other paths are not limited.
    for _ in 0..5 {
        client.expect("GET", "/v1/sys/mounts", None, 200).await?;
    }
    // After the interval the bucket is full again.
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(4200).saturating_sub(elapsed)).await;
    for _ in 0..3 {
        let (status, _, body) = raw(&server, reqwest::Method::GET, "/v1/db/roles/any").await?;
        ensure!(status == 404, "after the interval: {status} {body}");
    }
    let (status, _, _) = raw(&server, reqwest::Method::GET, "/v1/db/roles/any").await?;
    ensure!(status == 429);

    // Exempt paths pass; the defaults are Vault's.
    let config = client.expect("GET", "/v1/sys/quotas/config", None, 200).await?;
    ensure!(
        config["data"]["rate_limit_exempt_paths"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("sys/health"))),
        "{config}"
    );
    client
        .expect(
            "POST",
            "/v1/sys/quotas/config",
            Some(json!({"rate_limit_exempt_paths": ["sys/health", "db/roles/*"]})),
            204,
        )
        .await?;
    for _ in 0..5 {
        let (status, _, body) = raw(&server, reqwest::Method::GET, "/v1/db/roles/any").await?;
        ensure!(status == 404, "an exempt path was limited: {status} {body}");
    }
    let mut refused = false;
    for _ in 0..5 {
        refused |= raw(&server, reqwest::Method::GET, "/v1/db/config/any").await?.0 == 429;
    }
    ensure!(refused, "a path that is not exempt passed");

    // The quotas' own endpoints are never limited: a global quota set too
    // tight, with nothing exempt, can still be lifted.
    client
        .expect(
            "POST",
            "/v1/sys/quotas/rate-limit/everything",
            Some(json!({"rate": 1, "interval": "1h"})),
            204,
        )
        .await?;
    client
        .expect(
            "POST",
            "/v1/sys/quotas/config",
            Some(json!({"rate_limit_exempt_paths": []})),
            204,
        )
        .await?;
    let (status, _) = client.req("GET", "/v1/sys/mounts", None).await?;
    let (status2, _) = client.req("GET", "/v1/sys/mounts", None).await?;
    ensure!(status == 200 && status2 == 429, "the global quota: {status} {status2}");
    client
        .expect("DELETE", "/v1/sys/quotas/rate-limit/everything", None, 204)
        .await?;
    client.expect("GET", "/v1/sys/mounts", None, 200).await?;

    // Deleted, the quota limits nothing.
    client
        .expect("DELETE", "/v1/sys/quotas/rate-limit/db-limit", None, 204)
        .await?;
    for _ in 0..5 {
        let (status, _, _) = raw(&server, reqwest::Method::GET, "/v1/db/config/any").await?;
        ensure!(status == 404);
    }
    // Response headers, when asked for: the bucket's size and what is left.
    client
        .expect(
            "POST",
            "/v1/sys/quotas/config",
            Some(json!({"enable_rate_limit_response_headers": true})),
            204,
        )
        .await?;
    client
        .expect(
            "POST",
            "/v1/sys/quotas/rate-limit/one-path",
            Some(json!({"rate": 3, "interval": "1m", "path": "db/config/hdr"})),
            204,
        )
        .await?;
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/db/config/hdr", server.url()))
        .header("X-Vault-Token", server.root_token())
        .send()
        .await?;
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
    ensure!(
        header("x-ratelimit-limit").as_deref() == Some("3"),
        "{:?}",
        resp.headers()
    );
    ensure!(
        header("x-ratelimit-remaining").as_deref() == Some("2"),
        "{:?}",
        resp.headers()
    );
    ensure!(
        header("x-ratelimit-reset").is_some_and(|r| r.ends_with("GMT")),
        "{:?}",
        resp.headers()
    );

    Ok(())
}

#[tokio::test]
async fn a_lease_count_quota_refuses_the_next_credential_until_one_is_revoked() -> Result<()> {
    let env = DbEnv::start("lease_quota", &["*"]).await?;
    env.write_role("app", json!({})).await?;
    env.write_role("other", json!({})).await?;
    let client = &env.client;
    for (body, says) in [
        (
            json!({"max_leases": 0, "path": "db/creds/app"}),
            "'max_leases' is invalid",
        ),
        (
            json!({"max_leases": -3, "path": "db/creds/app"}),
            "'max_leases' is invalid",
        ),
        (json!({"max_leases": 2, "path": "nope/creds"}), "invalid mount path"),
    ] {
        let out = client
            .expect("POST", "/v1/sys/quotas/lease-count/app", Some(body.clone()), 400)
            .await?;
        ensure!(out.to_string().contains(says), "{body}: {out}");
    }
    client
        .expect(
            "POST",
            "/v1/sys/quotas/lease-count/app",
            Some(json!({"max_leases": 2, "path": "db/creds/app"})),
            204,
        )
        .await?;
    let mut issued = Vec::new();
    for _ in 0..2 {
        let body = client.expect("GET", "/v1/db/creds/app", None, 200).await?;
        issued.push(Creds::from_body(body)?);
    }
    let (status, body) = client.req("GET", "/v1/db/creds/app", None).await?;
    ensure!(status == 429, "the third lease: {status} {body}");
    ensure!(body["errors"][0] == "lease count quota exceeded", "{body}");
    let read = client
        .expect("GET", "/v1/sys/quotas/lease-count/app", None, 200)
        .await?;
    ensure!(
        read["data"]["counter"] == 2 && read["data"]["max_leases"] == 2,
        "{read}"
    );
    // Another role's path is not under the quota.
    client.expect("GET", "/v1/db/creds/other", None, 200).await?;
    // Nothing was created for the refused request.
    let name = &issued.first().context("a lease")?.username;
    let prefix = &name[..name.find("-app-").context("the role in the name")? + 5];
    let roles = env.scratch.roles_like(&format!("{prefix}%")).await?;
    ensure!(roles.len() == 2, "{prefix}: {roles:?}");

    // Revoking one frees a slot.
    let first = issued.first().context("a lease")?;
    client
        .expect(
            "PUT",
            "/v1/sys/leases/revoke",
            Some(json!({"lease_id": first.lease_id})),
            204,
        )
        .await?;
    let read = client
        .expect("GET", "/v1/sys/quotas/lease-count/app", None, 200)
        .await?;
    ensure!(read["data"]["counter"] == 1, "{read}");
    client.expect("GET", "/v1/db/creds/app", None, 200).await?;
    let (status, _) = client.req("GET", "/v1/db/creds/app", None).await?;
    ensure!(status == 429, "the quota let a third lease in");

    // Raised, it lets more in; deleted, it limits nothing.
    client
        .expect(
            "POST",
            "/v1/sys/quotas/lease-count/app",
            Some(json!({"max_leases": 3})),
            204,
        )
        .await?;
    client.expect("GET", "/v1/db/creds/app", None, 200).await?;
    client
        .expect("DELETE", "/v1/sys/quotas/lease-count/app", None, 204)
        .await?;
    client.expect("GET", "/v1/db/creds/app", None, 200).await?;
    // What is left is the default every server starts with, as Vault's.
    let list = client.expect("LIST", "/v1/sys/quotas/lease-count", None, 200).await?;
    ensure!(keys_of(&list)? == ["default"], "{list}");
    let default = client
        .expect("GET", "/v1/sys/quotas/lease-count/default", None, 200)
        .await?;
    ensure!(
        default["data"]["path"] == "" && default["data"]["max_leases"] == 300_000,
        "{default}"
    );
    ensure!(default["data"]["counter"].as_u64().is_some_and(|n| n >= 3), "{default}");
    Ok(())
}
