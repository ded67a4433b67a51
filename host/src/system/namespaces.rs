//! `sys/namespaces`: create (with custom metadata), read, patch, list and
//! delete the namespaces inside the request's namespace, as Vault
//! Enterprise's and OpenBao's API ([`crate::core::namespaces`] keeps them;
//! [`crate::core::tenancy`] empties one that is deleted).

use crate::error::{Error, Result};
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{Delete, List, Patch, Read, Update};
use crate::logical::{Reply, Response};
use crate::node::Node;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub fn paths() -> Vec<Path<Node>> {
    vec![
        Path::new("namespaces/?")
            .op(List, handler!(list), "List the namespaces inside this one.")
            .help(
                "List the child namespaces of the current namespace.",
                "Every namespace directly inside the current one, with its id, path and custom metadata (key_info).",
            ),
        // Deleting revokes every lease of the namespace first: as long as
        // revoke-prefix takes.
        Path::new("namespaces/(?P<path>.+)")
            .runs_to_completion()
            .field(Field::new("path", FieldType::Str, "The name of the namespace (one path segment, below the current namespace)."))
            .field(Field::new(
                "custom_metadata",
                FieldType::Map,
                "Custom metadata of the namespace: string keys and string values.",
            ))
            .op(Read, handler!(read), "Read a namespace.")
            .op(Update, handler!(create), "Create a namespace (or set the custom metadata of the one there).")
            .op(
                Patch,
                handler!(patch),
                "Update a namespace's custom metadata (a JSON merge patch: null removes a key).",
            )
            .op(
                Delete,
                handler!(delete),
                "Delete a namespace with everything in it (its leases are revoked); refused while it has children.",
            )
            .help(
                "Create, read, patch and delete a namespace.",
                "A namespace is a tenant's world of its own: its mounts, policies, tokens, auth methods and leases. Deleting one revokes its leases and removes all of it.",
            ),
    ]
}

/// The namespace's name from the URL: one path segment (a trailing '/'
/// is dropped), checked as Vault does.
fn name(r: &Req<'_>) -> Result<String> {
    let name = r.fields.str("path").trim_end_matches('/').to_string();
    crate::core::namespaces::check_name(&name)?;
    Ok(name)
}

/// The full path of the namespace the request names.
fn full_path(r: &Req<'_>) -> Result<String> {
    Ok(format!("{}{}/", r.namespace.path, name(r)?))
}

/// `custom_metadata` as strings: anything else is Vault's 400.
fn custom_metadata(r: &Req<'_>) -> Result<BTreeMap<String, String>> {
    let Some(given) = r.fields.opt_map("custom_metadata") else {
        return Ok(BTreeMap::new());
    };
    given
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(Error::bad("custom_metadata values must be strings")),
        })
        .collect()
}

/// The namespaces directly inside the request's (404 when none, as Vault).
async fn list(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let children = core.namespaces.children(&r.namespace.path);
    if children.is_empty() {
        return Err(Error::NotFound);
    }
    let mut keys = Vec::new();
    let mut key_info = Map::new();
    for child in children {
        let key = r.namespace.relative(&child.path).to_string();
        key_info.insert(key.clone(), child.to_json());
        keys.push(key);
    }
    Ok(Some(Response::data(json!({ "keys": keys, "key_info": key_info }))))
}

async fn read(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    Ok(core
        .namespaces
        .get_any(&full_path(r)?)
        .map(|record| Response::data(record.to_json())))
}

async fn create(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let name = name(r)?;
    let metadata = custom_metadata(r)?;
    let record = core.create_namespace(r.namespace, &name, metadata).await?;
    Ok(Some(Response::data(record.to_json())))
}

async fn patch(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let path = full_path(r)?;
    let patch = r.fields.opt_map("custom_metadata").unwrap_or_default();
    let record = core.namespaces.patch(&path, &patch).await?;
    Ok(Some(Response::data(record.to_json())))
}

/// Deleting is done when this answers (every lease revoked, everything
/// in the namespace removed), unlike Vault's background deletion.
async fn delete(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    match core.delete_namespace(&full_path(r)?).await? {
        Some(_) => Ok(Some(Response::data(json!({ "status": "deleted" })))),
        None => Ok(Some(
            Response::default().with_warning("requested namespace does not exist"),
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_paths_route() {
        let b = &*super::super::BACKEND;
        for (path, pattern) in [
            ("namespaces", "namespaces/?"),
            ("namespaces/", "namespaces/?"),
            ("namespaces/team-a", "namespaces/(?P<path>.+)"),
        ] {
            let (p, _) = b.route(path).unwrap_or_else(|| panic!("{path} does not route"));
            assert_eq!(p.pattern, pattern, "{path}");
        }
    }
}
