//! `sys/policies/password`: named password policies (write, read, LIST,
//! delete) and `.../generate`.

use crate::core::password_policy::{self, PasswordPolicies};
use crate::error::{Error, Result};
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{Delete, List, Read, Update};
use crate::logical::{Reply, Response};
use crate::node::Node;
use serde_json::json;

pub fn paths() -> Vec<Path<Node>> {
    let name = || Field::new("name", FieldType::Str, "The name of the password policy.");
    vec![
        Path::new("policies/password/?")
            .op(List, handler!(list), "List the existing password policies.")
            .help("List the existing password policies.", "Names of every stored password policy."),
        Path::new("policies/password/(?P<name>.+)/generate")
            .field(name())
            .op(Read, handler!(generate), "Generate a password from an existing password policy.")
            .help("Generate a password from an existing password policy.", "A new password that satisfies the policy."),
        Path::new("policies/password/(?P<name>.+)")
            .field(name())
            .field(Field::new("policy", FieldType::Str, "The password policy, HCL or JSON, optionally base64-encoded.").required())
            .op(Read, handler!(read), "Retrieve an existing password policy.")
            .op(Update, handler!(write), "Add a new or update an existing password policy.")
            .op(Delete, handler!(delete), "Delete a password policy.")
            .help(
                "Read, write and delete password policies.",
                "A password policy says how long a generated password is and which characters it must contain (HCL: length and charset rules). Database connections and roles name one in password_policy.",
            ),
    ]
}

/// The request's namespace's password policies.
fn policies(node: &Node, r: &Req<'_>) -> Result<PasswordPolicies> {
    let core = node.core()?;
    Ok(PasswordPolicies::in_namespace(
        core.storage.clone(),
        core.runtime.clone(),
        r.namespace,
    ))
}

fn missing() -> Error {
    Error::Missing("policy does not exist".into())
}

async fn list(node: &Node, r: &Req<'_>) -> Reply {
    password_policy::list(&policies(node, r)?, "").await
}

async fn generate(node: &Node, r: &Req<'_>) -> Reply {
    let password = policies(node, r)?
        .generate(&r.fields.str("name"))
        .await?
        .ok_or_else(missing)?;
    Ok(Some(Response::data(json!({ "password": password }))))
}

async fn read(node: &Node, r: &Req<'_>) -> Reply {
    let policy = policies(node, r)?
        .load(&r.fields.str("name"))
        .await?
        .ok_or_else(missing)?;
    Ok(Some(Response::data(json!({ "policy": policy }))))
}

async fn write(node: &Node, r: &Req<'_>) -> Reply {
    password_policy::write(&policies(node, r)?, &r.fields.str("name"), r.fields.str("policy")).await
}

async fn delete(node: &Node, r: &Req<'_>) -> Reply {
    policies(node, r)?.delete(&r.fields.str("name")).await?;
    Ok(None)
}
