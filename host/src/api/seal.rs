//! The seal's HTTP endpoints, answered by the node rather than the core:
//! `sys/health`, `sys/seal-status`, `sys/init` and `sys/unseal` without a
//! token (they must work while sealed), and `sys/seal`, `sys/key-status`,
//! `sys/rotate` with one.

use super::envelope;
use crate::core::fields;
use crate::error::Error;
use crate::logical::{Operation, Response as Logical};
use crate::node::{Node, init_response};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

type Data = Map<String, Value>;

/// The endpoints Vault serves without a token; None for any other path.
pub async fn unauthenticated(node: &Node, path: &str, op: Operation, data: &Data) -> Result<Option<Response>, Error> {
    Ok(Some(match (path, op) {
        ("sys/health", Operation::Read) => health(node),
        ("sys/seal-status", Operation::Read) => Json(node.seal_status()).into_response(),
        ("sys/init", Operation::Read) => Json(json!({ "initialized": node.initialized() })).into_response(),
        ("sys/init", Operation::Update) => {
            for unsupported in ["pgp_keys", "root_token_pgp_key", "recovery_shares", "stored_shares"] {
                if data.get(unsupported).is_some_and(|v| !v.is_null() && v != &json!(0)) {
                    return Err(Error::bad(format!("{unsupported} is not supported")));
                }
            }
            let shares =
                fields::integer(data, "secret_shares")?.ok_or_else(|| Error::bad("secret_shares is required"))?;
            let threshold =
                fields::integer(data, "secret_threshold")?.ok_or_else(|| Error::bad("secret_threshold is required"))?;
            let result = node.init(shares, threshold, None).await?;
            Json(init_response(&result)).into_response()
        }
        ("sys/unseal", Operation::Update) => {
            let key = fields::string(data, "key")?;
            let reset = fields::boolean(data, "reset")?.unwrap_or(false);
            Json(node.unseal(key.as_deref(), reset).await?).into_response()
        }
        ("sys/health" | "sys/seal-status" | "sys/init" | "sys/unseal", _) => {
            return Err(Error::UnsupportedOperation);
        }
        _ => return Ok(None),
    }))
}

/// The seal's endpoints that need a token (already checked); None for any
/// other path.
pub async fn authenticated(
    node: &Node,
    path: &str,
    op: Operation,
    request_id: &str,
) -> Result<Option<Response>, Error> {
    Ok(Some(match (path, op) {
        ("sys/seal", Operation::Update) => {
            node.seal().await?;
            StatusCode::NO_CONTENT.into_response()
        }
        ("sys/rotate", Operation::Update) => {
            node.rotate().await?;
            StatusCode::NO_CONTENT.into_response()
        }
        ("sys/key-status", Operation::Read) => {
            let (term, installed) = node.key_status()?;
            let data = json!({
                "term": term,
                "install_time": installed.to_rfc3339_opts(SecondsFormat::Nanos, true),
                "encryptions": 0,
            });
            envelope::render(
                Logical {
                    top_level: data.as_object().cloned(),
                    ..Logical::data(data)
                },
                request_id,
            )
        }
        ("sys/seal" | "sys/rotate" | "sys/key-status", _) => return Err(Error::UnsupportedOperation),
        _ => return Ok(None),
    }))
}

/// Vault's status codes: 200 unsealed and active, 503 sealed, 501 not
/// initialised; the body is the same in every case.
fn health(node: &Node) -> Response {
    let status = match (node.initialized(), node.sealed()) {
        (false, _) => StatusCode::NOT_IMPLEMENTED,
        (true, true) => StatusCode::SERVICE_UNAVAILABLE,
        (true, false) => StatusCode::OK,
    };
    let seal = node.seal_status();
    let body = json!({
        "initialized": node.initialized(),
        "sealed": node.sealed(),
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": chrono::Utc::now().timestamp(),
        "version": env!("CARGO_PKG_VERSION"),
        "cluster_name": seal.get("cluster_name").cloned().unwrap_or(Value::Null),
        "cluster_id": seal.get("cluster_id").cloned().unwrap_or(Value::Null),
    });
    (status, Json(body)).into_response()
}
