//! Vault's response envelope, as an HTTP response
//! ([`crate::logical::Response::envelope`] builds the body).

use crate::logical::Response as Logical;
use axum::Json;
use axum::response::{IntoResponse, Response};

pub fn render(resp: Logical, request_id: &str) -> Response {
    Json(resp.envelope(request_id)).into_response()
}
