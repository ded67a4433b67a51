//! `warden server -config=FILE`: Vault's HCL server configuration, read
//! through [`crate::hcl`], which keeps every item's line, so that any
//! syntax error, unknown setting or invalid value stops start-up with
//! `FILE:LINE: why`.

use crate::hcl::Item;
use anyhow::{Result, bail};
use serde_json::Value;
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
    /// `disable_clustering`: HA standbys redirect (307) instead of
    /// forwarding, and no cluster listener is opened.
    pub disable_clustering: bool,
    /// The `telemetry` stanza (Vault's defaults when absent).
    pub telemetry: crate::telemetry::Settings,
    /// The `seal "static"` stanza: auto-unseal with a static key.
    pub seal: Option<crate::node::static_seal::StaticSealConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub address: String,
    pub tls_disable: bool,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// `cluster_address` (HA): where this node takes forwarded requests
    /// when active; by default the listener's port plus one.
    pub cluster_address: Option<String>,
    /// Timeouts, request size and duration, connection cap.
    pub http: crate::api::HttpLimits,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StorageConfig {
    Sqlite {
        path: PathBuf,
    },
    Postgresql {
        connection_url: String,
        table: String,
        /// `ha_enabled` (OpenBao's): several nodes share this database,
        /// one active.
        ha_enabled: bool,
        /// `ha_table` (OpenBao's default `vault_ha_locks`).
        ha_table: String,
    },
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

// Every setting each stanza accepts: the parser refuses any other name
// (so these lists are what the configuration takes, by construction), and
// a test checks that each is handled and documented in docs/operations.md.

/// Top-level settings.
pub const TOP_LEVEL_SETTINGS: &[&str] = &[
    "api_addr",
    "cluster_addr",
    "plugin_directory",
    "default_lease_ttl",
    "max_lease_ttl",
    "log_level",
    "disable_clustering",
    "disable_mlock",
    "ui",
    "cluster_name",
];
/// `listener "tcp"`.
pub const LISTENER_SETTINGS: &[&str] = &[
    "address",
    "cluster_address",
    "tls_disable",
    "tls_cert_file",
    "tls_key_file",
    "http_read_header_timeout",
    "http_read_timeout",
    "http_write_timeout",
    "http_idle_timeout",
    "max_request_duration",
    "max_request_size",
    "disable_unauthed_generate_root_endpoints",
    "max_connections",
];
/// `storage "sqlite"`.
pub const SQLITE_SETTINGS: &[&str] = &["path"];
/// `storage "postgresql"`.
pub const POSTGRESQL_SETTINGS: &[&str] = &["connection_url", "table", "ha_enabled", "ha_table"];
/// `telemetry`.
pub const TELEMETRY_SETTINGS: &[&str] = &["prometheus_retention_time", "disable_hostname", "enable_hostname_label"];
/// `seal "static"`.
pub const STATIC_SEAL_SETTINGS: &[&str] = &[
    "current_key_id",
    "current_key",
    "previous_key_id",
    "previous_key",
    "disabled",
];

/// Refuse a setting a stanza does not list (`what`: the stanza's words).
fn known(key: &str, settings: &[&str], what: &str, line: usize) -> Result<()> {
    if !settings.contains(&key) {
        bail!("{line}: unknown {what}setting {key:?}");
    }
    Ok(())
}

/// A listed setting that no match arm takes: a bug, said as one.
fn unhandled(key: &str, line: usize) -> anyhow::Error {
    anyhow::anyhow!("{line}: setting {key:?} is listed but not handled (a bug)")
}

/// Vault's default table for the postgresql storage backend.
pub const DEFAULT_PG_TABLE: &str = "vault_kv_store";
/// Vault's default table for the postgresql storage's HA lock.
pub const DEFAULT_PG_HA_TABLE: &str = "vault_ha_locks";

pub fn load(path: &Path) -> Result<ServerConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the configuration file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))
}

/// Parse configuration text; errors read `LINE: message`.
pub fn parse(text: &str) -> Result<ServerConfig> {
    let body = crate::hcl::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut listeners = Vec::new();
    let mut storage: Option<(StorageConfig, usize)> = None;
    let mut telemetry_line: Option<usize> = None;
    let mut seal_line: Option<usize> = None;
    let mut cfg = ServerConfig {
        listeners: Vec::new(),
        storage: StorageConfig::Inmem,
        api_addr: None,
        cluster_addr: None,
        plugin_directory: None,
        default_lease_ttl: 0,
        max_lease_ttl: 0,
        log_level: None,
        disable_clustering: false,
        telemetry: crate::telemetry::Settings::default(),
        seal: None,
    };
    for item in body {
        match item {
            Item::Attribute { key, value, line } => {
                match known(&key, TOP_LEVEL_SETTINGS, "", line).map(|()| key.as_str())? {
                    "api_addr" => cfg.api_addr = Some(string(&value, &key, line)?),
                    "cluster_addr" => cfg.cluster_addr = Some(string(&value, &key, line)?),
                    "plugin_directory" => cfg.plugin_directory = Some(PathBuf::from(string(&value, &key, line)?)),
                    "default_lease_ttl" => cfg.default_lease_ttl = duration(&value, &key, line)?,
                    "max_lease_ttl" => cfg.max_lease_ttl = duration(&value, &key, line)?,
                    "log_level" => {
                        let level = string(&value, &key, line)?.to_ascii_lowercase();
                        if !["trace", "debug", "info", "warn", "error"].contains(&level.as_str()) {
                            bail!("{line}: log_level must be trace, debug, info, warn or error, not {level:?}");
                        }
                        cfg.log_level = Some(level);
                    }
                    // Vault settings with no meaning here (no mlock, no UI); accepted
                    // so that existing Vault configuration files load unchanged.
                    "disable_clustering" => cfg.disable_clustering = boolean(&value, &key, line)?,
                    "disable_mlock" | "ui" => {
                        boolean(&value, &key, line)?;
                    }
                    "cluster_name" => {
                        string(&value, &key, line)?;
                    }
                    other => return Err(unhandled(other, line)),
                }
            }
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
                "telemetry" => {
                    if let Some(first) = telemetry_line {
                        bail!("{line}: a second telemetry stanza (the first is on line {first}); only one is allowed");
                    }
                    telemetry_line = Some(line);
                    cfg.telemetry = telemetry(&labels, body, line)?;
                }
                "seal" => {
                    if let Some(first) = seal_line {
                        bail!(
                            "{line}: a second seal stanza (the first is on line {first}); only one is allowed (seal migration is not supported)"
                        );
                    }
                    seal_line = Some(line);
                    cfg.seal = Some(seal_stanza(&labels, body, line)?);
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
        cluster_address: None,
        http: crate::api::HttpLimits::default(),
    };
    let secs = |value: &Value, key: &str, line: usize| -> Result<std::time::Duration> {
        Ok(std::time::Duration::from_secs(
            duration(value, key, line)?.unsigned_abs(),
        ))
    };
    for (key, value, line) in attrs(body, "listener")? {
        known(&key, LISTENER_SETTINGS, "listener ", line)?;
        match key.as_str() {
            "address" => {
                let address = string(&value, &key, line)?;
                if address.parse::<std::net::SocketAddr>().is_err() {
                    bail!("{line}: address {address:?} is not an IP:port");
                }
                l.address = address;
            }
            "cluster_address" => {
                let address = string(&value, &key, line)?;
                if address.parse::<std::net::SocketAddr>().is_err() {
                    bail!("{line}: cluster_address {address:?} is not an IP:port");
                }
                l.cluster_address = Some(address);
            }
            "tls_disable" => l.tls_disable = boolean(&value, &key, line)?,
            "tls_cert_file" => l.tls_cert_file = Some(PathBuf::from(string(&value, &key, line)?)),
            "tls_key_file" => l.tls_key_file = Some(PathBuf::from(string(&value, &key, line)?)),
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
            "max_request_size" => match integer(&value, &key, line)? {
                0 => {}
                n => l.http.max_request_size = usize::try_from(n).ok(),
            },
            "disable_unauthed_generate_root_endpoints" => {
                l.http.disable_unauthed_generate_root = boolean(&value, &key, line)?
            }
            "max_connections" => match integer(&value, &key, line)? {
                n if n >= 1 => l.http.max_connections = usize::try_from(n).unwrap_or(usize::MAX),
                _ => bail!("{line}: max_connections must be at least 1"),
            },
            other => return Err(unhandled(other, line)),
        }
    }
    if !l.tls_disable && (l.tls_cert_file.is_none() || l.tls_key_file.is_none()) {
        bail!("{line}: TLS is on: set tls_cert_file and tls_key_file, or tls_disable = true");
    }
    Ok(l)
}

/// Vault's `telemetry` stanza: what Warden honours (sys/metrics' sinks,
/// see crate::telemetry). Vault's settings for sinks Warden does not have
/// (statsd, Circonus, Datadog, Stackdriver) and its usage-gauge tuning stop
/// start-up with a line that says so, as unknown settings do.
fn telemetry(labels: &[String], body: Vec<Item>, line: usize) -> Result<crate::telemetry::Settings> {
    if !labels.is_empty() {
        bail!("{line}: the telemetry stanza takes no label: telemetry {{ ... }}");
    }
    const ELSEWHERE: &[&str] = &[
        "statsd_address",
        "statsite_address",
        "dogstatsd_addr",
        "dogstatsd_tags",
        "circonus_api_token",
        "circonus_api_app",
        "circonus_api_url",
        "circonus_submission_interval",
        "circonus_submission_url",
        "circonus_check_id",
        "circonus_check_force_metric_activation",
        "circonus_check_instance_id",
        "circonus_check_search_tag",
        "circonus_check_display_name",
        "circonus_check_tags",
        "circonus_broker_id",
        "circonus_broker_select_tag",
        "stackdriver_project_id",
        "stackdriver_location",
        "stackdriver_namespace",
        "stackdriver_debug_logs",
        "usage_gauge_period",
        "maximum_gauge_cardinality",
        "lease_metrics_epsilon",
        "num_lease_metrics_buckets",
        "add_lease_metrics_namespace_labels",
        "filter_default",
        "prefix_filter",
        "metrics_prefix",
    ];
    let mut t = crate::telemetry::Settings::default();
    for (key, value, line) in attrs(body, "telemetry")? {
        if ELSEWHERE.contains(&key.as_str()) {
            bail!(
                "{line}: telemetry setting {key:?} is not supported by Warden (metrics are served by sys/metrics: set prometheus_retention_time to scrape them)"
            );
        }
        known(&key, TELEMETRY_SETTINGS, "telemetry ", line)?;
        match key.as_str() {
            "prometheus_retention_time" => {
                t.prometheus_retention = std::time::Duration::from_secs(duration(&value, &key, line)?.unsigned_abs())
            }
            "disable_hostname" => t.disable_hostname = boolean(&value, &key, line)?,
            "enable_hostname_label" => t.enable_hostname_label = boolean(&value, &key, line)?,
            other => return Err(unhandled(other, line)),
        }
    }
    Ok(t)
}

/// OpenBao's `seal "static"` stanza. The keys are read at start
/// ([`crate::node::StaticSeal::load`]), not here: a reload never touches
/// them, and nothing here holds key material but a literal key.
fn seal_stanza(labels: &[String], body: Vec<Item>, line: usize) -> Result<crate::node::static_seal::StaticSealConfig> {
    use crate::node::static_seal::{KeySource, StaticSealConfig};
    let kind = one_label("seal", labels, line)?;
    if kind != "static" {
        bail!("{line}: unsupported seal type {kind:?} (only \"static\"; without a seal stanza, Shamir unseal keys)");
    }
    let mut seal = StaticSealConfig {
        current_key_id: None,
        current_key: None,
        previous_key_id: None,
        previous_key: None,
    };
    for (key, value, line) in attrs(body, "seal")? {
        known(&key, STATIC_SEAL_SETTINGS, "static seal ", line)?;
        match key.as_str() {
            "current_key_id" => seal.current_key_id = Some(string(&value, &key, line)?),
            "current_key" => seal.current_key = Some(KeySource::parse(&string(&value, &key, line)?)),
            "previous_key_id" => seal.previous_key_id = Some(string(&value, &key, line)?),
            "previous_key" => seal.previous_key = Some(KeySource::parse(&string(&value, &key, line)?)),
            // OpenBao's seal migration switch: only "not migrating" here.
            "disabled" => {
                if boolean(&value, &key, line)? {
                    bail!("{line}: disabled = true is for seal migration, which Warden does not support");
                }
            }
            other => return Err(unhandled(other, line)),
        }
    }
    // Without a key in the stanza, OpenBao's environment variables must
    // give one (checked when the keys are read).
    Ok(seal)
}

fn storage_stanza(labels: &[String], body: Vec<Item>, line: usize) -> Result<StorageConfig> {
    let kind = one_label("storage", labels, line)?;
    let settings = attrs(body, "storage")?;
    let get = |name: &str| -> Result<Option<String>> {
        settings
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(k, v, l)| string(v, k, *l))
            .transpose()
    };
    let listed: &[&str] = match kind {
        "sqlite" => SQLITE_SETTINGS,
        "postgresql" => POSTGRESQL_SETTINGS,
        "inmem" => &[],
        other => bail!("{line}: unsupported storage type {other:?} (sqlite, postgresql or inmem)"),
    };
    for (key, _, l) in &settings {
        known(key, listed, &format!("{kind} storage "), *l)?;
    }
    Ok(match kind {
        "sqlite" => StorageConfig::Sqlite {
            path: PathBuf::from(get("path")?.ok_or_else(|| anyhow::anyhow!("{line}: storage \"sqlite\" needs path"))?),
        },
        "postgresql" => StorageConfig::Postgresql {
            connection_url: get("connection_url")?
                .ok_or_else(|| anyhow::anyhow!("{line}: storage \"postgresql\" needs connection_url"))?,
            table: get("table")?.unwrap_or_else(|| DEFAULT_PG_TABLE.into()),
            ha_enabled: match settings.iter().find(|(k, _, _)| k == "ha_enabled") {
                Some((k, v, l)) => boolean(v, k, *l)?,
                None => false,
            },
            ha_table: get("ha_table")?.unwrap_or_else(|| DEFAULT_PG_HA_TABLE.into()),
        },
        _ => StorageConfig::Inmem,
    })
}

/// The attributes of a stanza that may hold no nested blocks.
fn attrs(body: Vec<Item>, stanza: &str) -> Result<Vec<(String, Value, usize)>> {
    let mut out: Vec<(String, Value, usize)> = Vec::new();
    for item in body {
        match item {
            Item::Attribute { key, value, line } => {
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

fn string(value: &Value, key: &str, line: usize) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        _ => bail!("{line}: {key} must be a string"),
    }
}

/// Vault accepts true/false, "true"/"false", and 1/0 for booleans.
fn boolean(value: &Value, key: &str, line: usize) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if matches!(s.as_str(), "true" | "1") => Ok(true),
        Value::String(s) if matches!(s.as_str(), "false" | "0" | "") => Ok(false),
        Value::Number(n) if n.as_f64() == Some(1.0) => Ok(true),
        Value::Number(n) if n.as_f64() == Some(0.0) => Ok(false),
        _ => bail!("{line}: {key} must be true or false"),
    }
}

/// A whole number, written as a number or a string ("1024").
fn integer(value: &Value, key: &str, line: usize) -> Result<i64> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Ok(n as i64),
        _ => bail!("{line}: {key} must be a whole number"),
    }
}

/// A duration as Vault reads it ("768h", "30m", "7d") or a number of seconds.
fn duration(value: &Value, key: &str, line: usize) -> Result<i64> {
    let max = crate::framework::convert::MAX_DURATION_SECS;
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(secs) if (0..=max).contains(&secs) => Ok(secs),
            Some(secs) if secs < 0 => bail!("{line}: {key} cannot be negative"),
            Some(_) => bail!("{line}: {key} is out of range: at most {max} seconds"),
            None if n.as_f64().is_some_and(|f| f > max as f64) => {
                bail!("{line}: {key} is out of range: at most {max} seconds")
            }
            None => bail!("{line}: {key} must be a whole number of seconds or a duration such as \"768h\""),
        },
        Value::String(s) => match crate::framework::convert::parse_duration(s) {
            Ok(secs) if secs >= 0 => Ok(secs),
            Ok(_) => bail!("{line}: {key} cannot be negative"),
            Err(e) => bail!("{line}: {key}: {e}"),
        },
        _ => bail!("{line}: {key} must be a duration such as \"768h\""),
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
                table: DEFAULT_PG_TABLE.into(),
                ha_enabled: false,
                ha_table: DEFAULT_PG_HA_TABLE.into(),
            }
        );
    }

    #[test]
    fn ha_settings_take_openbaos_names() {
        let cfg = parse(
            "storage \"postgresql\" {\n connection_url = \"postgres://u@h/db\"\n ha_enabled = \"true\"\n ha_table = \"locks\"\n}\n\
             listener \"tcp\" {\n tls_disable = 1\n cluster_address = \"127.0.0.1:8201\"\n}\n\
             api_addr = \"http://127.0.0.1:8200\"\ncluster_addr = \"https://127.0.0.1:8201\"\ndisable_clustering = false",
        )
        .unwrap();
        assert!(
            matches!(&cfg.storage, StorageConfig::Postgresql { ha_enabled: true, ha_table, .. } if ha_table == "locks")
        );
        assert_eq!(cfg.listeners[0].cluster_address.as_deref(), Some("127.0.0.1:8201"));
        assert_eq!(cfg.cluster_addr.as_deref(), Some("https://127.0.0.1:8201"));
        assert!(!cfg.disable_clustering);
        let bad = parse(
            "storage \"postgresql\" {\n connection_url = \"x\"\n ha_enabled = \"maybe\"\n}\nlistener \"tcp\" { tls_disable = 1 }",
        );
        assert!(bad.unwrap_err().to_string().starts_with("3:"));
        let bad =
            parse("storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = 1\n cluster_address = \"nowhere\"\n}");
        assert!(bad.unwrap_err().to_string().starts_with("4:"));
    }

    #[test]
    fn listener_http_settings_take_vaults_names() {
        let cfg = parse(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n http_read_header_timeout = \"2s\"\n \
             http_read_timeout = 5\n http_write_timeout = \"1m\"\n http_idle_timeout = \"0\"\n \
             max_request_size = -1\n max_request_duration = \"0s\"\n max_connections = \"16\"\n \
             disable_unauthed_generate_root_endpoints = true\n}",
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
        assert!(http.disable_unauthed_generate_root);
        let defaults = parse("storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = true }").unwrap();
        assert_eq!(defaults.listeners[0].http, crate::api::HttpLimits::default());
        let base = "storage \"inmem\" {}\nlistener \"tcp\" {\n tls_disable = true\n";
        assert!(error(&format!("{base} max_connections = 0\n}}")).starts_with("4: max_connections"));
        assert!(error(&format!("{base} max_request_size = 1.5\n}}")).starts_with("4: max_request_size"));
        assert!(error(&format!("{base} http_read_timeout = \"soon\"\n}}")).starts_with("4: http_read_timeout"));
    }

    #[test]
    fn telemetry_takes_vaults_settings() {
        let base = "storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = true }\n";
        let cfg = parse(base).unwrap();
        assert_eq!(cfg.telemetry, crate::telemetry::Settings::default());
        assert!(
            cfg.telemetry.prometheus_retention.is_zero(),
            "off unless asked, as Vault"
        );
        let cfg = parse(&format!(
            "{base}telemetry {{\n  prometheus_retention_time = \"30s\"\n  disable_hostname = true\n  enable_hostname_label = \"true\"\n}}"
        ))
        .unwrap();
        assert_eq!(cfg.telemetry.prometheus_retention, std::time::Duration::from_secs(30));
        assert!(cfg.telemetry.disable_hostname && cfg.telemetry.enable_hostname_label);
        let t = |body: &str| error(&format!("{base}telemetry {{\n{body}\n}}"));
        assert!(
            t("statsd_address = \"x:8125\"").starts_with("4: telemetry setting \"statsd_address\" is not supported")
        );
        assert!(t("bogus = 1").starts_with("4: unknown telemetry setting \"bogus\""));
        assert!(t("prometheus_retention_time = \"soon\"").starts_with("4: prometheus_retention_time"));
        assert!(t("disable_hostname = 2").starts_with("4: disable_hostname"));
        assert!(error(&format!("{base}telemetry \"x\" {{}}")).starts_with("3: the telemetry stanza takes no label"));
        assert!(error(&format!("{base}telemetry {{}}\ntelemetry {{}}")).starts_with("4: a second telemetry"));
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    /// The configuration reference: every setting the parser takes is
    /// handled by it (its error, if any, is about the value) and appears in
    /// docs/operations.md, as `name` or as `name = ...` in an example.
    #[test]
    fn every_setting_is_handled_and_documented() {
        let docs = include_str!("../../docs/operations.md");
        let documented = |key: &str| {
            docs.contains(&format!("`{key}`"))
                || docs.lines().any(|l| {
                    let l = l.trim_start().trim_start_matches('#').trim_start();
                    l.strip_prefix(key)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
        };
        let listener = "listener \"tcp\" {\n  tls_disable = true\n";
        let stanzas: [(&str, &str, &[&str]); 6] = [
            ("", "", TOP_LEVEL_SETTINGS),
            ("storage \"inmem\" {}\n", listener, LISTENER_SETTINGS),
            ("", "storage \"sqlite\" {\n  path = \"/x\"\n", SQLITE_SETTINGS),
            (
                "",
                "storage \"postgresql\" {\n  connection_url = \"postgres://x\"\n",
                POSTGRESQL_SETTINGS,
            ),
            ("", "telemetry {\n", TELEMETRY_SETTINGS),
            ("", "seal \"static\" {\n", STATIC_SEAL_SETTINGS),
        ];
        for (before, open, settings) in stanzas {
            for key in settings {
                let setting = format!("{key} = \"x\"\n");
                let text = match open {
                    "" => format!("storage \"inmem\" {{}}\n{listener}}}\n{setting}"),
                    _ if open == listener => format!("{before}{open}{setting}}}\n"),
                    _ => format!("{listener}}}\n{open}{setting}}}\n"),
                };
                if let Err(e) = parse(&text) {
                    let e = e.to_string();
                    assert!(
                        !e.contains("unknown") && !e.contains("not handled"),
                        "{key}: {e}\n{text}"
                    );
                }
                assert!(documented(key), "{key} is not in docs/operations.md");
            }
        }
        assert!(docs.contains("seal \"static\""));
    }

    #[test]
    fn the_static_seal_stanza_is_read_without_its_keys() {
        use crate::node::static_seal::KeySource;
        let base = "storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = true }\n";
        let cfg = parse(&format!(
            "{base}seal \"static\" {{\n  current_key_id = \"k2\"\n  current_key = \"file:///etc/k2\"\n  previous_key_id = \"k1\"\n  previous_key = \"env://OLD\"\n  disabled = \"false\"\n}}"
        ))
        .unwrap();
        let seal = cfg.seal.unwrap();
        assert_eq!(seal.current_key_id.as_deref(), Some("k2"));
        assert_eq!(seal.current_key, Some(KeySource::File("/etc/k2".into())));
        assert_eq!(seal.previous_key, Some(KeySource::Env("OLD".into())));
        let seal = |body: &str| error(&format!("{base}seal \"static\" {{\n{body}\n}}"));
        assert!(seal("bogus = 1").starts_with("4: unknown static seal setting \"bogus\""));
        assert!(seal("disabled = true").contains("seal migration"));
        assert!(error(&format!("{base}seal \"awskms\" {{}}")).starts_with("3: unsupported seal type"));
        assert!(error(&format!("{base}seal \"static\" {{}}\nseal \"static\" {{}}")).starts_with("4: a second seal"));
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
        assert!(error("storage \"sqlite\" {\n path = \"x\"\n").starts_with("2: invalid block body; expected `}`"));
        assert!(error("a = \"unterminated\n").starts_with("1: "));
        assert!(error("listener \"tcp\" {}\nstorage \"inmem\" {}").contains("tls_cert_file"));
        assert!(error(&format!("{base}storage \"inmem\" {{}}\n")).contains("second storage"));
        assert!(error("storage \"inmem\" {}").contains("no listener"));
        assert!(error("x = = 1").starts_with("1: invalid expression"));
        assert!(
            error(&format!("{base}api_addr = http")).starts_with("3: \"http\" is a variable (strings need quotes)")
        );
        assert!(error(&format!("{base}default_lease_ttl = -5")).starts_with("3: default_lease_ttl cannot be negative"));
        assert!(error(&format!("{base}log_level = \"info\"\nlog_level = \"debug\"")).starts_with("4: "));
        assert!(error("listener \"tcp\" {\n  address = 127.0.0.1:1\n}\n").starts_with("2: "));
    }
}
