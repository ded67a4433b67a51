//! The token store, as far as it exists yet: the root token only.
//! `auth/token/lookup-self` and `lookup` answer for it, so clients that check
//! their token at start-up (hvac's `is_authenticated`, `vault login`) work.

use super::Core;
use crate::error::{Error, Result};
use crate::logical::{Operation, Reply, Request, Response};
use serde_json::json;

pub async fn handle(core: &Core, path: &str, req: &Request, token: &str) -> Reply {
    match (path, req.operation) {
        ("lookup-self", Operation::Read | Operation::Update) => Ok(Some(lookup(core, token)?)),
        ("lookup", Operation::Update) => {
            let asked = super::fields::string(&req.data, "token")?.unwrap_or_default();
            Ok(Some(lookup(core, &asked)?))
        }
        ("lookup-self" | "lookup", _) => Err(Error::UnsupportedOperation),
        _ => Err(Error::UnsupportedPath),
    }
}

fn lookup(core: &Core, token: &str) -> Result<Response> {
    core.authorize(Some(token)).map_err(|_| Error::bad("bad token"))?;
    Ok(Response::data(json!({
        "accessor": "",
        "creation_time": core.started.timestamp(),
        "creation_ttl": 0,
        "display_name": "root",
        "entity_id": "",
        "expire_time": null,
        "explicit_max_ttl": 0,
        "id": token,
        "meta": null,
        "num_uses": 0,
        "orphan": true,
        "path": "auth/token/root",
        "policies": ["root"],
        "renewable": false,
        "ttl": 0,
        "type": "service",
    })))
}
