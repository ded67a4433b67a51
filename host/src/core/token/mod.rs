//! The token backend (`auth/token/`): Vault's service tokens, created as
//! children of the caller (or orphans), looked up, renewed and revoked with
//! their children. The root token, written by `sys/init`, is kept apart as
//! its SHA-256 hash; every other token lives in the token store
//! ([`store`]), as salted hashes only.

pub mod batch;
pub mod roles;
pub mod store;

use super::Core;
use crate::error::{Error, Result};
use crate::framework::{Backend, Field, FieldType, Path, Req, ttl};
use crate::handler;
use crate::logical::Operation::{Delete, List, Read, Update};
use crate::logical::{Namespace, Reply, Response};
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use store::TokenEntry;

/// The token backend's paths (`auth/token/`).
pub static BACKEND: std::sync::LazyLock<Backend<Core>> = std::sync::LazyLock::new(|| {
    let token = || Field::new("token", FieldType::Str, "Token to act on.");
    let accessor = || Field::new("accessor", FieldType::Str, "Accessor of the token.");
    let increment = || {
        Field::new(
            "increment",
            FieldType::Duration,
            "The desired increment in seconds to the token expiration.",
        )
    };
    let create_fields = |p: Path<Core>| {
        p.field(Field::new(
            "policies",
            FieldType::CommaList,
            "List of policies for the token.",
        ))
        .field(Field::new(
            "meta",
            FieldType::Map,
            "Arbitrary key=value metadata to associate with the token.",
        ))
        .field(Field::new(
            "no_parent",
            FieldType::Bool,
            "Create the token with no parent.",
        ))
        .field(Field::new(
            "no_default_policy",
            FieldType::Bool,
            "Do not include default policy for this token.",
        ))
        .field(Field::new("ttl", FieldType::Duration, "Time to live for this token."))
        .field(Field::new(
            "explicit_max_ttl",
            FieldType::Duration,
            "Explicit Max TTL for this token.",
        ))
        .field(Field::new(
            "period",
            FieldType::Duration,
            "Renew period of the token (a periodic token).",
        ))
        .field(Field::new(
            "display_name",
            FieldType::Str,
            "Name to associate with this token.",
        ))
        .field(Field::new(
            "num_uses",
            FieldType::Int,
            "Max number of uses for this token.",
        ))
        .field(
            Field::new(
                "renewable",
                FieldType::Bool,
                "Allow token to be renewed past its initial TTL up to system/mount maximum TTL.",
            )
            .default(true),
        )
        .field(Field::new(
            "type",
            FieldType::Str,
            "Token type: service (stored, renewable, revocable) or batch (sealed into the token itself).",
        ))
    };
    Backend::new(
        "token",
        "The token credential backend is always enabled and builtin to Warden. Client tokens are used to identify a client and to allow Warden to associate policies and ACLs which are enforced on every request.",
        vec![
            create_fields(Path::new("create"))
                .op(Update, handler!(create), "The token create path is used to create new tokens.")
                .help("The token create path is used to create new tokens.", "A new token, a child of the calling token unless no_parent is set (root or sudo only), with the given policies (a subset of the caller's), TTL and uses."),
            create_fields(Path::new("create-orphan"))
                .op(Update, handler!(create_orphan), "The token create path is used to create new orphan tokens.")
                .help("The token create path is used to create new orphan tokens.", "A new token without a parent: revoking the caller does not revoke it."),
            create_fields(Path::new(r"create/(?P<role_name>\w(([\w.-]+)?\w)?)"))
                .field(Field::new("role_name", FieldType::Str, "Name of the role"))
                .op(Update, handler!(create_with_role), "Create a new token against a token role.")
                .help("This endpoint will create a token against the specified role name.", "A new token on the role's terms: its allowed and disallowed policies, orphan, renewable, period, explicit max TTL, uses and path suffix."),
            Path::new("roles/?")
                .op(List, handler!(list_roles), "This endpoint lists configured roles.")
                .help("This endpoint lists configured roles.", "The names of the token roles."),
            role_fields(Path::new(r"roles/(?P<role_name>\w(([\w.-]+)?\w)?)"))
                .existence(|b, r| Box::pin(role_exists(b, r)))
                .op(Read, handler!(read_role), "Read a token role.")
                .op(Update, handler!(write_role), "Create or update a token role.")
                .op(Delete, handler!(delete_role), "Delete a token role.")
                .help("This endpoint allows creating, reading, and deleting roles.", "Token roles: named settings that tokens made with auth/token/create/<role> get."),
            Path::new("accessors/?")
                .sudo()
                .op(List, handler!(list_accessors), "List token accessors, which can then be used to iterate and discover their properties or revoke them.")
                .help("List token accessors, which can then be used to iterate and discover their properties or revoke them.", "The accessors of every token but the root token. Sudo only."),
            Path::new("lookup-self")
                .op(Read, handler!(lookup_self), "Look up the calling token's properties.")
                .op(Update, handler!(lookup_self), "Look up the calling token's properties.")
                .help(
                    "This endpoint will lookup a token and its properties.",
                    "The calling token's policies, TTL and other properties.",
                ),
            Path::new("lookup")
                .field(token())
                .op(Update, handler!(lookup_other), "Look up a token's properties.")
                .help(
                    "This endpoint will lookup a token and its properties.",
                    "The given token's policies, TTL and other properties.",
                ),
            Path::new("lookup-accessor")
                .field(accessor())
                .op(Update, handler!(lookup_accessor), "Look up a token's properties by its accessor.")
                .help("This endpoint will lookup a token associated with the given accessor and its properties. Response will not contain the token ID.", "The properties of the token the accessor names, without the token."),
            Path::new("renew-self")
                .field(increment())
                .op(Update, handler!(renew_self), "Renew the calling token.")
                .help("This endpoint will renew the token used to call it and prevent expiration.", "Extends the calling token's TTL by the increment, within its maximum."),
            Path::new("renew")
                .field(token())
                .field(increment())
                .op(Update, handler!(renew_other), "Renew a token.")
                .help("This endpoint will renew the given token and prevent expiration.", "Extends the token's TTL by the increment, within its maximum."),
            Path::new("renew-accessor")
                .field(accessor())
                .field(increment())
                .op(Update, handler!(renew_accessor), "Renew a token by its accessor.")
                .help("This endpoint will renew a token associated with the given accessor and its properties. Response will not contain the token ID.", "Extends the TTL of the token the accessor names."),
            Path::new("revoke-self")
                .op(Update, handler!(revoke_self), "Revoke the calling token and all its children.")
                .help("This endpoint will delete the token used to call it and all of its child tokens.", "Revokes the calling token and every token below it."),
            Path::new("revoke")
                .field(token())
                .op(Update, handler!(revoke_other), "Revoke a token and all its children.")
                .help("This endpoint will delete the given token and all of its child tokens.", "Revokes the token and every token below it."),
            Path::new("revoke-accessor")
                .field(accessor())
                .op(Update, handler!(revoke_accessor), "Revoke a token by its accessor, and all its children.")
                .help("This endpoint will delete the token associated with the accessor and all of its child tokens.", "Revokes the token the accessor names and every token below it."),
            Path::new("revoke-orphan")
                .sudo()
                .field(token())
                .op(Update, handler!(revoke_orphan), "Revoke a token but not its children, which become orphans.")
                .help("This endpoint will delete the token and orphan its child tokens.", "Revokes the token; its children stay, as orphans."),
        ],
    )
});

/// The fields of `auth/token/roles/:role_name`.
fn role_fields(p: Path<Core>) -> Path<Core> {
    let list = |name: &'static str, text: &'static str| Field::new(name, FieldType::CommaList, text);
    let duration = |name: &'static str, text: &'static str| Field::new(name, FieldType::Duration, text);
    p.field(Field::new("role_name", FieldType::Str, "Name of the role"))
        .field(list("allowed_policies", "If set, tokens can be created with any subset of the policies in this list, rather than the normal semantics of tokens being a subset of the calling token's policies."))
        .field(list("disallowed_policies", "If set, successful token creation via this role will require that no policies in the given list are requested."))
        .field(list("allowed_policies_glob", "If set, tokens can be created with any subset of glob matched policies in this list."))
        .field(list("disallowed_policies_glob", "If set, successful token creation via this role will require that no requested policies glob match any of policies in this list."))
        .field(Field::new("orphan", FieldType::Bool, "If true, tokens created via this role will be orphan tokens (have no parent)."))
        .field(duration("period", "Use 'token_period' instead."))
        .field(Field::new("path_suffix", FieldType::Str, "If set, tokens created via this role will contain the given suffix as a part of their path."))
        .field(duration("explicit_max_ttl", "Use 'token_explicit_max_ttl' instead."))
        .field(Field::new("renewable", FieldType::Bool, "Tokens created via this role will be renewable or not according to this value.").default(true))
        .field(list("allowed_entity_aliases", "String or JSON list of allowed entity aliases."))
        .field(list("token_bound_cidrs", "Comma separated string or JSON list of CIDR blocks. If set, specifies the blocks of IP addresses which are allowed to use the generated token."))
        .field(duration("token_explicit_max_ttl", "If set, tokens created via this role carry an explicit maximum TTL."))
        .field(Field::new("token_no_default_policy", FieldType::Bool, "If true, the 'default' policy will not automatically be added to generated tokens."))
        .field(Field::new("token_num_uses", FieldType::Int, "The maximum number of times a token may be used, a value of zero means unlimited."))
        .field(duration("token_period", "If set, tokens created via this role will have no max lifetime; instead, their renewal period will be fixed to this value."))
        .field(Field::new("token_type", FieldType::Str, "The type of token to generate, service or batch.").default("default-service"))
}

async fn role_exists(core: &Core, r: &Req<'_>) -> Result<bool> {
    Ok(roles::get(core, r.namespace, &r.fields.str("role_name"))
        .await?
        .is_some())
}

/// LIST of nothing is Vault's 404.
async fn list_roles(core: &Core, r: &Req<'_>) -> Reply {
    let names = roles::list(core, r.namespace).await?;
    Ok((!names.is_empty()).then(|| Response::list(names)))
}

async fn read_role(core: &Core, r: &Req<'_>) -> Reply {
    Ok(roles::get(core, r.namespace, &r.fields.str("role_name"))
        .await?
        .map(|role| Response::data(role.to_json())))
}

async fn write_role(core: &Core, r: &Req<'_>) -> Reply {
    roles::write(core, r).await?;
    Ok(None)
}

async fn delete_role(core: &Core, r: &Req<'_>) -> Reply {
    roles::delete(core, r.namespace, &r.fields.str("role_name")).await?;
    Ok(None)
}

/// `LIST auth/token/accessors` (sudo): every token's accessor, read from
/// the entries (the accessor index is keyed by salted hashes).
async fn list_accessors(core: &Core, r: &Req<'_>) -> Reply {
    let mut keys = Vec::new();
    for hash in core.tokens.hashes().await? {
        if let Some(entry) = core.tokens.get(&hash).await?
            && visible(r.namespace, &entry)
        {
            keys.push(entry.accessor);
        }
    }
    Ok(Some(Response::list(keys)))
}

/// Vault's display name: "token", or "token-" and the name with anything
/// but letters, digits and '-' made a '-'.
fn display_name(requested: &str) -> String {
    let name: String = requested
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    if name.is_empty() {
        "token".into()
    } else {
        format!("token-{name}")
    }
}

/// Sorted and deduplicated, lower-cased and trimmed as Vault stores them.
pub fn sanitize_policies(mut policies: Vec<String>, add_default: bool) -> Vec<String> {
    for p in &mut policies {
        *p = p.trim().to_lowercase();
    }
    policies.retain(|p| !p.is_empty());
    if add_default && !policies.iter().any(|p| p == "root") {
        policies.push("default".into());
    }
    policies.sort();
    policies.dedup();
    policies
}

async fn create(core: &Core, r: &Req<'_>) -> Reply {
    create_token(core, r, r.fields.bool("no_parent"), None).await
}

async fn create_orphan(core: &Core, r: &Req<'_>) -> Reply {
    create_token(core, r, true, None).await
}

/// `auth/token/create/:role_name`: a token on the role's terms.
async fn create_with_role(core: &Core, r: &Req<'_>) -> Reply {
    let name = r.fields.str("role_name");
    let role = roles::get(core, r.namespace, &name)
        .await?
        .ok_or_else(|| Error::bad(format!("unknown role {name}")))?;
    create_token(core, r, role.orphan, Some(role)).await
}

/// The policies a new token gets (Vault's `handleCreateCommon`): a role
/// with allowed policies decides alone (the caller's own do not matter);
/// otherwise the requested ones, or the parent's, which must be a subset
/// of the parent's unless the parent is root. A role's disallowed
/// policies are refused either way.
fn token_policies(r: &Req<'_>, role: Option<&roles::TokenRole>) -> Result<Vec<String>> {
    let f = &r.fields;
    let parent = r.auth;
    let requested = f.opt_list("policies").unwrap_or_default();
    let add_default = !f.bool("no_default_policy") && !role.is_some_and(|r| r.token_no_default_policy);
    let policies = match role {
        Some(role) if !role.allowed_policies.is_empty() || !role.allowed_policies_glob.is_empty() => {
            let allowed = sanitize_policies(role.allowed_policies.clone(), true);
            let globs = sanitize_policies(role.allowed_policies_glob.clone(), false);
            if requested.is_empty() {
                let mut p = allowed;
                if !add_default {
                    p.retain(|p| p != "default");
                }
                p
            } else {
                let asked = sanitize_policies(requested, true);
                if !roles::subset_glob(&allowed, &globs, &asked) {
                    return Err(Error::bad(format!(
                        "token policies ({}) must be subset of the role's allowed policies ({}) or glob policies ({})",
                        roles::go_quoted(&asked),
                        roles::go_quoted(&allowed),
                        roles::go_quoted(&globs)
                    )));
                }
                sanitize_policies(asked, add_default)
            }
        }
        _ => {
            // Without policies, a child has its parent's.
            let policies = match requested.is_empty() {
                false => requested,
                true => parent.policies.clone(),
            };
            let policies = sanitize_policies(policies, add_default);
            if !parent.is_root() {
                let allowed: Vec<&String> = parent.policies.iter().collect();
                if policies.iter().any(|p| p != "default" && !allowed.contains(&p))
                    || policies.iter().any(|p| p == "root")
                {
                    return Err(Error::bad("child policies must be subset of parent"));
                }
            }
            policies
        }
    };
    let mut policies = policies;
    if let Some(role) = role {
        if let Some(p) = policies.iter().find(|p| {
            role.disallowed_policies.contains(p)
                || role.disallowed_policies_glob.iter().any(|g| roles::glob_match(g, p))
        }) {
            // `default` is only refused when asked for explicitly.
            if p != "default"
                || f.opt_list("policies")
                    .is_some_and(|l| l.iter().any(|x| x.trim() == "default"))
            {
                return Err(Error::bad(format!("token policy {p:?} is disallowed by this role")));
            }
        }
        policies.retain(|p| !(p == "default" && role.disallowed_policies.iter().any(|d| d == "default")));
    }
    // Vault's nonAssignablePolicies: a wrapping token is made only by wrapping.
    if policies.iter().any(|p| p == super::policy_store::RESPONSE_WRAPPING) {
        return Err(Error::bad(format!(
            "cannot assign policy {:?}",
            super::policy_store::RESPONSE_WRAPPING
        )));
    }
    Ok(policies)
}

/// Vault's `handleCreateCommon`, for service tokens, with or without a role.
async fn create_token(core: &Core, r: &Req<'_>, orphan: bool, role: Option<roles::TokenRole>) -> Reply {
    let parent = r.auth;
    let f = &r.fields;
    let kind = f.opt_str("type").unwrap_or_default();
    // Vault's order of refusals: what the caller is, then what it asks.
    if parent.batch {
        return Err(Error::bad("batch tokens cannot create more tokens"));
    }
    if parent.limited_uses {
        return Err(Error::bad("restricted use token cannot generate child tokens"));
    }
    let batch = match kind.as_str() {
        "" => role.as_ref().is_some_and(|r| r.makes_batch()),
        "service" => role.as_ref().is_some_and(|r| r.token_type == "batch"),
        "batch" => role.as_ref().is_none_or(|r| r.token_type != "service"),
        _ => return Err(Error::bad("invalid 'token_type' value")),
    };
    if batch {
        let set = [
            ("explicit_max_ttl", f.duration("explicit_max_ttl") != 0),
            ("num_uses", f.int("num_uses") != 0),
            ("period", f.duration("period") != 0),
        ];
        if let Some((name, _)) = set.iter().find(|(_, set)| *set) {
            return Err(Error::bad(format!("batch tokens cannot have {name:?} set")));
        }
    }
    let mut num_uses = f.int("num_uses");
    if num_uses < 0 {
        return Err(Error::bad("number of uses cannot be negative"));
    }
    let mut explicit_max_ttl = f.duration("explicit_max_ttl");
    let mut period = f.duration("period");
    let requested_ttl = f.duration("ttl");
    if explicit_max_ttl < 0 || period < 0 || requested_ttl < 0 {
        return Err(Error::bad("a TTL, explicit_max_ttl or period cannot be negative"));
    }
    let parent_root = parent.is_root();
    if orphan && r.path == "create" && !parent_root {
        return Err(Error::bad("root or sudo privileges required to create orphan token"));
    }
    if period > 0 && !parent_root {
        return Err(Error::bad("root or sudo privileges required to create periodic token"));
    }
    let policies = token_policies(r, role.as_ref())?;
    if batch && policies.iter().any(|p| p == "root") {
        // A root token that cannot be revoked is never made.
        return Err(Error::bad("batch tokens cannot be root tokens"));
    }
    let mut renewable = f.bool("renewable") && !batch;
    let mut path = format!("auth/token/{}", r.path);
    let mut warnings = Vec::new();
    // The entry keeps what was asked; a role's terms are read again at
    // each renewal (Vault's), so a lookup shows only the request's.
    let (asked_max, asked_period) = (explicit_max_ttl, period);
    if let Some(role) = &role {
        // The role's settings bound the request's (Vault's rules: the
        // smaller explicit max and use count, the role's period; none of
        // them applies to a batch token).
        if !batch {
            let (max, both) = lesser(explicit_max_ttl, role.effective_explicit_max_ttl());
            explicit_max_ttl = max;
            if both {
                warnings.push(format!("Explicit max TTL specified both during creation call and in role; using the lesser value of {max} seconds"));
            }
            let (p, both) = lesser(period, role.effective_period());
            period = p;
            if both {
                warnings.push(format!(
                    "Period specified both during creation call and in role; using the lesser value of {p} seconds"
                ));
            }
        }
        if !batch && role.token_num_uses > 0 && (num_uses == 0 || role.token_num_uses < num_uses) {
            num_uses = role.token_num_uses;
        }
        renewable &= role.renewable;
        if !role.path_suffix.is_empty() {
            path = format!("{path}/{}", role.path_suffix);
        }
    }
    let is_root_token = policies.iter().any(|p| p == "root");

    // Vault's TTL rules: a periodic token lives for its period; otherwise
    // the requested TTL or the system default, capped by the system max
    // (root-policy tokens without a TTL never expire) and by
    // explicit_max_ttl.
    let mut ttl_secs = if period > 0 {
        period
    } else if requested_ttl > 0 {
        requested_ttl
    } else if is_root_token {
        0
    } else {
        ttl::system_default_ttl()
    };
    if !is_root_token && period == 0 && ttl_secs > ttl::system_max_ttl() {
        warnings.push(format!(
            "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
            ttl::human(ttl_secs),
            ttl::human(ttl::system_max_ttl())
        ));
        ttl_secs = ttl::system_max_ttl();
    }
    if explicit_max_ttl > 0 && (ttl_secs == 0 || ttl_secs > explicit_max_ttl) {
        if ttl_secs != 0 {
            warnings.push(format!(
                "Explicit max TTL of {:?} is less than the requested TTL; TTL value is capped accordingly",
                ttl::human(explicit_max_ttl)
            ));
        }
        ttl_secs = explicit_max_ttl;
    }
    let mut meta = Map::new();
    for (k, v) in f.opt_map("meta").unwrap_or_default() {
        match v {
            Value::String(_) => meta.insert(k, v),
            Value::Null => continue,
            other => meta.insert(k, Value::String(other.to_string())),
        };
    }
    let (token, entry) = core
        .issue_token(TokenSpec {
            parent: if orphan {
                String::new()
            } else {
                parent.token_hash.clone()
            },
            policies,
            path,
            meta,
            display_name: display_name(&f.str("display_name")),
            num_uses,
            ttl: ttl_secs,
            explicit_max_ttl: asked_max,
            period: asked_period,
            renewable,
            bound_cidrs: role.as_ref().map(|r| r.token_bound_cidrs.clone()).unwrap_or_default(),
            role: role.map(|r| r.name).unwrap_or_default(),
            batch,
            namespace: r.namespace.clone(),
        })
        .await?;
    let mut resp = Response {
        auth: Some(auth_block(&entry, &token, entry.creation_time)),
        ..Response::default()
    };
    resp.warnings = warnings;
    Ok(Some(resp))
}

/// The smaller of two optional durations (0: unset), and whether both
/// were set.
fn lesser(asked: i64, role: i64) -> (i64, bool) {
    match (asked, role) {
        (a, 0) => (a, false),
        (0, r) => (r, false),
        (a, r) => (a.min(r), true),
    }
}

/// What a new service token is made of: `auth/token/create`, a login
/// through an auth method, a response-wrapping token. The caller has
/// checked the policies and capped the TTL.
#[derive(Debug, Clone, Default)]
pub struct TokenSpec {
    /// The parent's hash ([`crate::logical::Auth::token_hash`]); empty for
    /// an orphan.
    pub parent: String,
    /// Sanitized ([`sanitize_policies`]).
    pub policies: Vec<String>,
    /// The path that created it (`auth/token/create`, `auth/approle/login`).
    pub path: String,
    pub meta: Map<String, Value>,
    pub display_name: String,
    /// Uses allowed; 0: unlimited.
    pub num_uses: i64,
    /// Seconds to live; 0: never expires.
    pub ttl: i64,
    pub explicit_max_ttl: i64,
    pub period: i64,
    /// Renewable if asked and it expires at all.
    pub renewable: bool,
    /// CIDR blocks it may be used from (empty: anywhere).
    pub bound_cidrs: Vec<String>,
    /// The token role it was made against (empty: none).
    pub role: String,
    /// A batch token: sealed into the token, nothing stored.
    pub batch: bool,
    /// The namespace it is made in.
    pub namespace: crate::logical::Namespace,
}

impl Core {
    /// Mint a service token: its expiry lease (when it expires), then its
    /// entry. Returns the token (shown once, never stored) and its entry.
    pub async fn issue_token(&self, spec: TokenSpec) -> Result<(String, TokenEntry)> {
        let now = Utc::now();
        let expire_time = match spec.ttl {
            0 => None,
            s => Some(ttl::expiry(now, s)?),
        };
        let ns_id = match spec.namespace.is_root() {
            true => String::new(),
            false => spec.namespace.id.clone(),
        };
        if spec.batch {
            let entry = TokenEntry {
                hash: String::new(),
                accessor: String::new(),
                parent: spec.parent,
                policies: spec.policies,
                path: spec.path,
                meta: spec.meta,
                display_name: spec.display_name,
                num_uses: 0,
                creation_time: now,
                creation_ttl: spec.ttl,
                explicit_max_ttl: 0,
                period: 0,
                renewable: false,
                expire_time,
                bound_cidrs: spec.bound_cidrs,
                role: spec.role,
                batch: true,
                namespace_id: ns_id.clone(),
                namespace_path: spec.namespace.path.clone(),
            };
            return Ok((self.seal_batch(&entry)?, entry));
        }
        // As Vault: a token (and its accessor) made in a namespace other
        // than the root ends in ".<namespace id>".
        let suffix = match spec.namespace.is_root() {
            true => String::new(),
            false => format!(".{}", spec.namespace.id),
        };
        let token = format!("{}{suffix}", store::random_id("hvs."));
        let entry = TokenEntry {
            hash: self.tokens.salted(&token),
            accessor: format!("{}{suffix}", store::random_id("")),
            parent: spec.parent,
            policies: spec.policies,
            path: spec.path,
            meta: spec.meta,
            display_name: spec.display_name,
            num_uses: spec.num_uses,
            creation_time: now,
            creation_ttl: spec.ttl,
            explicit_max_ttl: spec.explicit_max_ttl,
            period: spec.period,
            renewable: spec.renewable && spec.ttl > 0,
            expire_time,
            bound_cidrs: spec.bound_cidrs,
            role: spec.role,
            batch: false,
            namespace_id: ns_id,
            namespace_path: spec.namespace.path.clone(),
        };
        // The expiry lease first: a crash before the token is stored leaves
        // a lease whose revocation finds nothing, never a token without
        // expiry.
        if let Some(expires) = expire_time {
            self.expiration.save(&token_lease(&entry, expires)).await?;
        }
        self.tokens.create(&entry).await?;
        Ok((token, entry))
    }
}

/// The expiration manager's lease of a token's expiry.
fn token_lease(entry: &TokenEntry, expires: chrono::DateTime<Utc>) -> super::expiration::LeaseEntry {
    super::expiration::LeaseEntry {
        lease_id: entry.lease_id(),
        path: entry.path.clone(),
        mount_path: store::LEASE_MOUNT.to_string(),
        internal: json!({ "token_hash": entry.hash }),
        issue_time: entry.creation_time,
        expire_time: expires,
        last_renewal: None,
        // Renewed through auth/token/renew, not sys/leases/renew.
        renewable: false,
        revoke: Default::default(),
        token: String::new(),
        end_by: None,
    }
}

/// Vault's `auth` block of a response that issues or renews a token.
pub fn auth_block(entry: &TokenEntry, token: &str, now: chrono::DateTime<Utc>) -> Value {
    json!({
        "client_token": token,
        "accessor": entry.accessor,
        "policies": entry.policies,
        "token_policies": entry.policies,
        "metadata": if entry.meta.is_empty() { Value::Null } else { Value::Object(entry.meta.clone()) },
        "lease_duration": entry.ttl(now),
        "renewable": entry.renewable,
        "entity_id": "",
        "token_type": token_type(entry),
        "orphan": entry.is_orphan(),
        "mfa_requirement": null,
        "num_uses": entry.num_uses.max(0),
    })
}

fn token_type(entry: &TokenEntry) -> &'static str {
    if entry.batch { "batch" } else { "service" }
}

/// Vault's lookup data of a token (`id` empty when looked up by accessor).
fn lookup_data(entry: &TokenEntry, id: &str) -> Value {
    let now = Utc::now();
    let rfc3339 = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut data = json!({
        "accessor": entry.accessor,
        "creation_time": entry.creation_time.timestamp(),
        "creation_ttl": entry.creation_ttl,
        "display_name": entry.display_name,
        "entity_id": "",
        "expire_time": entry.expire_time.map(rfc3339),
        "explicit_max_ttl": entry.explicit_max_ttl,
        "id": id,
        "issue_time": rfc3339(entry.creation_time),
        "meta": if entry.meta.is_empty() { Value::Null } else { Value::Object(entry.meta.clone()) },
        "num_uses": entry.num_uses.max(0),
        "orphan": entry.is_orphan(),
        "path": entry.path,
        "policies": entry.policies,
        "renewable": entry.renewable,
        "ttl": entry.ttl(now),
        "type": token_type(entry),
    });
    if entry.period > 0 {
        data["period"] = json!(entry.period);
    }
    if !entry.role.is_empty() {
        data["role"] = json!(entry.role);
    }
    if !entry.namespace_path.is_empty() {
        data["namespace_path"] = json!(entry.namespace_path);
    }
    data
}

/// Can a request in `ns` see this token? Only if the token was made in
/// `ns` or inside it: a namespace sees nothing of its parent's tokens.
fn visible(ns: &Namespace, entry: &TokenEntry) -> bool {
    entry.namespace_path.starts_with(&ns.path)
}

/// The root token's lookup data.
fn root_lookup(core: &Core, token: &str) -> Value {
    json!({
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
    })
}

/// The live entry of any token other than the initial root token: a
/// batch token's from the token itself, a service token's from the store.
/// Only a token visible from `ns` counts.
async fn entry_of(core: &Core, ns: &Namespace, token: &str) -> Result<Option<TokenEntry>> {
    let entry = match batch::is_batch(token) {
        true => core.live_batch(token).await?,
        false => core.tokens.lookup(token).await?.filter(|e| e.is_live(Utc::now())),
    };
    Ok(entry.filter(|e| visible(ns, e)))
}

async fn lookup_self(core: &Core, r: &Req<'_>) -> Reply {
    let token = &r.auth.client_token;
    if core.is_initial_root(token) {
        return Ok(Some(Response::data(root_lookup(core, token))));
    }
    // The caller's own token: visible wherever it asks from.
    let entry = entry_of(core, &Namespace::root(), token)
        .await?
        .ok_or(Error::PermissionDenied)?;
    Ok(Some(Response::data(lookup_data(&entry, token))))
}

async fn lookup_other(core: &Core, r: &Req<'_>) -> Reply {
    let token = r.fields.str("token");
    if token.is_empty() {
        return Err(Error::bad("missing token to lookup"));
    }
    if r.namespace.is_root() && core.is_initial_root(&token) {
        return Ok(Some(Response::data(root_lookup(core, &token))));
    }
    // OpenBao answers an unknown token here with a 403.
    let entry = entry_of(core, r.namespace, &token)
        .await?
        .ok_or_else(|| Error::Http(403, "bad token".into()))?;
    Ok(Some(Response::data(lookup_data(&entry, &token))))
}

async fn lookup_accessor(core: &Core, r: &Req<'_>) -> Reply {
    let entry = by_accessor(core, r.namespace, &r.fields.str("accessor")).await?;
    Ok(Some(Response::data(lookup_data(&entry, ""))))
}

async fn by_accessor(core: &Core, ns: &Namespace, accessor: &str) -> Result<TokenEntry> {
    // OpenBao's words, multierror and all.
    if accessor.is_empty() {
        return Err(Error::bad_multi("missing accessor"));
    }
    core.tokens
        .by_accessor(accessor)
        .await?
        .filter(|e| e.is_live(Utc::now()) && visible(ns, e))
        .ok_or_else(|| Error::bad_multi("invalid accessor"))
}

/// What a request names: the initial root token (kept apart from the
/// store) or a live stored service token. A batch token is refused with
/// Vault's words for what it cannot do (`what`: "renewed", "revoked").
enum Named {
    InitialRoot,
    Stored(Box<TokenEntry>),
}

/// What a request names, None when it is not there (unknown, expired,
/// revoked, used up).
async fn find(core: &Core, ns: &Namespace, token: &str, what: &str) -> Result<Option<Named>> {
    if token.is_empty() {
        return Err(Error::bad("missing token ID"));
    }
    if ns.is_root() && core.is_initial_root(token) {
        return Ok(Some(Named::InitialRoot));
    }
    match entry_of(core, ns, token).await? {
        Some(e) if e.batch => Err(Error::bad(format!("batch tokens cannot be {what}"))),
        Some(e) => Ok(Some(Named::Stored(Box::new(e)))),
        None => Ok(None),
    }
}

/// What a request names, which must be there.
async fn named(core: &Core, ns: &Namespace, token: &str, what: &str) -> Result<Named> {
    find(core, ns, token, what)
        .await?
        .ok_or_else(|| Error::bad("token not found"))
}

/// A token to renew: the root token has no TTL, so nothing to renew.
async fn renewable(core: &Core, ns: &Namespace, token: &str) -> Result<TokenEntry> {
    match named(core, ns, token, "renewed").await? {
        Named::InitialRoot => Err(Error::bad("lease is not renewable")),
        Named::Stored(entry) => Ok(*entry),
    }
}

async fn renew_self(core: &Core, r: &Req<'_>) -> Reply {
    let entry = renewable(core, &Namespace::root(), &r.auth.client_token).await?;
    renew(core, entry, &r.auth.client_token, r.fields.duration("increment")).await
}

async fn renew_other(core: &Core, r: &Req<'_>) -> Reply {
    let token = r.fields.str("token");
    let entry = renewable(core, r.namespace, &token).await?;
    renew(core, entry, &token, r.fields.duration("increment")).await
}

async fn renew_accessor(core: &Core, r: &Req<'_>) -> Reply {
    let entry = by_accessor(core, r.namespace, &r.fields.str("accessor")).await?;
    renew(core, entry, "", r.fields.duration("increment")).await
}

/// Extend a token's TTL: by the increment (else its creation TTL, or its
/// period for a periodic token), within explicit_max_ttl and the system
/// max counted from its creation.
async fn renew(core: &Core, mut entry: TokenEntry, token: &str, increment: i64) -> Reply {
    if !entry.renewable || entry.expire_time.is_none() {
        return Err(Error::bad("lease is not renewable"));
    }
    if increment < 0 {
        return Err(Error::bad("increment cannot be negative"));
    }
    // A role's explicit max TTL and period apply as they are now.
    let (explicit_max_ttl, period) = match entry.role.as_str() {
        "" => (entry.explicit_max_ttl, entry.period),
        name => {
            let role = roles::get(core, &entry.namespace(), name)
                .await?
                .ok_or_else(|| Error::bad(format!("original token role ({name}) could not be found, not renewing")))?;
            (
                lesser(entry.explicit_max_ttl, role.effective_explicit_max_ttl()).0,
                lesser(entry.period, role.effective_period()).0,
            )
        }
    };
    let now = Utc::now();
    let max = match explicit_max_ttl {
        0 => ttl::system_max_ttl(),
        m => m.min(ttl::system_max_ttl()),
    };
    let granted = if period > 0 {
        // A periodic token gets its period again, whatever the increment,
        // within explicit_max_ttl only.
        let cap = match explicit_max_ttl {
            0 => period,
            m => ttl::add_secs(entry.creation_time, m).map_or(m, |end| (end - now).num_seconds().clamp(0, period)),
        };
        ttl::Granted {
            ttl: cap,
            warning: None,
        }
    } else {
        let requested = if increment > 0 { increment } else { entry.creation_ttl };
        ttl::calculate(requested, 0, max, 0, max, Some(entry.creation_time), now)
    };
    let expires = ttl::expiry(now, granted.ttl)?;
    entry.expire_time = Some(expires);
    let mut lease = token_lease(&entry, expires);
    lease.last_renewal = Some(now);
    core.expiration.save(&lease).await?;
    core.tokens.update(&entry).await?;
    let mut auth = auth_block(&entry, token, now);
    if token.is_empty()
        && let Some(a) = auth.as_object_mut()
    {
        a.insert("client_token".into(), json!(""));
    }
    let mut resp = Response {
        auth: Some(auth),
        ..Response::default()
    };
    resp.warnings.extend(granted.warning);
    Ok(Some(resp))
}

/// Revoke what a request names, with its children and leases.
async fn revoke_named(core: &Core, named: Named) -> Result<()> {
    match named {
        Named::InitialRoot => core.revoke_initial_root().await,
        Named::Stored(entry) => core.revoke_token(&entry.hash).await,
    }
}

async fn revoke_self(core: &Core, r: &Req<'_>) -> Reply {
    let own = named(core, &Namespace::root(), &r.auth.client_token, "revoked").await?;
    revoke_named(core, own).await?;
    Ok(None)
}

/// Revoking a token that is not there (unknown, expired, revoked) is
/// done already: 204, as Vault and OpenBao answer.
async fn revoke_other(core: &Core, r: &Req<'_>) -> Reply {
    if let Some(named) = find(core, r.namespace, &r.fields.str("token"), "revoked").await? {
        revoke_named(core, named).await?;
    }
    Ok(None)
}

async fn revoke_accessor(core: &Core, r: &Req<'_>) -> Reply {
    let entry = by_accessor(core, r.namespace, &r.fields.str("accessor")).await?;
    core.revoke_token(&entry.hash).await?;
    Ok(None)
}

async fn revoke_orphan(core: &Core, r: &Req<'_>) -> Reply {
    match named(core, r.namespace, &r.fields.str("token"), "revoked").await? {
        Named::InitialRoot => {
            core.tokens.orphan_children(ROOT_PARENT).await?;
            core.revoke_initial_root().await?;
        }
        Named::Stored(entry) => core.revoke_token_orphaning(&entry.hash).await?,
    }
    Ok(None)
}

impl Core {
    /// A new root token (`sys/generate-root`): an orphan with the root
    /// policy and no expiry, kept in the token store as any other token,
    /// so revoking it is an ordinary revoke.
    pub async fn issue_root_token(&self) -> Result<String> {
        let (token, _) = self
            .issue_token(TokenSpec {
                policies: vec![super::policy_store::ROOT.to_string()],
                path: "auth/token/root".into(),
                display_name: "root".into(),
                ..TokenSpec::default()
            })
            .await?;
        tracing::warn!("a new root token was generated");
        Ok(token)
    }
}

/// How the initial root token's children (and the leases it obtained)
/// name it: it is not in the token store.
pub const ROOT_PARENT: &str = "root";

/// Where the root token's hash is kept (a local key: tokens are per cluster).
pub const ROOT_TOKEN_KEY: &str = crate::storage::layout::ROOT_TOKEN;

/// A new random token in Vault's service-token shape.
pub fn generate() -> String {
    store::random_id("hvs.")
}

/// SHA-256 of a token: what is stored and compared, never the token.
pub fn hash(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RootTokenEntry {
    sha256: String,
}

/// Store the root token's hash (at init).
pub async fn store_root(storage: &dyn crate::storage::Backend, token: &str) -> Result<()> {
    let entry = RootTokenEntry {
        sha256: hex::encode(hash(token)),
    };
    let bytes = serde_json::to_vec(&entry).map_err(|e| Error::internal(e.to_string()))?;
    storage.put(ROOT_TOKEN_KEY, &bytes).await?;
    Ok(())
}

/// The stored root token hash (at unseal); None once it was revoked.
pub async fn load_root_hash(storage: &crate::storage::Storage) -> anyhow::Result<Option<[u8; 32]>> {
    let Some(bytes) = storage.get(ROOT_TOKEN_KEY).await? else {
        return Ok(None);
    };
    let entry: RootTokenEntry = serde_json::from_slice(&bytes)?;
    let raw = hex::decode(&entry.sha256)?;
    raw.as_slice()
        .try_into()
        .map(Some)
        .map_err(|_| anyhow::anyhow!("{ROOT_TOKEN_KEY} is corrupt"))
}
