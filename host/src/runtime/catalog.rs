//! The built-in plugins: the components built into the binary, and their
//! names and version; and the catalog entries a dev server registers for
//! every `<name>.wasm` in its `-dev-plugin-dir` folder.

use crate::runtime::{CatalogEntry, PluginKind, Runtime};
use std::path::Path;
use std::sync::Arc;

/// The version the catalog shows for built-in plugins, as Vault's
/// `v1.x.y+builtin` (OpenBao: `+builtin.bao`).
pub fn builtin_version() -> String {
    format!("v{}+builtin.warden", env!("CARGO_PKG_VERSION"))
}

/// The built-in password generator (Vault's default password rules).
pub const PASSWORD_GENERATOR: &str = "builtin-password-generator";
pub const POSTGRES_PLUGIN: &str = "postgresql-database-plugin";
pub const MONGODB_PLUGIN: &str = "mongodb-database-plugin";
/// Vault's and OpenBao's Redis plugin (ACL users), built on the driver SDK.
pub const REDIS_PLUGIN: &str = "redis-database-plugin";
/// Vault's MySQL plugin names: one component serves them all; the host
/// passes the name in the configuration JSON (`plugin_name`), which picks
/// the default username template (32 characters, or 16 for the last three).
pub const MYSQL_PLUGINS: [&str; 4] = [
    "mysql-database-plugin",
    "mysql-aurora-database-plugin",
    "mysql-rds-database-plugin",
    "mysql-legacy-database-plugin",
];

/// Vault's `rsa_private_key` credentials: an RSA key pair.
pub const RSA_KEY_GENERATOR: &str = "builtin-rsa-key-generator";
/// Vault's `client_certificate` credentials: a key and a certificate from a CA.
pub const CLIENT_CERT_GENERATOR: &str = "builtin-client-certificate-generator";

static POSTGRES_WASM: &[u8] = include_bytes!(env!("WARDEN_COMPONENT_POSTGRES"));
static PASSWORD_WASM: &[u8] = include_bytes!(env!("WARDEN_COMPONENT_PASSWORD"));
static RSA_KEY_WASM: &[u8] = include_bytes!(env!("WARDEN_COMPONENT_RSA_KEY"));
static CLIENT_CERT_WASM: &[u8] = include_bytes!(env!("WARDEN_COMPONENT_CLIENT_CERT"));
static MONGODB_WASM: &[u8] = include_bytes!(env!("WARDEN_COMPONENT_MONGODB"));
static MYSQL_WASM: &[u8] = include_bytes!(env!("WARDEN_COMPONENT_MYSQL"));
static REDIS_WASM: &[u8] = include_bytes!(env!("WARDEN_COMPONENT_REDIS"));

/// The same components compiled to machine code by build.rs (empty in a
/// debug or cross build): loading one takes milliseconds where compiling
/// takes seconds.
static POSTGRES_CODE: &[u8] = include_bytes!(env!("WARDEN_PRECOMPILED_POSTGRES"));
static PASSWORD_CODE: &[u8] = include_bytes!(env!("WARDEN_PRECOMPILED_PASSWORD"));
static RSA_KEY_CODE: &[u8] = include_bytes!(env!("WARDEN_PRECOMPILED_RSA_KEY"));
static CLIENT_CERT_CODE: &[u8] = include_bytes!(env!("WARDEN_PRECOMPILED_CLIENT_CERT"));
static MONGODB_CODE: &[u8] = include_bytes!(env!("WARDEN_PRECOMPILED_MONGODB"));
static MYSQL_CODE: &[u8] = include_bytes!(env!("WARDEN_PRECOMPILED_MYSQL"));
static REDIS_CODE: &[u8] = include_bytes!(env!("WARDEN_PRECOMPILED_REDIS"));

/// The credential types (a role's `credential_type`) a database plugin can
/// use. As in Vault, the PostgreSQL, MySQL, MongoDB and Redis plugins take
/// passwords only; a dropped-in plugin cannot declare more yet, so it gets
/// passwords only too. A driver that can use keys or certificates is listed
/// here by name.
pub fn credential_types(_plugin: &str) -> &'static [&'static str] {
    &["password"]
}

pub fn register_builtins(runtime: &Runtime) {
    use PluginKind::{Database, Generator};
    let builtins: [(&str, PluginKind, &'static [u8], &'static [u8]); 6] = [
        (POSTGRES_PLUGIN, Database, POSTGRES_WASM, POSTGRES_CODE),
        (MONGODB_PLUGIN, Database, MONGODB_WASM, MONGODB_CODE),
        (REDIS_PLUGIN, Database, REDIS_WASM, REDIS_CODE),
        (PASSWORD_GENERATOR, Generator, PASSWORD_WASM, PASSWORD_CODE),
        (RSA_KEY_GENERATOR, Generator, RSA_KEY_WASM, RSA_KEY_CODE),
        (CLIENT_CERT_GENERATOR, Generator, CLIENT_CERT_WASM, CLIENT_CERT_CODE),
    ];
    for (name, kind, wasm, code) in builtins {
        runtime.register_builtin(name, kind, Arc::from(wasm), code);
    }
    let mysql: Arc<[u8]> = Arc::from(MYSQL_WASM);
    for name in MYSQL_PLUGINS {
        runtime.register_builtin(name, Database, mysql.clone(), MYSQL_CODE);
    }
}

/// A catalog entry for every `<name>.wasm` file of `dir` (a dev server's
/// `-dev-plugin-dir`): database plugin `<name>`, unversioned, with the
/// file's digest.
pub fn dev_entries(dir: &Path) -> anyhow::Result<Vec<CatalogEntry>> {
    use sha2::Digest;
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") {
            continue;
        }
        let (Some(name), Some(command)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.file_name().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        entries.push(CatalogEntry {
            name: name.to_string(),
            kind: "database".into(),
            version: String::new(),
            command: command.to_string(),
            sha256: hex::encode(sha2::Sha256::digest(std::fs::read(&path)?)),
            args: Vec::new(),
            env: Vec::new(),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}
