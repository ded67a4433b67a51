//! The outbound allowlist of one component call: the hosts and ports the
//! mount's connection configuration names, and nothing else. Network
//! imports ask it before they connect (`tcp` today), so a driver can reach
//! the database an operator configured, never another address a hostile
//! or buggy component makes up.

use crate::bindings::driver::warden::plugin::types::Error;
use serde_json::Value;

/// Hosts (lower case, without IPv6 brackets) and ports a call may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbound {
    targets: Vec<(String, u16)>,
}

impl Outbound {
    /// The allowlist of a connection configuration: the host and port of its
    /// `connection_url` (a postgres:// or mysql:// URL, a Go MySQL DSN, or
    /// every host of a mongodb:// URL) and of its `host` and `port` fields
    /// (Vault's Redis plugin and others that do not use a URL).
    pub fn for_connection(details: &serde_json::Map<String, Value>) -> Outbound {
        let url = details.get("connection_url").and_then(Value::as_str).unwrap_or("");
        let mut targets = url_targets(url);
        targets.extend(host_and_port(details));
        Outbound::of(targets)
    }

    /// The allowlist of a connection URL (template) alone.
    pub fn for_url(url: &str) -> Outbound {
        Outbound::of(url_targets(url))
    }

    fn of(mut targets: Vec<(String, u16)>) -> Outbound {
        for target in &mut targets {
            target.0 = normalise(&target.0);
        }
        targets.dedup();
        Outbound { targets }
    }

    /// A stable text of the allowlist, for keying reused instances.
    pub fn key(&self) -> String {
        let parts: Vec<String> = self.targets.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        parts.join(",")
    }

    /// Ok when `host:port` is on the list; otherwise a refusal naming it.
    pub fn check(&self, host: &str, port: u16) -> Result<(), Error> {
        let host = normalise(host);
        if self.targets.iter().any(|(h, p)| *h == host && *p == port) {
            return Ok(());
        }
        Err(Error::NotPermitted(format!(
            "{host}:{port} is not the host this connection is configured for"
        )))
    }
}

/// The host and port of a postgres://, mysql:// or Go MySQL DSN template,
/// or every host of a mongodb:// one.
fn url_targets(url: &str) -> Vec<(String, u16)> {
    let mut targets: Vec<_> = super::sql::url_target(url).into_iter().collect();
    targets.extend(super::mongo::url_targets(url).unwrap_or_default());
    targets
}

fn host_and_port(details: &serde_json::Map<String, Value>) -> Option<(String, u16)> {
    let host = details.get("host")?.as_str()?;
    let port = match details.get("port")? {
        Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    let host = normalise(host);
    (!host.is_empty() && port != 0).then_some((host, port))
}

fn normalise(host: &str) -> String {
    host.trim().trim_matches(['[', ']']).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::Outbound;
    use serde_json::json;

    fn details(v: serde_json::Value) -> Option<Outbound> {
        Some(Outbound::for_connection(v.as_object().unwrap())).filter(|o| !o.targets.is_empty())
    }

    #[test]
    fn urls_name_their_hosts() {
        let pg = details(json!({"connection_url": "postgresql://{{username}}:{{password}}@DB:5433/x"})).unwrap();
        assert_eq!(pg.key(), "db:5433");
        let my = details(json!({"connection_url": "{{username}}:{{password}}@tcp(127.0.0.1)/"})).unwrap();
        assert_eq!(my.key(), "127.0.0.1:3306");
        let mongo = details(json!({"connection_url": "mongodb://{{username}}:{{password}}@a:1,b/admin"})).unwrap();
        assert!(mongo.check("a", 1).is_ok() && mongo.check("b", 27017).is_ok());
        assert!(mongo.check("c", 27017).is_err());
        let both = details(json!({"connection_url": "postgres://h/x", "host": "r", "port": 6379})).unwrap();
        assert_eq!(both.key(), "h:5432,r:6379");
        assert_eq!(details(json!({"connection_url": "redis://h:1"})), None);
    }

    #[test]
    fn host_and_port_fields_name_a_target() {
        let o = details(json!({"host": "Redis.Example", "port": 6380})).unwrap();
        assert!(o.check("redis.example", 6380).is_ok());
        assert!(o.check("REDIS.example", 6380).is_ok());
        assert!(o.check("redis.example", 6379).is_err());
        assert!(o.check("127.0.0.1", 6380).is_err());
        let o = details(json!({"host": "[::1]", "port": "6379"})).unwrap();
        assert!(o.check("::1", 6379).is_ok());
        assert_eq!(o.key(), "::1:6379");
    }

    #[test]
    fn nothing_usable_gives_no_allowlist() {
        assert_eq!(details(json!({"host": "db"})), None);
        assert_eq!(details(json!({"port": 6379})), None);
        assert_eq!(details(json!({"host": "", "port": 6379})), None);
        assert_eq!(details(json!({"host": "db", "port": 0})), None);
        assert_eq!(details(json!({"host": "db", "port": 70000})), None);
        assert_eq!(details(json!({"host": "db", "port": "x"})), None);
        assert_eq!(details(json!({"host": 1, "port": 1})), None);
    }
}
