//! `sys/metrics` (issue 17, item 3): the Prometheus text format, read by
//! the real Python `prometheus_client` parser, follows real PostgreSQL
//! credentials issued and revoked (counters by mount, leases by mount),
//! and has the request counters and latency summaries by route template;
//! the JSON form has the shape of Vault's in-memory sink dump; bad input
//! gets Vault's status with `{"errors":[...]}`; a token needs root or a
//! policy that reads sys/metrics; a configuration file without
//! `prometheus_retention_time` refuses the Prometheus format, as Vault.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::{DbEnv, WardenServer, check_error};

/// The pinned Python client whose text parser reads the scrape.
const PROMETHEUS_CLIENT_VERSION: &str = "0.26.0";

/// Reads the text format on stdin with prometheus_client's parser and
/// prints every family's type and every sample as JSON.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {"types": {}, "samples": []}
for family in text_string_to_metric_families(sys.stdin.read()):
    out["types"][family.name] = family.type
    for s in family.samples:
        out["samples"].append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;

/// One scrape, parsed.
struct Scrape {
    types: HashMap<String, String>,
    samples: Vec<(String, HashMap<String, String>, f64)>,
}

impl Scrape {
    /// The value of the sample `name` whose labels include `labels`
    /// (0 when there is none: a counter not incremented yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, v)| v)
            .sum()
    }

    /// A counter's value: the parser names its samples `<name>_total`
    /// (OpenMetrics' convention; Warden's text has Vault's names, without
    /// the suffix).
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(&format!("{name}_total"), labels)
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.samples
            .iter()
            .any(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
    }
}

fn parse(text: &str) -> Result<Scrape> {
    let venv = warden_tests::util::pip_venv(
        "prometheus-client-venv",
        "prometheus-client",
        PROMETHEUS_CLIENT_VERSION,
        "python",
    )?;
    let mut child = Command::new(venv.join("bin").join("python"))
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn the Python parser")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("the parser's stdin")?;
        stdin.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "prometheus_client could not parse the scrape: {}\n---\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let parsed: Value = serde_json::from_slice(&out.stdout)?;
    let types = parsed["types"]
        .as_object()
        .context("types")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let samples = parsed["samples"]
        .as_array()
        .context("samples")?
        .iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            (
                s[0].as_str().unwrap_or_default().to_string(),
                labels,
                s[2].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    Ok(Scrape { types, samples })
}

/// GET sys/metrics?format=prometheus with `token`: status, content type, body.
async fn scrape_raw(base: &str, token: &str) -> Result<(u16, String, String)> {
    let resp = reqwest::Client::new()
        .get(format!("{base}/v1/sys/metrics?format=prometheus"))
        .header("X-Vault-Token", token)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok((status, content_type, resp.text().await?))
}

async fn scrape(base: &str, token: &str) -> Result<Scrape> {
    let (status, content_type, text) = scrape_raw(base, token).await?;
    ensure!(status == 200, "scrape: {status} {text}");
    ensure!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "content type {content_type:?}"
    );
    parse(&text)
}

#[tokio::test]
async fn prometheus_counts_issued_and_revoked_credentials_and_requests_by_route() -> Result<()> {
    let env = DbEnv::start("metrics", &["app"]).await?;
    env.write_role("app", json!({})).await?;
    let (base, root) = (env.server.url(), env.server.root_token().to_string());
    let mount = [("mount_point", "db/")];
    let before = scrape(&base, &root).await?;
    let issued_before = before.counter("vault_secret_lease_creation", &mount);
    let revoked_before = before.counter("warden_secret_lease_revocation", &mount);

    let mut creds = Vec::new();
    for _ in 0..5 {
        creds.push(env.creds("app").await?);
    }
    for c in &creds[..3] {
        env.client
            .expect(
                "PUT",
                "/v1/sys/leases/revoke",
                Some(json!({"lease_id": c.lease_id})),
                204,
            )
            .await?;
    }
    // The logins are really gone and kept.
    for (i, c) in creds.iter().enumerate() {
        ensure!(env.scratch.role_exists(&c.username).await? == (i >= 3), "login {i}");
    }

    let after = scrape(&base, &root).await?;
    let issued = after.counter("vault_secret_lease_creation", &mount) - issued_before;
    let revoked = after.counter("warden_secret_lease_revocation", &mount) - revoked_before;
    ensure!(issued == 5.0, "issued moved by {issued}");
    ensure!(revoked == 3.0, "revoked moved by {revoked}");
    ensure!(after.types.get("vault_secret_lease_creation").map(String::as_str) == Some("counter"));
    ensure!(
        after.has(
            "vault_secret_lease_creation_total",
            &[("mount_point", "db/"), ("secret_engine", "database")]
        ),
        "the engine type label"
    );
    ensure!(after.value("warden_expire_num_leases", &mount) == 2.0, "leases of db/");
    ensure!(after.value("vault_expire_num_leases", &[]) >= 2.0, "leases in all");
    ensure!(after.types.get("warden_expire_num_leases").map(String::as_str) == Some("gauge"));

    // Requests by route template (never the role name or a lease id) and code.
    let creds_route = [("route", "database/creds/{name}"), ("method", "GET"), ("code", "200")];
    let served =
        after.counter("warden_http_requests", &creds_route) - before.counter("warden_http_requests", &creds_route);
    ensure!(served == 5.0, "creds requests counted {served}");
    let revoke_route = [("route", "system/leases/revoke/{url_lease_id}"), ("code", "204")];
    ensure!(
        after.counter("warden_http_requests", &revoke_route) >= 3.0,
        "revoke requests by route"
    );
    for (name, _, _) in &after.samples {
        ensure!(!name.is_empty());
    }
    for (_, labels, _) in &after.samples {
        for v in labels.values() {
            ensure!(!v.contains("/app/"), "a raw path or lease id in a label: {v}");
            ensure!(
                !creds.iter().any(|c| v.contains(&c.username)),
                "a user name in a label: {v}"
            );
        }
    }
    // Latency: histograms, and Vault's handle_request a summary with
    // quantiles, both with a sum and a count.
    ensure!(after.types.get("warden_http_request_duration").map(String::as_str) == Some("histogram"));
    ensure!(after.has(
        "warden_http_request_duration_bucket",
        &[("route", "database/creds/{name}"), ("le", "+Inf")]
    ));
    ensure!(
        after.value(
            "warden_http_request_duration_count",
            &[("route", "database/creds/{name}")]
        ) >= 5.0
    );
    ensure!(after.has("vault_core_handle_request", &[("quantile", "0.99")]));
    ensure!(after.value("vault_core_handle_request_count", &[]) >= 8.0);
    for op in ["get", "put", "list"] {
        ensure!(
            after.value(&format!("vault_barrier_{op}_count"), &[]) > 0.0,
            "storage {op} timed"
        );
    }
    ensure!(
        after.value("warden_barrier_batch_count", &[]) > 0.0,
        "storage batches timed"
    );
    // The driver's instances and the connection's pool.
    ensure!(
        after
            .samples
            .iter()
            .any(|(n, _, v)| n == "warden_runtime_instances" && *v >= 1.0),
        "component instances"
    );
    let pool = [("mount_point", "db/"), ("connection", "pg")];
    ensure!(after.has("warden_sql_pool_max_open", &pool), "pool gauges");
    ensure!(
        after.value("warden_sql_pool_in_use", &pool) == 0.0,
        "no connection lent out at rest"
    );
    ensure!(after.value("vault_core_unsealed", &[]) == 1.0);
    // The text has Vault's names: counters without OpenMetrics' `_total`.
    let (_, _, text) = scrape_raw(&base, &root).await?;
    ensure!(
        text.contains("\nvault_secret_lease_creation{mount_point=\"db/\""),
        "{text}"
    );
    ensure!(!text.contains("_total"), "{text}");
    Ok(())
}

#[tokio::test]
async fn json_form_tokens_and_errors_are_vaults() -> Result<()> {
    let server = WardenServer::start().await?;
    let root = server.client();

    // Vault's InmemSink dump: the last finished 10-second interval, so
    // wait until one with requests in it is shown.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, body) = root.get("/v1/sys/metrics").await?;
        ensure!(status == 200, "JSON metrics: {status} {body}");
        let filled = |list: &str| body[list].as_array().is_some_and(|c| !c.is_empty());
        if filled("Counters") && filled("Samples") {
            break body;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no counters and samples shown: {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut keys: Vec<&str> = body
        .as_object()
        .context("an object")?
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    ensure!(
        keys == ["Counters", "Gauges", "Points", "Samples", "Timestamp"],
        "keys {keys:?}"
    );
    ensure!(
        body["Timestamp"].as_str().is_some_and(|t| t.ends_with(" +0000 UTC")),
        "{body}"
    );
    ensure!(body["Points"] == json!([]));
    let unsealed = body["Gauges"]
        .as_array()
        .context("gauges")?
        .iter()
        .find(|g| g["Name"] == "vault.core.unsealed")
        .context("vault.core.unsealed")?;
    ensure!(
        unsealed["Value"] == 1.0 && unsealed["Labels"] == json!({}),
        "{unsealed}"
    );
    for list in ["Counters", "Samples"] {
        for c in body[list].as_array().context("a list")? {
            let mut fields: Vec<&str> = c.as_object().context("an entry")?.keys().map(String::as_str).collect();
            fields.sort_unstable();
            ensure!(
                fields == ["Count", "Labels", "Max", "Mean", "Min", "Name", "Rate", "Stddev", "Sum"],
                "{list} entry {c}"
            );
        }
    }
    ensure!(
        body["Samples"]
            .as_array()
            .context("samples")?
            .iter()
            .any(|s| s["Name"] == "vault.core.handle_request"),
        "{body}"
    );

    // Bad input: Vault's status, and `{"errors":[...]}`.
    let unknown = root.get("/v1/sys/metrics?format=xml").await?;
    check_error("unknown format", &unknown, 400)?;
    ensure!(
        unknown.1["errors"][0] == "metric response format \"xml\" unknown",
        "{}",
        unknown.1
    );
    check_error("no token", &root.with_token(None).get("/v1/sys/metrics").await?, 403)?;
    check_error(
        "a bad token",
        &root.with_token(Some("hvs.nope")).get("/v1/sys/metrics").await?,
        403,
    )?;

    // A policy that reads sys/metrics is enough; one that does not is not.
    root.expect(
        "PUT",
        "/v1/sys/policies/acl/metrics",
        Some(json!({"policy": "path \"sys/metrics\" { capabilities = [\"read\"] }"})),
        204,
    )
    .await?;
    let token = |policies: Value| {
        let root = root.clone();
        async move {
            let body = root
                .expect(
                    "POST",
                    "/v1/auth/token/create",
                    Some(json!({"policies": policies})),
                    200,
                )
                .await?;
            anyhow::Ok(body["auth"]["client_token"].as_str().unwrap_or_default().to_string())
        }
    };
    let reader = token(json!(["metrics"])).await?;
    let other = token(json!(["default"])).await?;
    let (status, _) = root.with_token(Some(&reader)).get("/v1/sys/metrics").await?;
    ensure!(status == 200, "a reader: {status}");
    let (status, content_type, text) = scrape_raw(&server.url(), &reader).await?;
    ensure!(
        status == 200 && content_type.starts_with("text/plain"),
        "{status} {text}"
    );
    check_error(
        "without the policy",
        &root.with_token(Some(&other)).get("/v1/sys/metrics").await?,
        403,
    )?;

    // As Vault, an Accept header asking for OpenMetrics means Prometheus.
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/sys/metrics", server.url()))
        .header("X-Vault-Token", server.root_token())
        .header("Accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
        .send()
        .await?;
    let text = resp.text().await?;
    ensure!(text.contains("# TYPE vault_core_handle_request summary"), "{text}");
    Ok(())
}

/// A configuration file follows Vault: Prometheus is off until
/// `prometheus_retention_time` is set; Vault's other sinks stop start-up.
#[tokio::test]
async fn a_configuration_file_turns_prometheus_on_with_its_retention() -> Result<()> {
    let mut off = Node::new(NodeStorage::Inmem)?;
    off.start().await?;
    let (keys, root) = off.init(1, 1).await?;
    off.unseal(&[keys[0].as_str()]).await?;
    let client = off.client(Some(&root));
    let refused = client.get("/v1/sys/metrics?format=prometheus").await?;
    check_error("prometheus off", &refused, 400)?;
    ensure!(refused.1["errors"][0] == "prometheus is not enabled", "{}", refused.1);
    let (status, body) = client.get("/v1/sys/metrics").await?;
    ensure!(
        status == 200 && body["Gauges"].is_array(),
        "JSON stays on: {status} {body}"
    );
    // disable_hostname defaults to false: the host name is in gauge names.
    let names: Vec<&str> = body["Gauges"]
        .as_array()
        .context("gauges")?
        .iter()
        .filter_map(|g| g["Name"].as_str())
        .collect();
    ensure!(
        names
            .iter()
            .any(|n| n.starts_with("vault.") && n.ends_with(".core.unsealed") && *n != "vault.core.unsealed"),
        "{names:?}"
    );
    off.stop();

    let mut on = Node::new(NodeStorage::Inmem)?;
    on.extra_config = "telemetry {\n  prometheus_retention_time = \"1h\"\n  disable_hostname = true\n}\n".into();
    on.start().await?;
    let (keys, root) = on.init(1, 1).await?;
    on.unseal(&[keys[0].as_str()]).await?;
    let scraped = scrape(&on.url(), &root).await?;
    ensure!(scraped.value("vault_core_unsealed", &[]) == 1.0);
    ensure!(
        scraped.has("warden_http_requests_total", &[("route", "system/unseal")]),
        "sys/unseal counted"
    );
    on.stop();

    // A sink Warden does not have stops start-up at its line.
    let mut bad = Node::new(NodeStorage::Inmem)?;
    bad.extra_config = "telemetry {\n  statsd_address = \"127.0.0.1:8125\"\n}\n".into();
    std::fs::write(bad.config_path(), bad.config_text())?;
    let out = bad.start_expecting_failure(&bad.config_path())?;
    let config = bad.config_path().display().to_string();
    ensure!(
        out.contains(&format!("{config}:")) && out.contains("telemetry setting \"statsd_address\" is not supported"),
        "{out}"
    );
    Ok(())
}
