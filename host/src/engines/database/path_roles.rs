//! `roles/:name`: dynamic roles — which connection, the statements that
//! create, revoke, roll back and renew a user, and the TTLs of its leases.

use super::DatabaseEngine;
use crate::error::{Error, Result};
use crate::framework::{FieldData, Req};
use crate::logical::Mount;
use crate::logical::{Reply, Response};
use crate::storage::layout;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Role {
    pub db_name: String,
    #[serde(default)]
    pub creation_statements: Vec<String>,
    #[serde(default)]
    pub revocation_statements: Vec<String>,
    #[serde(default)]
    pub rollback_statements: Vec<String>,
    #[serde(default)]
    pub renew_statements: Vec<String>,
    #[serde(default)]
    pub default_ttl: i64,
    #[serde(default)]
    pub max_ttl: i64,
    #[serde(default = "password")]
    pub credential_type: String,
    /// Settings of the credential type, normalised with Vault's defaults
    /// (see [`super::credentials`]); shown on read only when not empty.
    #[serde(default)]
    pub credential_config: Map<String, Value>,
}

fn password() -> String {
    "password".into()
}

fn key(name: &str) -> String {
    format!("{}{name}", layout::engine::ROLE)
}

pub async fn load(mount: &Mount, name: &str) -> Result<Option<Role>> {
    Ok(mount.storage.get_json(&key(name)).await?)
}

pub async fn list(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let keys = r.mount()?.storage.list(layout::engine::ROLE).await?;
    if keys.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

pub async fn exists(_: &DatabaseEngine, r: &Req<'_>) -> Result<bool> {
    Ok(load(r.mount()?, &r.fields.str("name")).await?.is_some())
}

pub async fn read(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    Ok(load(r.mount()?, &r.fields.str("name")).await?.map(|r| {
        let mut data = json!({
            "db_name": r.db_name,
            "creation_statements": r.creation_statements,
            "revocation_statements": r.revocation_statements,
            "rollback_statements": r.rollback_statements,
            "renew_statements": r.renew_statements,
            "default_ttl": r.default_ttl,
            "max_ttl": r.max_ttl,
            "credential_type": r.credential_type,
        });
        if !r.credential_config.is_empty() {
            data["credential_config"] = Value::Object(super::credentials::shown(&r.credential_config));
        }
        Response::data(data)
    }))
}

pub async fn write(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let mount = r.mount()?;
    let name = r.fields.str("name");
    if super::path_static_roles::load(mount, &name).await?.is_some() {
        return Err(Error::bad("Role and Static Role names must be unique"));
    }
    let role = parse(load(mount, &name).await?, &r.fields)?;
    // A connection that exists must be able to use the credential type;
    // one written later is checked when credentials are made.
    if let Some(config) = super::path_config_connection::load(mount, &role.db_name).await? {
        super::credentials::check_supported(&config, &role.db_name, &role.credential_type)?;
        if let Some(link) = &config.cluster {
            refuse_statements(&role, &link.cluster, &link.database)?;
        }
    }
    mount.storage.put_json(&key(&name), &role).await?;
    Ok(None)
}

/// A tenant database's logins get its owner role's rights and nothing
/// else: a role on it names no statements of its own.
fn refuse_statements(role: &Role, cluster: &str, database: &str) -> Result<()> {
    let given: Vec<&str> = [
        ("creation_statements", &role.creation_statements),
        ("revocation_statements", &role.revocation_statements),
        ("rollback_statements", &role.rollback_statements),
        ("renew_statements", &role.renew_statements),
    ]
    .into_iter()
    .filter(|(_, v)| v.iter().any(|s| !s.trim().is_empty()))
    .map(|(k, _)| k)
    .collect();
    if given.is_empty() {
        return Ok(());
    }
    Err(Error::bad(format!(
        "a role on database {database:?} of cluster {cluster:?} takes no statements (its logins get the owner role's rights); given: {}",
        given.join(", ")
    )))
}

pub async fn delete(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    r.mount()?.storage.delete(&key(&r.fields.str("name"))).await?;
    Ok(None)
}

/// Build the role from the request, over the stored one on update (fields
/// not given keep their values, as in Vault). Unknown fields are ignored.
fn parse(existing: Option<Role>, d: &FieldData) -> Result<Role> {
    let mut role = existing.unwrap_or_default();
    if let Some(db) = d.opt_str("db_name") {
        role.db_name = db;
    }
    if role.db_name.is_empty() {
        return Err(Error::bad("database name is required"));
    }
    if let Some(v) = d.opt_list("creation_statements") {
        role.creation_statements = v;
    }
    if let Some(v) = d.opt_list("revocation_statements") {
        role.revocation_statements = v;
    }
    if let Some(v) = d.opt_list("rollback_statements") {
        role.rollback_statements = v;
    }
    if let Some(v) = d.opt_list("renew_statements") {
        role.renew_statements = v;
    }
    if let Some(v) = d.opt_duration("default_ttl") {
        role.default_ttl = v;
    }
    if let Some(v) = d.opt_duration("max_ttl") {
        role.max_ttl = v;
    }
    if role.default_ttl < 0 || role.max_ttl < 0 {
        return Err(Error::bad("TTLs cannot be negative"));
    }
    if let Some(t) = d.opt_str("credential_type") {
        role.credential_type = t;
    }
    if role.credential_type.is_empty() {
        role.credential_type = password();
    }
    let given = d.opt_map("credential_config");
    // On update without a new config the stored one is checked again
    // against the (maybe changed) credential type.
    let raw = given.unwrap_or_else(|| role.credential_config.clone());
    role.credential_config = super::credentials::normalise(&role.credential_type, &raw)?;
    Ok(role)
}
