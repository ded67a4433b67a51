//! Driving a `warden::core::Core` directly, for the tests that play a crash
//! in process (static_recovery.rs, mongodb_recovery.rs): a request as the
//! HTTP layer would build it, handled with the given token.

use anyhow::Result;
use serde_json::{Map, Value};
use warden::core::Core;
use warden::logical::{Auth, Operation, Request, Response};

/// Handle `op path` with `data` (a JSON object, or anything else for none).
pub async fn call(core: &Core, token: &str, op: Operation, path: &str, data: Value) -> Result<Option<Response>> {
    let req = Request {
        operation: op,
        path: path.to_string(),
        data: data.as_object().cloned().unwrap_or_else(Map::new),
        auth: Auth::root(token),
        ..Request::default()
    };
    core.handle(&req, &|_| Ok(()))
        .await
        .map_err(|e| anyhow::anyhow!("{op:?} {path}: {e}"))
}
