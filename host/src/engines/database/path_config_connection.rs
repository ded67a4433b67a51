//! `config/:name`: database connection configurations (write, read without
//! secrets, LIST, delete). Writing one runs the driver's `initialize`, which
//! connects when `verify_connection` is true; a failure stores nothing.

use super::{DatabaseEngine, plugin_error};
use crate::core::fields;
use crate::core::mounts::MountEntry;
use crate::error::{Error, Result};
use crate::logical::{Operation, Reply, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Fields of the config endpoint itself; everything else in the body is
/// the driver's connection details.
const OWN_FIELDS: &[&str] = &[
    "name",
    "plugin_name",
    "plugin_version",
    "verify_connection",
    "allowed_roles",
    "root_rotation_statements",
    "password_policy",
];

/// Connection details never shown on read.
const SECRET_DETAILS: &[&str] = &["password", "private_key", "tls_certificate_key", "client_key"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbConfig {
    pub plugin_name: String,
    #[serde(default)]
    pub plugin_version: String,
    pub connection_details: Map<String, Value>,
    #[serde(default)]
    pub allowed_roles: Vec<String>,
    #[serde(default)]
    pub root_credentials_rotate_statements: Vec<String>,
    #[serde(default)]
    pub password_policy: String,
    #[serde(default = "yes")]
    pub verify_connection: bool,
}

fn yes() -> bool {
    true
}

impl DbConfig {
    /// The driver's view of the configuration (a JSON object): the
    /// connection details, plus `plugin_name`, so one component registered
    /// under several names (mysql, mysql-legacy, ...) knows which it serves.
    pub fn details_json(&self) -> String {
        let mut details = self.connection_details.clone();
        details.insert("plugin_name".into(), self.plugin_name.clone().into());
        Value::Object(details).to_string()
    }

    /// Vault's allowed_roles: names, or globs with '*'.
    pub fn allows(&self, role: &str) -> bool {
        self.allowed_roles.iter().any(|pattern| glob_match(pattern, role))
    }
}

fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            name.starts_with(prefix)
                && (0..=name.len() - prefix.len())
                    .any(|i| name.is_char_boundary(prefix.len() + i) && glob_match(rest, &name[prefix.len() + i..]))
        }
    }
}

fn key(name: &str) -> String {
    format!("config/{name}")
}

pub async fn load(mount: &MountEntry, name: &str) -> Result<Option<DbConfig>> {
    Ok(mount.storage.get_json(&key(name)).await?)
}

pub async fn store(mount: &MountEntry, name: &str, config: &DbConfig) -> Result<()> {
    Ok(mount.storage.put_json(&key(name), config).await?)
}

pub async fn list(mount: &MountEntry) -> Reply {
    let keys = mount.storage.list("config/").await?;
    if keys.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

pub async fn handle(engine: &DatabaseEngine, mount: &MountEntry, name: &str, req: &Request) -> Reply {
    if !fields::valid_name(name) {
        return Err(Error::UnsupportedPath);
    }
    match req.operation {
        Operation::Read => {
            let Some(config) = load(mount, name).await? else {
                return Ok(None);
            };
            let mut details = config.connection_details.clone();
            for secret in SECRET_DETAILS {
                details.remove(*secret);
            }
            Ok(Some(Response::data(json!({
                "allowed_roles": config.allowed_roles,
                "connection_details": details,
                "password_policy": config.password_policy,
                "plugin_name": config.plugin_name,
                "plugin_version": config.plugin_version,
                "root_credentials_rotate_statements": config.root_credentials_rotate_statements,
                "verify_connection": config.verify_connection,
            }))))
        }
        Operation::Update => write(engine, mount, name, req).await,
        Operation::Delete => {
            mount.storage.delete(&key(name)).await?;
            engine.release(mount, name);
            Ok(None)
        }
        Operation::List => Err(Error::UnsupportedOperation),
    }
}

async fn write(engine: &DatabaseEngine, mount: &MountEntry, name: &str, req: &Request) -> Reply {
    let existing = load(mount, name).await?;
    let d = &req.data;
    let plugin_name = fields::string(d, "plugin_name")?
        .filter(|s| !s.is_empty())
        .or_else(|| existing.as_ref().map(|c| c.plugin_name.clone()))
        .ok_or_else(|| Error::bad("empty plugin name"))?;
    let verify_connection = fields::boolean(d, "verify_connection")?.unwrap_or(true);
    // On update, details not given keep their stored values (as Vault does).
    let mut details = existing
        .as_ref()
        .map(|c| c.connection_details.clone())
        .unwrap_or_default();
    for (k, v) in d {
        if !OWN_FIELDS.contains(&k.as_str()) {
            details.insert(k.clone(), v.clone());
        }
    }
    let config = DbConfig {
        plugin_version: fields::string(d, "plugin_version")?
            .or_else(|| existing.as_ref().map(|c| c.plugin_version.clone()))
            .unwrap_or_default(),
        allowed_roles: fields::comma_list(d, "allowed_roles")?
            .or_else(|| existing.as_ref().map(|c| c.allowed_roles.clone()))
            .unwrap_or_default(),
        root_credentials_rotate_statements: fields::string_list(d, "root_rotation_statements")?
            .or_else(|| existing.as_ref().map(|c| c.root_credentials_rotate_statements.clone()))
            .unwrap_or_default(),
        password_policy: fields::string(d, "password_policy")?
            .or_else(|| existing.as_ref().map(|c| c.password_policy.clone()))
            .unwrap_or_default(),
        plugin_name,
        connection_details: details,
        verify_connection,
    };
    let created = |e: Error| Error::bad(format!("error creating database object: {e}"));
    let mut driver = engine.driver(mount, name, &config).await.map_err(created)?;
    driver
        .initialize(&config.details_json(), verify_connection)
        .await
        .map_err(|e| created(plugin_error(e)))?;
    // The pools of the old settings must not serve the new ones.
    engine.release(mount, name);
    mount.storage.put_json(&key(name), &config).await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn allowed_roles_match_names_and_globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("app", "app"));
        assert!(!glob_match("app", "app2"));
        assert!(glob_match("app-*", "app-read"));
        assert!(glob_match("*-ro", "db-ro"));
        assert!(!glob_match("app-*", "ap"));
    }
}
