//! What Vault's MySQL plugin family shares and that needs no host: the
//! default statements and username templates per plugin name, Go MySQL
//! DSNs (`user:pass@tcp(host:port)/db?params`, as go-sql-driver parses
//! them), the TLS settings (tls_ca, tls_certificate_key, tls_server_name,
//! tls_skip_verify), and turning all that into the mysql:// URL the host's
//! pools understand.

use serde_json::Value;

use crate::sql_config::{SqlConfig, percent_encode};
use crate::statements::render;

/// Vault's default revocation (plugins/database/mysql/mysql.go).
pub const DEFAULT_REVOCATION: &str =
    "REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{{name}}'@'%'; DROP USER '{{name}}'@'%'";
/// Vault's default for password changes and root rotation.
pub const DEFAULT_ROTATE: &str = "ALTER USER '{{username}}'@'%' IDENTIFIED BY '{{password}}';";

/// Vault's DefaultUserNameTemplate (mysql-database-plugin): at most 32
/// characters, MySQL 5.7's limit.
pub const DEFAULT_TEMPLATE: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 10) (.RoleName | truncate 10) (random 20) (unix_time) | truncate 32 }}"#;
/// Vault's DefaultLegacyUserNameTemplate (mysql-aurora, mysql-rds and
/// mysql-legacy): at most 16 characters, the limit before MySQL 5.7.
/// Vault's text has a third `%s` without an argument, which Go renders as
/// `%!s(MISSING)` and the `truncate 16` always cuts off (the part before it
/// is at least 23 characters); this equivalent gives the same names.
pub const LEGACY_TEMPLATE: &str = r#"{{ printf "v-%s-%s" (.RoleName | truncate 4) (random 20) | truncate 16 }}"#;

/// The plugin names Vault registers its MySQL plugin under, and each one's
/// default username template.
pub const PLUGINS: [(&str, &str); 4] = [
    ("mysql-database-plugin", DEFAULT_TEMPLATE),
    ("mysql-aurora-database-plugin", LEGACY_TEMPLATE),
    ("mysql-rds-database-plugin", LEGACY_TEMPLATE),
    ("mysql-legacy-database-plugin", LEGACY_TEMPLATE),
];

/// The default username template for a plugin name; names other than
/// Vault's four (a copy registered from a plugin directory) get the
/// mysql-database-plugin's.
pub fn default_template(plugin_name: &str) -> &'static str {
    PLUGINS
        .iter()
        .find(|(name, _)| *name == plugin_name)
        .map_or(DEFAULT_TEMPLATE, |(_, template)| template)
}

/// Quotes a MySQL string literal: `'` and `\` are escaped.
pub fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A Go MySQL DSN, split as go-sql-driver's ParseDSN splits it:
/// `[user[:password]@][net[(addr)]]/dbname[?param1=value1&...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoDsn {
    pub user: String,
    pub password: Option<String>,
    pub net: String,
    pub addr: String,
    pub dbname: String,
    pub params: Vec<(String, String)>,
}

impl GoDsn {
    pub fn parse(dsn: &str) -> Result<GoDsn, String> {
        // The last '/' (the password or the address may hold one), the
        // last '@' before it, the first ':' before that.
        let slash = dsn
            .rfind('/')
            .ok_or("invalid DSN: missing the slash separating the database name")?;
        let (head, tail) = (&dsn[..slash], &dsn[slash + 1..]);
        let (userinfo, net) = match head.rfind('@') {
            Some(at) => (Some(&head[..at]), &head[at + 1..]),
            None => (None, head),
        };
        let (user, password) = match userinfo {
            None => (String::new(), None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (user.to_string(), Some(pass.to_string())),
                None => (u.to_string(), None),
            },
        };
        let (net, addr) = match net.find('(') {
            None => (net.to_string(), String::new()),
            Some(open) => {
                let Some(addr) = net[open + 1..].strip_suffix(')') else {
                    return Err("invalid DSN: network address not terminated (missing closing brace)".into());
                };
                (net[..open].to_string(), addr.to_string())
            }
        };
        let (dbname, query) = tail.split_once('?').unwrap_or((tail, ""));
        let dbname = percent_decode(dbname).ok_or_else(|| format!("invalid dbname {dbname:?}"))?;
        let mut params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("invalid DSN: invalid parameter {k:?}", k = pair))?;
            let v = percent_decode(&v.replace('+', " ")).ok_or_else(|| format!("invalid value for {k}"))?;
            params.push((k.to_string(), v));
        }
        let net = if net.is_empty() { "tcp".to_string() } else { net };
        let addr = match (net.as_str(), addr.is_empty()) {
            ("tcp", true) => "127.0.0.1:3306".to_string(),
            ("tcp", false) if !has_port(&addr) => format!("{addr}:3306"),
            _ => addr,
        };
        Ok(GoDsn {
            user,
            password,
            net,
            addr,
            dbname,
            params,
        })
    }
}

fn has_port(addr: &str) -> bool {
    match addr.rsplit_once(':') {
        Some((host, port)) => (!host.contains(':') || host.ends_with(']')) && port.parse::<u16>().is_ok(),
        None => false,
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Vault's TLS settings of a MySQL connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// PEM of the CA that signs the server's certificate.
    pub ca: String,
    /// PEM holding the client certificate and its private key.
    pub certificate_key: String,
    pub server_name: String,
    pub skip_verify: bool,
}

impl Tls {
    pub fn parse(config: &str) -> Result<Tls, String> {
        let map = match serde_json::from_str(config) {
            Ok(Value::Object(map)) => map,
            _ => return Err("the connection configuration must be a JSON object".into()),
        };
        let text = |key: &str| match map.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("{key} must be a string")),
        };
        let skip_verify = match map.get("tls_skip_verify") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => match s.trim() {
                "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                _ => return Err("tls_skip_verify must be true or false".into()),
            },
            Some(_) => return Err("tls_skip_verify must be true or false".into()),
        };
        let tls = Tls {
            ca: text("tls_ca")?,
            certificate_key: text("tls_certificate_key")?,
            server_name: text("tls_server_name")?,
            skip_verify,
        };
        // Vault's checks, without parsing the certificates (the host's TLS
        // library does that when it connects).
        if !tls.ca.is_empty() && !tls.ca.contains("-----BEGIN CERTIFICATE-----") {
            return Err("failed to append CA to client options".into());
        }
        let has_pair = |pem: &str| pem.contains("-----BEGIN CERTIFICATE-----") && pem.contains("PRIVATE KEY-----");
        if !tls.certificate_key.is_empty() && !has_pair(&tls.certificate_key) {
            return Err(
                "unable to load tls_certificate_key_data: it must hold a PEM certificate and its private key".into(),
            );
        }
        Ok(tls)
    }

    /// Whether the settings ask for TLS (Vault turns it on when a CA or a
    /// client certificate is given).
    pub fn enabled(&self) -> bool {
        !self.ca.is_empty() || !self.certificate_key.is_empty()
    }

    /// Secrets an error must never show.
    pub fn secrets(&self) -> Vec<String> {
        [&self.certificate_key]
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string())
            .collect()
    }
}

/// The mysql:// URL for a connection: the connection_url (a Go DSN or a
/// mysql:// URL) with the username and password filled in and the TLS
/// settings added as the host's query options (`ssl-mode`, and PEM text in
/// `ssl-ca-pem`, `ssl-cert-pem`, `ssl-key-pem`).
///
/// A Go DSN is parsed before the credentials go in, and its fields are
/// taken literally as the Go driver does (escaping applies to mysql://
/// URLs only). Of a DSN's parameters, `tls`, `charset` and `collation`
/// carry over; the Go driver's client-side knobs (parseTime, timeout, ...)
/// have no meaning here and are dropped. Only TCP addresses are allowed.
pub fn url(cfg: &SqlConfig, tls: &Tls) -> Result<String, String> {
    let is_url = cfg
        .connection_url
        .split_once("://")
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("mysql") || scheme.eq_ignore_ascii_case("mariadb"));
    let (base, host, mut ssl_mode, mut params) = if is_url {
        let base = cfg.url(&["mysql", "mariadb"])?;
        let host = url_host(&base);
        (base, host, None, Vec::new())
    } else if cfg.connection_url.contains("://") {
        return Err("connection_url must be a Go MySQL DSN (user:password@tcp(host:port)/db) or a mysql:// URL".into());
    } else {
        let dsn = GoDsn::parse(&cfg.connection_url).map_err(|e| format!("unable to parse connection_url: {e}"))?;
        if dsn.net != "tcp" {
            return Err(format!(
                "connection_url: network {:?} is not supported; use tcp(host:port)",
                dsn.net
            ));
        }
        let creds = [("username", cfg.username.as_str()), ("password", cfg.password.as_str())];
        let user = render(&dsn.user, &creds);
        let mut base = format!("mysql://{}", percent_encode(&user));
        if let Some(password) = &dsn.password {
            base.push(':');
            base.push_str(&percent_encode(&render(password, &creds)));
        }
        base.push('@');
        base.push_str(&dsn.addr);
        base.push('/');
        base.push_str(&percent_encode(&dsn.dbname));
        let mut ssl_mode = None;
        let mut params = Vec::new();
        for (key, value) in &dsn.params {
            match key.as_str() {
                "tls" => {
                    ssl_mode = Some(match value.as_str() {
                        "true" => "VERIFY_IDENTITY",
                        "skip-verify" => "REQUIRED",
                        "preferred" => "PREFERRED",
                        "false" => "DISABLED",
                        other => return Err(format!("connection_url: unknown tls setting {other:?}")),
                    });
                }
                "charset" => {
                    let first = value.split(',').next().unwrap_or_default();
                    params.push(("charset".to_string(), first.to_string()));
                }
                "collation" => params.push(("collation".to_string(), value.clone())),
                _ => {}
            }
        }
        let host = dsn.addr.rsplit_once(':').map_or(dsn.addr.as_str(), |(h, _)| h);
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        (base, host, ssl_mode, params)
    };
    if tls.enabled() {
        ssl_mode = Some(if tls.skip_verify { "REQUIRED" } else { "VERIFY_IDENTITY" });
        if !tls.ca.is_empty() {
            params.push(("ssl-ca-pem".into(), tls.ca.clone()));
        }
        if !tls.certificate_key.is_empty() {
            params.push(("ssl-cert-pem".into(), tls.certificate_key.clone()));
            params.push(("ssl-key-pem".into(), tls.certificate_key.clone()));
        }
    } else if tls.skip_verify && ssl_mode == Some("VERIFY_IDENTITY") {
        ssl_mode = Some("REQUIRED");
    }
    if !tls.server_name.is_empty() && !tls.server_name.eq_ignore_ascii_case(&host) {
        // The host's TLS client checks the certificate against the host it
        // connects to; it cannot check another name.
        return Err(format!(
            "tls_server_name {:?} differs from the connection's host; only the host's own name can be verified",
            tls.server_name
        ));
    }
    if let Some(mode) = ssl_mode {
        params.insert(0, ("ssl-mode".to_string(), mode.to_string()));
    }
    if params.is_empty() {
        return Ok(base);
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    let separator = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{separator}{}", query.join("&")))
}

/// The host of a mysql:// URL, lower case, without IPv6 brackets.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if hostport.starts_with('[') {
        hostport.split_once(']').map_or(hostport, |(h, _)| h)
    } else {
        hostport.split(':').next().unwrap_or_default()
    };
    host.trim_matches(['[', ']']).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> SqlConfig {
        SqlConfig::parse(json).expect("config")
    }

    #[test]
    fn parses_go_dsns_like_go_sql_driver() {
        let d = GoDsn::parse("{{username}}:{{password}}@tcp(127.0.0.1:3306)/").expect("dsn");
        assert_eq!(d.user, "{{username}}");
        assert_eq!(d.password.as_deref(), Some("{{password}}"));
        assert_eq!(
            (d.net.as_str(), d.addr.as_str(), d.dbname.as_str()),
            ("tcp", "127.0.0.1:3306", "")
        );
        let d = GoDsn::parse("u:p@ss:w/rd@tcp(db)/app%20x?tls=skip-verify&parseTime=true").expect("dsn");
        assert_eq!((d.user.as_str(), d.password.as_deref()), ("u", Some("p@ss:w/rd")));
        assert_eq!((d.addr.as_str(), d.dbname.as_str()), ("db:3306", "app x"));
        assert_eq!(d.params[0], ("tls".to_string(), "skip-verify".to_string()));
        let d = GoDsn::parse("/db").expect("dsn");
        assert_eq!((d.user.as_str(), d.addr.as_str()), ("", "127.0.0.1:3306"));
        let d = GoDsn::parse("root@tcp([::1]:3310)/").expect("dsn");
        assert_eq!(
            (d.user.as_str(), d.password, d.addr.as_str()),
            ("root", None, "[::1]:3310")
        );
        assert!(GoDsn::parse("u:p@tcp(h:1").is_err());
        assert!(GoDsn::parse("u:p@tcp(h:1/db").is_err());
    }

    #[test]
    fn dsn_becomes_a_url_with_literal_credentials() {
        let c = cfg(
            r#"{"connection_url":"{{username}}:{{password}}@tcp(127.0.0.1:3307)/app?tls=false&timeout=5s&charset=utf8mb4,utf8",
                "username":"vault admin","password":"p@ss:w/rd%'"}"#,
        );
        assert_eq!(
            url(&c, &Tls::default()).as_deref(),
            Ok("mysql://vault%20admin:p%40ss%3Aw%2Frd%25%27@127.0.0.1:3307/app?ssl-mode=DISABLED&charset=utf8mb4")
        );
        let bare = cfg(r#"{"connection_url":"root@tcp(db)/"}"#);
        assert_eq!(url(&bare, &Tls::default()).as_deref(), Ok("mysql://root@db:3306/"));
        let unix = cfg(r#"{"connection_url":"u@unix(/run/mysqld/mysqld.sock)/"}"#);
        assert!(url(&unix, &Tls::default()).expect_err("unix").contains("network"));
        let pg = cfg(r#"{"connection_url":"postgres://h/db"}"#);
        assert!(url(&pg, &Tls::default()).is_err());
    }

    #[test]
    fn mysql_urls_are_escaped_unless_disabled() {
        let json =
            r#"{"connection_url":"mysql://{{username}}:{{password}}@db:3306/","username":"a b","password":"p@w"}"#;
        assert_eq!(
            url(&cfg(json), &Tls::default()).as_deref(),
            Ok("mysql://a%20b:p%40w@db:3306/")
        );
        let raw = json.replace("\"username\"", "\"disable_escaping\":true,\"username\"");
        let raw = raw.replace("p@w", "p%40w");
        assert_eq!(
            url(&cfg(&raw), &Tls::default()).as_deref(),
            Ok("mysql://a b:p%40w@db:3306/")
        );
    }

    #[test]
    fn tls_settings_become_host_options() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let key = format!("{pem}-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n");
        let c = cfg(r#"{"connection_url":"{{username}}:{{password}}@tcp(db:3306)/","username":"u","password":"p"}"#);
        let tls = Tls::parse(
            &serde_json::json!({"tls_ca": pem, "tls_certificate_key": key, "tls_server_name": "DB"}).to_string(),
        )
        .expect("tls");
        assert!(tls.enabled());
        let u = url(&c, &tls).expect("url");
        assert!(u.starts_with("mysql://u:p@db:3306/?ssl-mode=VERIFY_IDENTITY&ssl-ca-pem=-----BEGIN%20CERTIFICATE"));
        assert!(u.contains("&ssl-cert-pem=") && u.contains("&ssl-key-pem="));
        let skip = Tls::parse(&serde_json::json!({"tls_ca": pem, "tls_skip_verify": "true"}).to_string()).expect("tls");
        assert!(url(&c, &skip).expect("url").contains("ssl-mode=REQUIRED"));
        let other = Tls::parse(&serde_json::json!({"tls_server_name": "other"}).to_string()).expect("tls");
        assert!(url(&c, &other).expect_err("name").contains("tls_server_name"));
        assert!(Tls::parse(r#"{"tls_ca":"not a pem"}"#).is_err());
        assert!(Tls::parse(&serde_json::json!({"tls_certificate_key": pem}).to_string()).is_err());
        assert!(Tls::parse(r#"{"tls_skip_verify":"maybe"}"#).is_err());
        assert_eq!(tls.secrets(), vec![key]);
    }

    #[test]
    fn templates_by_plugin_name() {
        assert_eq!(default_template("mysql-database-plugin"), DEFAULT_TEMPLATE);
        for name in [
            "mysql-aurora-database-plugin",
            "mysql-rds-database-plugin",
            "mysql-legacy-database-plugin",
        ] {
            assert_eq!(default_template(name), LEGACY_TEMPLATE);
        }
        assert_eq!(default_template("my-copy"), DEFAULT_TEMPLATE);
        assert_eq!(quote_string(r"a'b\c"), r"'a''b\\c'");
    }

    #[test]
    fn default_names_fit_the_limits() {
        use crate::template::{Template, UsernameMetadata};
        let mut env = crate::test_env::FixedEnv::new();
        let meta = UsernameMetadata {
            display_name: "token-with-a-long-display-name",
            role_name: "a-rather-long-role-name",
        };
        let name = Template::parse(DEFAULT_TEMPLATE)
            .expect("parse")
            .render(&meta, &mut env)
            .expect("render");
        assert_eq!(name.len(), 32);
        assert!(name.starts_with("v-token-with-a-rather-l-"), "{name}");
        let legacy = Template::parse(LEGACY_TEMPLATE)
            .expect("parse")
            .render(&meta, &mut env)
            .expect("render");
        assert_eq!(legacy.len(), 16);
        assert!(legacy.starts_with("v-a-ra-"), "{legacy}");
    }
}
