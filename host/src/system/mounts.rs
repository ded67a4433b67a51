//! `sys/mounts`: list, enable, read, tune and disable secrets engine mounts.

use super::ttl_text;
use crate::core::Core;
use crate::core::mounts::{MountRecord, normalize_path};
use crate::error::{Error, Result};
use crate::framework::convert;
use crate::framework::ttl::{system_default_ttl, system_max_ttl};
use crate::framework::{Field, FieldData, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{Delete, Read, Update};
use crate::logical::{Reply, Response};
use crate::node::Node;
use serde_json::{Map, Value, json};

pub fn paths() -> Vec<Path<Node>> {
    let path_field = || Field::new("path", FieldType::Str, "The path of the mount.");
    vec![
        Path::new("mounts")
            .op(Read, handler!(list), "List the mounted secrets engines.")
            .help(
                "List the currently mounted backends.",
                "Every mount with its type, accessor, uuid and configuration.",
            ),
        Path::new("mounts/(?P<path>.+?)/tune")
            .field(path_field())
            .field(ttl_text(
                "default_lease_ttl",
                "The default lease TTL of the mount (a duration, or \"system\").",
            ))
            .field(ttl_text(
                "max_lease_ttl",
                "The maximum lease TTL of the mount (a duration, or \"system\").",
            ))
            .field(Field::new(
                "description",
                FieldType::Str,
                "A human-friendly description of the mount.",
            ))
            .op(Read, handler!(tune_read), "Read the tuning configuration of a mount.")
            .op(Update, handler!(tune_write), "Tune the configuration of a mount.")
            .help(
                "Tune backend configuration parameters for this mount.",
                "TTLs and description of a mount; the mount keeps its data.",
            ),
        // Disabling revokes every lease of the mount first: as long as
        // revoke-prefix takes.
        Path::new("mounts/(?P<path>.+)")
            .runs_to_completion()
            .field(path_field())
            .field(Field::new(
                "type",
                FieldType::Str,
                "The type of the backend (\"database\", \"mongodb\").",
            ))
            .field(Field::new(
                "description",
                FieldType::Str,
                "A human-friendly description of the mount.",
            ))
            .field(Field::new(
                "config",
                FieldType::Map,
                "Configuration of the mount: default_lease_ttl, max_lease_ttl.",
            ))
            .field(Field::new(
                "options",
                FieldType::Map,
                "Options of the mount (unused by Warden's engines).",
            ))
            .field(Field::new("local", FieldType::Bool, "Mark the mount as local (not replicated).").default(false))
            .field(
                Field::new(
                    "seal_wrap",
                    FieldType::Bool,
                    "Seal wrap the mount's data (not supported).",
                )
                .default(false),
            )
            .field(Field::new(
                "plugin_version",
                FieldType::Str,
                "The semantic version of the plugin to use.",
            ))
            .op(Read, handler!(read), "Read the configuration of a mount.")
            .op(
                Update,
                handler!(enable),
                "Enable a new secrets engine at the given path.",
            )
            .op(
                Delete,
                handler!(disable),
                "Disable the mount point given, revoking its leases.",
            )
            .help(
                "Mount a new backend at a new path.",
                "Mount a backend at a new path: a path can only hold one mount, and mounts cannot overlap.",
            ),
    ]
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

/// The request's namespace's mounts (not its children's), by their path
/// in it.
async fn list(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let mut data = Map::new();
    for m in core.mounts() {
        if core.namespaces.owner(m.path()) == r.namespace.path {
            data.insert(r.namespace.relative(m.path()).to_string(), mount_json(&m.record));
        }
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
    Ok(Some(Response {
        top_level: Some(data.clone()),
        ..Response::data(Value::Object(data))
    }))
}

/// The mount path the request names, below its namespace ("db/").
fn mount_path(r: &Req<'_>) -> String {
    normalize_path(&r.fields.str("path"))
}

/// The mount of the request's namespace at the path it names (a child
/// namespace's mounts are reached through the child).
fn own_mount(core: &Core, r: &Req<'_>) -> Option<std::sync::Arc<crate::core::mounts::MountEntry>> {
    let full = r.namespace.full(&mount_path(r));
    core.mount_for(&full)
        .filter(|m| m.path() == full && core.namespaces.owner(&full) == r.namespace.path)
}

async fn read(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    // Vault: a mount that is not there is a 400 with its path.
    let m = own_mount(&core, r).ok_or_else(|| Error::bad(format!("No secret engine mount at {}", mount_path(r))))?;
    Ok(Some(Response::data(mount_json(&m.record))))
}

async fn disable(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    match own_mount(&core, r) {
        Some(m) => core.disable_mount(m.path()).await.map(|_| None),
        None => Ok(None),
    }
}

/// A TTL of sys/mounts: a duration, or "system" (the system default,
/// stored as 0).
pub(super) fn ttl_field(data: &Map<String, Value>, field: &str) -> Result<Option<i64>> {
    if data.get(field).and_then(Value::as_str) == Some("system") {
        return Ok(Some(0));
    }
    convert::duration(data, field)
}

/// The same for a declared field of the request.
pub(super) fn ttl_given(f: &FieldData, field: &str) -> Result<Option<i64>> {
    match f.opt_str(field) {
        None => Ok(None),
        Some(text) => ttl_field(&Map::from_iter([(field.to_string(), Value::String(text))]), field),
    }
}

async fn enable(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let f = &r.fields;
    let kind = f.str("type");
    if kind.is_empty() {
        return Err(Error::bad("backend type must be specified"));
    }
    let config = f.opt_map("config").unwrap_or_default();
    let default_lease_ttl = ttl_field(&config, "default_lease_ttl")?.unwrap_or(0);
    let max_lease_ttl = ttl_field(&config, "max_lease_ttl")?.unwrap_or(0);
    check_ttls(default_lease_ttl, max_lease_ttl)?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let record = MountRecord {
        path: r.namespace.full(&mount_path(r)),
        accessor: format!("{kind}_{}", &uuid[..8]),
        kind,
        description: f.str("description"),
        uuid,
        default_lease_ttl,
        max_lease_ttl,
    };
    core.enable_mount(r.namespace, record).await?;
    Ok(None)
}

pub(super) fn check_ttls(default: i64, max: i64) -> Result<()> {
    if default < 0 || max < 0 {
        return Err(Error::bad("lease TTLs cannot be negative"));
    }
    let effective_max = if max > 0 { max } else { system_max_ttl() };
    if default > effective_max {
        return Err(Error::bad("default lease TTL cannot be greater than max lease TTL"));
    }
    Ok(())
}

fn tuned(core: &Core, r: &Req<'_>) -> Result<std::sync::Arc<crate::core::mounts::MountEntry>> {
    own_mount(core, r).ok_or_else(|| {
        Error::bad(format!(
            "cannot fetch mount configuration for {:?}: no mount at this path",
            mount_path(r)
        ))
    })
}

async fn tune_read(node: &Node, r: &Req<'_>) -> Reply {
    // As Vault: `auth/<path>` names an auth method (`bao auth tune`).
    if let Some(auth) = mount_path(r).strip_prefix("auth/") {
        return super::auth::tune_read_at(node, r.namespace, auth);
    }
    let core = node.core()?;
    let m = tuned(&core, r)?;
    let or_system = |v: i64, system: i64| if v > 0 { v } else { system };
    let data = json!({
        "default_lease_ttl": or_system(m.record.default_lease_ttl, system_default_ttl()),
        "max_lease_ttl": or_system(m.record.max_lease_ttl, system_max_ttl()),
        "description": m.record.description,
        "force_no_cache": false,
    });
    Ok(Some(Response {
        top_level: data.as_object().cloned(),
        ..Response::data(data)
    }))
}

async fn tune_write(node: &Node, r: &Req<'_>) -> Reply {
    if let Some(auth) = mount_path(r).strip_prefix("auth/") {
        return super::auth::tune_write_at(node, auth, r).await;
    }
    let core = node.core()?;
    let m = tuned(&core, r)?;
    let mut record = m.record.clone();
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
    core.update_mount(record).await?;
    Ok(None)
}
