//! Vault's response envelope.

use crate::logical::Response as Logical;
use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub fn render(resp: Logical, request_id: &str) -> Response {
    let (lease_id, renewable, lease_duration) = match &resp.lease {
        Some(l) => (l.lease_id.clone(), l.renewable, l.lease_duration),
        None => (String::new(), false, 0),
    };
    let mut body = serde_json::Map::new();
    if let Some(top) = resp.top_level {
        body.extend(top);
    }
    body.insert("request_id".into(), json!(request_id));
    body.insert("lease_id".into(), json!(lease_id));
    body.insert("renewable".into(), json!(renewable));
    body.insert("lease_duration".into(), json!(lease_duration));
    body.insert("data".into(), resp.data.unwrap_or(Value::Null));
    body.insert("wrap_info".into(), Value::Null);
    body.insert(
        "warnings".into(),
        if resp.warnings.is_empty() {
            Value::Null
        } else {
            json!(resp.warnings)
        },
    );
    body.insert("auth".into(), Value::Null);
    Json(Value::Object(body)).into_response()
}
