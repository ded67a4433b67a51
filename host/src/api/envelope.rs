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
        body.extend(top.into_iter().map(|(k, v)| (k, sort_keys(v))));
    }
    body.insert("request_id".into(), json!(request_id));
    body.insert("lease_id".into(), json!(lease_id));
    body.insert("renewable".into(), json!(renewable));
    body.insert("lease_duration".into(), json!(lease_duration));
    body.insert("data".into(), resp.data.map(sort_keys).unwrap_or(Value::Null));
    body.insert("wrap_info".into(), Value::Null);
    body.insert(
        "warnings".into(),
        if resp.warnings.is_empty() {
            Value::Null
        } else {
            json!(resp.warnings)
        },
    );
    body.insert("auth".into(), resp.auth.map(sort_keys).unwrap_or(Value::Null));
    Json(Value::Object(body)).into_response()
}

/// Objects with their keys sorted, at every depth, as Go's encoding/json
/// writes Vault's maps. serde_json keeps insertion order once any crate
/// enables its `preserve_order` feature (bson, behind the mongodb crate,
/// does), so the order is made explicit here.
fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sort_keys(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}
