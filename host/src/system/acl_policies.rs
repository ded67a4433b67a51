//! ACL policies over `sys/` (Vault's `policyPaths` and `capabilities-self`
//! in vault/logical_system.go), over the core's
//! [`crate::core::policy_store::PolicyStore`]:
//!
//! - `sys/policies/acl` (LIST) and `sys/policies/acl/:name` (GET
//!   `{name, policy}`, PUT/POST `policy`, DELETE);
//! - the legacy `sys/policy` (GET or LIST: `{keys, policies}`) and
//!   `sys/policy/:name` (GET `{name, rules}`, PUT/POST `policy` or the
//!   deprecated `rules`, with Vault's warning; DELETE). As in Vault, these
//!   copy their data to the top level of the body too;
//! - `sys/capabilities-self` (PUT/POST `paths`, or the deprecated `path`):
//!   the caller's capabilities on each path, from its own policies, one key
//!   per path plus `capabilities` when one path is asked (top level too);
//!   `sys/capabilities` (`token`) and `sys/capabilities-accessor`
//!   (`accessor`) answer the same for another token.
//!
//! A policy text may be HCL, JSON, or either base64-encoded (Vault decodes
//! it when it is valid base64). No path here is sudo-protected: Vault's
//! `PathsSpecial.Root` names none of them.

use crate::error::{Error, Result};
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{Delete, List, Read, Update};
use crate::logical::{Namespace, Reply, Response};
use crate::node::Node;
use serde_json::{Map, Value, json};

pub fn paths() -> Vec<Path<Node>> {
    let name = || Field::new("name", FieldType::Str, "The name of the policy. Example: \"ops\"");
    let policy = || Field::new("policy", FieldType::Str, "The rules of the policy.");
    vec![
        Path::new("policy/?")
            .op(Read, handler!(list_legacy), "List the configured access control policies.")
            .op(List, handler!(list_legacy), "List the configured access control policies.")
            .help(
                "List the configured access control policies.",
                "Names of the ACL policies, `root` last. Deprecated: use sys/policies/acl.",
            ),
        Path::new("policy/(?P<name>.+)")
            .field(name())
            .field(Field::new("rules", FieldType::Str, "The rules of the policy (deprecated: use policy)."))
            .field(policy())
            .op(Read, handler!(read_legacy), "Retrieve the rules for the named policy.")
            .op(Update, handler!(write_legacy), "Add a new or update an existing policy.")
            .op(Delete, handler!(delete), "Delete the policy with the given name.")
            .help(
                "Read, Modify, or Delete an access control policy.",
                "Read the rules of an existing policy, create or update the rules of a policy, or delete a policy. Deprecated: use sys/policies/acl/:name.",
            ),
        Path::new("policies/acl/?")
            .op(List, handler!(list), "List the configured access control policies.")
            .help(
                "List the configured access control policies.",
                "Names of the ACL policies, `root` last.",
            ),
        Path::new("policies/acl/(?P<name>.+)")
            .field(name())
            .field(policy())
            .op(Read, handler!(read), "Retrieve information about the named ACL policy.")
            .op(Update, handler!(write), "Add a new or update an existing ACL policy.")
            .op(Delete, handler!(delete), "Delete the ACL policy with the given name.")
            .help(
                "Read, Modify, or Delete an access control policy.",
                "An ACL policy (HCL or JSON, optionally base64-encoded) says which capabilities a token holding it has on which paths. `root` cannot be written or deleted; `default` can be edited but not deleted.",
            ),
        capabilities_path(Path::new("capabilities"))
            .field(Field::new("token", FieldType::Str, "Token for which capabilities are being queried."))
            .op(Update, handler!(capabilities_token), "Fetches the capabilities of the given token on the given paths.")
            .help(
                "Fetches the capabilities of the given token on the given paths.",
                "The capabilities the policies of the given token grant on each path.",
            ),
        capabilities_path(Path::new("capabilities-accessor"))
            .field(Field::new("accessor", FieldType::Str, "Accessor of the token for which capabilities are being queried."))
            .op(Update, handler!(capabilities_accessor), "Fetches the capabilities of the token associated with the given accessor on the given paths.")
            .help(
                "Fetches the capabilities of the token associated with the given accessor on the given paths.",
                "The capabilities the policies of the token the accessor names grant on each path.",
            ),
        capabilities_path(Path::new("capabilities-self"))
            .field(Field::new("token", FieldType::Str, "Token for which capabilities are being queried."))
            .op(Update, handler!(capabilities_self), "Fetches the capabilities of the calling token on the given paths.")
            .help(
                "Fetches the capabilities of the calling token on the given paths.",
                "The capabilities the policies of the token making the request grant on each path (`root` for a root token, `deny` where nothing is granted).",
            ),
    ]
}

/// Data that Vault's legacy sys/ paths also copy to the top of the body.
fn injected(data: Value) -> Response {
    Response {
        top_level: data.as_object().cloned(),
        ..Response::data(data)
    }
}

async fn list(node: &Node, r: &Req<'_>) -> Reply {
    Ok(Some(Response::list(
        node.core()?.policies_in(r.namespace).list().await?,
    )))
}

async fn list_legacy(node: &Node, r: &Req<'_>) -> Reply {
    let keys = node.core()?.policies_in(r.namespace).list().await?;
    Ok(Some(injected(json!({ "keys": keys, "policies": keys }))))
}

/// The stored text of `name`, with its sanitized name; `None` when absent.
async fn load(node: &Node, r: &Req<'_>) -> Result<Option<(String, String)>> {
    let policy = node.core()?.policies_in(r.namespace).get(&r.fields.str("name")).await?;
    Ok(policy.map(|p| (p.name().to_string(), p.text().to_string())))
}

async fn read(node: &Node, r: &Req<'_>) -> Reply {
    Ok(load(node, r)
        .await?
        .map(|(name, text)| Response::data(json!({ "name": name, "policy": text }))))
}

async fn read_legacy(node: &Node, r: &Req<'_>) -> Reply {
    Ok(load(node, r)
        .await?
        .map(|(name, text)| injected(json!({ "name": name, "rules": text }))))
}

async fn write(node: &Node, r: &Req<'_>) -> Reply {
    store(node, r, r.fields.str("policy")).await?;
    Ok(None)
}

/// The legacy path also takes `rules`, with Vault's deprecation warning.
async fn write_legacy(node: &Node, r: &Req<'_>) -> Reply {
    let policy = r.fields.str("policy");
    if !policy.is_empty() {
        store(node, r, policy).await?;
        return Ok(None);
    }
    store(node, r, r.fields.str("rules")).await?;
    Ok(Some(
        Response::default().with_warning("'rules' is deprecated, please use 'policy' instead"),
    ))
}

/// Vault's `handlePoliciesSet`: the name from the URL (lower-cased), the
/// text given and not empty, base64-decoded when it is base64; the store
/// parses it before anything is written.
async fn store(node: &Node, r: &Req<'_>, raw: String) -> Result<()> {
    let name = r.fields.str("name").to_lowercase();
    if name.is_empty() {
        return Err(Error::bad("policy name must be provided in the URL"));
    }
    if raw.is_empty() {
        return Err(Error::bad("'policy' parameter not supplied or empty"));
    }
    let text = decode_base64(&raw).unwrap_or(raw);
    node.core()?.policies_in(r.namespace).set(&name, &text).await
}

async fn delete(node: &Node, r: &Req<'_>) -> Reply {
    node.core()?
        .policies_in(r.namespace)
        .delete(&r.fields.str("name"))
        .await?;
    Ok(None)
}

/// The fields every capabilities path takes: `paths`, or the deprecated `path`.
fn capabilities_path(p: Path<Node>) -> Path<Node> {
    p.field(Field::new(
        "path",
        FieldType::CommaList,
        "(DEPRECATED) Path on which capabilities are being queried. Use 'paths' instead.",
    ))
    .field(Field::new(
        "paths",
        FieldType::CommaList,
        "Paths on which capabilities are being queried.",
    ))
}

/// `sys/capabilities`: the policies of the token in the body (Vault's
/// 400 "invalid token" when there is no such live token).
async fn capabilities_token(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    let policies = core.token_policies(&r.fields.str("token")).await?;
    let policies = policies.ok_or_else(|| Error::bad_multi("invalid token"))?;
    capabilities(node, r, &policies, r.namespace).await
}

/// `sys/capabilities-accessor`: the policies of the token the accessor names.
async fn capabilities_accessor(node: &Node, r: &Req<'_>) -> Reply {
    let accessor = r.fields.str("accessor");
    if accessor.is_empty() {
        return Err(Error::bad("missing accessor"));
    }
    let entry = node.core()?.tokens.by_accessor(&accessor).await?;
    let entry = entry
        .filter(|e| e.is_live(chrono::Utc::now()) && e.namespace_path.starts_with(&r.namespace.path))
        .ok_or_else(|| Error::bad_multi("invalid accessor"))?;
    capabilities(node, r, &entry.policies, &entry.namespace()).await
}

/// `sys/capabilities-self`: the policies are the caller's own.
async fn capabilities_self(node: &Node, r: &Req<'_>) -> Reply {
    capabilities(node, r, &r.auth.policies, &r.auth.namespace).await
}

/// Vault's `handleCapabilities`: the capabilities `policies` (of the
/// namespace `owner`, where the token was made) grant on each of the
/// request's paths (below the request's namespace).
async fn capabilities(node: &Node, r: &Req<'_>, policies: &[String], owner: &Namespace) -> Reply {
    let mut paths = r.fields.list("paths");
    if paths.is_empty() {
        paths = r.fields.list("path");
    }
    if paths.is_empty() {
        return Err(Error::bad("paths must be supplied"));
    }
    if paths.iter().any(|p| p.is_empty()) {
        return Err(Error::bad("missing path"));
    }
    let acl = node.core()?.policies_in(owner).acl(policies).await?;
    let mut data = Map::new();
    for path in &paths {
        let full = r.namespace.full(path);
        let caps = match owner.contains(&full) {
            true => json!(acl.capabilities(owner.relative(&full))),
            false => json!(["deny"]),
        };
        data.insert(path.clone(), caps);
    }
    if let [one] = paths.as_slice() {
        let caps = data.get(one).cloned().unwrap_or_default();
        data.insert("capabilities".into(), caps);
    }
    Ok(Some(injected(Value::Object(data))))
}

/// Go's `base64.StdEncoding.DecodeString`, which Vault tries on every
/// policy text (it skips line breaks); `None` when the text is not base64.
fn decode_base64(raw: &str) -> Option<String> {
    use base64::Engine;
    let compact: String = raw.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(compact).ok()?;
    // Vault would parse the bytes whatever they are; text that is not
    // UTF-8 cannot be a policy, and the parser says so.
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_decoded_and_hcl_is_not() {
        use base64::Engine;
        let hcl = "path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(hcl);
        assert_eq!(decode_base64(&encoded).as_deref(), Some(hcl));
        // Go's decoder skips line breaks (base64 -w76 output).
        let wrapped = format!("{}\n{}", &encoded[..20], &encoded[20..]);
        assert_eq!(decode_base64(&wrapped).as_deref(), Some(hcl));
        assert_eq!(decode_base64(hcl), None);
        assert_eq!(decode_base64(r#"{"path": {"x": {"capabilities": ["read"]}}}"#), None);
    }

    #[test]
    fn the_paths_route() {
        let b = &*super::super::BACKEND;
        for (path, pattern) in [
            ("policy", "policy/?"),
            ("policy/", "policy/?"),
            ("policy/ops", "policy/(?P<name>.+)"),
            ("policies/acl/", "policies/acl/?"),
            ("policies/acl/ops", "policies/acl/(?P<name>.+)"),
            ("policies/acl/a/b", "policies/acl/(?P<name>.+)"),
            ("capabilities-self", "capabilities-self"),
            ("capabilities", "capabilities"),
            ("capabilities-accessor", "capabilities-accessor"),
        ] {
            let (p, _) = b.route(path).unwrap_or_else(|| panic!("{path} does not route"));
            assert_eq!(p.pattern, pattern, "{path}");
            assert!(!p.sudo, "{path}: Vault does not protect it with sudo");
        }
    }
}
