// The PostgreSQL driver as of warden:plugin 1.0.0 (frozen; see lib.rs):
// built against wit/released/1.0.0 so the tests prove a driver built
// against an earlier contract still runs on this host.
use exports::warden::plugin::database::{Credential, Guest, NewUserRequest, UpdateUserRequest};
use std::rc::Rc;
use warden::plugin::sql::{Connection, PoolOptions};
use warden::plugin::types::Error;
use warden::plugin::{clock, crypto};
use warden_driver_common::Env;
use warden_driver_common::memo::Memo;
use warden_driver_common::redact::redact_secrets;
use warden_driver_common::sql_config::SqlConfig;
use warden_driver_common::statements::{prepare, quote_pg_identifier as quote};
use warden_driver_common::template::{POSTGRES_DEFAULT, Template, UsernameMetadata};
use warden_driver_common::time::{EXPIRATION_LAYOUT, format as format_time};


const SCHEMES: &[&str] = &["postgres", "postgresql"];
const DEFAULT_CHANGE_PASSWORD: &str = r#"ALTER ROLE "{{username}}" WITH PASSWORD '{{password}}';"#;
const DEFAULT_CHANGE_EXPIRATION: &str = r#"ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}';"#;

struct Postgres;

impl Guest for Postgres {
    fn initialize(config: String, verify: bool) -> Result<String, Error> {
        let cfg = parse(&config)?;
        redact(initialize(&cfg, verify), &cfg.secrets())
    }

    fn new_user(config: String, request: NewUserRequest) -> Result<String, Error> {
        let cfg = parse(&config)?;
        let mut secrets = cfg.secrets();
        if let Credential::Password(password) = &request.credential {
            secrets.push(password.clone());
        }
        redact(new_user(&cfg, &request), &secrets)
    }

    fn new_username(config: String, request: NewUserRequest) -> Result<String, Error> {
        let cfg = parse(&config)?;
        username_for(&cfg, &request)
    }

    fn update_user(config: String, request: UpdateUserRequest) -> Result<(), Error> {
        let cfg = parse(&config)?;
        let mut secrets = cfg.secrets();
        secrets.extend(request.password.iter().map(|p| p.new_password.clone()));
        redact(update_user(&cfg, &request), &secrets)
    }

    fn delete_user(config: String, username: String, statements: Vec<String>) -> Result<(), Error> {
        let cfg = parse(&config)?;
        redact(delete_user(&cfg, &username, &statements), &cfg.secrets())
    }

    fn driver_type() -> String {
        "postgres".into()
    }
}

export!(Postgres);

fn initialize(cfg: &SqlConfig, verify: bool) -> Result<String, Error> {
    let url = cfg.url(SCHEMES).map_err(Error::BadParameter)?;
    if let Some(template) = &cfg.username_template {
        // Like Vault, render once now so a broken template fails here.
        username(template, &UsernameMetadata::default())
            .map_err(|e| Error::BadParameter(format!("invalid username template: {e}")))?;
    }
    if verify {
        let verifying = |e| context("error verifying connection", e);
        let conn = Connection::open(&url, pool(cfg)).map_err(verifying)?;
        conn.ping().map_err(verifying)?;
    }
    Ok(cfg.to_json())
}

/// The request's username: its template (or the config's, or Vault's
/// default) rendered.
fn username_for(cfg: &SqlConfig, request: &NewUserRequest) -> Result<String, Error> {
    let template = (request.username_template.as_deref())
        .filter(|t| !t.is_empty())
        .or(cfg.username_template.as_deref())
        .unwrap_or(POSTGRES_DEFAULT);
    let metadata = UsernameMetadata {
        display_name: &request.username_config.display_name,
        role_name: &request.username_config.role_name,
    };
    username(template, &metadata).map_err(Error::BadParameter)
}

fn new_user(cfg: &SqlConfig, request: &NewUserRequest) -> Result<String, Error> {
    let empty = || Error::BadParameter("empty creation statements".into());
    if request.creation_statements.is_empty() {
        return Err(empty());
    }
    let Credential::Password(password) = &request.credential else {
        return Err(Error::BadParameter("unsupported credential type".into()));
    };
    let username = match &request.username {
        Some(name) if !name.is_empty() => name.clone(),
        _ => username_for(cfg, request)?,
    };
    let expiration = format_time(EXPIRATION_LAYOUT, request.expiration, 0);
    let vars = [
        ("name", username.as_str()),
        ("username", &username),
        ("password", password),
        ("expiration", &expiration),
    ];
    // Vault runs a statement with a body (DO ... END) whole, others split on ';'.
    let statements = prepare(&request.creation_statements, &vars, true);
    if statements.is_empty() {
        return Err(empty());
    }
    let conn = connect(cfg)?;
    if let Err(e) = conn.execute(&statements, true) {
        // The host has rolled the transaction back; rollback statements are
        // for anything outside it. Best effort: each on its own, errors ignored.
        for statement in prepare(&request.rollback_statements, &vars, true) {
            let _ = conn.execute(&[statement], false);
        }
        return Err(context("failed to execute query", e));
    }
    Ok(username)
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

fn delete_user(cfg: &SqlConfig, username: &str, statements: &[String]) -> Result<(), Error> {
    let conn = connect(cfg)?;
    if statements.is_empty() {
        return default_revocation(&conn, username);
    }
    let vars = [("name", username), ("username", username)];
    conn.execute(&prepare(statements, &vars, false), true).map(drop)
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

thread_local! {
    static CONFIG: Memo<SqlConfig> = Memo::default();
    static TEMPLATE: Memo<Template> = Memo::default();
}

fn parse(config: &str) -> Result<Rc<SqlConfig>, Error> {
    CONFIG.with(|m| m.get_or_parse(config, SqlConfig::parse).map_err(Error::BadParameter))
}

fn pool(cfg: &SqlConfig) -> PoolOptions {
    PoolOptions {
        max_open: cfg.max_open,
        max_idle: cfg.max_idle,
        max_lifetime_seconds: cfg.max_lifetime_seconds,
    }
}

fn connect(cfg: &SqlConfig) -> Result<Connection, Error> {
    let url = cfg.url(SCHEMES).map_err(Error::BadParameter)?;
    Connection::open(&url, pool(cfg)).map_err(|e| context("unable to get connection", e))
}

fn username(template: &str, metadata: &UsernameMetadata) -> Result<String, String> {
    TEMPLATE
        .with(|m| m.get_or_parse(template, Template::parse))?
        .render(metadata, &mut Host)
}

/// The host's randomness, clock and hashing, for the shared logic.
struct Host;

impl Env for Host {
    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        crypto::random_bytes(u32::try_from(len).unwrap_or(u32::MAX))
    }
    fn now(&self) -> (i64, u32) {
        clock::now()
    }
    fn sha256(&self, data: &[u8]) -> Vec<u8> {
        crypto::sha256(data)
    }
}

fn message(e: &Error) -> &str {
    match e {
        Error::ConnectionFailed(m)
        | Error::BadParameter(m)
        | Error::QueryFailed(m)
        | Error::NotPermitted(m)
        | Error::Other(m) => m,
    }
}

fn map_message(e: Error, f: impl FnOnce(String) -> String) -> Error {
    match e {
        Error::ConnectionFailed(m) => Error::ConnectionFailed(f(m)),
        Error::BadParameter(m) => Error::BadParameter(f(m)),
        Error::QueryFailed(m) => Error::QueryFailed(f(m)),
        Error::NotPermitted(m) => Error::NotPermitted(f(m)),
        Error::Other(m) => Error::Other(f(m)),
    }
}

fn context(prefix: &str, e: Error) -> Error {
    map_message(e, |m| format!("{prefix}: {m}"))
}

/// Replaces secrets in error text, as Vault's error-sanitising middleware
/// does for the configured password: a database or driver error can echo
/// the connection string or a statement.
/// Only whole occurrences: a short password leaves the words around it
/// readable (`warden_driver_common::redact`).
fn redact<T>(result: Result<T, Error>, secrets: &[String]) -> Result<T, Error> {
    result.map_err(|e| {
        map_message(e, |m| {
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            redact_secrets(&m, &secrets, "[password]")
        })
    })
}
