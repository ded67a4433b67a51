//! `sys/leases`: lookup, list, renew, revoke, revoke-prefix, revoke-force,
//! and the irrevocable leases' list and count. Vault keeps the pre-0.9
//! aliases `sys/renew`, `sys/revoke`, `sys/revoke-prefix`, `sys/revoke-force`.

use crate::core::Core;
use crate::core::expiration::invalid_lease;
use crate::error::{Error, Result};
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{List, Read, Update};
use crate::logical::{LeaseInfo, Reply, Response};
use crate::node::Node;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

pub fn paths() -> Vec<Path<Node>> {
    let lease_id = || Field::new("lease_id", FieldType::Str, "The lease identifier.");
    let url_lease_id = || Field::new("url_lease_id", FieldType::Str, "The lease identifier, in the URL.");
    let sync = || {
        Field::new(
            "sync",
            FieldType::Bool,
            "Whether to wait for the revocation (true) or queue it and answer 202 (false).",
        )
        .default(true)
    };
    let prefix = || Field::new("prefix", FieldType::Str, "The path prefix of the leases.");
    let lease_type = || Field::new("type", FieldType::Str, "The type of leases: only \"irrevocable\".");
    vec![
        Path::new("leases/?")
            .field(lease_type())
            .field(Field::new("limit", FieldType::Str, "How many leases to show: a number, or \"none\" for all.").default("10000"))
            .op(Read, handler!(irrevocable_leases), "List the irrevocable leases.")
            .op(List, handler!(irrevocable_leases), "List the irrevocable leases.")
            .help("List leases.", "Lists irrevocable leases (type=irrevocable): those whose revocation failed too often."),
        Path::new("leases/count")
            .field(lease_type())
            .op(Read, handler!(irrevocable_count), "Count the irrevocable leases.")
            .help("Count leases.", "Counts irrevocable leases (type=irrevocable), in all and per mount."),
        Path::new("leases/lookup/?")
            .op(List, handler!(lookup_list), "List the top-level lease prefixes.")
            .help("List leases.", "Lists the lease prefixes below the root."),
        Path::new("leases/lookup/(?P<prefix>.+?)/?")
            .field(prefix())
            .op(List, handler!(lookup_list), "List the leases below a prefix.")
            .help("List leases with a given prefix.", "Lists the leases and sub-prefixes below a prefix."),
        Path::new("leases/lookup")
            .field(lease_id())
            .op(Update, handler!(lookup), "Retrieve the metadata of a lease.")
            .help("View or list lease metadata.", "The lease's id, issue, expiry and last renewal times, path and remaining TTL."),
        Path::new("(leases/)?renew(/(?P<url_lease_id>.+))?")
            .field(lease_id())
            .field(url_lease_id())
            .field(Field::new("increment", FieldType::Duration, "The requested amount of time in seconds to extend the lease.").default(0))
            .op(Update, handler!(renew), "Renews a lease, requesting to extend the lease.")
            .help("Renew a lease.", "Extends a renewable lease by the increment, capped by its maximum TTL."),
        Path::new("(leases/)?revoke(/(?P<url_lease_id>.+))?")
            .field(lease_id())
            .field(url_lease_id())
            .field(sync())
            .op(Update, handler!(revoke), "Revokes a lease immediately.")
            .help("Revoke a lease.", "Revokes the secret of a lease (drops the database user) and forgets the lease."),
        Path::new("(leases/)?revoke-force/(?P<prefix>.+)")
            .sudo()
            .runs_to_completion()
            .field(prefix())
            .op(Update, handler!(revoke_force), "Revokes all secrets or tokens generated under a given prefix immediately, ignoring errors.")
            .help("Revoke all secrets generated in a given prefix, ignoring errors.", "Forgets every lease below the prefix even when its secret cannot be revoked; the secret may stay in the database."),
        Path::new("(leases/)?revoke-prefix/(?P<prefix>.+)")
            .sudo()
            .runs_to_completion()
            .field(prefix())
            .field(sync())
            .op(Update, handler!(revoke_prefix), "Revokes all secrets (via a lease ID prefix) or tokens (via the tokens' path property) generated under a given prefix immediately.")
            .help("Revoke all secrets generated in a given prefix.", "Revokes every lease below the prefix; with sync=false they are queued and the answer is 202."),
    ]
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The lease id from the body, or else from the rest of the URL, made
/// full (lease ids are given from the request's namespace).
fn lease_id(r: &Req<'_>) -> Result<String> {
    let id = r.fields.str("lease_id");
    let id = if id.is_empty() {
        r.fields.str("url_lease_id")
    } else {
        id
    };
    if id.is_empty() {
        return Err(Error::bad("lease_id must be specified"));
    }
    Ok(r.namespace.full(&id))
}

async fn lookup_list(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let prefix = r.fields.str("prefix");
    let prefix = match prefix.trim_end_matches('/') {
        "" => r.namespace.path.clone(),
        p => r.namespace.full(&format!("{p}/")),
    };
    let keys = core.expiration.list(&prefix).await?;
    if keys.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

async fn lookup(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let id = r.fields.str("lease_id");
    if id.is_empty() {
        return Err(Error::bad("lease_id must be specified"));
    }
    let lease = core
        .expiration
        .get(&r.namespace.full(&id))
        .await?
        .ok_or_else(invalid_lease)?;
    Ok(Some(Response::data(json!({
        "id": r.namespace.relative(&lease.lease_id),
        "issue_time": time(lease.issue_time),
        "expire_time": time(lease.expire_time),
        "last_renewal": lease.last_renewal.map(time),
        "path": r.namespace.relative(&lease.path),
        "renewable": lease.renewable,
        "ttl": lease.ttl(Utc::now()),
    }))))
}

async fn renew(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let id = lease_id(r)?;
    let increment = r.fields.duration("increment");
    if increment < 0 {
        return Err(Error::bad("increment must be a positive duration"));
    }
    let (lease, ttl, warnings) = core.renew_lease(&id, increment).await?;
    Ok(Some(Response {
        lease: Some(LeaseInfo {
            lease_duration: ttl,
            lease_id: r.namespace.relative(&lease.lease_id).to_string(),
            renewable: lease.renewable,
        }),
        warnings,
        ..Default::default()
    }))
}

/// Vault's `sync` (default true): false queues the revocation for the
/// expiry timer (retried on failure) and answers 202 at once.
async fn revoke(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let id = lease_id(r)?;
    if r.fields.bool("sync") {
        core.revoke_lease(&id).await?;
        return Ok(None);
    }
    if core.expiration.get(&id).await?.is_some() {
        core.expiration.retry_in(&id, std::time::Duration::ZERO);
    }
    Ok(Some(Response::accepted()))
}

async fn revoke_prefix(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let prefix = r.namespace.full(&r.fields.str("prefix"));
    if r.fields.bool("sync") {
        core.revoke_prefix(&prefix).await?;
        return Ok(None);
    }
    core.queue_revoke_prefix(&prefix).await?;
    Ok(Some(Response::accepted()))
}

async fn revoke_force(node: &Node, r: &Req<'_>) -> Reply {
    node.core()?
        .revoke_force(&r.namespace.full(&r.fields.str("prefix")))
        .await?;
    Ok(None)
}

/// Vault's `type` parameter of sys/leases and sys/leases/count: only
/// irrevocable leases can be listed or counted.
fn lease_type(r: &Req<'_>) -> Result<()> {
    match r.fields.opt_str("type").as_deref() {
        Some("irrevocable") => Ok(()),
        Some(other) => Err(Error::bad(format!(
            "unsupported lease type {other:?}: only \"irrevocable\" is"
        ))),
        None => Err(Error::bad("missing lease type: type=irrevocable")),
    }
}

/// The lease ids below the request's namespace.
fn in_namespace(r: &Req<'_>, ids: Vec<String>) -> Vec<String> {
    ids.into_iter().filter(|id| id.starts_with(&r.namespace.path)).collect()
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
async fn irrevocable_leases(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    lease_type(r)?;
    let limit = r.fields.str("limit");
    let limit = if limit.eq_ignore_ascii_case("none") {
        usize::MAX
    } else {
        limit
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::bad("limit must be a positive integer or \"none\""))?
    };
    let ids = in_namespace(r, core.expiration.irrevocable());
    let total = ids.len();
    let mut leases = Vec::new();
    for id in ids.into_iter().take(limit) {
        let Some(lease) = core.expiration.get(&id).await? else {
            continue; // revoked meanwhile
        };
        leases.push(json!({
            "lease_id": r.namespace.relative(&lease.lease_id),
            "mount_id": lease_mount_id(&core, &lease.mount_path),
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
async fn irrevocable_count(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    lease_type(r)?;
    let ids = in_namespace(r, core.expiration.irrevocable());
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
