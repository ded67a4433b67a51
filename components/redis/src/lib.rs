//! The redis-database-plugin: Vault's and OpenBao's Redis driver as a
//! Warden component, on the driver SDK. Users are Redis ACL users (Redis 6
//! and later, Valkey): a role's creation statement is a JSON list of ACL
//! rules (`["~*", "+@read"]`, Vault's default) given to `ACL SETUSER`;
//! revocation is `ACL DELUSER`; a password change (rotate-root, static
//! roles) is `ACL SETUSER name RESETPASS >password` after checking the user
//! exists. The driver speaks RESP itself over the host's `tcp` import,
//! which connects only to the configured host and port, with TLS when the
//! configuration asks for it.

use serde_json::{Map, Value};
use warden_driver_sdk::net::Conn;
use warden_driver_sdk::tcp::{ConnectOptions, TlsOptions};
use warden_driver_sdk::{Driver, Error, NewUserRequest, UpdateUserRequest, context, export_driver, password};

/// Vault's rules for a role without creation statements: read any key.
const DEFAULT_RULES: &str = r#"["~*", "+@read"]"#;
/// Vault's Redis usernames (credsutil: display and role names cut to 64
/// characters, 20 random characters, the time), in capitals.
const DEFAULT_TEMPLATE: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 64) (.RoleName | truncate 64) (random 20) (unix_time) | uppercase }}"#;
/// Nesting a reply may have; ACL and AUTH replies are flat.
const MAX_DEPTH: usize = 4;

struct Redis;

/// A connection configuration: Vault's fields.
struct Config {
    json: String,
    host: String,
    port: u16,
    username: String,
    password: String,
    tls: Option<TlsOptions>,
    username_template: Option<String>,
}

impl Driver for Redis {
    type Config = Config;
    const TYPE: &'static str = "redis";

    fn parse(json: &str) -> Result<Config, String> {
        let v: Map<String, Value> = serde_json::from_str(json).map_err(|e| format!("invalid configuration: {e}"))?;
        let text = |k: &str| match v.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        // Vault decodes weakly: "6379" is a port, "true" a boolean.
        let flag = |k: &str| match v.get(k) {
            Some(Value::Bool(b)) => Ok(*b),
            None | Some(Value::Null) => Ok(false),
            Some(_) => text(k).parse::<bool>().map_err(|_| format!("{k} must be a boolean")),
        };
        let (host, port) = (text("host"), text("port"));
        let (username, password) = (text("username"), text("password"));
        if host.is_empty() {
            return Err("host cannot be empty".into());
        }
        let port: u16 = match port.as_str() {
            "" | "0" => return Err("port cannot be empty".into()),
            p => p
                .parse()
                .map_err(|_| format!("port {p:?} is not a valid port number"))?,
        };
        for (value, name) in [(&username, "username"), (&password, "password")] {
            if value.is_empty() {
                return Err(format!("{name} cannot be empty"));
            }
        }
        let tls = if flag("tls")? {
            let ca = text("ca_cert");
            if ca.is_empty() {
                return Err("ca_cert cannot be empty".into());
            }
            Some(TlsOptions {
                ca_pem: Some(ca),
                insecure_skip_verify: flag("insecure_tls")?,
                server_name: None,
                client_cert_pem: None,
                client_key_pem: None,
            })
        } else {
            None
        };
        let username_template = Some(text("username_template")).filter(|t| !t.is_empty());
        Ok(Config {
            json: json.to_string(),
            host,
            port,
            username,
            password,
            tls,
            username_template,
        })
    }

    fn secrets(cfg: &Config) -> Vec<String> {
        vec![cfg.password.clone()]
    }

    fn username_template(cfg: &Config) -> Option<&str> {
        cfg.username_template.as_deref()
    }

    fn default_username_template(_: &Config) -> &str {
        DEFAULT_TEMPLATE
    }

    fn initialize(cfg: &Config, verify: bool) -> Result<String, Error> {
        if verify {
            let mut conn = connect(cfg).map_err(|e| context("error verifying connection", e))?;
            command(&mut conn, &["PING"]).map_err(|e| context("error verifying connection", e))?;
        }
        Ok(cfg.json.clone())
    }

    fn new_user(cfg: &Config, username: &str, request: &NewUserRequest) -> Result<(), Error> {
        let secret = format!(">{}", password(&request.credential)?);
        let statement = request
            .creation_statements
            .iter()
            .map(|s| s.trim())
            .find(|s| !s.is_empty());
        let rules: Vec<String> = serde_json::from_str(statement.unwrap_or(DEFAULT_RULES)).map_err(|e| {
            Error::BadParameter(format!(
                "error unmarshalling REDIS rules in the creation statement JSON: {e}"
            ))
        })?;
        let mut args = vec!["ACL", "SETUSER", username, "ON", &secret];
        args.extend(rules.iter().map(String::as_str));
        command(&mut connect(cfg)?, &args).map(drop)
    }

    fn update_user(cfg: &Config, request: &UpdateUserRequest) -> Result<(), Error> {
        // Redis users do not expire: as in Vault, only a password changes.
        let Some(change) = &request.password else {
            return Ok(());
        };
        let name = &request.username;
        let mut conn = connect(cfg)?;
        if command(&mut conn, &["ACL", "GETUSER", name])? == Reply::Nil {
            return Err(Error::BadParameter(format!(
                "changeUserPassword for user {name} failed, user not found!"
            )));
        }
        let secret = format!(">{}", change.new_password);
        command(&mut conn, &["ACL", "SETUSER", name, "RESETPASS", &secret]).map(drop)
    }

    fn delete_user(cfg: &Config, username: &str, _statements: &[String]) -> Result<(), Error> {
        // Vault's plugin ignores revocation statements: ACL DELUSER.
        command(&mut connect(cfg)?, &["ACL", "DELUSER", username]).map(drop)
    }
}

export_driver!(Redis);

/// A connection logged in as the configured user.
fn connect(cfg: &Config) -> Result<Conn, Error> {
    let options = ConnectOptions {
        connect_timeout_ms: 0,
        io_timeout_ms: 0,
        tls: cfg.tls.clone(),
    };
    let mut conn = Conn::connect(&cfg.host, cfg.port, &options)?;
    command(&mut conn, &["AUTH", &cfg.username, &cfg.password])?;
    Ok(conn)
}

/// A RESP2 reply: what the driver needs to know of it.
#[derive(PartialEq)]
enum Reply {
    Value,
    Nil,
}

/// Send one command; a Redis error reply becomes `query-failed` with the
/// server's text (WRONGPASS, NOPERM, ERR ...).
fn command(conn: &mut Conn, args: &[&str]) -> Result<Reply, Error> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    conn.send(&out)?;
    reply(conn, 0)
}

fn reply(conn: &mut Conn, depth: usize) -> Result<Reply, Error> {
    let line = String::from_utf8_lossy(&conn.read_line()?).into_owned();
    let bad = || Error::Other(format!("malformed reply from the server: {:.40}", line));
    let (kind, rest) = (line.chars().next().ok_or_else(bad)?, line.get(1..).unwrap_or(""));
    let length = || rest.parse::<i64>().map_err(|_| bad());
    match kind {
        '+' => Ok(Reply::Value),
        '-' => Err(Error::QueryFailed(rest.to_string())),
        ':' => length().map(|_| Reply::Value),
        '$' | '*' if length()? < 0 => Ok(Reply::Nil),
        '$' => {
            let n = usize::try_from(length()?).map_err(|_| bad())?;
            conn.read_exact(n.checked_add(2).ok_or_else(bad)?)?;
            Ok(Reply::Value)
        }
        '*' if depth < MAX_DEPTH => {
            for _ in 0..length()? {
                reply(conn, depth + 1)?;
            }
            Ok(Reply::Value)
        }
        _ => Err(bad()),
    }
}
