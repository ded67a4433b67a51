//! Audit devices over `sys/` (Vault's `auditPaths` in
//! vault/logical_system_paths.go), over the core's
//! [`crate::audit::Broker`]:
//!
//! - `sys/audit` (GET): every device by path, `{type, description,
//!   options, local, path}`;
//! - `sys/audit/:path` (PUT/POST `type`, `description`, `options`,
//!   `local`; DELETE);
//! - `sys/audit-hash/:path` (PUT/POST `input`): `{hash}`, the input's
//!   HMAC with the device's salt, to find a known value in the log.
//!
//! As in Vault, `sys/audit` and `sys/audit/*` need sudo; `sys/audit-hash`
//! does not (Vault's `PathsSpecial.Root` does not name it).

use crate::error::{Error, Result};
use crate::framework::{Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{Delete, Read, Update};
use crate::logical::{Reply, Response};
use crate::node::Node;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn paths() -> Vec<Path<Node>> {
    let path = || {
        Field::new(
            "path",
            FieldType::Str,
            "The name of the backend. Cannot be delimited. Example: \"mysql\"",
        )
    };
    vec![
        Path::new("audit/?")
            .op(Read, handler!(table), "List the enabled audit devices.")
            .sudo()
            .help(
                "List the currently enabled audit backends.",
                "List the currently enabled audit backends: each device's type, description, options and whether it is local, by path.",
            ),
        Path::new("audit/(?P<path>.+)")
            .field(path())
            .field(Field::new(
                "type",
                FieldType::Str,
                "The type of the backend. Example: \"file\" (the only type Warden has)",
            ))
            .field(Field::new("description", FieldType::Str, "User-friendly description for this audit backend."))
            .field(Field::new(
                "options",
                FieldType::Map,
                "Configuration options for the audit backend: file_path (required; \"stdout\" and \"discard\" are special), mode (octal, default 0600), log_raw, hmac_accessor, elide_list_responses, prefix, format (json).",
            ))
            .field(Field::new(
                "local",
                FieldType::Bool,
                "Mark the mount as a local mount, which is not replicated and is unaffected by replication.",
            ))
            .op(Update, handler!(enable), "Enable a new audit device at the supplied path.")
            .op(Delete, handler!(disable), "Disable the audit device at the given path.")
            .sudo()
            .help(
                "Enable or disable audit backends.",
                "Enable a new audit backend or disable an existing backend. A request is refused (500) when no enabled device can record it; every secret in an entry is HMAC'd with the device's salt unless log_raw is set.",
            ),
        Path::new("audit-hash/(?P<path>.+)")
            .field(path())
            .field(Field::new("input", FieldType::Str, "The input string to hash."))
            .op(Update, handler!(hash), "The hash of the given string via the given audit backend.")
            .help(
                "The hash of the given string via the given audit backend.",
                "The input's HMAC with the device's salt (hmac-sha256:<hex>), as the device writes values: to find a known value in the log.",
            ),
    ]
}

async fn table(node: &Node, _: &Req<'_>) -> Reply {
    Ok(Some(Response::data(Value::Object(node.core()?.audit.table()))))
}

/// Vault takes `options` as string pairs; numbers and booleans are read
/// as their text (as a form or the CLI's `key=value` would send them).
fn options(raw: Option<serde_json::Map<String, Value>>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in raw.unwrap_or_default() {
        let text = match v {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => return Err(Error::bad("options must be string valued")),
        };
        out.insert(k, text);
    }
    Ok(out)
}

async fn enable(node: &Node, r: &Req<'_>) -> Reply {
    let core = node.core()?;
    core.audit
        .enable(
            &r.fields.str("path"),
            &r.fields.str("type"),
            r.fields.str("description"),
            options(r.fields.opt_map("options"))?,
            r.fields.bool("local"),
        )
        .await?;
    Ok(None)
}

async fn disable(node: &Node, r: &Req<'_>) -> Reply {
    node.core()?.audit.disable(&r.fields.str("path")).await?;
    Ok(None)
}

async fn hash(node: &Node, r: &Req<'_>) -> Reply {
    let input = r.fields.str("input");
    if input.is_empty() {
        return Err(Error::bad("the \"input\" parameter is empty"));
    }
    let hash = node.core()?.audit.hash(&r.fields.str("path"), &input)?;
    Ok(Some(Response::data(json!({ "hash": hash }))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_paths_route_and_audit_needs_sudo() {
        let b = &*super::super::BACKEND;
        for (path, pattern, sudo) in [
            ("audit", "audit/?", true),
            ("audit/", "audit/?", true),
            ("audit/file", "audit/(?P<path>.+)", true),
            ("audit/a/b", "audit/(?P<path>.+)", true),
            ("audit-hash/file", "audit-hash/(?P<path>.+)", false),
        ] {
            let (p, _) = b.route(path).unwrap_or_else(|| panic!("{path} does not route"));
            assert_eq!(p.pattern, pattern, "{path}");
            assert_eq!(p.sudo, sudo, "{path}");
        }
        assert!(
            super::options(Some(
                serde_json::json!({"a": [1]}).as_object().cloned().unwrap_or_default()
            ))
            .is_err()
        );
    }
}
