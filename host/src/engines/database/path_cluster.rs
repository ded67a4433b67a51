//! `cluster` and `cluster/:cluster`: the cluster registry (issue 15). A
//! cluster is a shared PostgreSQL or MySQL server whose admin login Warden
//! takes over: registering it checks the login, creates a management role
//! (able to create databases and roles) and rotates the login's password,
//! so both passwords are Warden's alone. Deleting only disables the
//! cluster; writing it again enables it, without rotating again.
//!
//! Crash safety: a write-ahead record with the old and new passwords is
//! stored before the first change in the database server and removed after
//! the cluster's record is stored; `recover` (on failure, and at start-up)
//! rolls an interrupted registration back (the old password still logs in:
//! the management role is dropped) or forward (only the new one does: the
//! record is stored), so the only working password is never lost.

use super::path_config_connection::DbConfig;
use super::{DatabaseEngine, path_cluster_database, path_creds_create, plugin_error, scheduler};
use crate::bindings::db;
use crate::error::{Error, Result};
use crate::framework::Req;
use crate::logical::{Mount, Reply, Response};
use crate::runtime::catalog::{MYSQL_PLUGINS, POSTGRES_PLUGIN};
use crate::storage::layout;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A registered cluster, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    pub plugin_name: String,
    #[serde(default)]
    pub plugin_version: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: String,
    pub management_role: String,
    pub management_password: String,
    #[serde(default)]
    pub ssl_mode: String,
    pub max_open_connections: i64,
    pub max_idle_connections: i64,
    /// Seconds.
    pub max_connection_lifetime: i64,
    #[serde(default)]
    pub disabled: bool,
}

/// An interrupted registration: the cluster as it is to be stored (new
/// password, management role) and the password the login had before.
#[derive(Serialize, Deserialize)]
struct RegistrationWal {
    cluster: Cluster,
    old_password: String,
}

impl Cluster {
    pub(super) fn postgres(&self) -> bool {
        self.plugin_name == POSTGRES_PLUGIN
    }

    /// The connection configuration of the cluster's admin login with
    /// `password`, as the engine's connections are configured.
    fn connection(&self, password: &str) -> DbConfig {
        DbConfig {
            plugin_name: self.plugin_name.clone(),
            plugin_version: self.plugin_version.clone(),
            connection_details: self.details(&self.username, password, &self.database),
            allowed_roles: Vec::new(),
            root_credentials_rotate_statements: Vec::new(),
            password_policy: String::new(),
            verify_connection: true,
            cluster: None,
        }
    }

    /// The management role's connection to the cluster's own database
    /// (where databases and roles are created).
    pub(super) fn management_connection(&self) -> DbConfig {
        let mut config = self.connection(&self.management_password);
        config.connection_details = self.details(&self.management_role, &self.management_password, &self.database);
        config
    }

    /// Connection details for `username` with `password` to `database` in
    /// the cluster: a URL template without the password in it.
    pub(super) fn details(&self, username: &str, password: &str, database: &str) -> Map<String, Value> {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let database = percent_encoding::utf8_percent_encode(database, DATABASE_IN_URL);
        let connection_url = if self.postgres() {
            let ssl = match self.ssl_mode.as_str() {
                "" => String::new(),
                mode => format!("?sslmode={mode}"),
            };
            format!(
                "postgresql://{{{{username}}}}:{{{{password}}}}@{host}:{}/{database}{ssl}",
                self.port
            )
        } else {
            format!("{{{{username}}}}:{{{{password}}}}@tcp({host}:{})/{database}", self.port)
        };
        let mut details = Map::new();
        details.insert("connection_url".into(), connection_url.into());
        details.insert("username".into(), username.into());
        details.insert("password".into(), password.into());
        details.insert("max_open_connections".into(), self.max_open_connections.into());
        details.insert("max_idle_connections".into(), self.max_idle_connections.into());
        details.insert(
            "max_connection_lifetime".into(),
            format!("{}s", self.max_connection_lifetime).into(),
        );
        details
    }

    /// The statements that create the management role of cluster `name`:
    /// a login that can create databases and roles, and nothing more. On
    /// PostgreSQL its comment says whose it is, for whoever lists the roles.
    fn management_statements(&self, name: &str) -> Vec<String> {
        if self.postgres() {
            vec![
                r#"CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' CREATEDB CREATEROLE;"#.into(),
                // The cluster's name is [\w.-] only: nothing to escape.
                format!(r#"COMMENT ON ROLE "{{{{name}}}}" IS '{}';"#, management_comment(name)),
            ]
        } else {
            vec![
                "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';".into(),
                "GRANT CREATE, CREATE USER, DROP, ALTER, INDEX, SELECT, INSERT, UPDATE, DELETE, REFERENCES, \
                 CREATE VIEW, SHOW VIEW, TRIGGER, EXECUTE, CREATE ROUTINE, ALTER ROUTINE, LOCK TABLES, \
                 CREATE TEMPORARY TABLES, EVENT ON *.* TO '{{name}}'@'%' WITH GRANT OPTION;"
                    .into(),
            ]
        }
    }

    /// The statement that drops the management role, whether or not it was
    /// created (rolling back a registration).
    fn drop_management_statements(&self) -> Vec<String> {
        if self.postgres() {
            vec![r#"DROP ROLE IF EXISTS "{{name}}";"#.into()]
        } else {
            vec!["DROP USER IF EXISTS '{{name}}'@'%';".into()]
        }
    }

    /// The settings a write answers with (no passwords).
    fn settings(&self, name: &str) -> Value {
        json!({
            "cluster": name,
            "plugin_name": self.plugin_name,
            "plugin_version": self.plugin_version,
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "username": self.username,
            "management_role": self.management_role,
            "ssl_mode": self.ssl_mode,
            "max_open_connections": self.max_open_connections,
            "max_idle_connections": self.max_idle_connections,
            "max_connection_lifetime": self.max_connection_lifetime,
            "disabled": self.disabled,
        })
    }
}

/// What is escaped of a database name in a connection URL: all but
/// letters, digits and URLs' unreserved marks.
const DATABASE_IN_URL: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A host name, an IPv4 address or an IPv6 address without brackets; not
/// `host:port`, nothing that would change the connection URL around it.
fn valid_host(host: &str) -> bool {
    if host.contains(':') {
        return host.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// The name the engine's pools and driver instances know the cluster's
/// admin login by: '@' is outside connection names, so no `config/` entry
/// shares it.
pub(super) fn scope_name(cluster: &str) -> String {
    format!("@cluster.{cluster}")
}

fn key(name: &str) -> String {
    format!("{}{name}", layout::database::CLUSTER)
}

fn wal_key(name: &str) -> String {
    format!("{}{name}", layout::database::CLUSTER_WAL)
}

pub async fn load(mount: &Mount, name: &str) -> Result<Option<Cluster>> {
    Ok(mount.storage.get_json(&key(name)).await?)
}

async fn store(mount: &Mount, name: &str, cluster: &Cluster) -> Result<()> {
    Ok(mount.storage.put_json(&key(name), cluster).await?)
}

/// `LIST cluster`: every registered cluster, active or disabled.
pub async fn list(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let keys = r.mount()?.storage.list(layout::database::CLUSTER).await?;
    if keys.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

pub async fn exists(_: &DatabaseEngine, r: &Req<'_>) -> Result<bool> {
    Ok(load(r.mount()?, &r.fields.str("cluster")).await?.is_some())
}

/// `GET cluster/:cluster`: the whole configuration, both passwords
/// included (the path's ACL is what protects it).
pub async fn read(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let name = r.fields.str("cluster");
    let Some(cluster) = load(r.mount()?, &name).await? else {
        return Ok(None);
    };
    let mut data = cluster.settings(&name);
    data["password"] = cluster.password.clone().into();
    data["management_password"] = cluster.management_password.clone().into();
    Ok(Some(Response::data(data)))
}

/// `DELETE cluster/:cluster`: disable it. Nothing changes in the server;
/// the record stays.
pub async fn delete(engine: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let (mount, name) = (r.mount()?, r.fields.str("cluster"));
    if let Some(mut cluster) = load(mount, &name).await?
        && !cluster.disabled
    {
        cluster.disabled = true;
        store(mount, &name, &cluster).await?;
        engine.release(mount, &scope_name(&name));
        path_cluster_database::release_all(engine, mount, &name).await?;
    }
    Ok(None)
}

/// `POST cluster/:cluster`: register a cluster, or update (and enable) a
/// registered one.
pub async fn write(engine: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let (mount, name) = (r.mount()?, r.fields.str("cluster"));
    // One password change at a time in a mount (rotate-root's lock): two
    // writes of one cluster must not both register it.
    let _guard = engine.statics.lock.lock().await;
    // Settle a registration a crash interrupted before looking at the record.
    recover(engine, mount, &name).await?;
    let cluster = match load(mount, &name).await? {
        Some(existing) => update(engine, mount, &name, existing, r).await?,
        None => register(engine, mount, &name, r).await?,
    };
    Ok(Some(Response::data(cluster.settings(&name))))
}

/// The settings of a write, over `base` (the stored cluster, or defaults).
fn settings(r: &Req<'_>, base: Option<&Cluster>) -> Result<Cluster> {
    let d = &r.fields;
    let text = |field: &str, old: Option<&str>| -> String {
        d.opt_str(field)
            .or_else(|| old.map(String::from))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let plugin_name = match d.opt_str("plugin_name").filter(|p| !p.is_empty()) {
        Some(p) => p,
        None => base.map_or_else(|| POSTGRES_PLUGIN.to_string(), |c| c.plugin_name.clone()),
    };
    if plugin_name != POSTGRES_PLUGIN && !MYSQL_PLUGINS.contains(&plugin_name.as_str()) {
        return Err(Error::bad(format!(
            "unsupported plugin_name {plugin_name:?}: a cluster is a PostgreSQL ({POSTGRES_PLUGIN}) or MySQL ({}) server",
            MYSQL_PLUGINS.join(", ")
        )));
    }
    if let Some(old) = base
        && old.plugin_name != plugin_name
    {
        return Err(Error::bad(format!(
            "plugin_name cannot change: the cluster is registered with {:?}",
            old.plugin_name
        )));
    }
    if let (Some(old), Some(user)) = (base, d.opt_str("username"))
        && user.trim() != old.username
    {
        return Err(Error::bad(format!(
            "username cannot change: the cluster is registered with {:?}",
            old.username
        )));
    }
    let default_port = if plugin_name == POSTGRES_PLUGIN { 5432 } else { 3306 };
    let port = match d.opt_int("port") {
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| Error::bad(format!("invalid port {p}: a TCP port is 1 to 65535")))?,
        None => base.map_or(default_port, |c| c.port),
    };
    let count = |field: &str, old: Option<i64>, default: i64| -> Result<i64> {
        let v = d.opt_int(field).or(old).unwrap_or(default);
        if v < 0 {
            return Err(Error::bad(format!("{field} must not be negative")));
        }
        Ok(v)
    };
    let host = text("host", base.map(|c| c.host.as_str()));
    if !valid_host(&host) {
        return Err(Error::bad(format!(
            "invalid host {host:?}: a host name or IP address, without a port (that is the port field)"
        )));
    }
    let ssl_mode = text("ssl_mode", base.map(|c| c.ssl_mode.as_str()));
    let pg_modes = ["", "disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
    if plugin_name == POSTGRES_PLUGIN && !pg_modes.contains(&ssl_mode.as_str()) {
        return Err(Error::bad(format!(
            "invalid ssl_mode {ssl_mode:?}: one of disable, allow, prefer, require, verify-ca, verify-full"
        )));
    }
    if plugin_name != POSTGRES_PLUGIN && !["", "disable"].contains(&ssl_mode.as_str()) {
        return Err(Error::bad(format!(
            "ssl_mode {ssl_mode:?} is not supported for MySQL clusters yet (only \"disable\")"
        )));
    }
    let cluster = Cluster {
        plugin_version: base.map(|c| c.plugin_version.clone()).unwrap_or_default(),
        host,
        port,
        database: text("database", base.map(|c| c.database.as_str())),
        username: base.map_or_else(|| text("username", None), |c| c.username.clone()),
        password: base.map_or_else(|| d.opt_str("password").unwrap_or_default(), |c| c.password.clone()),
        management_role: base.map(|c| c.management_role.clone()).unwrap_or_default(),
        management_password: base.map(|c| c.management_password.clone()).unwrap_or_default(),
        ssl_mode,
        max_open_connections: count("max_open_connections", base.map(|c| c.max_open_connections), 4)?,
        max_idle_connections: count("max_idle_connections", base.map(|c| c.max_idle_connections), 0)?,
        max_connection_lifetime: count("max_connection_lifetime", base.map(|c| c.max_connection_lifetime), 0)?,
        disabled: false,
        plugin_name,
    };
    for (field, value) in [
        ("host", &cluster.host),
        ("database", &cluster.database),
        ("username", &cluster.username),
        ("password", &cluster.password),
    ] {
        if value.is_empty() {
            return Err(Error::bad(format!("{field} is required")));
        }
    }
    Ok(cluster)
}

/// A later write: new settings (checked by logging in with them), enabled
/// again; the passwords stay (a password given again, as a registration
/// script run twice sends it, is ignored: Warden's is the one in force).
async fn update(engine: &DatabaseEngine, mount: &Mount, name: &str, existing: Cluster, r: &Req<'_>) -> Result<Cluster> {
    let cluster = settings(r, Some(&existing))?;
    let scope = scope_name(name);
    let config = cluster.connection(&cluster.password);
    engine.release(mount, &scope);
    verify(engine, mount, &scope, &config).await?;
    store(mount, name, &cluster).await?;
    path_cluster_database::release_all(engine, mount, name).await?;
    Ok(cluster)
}

/// Log in with `config`; a failure is the caller's bad input (400).
async fn verify(engine: &DatabaseEngine, mount: &Mount, scope: &str, config: &DbConfig) -> Result<()> {
    let mut driver = engine.driver(mount, scope, config).await?;
    driver
        .initialize(&config.details_json(), true)
        .await
        .map_err(|e| Error::bad(format!("cannot log in to the cluster: {e}")))?;
    Ok(())
}

/// The first write: log in, record the plan, create the management role,
/// rotate the login's password, store. Any failure before the store
/// leaves the server as it was (or, if the rotation went through after
/// all, finishes the registration).
async fn register(engine: &DatabaseEngine, mount: &Mount, name: &str, r: &Req<'_>) -> Result<Cluster> {
    let mut given = settings(r, None)?;
    given.plugin_version = engine.runtime.select_version(&given.plugin_name);
    let scope = scope_name(name);
    let config = given.connection(&given.password);
    verify(engine, mount, &scope, &config).await?;

    let mut cluster = given.clone();
    cluster.password = path_creds_create::generate_password(engine, mount, "").await?;
    cluster.management_role = management_name();
    cluster.management_password = path_creds_create::generate_password(engine, mount, "").await?;
    let wal = RegistrationWal {
        cluster: cluster.clone(),
        old_password: given.password.clone(),
    };
    mount.storage.put_json(&wal_key(name), &wal).await?;

    let request = db::NewUserRequest {
        username_config: db::UsernameMetadata {
            display_name: String::new(),
            role_name: String::new(),
        },
        username_template: None,
        creation_statements: cluster.management_statements(name),
        rollback_statements: Vec::new(),
        credential: db::Credential::Password(cluster.management_password.clone()),
        // Not used by the statements; a date no database refuses.
        expiration: Utc::now().timestamp().saturating_add(100 * 365 * 86_400),
        username: Some(cluster.management_role.clone()),
    };
    let created = match engine.driver(mount, &scope, &config).await {
        Ok(mut driver) => driver.new_user(&config.details_json(), &request).await.map(drop),
        Err(e) => {
            mount.storage.delete(&wal_key(name)).await?;
            return Err(e);
        }
    };
    if let Err(e) = created {
        // The old password is still in force. Drop what the statements may
        // have created before failing (best effort: a login that could not
        // create the role can usually not drop one either, and PostgreSQL
        // ran them in one transaction), and forget the record.
        if let Ok(mut driver) = engine.driver(mount, &scope, &config).await {
            let dropped = driver
                .delete_user(
                    &config.details_json(),
                    &cluster.management_role,
                    &cluster.drop_management_statements(),
                )
                .await;
            if let Err(undo) = dropped {
                tracing::debug!(cluster = name, error = %undo, "dropping a management role that was not created");
            }
        }
        mount.storage.delete(&wal_key(name)).await?;
        engine.release(mount, &scope);
        return Err(Error::bad(format!(
            "cannot create the management role (the login needs the right to create databases and roles): {e}"
        )));
    }

    crate::fault::point("cluster-role-created");
    let rotated = scheduler::set_password(
        engine,
        mount,
        &scope,
        &config,
        &cluster.username,
        &cluster.password,
        &[],
    )
    .await;
    if let Err(e) = rotated {
        // Usually the old password is still in force and the registration
        // is rolled back; an error after the commit rolls it forward.
        let undo = recover(engine, mount, name).await;
        match (undo, load(mount, name).await?) {
            (Ok(()), Some(stored)) => return Ok(stored),
            (Err(undo), _) => {
                tracing::error!(cluster = name, error = %undo, "a failed registration could not be rolled back; the start-up recovery will try again");
            }
            _ => {}
        }
        return Err(Error::bad(format!(
            "cannot change the login's password: {}",
            e.messages().join("; ")
        )));
    }
    crate::fault::point("cluster-password-rotated");
    store(mount, name, &cluster).await?;
    mount.storage.delete(&wal_key(name)).await?;
    engine.release(mount, &scope);
    Ok(cluster)
}

/// The comment on a PostgreSQL cluster's management role.
fn management_comment(cluster: &str) -> String {
    format!("Warden: the management role of cluster {cluster}")
}

/// A management role's name: Warden's, and unguessable, so no role that
/// exists already can be taken over.
fn management_name() -> String {
    use rand::Rng;
    let suffix: String = rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(12)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect();
    format!("warden_mgmt_{suffix}")
}

/// Settle an interrupted registration of `name`, if there is one: stored
/// already -> forget the record; the old password logs in -> drop the
/// management role (the registration never happened); only the new one
/// does -> store the cluster; neither -> keep the record, an error.
pub(super) async fn recover(engine: &DatabaseEngine, mount: &Mount, name: &str) -> Result<()> {
    let Some(wal) = mount.storage.get_json::<RegistrationWal>(&wal_key(name)).await? else {
        return Ok(());
    };
    let scope = scope_name(name);
    engine.release(mount, &scope);
    let stored = load(mount, name).await?;
    if stored.is_some_and(|s| s.password == wal.cluster.password) {
        mount.storage.delete(&wal_key(name)).await?;
        return Ok(());
    }
    let old = wal.cluster.connection(&wal.old_password);
    if scheduler::logs_in(engine, mount, &scope, &old).await {
        tracing::warn!(cluster = name, "rolling back an interrupted cluster registration");
        let mut driver = engine.driver(mount, &scope, &old).await?;
        driver
            .delete_user(
                &old.details_json(),
                &wal.cluster.management_role,
                &wal.cluster.drop_management_statements(),
            )
            .await
            .map_err(plugin_error)?;
    } else {
        let new = wal.cluster.connection(&wal.cluster.password);
        engine.release(mount, &scope);
        if !scheduler::logs_in(engine, mount, &scope, &new).await {
            return Err(Error::internal(format!(
                "cluster {name:?}: neither the old nor the new password of its login works; the registration record is kept"
            )));
        }
        tracing::warn!(cluster = name, "finishing an interrupted cluster registration");
        store(mount, name, &wal.cluster).await?;
    }
    engine.release(mount, &scope);
    mount.storage.delete(&wal_key(name)).await?;
    Ok(())
}

/// Start-up: settle every registration a crash interrupted.
pub(super) async fn recover_all(engine: &DatabaseEngine, mount: &Mount) -> Result<()> {
    for name in mount.storage.list(layout::database::CLUSTER_WAL).await? {
        let _guard = engine.statics.lock.lock().await;
        if let Err(e) = recover(engine, mount, &name).await {
            tracing::error!(cluster = %name, error = %e, "could not settle an interrupted cluster registration; will try again at the next start");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(plugin: &str, host: &str) -> Cluster {
        Cluster {
            plugin_name: plugin.into(),
            plugin_version: String::new(),
            host: host.into(),
            port: 5432,
            database: "my db".into(),
            username: "admin".into(),
            password: "pw".into(),
            management_role: "warden_mgmt_x".into(),
            management_password: "mpw".into(),
            ssl_mode: "disable".into(),
            max_open_connections: 4,
            max_idle_connections: 0,
            max_connection_lifetime: 60,
            disabled: false,
        }
    }

    #[test]
    fn connection_urls_name_the_cluster_and_carry_no_password() {
        let pg = cluster(POSTGRES_PLUGIN, "db.example").connection("secret");
        let url = pg.connection_details["connection_url"].as_str().unwrap();
        assert_eq!(
            url,
            "postgresql://{{username}}:{{password}}@db.example:5432/my%20db?sslmode=disable"
        );
        assert_eq!(pg.connection_details["password"], "secret");
        let v6 = cluster(POSTGRES_PLUGIN, "::1").connection("secret");
        assert!(
            v6.connection_details["connection_url"]
                .as_str()
                .unwrap()
                .contains("@[::1]:5432/")
        );
        let my = cluster("mysql-database-plugin", "10.0.0.5").connection("secret");
        assert_eq!(
            my.connection_details["connection_url"],
            "{{username}}:{{password}}@tcp(10.0.0.5:5432)/my%20db"
        );
        assert_eq!(my.connection_details["max_connection_lifetime"], "60s");
    }

    #[test]
    fn hosts_are_names_or_addresses() {
        for good in ["db.example", "10.0.0.5", "::1", "fe80::1", "my_host-1", ""] {
            assert!(valid_host(good), "{good}");
        }
        for bad in ["db:5432", "a@b", "a/b", "[::1]", "a b", "x?y", "h#"] {
            assert!(!valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn management_names_are_fresh_and_valid_identifiers() {
        let (a, b) = (management_name(), management_name());
        assert_ne!(a, b);
        assert!(a.starts_with("warden_mgmt_") && a.len() == 24);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }
}
