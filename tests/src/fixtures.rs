//! The common set-up of the end-to-end tests: a Warden dev server with a
//! database secrets engine mounted at `db/` and a connection `pg` to the
//! test's own PostgreSQL database.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::client::Client;
use crate::postgres::{Scratch, TestPostgres};
use crate::server::{ServerOptions, WardenServer};

/// The creation statement of the walking skeleton's role.
pub const CREATE_ROLE: &str =
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";

/// The mount path the fixtures use.
pub const MOUNT: &str = "db";
/// The connection name the fixtures use.
pub const CONFIG: &str = "pg";

/// A started server with `db/` mounted and configured for a scratch database.
#[derive(Debug)]
pub struct DbEnv {
    pub server: WardenServer,
    pub client: Client,
    pub scratch: Scratch,
}

/// One issued credential.
#[derive(Clone, Debug)]
pub struct Creds {
    pub lease_id: String,
    pub username: String,
    pub password: String,
    pub lease_duration: i64,
    /// The whole response body.
    pub body: Value,
}

impl DbEnv {
    /// Shared PostgreSQL, a scratch database, a new server, `db/` mounted,
    /// `db/config/pg` written with `allowed_roles`.
    pub async fn start(label: &str, allowed_roles: &[&str]) -> Result<DbEnv> {
        DbEnv::start_with(label, allowed_roles, ServerOptions::default(), json!({})).await
    }

    /// As [`DbEnv::start`] with server options and extra config fields.
    pub async fn start_with(
        label: &str,
        allowed_roles: &[&str],
        options: ServerOptions,
        extra_config: Value,
    ) -> Result<DbEnv> {
        let scratch = TestPostgres::shared().scratch(label).await?;
        let server = WardenServer::start_with(options).await?;
        let client = server.client();
        client
            .expect(
                "POST",
                &format!("/v1/sys/mounts/{MOUNT}"),
                Some(json!({"type": "database"})),
                204,
            )
            .await?;
        let mut config = postgres_config(&scratch, allowed_roles);
        merge(&mut config, extra_config);
        client
            .expect("POST", &format!("/v1/{MOUNT}/config/{CONFIG}"), Some(config), 204)
            .await?;
        Ok(DbEnv {
            server,
            client,
            scratch,
        })
    }

    /// Write `db/roles/<role>` for the `pg` connection with the standard
    /// creation statement; `extra` fields override or add to the defaults
    /// (default_ttl 1h, max_ttl 24h).
    pub async fn write_role(&self, role: &str, extra: Value) -> Result<()> {
        let mut body = json!({
            "db_name": CONFIG,
            "creation_statements": [CREATE_ROLE],
            "default_ttl": "1h",
            "max_ttl": "24h",
        });
        merge(&mut body, extra);
        self.client
            .expect("POST", &format!("/v1/{MOUNT}/roles/{role}"), Some(body), 204)
            .await?;
        Ok(())
    }

    /// GET `db/creds/<role>`, expecting 200.
    pub async fn creds(&self, role: &str) -> Result<Creds> {
        let body = self
            .client
            .expect("GET", &format!("/v1/{MOUNT}/creds/{role}"), None, 200)
            .await?;
        Creds::from_body(body)
    }

    /// PUT sys/leases/lookup, expecting 200; returns `data`.
    pub async fn lookup(&self, lease_id: &str) -> Result<Value> {
        let body = self
            .client
            .expect("PUT", "/v1/sys/leases/lookup", Some(json!({"lease_id": lease_id})), 200)
            .await?;
        Ok(body["data"].clone())
    }

    /// PUT sys/leases/lookup, whatever the answer: `(status, body)`.
    pub async fn lookup_raw(&self, lease_id: &str) -> Result<(u16, Value)> {
        self.client
            .req("PUT", "/v1/sys/leases/lookup", Some(json!({"lease_id": lease_id})))
            .await
    }

    /// LIST the leases under `db/creds/<role>/`: the keys, empty on 404.
    pub async fn lease_keys(&self, role: &str) -> Result<Vec<String>> {
        let path = format!("/v1/sys/leases/lookup/{MOUNT}/creds/{role}/");
        let (status, body) = self.client.list(&path).await?;
        match status {
            404 => Ok(Vec::new()),
            200 => keys_of(&body).with_context(|| format!("LIST {path}: {body}")),
            _ => bail!("LIST {path}: expected 200 or 404, got {status} {body}"),
        }
    }
}

impl Creds {
    pub fn from_body(body: Value) -> Result<Creds> {
        let text = |v: &Value, what: &str| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("creds response has no string {what}: {body}"))
        };
        Ok(Creds {
            lease_id: text(&body["lease_id"], "lease_id")?,
            username: text(&body["data"]["username"], "data.username")?,
            password: text(&body["data"]["password"], "data.password")?,
            lease_duration: body["lease_duration"]
                .as_i64()
                .ok_or_else(|| anyhow!("creds response has no integer lease_duration: {body}"))?,
            body,
        })
    }
}

/// The connection config for a scratch database: the standard PostgreSQL
/// plugin, the scratch admin login, verify_connection left at its default.
pub fn postgres_config(scratch: &Scratch, allowed_roles: &[&str]) -> Value {
    json!({
        "plugin_name": "postgresql-database-plugin",
        "connection_url": scratch.connection_url_template(),
        "username": scratch.admin_user,
        "password": scratch.admin_password,
        "allowed_roles": allowed_roles,
    })
}

/// `data.keys` of a list response as strings.
pub fn keys_of(body: &Value) -> Result<Vec<String>> {
    body["data"]["keys"]
        .as_array()
        .ok_or_else(|| anyhow!("no data.keys array"))?
        .iter()
        .map(|k| {
            k.as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("non-string key {k}"))
        })
        .collect()
}

/// The `errors` array of an error response.
pub fn errors_of(body: &Value) -> Option<&Vec<Value>> {
    body.get("errors").and_then(Value::as_array)
}

/// Check an error response: the status is `status` (or, when `status` is 0,
/// any 4xx/5xx) and the body is `{"errors": [...]}` with at least one
/// message.
pub fn check_error(what: &str, got: &(u16, Value), status: u16) -> Result<()> {
    let (got_status, body) = got;
    let status_ok = if status == 0 {
        *got_status >= 400
    } else {
        *got_status == status
    };
    let expected = if status == 0 {
        "a 4xx or 5xx".to_string()
    } else {
        status.to_string()
    };
    if !status_ok {
        bail!("{what}: expected {expected} with errors, got {got_status} {body}");
    }
    match errors_of(body) {
        Some(errors) if !errors.is_empty() && errors.iter().all(Value::is_string) => Ok(()),
        _ => bail!("{what}: expected a body {{\"errors\": [<message>, ...]}}, got {got_status} {body}"),
    }
}

/// Poll `f` every 200 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> Result<bool>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await? {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Shallow merge of `extra`'s fields into `base` (both objects).
pub fn merge(base: &mut Value, extra: Value) {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        for (k, v) in extra {
            base.insert(k, v);
        }
    }
}

impl Client {
    /// Send a request and require `status`; the error names the request,
    /// what was expected and what came back. Returns the body.
    pub async fn expect(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Result<Value> {
        let shown_body = body.as_ref().map(redact).unwrap_or_default();
        let (got, response) = self.req(method, path, body).await?;
        if got != status {
            bail!("{method} {path} {shown_body}: expected {status}, got {got} {response}");
        }
        Ok(response)
    }
}

/// A request body for messages, with the password hidden.
fn redact(body: &Value) -> String {
    let mut body = body.clone();
    if let Some(obj) = body.as_object_mut()
        && obj.contains_key("password")
    {
        obj.insert("password".into(), Value::String("<redacted>".into()));
    }
    body.to_string()
}

/// The hostile test driver's plugin directory: a new directory holding
/// components/hostile's `.wasm` (`WARDEN_COMPONENT_HOSTILE_WASM`, else the
/// components build) as `hostile-database-plugin.wasm`, for `-dev-plugin-dir`.
pub fn hostile_plugin_dir() -> Result<crate::util::TempDir> {
    let wasm = match std::env::var_os("WARDEN_COMPONENT_HOSTILE_WASM") {
        Some(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => crate::util::target_dir().join("wasm/wasm32-wasip2/release/hostile_driver.wasm"),
    };
    if !wasm.is_file() {
        bail!(
            "hostile test driver not found at {} (build the components, or set \
             WARDEN_COMPONENT_HOSTILE_WASM)",
            wasm.display()
        );
    }
    let plugins = crate::util::TempDir::new("warden-plugins")?;
    std::fs::copy(&wasm, plugins.path().join("hostile-database-plugin.wasm"))
        .map_err(|e| anyhow!("copy {}: {e}", wasm.display()))?;
    Ok(plugins)
}

/// `db/config/h` on the hostile driver (a server started with
/// [`hostile_plugin_dir`]) and one role per misbehaviour in `roles`.
pub async fn configure_hostile(client: &Client, roles: &[&str]) -> Result<()> {
    client
        .expect(
            "POST",
            "/v1/db/config/h",
            Some(json!({
                "plugin_name": "hostile-database-plugin",
                "connection_url": "postgresql://127.0.0.1:1/x",
                // A tcp grant too (127.0.0.1:1), for the `tunnel` role to overstep.
                "host": "127.0.0.1",
                "port": 1,
                "verify_connection": false,
                "allowed_roles": ["*"],
            })),
            204,
        )
        .await?;
    for role in roles {
        client
            .expect(
                "POST",
                &format!("/v1/db/roles/{role}"),
                Some(json!({"db_name": "h", "creation_statements": ["SELECT 1;"], "default_ttl": "1h"})),
                204,
            )
            .await?;
    }
    Ok(())
}

/// The entries of a file audit device: one JSON object per line.
pub fn audit_entries(path: &std::path::Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    text.lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("not one JSON object per line: {l}")))
        .collect()
}
