//! The postgresql-database-plugin: Vault's PostgreSQL database driver as a
//! Warden component, on the driver SDK (components/sdk), which does the
//! export glue, username templates and error redaction. Stateless: every
//! call carries the stored connection configuration (JSON) and the host
//! keeps the connection pools, so the driver only turns Vault's rules into
//! SQL. The pure logic lives in warden-driver-common.

use warden_driver_sdk::common::sql_config::SqlConfig;
use warden_driver_sdk::common::statements::{prepare, quote_pg_identifier as quote};
use warden_driver_sdk::common::template::POSTGRES_DEFAULT;
use warden_driver_sdk::common::time::{EXPIRATION_LAYOUT, format as format_time};
use warden_driver_sdk::sql::Connection;
use warden_driver_sdk::{
    Driver, Error, NewUserRequest, UpdateUserRequest, connect_sql, context, export_driver, map_message, message,
    sql_creation, verify_sql,
};

const SCHEMES: &[&str] = &["postgres", "postgresql"];
const DEFAULT_CHANGE_PASSWORD: &str = r#"ALTER ROLE "{{username}}" WITH PASSWORD '{{password}}';"#;
const DEFAULT_CHANGE_EXPIRATION: &str = r#"ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}';"#;

struct Postgres;

impl Driver for Postgres {
    type Config = SqlConfig;
    const TYPE: &'static str = "postgres";

    fn parse(config: &str) -> Result<SqlConfig, String> {
        SqlConfig::parse(config)
    }

    fn secrets(cfg: &SqlConfig) -> Vec<String> {
        cfg.secrets()
    }

    fn username_template(cfg: &SqlConfig) -> Option<&str> {
        cfg.username_template.as_deref()
    }

    fn default_username_template(_: &SqlConfig) -> &str {
        POSTGRES_DEFAULT
    }

    fn initialize(cfg: &SqlConfig, verify: bool) -> Result<String, Error> {
        let url = cfg.url(SCHEMES).map_err(Error::BadParameter)?;
        if verify {
            verify_sql(&url, cfg)?;
        }
        Ok(cfg.to_json())
    }

    fn new_user(cfg: &SqlConfig, username: &str, request: &NewUserRequest) -> Result<(), Error> {
        // Vault runs a statement with a body (DO ... END) whole, others split on ';'.
        let creation = sql_creation(username, request, true)?;
        let conn = connect(cfg)?;
        if let Err(e) = conn.execute(&creation.statements, true) {
            // The host has rolled the transaction back; rollback statements are
            // for anything outside it. Best effort: each on its own, errors ignored.
            for statement in creation.rollback {
                let _ = conn.execute(&[statement], false);
            }
            return Err(context("failed to execute query", e));
        }
        Ok(())
    }

    fn update_user(cfg: &SqlConfig, request: &UpdateUserRequest) -> Result<(), Error> {
        let name = request.username.as_str();
        if name.is_empty() {
            return Err(Error::BadParameter("missing username".into()));
        }
        if request.password.is_none() && request.expiration.is_none() {
            return Err(Error::BadParameter("no changes requested".into()));
        }
        let conn = connect(cfg)?;
        // Like Vault, try both changes and report every failure.
        let mut errors = Vec::new();
        if let Some(change) = &request.password {
            if change.new_password.is_empty() {
                errors.push(Error::BadParameter("missing password".into()));
            } else {
                let vars = [("name", name), ("username", name), ("password", &change.new_password)];
                errors.extend(run(&conn, &change.statements, DEFAULT_CHANGE_PASSWORD, &vars).err());
            }
        }
        if let Some(change) = &request.expiration {
            let expiration = format_time(EXPIRATION_LAYOUT, change.new_expiration, 0);
            let vars = [("name", name), ("username", name), ("expiration", &expiration)];
            errors.extend(run(&conn, &change.statements, DEFAULT_CHANGE_EXPIRATION, &vars).err());
        }
        let mut errors = errors.into_iter();
        match (errors.next(), errors.next()) {
            (None, _) => Ok(()),
            (Some(e), None) => Err(e),
            (Some(first), Some(second)) => Err(map_message(first, |m| format!("{m}; {}", message(&second)))),
        }
    }

    fn delete_user(cfg: &SqlConfig, username: &str, statements: &[String]) -> Result<(), Error> {
        let conn = connect(cfg)?;
        if statements.is_empty() {
            return default_revocation(&conn, username);
        }
        let vars = [("name", username), ("username", username)];
        conn.execute(&prepare(statements, &vars, false), true).map(drop)
    }
}

export_driver!(Postgres);

/// Runs the given statements, or `default` when there are none, atomically.
fn run(conn: &Connection, statements: &[String], default: &str, vars: &[(&str, &str)]) -> Result<(), Error> {
    let statements = if statements.is_empty() {
        prepare(&[default.to_string()], vars, false)
    } else {
        prepare(statements, vars, false)
    };
    conn.execute(&statements, true)
        .map(drop)
        .map_err(|e| context("failed to execute query", e))
}

/// Vault's default revocation: nothing to do if the role is gone; otherwise
/// revoke what it was granted in the schemas it holds grants in, in public
/// and on the database, then drop it.
///
/// Every such REVOKE rewrites the same catalog rows (pg_namespace's row for
/// public, pg_database's, pg_class's of each table in public) whether or
/// not the role held anything there, so two of them at once make one fail
/// with "tuple concurrently updated" (SQLSTATE XX000). Vault runs them one
/// by one, going on after a failure; with many revocations at once that
/// left logins behind, half revoked. Here they run as one transaction
/// (one round trip) that first takes a transaction-scoped advisory lock:
/// the default revocations of one database run one after another at the
/// database, which takes them in well under a millisecond each, and either
/// all of a login's REVOKEs and its DROP ROLE happen or none does (the
/// lease stays and is retried).
fn default_revocation(conn: &Connection, username: &str) -> Result<(), Error> {
    let param = [username.to_string()];
    // One round trip: the database, and the schemas the role holds table or
    // column grants in (one row with a NULL schema if none); no row at all
    // when the role is gone. Vault reads the schemas from
    // information_schema.role_column_grants, whose enabled_roles check
    // walks every role: 11 ms a call with 5,000 logins in the cluster, more
    // as they pile up, so revocation fell behind issuing. The catalogs give
    // the same schemas (any privilege, not only the four column ones) in
    // under a millisecond, whatever the number of roles.
    let rows = conn.query(
        "SELECT current_database()::text, g.nspname::text FROM pg_roles r \
         LEFT JOIN LATERAL (SELECT DISTINCT n.nspname FROM pg_class c \
           JOIN pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind IN ('r', 'v', 'f', 'p') AND has_schema_privilege(n.oid, 'USAGE') \
           AND (r.oid IN (SELECT (aclexplode(c.relacl)).grantee) \
             OR c.oid IN (SELECT a.attrelid FROM pg_attribute a WHERE a.attacl IS NOT NULL \
               AND r.oid IN (SELECT (aclexplode(a.attacl)).grantee)))) g ON true \
         WHERE r.rolname = $1",
        &param,
    )?;
    if rows.is_empty() {
        return Ok(());
    }
    let user = quote(username);
    let mut batch = vec![format!("SELECT pg_advisory_xact_lock({REVOCATION_LOCK})")];
    let mut database = None;
    for row in rows {
        let mut columns = row.into_iter();
        database = database.or(columns.next().flatten());
        if let Some(schema) = columns.next().flatten() {
            let schema = quote(&schema);
            batch.push(format!(
                "REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA {schema} FROM {user}"
            ));
            batch.push(format!("REVOKE USAGE ON SCHEMA {schema} FROM {user}"));
        }
    }
    batch.push(format!(
        "REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM {user}"
    ));
    batch.push(format!(
        "REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public FROM {user}"
    ));
    batch.push(format!("REVOKE USAGE ON SCHEMA public FROM {user}"));
    if let Some(database) = database {
        batch.push(format!("REVOKE CONNECT ON DATABASE {} FROM {user}", quote(&database)));
    }
    batch.push(format!("DROP ROLE IF EXISTS {user}"));
    conn.execute(&batch, true)
        .map(drop)
        .map_err(|e| context("could not perform all revocation statements", e))
}

/// The advisory lock key that serialises default revocations within a
/// database (advisory locks are per database): "warden-r" in ASCII, chosen
/// to stay clear of the small integers applications tend to use.
const REVOCATION_LOCK: i64 = 0x7761_7264_656e_2d72;

fn connect(cfg: &SqlConfig) -> Result<Connection, Error> {
    connect_sql(&cfg.url(SCHEMES).map_err(Error::BadParameter)?, cfg)
}
