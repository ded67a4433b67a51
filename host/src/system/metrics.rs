//! `sys/metrics`: the telemetry of this node (crate::telemetry), as Vault
//! serves it: Vault's JSON form of its in-memory sink by default,
//! `?format=prometheus` the Prometheus text format (400 "prometheus is not
//! enabled" unless `prometheus_retention_time` is set). A normal
//! authenticated path: root, or a policy with `read` on `sys/metrics`.
//! The gauges are read here, from the live state, at each request.

use crate::core::Core;
use crate::error::Error;
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::Read;
use crate::logical::{Reply, Response};
use crate::node::Node;
use crate::telemetry::{Gauge, RenderError, Rendered};

pub fn paths() -> Vec<Path<Node>> {
    vec![
        Path::new("metrics")
            .field(Field::new(
                "format",
                FieldType::Str,
                "Format to export metrics into: \"prometheus\", or empty for the JSON form.",
            ))
            .op(Read, handler!(read), "Export the metrics aggregated for telemetry purpose.")
            .help(
                "Export the metrics aggregated for telemetry purpose.",
                "The counters, timers and gauges of this node: in Vault's JSON form of its in-memory sink (the last 10-second interval), or with format=prometheus in the Prometheus text format.",
            ),
    ]
}

async fn read(node: &Node, r: &Req<'_>) -> Reply {
    let gauges = match node.core() {
        Ok(core) => gauges(&core),
        Err(_) => vec![Gauge::new("vault.core.unsealed", 0.0)],
    };
    match crate::telemetry::render(&r.fields.str("format"), &gauges) {
        Ok(Rendered::Json(body)) => Ok(Some(Response::raw(body))),
        Ok(Rendered::Prometheus(text)) => Ok(Some(Response {
            raw_body: Some(serde_json::Value::String(text)),
            content_type: Some(crate::telemetry::PROMETHEUS_CONTENT_TYPE),
            ..Response::default()
        })),
        Err(e @ (RenderError::PrometheusOff | RenderError::UnknownFormat(_))) => Err(Error::bad(e.to_string())),
        Err(e) => Err(Error::internal(e.to_string())),
    }
}

/// The gauges read from the unsealed core: leases (in all, by mount,
/// irrevocable, the revocation backlog) and the SQL pools' use.
fn gauges(core: &Core) -> Vec<Gauge> {
    let mounts = core.mounts();
    let paths: Vec<&str> = mounts.iter().map(|m| m.path()).collect();
    let stats = core.expiration.stats(&paths);
    let mut out = vec![
        Gauge::new("vault.core.unsealed", 1.0),
        Gauge::new("vault.expire.num_leases", stats.live as f64),
        Gauge::new("vault.expire.num_irrevocable_leases", stats.irrevocable as f64),
        Gauge::new("warden.expire.revocation_queue", stats.revocation_backlog as f64),
    ];
    for (path, n) in paths.iter().zip(&stats.by_mount) {
        out.push(Gauge::new("warden.expire.num_leases", *n as f64).label("mount_point", *path));
    }
    // A pool's scope is `<mount uuid>/<connection name>`: shown by mount path.
    for (scope, usage) in core.sql_pools().usage() {
        let Some((uuid, connection)) = scope.split_once('/') else {
            continue;
        };
        let Some(mount) = mounts.iter().find(|m| m.record.uuid == uuid) else {
            continue;
        };
        let gauge = |name: &'static str, value: usize| {
            Gauge::new(name, value as f64)
                .label("mount_point", mount.path())
                .label("connection", connection)
        };
        out.push(gauge("warden.sql.pool.in_use", usage.in_use));
        out.push(gauge("warden.sql.pool.idle", usage.idle));
        out.push(gauge("warden.sql.pool.max_open", usage.max_open));
    }
    out
}
