//! Vault's MySQL plugin family as one Warden component: the catalog
//! registers these bytes as mysql-database-plugin, mysql-aurora-,
//! mysql-rds- and mysql-legacy-database-plugin, and the host puts the name
//! a connection uses into the configuration JSON (`plugin_name`), which
//! picks the default username template (32 or 16 characters). Stateless
//! like the PostgreSQL driver: the host keeps the pools; the pure logic
//! (Go DSNs, TLS settings, defaults) lives in warden-driver-common.

use exports::warden::plugin::database::{Credential, Guest, NewUserRequest, UpdateUserRequest};
use std::rc::Rc;
use warden::plugin::sql::{Connection, PoolOptions};
use warden::plugin::types::Error;
use warden::plugin::{clock, crypto, log};
use warden_driver_common::Env;
use warden_driver_common::memo::Memo;
use warden_driver_common::mysql::{self, DEFAULT_REVOCATION, DEFAULT_ROTATE, Tls, quote_string};
use warden_driver_common::redact::redact_secrets;
use warden_driver_common::sql_config::SqlConfig;
use warden_driver_common::statements::prepare;
use warden_driver_common::template::{Template, UsernameMetadata};
use warden_driver_common::time::{EXPIRATION_LAYOUT, format as format_time};

wit_bindgen::generate!({ world: "database-driver", path: "../../wit" });

/// One parsed connection configuration.
struct Config {
    sql: SqlConfig,
    tls: Tls,
    /// The catalog name this call is for (set by the host).
    plugin_name: String,
    /// The mysql:// URL for the host, or why there is none.
    url: Result<String, String>,
}

impl Config {
    fn parse(json: &str) -> Result<Config, String> {
        let sql = SqlConfig::parse(json)?;
        let tls = Tls::parse(json)?;
        let plugin_name = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("plugin_name").and_then(|n| n.as_str()).map(str::to_string))
            .unwrap_or_default();
        let url = mysql::url(&sql, &tls);
        Ok(Config {
            sql,
            tls,
            plugin_name,
            url,
        })
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.sql.secrets();
        secrets.extend(self.tls.secrets());
        secrets
    }

    fn default_template(&self) -> &'static str {
        mysql::default_template(&self.plugin_name)
    }
}

struct MySql;

impl Guest for MySql {
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
        "mysql".into()
    }
}

export!(MySql);

fn initialize(cfg: &Config, verify: bool) -> Result<String, Error> {
    let url = cfg.url.clone().map_err(Error::BadParameter)?;
    let template = cfg.sql.username_template.as_deref().unwrap_or(cfg.default_template());
    // Like Vault, render once now so a broken template fails here.
    username(template, &UsernameMetadata::default())
        .map_err(|e| Error::BadParameter(format!("invalid username template: {e}")))?;
    if verify {
        let verifying = |e| context("error verifying connection", e);
        let conn = Connection::open(&url, pool(&cfg.sql)).map_err(verifying)?;
        conn.ping().map_err(verifying)?;
    }
    Ok(cfg.sql.to_json())
}

/// The request's username: its template (or the config's, or the plugin
/// name's default) rendered.
fn username_for(cfg: &Config, request: &NewUserRequest) -> Result<String, Error> {
    let template = (request.username_template.as_deref())
        .filter(|t| !t.is_empty())
        .or(cfg.sql.username_template.as_deref())
        .unwrap_or(cfg.default_template());
    let metadata = UsernameMetadata {
        display_name: &request.username_config.display_name,
        role_name: &request.username_config.role_name,
    };
    username(template, &metadata).map_err(Error::BadParameter)
}

fn new_user(cfg: &Config, request: &NewUserRequest) -> Result<String, Error> {
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
    // Vault's MySQL driver splits every statement on ';'.
    let statements = prepare(&request.creation_statements, &vars, false);
    if statements.is_empty() {
        return Err(empty());
    }
    let conn = connect(cfg)?;
    if let Err(e) = conn.execute(&statements, true) {
        // The host rolled the transaction back, but MySQL commits DDL such
        // as CREATE USER at once: a user created before the failing
        // statement would be left behind. Vault leaves it; Warden runs the
        // role's rollback statements, then drops whatever account of that
        // name is still there. Best effort: errors here are not reported.
        for statement in prepare(&request.rollback_statements, &vars, false) {
            let _ = conn.execute(&[statement], false);
        }
        drop_leftovers(&conn, &username);
        return Err(context("failed to execute query", e));
    }
    Ok(username)
}

/// Drops every account named `username`, on whatever host part, checking
/// afterwards (a few attempts: the server may be busy with other accounts).
fn drop_leftovers(conn: &Connection, username: &str) {
    let name = [username.to_string()];
    for _attempt in 0..3 {
        let hosts = match conn.query("SELECT Host FROM mysql.user WHERE User = ?", &name) {
            Ok(rows) => rows
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect(),
            // Without read access to mysql.user, the host part Vault's
            // defaults use.
            Err(e) => {
                log::log(
                    log::Level::Warn,
                    &format!("cleanup: cannot list the accounts of {username}: {e:?}"),
                );
                vec!["%".to_string()]
            }
        };
        if hosts.is_empty() {
            return;
        }
        for host in hosts {
            let drop_user = format!("DROP USER IF EXISTS {}@{}", quote_string(username), quote_string(&host));
            if let Err(e) = conn.execute(&[drop_user], false) {
                log::log(
                    log::Level::Warn,
                    &format!("cleanup: cannot drop {username}@{host}: {e:?}"),
                );
            }
        }
    }
}

fn update_user(cfg: &Config, request: &UpdateUserRequest) -> Result<(), Error> {
    if request.password.is_none() && request.expiration.is_none() {
        return Err(Error::BadParameter("no change requested".into()));
    }
    if let Some(change) = &request.password {
        change_password(cfg, &request.username, &change.new_password, &change.statements)
            .map_err(|e| context("failed to change password", e))?;
    }
    // As in Vault, a change of expiration is a no-op for MySQL.
    Ok(())
}

fn change_password(cfg: &Config, username: &str, password: &str, statements: &[String]) -> Result<(), Error> {
    if username.is_empty() || password.is_empty() {
        return Err(Error::BadParameter("must provide both username and password".into()));
    }
    let vars = [("name", username), ("username", username), ("password", password)];
    let statements = if statements.is_empty() {
        prepare(&[DEFAULT_ROTATE.to_string()], &vars, false)
    } else {
        prepare(statements, &vars, false)
    };
    connect(cfg)?.execute(&statements, true).map(drop)
}

/// Vault's revocation: the role's statements, or REVOKE ALL and DROP USER
/// of `'name'@'%'`, in one transaction that stops at the first error.
fn delete_user(cfg: &Config, username: &str, statements: &[String]) -> Result<(), Error> {
    let vars = [("name", username), ("username", username)];
    let statements = if statements.is_empty() {
        prepare(&[DEFAULT_REVOCATION.to_string()], &vars, false)
    } else {
        prepare(statements, &vars, false)
    };
    connect(cfg)?.execute(&statements, true).map(drop)
}

thread_local! {
    static CONFIG: Memo<Config> = Memo::default();
    static TEMPLATE: Memo<Template> = Memo::default();
}

fn parse(config: &str) -> Result<Rc<Config>, Error> {
    CONFIG.with(|m| m.get_or_parse(config, Config::parse).map_err(Error::BadParameter))
}

fn pool(cfg: &SqlConfig) -> PoolOptions {
    PoolOptions {
        max_open: cfg.max_open,
        max_idle: cfg.max_idle,
        max_lifetime_seconds: cfg.max_lifetime_seconds,
    }
}

fn connect(cfg: &Config) -> Result<Connection, Error> {
    let url = cfg.url.as_ref().map_err(|e| Error::BadParameter(e.clone()))?;
    Connection::open(url, pool(&cfg.sql)).map_err(|e| context("unable to get connection", e))
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
/// does: a database or driver error can echo a statement or the URL.
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
