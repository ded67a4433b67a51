//! HA's sys paths: `sys/leader` (served by any node, without a token),
//! `sys/ha-status` (the members heard from lately) and `sys/step-down`
//! (the active node gives the lock to a standby; sudo). Their answers are
//! Vault's shapes; without HA storage `sys/leader` says `ha_enabled:
//! false` and `sys/ha-status` lists this node alone.

use crate::error::{Error, Result};
use crate::framework::{Path, Req};
use crate::handler;
use crate::logical::Operation::{Read, Update};
use crate::logical::{Reply, Response as Logical};
use crate::node::Node;
use chrono::SecondsFormat;
use serde_json::{Value, json};

pub fn paths() -> Vec<Path<Node>> {
    vec![
        Path::new("ha-status")
            .op(Read, handler!(ha_status), "Check the HA status of a Warden cluster.")
            .help("Lists the nodes of the HA cluster.", "Each node heard from in the last 15 seconds: its addresses, whether it is the active node and when it was last heard from."),
        Path::new("step-down")
            .sudo()
            .op(Update, handler!(step_down), "Cause the node to give up active status.")
            .help("Forces the active node to step down.", "The active node stops its core and frees the HA lock; a standby takes over within a second or so. The node stays a standby for 10 seconds."),
    ]
}

const NEVER: &str = "0001-01-01T00:00:00Z";

/// `sys/leader`: Vault's LeaderResponse.
pub async fn leader(node: &Node) -> Result<Value> {
    let Some(ha) = node.ha() else {
        return Ok(super::seal::leader());
    };
    if node.sealed() {
        return Err(Error::Sealed);
    }
    let active = ha.is_active();
    if !active && ha.leader().is_none_or(|l| l.expired) {
        ha.refresh_leader().await;
    }
    let (leader_address, leader_cluster_address) = match (active, ha.leader()) {
        (true, _) => (ha.settings.api_addr.clone(), ha.settings.cluster_addr.clone()),
        (false, Some(l)) if !l.expired => (l.address.api_addr, l.address.cluster_addr),
        _ => (String::new(), String::new()),
    };
    let active_time = match (active, ha.active_since()) {
        (true, Some(t)) => t.to_rfc3339_opts(SecondsFormat::Nanos, true),
        _ => NEVER.to_string(),
    };
    Ok(json!({
        "ha_enabled": true,
        "is_self": active,
        "active_time": active_time,
        "leader_address": leader_address,
        "leader_cluster_address": leader_cluster_address,
        "performance_standby": false,
        "performance_standby_last_remote_wal": 0,
    }))
}

async fn ha_status(node: &Node, _: &Req<'_>) -> Reply {
    let nodes = match node.ha() {
        None => vec![json!({
            "hostname": "",
            "api_address": "",
            "cluster_address": "",
            "active_node": true,
            "last_echo": null,
            "version": env!("CARGO_PKG_VERSION"),
        })],
        Some(ha) => {
            let leader = ha.leader().filter(|l| !l.expired).map(|l| l.node_id);
            let active_id = match ha.is_active() {
                true => Some(ha.node_id.clone()),
                false => leader,
            };
            ha.members()
                .await?
                .into_iter()
                .map(|m| {
                    let active = active_id.as_deref() == Some(m.node_id.as_str());
                    json!({
                        "hostname": m.address.hostname,
                        "api_address": m.address.api_addr,
                        "cluster_address": m.address.cluster_addr,
                        "active_node": active,
                        // Vault: the active node has no echo of its own.
                        "last_echo": if active { Value::Null } else { json!(m.last_echo.to_rfc3339_opts(SecondsFormat::Nanos, true)) },
                        "version": m.address.version,
                    })
                })
                .collect()
        }
    };
    let data = json!({ "nodes": nodes });
    Ok(Some(Logical {
        top_level: data.as_object().cloned(),
        ..Logical::data(data)
    }))
}

async fn step_down(node: &Node, _: &Req<'_>) -> Reply {
    match node.ha() {
        Some(ha) if ha.is_active() => ha.request_step_down(),
        // Vault: a node without HA (or not active) has nothing to give up.
        _ => {}
    }
    Ok(None)
}
