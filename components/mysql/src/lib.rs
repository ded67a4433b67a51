//! Vault's MySQL plugin family as one Warden component: the catalog
//! registers these bytes as mysql-database-plugin, mysql-aurora-,
//! mysql-rds- and mysql-legacy-database-plugin, and the host puts the name
//! a connection uses into the configuration JSON (`plugin_name`), which
//! picks the default username template (32 or 16 characters). Stateless
//! like the PostgreSQL driver: the host keeps the pools; the pure logic
//! (Go DSNs, TLS settings, defaults) lives in warden-driver-common; the
//! driver SDK (components/sdk) does the export glue, username templates
//! and error redaction.

use warden_driver_sdk::common::mysql::{self, DEFAULT_REVOCATION, DEFAULT_ROTATE, Tls, quote_string};
use warden_driver_sdk::common::sql_config::SqlConfig;
use warden_driver_sdk::common::statements::prepare;
use warden_driver_sdk::sql::Connection;
use warden_driver_sdk::{
    Driver, Error, NewUserRequest, UpdateUserRequest, connect_sql, context, export_driver, log, sql_creation,
    verify_sql,
};

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

impl Driver for MySql {
    type Config = Config;
    const TYPE: &'static str = "mysql";

    fn parse(config: &str) -> Result<Config, String> {
        Config::parse(config)
    }

    fn secrets(cfg: &Config) -> Vec<String> {
        cfg.secrets()
    }

    fn username_template(cfg: &Config) -> Option<&str> {
        cfg.sql.username_template.as_deref()
    }

    fn default_username_template(cfg: &Config) -> &str {
        cfg.default_template()
    }

    fn initialize(cfg: &Config, verify: bool) -> Result<String, Error> {
        let url = cfg.url.clone().map_err(Error::BadParameter)?;
        if verify {
            verify_sql(&url, &cfg.sql)?;
        }
        Ok(cfg.sql.to_json())
    }

    fn new_user(cfg: &Config, username: &str, request: &NewUserRequest) -> Result<(), Error> {
        // Vault's MySQL driver splits every statement on ';'.
        let creation = sql_creation(username, request, false)?;
        let conn = connect(cfg)?;
        if let Err(e) = conn.execute(&creation.statements, true) {
            // The host rolled the transaction back, but MySQL commits DDL such
            // as CREATE USER at once: a user created before the failing
            // statement would be left behind. Vault leaves it; Warden runs the
            // role's rollback statements, then drops whatever account of that
            // name is still there. Best effort: errors here are not reported.
            for statement in creation.rollback {
                let _ = conn.execute(&[statement], false);
            }
            drop_leftovers(&conn, username);
            return Err(context("failed to execute query", e));
        }
        Ok(())
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
}

export_driver!(MySql);

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

fn connect(cfg: &Config) -> Result<Connection, Error> {
    connect_sql(cfg.url.as_ref().map_err(|e| Error::BadParameter(e.clone()))?, &cfg.sql)
}
