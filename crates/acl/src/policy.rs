//! One ACL policy: its text read into path rules as Vault reads it
//! (vault/policy.go `ParseACLPolicy`), the errors in Vault's words, and the
//! built-in `root`, `default` and `response-wrapping` policies.
//!
//! What a path block may hold is OpenBao's list: `capabilities`, the legacy
//! `policy`, `allowed_parameters`, `denied_parameters`,
//! `required_parameters`, `min_wrapping_ttl`, `max_wrapping_ttl`,
//! `mfa_methods`, `pagination_limit`, `expiration`, `comment`,
//! `control_group` (checked, then ignored, as OpenBao ignores it) and
//! `list_scan_response_keys_filter_path` (refused unless empty: filtering
//! list responses through a Go template is not implemented, and ignoring it
//! would show keys the policy means to hide).

use crate::capability::Capabilities;
use crate::pattern::Pattern;
use crate::syntax::{self, Content, Node};
use crate::template;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

/// OpenBao's `default` policy, byte for byte (vault/policy_store.go
/// `defaultPolicy` in OpenBao, which differs from Vault's: Vault adds
/// enterprise paths such as `sys/control-group/request` and
/// `sys/mfa/challenge`, OpenBao adds the `identity/entity/...` and OIDC
/// authorize paths). `GET sys/policy/default` shows this text.
pub const DEFAULT_POLICY: &str = r#"
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own entity by id or name
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}


# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs. It is an internal path because the format may change at any time
# based on how the internal ACL features and capabilities change.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
"#;

/// The `response-wrapping` policy of wrapping tokens (same text in Vault
/// and OpenBao): immutable and never assignable.
pub const RESPONSE_WRAPPING_POLICY: &str = r#"
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"#;

/// Why a policy text was refused. `Display` is Vault's text, ready for a
/// 400 `{"errors":[...]}`, starting `failed to parse policy: ` as Vault's
/// does.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not HCL (or JSON): `At LINE:COLUMN: why`, the shape of HCL 1's
    /// position errors (the words are our parser's).
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// Keys Vault does not know, at the top (`path` is `None`) or in a
    /// path block; all of them, with their lines, in go-multierror's list.
    InvalidKeys {
        path: Option<String>,
        keys: Vec<(String, usize)>,
    },
    /// A value of the wrong type (`capabilities = "read"`).
    Type {
        path: Option<String>,
        line: usize,
        column: usize,
        message: String,
    },
    /// `{{` and `}}` that do not pair up in a path.
    Templating,
    /// The legacy `policy = "..."` is not deny, read, write or sudo.
    InvalidPolicy {
        path: String,
        policy: String,
    },
    InvalidCapability {
        path: String,
        capability: String,
    },
    /// `+*` in a path (quoted without its leading `/`, as Vault does).
    ForbiddenWildcard {
        path: String,
    },
    /// `min_wrapping_ttl`/`max_wrapping_ttl` is not a duration.
    WrappingTtl {
        field: &'static str,
        message: String,
    },
    /// Both wrapping TTLs set, the maximum below the minimum.
    MaxBelowMin,
    Expiration {
        path: String,
        message: String,
    },
    ControlGroupTtl {
        message: String,
    },
    /// A key Warden does not implement (and would be unsafe to ignore).
    Unsupported {
        path: String,
        key: String,
        line: usize,
    },
}

impl Error {
    /// The line (from 1) the error is on, when it is known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Syntax { line, .. } | Error::Type { line, .. } | Error::Unsupported { line, .. } => Some(*line),
            Error::InvalidKeys { keys, .. } => keys.first().map(|(_, line)| *line),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failed to parse policy: ")?;
        let in_path = |path: &Option<String>| path.as_ref().map(|p| format!("path {}: ", go_quote(p)));
        match self {
            Error::Syntax { line, column, message } => write!(f, "At {line}:{column}: {message}"),
            Error::InvalidKeys { path, keys } => {
                // go-multierror's ListFormatFunc, each error prefixed by
                // multierror.Prefix("path %q:") inside a path block.
                let prefix = in_path(path).unwrap_or_default();
                let points: Vec<String> = keys
                    .iter()
                    .map(|(key, line)| format!("* {prefix}invalid key {} on line {line}", go_quote(key)))
                    .collect();
                match points.as_slice() {
                    [one] => write!(f, "1 error occurred:\n\t{one}\n\n"),
                    many => write!(f, "{} errors occurred:\n\t{}\n\n", many.len(), many.join("\n\t")),
                }
            }
            Error::Type {
                path,
                line,
                column,
                message,
            } => write!(f, "{}At {line}:{column}: {message}", in_path(path).unwrap_or_default()),
            Error::Templating => f.write_str("failed to validate policy templating: unbalanced templating characters"),
            Error::InvalidPolicy { path, policy } => {
                write!(f, "path {}: invalid policy {}", go_quote(path), go_quote(policy))
            }
            Error::InvalidCapability { path, capability } => {
                write!(
                    f,
                    "path {}: invalid capability {}",
                    go_quote(path),
                    go_quote(capability)
                )
            }
            Error::ForbiddenWildcard { path } => {
                write!(
                    f,
                    "path {}: invalid use of wildcards ('+*' is forbidden)",
                    go_quote(path)
                )
            }
            Error::WrappingTtl { field, message } => write!(f, "error parsing {field}: {message}"),
            Error::MaxBelowMin => f.write_str("max_wrapping_ttl cannot be less than min_wrapping_ttl"),
            Error::Expiration { path, message } => {
                write!(f, "path {}: invalid expiration time: {message}", go_quote(path))
            }
            Error::ControlGroupTtl { message } => {
                write!(
                    f,
                    "error handling control_group: path control_group: invalid ttl: {message}"
                )
            }
            Error::Unsupported { path, key, line } => write!(
                f,
                "path {}: {key} on line {line} is not supported by this server",
                go_quote(path)
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Parameter names (lower-cased, as Vault keys them) to the values allowed
/// or denied; an empty list means any value.
pub type Parameters = BTreeMap<String, Vec<Value>>;

/// One `path "<pattern>" { ... }` block, read.
#[derive(Clone, Debug, PartialEq)]
pub struct PathRule {
    /// The pattern as written (before templating and the leading `/` cut).
    pub raw_path: String,
    /// The pattern as Vault keys it. For a templated rule this is the
    /// unfilled pattern; the ACL fills it for each identity.
    pub pattern: Pattern,
    /// The path holds `{{...}}` templates.
    pub templated: bool,
    pub capabilities: Capabilities,
    pub allowed_parameters: Parameters,
    pub denied_parameters: Parameters,
    pub required_parameters: Vec<String>,
    /// Seconds; 0 when unset.
    pub min_wrapping_ttl: i64,
    /// Seconds; 0 when unset.
    pub max_wrapping_ttl: i64,
    pub mfa_methods: Vec<String>,
    /// OpenBao's LIST page size limit; 0 when unset.
    pub pagination_limit: i64,
    /// OpenBao's per-path `expiration`: the rule stops applying then.
    pub expiration: Option<SystemTime>,
}

/// A named policy: its text and its rules in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    name: String,
    text: String,
    rules: Vec<PathRule>,
    templated: bool,
}

impl Policy {
    /// Reads `text` (HCL, or JSON when it starts with `{`) as the policy
    /// `name`. The name is kept as given: Vault's store lower-cases and
    /// trims names ([`sanitize_name`]) and ignores a `name = "..."` inside
    /// the text, and so should the caller. Rules whose `expiration` has
    /// passed are left out, as Vault leaves them out.
    pub fn parse(name: &str, text: &str) -> Result<Policy, Error> {
        let nodes = syntax::parse(text).map_err(|e| Error::Syntax {
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        let invalid: Vec<(String, usize)> = nodes
            .iter()
            .filter(|n| n.key != "name" && n.key != "path")
            .map(|n| (n.key.clone(), n.line))
            .collect();
        if !invalid.is_empty() {
            return Err(Error::InvalidKeys {
                path: None,
                keys: invalid,
            });
        }
        let mut rules = Vec::new();
        for node in &nodes {
            match node.key.as_str() {
                "name" => match &node.value {
                    Content::Value(Value::String(_) | Value::Number(_)) => {}
                    _ => return Err(type_error(None, node, "name must be a string")),
                },
                _ => {
                    if let Some(rule) = parse_path(node)? {
                        rules.push(rule);
                    }
                }
            }
        }
        Ok(Policy {
            name: name.to_string(),
            text: text.to_string(),
            templated: rules.iter().any(|r| r.templated),
            rules,
        })
    }

    /// The `root` policy: no rules; an ACL holding it allows everything.
    pub fn root() -> Policy {
        Policy {
            name: "root".into(),
            text: String::new(),
            rules: Vec::new(),
            templated: false,
        }
    }

    /// The `default` policy ([`DEFAULT_POLICY`]).
    pub fn default_policy() -> Policy {
        Policy::builtin("default", DEFAULT_POLICY)
    }

    /// The `response-wrapping` policy ([`RESPONSE_WRAPPING_POLICY`]).
    pub fn response_wrapping() -> Policy {
        Policy::builtin("response-wrapping", RESPONSE_WRAPPING_POLICY)
    }

    fn builtin(name: &str, text: &str) -> Policy {
        // The texts are constants that the tests parse; should one ever not
        // parse, an empty policy grants nothing, which is the safe side.
        Policy::parse(name, text).unwrap_or_else(|_| Policy {
            name: name.into(),
            text: text.into(),
            rules: Vec::new(),
            templated: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text the policy was read from (Vault's `rules`/`policy` field).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn rules(&self) -> &[PathRule] {
        &self.rules
    }

    /// Some path holds `{{...}}` templates, filled per identity.
    pub fn is_templated(&self) -> bool {
        self.templated
    }

    /// The policy named `root`, which makes an ACL allow everything.
    pub fn is_root(&self) -> bool {
        self.name == "root"
    }

    /// `p` with other rules (to test what parsing cannot produce, such as
    /// a rule that expires after it was read).
    #[cfg(test)]
    pub(crate) fn from_rules_for_tests(p: &Policy, rules: Vec<PathRule>) -> Policy {
        Policy { rules, ..p.clone() }
    }
}

/// Vault's policy name normal form: trimmed and lower-cased.
pub fn sanitize_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Go's `strings.ToLower`, as Vault lower-cases parameter names: per
/// character (so no final-sigma rule), borrowing when nothing changes.
pub(crate) fn go_lower(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else if s.chars().any(|c| c.is_uppercase()) {
        Cow::Owned(s.chars().flat_map(char::to_lowercase).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// Go's `%q` (strconv.Quote), the quoting of Vault's messages.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x80 && c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() || c == '\u{feff}' => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const PATH_KEYS: [&str; 13] = [
    "comment",
    "policy",
    "capabilities",
    "allowed_parameters",
    "denied_parameters",
    "required_parameters",
    "min_wrapping_ttl",
    "max_wrapping_ttl",
    "mfa_methods",
    "pagination_limit",
    "expiration",
    "list_scan_response_keys_filter_path",
    "control_group",
];

fn type_error(path: Option<&str>, node: &Node, message: &str) -> Error {
    Error::Type {
        path: path.map(str::to_string),
        line: node.line,
        column: node.column,
        message: message.to_string(),
    }
}

/// A block's body as key → node; an attribute whose value is an object
/// reads as a block (`allowed_parameters = {...}` or `allowed_parameters {...}`).
fn object(node: &Node) -> Option<Cow<'_, serde_json::Map<String, Value>>> {
    match &node.value {
        Content::Value(Value::Object(map)) => Some(Cow::Borrowed(map)),
        Content::Body(body) => {
            let mut map = serde_json::Map::new();
            for n in body {
                let value = match &n.value {
                    Content::Value(v) => v.clone(),
                    Content::Body(_) => Value::Object(object(n)?.into_owned()),
                };
                map.insert(n.key.clone(), value);
            }
            Some(Cow::Owned(map))
        }
        Content::Value(_) => None,
    }
}

/// A list of strings; numbers read as their text, as HCL 1 reads them.
fn strings(path: &str, node: &Node) -> Result<Vec<String>, Error> {
    let wrong = || type_error(Some(path), node, &format!("{} must be a list of strings", node.key));
    let Content::Value(Value::Array(items)) = &node.value else {
        return Err(wrong());
    };
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(wrong()),
        })
        .collect()
}

/// A string (numbers as their text).
fn string(path: &str, node: &Node) -> Result<String, Error> {
    match &node.value {
        Content::Value(Value::String(s)) => Ok(s.clone()),
        Content::Value(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(type_error(Some(path), node, &format!("{} must be a string", node.key))),
    }
}

/// `allowed_parameters`/`denied_parameters`: names lower-cased (a later
/// name that lower-cases alike wins), each a list of values; a lone object
/// is a list of one, as HCL 1 decodes it.
fn parameters(path: &str, node: &Node) -> Result<Parameters, Error> {
    let map = object(node).ok_or_else(|| {
        type_error(
            Some(path),
            node,
            &format!("{} must be an object of lists (\"name\" = [values])", node.key),
        )
    })?;
    let mut out = Parameters::new();
    for (name, values) in map.iter() {
        let values = match values {
            Value::Array(items) => items.clone(),
            Value::Object(_) => vec![values.clone()],
            _ => {
                return Err(type_error(
                    Some(path),
                    node,
                    &format!("{}: the values of {name:?} must be a list", node.key),
                ));
            }
        };
        out.insert(go_lower(name).into_owned(), values);
    }
    Ok(out)
}

/// Vault's `parseutil.ParseDurationSecond` on a decoded value: a string is
/// a duration (`"90s"`, `"1h"`, `"300"`, `"2d"`), a number whole seconds.
fn duration_seconds(value: &Value) -> Result<i64, String> {
    match value {
        Value::String(s) => goduration::parse_seconds(s).map_err(|e| e.to_string()),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                // Go converts a float of seconds to a Duration, truncating.
                n.as_f64()
                    .filter(|f| f.abs() < goduration::MAX_SECS as f64)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| format!("duration {n} is out of range")),
        Value::Null => Ok(0),
        _ => Err("could not parse duration from input".into()),
    }
}

/// One path block, or `None` when its `expiration` has passed.
fn parse_path(node: &Node) -> Result<Option<PathRule>, Error> {
    let raw_path = match node.labels.as_slice() {
        [label] => label.clone(),
        // `path { ... }`: HCL 1 then keys the rule "path" itself. Odd, but
        // what Vault does.
        [] => "path".to_string(),
        [first, ..] => {
            return Err(type_error(
                Some(first),
                node,
                "a path block takes one label, the pattern: path \"<pattern>\" { ... }",
            ));
        }
    };
    let path = raw_path.as_str();
    let Content::Body(body) = &node.value else {
        return Err(type_error(
            None,
            node,
            "path must be a block: path \"<pattern>\" { ... }",
        ));
    };
    let templated = template::has_templates(path).map_err(|_| Error::Templating)?;

    let invalid: Vec<(String, usize)> = body
        .iter()
        .filter(|n| !PATH_KEYS.contains(&n.key.as_str()))
        .map(|n| (n.key.clone(), n.line))
        .collect();
    if !invalid.is_empty() {
        return Err(Error::InvalidKeys {
            path: Some(raw_path),
            keys: invalid,
        });
    }
    let field = |key: &str| body.iter().find(|n| n.key == key);

    if let Some(cg) = field("control_group") {
        let map = object(cg).ok_or_else(|| type_error(Some(path), cg, "control_group must be an object"))?;
        duration_seconds(map.get("ttl").unwrap_or(&Value::Null))
            .map_err(|message| Error::ControlGroupTtl { message })?;
    }

    // Decode every field first (type errors), as HCL 1's DecodeObject does
    // before Vault looks at any value.
    let legacy = field("policy").map(|n| string(path, n)).transpose()?;
    let mut names = field("capabilities")
        .map(|n| strings(path, n))
        .transpose()?
        .unwrap_or_default();
    let allowed = field("allowed_parameters")
        .map(|n| parameters(path, n))
        .transpose()?
        .unwrap_or_default();
    let denied = field("denied_parameters")
        .map(|n| parameters(path, n))
        .transpose()?
        .unwrap_or_default();
    let required = field("required_parameters")
        .map(|n| strings(path, n))
        .transpose()?
        .unwrap_or_default();
    let mfa_methods = field("mfa_methods")
        .map(|n| strings(path, n))
        .transpose()?
        .unwrap_or_default();
    let pagination_limit = match field("pagination_limit") {
        None => 0,
        Some(n) => match &n.value {
            Content::Value(Value::Number(v)) => v.as_i64(),
            Content::Value(Value::String(s)) => s.parse::<i64>().ok(),
            _ => None,
        }
        .ok_or_else(|| type_error(Some(path), n, "pagination_limit must be an integer"))?,
    };
    let expiration = field("expiration").map(|n| string(path, n)).transpose()?;
    if let Some(n) = field("list_scan_response_keys_filter_path")
        && !string(path, n)?.is_empty()
    {
        return Err(Error::Unsupported {
            path: raw_path,
            key: n.key.clone(),
            line: n.line,
        });
    }

    let expiration = match expiration.as_deref() {
        None | Some("") => None,
        Some(text) => {
            let at = crate::time::parse_absolute(text).map_err(|message| Error::Expiration {
                path: raw_path.clone(),
                message: message.to_string(),
            })?;
            if SystemTime::now() > at {
                return Ok(None);
            }
            Some(at)
        }
    };

    let pattern = Pattern::parse(path).map_err(|e| Error::ForbiddenWildcard { path: e.path })?;

    let mut rule = PathRule {
        raw_path: raw_path.clone(),
        pattern,
        templated,
        capabilities: Capabilities::NONE,
        allowed_parameters: Parameters::new(),
        denied_parameters: Parameters::new(),
        required_parameters: Vec::new(),
        min_wrapping_ttl: 0,
        max_wrapping_ttl: 0,
        mfa_methods: Vec::new(),
        pagination_limit: 0,
        expiration,
    };

    // The legacy `policy` maps onto capabilities: deny replaces them, the
    // others add to them.
    match legacy.as_deref() {
        None | Some("") => {}
        Some("deny") => names = vec!["deny".into()],
        Some("read") => names.extend(["read", "list"].map(String::from)),
        Some("write") => names.extend(["create", "read", "update", "delete", "list"].map(String::from)),
        Some("sudo") => names.extend(["create", "read", "update", "delete", "list", "sudo"].map(String::from)),
        Some(other) => {
            return Err(Error::InvalidPolicy {
                path: raw_path,
                policy: other.into(),
            });
        }
    }
    for name in &names {
        match Capabilities::from_name(name) {
            // A deny stands alone, and Vault reads nothing after it: not
            // the other capabilities, nor parameters, nor wrapping TTLs.
            Some(Capabilities::DENY) => {
                rule.capabilities = Capabilities::DENY;
                return Ok(Some(rule));
            }
            Some(c) => rule.capabilities = rule.capabilities.union(c),
            None => {
                return Err(Error::InvalidCapability {
                    path: raw_path,
                    capability: name.clone(),
                });
            }
        }
    }

    rule.allowed_parameters = allowed;
    rule.denied_parameters = denied;
    for (key, out) in [
        ("min_wrapping_ttl", &mut rule.min_wrapping_ttl),
        ("max_wrapping_ttl", &mut rule.max_wrapping_ttl),
    ] {
        if let Some(Content::Value(v)) = field(key).map(|n| &n.value) {
            *out = duration_seconds(v).map_err(|message| Error::WrappingTtl { field: key, message })?;
        } else if let Some(n) = field(key) {
            return Err(type_error(Some(path), n, &format!("{key} must be a duration")));
        }
    }
    rule.mfa_methods = mfa_methods;
    if rule.min_wrapping_ttl != 0 && rule.max_wrapping_ttl != 0 && rule.max_wrapping_ttl < rule.min_wrapping_ttl {
        return Err(Error::MaxBelowMin);
    }
    rule.required_parameters = required;
    rule.pagination_limit = pagination_limit;
    Ok(Some(rule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::PatternKind;
    use serde_json::json;

    fn err(text: &str) -> String {
        Policy::parse("p", text).expect_err(text).to_string()
    }

    fn rules(text: &str) -> Vec<PathRule> {
        Policy::parse("p", text).expect(text).rules
    }

    #[test]
    fn reads_every_field() {
        let r = rules(
            r#"
name = "ignored"
path "/secret/data/*" {
  comment = "kept out"
  capabilities = ["create", "read", "update", "patch"]
  allowed_parameters = {
    "Foo" = ["bar", "baz*"]
    "*" = []
  }
  denied_parameters = { "x" = [1, true, null, { "a" = "b" }] }
  required_parameters = ["foo"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = 90
  mfa_methods = ["totp"]
  pagination_limit = 50
}
path "legacy" { policy = "read" }
"#,
        );
        assert_eq!(r.len(), 2);
        let a = &r[0];
        assert_eq!(a.raw_path, "/secret/data/*");
        assert_eq!(
            a.pattern,
            Pattern {
                key: "secret/data/".into(),
                kind: PatternKind::Prefix
            }
        );
        assert_eq!(a.capabilities.names(), ["read", "update", "create", "patch"]);
        assert_eq!(
            a.allowed_parameters["foo"],
            vec![json!("bar"), json!("baz*")],
            "names lower-cased"
        );
        assert_eq!(a.allowed_parameters["*"], Vec::<Value>::new());
        assert_eq!(
            a.denied_parameters["x"],
            vec![json!(1), json!(true), json!(null), json!({"a": "b"})]
        );
        assert_eq!(a.required_parameters, ["foo"]);
        assert_eq!((a.min_wrapping_ttl, a.max_wrapping_ttl), (1, 90));
        assert_eq!(a.mfa_methods, ["totp"]);
        assert_eq!(a.pagination_limit, 50);
        assert_eq!(r[1].capabilities.names(), ["read", "list"]);
        assert_eq!(r[1].pattern.kind, PatternKind::Exact);
    }

    #[test]
    fn legacy_policies_map_as_vault_maps_them() {
        let caps = |p: &str| {
            rules(&format!("path \"x\" {{ policy = \"{p}\" }}"))[0]
                .capabilities
                .names()
        };
        assert_eq!(caps("deny"), ["deny"]);
        assert_eq!(caps("read"), ["read", "list"]);
        assert_eq!(caps("write"), ["read", "list", "update", "delete", "create"]);
        assert_eq!(caps("sudo"), ["sudo", "read", "list", "update", "delete", "create"]);
        // policy adds to capabilities; deny replaces them
        let r = rules("path \"x\" {\n policy = \"read\"\n capabilities = [\"update\", \"sudo\"]\n}");
        assert_eq!(r[0].capabilities.names(), ["sudo", "read", "list", "update"]);
        let r = rules("path \"x\" {\n policy = \"deny\"\n capabilities = [\"read\", \"update\"]\n}");
        assert_eq!(r[0].capabilities.names(), ["deny"]);
    }

    #[test]
    fn deny_stops_reading_the_block() {
        // Vault reads nothing after a deny: a bad capability or TTL after
        // it is not an error, and no parameters are kept.
        let r = rules(
            "path \"x\" {\n capabilities = [\"deny\", \"banana\"]\n min_wrapping_ttl = \"junk\"\n allowed_parameters = { a = [] }\n}",
        );
        assert_eq!(r[0].capabilities, Capabilities::DENY);
        assert!(r[0].allowed_parameters.is_empty());
        // ...but what comes before it is checked
        assert_eq!(
            err("path \"x\" { capabilities = [\"banana\", \"deny\"] }"),
            "failed to parse policy: path \"x\": invalid capability \"banana\""
        );
    }

    #[test]
    fn vaults_error_texts() {
        assert_eq!(
            err("path \"/\" {\n\tcapabilities = [\"read\", \"banana\"]\n}"),
            "failed to parse policy: path \"/\": invalid capability \"banana\""
        );
        for refused in ["subscribe", "recover", "root", "write"] {
            assert_eq!(
                err(&format!("path \"a\" {{ capabilities = [\"{refused}\"] }}")),
                format!("failed to parse policy: path \"a\": invalid capability \"{refused}\"")
            );
        }
        assert_eq!(
            err("path \"/\" {\n\tpolicy = \"banana\"\n}"),
            "failed to parse policy: path \"/\": invalid policy \"banana\""
        );
        assert_eq!(
            err("path \"/foo/+*\" {\n\tcapabilities = [\"read\"]\n}"),
            "failed to parse policy: path \"foo/+*\": invalid use of wildcards ('+*' is forbidden)"
        );
        assert_eq!(
            err("path \"/\" {\n\tpolicy = \"read\"\n\tmin_wrapping_ttl = 400\n\tmax_wrapping_ttl = 200\n}"),
            "failed to parse policy: max_wrapping_ttl cannot be less than min_wrapping_ttl"
        );
        assert_eq!(
            err("path \"a\" {\n capabilities = [\"read\"]\n min_wrapping_ttl = \"soon\"\n}"),
            "failed to parse policy: error parsing min_wrapping_ttl: time: invalid duration \"soon\""
        );
        assert_eq!(
            err("path \"a/{{identity.entity.id\" { capabilities = [\"read\"] }"),
            "failed to parse policy: failed to validate policy templating: unbalanced templating characters"
        );
        assert_eq!(
            err("name = \"test\"\nbad  = \"foo\"\nnope = \"yes\""),
            "failed to parse policy: 2 errors occurred:\n\t* invalid key \"bad\" on line 2\n\t* invalid key \"nope\" on line 3\n\n"
        );
        assert_eq!(
            err("path \"/\" {\n\tcapabilities = [\"read\"]\n\tcapabilites  = [\"read\"]\n}"),
            "failed to parse policy: 1 error occurred:\n\t* path \"/\": invalid key \"capabilites\" on line 3\n\n"
        );
        assert_eq!(
            err("path \"a\" {\n capabilities = [\"read\"]\n control_group = { ttl = \"x\" }\n}"),
            "failed to parse policy: error handling control_group: path control_group: invalid ttl: time: invalid duration \"x\""
        );
        assert_eq!(
            err("path \"a\" {\n expiration = \"tomorrow\"\n}"),
            "failed to parse policy: path \"a\": invalid expiration time: could not parse string as date and time"
        );
        assert_eq!(
            err("path \"a\" {\n capabilities = [\"list\"]\n list_scan_response_keys_filter_path = \"a/{{ .key }}\"\n}"),
            "failed to parse policy: path \"a\": list_scan_response_keys_filter_path on line 3 is not supported by this server"
        );
    }

    #[test]
    fn syntax_and_type_errors_name_the_line() {
        let e = Policy::parse("p", "path \"a\" {\n  capabilities = [\"read\"\n}\n").expect_err("syntax");
        assert_eq!(e.line(), Some(3), "{e}");
        assert!(e.to_string().starts_with("failed to parse policy: At 3:"), "{e}");
        let e = Policy::parse("p", "\npath \"a\" {\n  capabilities = \"read\"\n}\n").expect_err("type");
        assert_eq!(
            e.to_string(),
            "failed to parse policy: path \"a\": At 3:3: capabilities must be a list of strings"
        );
        let e = Policy::parse("p", "path \"a\" {\n allowed_parameters = { k = \"v\" }\n}").expect_err("values");
        assert_eq!(e.line(), Some(2), "{e}");
        let e = Policy::parse(
            "p",
            "{\"path\": {\"a\": {\"capabilities\": [\"read\"],\n \"bogus\": 1}}}",
        )
        .expect_err("json");
        assert_eq!(
            e.to_string(),
            "failed to parse policy: 1 error occurred:\n\t* path \"a\": invalid key \"bogus\" on line 2\n\n"
        );
        let e = Policy::parse("p", "{\"path\": [}").expect_err("json syntax");
        assert!(e.to_string().starts_with("failed to parse policy: At 1:"), "{e}");
        assert!(
            Policy::parse("p", "name{}").is_err(),
            "Vault's TestACL_ParseMalformedPolicy"
        );
    }

    #[test]
    fn json_policies() {
        let p = Policy::parse(
            "j",
            r#"  {"path": {"secret/*": {"capabilities": ["read", "list"], "allowed_parameters": {"Foo": ["a"]}},
                       "x/+/y": {"policy": "write"}}}"#,
        )
        .expect("json");
        assert_eq!(p.rules().len(), 2);
        assert_eq!(p.rules()[0].pattern.kind, PatternKind::Prefix);
        assert_eq!(p.rules()[0].allowed_parameters["foo"], vec![json!("a")]);
        assert_eq!(p.rules()[1].pattern.kind, PatternKind::SegmentWildcard);
        let listed = Policy::parse(
            "j",
            r#"{"path": [{"a": {"capabilities": ["read"]}}, {"b": {"capabilities": ["list"]}}]}"#,
        )
        .expect("list form");
        assert_eq!(listed.rules().len(), 2);
    }

    #[test]
    fn block_form_parameters_and_pathless_block() {
        let r = rules("path \"a\" {\n capabilities = [\"create\"]\n allowed_parameters {\n   foo = [\"x\"]\n }\n}");
        assert_eq!(r[0].allowed_parameters["foo"], vec![json!("x")]);
        let r = rules("path {\n capabilities = [\"read\"]\n}");
        assert_eq!(r[0].pattern.key, "path", "HCL 1 keys a label-less path block \"path\"");
    }

    #[test]
    fn expiration_drops_past_rules() {
        let r = rules(
            "path \"old\" {\n capabilities = [\"read\"]\n expiration = \"2006-01-02T15:04:05Z\"\n}\n\
             path \"new\" {\n capabilities = [\"read\"]\n expiration = \"2999-01-02T15:04:05+02:00\"\n}\n\
             path \"epoch\" {\n capabilities = [\"read\"]\n expiration = 1\n}",
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].raw_path, "new");
        assert!(r[0].expiration.is_some());
    }

    #[test]
    fn builtin_policies_parse() {
        let d = Policy::parse("default", DEFAULT_POLICY).expect("default policy");
        assert!(d.is_templated());
        let keys: Vec<(&str, PatternKind)> = d
            .rules()
            .iter()
            .map(|r| (r.pattern.key.as_str(), r.pattern.kind))
            .collect();
        assert_eq!(keys.len(), 17);
        assert!(keys.contains(&("cubbyhole/", PatternKind::Prefix)));
        assert!(keys.contains(&("identity/entity/id/{{identity.entity.id}}", PatternKind::Exact)));
        assert!(keys.contains(&("identity/oidc/provider/+/authorize", PatternKind::SegmentWildcard)));
        assert_eq!(Policy::default_policy(), d);
        assert_eq!(Policy::default_policy().text(), DEFAULT_POLICY);
        assert_eq!(Policy::response_wrapping().rules().len(), 2);
        assert!(Policy::root().is_root() && Policy::root().rules().is_empty());
        assert!(!d.is_root());
    }

    #[test]
    fn helpers() {
        assert_eq!(sanitize_name("  MyPolicy \n"), "mypolicy");
        assert_eq!(go_lower("AbC"), "abc");
        assert!(matches!(go_lower("abc"), Cow::Borrowed(_)));
        assert_eq!(go_lower("ÄBΣ"), "äbσ", "no final sigma, as Go");
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
    }
}
