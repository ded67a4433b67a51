//! `warden server -config=FILE`: Vault's HCL server configuration. A small
//! HCL reader (attributes, labelled blocks, strings, numbers, booleans,
//! lists, comments) that keeps every item's line, so that any syntax error,
//! unknown setting or invalid value stops start-up with `FILE:LINE: why`.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

/// The settings Warden reads (Vault's names).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listeners: Vec<Listener>,
    pub storage: StorageConfig,
    pub api_addr: Option<String>,
    pub cluster_addr: Option<String>,
    pub plugin_directory: Option<PathBuf>,
    /// Seconds; 0 when unset (the built-in 768h).
    pub default_lease_ttl: i64,
    pub max_lease_ttl: i64,
    pub log_level: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub address: String,
    pub tls_disable: bool,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Timeouts, request size and duration, connection cap.
    pub http: crate::api::HttpLimits,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StorageConfig {
    Sqlite { path: PathBuf },
    Postgresql { connection_url: String, table: String },
    Inmem,
}

impl StorageConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            StorageConfig::Sqlite { .. } => "sqlite",
            StorageConfig::Postgresql { .. } => "postgresql",
            StorageConfig::Inmem => "inmem",
        }
    }
}

/// Vault's default table for the postgresql storage backend.
pub const DEFAULT_PG_TABLE: &str = "vault_kv_store";

pub fn load(path: &Path) -> Result<ServerConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the configuration file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))
}

/// Parse configuration text; errors read `LINE: message`.
pub fn parse(text: &str) -> Result<ServerConfig> {
    let body = Parser::new(text).body(true)?;
    let mut listeners = Vec::new();
    let mut storage: Option<(StorageConfig, usize)> = None;
    let mut cfg = ServerConfig {
        listeners: Vec::new(),
        storage: StorageConfig::Inmem,
        api_addr: None,
        cluster_addr: None,
        plugin_directory: None,
        default_lease_ttl: 0,
        max_lease_ttl: 0,
        log_level: None,
    };
    for item in body {
        match item {
            Item::Attr { key, value, line } => match key.as_str() {
                "api_addr" => cfg.api_addr = Some(value.string(&key, line)?),
                "cluster_addr" => cfg.cluster_addr = Some(value.string(&key, line)?),
                "plugin_directory" => cfg.plugin_directory = Some(PathBuf::from(value.string(&key, line)?)),
                "default_lease_ttl" => cfg.default_lease_ttl = value.duration(&key, line)?,
                "max_lease_ttl" => cfg.max_lease_ttl = value.duration(&key, line)?,
                "log_level" => {
                    let level = value.string(&key, line)?.to_ascii_lowercase();
                    if !["trace", "debug", "info", "warn", "error"].contains(&level.as_str()) {
                        bail!("{line}: log_level must be trace, debug, info, warn or error, not {level:?}");
                    }
                    cfg.log_level = Some(level);
                }
                // Vault settings with no meaning here (no mlock, no UI); accepted
                // so that existing Vault configuration files load unchanged.
                "disable_mlock" | "ui" => {
                    value.boolean(&key, line)?;
                }
                "cluster_name" => {
                    value.string(&key, line)?;
                }
                other => bail!("{line}: unknown setting {other:?}"),
            },
            Item::Block {
                name,
                labels,
                body,
                line,
            } => match name.as_str() {
                "listener" => listeners.push(listener(&labels, body, line)?),
                "storage" | "backend" => {
                    if let Some((_, first)) = storage {
                        bail!("{line}: a second storage stanza (the first is on line {first}); only one is allowed");
                    }
                    storage = Some((storage_stanza(&labels, body, line)?, line));
                }
                other => bail!("{line}: unknown stanza {other:?}"),
            },
        }
    }
    if listeners.is_empty() {
        bail!("1: no listener stanza: add listener \"tcp\" {{ address = \"127.0.0.1:8200\" }}");
    }
    let Some((storage, _)) = storage else {
        bail!("1: no storage stanza: add storage \"sqlite\" {{ path = \"...\" }} or storage \"postgresql\" {{ ... }}");
    };
    if cfg.max_lease_ttl > 0 && cfg.default_lease_ttl > cfg.max_lease_ttl {
        bail!("1: default_lease_ttl is greater than max_lease_ttl");
    }
    cfg.listeners = listeners;
    cfg.storage = storage;
    Ok(cfg)
}

fn one_label<'a>(what: &str, labels: &'a [String], line: usize) -> Result<&'a str> {
    match labels {
        [one] => Ok(one),
        _ => bail!("{line}: {what} needs exactly one label, such as {what} \"tcp\""),
    }
}

fn listener(labels: &[String], body: Vec<Item>, line: usize) -> Result<Listener> {
    let kind = one_label("listener", labels, line)?;
    if kind != "tcp" {
        bail!("{line}: unsupported listener type {kind:?} (only \"tcp\")");
    }
    let mut l = Listener {
        address: "127.0.0.1:8200".into(),
        tls_disable: false,
        tls_cert_file: None,
        tls_key_file: None,
        http: crate::api::HttpLimits::default(),
    };
    let secs = |value: &Value, key: &str, line: usize| -> Result<std::time::Duration> {
        Ok(std::time::Duration::from_secs(
            value.duration(key, line)?.unsigned_abs(),
        ))
    };
    for (key, value, line) in attrs(body, "listener")? {
        match key.as_str() {
            "address" => {
                let address = value.string(&key, line)?;
                if address.parse::<std::net::SocketAddr>().is_err() {
                    bail!("{line}: address {address:?} is not an IP:port");
                }
                l.address = address;
            }
            "tls_disable" => l.tls_disable = value.boolean(&key, line)?,
            "tls_cert_file" => l.tls_cert_file = Some(PathBuf::from(value.string(&key, line)?)),
            "tls_key_file" => l.tls_key_file = Some(PathBuf::from(value.string(&key, line)?)),
            "http_read_header_timeout" => l.http.read_header_timeout = secs(&value, &key, line)?,
            "http_read_timeout" => l.http.read_timeout = secs(&value, &key, line)?,
            "http_write_timeout" => l.http.write_timeout = secs(&value, &key, line)?,
            "http_idle_timeout" => l.http.idle_timeout = secs(&value, &key, line)?,
            // As Vault: 0 is the default (90s).
            "max_request_duration" => match secs(&value, &key, line)? {
                d if d.is_zero() => {}
                d => l.http.max_request_duration = d,
            },
            // As Vault: 0 is the default (32 MiB), a negative size no limit.
            "max_request_size" => match value.integer(&key, line)? {
                0 => {}
                n => l.http.max_request_size = usize::try_from(n).ok(),
            },
            "max_connections" => match value.integer(&key, line)? {
                n if n >= 1 => l.http.max_connections = usize::try_from(n).unwrap_or(usize::MAX),
                _ => bail!("{line}: max_connections must be at least 1"),
            },
            other => bail!("{line}: unknown listener setting {other:?}"),
        }
    }
    if !l.tls_disable && (l.tls_cert_file.is_none() || l.tls_key_file.is_none()) {
        bail!("{line}: TLS is on: set tls_cert_file and tls_key_file, or tls_disable = true");
    }
    Ok(l)
}

fn storage_stanza(labels: &[String], body: Vec<Item>, line: usize) -> Result<StorageConfig> {
    let kind = one_label("storage", labels, line)?;
    let settings = attrs(body, "storage")?;
    let get = |name: &str| -> Result<Option<String>> {
        settings
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(k, v, l)| v.string(k, *l))
            .transpose()
    };
    let known: &[&str] = match kind {
        "sqlite" => &["path"],
        "postgresql" => &["connection_url", "table"],
        "inmem" => &[],
        other => bail!("{line}: unsupported storage type {other:?} (sqlite, postgresql or inmem)"),
    };
    if let Some((key, _, l)) = settings.iter().find(|(k, _, _)| !known.contains(&k.as_str())) {
        bail!("{l}: unknown {kind} storage setting {key:?}");
    }
    Ok(match kind {
        "sqlite" => StorageConfig::Sqlite {
            path: PathBuf::from(get("path")?.ok_or_else(|| anyhow::anyhow!("{line}: storage \"sqlite\" needs path"))?),
        },
        "postgresql" => StorageConfig::Postgresql {
            connection_url: get("connection_url")?
                .ok_or_else(|| anyhow::anyhow!("{line}: storage \"postgresql\" needs connection_url"))?,
            table: get("table")?.unwrap_or_else(|| DEFAULT_PG_TABLE.into()),
        },
        _ => StorageConfig::Inmem,
    })
}

/// The attributes of a stanza that may hold no nested blocks.
fn attrs(body: Vec<Item>, stanza: &str) -> Result<Vec<(String, Value, usize)>> {
    let mut out: Vec<(String, Value, usize)> = Vec::new();
    for item in body {
        match item {
            Item::Attr { key, value, line } => {
                if let Some((_, _, first)) = out.iter().find(|(k, _, _)| *k == key) {
                    bail!("{line}: {key} is set twice in this {stanza} stanza (also on line {first})");
                }
                out.push((key, value, line));
            }
            Item::Block { name, line, .. } => bail!("{line}: unexpected block {name:?} inside {stanza}"),
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    List(Vec<Value>),
}

impl Value {
    fn string(&self, key: &str, line: usize) -> Result<String> {
        match self {
            Value::Str(s) => Ok(s.clone()),
            _ => bail!("{line}: {key} must be a string"),
        }
    }

    /// Vault accepts true/false, "true"/"false", and 1/0 for booleans.
    fn boolean(&self, key: &str, line: usize) -> Result<bool> {
        match self {
            Value::Bool(b) => Ok(*b),
            Value::Str(s) if matches!(s.as_str(), "true" | "1") => Ok(true),
            Value::Str(s) if matches!(s.as_str(), "false" | "0" | "") => Ok(false),
            Value::Num(n) if *n == 1.0 => Ok(true),
            Value::Num(n) if *n == 0.0 => Ok(false),
            _ => bail!("{line}: {key} must be true or false"),
        }
    }

    /// A whole number, written as a number or a string ("1024").
    fn integer(&self, key: &str, line: usize) -> Result<i64> {
        let n = match self {
            Value::Num(n) => Some(*n),
            Value::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Ok(n as i64),
            _ => bail!("{line}: {key} must be a whole number"),
        }
    }

    /// A Go duration string ("768h", "30m") or a number of seconds.
    fn duration(&self, key: &str, line: usize) -> Result<i64> {
        match self {
            Value::Num(n) if *n >= 0.0 && n.fract() == 0.0 => {
                if *n > crate::core::fields::MAX_DURATION_SECS as f64 {
                    bail!(
                        "{line}: {key} is out of range: at most {} seconds",
                        crate::core::fields::MAX_DURATION_SECS
                    );
                }
                Ok(*n as i64)
            }
            Value::Str(s) => match crate::core::fields::parse_duration(s) {
                Ok(secs) if secs >= 0 => Ok(secs),
                Ok(_) => bail!("{line}: {key} cannot be negative"),
                Err(e) => bail!("{line}: {key}: {e}"),
            },
            _ => bail!("{line}: {key} must be a duration such as \"768h\""),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Attr {
        key: String,
        value: Value,
        line: usize,
    },
    Block {
        name: String,
        labels: Vec<String>,
        body: Vec<Item>,
        line: usize,
    },
}

/// A recursive-descent reader of the HCL subset above.
pub struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

impl<'a> Parser<'a> {
    pub fn new(text: &'a str) -> Self {
        Parser {
            chars: text.chars().peekable(),
            line: 1,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }

    /// Skip spaces, comments and (when `newlines`) line ends.
    fn skip(&mut self, newlines: bool) -> Result<()> {
        loop {
            match self.chars.peek() {
                Some(' ' | '\t' | '\r') => {
                    self.bump();
                }
                Some('\n') if newlines => {
                    self.bump();
                }
                Some('#') => self.skip_line(),
                Some('/') => {
                    let mut ahead = self.chars.clone();
                    ahead.next();
                    match ahead.next() {
                        Some('/') => self.skip_line(),
                        Some('*') => {
                            let start = self.line;
                            self.bump();
                            self.bump();
                            loop {
                                match self.bump() {
                                    None => bail!("{start}: unterminated /* comment"),
                                    Some('*') if self.chars.peek() == Some(&'/') => {
                                        self.bump();
                                        break;
                                    }
                                    _ => {}
                                }
                            }
                        }
                        _ => bail!("{}: unexpected '/'", self.line),
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(&c) = self.chars.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    fn ident(&mut self) -> String {
        let mut s = String::new();
        while let Some(&c) = self.chars.peek() {
            if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        s
    }

    fn string(&mut self) -> Result<String> {
        let start = self.line;
        self.bump(); // the opening quote
        let mut s = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => bail!("{start}: unterminated string"),
                Some('"') => return Ok(s),
                Some('\\') => match self.bump() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some(c) => bail!("{}: unknown escape \\{c} in a string", self.line),
                    None => bail!("{start}: unterminated string"),
                },
                Some(c) => s.push(c),
            }
        }
    }

    /// Items until the end of input (`top`) or a closing brace.
    pub fn body(&mut self, top: bool) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        loop {
            self.skip(true)?;
            match self.chars.peek() {
                None if top => return Ok(items),
                None => bail!("{}: missing '}}' at the end of the file", self.line),
                Some('}') if !top => {
                    self.bump();
                    return Ok(items);
                }
                Some('}') => bail!("{}: unexpected '}}'", self.line),
                Some(_) => items.push(self.item()?),
            }
        }
    }

    fn item(&mut self) -> Result<Item> {
        let line = self.line;
        let name = match self.chars.peek() {
            Some('"') => self.string()?,
            _ => self.ident(),
        };
        if name.is_empty() {
            let c = self.chars.peek().copied().unwrap_or(' ');
            bail!("{line}: unexpected {c:?}: expected a setting name or a stanza");
        }
        self.skip(false)?;
        match self.chars.peek() {
            Some('=') | Some(':') => {
                self.bump();
                self.skip(false)?;
                let value = self.value()?;
                self.skip(false)?;
                match self.chars.peek() {
                    None | Some('\n') | Some('}') => {}
                    Some(',') => {
                        self.bump();
                    }
                    Some(c) => bail!("{}: unexpected {c:?} after the value of {name}", self.line),
                }
                Ok(Item::Attr { key: name, value, line })
            }
            _ => {
                let mut labels = Vec::new();
                loop {
                    self.skip(false)?;
                    match self.chars.peek() {
                        Some('"') => labels.push(self.string()?),
                        Some('{') => {
                            self.bump();
                            let body = self.body(false)?;
                            return Ok(Item::Block {
                                name,
                                labels,
                                body,
                                line,
                            });
                        }
                        Some(c) if c.is_alphanumeric() || *c == '_' => labels.push(self.ident()),
                        Some(c) => bail!("{}: unexpected {c:?} after {name}: expected '=' or a block", self.line),
                        None => bail!("{line}: {name} has no value: expected '=' or a block"),
                    }
                }
            }
        }
    }

    fn value(&mut self) -> Result<Value> {
        let line = self.line;
        match self.chars.peek() {
            Some('"') => Ok(Value::Str(self.string()?)),
            Some('[') => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.skip(true)?;
                    match self.chars.peek() {
                        Some(']') => {
                            self.bump();
                            return Ok(Value::List(items));
                        }
                        None => bail!("{line}: unterminated list"),
                        _ => {
                            items.push(self.value()?);
                            self.skip(true)?;
                            if self.chars.peek() == Some(&',') {
                                self.bump();
                            }
                        }
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || *c == '-' => {
                let mut s = String::new();
                while let Some(&c) = self.chars.peek() {
                    if c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+') {
                        s.push(c);
                        self.bump();
                    } else {
                        break;
                    }
                }
                s.parse()
                    .map(Value::Num)
                    .map_err(|_| anyhow::anyhow!("{line}: {s:?} is not a number"))
            }
            Some(_) => match self.ident().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                "" => bail!(
                    "{line}: unexpected {:?}: expected a value",
                    self.chars.peek().copied().unwrap_or(' ')
                ),
                other => bail!("{line}: unexpected {other:?}: expected a value (strings need quotes)"),
            },
            None => bail!("{line}: missing value at the end of the file"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
# A Vault-style configuration.
storage "sqlite" {
  path = "/var/lib/warden/warden.db"
}

listener "tcp" {
  address     = "127.0.0.1:8201"
  tls_disable = "true" // Vault accepts a string here
}

/* block
   comment */
api_addr          = "http://127.0.0.1:8201"
cluster_addr      = "https://127.0.0.1:8202"
plugin_directory  = "/etc/warden/plugins"
default_lease_ttl = "1h"
max_lease_ttl     = "24h"
log_level         = "debug"
disable_mlock     = true
"#;

    #[test]
    fn reads_a_vault_configuration() {
        let cfg = parse(SAMPLE).unwrap();
        assert_eq!(
            cfg.storage,
            StorageConfig::Sqlite {
                path: "/var/lib/warden/warden.db".into()
            }
        );
        assert_eq!(cfg.listeners.len(), 1);
        assert_eq!(cfg.listeners[0].address, "127.0.0.1:8201");
        assert!(cfg.listeners[0].tls_disable);
        assert_eq!(cfg.default_lease_ttl, 3600);
        assert_eq!(cfg.max_lease_ttl, 86400);
        assert_eq!(cfg.log_level.as_deref(), Some("debug"));
        assert_eq!(cfg.plugin_directory, Some(PathBuf::from("/etc/warden/plugins")));
    }

    #[test]
    fn postgresql_storage_defaults_its_table() {
        let cfg = parse(
            "storage \"postgresql\" { connection_url = \"postgres://u@h/db\" }\nlistener \"tcp\" { tls_disable = 1 }",
        )
        .unwrap();
        assert_eq!(
            cfg.storage,
            StorageConfig::Postgresql {
                connection_url: "postgres://u@h/db".into(),
                table: DEFAULT_PG_TABLE.into()
            }
        );
    }

    #[test]
    fn listener_http_settings_take_vaults_names() {
        let cfg = parse(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n http_read_header_timeout = \"2s\"\n \
             http_read_timeout = 5\n http_write_timeout = \"1m\"\n http_idle_timeout = \"0\"\n \
             max_request_size = -1\n max_request_duration = \"0s\"\n max_connections = \"16\"\n}",
        )
        .unwrap();
        let http = &cfg.listeners[0].http;
        let secs = std::time::Duration::from_secs;
        assert_eq!(http.read_header_timeout, secs(2));
        assert_eq!(http.read_timeout, secs(5));
        assert_eq!(http.write_timeout, secs(60));
        assert_eq!(http.idle_timeout, secs(0));
        assert_eq!(http.max_request_size, None, "a negative size is no limit, as in Vault");
        assert_eq!(http.max_request_duration, secs(90), "0 is the default, as in Vault");
        assert_eq!(http.max_connections, 16);
        let defaults = parse("storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = true }").unwrap();
        assert_eq!(defaults.listeners[0].http, crate::api::HttpLimits::default());
        let base = "storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n";
        assert!(error(&format!("{base} max_connections = 0\n}}")).starts_with("4: max_connections"));
        assert!(error(&format!("{base} max_request_size = 1.5\n}}")).starts_with("4: max_request_size"));
        assert!(error(&format!("{base} http_read_timeout = \"soon\"\n}}")).starts_with("4: http_read_timeout"));
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_line() {
        let base = "storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = true }\n";
        assert!(error(&format!("{base}bogus = 1\n")).starts_with("3: unknown setting \"bogus\""));
        assert!(error(&format!("{base}\n\nlog_level = \"loud\"")).starts_with("5: log_level"));
        assert!(error(&format!("{base}max_lease_ttl = \"1x\"")).starts_with("3: max_lease_ttl"));
        assert!(error(&format!("{base}max_lease_ttl = \"9999999999h\"")).starts_with("3: max_lease_ttl"));
        assert!(error(&format!("{base}max_lease_ttl = 10000000000000")).starts_with("3: max_lease_ttl"));
        assert!(error("storage \"sqlite\" {\n  path = \"x\"\n  paht = \"y\"\n}").starts_with("3: unknown sqlite"));
        assert!(error("listener \"tcp\" {\n address = \"nope\"\n tls_disable = true\n}").starts_with("2: address"));
        assert!(error("storage \"s3\" {}").starts_with("1: unsupported storage"));
        assert!(error("storage \"sqlite\" {\n path = \"x\"\n").contains("missing '}'"));
        assert!(error("a = \"unterminated\n").starts_with("1: unterminated string"));
        assert!(error("listener \"tcp\" {}\nstorage \"inmem\" {}").contains("tls_cert_file"));
        assert!(error(&format!("{base}storage \"inmem\" {{}}\n")).contains("second storage"));
        assert!(error("storage \"inmem\" {}").contains("no listener"));
        assert!(error("x = = 1").starts_with("1: unexpected '='"));
    }
}
