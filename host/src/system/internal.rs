//! `sys/internal/specs/openapi`: the OpenAPI document of every path this
//! server serves, generated from the declarations (sys/, auth/token/,
//! every enabled auth method and every mount's engine under its mount
//! path), as Vault generates it.

use crate::framework::{Path, Req, openapi};
use crate::handler;
use crate::logical::Operation::Read;
use crate::logical::{Reply, Response};
use crate::node::Node;

pub fn paths() -> Vec<Path<Node>> {
    vec![
        Path::new("internal/specs/openapi")
            .op(
                Read,
                handler!(document),
                "Generate an OpenAPI 3 document of all mounted paths.",
            )
            .help(
                "Generate an OpenAPI 3 document of all mounted paths.",
                "The document lists every path of sys/, auth/token/ and each mount, with its operations and fields.",
            ),
    ]
}

async fn document(node: &Node, _: &Req<'_>) -> Reply {
    let core = node.core()?;
    let mut backends = vec![
        ("sys/".to_string(), super::BACKEND.describe()),
        ("auth/token/".to_string(), crate::core::token::BACKEND.describe()),
    ];
    for mount in core.mounts() {
        backends.push((mount.path().to_string(), mount.engine.describe()));
    }
    for auth in core.auth_mounts() {
        backends.push((auth.view.path.clone(), auth.method.describe()));
    }
    let refs: Vec<(&str, _)> = backends.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    Ok(Some(Response::raw(openapi::document(&refs))))
}
