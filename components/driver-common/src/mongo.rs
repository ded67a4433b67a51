//! Vault's MongoDB driver logic that needs no server: the connection
//! settings (connection_url with `{{username}}`/`{{password}}`, write_concern,
//! timeouts, username_template), the JSON creation and revocation statements
//! (`{"db": "admin", "roles": [{"role": "readWrite"}, "read"]}`), the user
//! management commands as extended JSON, and reading a command's reply.
//! Commands are written by hand, not through a JSON map, because MongoDB
//! takes the first key of a command as its name.

use serde_json::{Map, Value};

use crate::duration;
use crate::sql_config::{percent_encode, weak_string};
use crate::statements::{decode_base64, render};

/// Vault's default username template for MongoDB.
pub const MONGODB_DEFAULT: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 15) (.RoleName | truncate 15) (random 20) (unix_time) | replace "." "-" | truncate 100 }}"#;

/// The authentication database when a statement or URL names none.
pub const DEFAULT_DB: &str = "admin";

/// Server error code for a user that does not exist (dropUser of a user
/// already gone).
pub const USER_NOT_FOUND: i64 = 11;
/// Server error code for a role that does not exist.
pub const ROLE_NOT_FOUND: i64 = 31;

/// A parsed connection configuration.
#[derive(Debug, Clone)]
pub struct MongoConfig {
    raw: Map<String, Value>,
    /// The URL template, still holding `{{username}}`/`{{password}}`.
    pub connection_url: String,
    pub username: String,
    pub password: String,
    /// The write concern document as JSON, when one is configured.
    pub write_concern: Option<String>,
    pub connect_timeout_ms: u64,
    pub server_selection_timeout_ms: u64,
    pub socket_timeout_ms: u64,
    pub username_template: Option<String>,
}

impl MongoConfig {
    /// Reads and checks a configuration the way Vault's MongoDB connection
    /// producer does (weakly typed values, durations as Go strings or seconds).
    pub fn parse(json: &str) -> Result<MongoConfig, String> {
        let raw = match serde_json::from_str(json) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("the connection configuration must be a JSON object".into()),
            Err(e) => return Err(format!("the connection configuration is not valid JSON: {e}")),
        };
        let text = |key: &str| weak_string(&raw, key);
        let connection_url = text("connection_url")?;
        if connection_url.is_empty() {
            return Err("connection_url cannot be empty".into());
        }
        let (username, password) = (text("username")?, text("password")?);
        if [&username, &password]
            .iter()
            .any(|s| s.contains("{{username}}") || s.contains("{{password}}"))
        {
            return Err("username and/or password cannot contain the template variables".into());
        }
        for key in ["tls_certificate_key", "tls_ca"] {
            if !text(key)?.is_empty() {
                return Err(format!("{key} is not supported yet"));
            }
        }
        let write_concern = match text("write_concern")?.as_str() {
            "" => None,
            wc => Some(write_concern(wc)?),
        };
        let millis = |key: &str| -> Result<u64, String> {
            let secs = match raw.get(key) {
                None | Some(Value::Null) => 0,
                Some(Value::Number(n)) => n
                    .as_u64()
                    .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                    .ok_or_else(|| format!("{key} must be >= 0"))?,
                Some(Value::String(s)) => duration::parse_seconds(s).map_err(|e| format!("invalid {key}: {e}"))?,
                Some(_) => return Err(format!("invalid {key}")),
            };
            Ok(secs.saturating_mul(1000))
        };
        Ok(MongoConfig {
            connect_timeout_ms: millis("connect_timeout")?,
            server_selection_timeout_ms: millis("server_selection_timeout")?,
            socket_timeout_ms: millis("socket_timeout")?,
            username_template: Some(text("username_template")?).filter(|t| !t.is_empty()),
            raw,
            connection_url,
            username,
            password,
            write_concern,
        })
    }

    /// The URL to connect with: `{{username}}` and `{{password}}` filled in,
    /// percent-encoded. The error never repeats the URL, which may hold a
    /// password.
    pub fn url(&self) -> Result<String, String> {
        let scheme_ok = self
            .connection_url
            .split_once("://")
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("mongodb"));
        if !scheme_ok {
            return Err("connection_url must be a mongodb:// URL (mongodb+srv:// is not supported)".into());
        }
        let (username, password) = (percent_encode(&self.username), percent_encode(&self.password));
        Ok(render(
            &self.connection_url,
            &[("username", &username), ("password", &password)],
        ))
    }

    /// The database the URL names (`/db`), else "admin": where Vault changes
    /// a user's password.
    pub fn url_database(&self) -> String {
        let after_scheme = self.connection_url.split_once("://").map_or("", |(_, r)| r);
        let path = after_scheme.split('?').next().unwrap_or("");
        let db = path.split_once('/').map_or("", |(_, db)| db);
        if db.is_empty() {
            DEFAULT_DB.to_string()
        } else {
            db.to_string()
        }
    }

    /// Values an error message must never show: the configured password, raw
    /// and percent-encoded, and a password written into the URL itself.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.password.clone(), percent_encode(&self.password)];
        if let Some(p) = url_password(&self.connection_url) {
            secrets.push(percent_decode(&p));
            secrets.push(p);
        }
        secrets.retain(|s| !s.is_empty() && !s.contains("{{"));
        secrets
    }

    /// The configuration to store: as given.
    pub fn to_json(&self) -> String {
        Value::Object(self.raw.clone()).to_string()
    }
}

/// The password of a URL's user info, if there is one.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo.split_once(':').map(|(_, p)| p.to_string())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Vault's write_concern setting, JSON or base64 of JSON, with Go's
/// case-insensitive field names `W`, `WMode`, `WTimeout`, `FSync`, `J`, as
/// a MongoDB writeConcern document (`w` defaults to "majority").
pub fn write_concern(input: &str) -> Result<String, String> {
    let decoded = decode_base64(input.trim()).and_then(|b| String::from_utf8(b).ok());
    let text = decoded.as_deref().unwrap_or(input);
    let map = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err("error unmarshalling write_concern: not a JSON object".into()),
        Err(e) => return Err(format!("error unmarshalling write_concern: {e}")),
    };
    let field = |name: &str| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    let int = |name: &str| -> Result<i64, String> {
        match field(name) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| format!("error unmarshalling write_concern: {name} must be a number")),
        }
    };
    let flag = |name: &str| -> Result<bool, String> {
        match field(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!(
                "error unmarshalling write_concern: {name} must be true or false"
            )),
        }
    };
    let w = match (int("W")?, field("WMode")) {
        (n, _) if n != 0 => Value::from(n),
        (_, Some(Value::String(mode))) if !mode.is_empty() => Value::from(mode.as_str()),
        (_, Some(Value::String(_)) | None | Some(Value::Null)) => Value::from("majority"),
        (_, Some(_)) => return Err("error unmarshalling write_concern: WMode must be a string".into()),
    };
    let mut doc = format!("{{\"w\":{w},\"j\":{}", flag("FSync")? || flag("J")?);
    let timeout = int("WTimeout")?;
    if timeout > 0 {
        doc.push_str(&format!(",\"wtimeout\":{timeout}"));
    }
    doc.push('}');
    Ok(doc)
}

/// A creation statement: the database to create the user in and its roles,
/// each either a role name (of that database) or `{"role", "db"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreationStatement {
    pub db: String,
    pub roles: Vec<Role>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub role: String,
    /// Empty: the database the user is created in.
    pub db: String,
}

impl Role {
    /// As MongoDB's createUser takes it: a plain name, or a document.
    pub fn to_json(&self) -> String {
        if self.db.is_empty() {
            json_string(&self.role)
        } else {
            format!(
                "{{\"role\":{},\"db\":{}}}",
                json_string(&self.role),
                json_string(&self.db)
            )
        }
    }
}

/// Reads a roles array: `["readWrite", {"role": "read", "db": "foo"}]`.
pub fn parse_roles(json: &str) -> Result<Vec<Role>, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("roles is not valid JSON: {e}"))?;
    roles_of(&value)
}

fn roles_of(value: &Value) -> Result<Vec<Role>, String> {
    let Value::Array(items) = value else {
        return Err("roles must be a JSON array".into());
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(role) if !role.is_empty() => Ok(Role {
                role: role.clone(),
                db: String::new(),
            }),
            Value::Object(doc) => {
                let role = match doc.get("role") {
                    Some(Value::String(r)) if !r.is_empty() => r.clone(),
                    _ => return Err(format!("a role document needs a \"role\" name: {item}")),
                };
                let db = match doc.get("db") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(db)) => db.clone(),
                    Some(_) => return Err(format!("\"db\" of a role must be a string: {item}")),
                };
                Ok(Role { role, db })
            }
            other => Err(format!(
                "a role must be a name or a {{\"role\", \"db\"}} document, not {other}"
            )),
        })
        .collect()
}

/// The roles as MongoDB's roles array.
pub fn roles_json(roles: &[Role]) -> String {
    let items: Vec<String> = roles.iter().map(Role::to_json).collect();
    format!("[{}]", items.join(","))
}

impl CreationStatement {
    /// Reads the first creation statement, as Vault does; "db" defaults to
    /// "admin" and the roles array must not be empty.
    pub fn parse(statements: &[String]) -> Result<CreationStatement, String> {
        let first = statements
            .iter()
            .find(|s| !s.trim().is_empty())
            .ok_or("empty creation statements")?;
        let value: Value =
            serde_json::from_str(first).map_err(|e| format!("the creation statement is not valid JSON: {e}"))?;
        let Value::Object(doc) = &value else {
            return Err("the creation statement must be a JSON object".into());
        };
        let db = database_of(doc)?;
        let roles = match doc.get("roles") {
            None | Some(Value::Null) => Vec::new(),
            Some(roles) => roles_of(roles)?,
        };
        if roles.is_empty() {
            return Err("roles array is required in creation statement".into());
        }
        Ok(CreationStatement { db, roles })
    }
}

/// The database a revocation statement names: none means "admin", one is
/// `{"db": "..."}`, more are an error (as in Vault).
pub fn revocation_database(statements: &[String]) -> Result<String, String> {
    let statements: Vec<&String> = statements.iter().filter(|s| !s.trim().is_empty()).collect();
    match statements.as_slice() {
        [] => Ok(DEFAULT_DB.to_string()),
        [one] => match serde_json::from_str::<Value>(one) {
            Ok(Value::Object(doc)) => database_of(&doc),
            Ok(_) => Err("the revocation statement must be a JSON object".into()),
            Err(e) => Err(format!("the revocation statement is not valid JSON: {e}")),
        },
        more => Err(format!("expected 0 or 1 revocation statements, got {}", more.len())),
    }
}

fn database_of(doc: &Map<String, Value>) -> Result<String, String> {
    match doc.get("db") {
        None | Some(Value::Null) => Ok(DEFAULT_DB.to_string()),
        Some(Value::String(db)) if db.is_empty() => Ok(DEFAULT_DB.to_string()),
        Some(Value::String(db)) => Ok(db.clone()),
        Some(_) => Err("\"db\" must be a string".into()),
    }
}

pub fn json_string(s: &str) -> String {
    Value::from(s).to_string()
}

fn with_write_concern(mut cmd: String, write_concern: Option<&str>) -> String {
    if let Some(wc) = write_concern {
        cmd.push_str(",\"writeConcern\":");
        cmd.push_str(wc);
    }
    cmd.push('}');
    cmd
}

/// `createUser` with a password and roles.
pub fn create_user(username: &str, password: &str, roles: &[Role], write_concern: Option<&str>) -> String {
    let cmd = format!(
        "{{\"createUser\":{},\"pwd\":{},\"roles\":{}",
        json_string(username),
        json_string(password),
        roles_json(roles)
    );
    with_write_concern(cmd, write_concern)
}

/// `updateUser` setting a new password.
pub fn update_password(username: &str, password: &str, write_concern: Option<&str>) -> String {
    let cmd = format!(
        "{{\"updateUser\":{},\"pwd\":{}",
        json_string(username),
        json_string(password)
    );
    with_write_concern(cmd, write_concern)
}

/// `dropUser`; Vault's default write concern for it is majority.
pub fn drop_user(username: &str, write_concern: Option<&str>) -> String {
    let cmd = format!("{{\"dropUser\":{}", json_string(username));
    with_write_concern(cmd, Some(write_concern.unwrap_or("{\"w\":\"majority\"}")))
}

/// A refused command: the server's code, code name and message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: i64,
    pub code_name: String,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} {})", self.message, self.code, self.code_name)
    }
}

/// Reads a command's reply: `Ok` when `ok` is 1, else the refusal.
pub fn check_reply(reply: &str) -> Result<(), Refusal> {
    let value: Value = serde_json::from_str(reply).map_err(|e| Refusal {
        code: 0,
        code_name: String::new(),
        message: format!("unreadable reply: {e}"),
    })?;
    let ok = value.get("ok").and_then(Value::as_f64).unwrap_or(0.0);
    if ok == 1.0 {
        return Ok(());
    }
    Err(Refusal {
        code: value.get("code").and_then(Value::as_i64).unwrap_or(0),
        code_name: value
            .get("codeName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        message: value
            .get("errmsg")
            .and_then(Value::as_str)
            .unwrap_or("command failed")
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_url() {
        let c = MongoConfig::parse(
            r#"{"connection_url":"mongodb://{{username}}:{{password}}@127.0.0.1:27017/admin",
                "username":"vault","password":"p@ss/w:rd","connect_timeout":"2s","socket_timeout":5}"#,
        )
        .expect("parse");
        assert_eq!(
            c.url().as_deref(),
            Ok("mongodb://vault:p%40ss%2Fw%3Ard@127.0.0.1:27017/admin")
        );
        assert_eq!(
            (c.connect_timeout_ms, c.socket_timeout_ms, c.server_selection_timeout_ms),
            (2000, 5000, 0)
        );
        assert_eq!(c.write_concern, None);
        assert_eq!(c.url_database(), "admin");
        assert!(c.secrets().contains(&"p@ss/w:rd".to_string()));
        assert!(c.secrets().contains(&"p%40ss%2Fw%3Ard".to_string()));
        let plain =
            MongoConfig::parse(r#"{"connection_url":"mongodb://root:s%3Acret@h:1/?authSource=admin"}"#).expect("parse");
        assert_eq!(
            plain.url().as_deref(),
            Ok("mongodb://root:s%3Acret@h:1/?authSource=admin")
        );
        assert_eq!(plain.secrets(), vec!["s:cret".to_string(), "s%3Acret".to_string()]);
        assert_eq!(plain.url_database(), "admin");
        let db = MongoConfig::parse(r#"{"connection_url":"mongodb://h/foo?x=1"}"#).expect("parse");
        assert_eq!(db.url_database(), "foo");
    }

    #[test]
    fn config_errors() {
        let err = |json: &str| MongoConfig::parse(json).expect_err(json);
        assert_eq!(err("{}"), "connection_url cannot be empty");
        assert!(err(r#"{"connection_url":"x","tls_ca":"pem"}"#).contains("not supported"));
        assert!(err(r#"{"connection_url":"x","connect_timeout":"-1s"}"#).contains("connect_timeout"));
        assert!(err(r#"{"connection_url":"x","write_concern":"nope"}"#).contains("write_concern"));
        let srv = MongoConfig::parse(r#"{"connection_url":"mongodb+srv://c.example.com/"}"#).expect("parse");
        assert!(srv.url().is_err());
    }

    #[test]
    fn write_concern_like_vault() {
        assert_eq!(
            write_concern(r#"{"wmode":"majority","wtimeout":5000}"#).as_deref(),
            Ok(r#"{"w":"majority","j":false,"wtimeout":5000}"#)
        );
        assert_eq!(
            write_concern(r#"{"W":1,"J":true}"#).as_deref(),
            Ok(r#"{"w":1,"j":true}"#)
        );
        // base64 of {"W":2}
        assert_eq!(write_concern("eyJXIjoyfQ==").as_deref(), Ok(r#"{"w":2,"j":false}"#));
        assert_eq!(write_concern("{}").as_deref(), Ok(r#"{"w":"majority","j":false}"#));
    }

    #[test]
    fn creation_statements() {
        let s = CreationStatement::parse(&[
            r#"{"db":"admin","roles":[{"role":"readWrite"},{"role":"read","db":"foo"},"dbAdmin"]}"#.to_string(),
        ])
        .expect("parse");
        assert_eq!(s.db, "admin");
        assert_eq!(
            roles_json(&s.roles),
            r#"["readWrite",{"role":"read","db":"foo"},"dbAdmin"]"#
        );
        let s = CreationStatement::parse(&[r#"{"roles":["read"]}"#.to_string()]).expect("parse");
        assert_eq!(s.db, "admin");
        let err = |s: &str| CreationStatement::parse(&[s.to_string()]).expect_err(s);
        assert!(err("not json").contains("not valid JSON"));
        assert_eq!(err(r#"{"db":"x"}"#), "roles array is required in creation statement");
        assert!(err(r#"{"roles":[5]}"#).contains("a role must be"));
        assert!(err(r#"{"roles":[{"db":"x"}]}"#).contains("\"role\""));
        assert!(CreationStatement::parse(&[]).is_err());
    }

    #[test]
    fn revocation_statements() {
        assert_eq!(revocation_database(&[]).as_deref(), Ok("admin"));
        assert_eq!(revocation_database(&[r#"{"db":"foo"}"#.into()]).as_deref(), Ok("foo"));
        assert_eq!(revocation_database(&["{}".into()]).as_deref(), Ok("admin"));
        assert!(revocation_database(&["{}".into(), "{}".into()]).is_err());
        assert!(revocation_database(&["[".into()]).is_err());
    }

    #[test]
    fn commands_name_themselves_first() {
        let roles = parse_roles(r#"["readWrite",{"role":"read","db":"bar"}]"#).expect("roles");
        assert_eq!(
            create_user("u\"1", "p", &roles, None),
            r#"{"createUser":"u\"1","pwd":"p","roles":["readWrite",{"role":"read","db":"bar"}]}"#
        );
        assert_eq!(
            update_password("u", "p2", Some(r#"{"w":1}"#)),
            r#"{"updateUser":"u","pwd":"p2","writeConcern":{"w":1}}"#
        );
        assert_eq!(
            drop_user("u", None),
            r#"{"dropUser":"u","writeConcern":{"w":"majority"}}"#
        );
        assert!(parse_roles("[").is_err());
        assert!(parse_roles("{}").is_err());
    }

    #[test]
    fn replies() {
        assert_eq!(check_reply(r#"{"ok":1.0}"#), Ok(()));
        let r = check_reply(r#"{"ok":0.0,"errmsg":"User u@admin not found","code":11,"codeName":"UserNotFound"}"#)
            .expect_err("refused");
        assert_eq!(r.code, USER_NOT_FOUND);
        assert_eq!(r.to_string(), "User u@admin not found (11 UserNotFound)");
    }
}
