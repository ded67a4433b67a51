//! `config/:name`: database connection configurations (write, read without
//! secrets, LIST, delete). Writing one runs the driver's `initialize`, which
//! connects when `verify_connection` is true; a failure stores nothing.

use super::path_cluster_database::ClusterLink;
use super::{DatabaseEngine, plugin_error};
use crate::error::{Error, Result};
use crate::framework::Req;
use crate::logical::Mount;
use crate::logical::{Reply, Response};
use crate::storage::layout;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

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
    /// Set on a tenant database's connection, which the cluster registry
    /// owns (its login and address come from the cluster's record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterLink>,
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

/// A connection URL with a password written into it literally, with the
/// password shown as `***` (`postgresql://u:***@host/db`; a Go MySQL DSN
/// `u:***@tcp(host)/db` likewise). The `{{password}}` placeholder is no
/// secret and stays. Reads must never return a password, wherever it was put.
fn mask_url_password(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // Where the user information ends: a URL's authority ends at its path,
    // query or fragment; a DSN's at its last '/' (as Go's MySQL driver reads it).
    let authority_end = if scheme.is_empty() {
        rest.rfind('/').unwrap_or(rest.len())
    } else {
        rest.find(['/', '?', '#']).unwrap_or(rest.len())
    };
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let Some(colon) = rest[..at].find(':') else {
        return url.to_string();
    };
    let password = &rest[colon + 1..at];
    if password.is_empty() || password == "{{password}}" {
        return url.to_string();
    }
    format!("{scheme}{}***{}", &rest[..=colon], &rest[at..])
}

/// Login names the database cannot take are refused when the connection is
/// written, even unverified, rather than failing (or worse) at first use.
fn check_login_names(details: &Map<String, Value>) -> Result<()> {
    let url = details.get("connection_url").and_then(Value::as_str).unwrap_or("");
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(());
    }
    let mut names: Vec<String> = Vec::new();
    if let Some(Value::String(u)) = details.get("username") {
        names.push(u.clone());
    }
    if let Ok(parsed) = url::Url::parse(url) {
        let user = percent_encoding::percent_decode_str(parsed.username()).decode_utf8_lossy();
        if !user.is_empty() && user != "{{username}}" && !user.contains("%7B%7B") {
            names.push(user.into_owned());
        }
    }
    for name in names {
        crate::imports::sql::check_pg_username(&name).map_err(|e| Error::bad(format!("username: {e}")))?;
    }
    Ok(())
}

/// A tenant database's connection is the cluster registry's: writing,
/// deleting or rotating it here would take it out of the registry's hands.
pub fn refuse_cluster_owned(name: &str, config: Option<&DbConfig>) -> Result<()> {
    match config.and_then(|c| c.cluster.as_ref()) {
        Some(link) => Err(Error::bad(format!(
            "connection {name:?} belongs to database {:?} of cluster {:?}: manage it with cluster/{}/database/{}",
            link.database, link.cluster, link.cluster, link.database
        ))),
        None => Ok(()),
    }
}

fn key(name: &str) -> String {
    format!("{}{name}", layout::database::CONFIG)
}

pub async fn load(mount: &Mount, name: &str) -> Result<Option<DbConfig>> {
    Ok(mount.storage.get_json(&key(name)).await?)
}

pub async fn store(mount: &Mount, name: &str, config: &DbConfig) -> Result<()> {
    Ok(mount.storage.put_json(&key(name), config).await?)
}

pub async fn list(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let keys = r.mount()?.storage.list(layout::database::CONFIG).await?;
    if keys.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

pub async fn exists(_: &DatabaseEngine, r: &Req<'_>) -> Result<bool> {
    Ok(load(r.mount()?, &r.fields.str("name")).await?.is_some())
}

pub async fn read(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let Some(config) = load(r.mount()?, &r.fields.str("name")).await? else {
        return Ok(None);
    };
    let mut details = config.connection_details.clone();
    for secret in SECRET_DETAILS {
        details.remove(*secret);
    }
    if let Some(Value::String(url)) = details.get_mut("connection_url") {
        *url = mask_url_password(url);
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

pub async fn delete(engine: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let mount = r.mount()?;
    let name = r.fields.str("name");
    refuse_cluster_owned(&name, load(mount, &name).await?.as_ref())?;
    mount.storage.delete(&key(&name)).await?;
    engine.release(mount, &name);
    Ok(None)
}

/// Write a connection: fields not given keep their stored values, and
/// every field the endpoint does not declare is a connection detail for
/// the driver (Vault passes the raw request data on likewise).
pub async fn write(engine: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let mount = r.mount()?;
    let name = r.fields.str("name");
    let existing = load(mount, &name).await?;
    refuse_cluster_owned(&name, existing.as_ref())?;
    let d = &r.fields;
    let plugin_name = d
        .opt_str("plugin_name")
        .filter(|s| !s.is_empty())
        .or_else(|| existing.as_ref().map(|c| c.plugin_name.clone()))
        .ok_or_else(|| Error::bad("empty plugin name"))?;
    let verify_connection = d.bool("verify_connection");
    let mut details = existing
        .as_ref()
        .map(|c| c.connection_details.clone())
        .unwrap_or_default();
    for (k, v) in d.unknown() {
        details.insert(k.clone(), v.clone());
    }
    // The versions to choose from are those of the plugin the mount's
    // namespace means by the name.
    let qualified = engine.runtime.qualify(mount.system.namespace_path(), &plugin_name);
    let config = DbConfig {
        // As Vault: a connection that names no version gets the one
        // selected now (the unversioned registered plugin, else the highest
        // registered version, else the built-in) and keeps it.
        plugin_version: match d.opt_str("plugin_version") {
            Some(v) if !v.is_empty() => v,
            Some(_) => engine.runtime.select_version(&qualified),
            None => existing
                .as_ref()
                .filter(|c| c.plugin_name == plugin_name)
                .map(|c| c.plugin_version.clone())
                .unwrap_or_else(|| engine.runtime.select_version(&qualified)),
        },
        allowed_roles: d
            .opt_list("allowed_roles")
            .or_else(|| existing.as_ref().map(|c| c.allowed_roles.clone()))
            .unwrap_or_default(),
        root_credentials_rotate_statements: d
            .opt_list("root_rotation_statements")
            .or_else(|| existing.as_ref().map(|c| c.root_credentials_rotate_statements.clone()))
            .unwrap_or_default(),
        password_policy: d
            .opt_str("password_policy")
            .or_else(|| existing.as_ref().map(|c| c.password_policy.clone()))
            .unwrap_or_default(),
        plugin_name,
        connection_details: details,
        verify_connection,
        cluster: None,
    };
    check_login_names(&config.connection_details)?;
    let created = |e: Error| Error::bad(format!("error creating database object: {e}"));
    let mut driver = engine.driver(mount, &name, &config).await.map_err(created)?;
    driver
        .initialize(&config.details_json(), verify_connection)
        .await
        .map_err(|e| created(plugin_error(e)))?;
    engine.release(mount, &name);
    mount.storage.put_json(&key(&name), &config).await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::{check_login_names, glob_match, mask_url_password};
    use serde_json::json;

    #[test]
    fn a_password_written_into_the_url_is_masked() {
        for (url, shown) in [
            ("postgresql://u:secret@host/db", "postgresql://u:***@host/db"),
            (
                "postgres://u:p%40ss@h:5432/db?sslmode=disable",
                "postgres://u:***@h:5432/db?sslmode=disable",
            ),
            (
                "postgresql://{{username}}:{{password}}@h/db",
                "postgresql://{{username}}:{{password}}@h/db",
            ),
            ("postgresql://u@h/db", "postgresql://u@h/db"),
            ("postgresql://h/db?user=a@b", "postgresql://h/db?user=a@b"),
            ("u:pw@tcp(127.0.0.1:3306)/db", "u:***@tcp(127.0.0.1:3306)/db"),
            (
                "{{username}}:{{password}}@tcp(h:3306)/",
                "{{username}}:{{password}}@tcp(h:3306)/",
            ),
            (
                "mongodb://admin:s3cr3t@h:27017/admin",
                "mongodb://admin:***@h:27017/admin",
            ),
            ("", ""),
            ("@:", "@:"),
        ] {
            assert_eq!(mask_url_password(url), shown, "{url}");
        }
    }

    #[test]
    fn login_names_scram_cannot_carry_are_refused() {
        let ok = json!({"connection_url": "postgresql://{{username}}:{{password}}@h/db", "username": "app"});
        assert!(check_login_names(ok.as_object().unwrap()).is_ok());
        let bad = json!({"connection_url": "postgresql://{{username}}:{{password}}@h/db", "username": "app\u{1F511}"});
        assert!(check_login_names(bad.as_object().unwrap()).is_err());
        let in_url = json!({"connection_url": "postgresql://app%F0%9F%94%91:pw@h/db"});
        assert!(check_login_names(in_url.as_object().unwrap()).is_err());
        // Not PostgreSQL: not its rule.
        let my = json!({"connection_url": "{{username}}:{{password}}@tcp(h:3306)/", "username": "app\u{1F511}"});
        assert!(check_login_names(my.as_object().unwrap()).is_ok());
    }

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
