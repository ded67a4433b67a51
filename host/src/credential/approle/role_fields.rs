//! Vault's per-field role paths (`role/:name/policies`,
//! `role/:name/secret-id-ttl` ...): each reads, sets or resets one setting
//! of an existing role (404 for a role that does not exist, as Vault's
//! `ErrUnsupportedPath`). Setting goes through the role's own write, with
//! every check it makes; resetting puts the setting back to its default.

use super::role::{self, Role};
use super::{AppRole, role_path};
use crate::error::{Error, Result};
use crate::framework::{Path, Req};
use crate::handler;
use crate::logical::Operation::{Delete, Read, Update};
use crate::logical::{Reply, Response};
use serde_json::{Map, Value};

/// The segment after the role's name, and the fields it takes (the first
/// is the one a request must give).
pub const FIELD_PATHS: &[(&str, &[&str])] = &[
    ("policies", &["token_policies", "policies"]),
    ("local-secret-ids", &["local_secret_ids"]),
    ("bound-cidr-list", &["bound_cidr_list"]),
    ("secret-id-bound-cidrs", &["secret_id_bound_cidrs"]),
    ("token-bound-cidrs", &["token_bound_cidrs"]),
    ("bind-secret-id", &["bind_secret_id"]),
    ("secret-id-num-uses", &["secret_id_num_uses"]),
    ("secret-id-ttl", &["secret_id_ttl"]),
    ("period", &["token_period", "period"]),
    ("token-num-uses", &["token_num_uses"]),
    ("token-ttl", &["token_ttl"]),
    ("token-max-ttl", &["token_max_ttl"]),
];

/// The paths, declared with only their own fields (taken from the role's).
pub fn paths() -> Vec<Path<AppRole>> {
    FIELD_PATHS
        .iter()
        .map(|(segment, fields)| {
            let mut p = role::fields(Path::new(role_path(&format!("/{segment}"))));
            p.fields.retain(|f| f.name == "role_name" || fields.contains(&f.name));
            let p = p.op(Read, handler!(read), "Read one setting of the role.");
            // local_secret_ids is fixed when the role is made.
            let p = match *segment {
                "local-secret-ids" => p,
                _ => p.op(Update, handler!(write), "Update one setting of the role.").op(
                    Delete,
                    handler!(reset),
                    "Reset one setting of the role to its default.",
                ),
            };
            p.help(
                "Read, update or reset one setting of the role.",
                "The same setting as the role's own field of that name; a role that does not exist is 404.",
            )
        })
        .collect()
}

/// The segment a request addressed, and its fields.
fn segment_of(r: &Req<'_>) -> Result<(&'static str, &'static [&'static str])> {
    let last = r.path.rsplit('/').next().unwrap_or_default();
    FIELD_PATHS
        .iter()
        .find(|(s, _)| *s == last)
        .copied()
        .ok_or(Error::UnsupportedPath)
}

async fn existing(r: &Req<'_>) -> Result<Option<(String, Role)>> {
    let name = r.fields.str("role_name").to_lowercase();
    Ok(role::load(&r.mount()?.storage, &name).await?.map(|role| (name, role)))
}

async fn read(_: &AppRole, r: &Req<'_>) -> Reply {
    let (_, fields) = segment_of(r)?;
    let Some((_, role)) = existing(r).await? else {
        return Ok(None);
    };
    let all = role::data(&role);
    let mut data = Map::new();
    for field in fields {
        // The deprecated names show what their successors hold.
        let value = match *field {
            "bound_cidr_list" => all["secret_id_bound_cidrs"].clone(),
            "policies" if all.get("policies").is_none() => all["token_policies"].clone(),
            "period" if all.get("period").is_none() => all["token_period"].clone(),
            name => all.get(name).cloned().unwrap_or(Value::Null),
        };
        data.insert((*field).to_string(), value);
    }
    Ok(Some(Response::data(Value::Object(data))))
}

async fn write(b: &AppRole, r: &Req<'_>) -> Reply {
    let (_, fields) = segment_of(r)?;
    if existing(r).await?.is_none() {
        return Err(Error::UnsupportedPath);
    }
    if !fields.iter().any(|f| r.fields.given(f).is_some()) {
        return Err(Error::bad(format!("missing {}", fields[0])));
    }
    role::write(b, r).await
}

async fn reset(b: &AppRole, r: &Req<'_>) -> Reply {
    let (segment, _) = segment_of(r)?;
    let view = &r.mount()?.storage;
    let _roles = b.roles.lock().await;
    let Some((name, mut role)) = existing(r).await? else {
        return Err(Error::UnsupportedPath);
    };
    match segment {
        "policies" => {
            role.policies.clear();
            role.token_policies.clear();
        }
        "bound-cidr-list" | "secret-id-bound-cidrs" => role.secret_id_bound_cidrs.clear(),
        "token-bound-cidrs" => role.token_bound_cidrs.clear(),
        "bind-secret-id" => role.bind_secret_id = true,
        "secret-id-num-uses" => role.secret_id_num_uses = 0,
        "secret-id-ttl" => role.secret_id_ttl = 0,
        "period" => {
            role.period = 0;
            role.token_period = 0;
        }
        "token-num-uses" => role.token_num_uses = 0,
        "token-ttl" => role.token_ttl = 0,
        "token-max-ttl" => role.token_max_ttl = 0,
        _ => return Err(Error::UnsupportedOperation),
    }
    // Clearing the CIDRs of a role that binds no secret ID would leave it
    // open to anyone with its role ID (the role's own check).
    if !role.has_constraint() {
        return Err(Error::bad("at least one constraint should be enabled on the role"));
    }
    role::save(b, view, &name, &role, None).await?;
    Ok(None)
}
