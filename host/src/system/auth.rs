//! `sys/auth`: list, enable, read, tune and disable auth methods (the
//! auth table, [`crate::core::auth_mounts`]). The built-in `token/` method
//! is always listed and cannot be disabled. Enabling, tuning and disabling
//! need sudo, as Vault's `auth/*` root paths.

use super::mounts::{check_ttls, ttl_field, ttl_given};
use crate::core::auth_mounts::describe;
use crate::core::mounts::{MountRecord, normalize_path};
use crate::error::{Error, Result};
use crate::framework::ttl::{system_default_ttl, system_max_ttl};
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Namespace;
use crate::logical::Operation::{Delete, Read, Update};
use crate::logical::{Reply, Response};
use crate::node::Node;
use serde_json::{Map, Value, json};

pub fn paths() -> Vec<Path<Node>> {
    let path_field = || {
        Field::new(
            "path",
            FieldType::Str,
            "The path to mount to. Cannot be delimited. Example: \"user\"",
        )
    };
    vec![
        Path::new("auth")
            .op(Read, handler!(list), "List the currently enabled credential backends.")
            .help(
                "List the currently enabled credential backends.",
                "The name of each enabled auth method (\"token/\" always) with its type, accessor, uuid and configuration.",
            ),
        Path::new("auth/(?P<path>.+?)/tune")
            .sudo()
            .field(path_field())
            .field(super::ttl_text("default_lease_ttl", "The default lease TTL of the method's tokens (a duration, or \"system\")."))
            .field(super::ttl_text("max_lease_ttl", "The maximum lease TTL of the method's tokens (a duration, or \"system\")."))
            .field(Field::new("description", FieldType::Str, "User-friendly description for this credential backend."))
            .op(Read, handler!(tune_read), "Reads the given auth path's configuration.")
            .op(Update, handler!(tune_write), "Tune configuration parameters for a given auth path.")
            .help(
                "Tune the configuration parameters for an auth path.",
                "Read and write the 'default-lease-ttl' and 'max-lease-ttl' values of the auth path.",
            ),
        // Disabling revokes every token issued through the method first.
        Path::new("auth/(?P<path>.+)")
            .sudo()
            .runs_to_completion()
            .field(path_field())
            .field(Field::new("type", FieldType::Str, "The type of the backend. Example: \"approle\""))
            .field(Field::new("description", FieldType::Str, "User-friendly description for this credential backend."))
            .field(Field::new("config", FieldType::Map, "Configuration for this mount, such as default_lease_ttl and max_lease_ttl."))
            .field(Field::new("options", FieldType::Map, "The options to pass into the backend (unused by Warden's methods)."))
            .field(Field::new("local", FieldType::Bool, "Mark the mount as a local mount, which is not replicated and is unaffected by replication.").default(false))
            .field(Field::new("seal_wrap", FieldType::Bool, "Whether to turn on seal wrapping for the mount (not supported).").default(false))
            .field(Field::new("plugin_name", FieldType::Str, "Name of the auth plugin to use based from the name in the plugin catalog."))
            .field(Field::new("plugin_version", FieldType::Str, "The semantic version of the plugin to use."))
            .op(Read, handler!(read), "Read the configuration of the auth engine at the given path.")
            .op(Update, handler!(enable), "Enables a new auth method.")
            .op(Delete, handler!(disable), "Disable the auth method at the given auth path, revoking the tokens issued through it.")
            .help(
                "Enable a new credential backend with a name.",
                "Enable a credential mechanism at a new path. A backend can be mounted multiple times at multiple paths in order to configure multiple separately configured backends. Example: you might have an OAuth backend for GitHub, and one for Google Apps.",
            ),
    ]
}

/// The request's namespace's auth methods, by their path in it. (A
/// namespace's auth methods are kept by their path below `auth/` with the
/// namespace's path in front: "team-a/approle/".)
async fn list(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let mut data = Map::new();
    data.insert("token/".into(), describe(&core.token_auth_record()));
    for m in core.auth_mounts() {
        if core.namespaces.owner(m.path()) == r.namespace.path {
            data.insert(r.namespace.relative(m.path()).to_string(), describe(&m.record));
        }
    }
    // Vault also copies the table to the top level of the body.
    Ok(Some(Response {
        top_level: Some(data.clone()),
        ..Response::data(Value::Object(data))
    }))
}

fn auth_path(r: &Req<'_>) -> String {
    normalize_path(&r.fields.str("path"))
}

/// The auth method of the namespace `ns` at `path` (below `auth/`, in the
/// namespace).
fn own_auth(core: &crate::core::Core, ns: &Namespace, path: &str) -> Option<MountRecord> {
    let full = ns.full(path);
    core.auth_mount_at(&full)
        .filter(|_| core.namespaces.owner(&full) == ns.path)
        .map(|m| m.record.clone())
}

async fn read(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let path = auth_path(r);
    if path == "token/" {
        return Ok(Some(Response::data(describe(&core.token_auth_record()))));
    }
    let m = own_auth(&core, r.namespace, &path).ok_or_else(|| Error::bad(format!("No auth engine at {path}")))?;
    Ok(Some(Response::data(describe(&m))))
}

async fn enable(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let f = &r.fields;
    let kind = match f.str("type") {
        t if t.is_empty() => f.str("plugin_name"),
        t => t,
    };
    if kind.is_empty() {
        return Err(Error::bad("backend type must be specified"));
    }
    if kind == "token" {
        return Err(Error::bad("token credential backend cannot be instantiated"));
    }
    let config = f.opt_map("config").unwrap_or_default();
    let default_lease_ttl = ttl_field(&config, "default_lease_ttl")?.unwrap_or(0);
    let max_lease_ttl = ttl_field(&config, "max_lease_ttl")?.unwrap_or(0);
    check_ttls(default_lease_ttl, max_lease_ttl)?;
    let uuid = uuid::Uuid::new_v4().to_string();
    core.enable_auth(
        r.namespace,
        MountRecord {
            path: r.namespace.full(&auth_path(r)),
            accessor: format!("auth_{kind}_{}", &uuid[..8]),
            kind,
            description: f.str("description"),
            uuid,
            default_lease_ttl,
            max_lease_ttl,
        },
    )
    .await?;
    Ok(None)
}

async fn disable(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let path = auth_path(r);
    if path == "token/" {
        return core.disable_auth(&path).await.map(|_| None);
    }
    match own_auth(&core, r.namespace, &path) {
        Some(m) => core.disable_auth(&m.path).await.map(|_| None),
        None => Ok(None),
    }
}

async fn tune_read(node: &Node, r: &Req<'_>) -> Reply {
    tune_read_at(node, r.namespace, &auth_path(r))
}

/// The tune settings of the auth method at `path` of the namespace `ns`
/// (also answered at `sys/mounts/auth/<path>/tune`, which `bao auth tune`
/// uses).
pub(super) fn tune_read_at(node: &Node, ns: &Namespace, path: &str) -> Reply {
    let core = node.core()?;
    let path = normalize_path(path);
    let record = match path.as_str() {
        "token/" => core.token_auth_record(),
        _ => tuned(&core, ns, &path)?,
    };
    let or_system = |v: i64, system: i64| if v > 0 { v } else { system };
    let data = json!({
        "default_lease_ttl": or_system(record.default_lease_ttl, system_default_ttl()),
        "max_lease_ttl": or_system(record.max_lease_ttl, system_max_ttl()),
        "description": record.description,
        "force_no_cache": false,
        "token_type": "default-service",
    });
    Ok(Some(Response {
        top_level: data.as_object().cloned(),
        ..Response::data(data)
    }))
}

fn tuned(core: &crate::core::Core, ns: &Namespace, path: &str) -> Result<MountRecord> {
    own_auth(core, ns, path).ok_or_else(|| {
        Error::bad(format!(
            "cannot fetch mount configuration for \"auth/{path}\": no mount at this path"
        ))
    })
}

async fn tune_write(node: &Node, r: &Req<'_>) -> Reply {
    tune_write_at(node, &auth_path(r), r).await
}

/// Tune the auth method at `path` of the request's namespace (also
/// `sys/mounts/auth/<path>/tune`).
pub(super) async fn tune_write_at(node: &Node, path: &str, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let path = normalize_path(path);
    if path == "token/" {
        return Err(Error::bad("the token/ auth method cannot be tuned here yet"));
    }
    let mut record = tuned(&core, r.namespace, &path)?;
    if let Some(d) = ttl_given(&r.fields, "default_lease_ttl")? {
        record.default_lease_ttl = d;
    }
    if let Some(x) = ttl_given(&r.fields, "max_lease_ttl")? {
        record.max_lease_ttl = x;
    }
    if let Some(desc) = r.fields.opt_str("description") {
        record.description = desc;
    }
    check_ttls(record.default_lease_ttl, record.max_lease_ttl)?;
    core.update_auth(record).await?;
    Ok(None)
}
