//! `sys/plugins/catalog`, read-only, in Vault's shapes:
//! - `GET sys/plugins/catalog`: the names per type plus `detailed`;
//! - `LIST sys/plugins/catalog/<type>`: `keys`;
//! - `GET sys/plugins/catalog/<type>/<name>` (or the untyped, deprecated
//!   `sys/plugins/catalog/<name>`): one plugin.
//!
//! Database plugins are the drivers (built in, or dropped in); the secrets
//! engines Warden mounts are the built-in `secret` plugins. Credential
//! generators are no Vault plugin type and are not listed.

use crate::error::Result;
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{List, Read};
use crate::logical::{Reply, Response};
use crate::node::Node;
use crate::runtime::PluginKind;
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
            .op(
                Read,
                handler!(read),
                "Return the configuration data for the plugin with the given name.",
            )
            .help(
                "Reads one plugin of the catalog.",
                "Its name, version, whether it is built in, and the digest of one dropped in.",
            ),
        Path::new("plugins/catalog/(?P<name>.+)")
            .field(name())
            .op(
                Read,
                handler!(read),
                "Return the configuration data for the plugin with the given name (deprecated: name its type).",
            )
            .help(
                "Reads one plugin of the catalog.",
                "Its name, version, whether it is built in, and the digest of one dropped in.",
            ),
    ]
}

/// (type, name, builtin, sha256), sorted by type then name.
fn plugins(node: &Node) -> Result<Vec<(&'static str, String, bool, String)>> {
    let core = node.core()?;
    let mut plugins: Vec<_> = core
        .runtime
        .plugins()
        .into_iter()
        .filter(|p| p.kind == PluginKind::Database)
        .map(|p| ("database", p.name.clone(), p.builtin, p.sha256.clone()))
        .collect();
    // The secrets engine types the server registered.
    for engine in core.engines().names() {
        plugins.push(("secret", engine.to_string(), true, String::new()));
    }
    plugins.sort();
    Ok(plugins)
}

fn version(builtin: bool) -> String {
    match builtin {
        true => format!("v{}+builtin.warden", env!("CARGO_PKG_VERSION")),
        false => String::new(),
    }
}

async fn all(node: &Node, _: &Req<'_>) -> Reply {
    let plugins = plugins(node)?;
    let mut data = serde_json::Map::new();
    for t in TYPES {
        let names: Vec<&str> = plugins.iter().filter(|p| p.0 == t).map(|p| p.1.as_str()).collect();
        if !names.is_empty() {
            data.insert(t.to_string(), json!(names));
        }
    }
    let detailed: Vec<Value> = plugins
        .iter()
        .map(|(t, n, builtin, sha256)| {
            let mut entry = json!({"type": t, "name": n, "version": version(*builtin), "builtin": builtin});
            match builtin {
                true => entry["deprecation_status"] = json!("supported"),
                false => entry["sha256"] = json!(sha256),
            }
            entry
        })
        .collect();
    data.insert("detailed".into(), json!(detailed));
    Ok(Some(Response::data(Value::Object(data))))
}

/// An empty list is a 404, as every LIST in Vault.
async fn list_type(node: &Node, r: &Req<'_>) -> Reply {
    let t = r.fields.str("type");
    let keys: Vec<String> = plugins(node)?.into_iter().filter(|p| p.0 == t).map(|p| p.1).collect();
    Ok(Some(keys).filter(|k| !k.is_empty()).map(Response::list))
}

async fn read(node: &Node, r: &Req<'_>) -> Reply {
    let (kind, name) = (r.fields.opt_str("type"), r.fields.str("name"));
    let plugins = plugins(node)?;
    let found = plugins
        .iter()
        .find(|p| p.1 == name && kind.as_deref().is_none_or(|k| k == p.0));
    Ok(found.map(|(_, n, builtin, sha256)| {
        let mut data = json!({
            "args": [],
            "builtin": builtin,
            "command": "",
            "name": n,
            // Vault shows no digest for a built-in plugin.
            "sha256": if *builtin { "" } else { sha256.as_str() },
            "version": version(*builtin),
        });
        if *builtin {
            data["deprecation_status"] = json!("supported");
        }
        Response::data(data)
    }))
}
