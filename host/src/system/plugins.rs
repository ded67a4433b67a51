//! `sys/plugins/catalog`: the database plugins Warden can run (its
//! built-in drivers and registered components).

use crate::framework::{Path, Req};
use crate::handler;
use crate::logical::Operation::{List, Read};
use crate::logical::{Reply, Response};
use crate::node::Node;
use crate::runtime::PluginKind;
use serde_json::{Value, json};

pub fn paths() -> Vec<Path<Node>> {
    vec![
        Path::new("plugins/catalog/database/?")
            .op(List, handler!(catalog), "List the plugins in the catalog by type.")
            .op(Read, handler!(catalog), "List the plugins in the catalog by type.")
            .help(
                "Lists the plugins in the catalog.",
                "The names of the database plugins Warden can run.",
            ),
    ]
}

async fn catalog(node: &Node, _: &Req<'_>) -> Reply {
    let core = node.core()?;
    let plugins: Vec<_> = core
        .runtime
        .plugins()
        .into_iter()
        .filter(|p| p.kind == PluginKind::Database)
        .collect();
    let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    let details: Vec<Value> = plugins
        .iter()
        .map(|p| {
            json!({
                "type": "database",
                "name": p.name,
                "version": if p.builtin { format!("v{}+builtin.warden", env!("CARGO_PKG_VERSION")) } else { String::new() },
                "builtin": p.builtin,
                "sha256": p.sha256,
                "deprecation_status": if p.builtin { "supported" } else { "" },
            })
        })
        .collect();
    Ok(Some(Response::data(
        json!({ "keys": names, "database": names, "detailed": details }),
    )))
}
