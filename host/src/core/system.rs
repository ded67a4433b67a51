//! The `sys/` backend: mounts (enable, list, read, tune, disable), leases
//! (lookup, list, renew, revoke, revoke-prefix, revoke-force, the irrevocable
//! list and count) and the plugin catalog.

use super::Core;
use super::fields;
use super::mounts::{MountRecord, normalize_path};
use super::ttl::{system_default_ttl, system_max_ttl};
use crate::error::{Error, Result};
use crate::logical::{LeaseInfo, Operation, Reply, Request, Response};
use crate::runtime::PluginKind;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

pub async fn handle(core: &Core, path: &str, req: &Request) -> Reply {
    let op = req.operation;
    if path == "mounts" {
        return match op {
            Operation::Read => Ok(Some(list_mounts(core))),
            _ => Err(Error::UnsupportedOperation),
        };
    }
    if let Some(rest) = path.strip_prefix("mounts/") {
        if let Some(mount) = rest.strip_suffix("/tune") {
            return tune(core, &normalize_path(mount), req).await;
        }
        let mount = normalize_path(rest);
        return match op {
            Operation::Update => enable(core, &mount, req).await,
            Operation::Read => Ok(Some(mount_info_response(core, &mount)?)),
            Operation::Delete => core.disable_mount(&mount).await.map(|_| None),
            Operation::List => Err(Error::UnsupportedOperation),
        };
    }
    // Vault keeps the pre-0.9 aliases sys/renew, sys/revoke, sys/revoke-prefix.
    let path = match path {
        p if p.starts_with("renew") || p.starts_with("revoke") => format!("leases/{p}"),
        p => p.to_string(),
    };
    if path == "leases" || path == "leases/" {
        return match op {
            Operation::Read | Operation::List => irrevocable_leases(core, req).await,
            _ => Err(Error::UnsupportedOperation),
        };
    }
    if let Some(rest) = path.strip_prefix("leases/") {
        return leases(core, rest, req).await;
    }
    if let Some(rest) = path
        .strip_prefix("policies/password")
        .filter(|r| r.is_empty() || r.starts_with('/'))
    {
        let policies = super::password_policy::PasswordPolicies::new(core.storage.clone(), core.runtime.clone());
        return super::password_policy::handle(&policies, rest, req).await;
    }
    if let Some(rest) = path
        .strip_prefix("plugins/catalog")
        .filter(|r| r.is_empty() || r.starts_with('/'))
    {
        return catalog(core, rest.trim_start_matches('/'), op);
    }
    Err(Error::UnsupportedPath)
}

fn mount_json(r: &MountRecord) -> Value {
    json!({
        "accessor": r.accessor,
        "config": {
            "default_lease_ttl": r.default_lease_ttl,
            "max_lease_ttl": r.max_lease_ttl,
            "force_no_cache": false,
        },
        "description": r.description,
        "external_entropy_access": false,
        "local": false,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": "",
        "running_sha256": "",
        "seal_wrap": false,
        "type": r.kind,
        "uuid": r.uuid,
    })
}

fn list_mounts(core: &Core) -> Response {
    let mut data = serde_json::Map::new();
    for m in core.mounts() {
        data.insert(m.path().to_string(), mount_json(&m.record));
    }
    data.insert(
        "sys/".into(),
        json!({
            "accessor": "system", "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
            "description": "system endpoints used for control, policy and debugging",
            "external_entropy_access": false, "local": false, "options": null, "plugin_version": "",
            "running_plugin_version": "", "running_sha256": "", "seal_wrap": true, "type": "system", "uuid": "",
        }),
    );
    // Vault also copies the mounts to the top level of the body.
    Response {
        top_level: Some(data.clone()),
        ..Response::data(Value::Object(data))
    }
}

fn mount_info_response(core: &Core, path: &str) -> Result<Response> {
    let m = core
        .mount_for(path)
        .filter(|m| m.path() == path)
        .ok_or(Error::NotFound)?;
    Ok(Response::data(mount_json(&m.record)))
}

fn ttl_field(data: &serde_json::Map<String, Value>, field: &str) -> Result<Option<i64>> {
    // "system" means "use the system default", stored as 0.
    if data.get(field).and_then(Value::as_str) == Some("system") {
        return Ok(Some(0));
    }
    fields::duration(data, field)
}

async fn enable(core: &Core, path: &str, req: &Request) -> Reply {
    let kind = fields::string(&req.data, "type")?.unwrap_or_default();
    if kind.is_empty() {
        return Err(Error::bad("backend type must be specified"));
    }
    let config = match req.data.get("config") {
        Some(Value::Object(c)) => c.clone(),
        _ => serde_json::Map::new(),
    };
    let default_lease_ttl = ttl_field(&config, "default_lease_ttl")?.unwrap_or(0);
    let max_lease_ttl = ttl_field(&config, "max_lease_ttl")?.unwrap_or(0);
    check_ttls(default_lease_ttl, max_lease_ttl)?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let record = MountRecord {
        path: path.to_string(),
        accessor: format!("{kind}_{}", &uuid[..8]),
        kind,
        description: fields::string(&req.data, "description")?.unwrap_or_default(),
        uuid,
        default_lease_ttl,
        max_lease_ttl,
    };
    core.enable_mount(record).await?;
    Ok(None)
}

fn check_ttls(default: i64, max: i64) -> Result<()> {
    if default < 0 || max < 0 {
        return Err(Error::bad("lease TTLs cannot be negative"));
    }
    let effective_max = if max > 0 { max } else { system_max_ttl() };
    if default > effective_max {
        return Err(Error::bad("default lease TTL cannot be greater than max lease TTL"));
    }
    Ok(())
}

async fn tune(core: &Core, path: &str, req: &Request) -> Reply {
    let m = core.mount_for(path).filter(|m| m.path() == path).ok_or_else(|| {
        Error::bad(format!(
            "cannot fetch mount configuration for {path:?}: no mount at this path"
        ))
    })?;
    match req.operation {
        Operation::Read => {
            let or_system = |v: i64, system: i64| if v > 0 { v } else { system };
            let data = json!({
                "default_lease_ttl": or_system(m.record.default_lease_ttl, system_default_ttl()),
                "max_lease_ttl": or_system(m.record.max_lease_ttl, system_max_ttl()),
                "description": m.record.description,
                "force_no_cache": false,
            });
            let top = data.as_object().cloned();
            Ok(Some(Response {
                top_level: top,
                ..Response::data(data)
            }))
        }
        Operation::Update => {
            let mut record = m.record.clone();
            if let Some(d) = ttl_field(&req.data, "default_lease_ttl")? {
                record.default_lease_ttl = d;
            }
            if let Some(x) = ttl_field(&req.data, "max_lease_ttl")? {
                record.max_lease_ttl = x;
            }
            if let Some(desc) = fields::string(&req.data, "description")? {
                record.description = desc;
            }
            check_ttls(record.default_lease_ttl, record.max_lease_ttl)?;
            core.update_mount(record).await?;
            Ok(None)
        }
        _ => Err(Error::UnsupportedOperation),
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The lease id from the body, or else from the rest of the URL.
fn lease_id(req: &Request, from_url: &str) -> Result<String> {
    let id = fields::string(&req.data, "lease_id")?.unwrap_or_default();
    let id = if id.is_empty() { from_url.to_string() } else { id };
    if id.is_empty() {
        return Err(Error::bad("missing lease ID"));
    }
    Ok(id)
}

async fn leases(core: &Core, rest: &str, req: &Request) -> Reply {
    let (verb, arg) = match rest.split_once('/') {
        Some((v, a)) => (v, a),
        None => (rest, ""),
    };
    match (verb, req.operation) {
        ("lookup", Operation::List) => {
            let prefix = if arg.is_empty() {
                String::new()
            } else {
                format!("{}/", arg.trim_end_matches('/'))
            };
            let keys = core.expiration.list(&prefix).await?;
            if keys.is_empty() {
                return Err(Error::NotFound);
            }
            Ok(Some(Response::list(keys)))
        }
        ("lookup", Operation::Update) => {
            let id = lease_id(req, arg)?;
            let lease = core
                .expiration
                .get(&id)
                .await?
                .ok_or_else(super::expiration::invalid_lease)?;
            Ok(Some(Response::data(json!({
                "id": lease.lease_id,
                "issue_time": time(lease.issue_time),
                "expire_time": time(lease.expire_time),
                "last_renewal": lease.last_renewal.map(time),
                "path": lease.path,
                "renewable": lease.renewable,
                "ttl": lease.ttl(Utc::now()),
            }))))
        }
        ("renew", Operation::Update) => {
            let id = lease_id(req, arg)?;
            let increment = fields::duration(&req.data, "increment")?.unwrap_or(0);
            if increment < 0 {
                return Err(Error::bad("increment must be a positive duration"));
            }
            let (lease, ttl, warnings) = core.renew_lease(&id, increment).await?;
            Ok(Some(Response {
                lease: Some(LeaseInfo {
                    lease_duration: ttl,
                    lease_id: lease.lease_id,
                    renewable: lease.renewable,
                }),
                warnings,
                ..Default::default()
            }))
        }
        // Vault's `sync` (default true): false queues the revocation for
        // the expiry timer (retried on failure) and answers 202 at once.
        ("revoke", Operation::Update) => {
            let id = lease_id(req, arg)?;
            if fields::boolean(&req.data, "sync")?.unwrap_or(true) {
                core.revoke_lease(&id).await?;
                return Ok(None);
            }
            if core.expiration.get(&id).await?.is_some() {
                core.expiration.retry_in(&id, std::time::Duration::ZERO);
            }
            Ok(Some(Response::accepted()))
        }
        ("revoke-prefix", Operation::Update) => {
            if arg.is_empty() {
                return Err(Error::bad("missing prefix"));
            }
            if fields::boolean(&req.data, "sync")?.unwrap_or(true) {
                core.revoke_prefix(arg).await?;
                return Ok(None);
            }
            core.queue_revoke_prefix(arg).await?;
            Ok(Some(Response::accepted()))
        }
        ("revoke-force", Operation::Update) => {
            if arg.is_empty() {
                return Err(Error::bad("missing prefix"));
            }
            core.revoke_force(arg).await?;
            Ok(None)
        }
        ("count", Operation::Read) if arg.is_empty() => irrevocable_count(core, req),
        ("lookup" | "renew" | "revoke" | "revoke-prefix" | "revoke-force" | "count", _) => {
            Err(Error::UnsupportedOperation)
        }
        _ => Err(Error::UnsupportedPath),
    }
}

/// Vault's `type` parameter of sys/leases and sys/leases/count: only
/// irrevocable leases can be listed or counted.
fn lease_type(req: &Request) -> Result<()> {
    match fields::string(&req.data, "type")?.as_deref() {
        Some("irrevocable") => Ok(()),
        Some(other) => Err(Error::bad(format!(
            "unsupported lease type {other:?}: only \"irrevocable\" is"
        ))),
        None => Err(Error::bad("missing lease type: type=irrevocable")),
    }
}

/// The mount accessor a lease belongs to (Vault's `mount_id`).
fn lease_mount_id(core: &Core, mount_path: &str) -> String {
    core.mount_for(mount_path)
        .filter(|m| m.path() == mount_path)
        .map(|m| m.record.accessor.clone())
        .unwrap_or_default()
}

/// GET|LIST sys/leases?type=irrevocable[&limit=N|none]: the leases whose
/// revocation failed past the retry limit, with the last error.
async fn irrevocable_leases(core: &Core, req: &Request) -> Reply {
    lease_type(req)?;
    let limit = match req.data.get("limit") {
        None => 10_000,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("none") => usize::MAX,
        Some(Value::String(s)) => s
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::bad("limit must be a positive integer or \"none\""))?,
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|n| *n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| Error::bad("limit must be a positive integer or \"none\""))?,
        Some(_) => return Err(Error::bad("limit must be a positive integer or \"none\"")),
    };
    let ids = core.expiration.irrevocable();
    let total = ids.len();
    let mut leases = Vec::new();
    for id in ids.into_iter().take(limit) {
        let Some(lease) = core.expiration.get(&id).await? else {
            continue; // revoked meanwhile
        };
        leases.push(json!({
            "lease_id": lease.lease_id,
            "mount_id": lease_mount_id(core, &lease.mount_path),
            "error": lease.revoke.error.unwrap_or_default(),
        }));
    }
    let mut resp = Response::data(json!({"lease_count": total, "leases": leases}));
    if total > limit {
        resp.warnings.push(format!(
            "showing {limit} of {total} irrevocable leases; set limit to see more (limit=none: all)"
        ));
    }
    Ok(Some(resp))
}

/// GET sys/leases/count?type=irrevocable: how many, in all and per mount.
fn irrevocable_count(core: &Core, req: &Request) -> Reply {
    lease_type(req)?;
    let ids = core.expiration.irrevocable();
    let mut counts = serde_json::Map::new();
    for id in &ids {
        // The lease id starts with its mount's path.
        let mount_id = core
            .mount_for(id)
            .map(|m| m.record.accessor.clone())
            .unwrap_or_default();
        let n = counts.entry(mount_id).or_insert(json!(0));
        *n = json!(n.as_u64().unwrap_or(0) + 1);
    }
    Ok(Some(Response::data(
        json!({"lease_count": ids.len(), "counts": counts}),
    )))
}

/// The plugin catalog, read-only, in Vault's shapes:
/// - `GET sys/plugins/catalog`: the names per type plus `detailed`;
/// - `LIST sys/plugins/catalog/<type>`: `keys`;
/// - `GET sys/plugins/catalog/<type>/<name>` (or the untyped, deprecated
///   `sys/plugins/catalog/<name>`): one plugin.
///
/// Database plugins are the drivers (built in, or dropped in); the secrets
/// engines Warden mounts are the built-in `secret` plugins. Credential
/// generators are no Vault plugin type and are not listed.
fn catalog(core: &Core, rest: &str, op: Operation) -> Reply {
    const TYPES: [&str; 3] = ["auth", "database", "secret"];
    let version = |builtin: bool| match builtin {
        true => format!("v{}+builtin.warden", env!("CARGO_PKG_VERSION")),
        false => String::new(),
    };
    // (type, name, builtin, sha256), sorted by type then name.
    let mut plugins: Vec<(&str, String, bool, String)> = core
        .runtime
        .plugins()
        .into_iter()
        .filter(|p| p.kind == PluginKind::Database)
        .map(|p| ("database", p.name.clone(), p.builtin, p.sha256.clone()))
        .collect();
    for engine in ["database", "mongodb"] {
        plugins.push(("secret", engine.to_string(), true, String::new()));
    }
    plugins.sort();
    let of_type = |t: &str| -> Vec<String> { plugins.iter().filter(|p| p.0 == t).map(|p| p.1.clone()).collect() };
    let (kind, name) = match rest.trim_end_matches('/').split_once('/') {
        Some((t, n)) if TYPES.contains(&t) => (Some(t), n),
        _ if TYPES.contains(&rest.trim_end_matches('/')) => (Some(rest.trim_end_matches('/')), ""),
        _ => (None, rest),
    };
    match (kind, name, op) {
        (None, "", Operation::Read) => {
            let mut data = serde_json::Map::new();
            for t in TYPES {
                let names = of_type(t);
                if !names.is_empty() {
                    data.insert(t.to_string(), json!(names));
                }
            }
            let detailed: Vec<Value> = plugins
                .iter()
                .map(|(t, n, builtin, sha256)| {
                    let mut entry = json!({"type": t, "name": n, "version": version(*builtin), "builtin": builtin});
                    match builtin {
                        true => entry["deprecation_status"] = json!("supported"),
                        false => entry["sha256"] = json!(sha256),
                    }
                    entry
                })
                .collect();
            data.insert("detailed".into(), json!(detailed));
            Ok(Some(Response::data(Value::Object(data))))
        }
        // An empty list is a 404, as every LIST in Vault.
        (Some(t), "", Operation::List) => Ok(Some(of_type(t)).filter(|k| !k.is_empty()).map(Response::list)),
        (_, name, Operation::Read) if !name.is_empty() => {
            let found = plugins.iter().find(|p| p.1 == name && kind.is_none_or(|k| k == p.0));
            Ok(found.map(|(_, n, builtin, sha256)| {
                let mut data = json!({
                    "args": [],
                    "builtin": builtin,
                    "command": "",
                    "name": n,
                    // Vault shows no digest for a built-in plugin.
                    "sha256": if *builtin { "" } else { sha256.as_str() },
                    "version": version(*builtin),
                });
                if *builtin {
                    data["deprecation_status"] = json!("supported");
                }
                Response::data(data)
            }))
        }
        _ => Err(Error::UnsupportedOperation),
    }
}
