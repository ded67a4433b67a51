//! Response wrapping over `sys/` (Vault's `wrappingPaths`), over the core's
//! [`crate::core::wrapping`]:
//!
//! - `sys/wrapping/wrap`: the request's data, wrapped (the request must ask
//!   for wrapping: Vault's clients send a 5-minute `X-Vault-Wrap-TTL` here
//!   by default);
//! - `sys/wrapping/lookup` (served without a token, as Vault's): a wrapping
//!   token's creation path, time and TTL, without spending it;
//! - `sys/wrapping/unwrap`: the wrapped response, once; the token is the
//!   body's `token`, or the request's own token;
//! - `sys/wrapping/rewrap`: the same response under a new wrapping token.

use crate::error::Error;
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::Update;
use crate::logical::{Reply, Response};
use crate::node::Node;
use serde_json::Value;

pub fn paths() -> Vec<Path<Node>> {
    let token = || Field::new("token", FieldType::Str, "The wrapping token ID.");
    vec![
        Path::new("wrapping/wrap")
            .op(Update, handler!(wrap), "Response-wraps an arbitrary JSON object.")
            .help(
                "Response-wraps an arbitrary JSON object.",
                "Round trips the given input data into a response-wrapped token.",
            ),
        Path::new("wrapping/lookup")
            .unauthenticated()
            .field(token())
            .op(
                Update,
                handler!(lookup),
                "Look up wrapping properties for the given token.",
            )
            .help(
                "Look up wrapping properties for the requester's token.",
                "The creation path, time and TTL of a wrapping token, which is not spent.",
            ),
        Path::new("wrapping/unwrap")
            .field(token())
            .op(Update, handler!(unwrap), "Unwraps a response-wrapped token.")
            .help(
                "Unwraps a response-wrapped token.",
                "The response a wrapping token wraps, once: the token is revoked.",
            ),
        Path::new("wrapping/rewrap")
            .field(token())
            .op(Update, handler!(rewrap), "Rotates a response-wrapped token.")
            .help(
                "Rotates a response-wrapped token.",
                "Wraps the same response in a new token with the same TTL; the old token is revoked.",
            ),
    ]
}

async fn wrap(_: &Node, r: &Req<'_>) -> Reply {
    if r.wrap_ttl.is_none() {
        return Err(Error::bad("endpoint requires response wrapping to be used"));
    }
    Ok(Some(Response::data(Value::Object(r.fields.unknown().clone()))))
}

async fn lookup(node: &Node, r: &Req<'_>) -> Reply {
    let token = r.fields.str("token");
    if token.is_empty() {
        return Err(Error::bad("missing \"token\" value in input"));
    }
    Ok(Some(Response::data(node.core()?.wrapping_lookup(&token).await?)))
}

async fn unwrap(node: &Node, r: &Req<'_>) -> Reply {
    Ok(Some(node.core()?.unwrap(&r.fields.str("token"), r.auth).await?))
}

async fn rewrap(node: &Node, r: &Req<'_>) -> Reply {
    Ok(Some(node.core()?.rewrap(&r.fields.str("token"), r.auth).await?))
}
