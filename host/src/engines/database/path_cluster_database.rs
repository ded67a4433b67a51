//! `cluster/:cluster/database/:database` and `LIST cluster/:cluster`:
//! tenant databases in a registered cluster (issue 15). Writing one
//! creates, as the cluster's management role, an owner role Warden manages
//! and the database owned by it (when missing), takes the right to connect
//! from everyone else, and creates the connection `config/<cluster>.<db>`
//! through which roles and `creds/` issue logins that have the owner's
//! rights in that database and nothing elsewhere. Deleting disables it;
//! the database and its data stay.
//!
//! No write-ahead record: every step is idempotent (the owner role is
//! created only if missing, and one that exists must carry Warden's
//! comment; the database is created if missing, and one that exists must
//! be the owner's), so a write that failed part-way, or that a crash cut
//! short, is finished by writing it again.

use super::path_cluster::{self, Cluster};
use super::path_config_connection::{self, DbConfig};
use super::{DatabaseEngine, plugin_error};
use crate::error::{Error, Result};
use crate::framework::Req;
use crate::logical::{Mount, Reply, Response};
use crate::runtime::catalog::POSTGRES_PLUGIN;
use crate::storage::layout;
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use warden_driver_common::statements::quote_pg_identifier as pg_ident;

/// What ties a connection to a tenant database of a cluster: stored in the
/// connection's configuration ([`DbConfig::cluster`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterLink {
    pub cluster: String,
    pub database: String,
    pub owner_role: String,
    /// The database was disabled (`DELETE cluster/:cluster/database/:db`).
    #[serde(default)]
    pub disabled: bool,
    /// The cluster is disabled: filled in from the cluster's record each
    /// time the connection is loaded ([`resolve`]), never stored.
    #[serde(skip)]
    pub cluster_disabled: bool,
}

impl ClusterLink {
    /// Why new logins and renewals are refused, if they are (a 400 naming
    /// what is disabled).
    pub fn refusal(&self) -> Option<Error> {
        if self.cluster_disabled {
            Some(Error::bad(format!("cluster {:?} is disabled", self.cluster)))
        } else if self.disabled {
            Some(Error::bad(format!(
                "database {:?} of cluster {:?} is disabled",
                self.database, self.cluster
            )))
        } else {
            None
        }
    }

    /// The statements that create a login for this database, whatever the
    /// role says: a member of the owner role and nothing more. On
    /// PostgreSQL its sessions act as the owner (`SET role`), so what it
    /// creates belongs to the owner and dropping the login at revocation
    /// leaves the tenant's tables in place.
    pub fn creation_statements(&self, postgres: bool) -> Vec<String> {
        if postgres {
            let owner = pg_ident(&self.owner_role);
            vec![
                format!(
                    r#"CREATE ROLE "{{{{name}}}}" WITH LOGIN PASSWORD '{{{{password}}}}' VALID UNTIL '{{{{expiration}}}}' IN ROLE {owner};"#
                ),
                format!(
                    r#"ALTER ROLE "{{{{name}}}}" SET role = {};"#,
                    pg_literal(&self.owner_role)
                ),
            ]
        } else {
            vec![
                "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';".into(),
                format!(
                    "GRANT {MYSQL_DATABASE_RIGHTS} ON {}.* TO '{{{{name}}}}'@'%';",
                    my_ident(&self.database)
                ),
            ]
        }
    }
}

/// What a tenant database's login may do in its database on MySQL: every
/// right at database level (listed, since the management user holds
/// exactly these, and ALL would also name rights it lacks).
const MYSQL_DATABASE_RIGHTS: &str = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER, \
     CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, \
     EVENT, TRIGGER";

/// The record a tenant database leaves at `cluster-db/<cluster>/<db>`, so
/// the cluster can list its databases.
#[derive(Serialize, Deserialize)]
struct TenantDb {
    connection: String,
    owner_role: String,
}

fn db_prefix(cluster: &str) -> String {
    format!("{}{cluster}/", layout::database::CLUSTER_DB)
}

fn db_key(cluster: &str, database: &str) -> String {
    format!("{}{database}", db_prefix(cluster))
}

/// The connection a tenant database gets. A database name has no '.', so
/// the part after the last '.' is always the database.
pub fn connection_name(cluster: &str, database: &str) -> String {
    format!("{cluster}.{database}")
}

/// A tenant connection as the engine uses it: address, login and pool
/// settings from the cluster's record (so an update of the cluster reaches
/// every database in it), and whether the cluster is disabled. Other
/// connections are returned as they are.
pub async fn resolve(mount: &Mount, mut config: DbConfig) -> Result<DbConfig> {
    let Some(link) = config.cluster.as_mut() else {
        return Ok(config);
    };
    let cluster = path_cluster::load(mount, &link.cluster)
        .await?
        .ok_or_else(|| Error::internal(format!("cluster {:?} is not registered", link.cluster)))?;
    link.cluster_disabled = cluster.disabled;
    let details = cluster.details(&cluster.management_role, &cluster.management_password, &link.database);
    config.connection_details.extend(details);
    config.plugin_name = cluster.plugin_name;
    config.plugin_version = cluster.plugin_version;
    Ok(config)
}

/// `LIST cluster/:cluster`: the cluster's databases, active or disabled.
pub async fn list(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let keys = r.mount()?.storage.list(&db_prefix(&r.fields.str("cluster"))).await?;
    if keys.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

pub async fn exists(_: &DatabaseEngine, r: &Req<'_>) -> Result<bool> {
    let key = db_key(&r.fields.str("cluster"), &r.fields.str("database"));
    Ok(r.mount()?.storage.get_json::<TenantDb>(&key).await?.is_some())
}

/// `GET cluster/:cluster/database/:database`.
pub async fn read(_: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let (mount, cluster, database) = (r.mount()?, r.fields.str("cluster"), r.fields.str("database"));
    let Some(record) = mount.storage.get_json::<TenantDb>(&db_key(&cluster, &database)).await? else {
        return Ok(None);
    };
    let config = match path_config_connection::load(mount, &record.connection).await? {
        Some(c) => Some(resolve(mount, c).await?),
        None => None,
    };
    let link = config.as_ref().and_then(|c| c.cluster.as_ref());
    Ok(Some(Response::data(json!({
        "cluster": cluster,
        "database": database,
        "owner_role": record.owner_role,
        "connection": record.connection,
        "allowed_roles": config.as_ref().map(|c| c.allowed_roles.clone()).unwrap_or_default(),
        "disabled": link.is_none_or(|l| l.disabled || l.cluster_disabled),
    }))))
}

/// `DELETE cluster/:cluster/database/:database`: disable it. Logins are no
/// longer issued nor renewed; the database, its data and the logins issued
/// so far stay (until their leases end).
pub async fn delete(engine: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let (mount, cluster, database) = (r.mount()?, r.fields.str("cluster"), r.fields.str("database"));
    let _guard = engine.statics.lock.lock().await;
    let connection = connection_name(&cluster, &database);
    if let Some(mut config) = path_config_connection::load(mount, &connection).await?
        && let Some(link) = config.cluster.as_mut()
        && link.cluster == cluster
        && link.database == database
        && !link.disabled
    {
        link.disabled = true;
        path_config_connection::store(mount, &connection, &config).await?;
        engine.release(mount, &connection);
    }
    Ok(None)
}

/// `POST cluster/:cluster/database/:database`: create the tenant database
/// (or finish, update and enable one written before).
pub async fn write(engine: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let (mount, name, database) = (r.mount()?, r.fields.str("cluster"), r.fields.str("database"));
    let _guard = engine.statics.lock.lock().await;
    path_cluster::recover(engine, mount, &name).await?;
    let cluster = path_cluster::load(mount, &name)
        .await?
        .ok_or_else(|| Error::bad(format!("cluster {name:?} is not registered")))?;
    if cluster.disabled {
        return Err(Error::bad(format!("cluster {name:?} is disabled")));
    }
    check_name("database", &database, cluster.postgres())?;
    let connection = connection_name(&name, &database);
    let previous = match path_config_connection::load(mount, &connection).await? {
        None => None,
        Some(c) => match &c.cluster {
            Some(link) if link.cluster == name && link.database == database => Some(c),
            _ => {
                return Err(Error::bad(format!(
                    "the connection name {connection:?} is taken by another connection"
                )));
            }
        },
    };
    let previous_owner = previous
        .as_ref()
        .and_then(|c| c.cluster.as_ref())
        .map(|l| l.owner_role.clone());
    let owner = match (r.fields.opt_str("owner_role").filter(|o| !o.is_empty()), previous_owner) {
        (Some(given), Some(old)) if given != old => {
            return Err(Error::bad(format!(
                "owner_role cannot change: the database is owned by {old:?}"
            )));
        }
        (Some(given), _) => given,
        (None, Some(old)) => old,
        (None, None) => format!("{database}_owner"),
    };
    check_name("owner_role", &owner, cluster.postgres())?;
    if owner == cluster.username || owner == cluster.management_role {
        return Err(Error::bad(format!(
            "owner_role {owner:?} is the cluster's own login: choose another name"
        )));
    }

    provision(engine, mount, &name, &cluster, &database, &owner).await?;

    let details = stored_details(&cluster, &database);
    let stored = DbConfig {
        plugin_name: cluster.plugin_name.clone(),
        plugin_version: cluster.plugin_version.clone(),
        connection_details: details,
        allowed_roles: r
            .fields
            .opt_list("allowed_roles")
            .or_else(|| previous.as_ref().map(|c| c.allowed_roles.clone()))
            .unwrap_or_default(),
        root_credentials_rotate_statements: Vec::new(),
        password_policy: previous.map(|c| c.password_policy).unwrap_or_default(),
        verify_connection: true,
        cluster: Some(ClusterLink {
            cluster: name.clone(),
            database: database.clone(),
            owner_role: owner.clone(),
            disabled: false,
            cluster_disabled: false,
        }),
    };
    // The management role must reach the new database through the
    // connection before it is stored.
    let resolved = resolve(mount, stored.clone()).await?;
    engine.release(mount, &connection);
    let mut driver = engine.driver(mount, &connection, &resolved).await?;
    driver.initialize(&resolved.details_json(), true).await.map_err(|e| {
        Error::bad(format!(
            "the management role cannot connect to database {database:?}: {e}"
        ))
    })?;
    path_config_connection::store(mount, &connection, &stored).await?;
    let record = TenantDb {
        connection: connection.clone(),
        owner_role: owner.clone(),
    };
    mount.storage.put_json(&db_key(&name, &database), &record).await?;
    Ok(Some(Response::data(json!({
        "cluster": name,
        "database": database,
        "owner_role": owner,
        "connection": connection,
        "allowed_roles": stored.allowed_roles,
        "disabled": false,
    }))))
}

/// Database and owner role names: letters, digits, '_' and '-' (no '.',
/// which separates the cluster from the database in the connection name;
/// nothing to escape in SQL), within the server's length limit.
fn check_name(field: &str, value: &str, postgres: bool) -> Result<()> {
    let max = match (postgres, field) {
        (true, _) => 63,
        (false, "database") => 64,
        (false, _) => 32,
    };
    let valid = !value.is_empty()
        && value.len() <= max
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(Error::bad(format!(
            "invalid {field} {value:?}: 1 to {max} letters, digits, '_' or '-'"
        )))
    }
}

/// The comment on a PostgreSQL owner role: how a later write knows the
/// role is Warden's own and not a role of the same name made by someone
/// else (which it must not take over).
fn owner_comment(cluster: &str, database: &str) -> String {
    format!("Warden: the owner role of database {database} in cluster {cluster}")
}

/// Create the owner role and the database, as the management role; each
/// step is safe to run again.
async fn provision(
    engine: &DatabaseEngine,
    mount: &Mount,
    name: &str,
    cluster: &Cluster,
    database: &str,
    owner: &str,
) -> Result<()> {
    let config = cluster.management_connection();
    let scope = path_cluster::scope_name(name);
    let run = |statements: Vec<String>| run_statements(engine, mount, &scope, &config, owner, statements);
    if !cluster.postgres() {
        return run(vec![
            format!("CREATE DATABASE IF NOT EXISTS {}", my_ident(database)),
            format!("CREATE ROLE IF NOT EXISTS {}", my_literal(owner)),
            format!(
                "GRANT {MYSQL_DATABASE_RIGHTS} ON {}.* TO {}",
                my_ident(database),
                my_literal(owner)
            ),
        ])
        .await
        .map_err(|e| Error::bad(format!("cannot create database {database:?}: {e}")));
    }
    let (role, db) = (pg_literal(owner), pg_literal(database));
    let comment = pg_literal(&owner_comment(name, database));
    let owner_ident = pg_ident(owner);
    run(vec![
        format!(
            "DO $$BEGIN \
               IF EXISTS (SELECT FROM pg_roles WHERE rolname = {role}) THEN \
                 IF coalesce(shobj_description((SELECT oid FROM pg_roles WHERE rolname = {role}), 'pg_authid'), '') <> {comment} THEN \
                   RAISE EXCEPTION 'role % exists and is not the owner role Warden made for this database', {role}; \
                 END IF; \
               ELSE \
                 CREATE ROLE {owner_ident} NOLOGIN; \
                 COMMENT ON ROLE {owner_ident} IS {comment}; \
               END IF; \
             END$$"
        ),
        // CREATE DATABASE ... OWNER needs the creator to be a member.
        format!("GRANT {owner_ident} TO {}", pg_ident(&cluster.management_role)),
    ])
    .await
    .map_err(|e| Error::bad(format!("cannot create the owner role {owner:?}: {e}")))?;
    // Alone: CREATE DATABASE cannot run inside a transaction. It fails when
    // the database exists, which the next step accepts if it is the owner's.
    let created = run(vec![format!(
        "CREATE DATABASE {} OWNER {owner_ident}",
        pg_ident(database)
    )])
    .await;
    let secured = run(vec![
        format!(
            "DO $$BEGIN \
               IF NOT EXISTS (SELECT FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba \
                              WHERE d.datname = {db} AND r.rolname = {role}) THEN \
                 RAISE EXCEPTION 'database % exists and is not owned by %', {db}, {role}; \
               END IF; \
             END$$"
        ),
        // Only the owner (and its members: the logins Warden issues, the
        // management role) may connect.
        format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", pg_ident(database)),
    ])
    .await;
    match (created, secured) {
        (_, Ok(())) => Ok(()),
        (Err(e), Err(_)) | (Ok(()), Err(e)) => Err(Error::bad(format!("cannot create database {database:?}: {e}"))),
    }
}

/// Run `statements` as they are (each one whole, in one transaction when
/// the server allows) as the login of `config`. The driver contract has no
/// call for running arbitrary statements; `delete-user` with statements runs
/// exactly those, and a JSON array keeps each from being split at ';'.
async fn run_statements(
    engine: &DatabaseEngine,
    mount: &Mount,
    scope: &str,
    config: &DbConfig,
    name: &str,
    statements: Vec<String>,
) -> std::result::Result<(), String> {
    let whole = serde_json::to_string(&statements).map_err(|e| e.to_string())?;
    let mut driver = engine
        .driver(mount, scope, config)
        .await
        .map_err(|e| e.messages().join("; "))?;
    driver
        .delete_user(&config.details_json(), name, &[whole])
        .await
        .map_err(|e| plugin_error(e).messages().join("; "))
}

/// Close the pools of every database of cluster `name` (its settings
/// changed, or it was disabled).
pub async fn release_all(engine: &DatabaseEngine, mount: &Mount, name: &str) -> Result<()> {
    for database in mount.storage.list(&db_prefix(name)).await? {
        engine.release(mount, &connection_name(name, &database));
    }
    Ok(())
}

fn pg_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn my_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn my_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Whether `config`'s plugin speaks PostgreSQL.
pub fn is_postgres(config: &DbConfig) -> bool {
    config.plugin_name == POSTGRES_PLUGIN
}

/// Connection details of a tenant database without its password (as
/// stored: [`resolve`] adds the password from the cluster's record).
fn stored_details(cluster: &Cluster, database: &str) -> Map<String, serde_json::Value> {
    let mut details = cluster.details(&cluster.management_role, "", database);
    details.remove("password");
    details
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> ClusterLink {
        ClusterLink {
            cluster: "c1".into(),
            database: "tenant-a".into(),
            owner_role: "tenant-a_owner".into(),
            disabled: false,
            cluster_disabled: false,
        }
    }

    #[test]
    fn names_are_plain_and_bounded() {
        assert!(check_name("database", "tenant_a-1", true).is_ok());
        for bad in ["", "a.b", "a b", "a\"b", "a'b", "a`b", "ä", &"x".repeat(64)] {
            assert!(check_name("database", bad, true).is_err(), "{bad}");
        }
        assert!(check_name("database", &"x".repeat(64), false).is_ok());
        assert!(check_name("owner_role", &"x".repeat(33), false).is_err());
    }

    #[test]
    fn logins_join_the_owner_role_and_nothing_else() {
        let pg = link().creation_statements(true);
        assert_eq!(
            pg[0],
            r#"CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE "tenant-a_owner";"#
        );
        assert_eq!(pg[1], r#"ALTER ROLE "{{name}}" SET role = 'tenant-a_owner';"#);
        let my = link().creation_statements(false);
        assert!(my[1].contains(" ON `tenant-a`.* TO '{{name}}'@'%';"), "{}", my[1]);
        assert!(!my[1].contains("*.*"));
    }

    #[test]
    fn refusals_name_what_is_disabled() {
        assert!(link().refusal().is_none());
        let mut l = link();
        l.disabled = true;
        assert!(
            l.refusal()
                .unwrap()
                .to_string()
                .contains("database \"tenant-a\" of cluster \"c1\"")
        );
        l.cluster_disabled = true;
        assert!(l.refusal().unwrap().to_string().contains("cluster \"c1\" is disabled"));
    }

    #[test]
    fn the_stored_details_carry_no_password() {
        let cluster: Cluster = serde_json::from_value(json!({
            "plugin_name": POSTGRES_PLUGIN, "host": "h", "port": 5432, "database": "postgres",
            "username": "admin", "password": "pw", "management_role": "warden_mgmt_x",
            "management_password": "mpw", "max_open_connections": 4, "max_idle_connections": 0,
            "max_connection_lifetime": 0
        }))
        .unwrap();
        let details = stored_details(&cluster, "tenant-a");
        assert!(!details.contains_key("password"));
        assert_eq!(details["username"], "warden_mgmt_x");
        assert_eq!(
            details["connection_url"],
            "postgresql://{{username}}:{{password}}@h:5432/tenant-a"
        );
    }
}
