//! `sys/plugins/catalog` and `sys/plugins/reload/backend`, in Vault's shapes:
//! - `GET sys/plugins/catalog`: the names per type plus `detailed`;
//! - `LIST sys/plugins/catalog/<type>`: `keys`;
//! - `GET|PUT|DELETE sys/plugins/catalog/<type>/<name>` (`version` picks
//!   one version): read, register, deregister one plugin; the untyped,
//!   deprecated `sys/plugins/catalog/<name>` answers a warning, as Vault;
//! - `PUT sys/plugins/reload/backend`: restart the mounts of a plugin, or
//!   the named mounts.
//!
//! Database plugins are the drivers (built in, or registered: a `.wasm`
//! component inside the plugin directory, checked against its SHA-256);
//! the secrets engines and auth methods Warden mounts are its built-in
//! `secret` and `auth` plugins, which cannot be replaced. Credential
//! generators are no Vault plugin type and are not listed.

use crate::error::{Error, Result};
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{Delete, List, Read, Update};
use crate::logical::{Reply, Response};
use crate::node::Node;
use crate::runtime::external::normalize_version;
use crate::runtime::{CatalogEntry, PluginKind, catalog};
use serde_json::{Value, json};

const TYPES: [&str; 3] = ["auth", "database", "secret"];

pub fn paths() -> Vec<Path<Node>> {
    let kind = || {
        Field::new(
            "type",
            FieldType::Str,
            "The type of the plugin: auth, database or secret.",
        )
    };
    let name = || Field::new("name", FieldType::Str, "The name of the plugin.");
    let version = || Field::new("version", FieldType::Str, "The semantic version of the plugin.");
    vec![
        Path::new("plugins/catalog/?")
            .op(Read, handler!(all), "List the plugins in the catalog.")
            .help(
                "Lists all the plugins known to Warden.",
                "The names of the plugins per type, and each one's details.",
            ),
        Path::new("plugins/catalog/(?P<type>auth|database|secret)/?")
            .field(kind())
            .op(List, handler!(list_type), "List the plugins in the catalog by type.")
            .help(
                "Lists the plugins of one type.",
                "The names of the plugins of the type.",
            ),
        Path::new("plugins/catalog/(?P<type>auth|database|secret)/(?P<name>.+)")
            .field(kind())
            .field(name())
            .field(version())
            .field(Field::new(
                "sha256",
                FieldType::Str,
                "The SHA256 sum of the component file, hex encoded.",
            ))
            .field(Field::new("sha_256", FieldType::Str, "The SHA256 sum (older name of sha256)."))
            .field(Field::new(
                "command",
                FieldType::Str,
                "The component file (`name.wasm`) inside the plugin directory.",
            ))
            .field(Field::new(
                "args",
                FieldType::StrList,
                "Accepted for Vault's clients and ignored: a component gets no arguments.",
            ))
            .field(Field::new(
                "env",
                FieldType::StrList,
                "Accepted for Vault's clients and ignored: a component gets no environment.",
            ))
            .op(
                Read,
                handler!(read),
                "Return the configuration data for the plugin with the given name.",
            )
            .op(Update, handler!(register), "Register a new plugin, or updates an existing one with the supplied name.")
            .op(Delete, handler!(deregister), "Remove the plugin with the given name.")
            .help(
                "Reads, registers and removes one plugin of the catalog.",
                "A database plugin is a WebAssembly component (`command`, a file inside the plugin directory) with its SHA-256; the file is checked against it at registration and at every load.",
            ),
        Path::new("plugins/catalog/(?P<name>.+)")
            .field(name())
            .op(
                Read,
                handler!(read_untyped),
                "Return the configuration data for the plugin with the given name (deprecated: name its type).",
            )
            .op(Update, handler!(register_untyped), "Register a plugin (deprecated: name its type).")
            .help(
                "Deprecated: the plugin's type must be part of the path.",
                "Use sys/plugins/catalog/:type/:name.",
            ),
        Path::new("plugins/reload/backend")
            .field(Field::new(
                "plugin",
                FieldType::Str,
                "The name of the plugin to reload, as registered in the plugin catalog.",
            ))
            .field(Field::new(
                "mounts",
                FieldType::CommaList,
                "The mount paths of the plugin backends to reload.",
            ))
            .field(Field::new(
                "scope",
                FieldType::Str,
                "Empty, or \"global\" (every node of the cluster: one node here).",
            ))
            .op(Update, handler!(reload), "Reload mounted plugin backends.")
            .help(
                "Reload mounts that use a particular backend plugin.",
                "Either the plugin name or the desired plugin backend mounts are required. Their connections and driver instances are closed, and registered components are read and checked again on their next use.",
            ),
    ]
}

/// One line of the catalog: a built-in plugin, or one registered version.
struct Listed {
    kind: &'static str,
    name: String,
    version: String,
    registered: Option<CatalogEntry>,
}

/// Every plugin the request's namespace sees, sorted by type, name and
/// version: the built-in ones and those registered in the namespace, by
/// their name in it (the root namespace's registrations are its own; a
/// namespace's connections fall back on them, see
/// [`crate::runtime::Runtime::qualify`]).
fn plugins(node: &Node, r: &Req<'_>) -> Result<Vec<Listed>> {
    let core = node.core()?;
    let builtin = |kind, name: &str| Listed {
        kind,
        name: name.to_string(),
        version: catalog::builtin_version(),
        registered: None,
    };
    let mut plugins: Vec<Listed> = core
        .runtime
        .plugins()
        .iter()
        .filter(|p| p.kind == PluginKind::Database && p.builtin)
        .map(|p| builtin("database", &p.name))
        .collect();
    let own = |e: &CatalogEntry| {
        e.name
            .strip_prefix(r.namespace.path.as_str())
            .is_some_and(|rest| !rest.contains('/'))
    };
    plugins.extend(core.runtime.catalog_entries().into_iter().filter(own).map(|e| Listed {
        kind: "database",
        name: r.namespace.relative(&e.name).to_string(),
        version: e.version.clone(),
        registered: Some(e),
    }));
    // The secrets engine types and auth methods the server was built with.
    plugins.extend(core.engines().names().map(|n| builtin("secret", n)));
    plugins.extend(crate::credential::TYPES.iter().map(|n| builtin("auth", n)));
    plugins.sort_by(|a, b| (a.kind, &a.name, &a.version).cmp(&(b.kind, &b.name, &b.version)));
    Ok(plugins)
}

/// The names of one type, each once (a name may have several versions).
fn names<'a>(plugins: &'a [Listed], kind: &str) -> Vec<&'a str> {
    let mut names: Vec<&str> = plugins
        .iter()
        .filter(|p| p.kind == kind)
        .map(|p| p.name.as_str())
        .collect();
    names.dedup();
    names
}

async fn all(node: &Node, r: &Req<'_>) -> Reply {
    let plugins = plugins(node, r)?;
    let mut data = serde_json::Map::new();
    for t in TYPES {
        let names = names(&plugins, t);
        if !names.is_empty() {
            data.insert(t.to_string(), json!(names));
        }
    }
    let detailed: Vec<Value> = plugins
        .iter()
        .map(|p| {
            let mut entry = json!({
                "type": p.kind,
                "name": p.name,
                "version": p.version,
                "builtin": p.registered.is_none(),
            });
            match &p.registered {
                None => entry["deprecation_status"] = json!("supported"),
                Some(e) => entry["sha256"] = json!(e.sha256),
            }
            entry
        })
        .collect();
    data.insert("detailed".into(), json!(detailed));
    Ok(Some(Response::data(Value::Object(data))))
}

/// An empty list is a 404, as every LIST in Vault.
async fn list_type(node: &Node, r: &Req<'_>) -> Reply {
    let plugins = plugins(node, r)?;
    let keys: Vec<String> = names(&plugins, &r.fields.str("type"))
        .into_iter()
        .map(str::to_string)
        .collect();
    Ok(Some(keys).filter(|k| !k.is_empty()).map(Response::list))
}

async fn read(node: &Node, r: &Req<'_>) -> Reply {
    let (kind, name, version) = (r.fields.str("type"), r.fields.str("name"), r.fields.str("version"));
    let core = node.core()?;
    let registered = match kind.as_str() {
        // The namespace's own registration, else the built-in.
        "database" => match core.runtime.lookup(&r.namespace.full(&name), &version) {
            Ok(found) => found,
            Err(_) if !r.namespace.is_root() => match core.runtime.lookup(&name, &version) {
                Ok(None) => None,
                _ => return Ok(None),
            },
            Err(_) => return Ok(None),
        },
        _ => {
            let known = plugins(node, r)?.into_iter().any(|p| p.kind == kind && p.name == name);
            if !known || !(version.is_empty() || version == catalog::builtin_version()) {
                return Ok(None);
            }
            None
        }
    };
    let data = match registered {
        None => json!({
            "args": null,
            "builtin": true,
            "command": "",
            "declarative": false,
            "deprecation_status": "supported",
            "name": name,
            "oci": false,
            // Vault shows no digest for a built-in plugin.
            "sha256": "",
            "version": catalog::builtin_version(),
        }),
        Some(e) => json!({
            "args": e.args,
            "builtin": false,
            "command": e.command,
            "declarative": false,
            "name": r.namespace.relative(&e.name),
            "oci": false,
            "sha256": e.sha256,
            "version": e.version,
        }),
    };
    Ok(Some(Response::data(data)))
}

/// Vault's answer on the deprecated untyped path: no data, a warning.
async fn read_untyped(_: &Node, r: &Req<'_>) -> Reply {
    let name = r.fields.str("name");
    Ok(Some(Response::default().with_warning(format!(
        "Deprecated API endpoint, cannot read plugin information from catalog for {name:?}"
    ))))
}

async fn register_untyped(_: &Node, _: &Req<'_>) -> Reply {
    Err(Error::bad(
        "missing plugin type: register the plugin at sys/plugins/catalog/:type/:name",
    ))
}

/// Register (or replace) one version of a database plugin. The checks run
/// in Vault's order and with its texts; then the file is read from the
/// plugin directory, checked against the digest and compiled, and only
/// then stored.
async fn register(node: &Node, r: &Req<'_>) -> Reply {
    let d = &r.fields;
    let (kind, name) = (d.str("type"), d.str("name"));
    if kind != "database" {
        return Err(Error::bad(format!(
            "only database plugins can be registered: Warden's {kind} plugins are built in"
        )));
    }
    if name.contains('/') {
        return Err(Error::bad("a plugin name cannot contain '/'"));
    }
    let version = normalize_version(&d.str("version")).map_err(Error::bad)?;
    if version.contains("+builtin") {
        return Err(Error::bad(format!(
            "version {version:?} is not allowed because 'builtin' is a reserved metadata identifier"
        )));
    }
    let sha256 = d
        .opt_str("sha256")
        .filter(|s| !s.is_empty())
        .or_else(|| d.opt_str("sha_256"))
        .unwrap_or_default();
    if sha256.is_empty() {
        return Err(Error::bad("missing SHA-256 value"));
    }
    let command = d.str("command");
    if command.is_empty() {
        return Err(Error::bad("missing command value"));
    }
    let digest = hex::decode(&sha256).map_err(|_| Error::bad("Could not decode SHA-256 value from Hex"))?;
    if digest.len() != 32 {
        return Err(Error::bad(format!(
            "a SHA-256 value is 32 bytes (64 hex digits), not {}",
            digest.len()
        )));
    }
    // A namespace's plugin is kept by its name with the namespace's path
    // in front: its connections find it first.
    let entry = CatalogEntry {
        name: r.namespace.full(&name),
        kind,
        version,
        command,
        sha256: hex::encode(digest),
        args: d.opt_list("args").unwrap_or_default(),
        env: d.opt_list("env").unwrap_or_default(),
    };
    node.core()?.register_plugin(entry).await?;
    Ok(None)
}

/// Remove one registered version; a built-in plugin, or one not
/// registered, is left as it is (204 all the same, as Vault).
async fn deregister(node: &Node, r: &Req<'_>) -> Reply {
    let (kind, name) = (r.fields.str("type"), r.fields.str("name"));
    let version = normalize_version(&r.fields.str("version")).map_err(Error::bad)?;
    if kind == "database" && !name.contains('/') {
        node.core()?
            .deregister_plugin(&kind, &r.namespace.full(&name), &version)
            .await?;
    }
    Ok(None)
}

/// Restart mounts: their connections and idle driver instances are
/// closed, and every registered component is read from its file and
/// checked again on its next use.
async fn reload(node: &Node, r: &Req<'_>) -> Reply {
    let d = &r.fields;
    let plugin = d.str("plugin");
    let mounts = d.opt_list("mounts").unwrap_or_default();
    let scope = d.str("scope");
    if !scope.is_empty() && scope != "global" {
        return Err(Error::bad("reload scope must be omitted or set to \"global\""));
    }
    match (plugin.is_empty(), mounts.is_empty()) {
        (false, false) => return Err(Error::bad("plugin and mounts cannot be set at the same time")),
        (true, true) => return Err(Error::bad("plugin or mounts must be provided")),
        _ => {}
    }
    let core = node.core()?;
    let mut targets = Vec::new();
    if !plugin.is_empty() {
        let listed = plugins(node, r)?;
        match listed.iter().find(|p| p.name == plugin).map(|p| p.kind) {
            Some("database") => {
                return Err(Error::bad(format!(
                    "plugin {plugin:?} cannot be reloaded, only plugins of type auth and secret can be reloaded"
                )));
            }
            Some(_) => targets.extend(core.mounts().into_iter().filter(|m| m.record.kind == plugin)),
            None => return Err(Error::bad(format!("plugin not found in the catalog: {plugin:?}"))),
        }
    }
    for path in &mounts {
        let path = format!("{}/", path.trim_matches('/'));
        // Auth methods keep no connections: nothing to restart.
        if let Some(below) = path.strip_prefix("auth/")
            && core.auth_mount_at(below).is_some()
        {
            continue;
        }
        match core.mounts().into_iter().find(|m| m.path() == path) {
            Some(m) => targets.push(m),
            None => {
                return Err(Error::bad(format!(
                    "1 error occurred:\n\t* cannot fetch mount entry on {path:?}\n\n"
                )));
            }
        }
    }
    core.runtime.unload_registered();
    for mount in targets {
        mount.engine.reload(&mount.view).await;
    }
    Ok(Some(Response::data(json!({ "reload_id": r.request_id }))))
}
