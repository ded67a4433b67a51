//! Resource quotas over `sys/` (Vault's `sys/quotas/...`), over the core's
//! [`crate::core::quotas::Quotas`]:
//!
//! - `sys/quotas/config` (GET, POST): exempt paths and audit logging of
//!   rate-limited requests;
//! - `sys/quotas/rate-limit/:name` (GET, POST, DELETE; LIST
//!   `sys/quotas/rate-limit`): `rate` requests per `interval` per client
//!   address, `block_interval`, `path`;
//! - `sys/quotas/lease-count/:name` (the same): `max_leases` live leases
//!   below `path`, and the `counter` now;
//! - `sys/quotas/sandbox/:name` (the same; Warden's own, issue 16 scope 2):
//!   tighter sandbox limits for the driver calls of a mount (memory per
//!   instance, deadline per call, concurrent calls, connections per pool).

use crate::core::Core;
use crate::core::quotas::{LEASE_COUNT, LeaseCount, QuotaConfig, RATE_LIMIT, RateLimit, SANDBOX, SandboxQuota};
use crate::error::{Error, Result};
use crate::framework::{Field, FieldType, Path, Req, name_capture};
use crate::handler;
use crate::logical::Operation::{Delete, List, Read, Update};
use crate::logical::{Reply, Response};
use crate::node::Node;
use serde_json::json;

pub fn paths() -> Vec<Path<Node>> {
    let name = || Field::new("name", FieldType::Str, "The name of the quota.");
    let path = || {
        Field::new(
            "path",
            FieldType::Str,
            "Path of the mount to apply the quota to. A blank path configures a global quota. For example, \"db/\" adds a quota to the mount db, \"db/creds/app\" to one path of it, and \"db/creds/*\" to the paths below it.",
        )
    };
    let role = || {
        Field::new(
            "role",
            FieldType::Str,
            "Login role to apply this quota to (not supported yet: must be empty).",
        )
    };
    let inheritable = || {
        Field::new(
            "inheritable",
            FieldType::Bool,
            "Whether the quota applies to child namespaces too (kept for namespaces).",
        )
    };
    vec![
        Path::new("quotas/config")
            .field(Field::new(
                "rate_limit_exempt_paths",
                FieldType::StrList,
                "Specifies the list of exempt paths from all rate limit quotas. If empty no paths will be exempt.",
            ))
            .field(Field::new(
                "enable_rate_limit_audit_logging",
                FieldType::Bool,
                "If set, starts audit logging of requests that get rejected due to rate limit quota rule violations.",
            ))
            .field(Field::new(
                "enable_rate_limit_response_headers",
                FieldType::Bool,
                "If set, additional rate limit quota HTTP headers will be added to responses.",
            ))
            .op(Read, handler!(read_config), "Read the quota configuration.")
            .op(Update, handler!(write_config), "Create or update the quota configuration.")
            .help("Create, update and read the quota configuration.", ""),
        Path::new("quotas/rate-limit/?")
            .op(List, handler!(list_rate), "Lists the names of all the rate limit quotas.")
            .help("Lists the names of all the rate limit quotas.", ""),
        Path::new(format!("quotas/rate-limit/{}", name_capture("name")))
            .field(name())
            .field(path())
            .field(role())
            .field(inheritable())
            .field(Field::new(
                "rate",
                FieldType::Float,
                "The maximum number of requests in a given interval to be allowed by the quota rule. The 'rate' must be positive.",
            ))
            .field(Field::new(
                "interval",
                FieldType::Duration,
                "The duration to enforce rate limiting for (default '1s').",
            ))
            .field(Field::new(
                "block_interval",
                FieldType::Duration,
                "If set, when a client reaches a rate limit threshold, the client will be prohibited from any further requests until after the 'block_interval' has elapsed.",
            ))
            .op(Read, handler!(read_rate), "Read a rate limit quota.")
            .op(Update, handler!(write_rate), "Create or update a rate limit quota.")
            .op(Delete, handler!(delete_rate), "Delete a rate limit quota.")
            .help(
                "Get, create or update rate limit resource quota for an optional mount or path.",
                "A rate limit quota will enforce API rate limiting in a specified interval. A rate limit quota can be created at the root level or defined on a mount or path by specifying a 'path'. The rate limiter is applied to each unique client IP address.",
            ),
        Path::new("quotas/sandbox/?")
            .op(List, handler!(list_sandbox), "Lists the names of all the sandbox quotas.")
            .help("Lists the names of all the sandbox quotas.", ""),
        Path::new(format!("quotas/sandbox/{}", name_capture("name")))
            .field(name())
            .field(Field::new(
                "path",
                FieldType::Str,
                "The mount whose driver calls the quota limits (\"db/\"); blank: every mount.",
            ))
            .field(Field::new(
                "max_memory_bytes",
                FieldType::Int,
                "Linear memory one driver instance may grow to, in bytes (1 MiB to 64 MiB; 0: the runtime's limit, 64 MiB).",
            ))
            .field(Field::new(
                "call_timeout",
                FieldType::Duration,
                "Deadline of one driver call (0: the server's -plugin-timeout, which also caps it).",
            ))
            .field(Field::new(
                "max_instances",
                FieldType::Int,
                "Driver calls running at once for the mount; past it a request is refused with 429 (0: no limit).",
            ))
            .field(Field::new(
                "max_connections",
                FieldType::Int,
                "Connections of each database connection's pool, whatever the connection's max_open_connections (0: no limit).",
            ))
            .op(Read, handler!(read_sandbox), "Read a sandbox quota.")
            .op(Update, handler!(write_sandbox), "Create or update a sandbox quota.")
            .op(Delete, handler!(delete_sandbox), "Delete a sandbox quota.")
            .help(
                "Get, create or update the sandbox limits of a mount's driver calls.",
                "A sandbox quota tightens the limits of the WebAssembly driver calls a mount makes: memory per instance, the deadline of a call, calls at once (past it: 429 for the mount's own request) and connections per database pool. Warden's own endpoint; with namespaces its path will name a namespace too.",
            ),
        Path::new("quotas/lease-count/?")
            .op(List, handler!(list_lease), "Lists the names of all the lease count quotas.")
            .help("Lists the names of all the lease count quotas.", ""),
        Path::new(format!("quotas/lease-count/{}", name_capture("name")))
            .field(name())
            .field(path())
            .field(role())
            .field(inheritable())
            .field(Field::new(
                "max_leases",
                FieldType::Int,
                "The maximum number of leases to be allowed by the quota rule. The 'max_leases' must be positive.",
            ))
            .op(Read, handler!(read_lease), "Read a lease count quota.")
            .op(Update, handler!(write_lease), "Create or update a lease count quota.")
            .op(Delete, handler!(delete_lease), "Delete a lease count quota.")
            .help(
                "Get, create or update lease count resource quota for an optional mount or path.",
                "A lease count quota limits the number of live leases below its 'path': a request under it is refused (429 'lease count quota exceeded') while the limit is reached.",
            ),
    ]
}

async fn read_config(node: &Node, _: &Req<'_>) -> Reply {
    let c = node.core()?.quotas.config();
    Ok(Some(Response::data(json!({
        "enable_rate_limit_audit_logging": c.enable_rate_limit_audit_logging,
        "enable_rate_limit_response_headers": c.enable_rate_limit_response_headers,
        "rate_limit_exempt_paths": c.rate_limit_exempt_paths,
        "absolute_rate_limit_exempt_paths": crate::core::quotas::ABSOLUTE_EXEMPT_PATHS,
    }))))
}

async fn write_config(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let old = core.quotas.config();
    let d = &r.fields;
    let config = QuotaConfig {
        enable_rate_limit_audit_logging: d
            .opt_bool("enable_rate_limit_audit_logging")
            .unwrap_or(old.enable_rate_limit_audit_logging),
        enable_rate_limit_response_headers: d
            .opt_bool("enable_rate_limit_response_headers")
            .unwrap_or(old.enable_rate_limit_response_headers),
        rate_limit_exempt_paths: d
            .opt_list("rate_limit_exempt_paths")
            .map(|paths| {
                paths
                    .into_iter()
                    .map(|p| p.trim().trim_start_matches('/').to_string())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or(old.rate_limit_exempt_paths),
    };
    core.quotas.set_config(config).await?;
    Ok(None)
}

async fn list_rate(node: &Node, _: &Req<'_>) -> Reply {
    list(node.core()?.quotas.names(RATE_LIMIT))
}

async fn list_sandbox(node: &Node, _: &Req<'_>) -> Reply {
    list(node.core()?.quotas.names(SANDBOX))
}

async fn read_sandbox(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    Ok(core.quotas.sandbox_quota(&r.fields.str("name")).map(|q| {
        Response::data(json!({
            "type": SANDBOX,
            "name": q.name,
            "path": q.path,
            "max_memory_bytes": q.max_memory_bytes,
            "call_timeout": q.call_timeout,
            "max_instances": q.max_instances,
            "max_connections": q.max_connections,
            "in_use": core.quotas.sandbox_in_use(&q.name),
        }))
    }))
}

async fn write_sandbox(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let (d, name) = (&r.fields, r.fields.str("name"));
    let old = core.quotas.sandbox_quota(&name);
    const MIB: i64 = 1 << 20;
    let max_memory_bytes = d
        .opt_int("max_memory_bytes")
        .or(old.as_ref().and_then(|q| i64::try_from(q.max_memory_bytes).ok()))
        .unwrap_or(0);
    let limit = i64::try_from(crate::runtime::MEMORY_LIMIT).unwrap_or(i64::MAX);
    if max_memory_bytes != 0 && !(MIB..=limit).contains(&max_memory_bytes) {
        return Err(Error::bad(format!(
            "'max_memory_bytes' must be between {MIB} and {limit}, or 0 for the runtime's limit"
        )));
    }
    let call_timeout = d
        .opt_duration("call_timeout")
        .or(old.as_ref().map(|q| q.call_timeout))
        .unwrap_or(0);
    if call_timeout < 0 {
        return Err(Error::bad("'call_timeout' must not be negative"));
    }
    let count = |field: &str, old: Option<u32>, max: u32| -> Result<u32> {
        let v = d.opt_int(field).or(old.map(i64::from)).unwrap_or(0);
        u32::try_from(v)
            .ok()
            .filter(|v| *v <= max)
            .ok_or_else(|| Error::bad(format!("'{field}' must be between 0 and {max}")))
    };
    let max_instances = count("max_instances", old.as_ref().map(|q| q.max_instances), 100_000)?;
    let max_connections = count("max_connections", old.as_ref().map(|q| q.max_connections), 10_000)?;
    let path = match d.opt_str("path") {
        Some(p) => scope(&core, &p)?,
        None => old.as_ref().map(|q| q.path.clone()).unwrap_or_default(),
    };
    if !path.is_empty() && !path.ends_with('/') {
        return Err(Error::bad(format!(
            "a sandbox quota applies to a whole mount: {path:?} is a path below one"
        )));
    }
    if let Some(other) = core.quotas.same_path(SANDBOX, &name, &path) {
        return Err(Error::bad(format!(
            "quota rule with similar properties exists under the name {other:?}"
        )));
    }
    let quota = SandboxQuota {
        name,
        path,
        max_memory_bytes: max_memory_bytes.unsigned_abs(),
        call_timeout,
        max_instances,
        max_connections,
    };
    core.quotas.set_sandbox(quota).await?;
    Ok(None)
}

async fn delete_sandbox(node: &Node, r: &Req<'_>) -> Reply {
    node.core()?.quotas.delete(SANDBOX, &r.fields.str("name")).await?;
    Ok(None)
}

async fn list_lease(node: &Node, _: &Req<'_>) -> Reply {
    list(node.core()?.quotas.names(LEASE_COUNT))
}

fn list(names: Vec<String>) -> Reply {
    if names.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Some(Response::list(names)))
}

async fn read_rate(node: &Node, r: &Req<'_>) -> Reply {
    Ok(node.core()?.quotas.rate_limit(&r.fields.str("name")).map(|q| {
        Response::data(json!({
            "type": RATE_LIMIT,
            "name": q.name,
            "path": q.path,
            "rate": q.rate,
            "interval": q.interval,
            "block_interval": q.block_interval,
            "role": "",
            "inheritable": q.inheritable,
        }))
    }))
}

async fn read_lease(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    Ok(core.quotas.lease_count(&r.fields.str("name")).map(|q| {
        Response::data(json!({
            "type": LEASE_COUNT,
            "name": q.name,
            "path": q.path,
            "max_leases": q.max_leases,
            "counter": core.quotas.counter(&q),
            "role": "",
            "inheritable": q.inheritable,
        }))
    }))
}

async fn write_rate(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let (d, name) = (&r.fields, r.fields.str("name"));
    let old = core.quotas.rate_limit(&name);
    refuse_role(r)?;
    let rate = d.opt_float("rate").or(old.as_ref().map(|q| q.rate)).unwrap_or(0.0);
    if rate <= 0.0 {
        return Err(Error::bad("'rate' is invalid"));
    }
    let interval = d
        .opt_duration("interval")
        .or(old.as_ref().map(|q| q.interval))
        .unwrap_or(1);
    if interval < 0 {
        return Err(Error::bad("'interval' is invalid"));
    }
    let block_interval = d
        .opt_duration("block_interval")
        .or(old.as_ref().map(|q| q.block_interval))
        .unwrap_or(0);
    if block_interval < 0 {
        return Err(Error::bad("'block' is invalid"));
    }
    let path = match d.opt_str("path") {
        Some(p) => scope(&core, &p)?,
        None => old.as_ref().map(|q| q.path.clone()).unwrap_or_default(),
    };
    if let Some(other) = core.quotas.same_path(RATE_LIMIT, &name, &path) {
        return Err(Error::bad(format!(
            "quota rule with similar properties exists under the name {other:?}"
        )));
    }
    let quota = RateLimit {
        name,
        path,
        rate,
        interval: interval.max(1),
        block_interval,
        inheritable: d
            .opt_bool("inheritable")
            .or(old.as_ref().map(|q| q.inheritable))
            .unwrap_or(false),
    };
    core.quotas.set_rate_limit(quota).await?;
    Ok(None)
}

async fn write_lease(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let (d, name) = (&r.fields, r.fields.str("name"));
    let old = core.quotas.lease_count(&name);
    refuse_role(r)?;
    let max_leases = d
        .opt_int("max_leases")
        .or(old.as_ref().and_then(|q| i64::try_from(q.max_leases).ok()))
        .unwrap_or(0);
    let Some(max_leases) = u64::try_from(max_leases).ok().filter(|m| *m > 0) else {
        return Err(Error::bad("'max_leases' is invalid"));
    };
    let path = match d.opt_str("path") {
        Some(p) => scope(&core, &p)?,
        None => old.as_ref().map(|q| q.path.clone()).unwrap_or_default(),
    };
    if let Some(other) = core.quotas.same_path(LEASE_COUNT, &name, &path) {
        return Err(Error::bad(format!(
            "quota rule with similar properties exists under the name {other:?}"
        )));
    }
    let quota = LeaseCount {
        name,
        path,
        max_leases,
        inheritable: d
            .opt_bool("inheritable")
            .or(old.as_ref().map(|q| q.inheritable))
            .unwrap_or(false),
    };
    core.quotas.set_lease_count(quota).await?;
    Ok(None)
}

async fn delete_rate(node: &Node, r: &Req<'_>) -> Reply {
    node.core()?.quotas.delete(RATE_LIMIT, &r.fields.str("name")).await?;
    Ok(None)
}

async fn delete_lease(node: &Node, r: &Req<'_>) -> Reply {
    node.core()?.quotas.delete(LEASE_COUNT, &r.fields.str("name")).await?;
    Ok(None)
}

/// Vault's role-based quotas apply to an auth method's logins with one
/// role; Warden does not resolve login roles for quotas yet, so a quota
/// naming one is refused rather than silently applied to every login.
fn refuse_role(r: &Req<'_>) -> Result<()> {
    match r.fields.opt_str("role") {
        Some(role) if !role.trim().is_empty() => {
            Err(Error::bad("role-based quotas are not supported: leave 'role' empty"))
        }
        _ => Ok(()),
    }
}

/// A quota's path as stored: "" (global), a mount ("db/"), a path below a
/// mount without its trailing '/' ("db/creds/app"), or a prefix ending in
/// '*' ("db/creds/*"). The mount must exist (400 "invalid mount path").
fn scope(core: &Core, raw: &str) -> Result<String> {
    let path = raw.trim().trim_start_matches('/');
    if path.is_empty() {
        return Ok(String::new());
    }
    let star = path.find('*');
    let malformed = path.split('/').any(|s| s == "..")
        || path.chars().any(|c| c.is_control() || c.is_whitespace())
        || star.is_some_and(|i| i + 1 != path.len());
    if malformed {
        return Err(Error::bad(format!("invalid path {path:?}")));
    }
    let with_slash = match path.ends_with('/') {
        true => path.to_string(),
        false => format!("{path}/"),
    };
    // A namespace's path: the quota covers everything in it, its child
    // namespaces' too (what makes a quota per tenant).
    let ns = core
        .namespaces
        .resolve(&with_slash)
        .ok_or_else(|| Error::bad(format!("invalid mount path {path:?}")))?;
    if !ns.is_root() && with_slash == ns.path {
        return Ok(ns.path);
    }
    let mount = mount_of(core, &ns, &with_slash).ok_or_else(|| Error::bad(format!("invalid mount path {path:?}")))?;
    if with_slash == mount {
        return Ok(mount);
    }
    Ok(path.trim_end_matches('/').to_string())
}

/// The mount (secrets engine, auth method, `auth/token/` or `sys/`) that
/// serves `path` (full, in the namespace `ns`), by its full path.
fn mount_of(core: &Core, ns: &crate::logical::Namespace, path: &str) -> Option<String> {
    let relative = ns.relative(path);
    if relative.starts_with("sys/") {
        return Some(ns.full("sys/"));
    }
    if let Some(rest) = relative.strip_prefix("auth/") {
        if rest.starts_with("token/") {
            return Some(ns.full("auth/token/"));
        }
        return core
            .auth_mount_for(&ns.full(rest))
            .map(|m| ns.full(&format!("auth/{}", ns.relative(m.path()))));
    }
    core.mount_for(path).map(|m| m.path().to_string())
}
