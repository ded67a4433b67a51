//! The connection settings every SQL driver shares, read the way Vault's
//! SQLConnectionProducer reads them (loosely typed, with its defaults): the
//! connection_url with `{{username}}` and `{{password}}`, pool sizes and
//! lifetime, escaping, and the username template.

use serde_json::{Map, Value};

use crate::duration;

/// A parsed connection configuration.
#[derive(Debug, Clone)]
pub struct SqlConfig {
    /// The JSON as given, so keys this driver does not know are kept.
    raw: Map<String, Value>,
    /// The URL template, still holding `{{username}}`/`{{password}}`.
    pub connection_url: String,
    pub username: String,
    pub password: String,
    pub max_open: u32,
    pub max_idle: u32,
    pub max_lifetime_seconds: u64,
    pub username_template: Option<String>,
    pub disable_escaping: bool,
}

impl SqlConfig {
    /// Reads and checks a configuration, applying Vault's defaults: 4 open
    /// connections, idle connections as many as open, no lifetime limit.
    pub fn parse(json: &str) -> Result<SqlConfig, String> {
        let raw = match serde_json::from_str(json) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("the connection configuration must be a JSON object".into()),
            Err(e) => {
                return Err(format!("the connection configuration is not valid JSON: {e}"));
            }
        };
        let text = |key: &str| weak_string(&raw, key);
        let connection_url = text("connection_url")?;
        if connection_url.is_empty() {
            return Err("connection_url cannot be empty".into());
        }
        let (username, password) = (text("username")?, text("password")?);
        // As in Vault: the credentials must not smuggle in the placeholders.
        if [&username, &password]
            .iter()
            .any(|s| s.contains("{{username}}") || s.contains("{{password}}"))
        {
            return Err("username and/or password cannot contain the template variables".into());
        }
        let max_open = match weak_u32(&raw, "max_open_connections")? {
            0 => 4,
            n => n,
        };
        let max_idle = match weak_u32(&raw, "max_idle_connections")? {
            0 => max_open,
            n => n.min(max_open),
        };
        let max_lifetime_seconds = match raw.get("max_connection_lifetime") {
            None | Some(Value::Null) => Ok(0),
            Some(Value::String(s)) => duration::parse_seconds(s),
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .ok_or_else(|| format!("duration {n} must not be negative")),
            Some(other) => Err(format!("invalid duration {other}")),
        }
        .map_err(|e| format!("invalid max_connection_lifetime: {e}"))?;
        let username_template = Some(text("username_template")?).filter(|t| !t.is_empty());
        let disable_escaping = weak_bool(&raw, "disable_escaping")?;
        Ok(SqlConfig {
            raw,
            connection_url,
            username,
            password,
            max_open,
            max_idle,
            max_lifetime_seconds,
            username_template,
            disable_escaping,
        })
    }

    /// The URL to connect with: `{{username}}` and `{{password}}` filled in,
    /// percent-encoded unless disable_escaping. Its scheme must be one of
    /// `schemes`; the error never repeats the URL, which may hold a secret.
    pub fn url(&self, schemes: &[&str]) -> Result<String, String> {
        let scheme_ok = self
            .connection_url
            .split_once("://")
            .is_some_and(|(scheme, _)| schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)));
        if !scheme_ok {
            let list: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
            return Err(format!(
                "connection_url must be a URL starting with {}; key=value connection strings are not supported",
                list.join(" or ")
            ));
        }
        let escape = |s: &str| {
            if self.disable_escaping {
                s.to_string()
            } else {
                percent_encode(s)
            }
        };
        let (username, password) = (escape(&self.username), escape(&self.password));
        Ok(crate::statements::render(
            &self.connection_url,
            &[("username", &username), ("password", &password)],
        ))
    }

    /// Values an error message must never show: the password, raw and as it
    /// appears in the URL.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.password.clone(), percent_encode(&self.password)];
        secrets.retain(|s| !s.is_empty());
        secrets
    }

    /// The configuration to store: as given, with the settings above
    /// written back in their normal form.
    pub fn to_json(&self) -> String {
        let mut map = self.raw.clone();
        map.insert("connection_url".into(), self.connection_url.clone().into());
        for (key, value) in [("username", &self.username), ("password", &self.password)] {
            if map.contains_key(key) {
                map.insert(key.into(), value.clone().into());
            }
        }
        map.insert("max_open_connections".into(), self.max_open.into());
        map.insert("max_idle_connections".into(), self.max_idle.into());
        map.insert("max_connection_lifetime".into(), self.max_lifetime_seconds.into());
        map.insert("disable_escaping".into(), self.disable_escaping.into());
        if let Some(template) = &self.username_template {
            map.insert("username_template".into(), template.clone().into());
        }
        Value::Object(map).to_string()
    }
}

/// Percent-encodes every byte outside RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A string setting; numbers and booleans are taken as their text, as
/// Vault's weak decoding does.
pub(crate) fn weak_string(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

/// A count setting, given as a number or as text.
pub(crate) fn weak_u32(map: &Map<String, Value>, key: &str) -> Result<u32, String> {
    let bad = || format!("{key} must be a whole number from 0 to {}", u32::MAX);
    match map.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(bad),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(0),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// A flag, given as a boolean, as text Go's ParseBool accepts, or a number.
fn weak_bool(map: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => Ok(n.as_f64() != Some(0.0)),
        Some(Value::String(s)) => match s.trim() {
            "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            _ => Err(format!("{key} must be true or false")),
        },
        Some(_) => Err(format!("{key} must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: &[&str] = &["postgres", "postgresql"];

    #[test]
    fn defaults_like_vault() {
        let c = SqlConfig::parse(r#"{"connection_url":"postgres://h/db"}"#).expect("parse");
        assert_eq!((c.max_open, c.max_idle, c.max_lifetime_seconds), (4, 4, 0));
        assert!(!c.disable_escaping);
        assert_eq!(c.username_template, None);
        let c = SqlConfig::parse(
            r#"{"connection_url":"postgres://h","max_open_connections":"10","max_idle_connections":20,
                "max_connection_lifetime":"5m","disable_escaping":"true","username_template":"{{random 5}}"}"#,
        )
        .expect("parse");
        assert_eq!((c.max_open, c.max_idle, c.max_lifetime_seconds), (10, 10, 300));
        assert!(c.disable_escaping);
        assert_eq!(c.username_template.as_deref(), Some("{{random 5}}"));
        let c = SqlConfig::parse(r#"{"connection_url":"postgres://h","max_connection_lifetime":90}"#).expect("parse");
        assert_eq!(c.max_lifetime_seconds, 90);
    }

    #[test]
    fn rejects_bad_settings() {
        let err = |json: &str| SqlConfig::parse(json).expect_err(json);
        assert_eq!(err("{}"), "connection_url cannot be empty");
        assert_eq!(err(r#"{"connection_url":""}"#), "connection_url cannot be empty");
        assert!(err("[]").contains("JSON object"));
        assert!(err("{").contains("not valid JSON"));
        assert!(err(r#"{"connection_url":"x","password":"{{password}}"}"#).contains("template variables"));
        assert!(err(r#"{"connection_url":"x","max_open_connections":-1}"#).contains("max_open_connections"));
        assert!(err(r#"{"connection_url":"x","max_connection_lifetime":"soon"}"#).contains("max_connection_lifetime"));
        assert!(err(r#"{"connection_url":"x","disable_escaping":"maybe"}"#).contains("disable_escaping"));
    }

    #[test]
    fn renders_and_escapes_the_url() {
        let json = r#"{"connection_url":"postgresql://{{username}}:{{password}}@db:5432/app?sslmode=disable",
                       "username":"vault admin","password":"p@ss:w/rd%"}"#;
        let c = SqlConfig::parse(json).expect("parse");
        assert_eq!(
            c.url(PG).as_deref(),
            Ok("postgresql://vault%20admin:p%40ss%3Aw%2Frd%25@db:5432/app?sslmode=disable")
        );
        assert_eq!(
            c.secrets(),
            vec!["p@ss:w/rd%".to_string(), "p%40ss%3Aw%2Frd%25".to_string()]
        );
        let raw =
            SqlConfig::parse(&json.replace("\"password\"", "\"disable_escaping\":true,\"password\"")).expect("parse");
        assert_eq!(
            raw.url(PG).as_deref(),
            Ok("postgresql://vault admin:p@ss:w/rd%@db:5432/app?sslmode=disable")
        );
        assert_eq!(percent_encode("aZ09-._~ é"), "aZ09-._~%20%C3%A9");
    }

    #[test]
    fn requires_a_url_scheme() {
        let dsn = SqlConfig::parse(r#"{"connection_url":"host=db user={{username}} password=secret"}"#).expect("parse");
        let err = dsn.url(PG).expect_err("dsn");
        assert!(err.contains("postgres:// or postgresql://"), "{err}");
        assert!(!err.contains("secret"));
        let upper = SqlConfig::parse(r#"{"connection_url":"POSTGRES://h/db"}"#).expect("parse");
        assert!(upper.url(PG).is_ok());
        let mysql = SqlConfig::parse(r#"{"connection_url":"mysql://h/db"}"#).expect("parse");
        assert!(mysql.url(PG).is_err());
    }

    #[test]
    fn normalised_json_keeps_unknown_keys() {
        let c = SqlConfig::parse(
            r#"{"connection_url":"postgres://{{username}}@h","username":"u","password":"p",
                "max_idle_connections":"2","allowed_roles":["a"],"password_authentication":"scram-sha-256"}"#,
        )
        .expect("parse");
        let v: Value = serde_json::from_str(&c.to_json()).expect("json");
        assert_eq!(v["connection_url"], "postgres://{{username}}@h");
        assert_eq!(v["password"], "p");
        assert_eq!(v["max_open_connections"], 4);
        assert_eq!(v["max_idle_connections"], 2);
        assert_eq!(v["max_connection_lifetime"], 0);
        assert_eq!(v["disable_escaping"], false);
        assert_eq!(v["allowed_roles"][0], "a");
        assert_eq!(v["password_authentication"], "scram-sha-256");
        // Normalising twice changes nothing.
        assert_eq!(SqlConfig::parse(&c.to_json()).expect("parse").to_json(), c.to_json());
    }
}
