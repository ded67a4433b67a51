//! `sys/replication/...`: Vault's replication API, as far as Warden builds
//! it (crate::replication): the status paths (unauthenticated, Vault's
//! shapes; disaster recovery is always `disabled`), enabling or disabling
//! this cluster as a performance primary, and a primary's activation
//! tokens and revocations of its secondaries (sudo).

use crate::error::Error;
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
        Path::new("replication/performance/primary/secondary-token")
            .sudo()
            .field(Field::new("id", FieldType::Str, "An opaque identifier of the secondary, unique (e.g. 'us-east'); it is what revoke-secondary names.").required())
            .field(Field::new("ttl", FieldType::Duration, "How long the activation token lives (default 30m)."))
            .field(Field::new("secondary_public_key", FieldType::Str, "A secondary's public key to encrypt the activation with (not supported: the answer is response-wrapped)."))
            .op(Update, handler!(secondary_token), "Generate a performance secondary activation token.")
            .help("Creates a secondary's activation token.", "Makes the secondary's publication of the replicated rows and its replication login, and answers wrap_info only: the token unwraps once, within its TTL, to what the secondary needs to subscribe."),
        Path::new("replication/performance/primary/revoke-secondary")
            .sudo()
            .field(Field::new("id", FieldType::Str, "The secondary's identifier.").required())
            .op(Update, handler!(revoke_secondary), "Revoke a performance secondary's ability to connect to the primary.")
            .help("Cuts a secondary off.", "Its publication and replication login are dropped and its stream ended at once; a new token is needed to connect again."),
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
    replication::disable_primary(node.physical(), &barrier).await?;
    Ok(None)
}

async fn secondary_token(node: &Node, r: &Req<'_>) -> Reply {
    if r.fields.opt_str("secondary_public_key").is_some_and(|k| !k.is_empty()) {
        return Err(Error::bad(
            "secondary_public_key is not supported: the activation token is response-wrapped (omit the key)",
        ));
    }
    let ttl = match r.fields.opt_duration("ttl") {
        None | Some(0) => replication::DEFAULT_TOKEN_TTL,
        Some(ttl) if ttl < 0 => return Err(Error::bad("ttl cannot be negative")),
        Some(ttl) => ttl,
    };
    let barrier = node.barrier()?;
    let api_addr = node.ha().map(|ha| ha.settings.api_addr.clone()).unwrap_or_default();
    let id = r.fields.opt_str("id").unwrap_or_default();
    let activation = replication::secondary_token(node.physical(), &barrier, &id, &api_addr).await?;
    let core = node.core()?;
    let path = format!("sys/{}", r.path);
    let request_id = r.request_id.to_string();
    let wrapped = core
        .wrap_response(Logical::data(activation.data), ttl, &path, &request_id)
        .await;
    match wrapped {
        Ok(wrapped) => Ok(Some(wrapped)),
        Err(e) => {
            // No token to hand over: the secondary's publication goes too.
            let _ = replication::revoke_secondary(node.physical(), &barrier, &id).await;
            Err(e)
        }
    }
}

async fn revoke_secondary(node: &Node, r: &Req<'_>) -> Reply {
    let barrier = node.barrier()?;
    let id = r.fields.opt_str("id").unwrap_or_default();
    replication::revoke_secondary(node.physical(), &barrier, &id).await?;
    Ok(None)
}
