//! `sys/replication/...`: Vault's replication API, as far as Warden builds
//! it (crate::replication): the status paths (unauthenticated, Vault's
//! shapes; disaster recovery is always `disabled`) and enabling or
//! disabling this cluster as a performance primary (sudo).

use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{Read, Update};
use crate::logical::{Reply, Response as Logical};
use crate::node::Node;
use crate::replication;
use serde_json::json;

pub fn paths() -> Vec<Path<Node>> {
    vec![
        Path::new("replication/status")
            .unauthenticated()
            .op(Read, handler!(status), "Check the status of replication.")
            .help("The status of both kinds of replication.", "`performance` as sys/replication/performance/status answers; `dr` is always disabled (Warden has no disaster recovery replication)."),
        Path::new("replication/performance/status")
            .unauthenticated()
            .op(Read, handler!(performance_status), "Check the status of performance replication.")
            .help("The status of performance replication.", "Disabled, or as a primary: the replication set's cluster id, the highest WAL index of the replicated rows, the root over their leaf hashes (computed by PostgreSQL), and the secondaries."),
        Path::new("replication/dr/status")
            .unauthenticated()
            .op(Read, handler!(dr_status), "Check the status of disaster recovery replication.")
            .help("The status of disaster recovery replication.", "Always disabled: Warden has no disaster recovery replication."),
        Path::new("replication/performance/primary/enable")
            .sudo()
            .field(Field::new("primary_cluster_addr", FieldType::Str, "The cluster address the primary gives its secondaries (default: this node's cluster_addr)."))
            .op(Update, handler!(enable_primary), "Enables performance replication with this cluster as the primary.")
            .help("Makes this cluster a performance primary.", "Needs PostgreSQL storage with wal_level = logical and a login that may publish (REPLICATION and CREATEROLE, or superuser); anything else is a 400 and nothing changes."),
        Path::new("replication/performance/primary/disable")
            .sudo()
            .op(Update, handler!(disable_primary), "Disables performance replication on this primary.")
            .help("Stops being a performance primary.", "The cluster's replication mode goes back to disabled."),
    ]
}

async fn status(node: &Node, _: &Req<'_>) -> Reply {
    let barrier = node.barrier()?;
    let performance = replication::performance_status(node.physical(), &barrier).await?;
    Ok(Some(Logical::data(json!({
        "dr": replication::dr_status(),
        "performance": performance,
    }))))
}

async fn performance_status(node: &Node, _: &Req<'_>) -> Reply {
    let barrier = node.barrier()?;
    Ok(Some(Logical::data(
        replication::performance_status(node.physical(), &barrier).await?,
    )))
}

async fn dr_status(_: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(Logical::data(replication::dr_status())))
}

async fn enable_primary(node: &Node, r: &Req<'_>) -> Reply {
    let barrier = node.barrier()?;
    let addr = match r.fields.opt_str("primary_cluster_addr").filter(|a| !a.is_empty()) {
        Some(addr) => addr,
        None => node.ha().map(|ha| ha.settings.cluster_addr.clone()).unwrap_or_default(),
    };
    let cluster_id = node.cluster_id().unwrap_or_default();
    replication::enable_primary(node.physical(), node.storage_type(), &barrier, &cluster_id, addr).await?;
    Ok(None)
}

async fn disable_primary(node: &Node, _: &Req<'_>) -> Reply {
    let barrier = node.barrier()?;
    replication::disable_primary(&barrier).await?;
    Ok(None)
}
