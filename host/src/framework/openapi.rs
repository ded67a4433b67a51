//! The OpenAPI 3.0 document generated from path declarations, as Vault's
//! `sys/internal/specs/openapi` and path-help's `openapi` field: one path
//! item per declared pattern (its regular expression turned into a
//! templated path), its operations, its path parameters and a request body
//! schema from its fields.

use super::backend::{BackendDoc, PathDoc};
use super::field::{Field, FieldType};
use crate::logical::Operation;
use serde_json::{Map, Value, json};

/// The document for backends mounted at the given prefixes ("db/", "sys/").
pub fn document(backends: &[(&str, BackendDoc)]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for (prefix, backend) in backends {
        for p in &backend.paths {
            for templated in templated_paths(p) {
                let full = format!("/{prefix}{templated}");
                let schema_name = schema_name(prefix, &templated);
                let (item, body) = path_item(p, &templated, &schema_name);
                if let Some(body) = body {
                    schemas.insert(format!("{schema_name}Request"), body);
                }
                paths.insert(full, item);
            }
        }
    }
    json!({
        "openapi": "3.0.2",
        "info": {
            "title": "Warden API",
            "description": "HTTP API of Warden, compatible with HashiCorp Vault's. All API routes are prefixed with `/v1/`.",
            "version": env!("CARGO_PKG_VERSION"),
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// The templated paths a pattern stands for: each named capture becomes
/// `{name}`; an optional trailing slash (a LIST path) becomes '/'; an
/// optional group is expanded with and without it; `(a|b)` into both.
pub fn templated_paths(p: &PathDoc) -> Vec<String> {
    let lists = p.operations.iter().any(|(op, _)| *op == Operation::List);
    let mut out = Vec::new();
    for expanded in expand(&p.pattern) {
        let mut path = expanded;
        if let Some(stem) = path.strip_suffix("/?") {
            path = if lists { format!("{stem}/") } else { stem.to_string() };
        }
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// One templated path that names a declaration's pattern, for the request
/// metrics' route label: its first expansion, without the optional
/// trailing '/'.
pub fn route_template(pattern: &str) -> String {
    let first = expand(pattern).into_iter().next().unwrap_or_default();
    match first.strip_suffix("/?") {
        Some(stem) => stem.to_string(),
        None => first,
    }
}

/// Expand one regular expression of the kind the declarations use into
/// plain templated paths.
fn expand(pattern: &str) -> Vec<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut results = vec![String::new()];
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '(' => {
                let end = matching_paren(&chars, i);
                let inner: String = chars[i + 1..end].iter().collect();
                let optional = chars.get(end + 1) == Some(&'?');
                let alternatives: Vec<String> = if let Some(rest) = inner.strip_prefix("?P<") {
                    let name = rest.split('>').next().unwrap_or_default();
                    vec![format!("{{{name}}}")]
                } else {
                    split_alternatives(&inner).iter().flat_map(|a| expand(a)).collect()
                };
                let mut next = Vec::new();
                for r in &results {
                    for a in &alternatives {
                        next.push(format!("{r}{a}"));
                    }
                    if optional {
                        next.push(r.clone());
                    }
                }
                results = next;
                i = end + 1 + usize::from(optional);
            }
            '\\' => {
                // An escaped literal ("\." stays "."); classes are not paths.
                if let Some(&c) = chars.get(i + 1) {
                    results.iter_mut().for_each(|r| r.push(c));
                }
                i += 2;
            }
            '^' | '$' => i += 1,
            c => {
                results.iter_mut().for_each(|r| r.push(c));
                i += 1;
            }
        }
    }
    results
}

fn matching_paren(chars: &[char], open: usize) -> usize {
    let mut depth = 0;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    chars.len().saturating_sub(1)
}

/// Top-level '|' alternatives of a group's body.
fn split_alternatives(inner: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0;
    for c in inner.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            '|' if depth == 0 => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

/// A schema name from the mount and path ("db/" + "roles/{name}" →
/// "DbRoles").
fn schema_name(prefix: &str, templated: &str) -> String {
    format!("{prefix}{templated}")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && !templated.contains(&format!("{{{w}}}")))
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn field_schema(f: &Field) -> Value {
    let mut s = json!({ "type": f.ty.openapi_type(), "description": f.description });
    match f.ty {
        FieldType::CommaList | FieldType::StrList => s["items"] = json!({"type": "string"}),
        FieldType::Duration => s["format"] = json!("duration"),
        FieldType::LowerStr => s["x-vault-lowercase"] = json!(true),
        _ => {}
    }
    if let Some(d) = &f.default {
        s["default"] = d.clone();
    }
    s
}

fn path_item(p: &PathDoc, templated: &str, schema_name: &str) -> (Value, Option<Value>) {
    let mut item = Map::new();
    item.insert("description".into(), json!(p.synopsis.trim()));
    let params: Vec<Value> = p
        .fields
        .iter()
        .filter(|f| f.in_path && templated.contains(&format!("{{{}}}", f.name)))
        .map(|f| {
            json!({
                "name": f.name, "description": f.description, "in": "path",
                "required": true, "schema": {"type": "string"},
            })
        })
        .collect();
    if !params.is_empty() {
        item.insert("parameters".into(), Value::Array(params));
    }
    if p.sudo {
        item.insert("x-vault-sudo".into(), json!(true));
    }
    if p.unauthenticated {
        item.insert("x-vault-unauthenticated".into(), json!(true));
    }
    if p.has_existence_check {
        item.insert("x-vault-createSupported".into(), json!(true));
    }
    let body_fields: Vec<&Field> = p.fields.iter().filter(|f| !f.in_path).collect();
    let mut body_schema = None;
    let is_list_path = templated.ends_with('/');
    for (op, summary) in &p.operations {
        let mut o = json!({ "summary": summary, "responses": {"200": {"description": "OK"}} });
        match op {
            Operation::List if is_list_path || !p.operations.iter().any(|(o, _)| *o == Operation::Read) => {
                o["parameters"] = json!([{
                    "name": "list", "description": "Must be set to `true`", "in": "query",
                    "required": true, "schema": {"type": "string", "enum": ["true"]},
                }]);
                insert_op(&mut item, "get", o);
            }
            Operation::Read if !is_list_path => {
                let query: Vec<Value> = body_fields
                    .iter()
                    .map(|f| json!({"name": f.name, "description": f.description, "in": "query", "schema": field_schema(f)}))
                    .collect();
                if !query.is_empty() {
                    o["parameters"] = Value::Array(query);
                }
                insert_op(&mut item, "get", o);
            }
            Operation::Create | Operation::Update | Operation::Patch if !is_list_path => {
                if !body_fields.is_empty() {
                    let properties: Map<String, Value> = body_fields
                        .iter()
                        .map(|f| (f.name.to_string(), field_schema(f)))
                        .collect();
                    let required: Vec<&str> = body_fields.iter().filter(|f| f.required).map(|f| f.name).collect();
                    let mut schema = json!({"type": "object", "properties": properties});
                    if !required.is_empty() {
                        schema["required"] = json!(required);
                    }
                    body_schema = Some(schema);
                    o["requestBody"] = json!({
                        "required": !required.is_empty(),
                        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}Request")}}},
                    });
                }
                o["responses"] = json!({"200": {"description": "OK"}, "204": {"description": "empty body"}});
                let method = if *op == Operation::Patch { "patch" } else { "post" };
                insert_op(&mut item, method, o);
            }
            Operation::Delete if !is_list_path => {
                o["responses"] = json!({"204": {"description": "empty body"}});
                insert_op(&mut item, "delete", o);
            }
            _ => {}
        }
    }
    (Value::Object(item), body_schema)
}

/// Create and update share `post`: the first declared keeps its summary.
fn insert_op(item: &mut Map<String, Value>, method: &str, op: Value) {
    item.entry(method.to_string()).or_insert(op);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(pattern: &str, ops: &[Operation]) -> PathDoc {
        PathDoc {
            pattern: pattern.into(),
            fields: vec![],
            operations: ops.iter().map(|o| (*o, "")).collect(),
            has_existence_check: false,
            synopsis: "",
            description: "",
            unauthenticated: false,
            sudo: false,
        }
    }

    #[test]
    fn patterns_become_templated_paths() {
        let name = super::super::backend::name_capture("name");
        assert_eq!(
            templated_paths(&doc(&format!("roles/{name}"), &[Operation::Read])),
            vec!["roles/{name}"]
        );
        assert_eq!(templated_paths(&doc("roles/?", &[Operation::List])), vec!["roles/"]);
        assert_eq!(
            templated_paths(&doc("seal-status", &[Operation::Read])),
            vec!["seal-status"]
        );
        assert_eq!(
            templated_paths(&doc("(leases/)?revoke-prefix/(?P<prefix>.+)", &[Operation::Update])),
            vec!["leases/revoke-prefix/{prefix}", "revoke-prefix/{prefix}"]
        );
        assert_eq!(
            templated_paths(&doc("rotate(/keyring)?", &[Operation::Update])),
            vec!["rotate/keyring", "rotate"]
        );
    }

    #[test]
    fn schema_names_are_camel_case_without_parameters() {
        assert_eq!(schema_name("db/", "roles/{name}"), "DbRoles");
        assert_eq!(schema_name("sys/", "mounts/{path}/tune"), "SysMountsTune");
    }
}
