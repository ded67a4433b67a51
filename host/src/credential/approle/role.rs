//! AppRole roles (`role/<name>`, `role/<name>/role-id`): what a login
//! through the role grants, and the index from a role's `role_id` back to
//! it. A role and its index are written in one atomic batch, after every
//! check, so refused input leaves nothing behind.

use super::{AppRole, MAX_HMAC_INPUT, secret_id};
use crate::credential::cidr;
use crate::error::{Error, Result};
use crate::framework::{Field, FieldType, Path, Req, ttl};
use crate::logical::{Mount, Operation, Reply, Response};
use crate::storage::layout::approle as keys;
use crate::storage::{View, Write};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A stored role (Vault's `roleStorageEntry` with `tokenutil.TokenParams`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Role {
    pub role_id: String,
    /// The key of this role's secret-ID HMACs.
    pub hmac_key: String,
    pub bind_secret_id: bool,
    #[serde(default)]
    pub secret_id_bound_cidrs: Vec<String>,
    #[serde(default)]
    pub secret_id_num_uses: i64,
    #[serde(default)]
    pub secret_id_ttl: i64,
    #[serde(default)]
    pub local_secret_ids: bool,
    #[serde(default)]
    pub token_policies: Vec<String>,
    /// The deprecated `policies`, kept as given (Vault shows both).
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub token_ttl: i64,
    #[serde(default)]
    pub token_max_ttl: i64,
    #[serde(default)]
    pub token_explicit_max_ttl: i64,
    #[serde(default)]
    pub token_period: i64,
    /// The deprecated `period`.
    #[serde(default)]
    pub period: i64,
    #[serde(default)]
    pub token_num_uses: i64,
    #[serde(default)]
    pub token_no_default_policy: bool,
    #[serde(default)]
    pub token_bound_cidrs: Vec<String>,
    /// "default" or "service" (batch tokens are not built yet).
    #[serde(default = "default_token_type")]
    pub token_type: String,
}

fn default_token_type() -> String {
    "default".into()
}

impl Role {
    fn new() -> Role {
        Role {
            role_id: String::new(),
            hmac_key: hex::encode(rand::random::<[u8; 32]>()),
            bind_secret_id: true,
            secret_id_bound_cidrs: Vec::new(),
            secret_id_num_uses: 0,
            secret_id_ttl: 0,
            local_secret_ids: false,
            token_policies: Vec::new(),
            policies: Vec::new(),
            token_ttl: 0,
            token_max_ttl: 0,
            token_explicit_max_ttl: 0,
            token_period: 0,
            period: 0,
            token_num_uses: 0,
            token_no_default_policy: false,
            token_bound_cidrs: Vec::new(),
            token_type: default_token_type(),
        }
    }

    /// Vault's `validateRoleConstraints`.
    pub(super) fn has_constraint(&self) -> bool {
        self.bind_secret_id || !self.secret_id_bound_cidrs.is_empty() || !self.token_bound_cidrs.is_empty()
    }
}

/// Roles are named case-insensitively: stored (and listed) lower-cased,
/// as Vault's roles created since `lower_case_role_name`.
pub fn role_key(name: &str) -> String {
    format!("{}{}", keys::ROLE, name.to_lowercase())
}

pub async fn load(view: &View, name: &str) -> Result<Option<Role>> {
    if name.is_empty() {
        return Ok(None);
    }
    Ok(view.get_json(&role_key(name)).await?)
}

/// The role a request names, or Vault's error for one that is missing.
pub async fn named(r: &Req<'_>) -> Result<(String, Role)> {
    let name = r.fields.str("role_name").to_lowercase();
    if name.is_empty() {
        return Err(Error::bad("missing role_name"));
    }
    match load(&r.mount()?.storage, &name).await? {
        Some(role) => Ok((name, role)),
        None => Err(Error::bad(format!("role {name:?} does not exist"))),
    }
}

#[derive(Serialize, Deserialize)]
pub struct RoleIdEntry {
    pub name: String,
}

pub async fn exists(_: &AppRole, r: &Req<'_>) -> Result<bool> {
    Ok(load(&r.mount()?.storage, &r.fields.str("role_name")).await?.is_some())
}

/// The role's fields (Vault's role path with `tokenutil.AddTokenFields`).
pub fn fields(p: Path<AppRole>) -> Path<AppRole> {
    p.field(super::role_name_field())
        .field(Field::new("bind_secret_id", FieldType::Bool, "Impose secret_id to be presented when logging in using this role. Defaults to 'true'.").default(true))
        .field(Field::new("bound_cidr_list", FieldType::CommaList, "Use \"secret_id_bound_cidrs\" instead."))
        .field(Field::new("secret_id_bound_cidrs", FieldType::CommaList, "Comma separated string or list of CIDR blocks. If set, specifies the blocks of IP addresses which can perform the login operation."))
        .field(Field::new("policies", FieldType::CommaList, "Use \"token_policies\" instead. If this and \"token_policies\" are both specified, only \"token_policies\" will be used."))
        .field(Field::new("secret_id_num_uses", FieldType::Int, "Number of times a SecretID can access the role, after which the SecretID will expire. Defaults to 0 meaning that the the secret_id is of unlimited use."))
        .field(Field::new("secret_id_ttl", FieldType::Duration, "Duration in seconds after which the issued SecretID should expire. Defaults to 0, meaning no expiration."))
        .field(Field::new("period", FieldType::Duration, "Use \"token_period\" instead. If this and \"token_period\" are both specified, only \"token_period\" will be used."))
        .field(Field::new("role_id", FieldType::Str, "Identifier of the role. Defaults to a UUID."))
        .field(Field::new("local_secret_ids", FieldType::Bool, "If set, the secret IDs generated using this role will be cluster local. This can only be set during role creation and once set, it can't be reset later."))
        .field(Field::new("token_bound_cidrs", FieldType::CommaList, "Comma separated string or JSON list of CIDR blocks. If set, specifies the blocks of IP addresses which are allowed to use the generated token."))
        .field(Field::new("token_explicit_max_ttl", FieldType::Duration, "If set, tokens created via this role carry an explicit maximum TTL. During renewal, the current maximum TTL values of the role and the mount are not checked for changes, and any updates to these values will have no effect on the token being renewed."))
        .field(Field::new("token_max_ttl", FieldType::Duration, "The maximum lifetime of the generated token"))
        .field(Field::new("token_no_default_policy", FieldType::Bool, "If true, the 'default' policy will not automatically be added to generated tokens"))
        .field(Field::new("token_period", FieldType::Duration, "If set, tokens created via this role will have no max lifetime; instead, their renewal period will be fixed to this value. This takes an integer number of seconds, or a string duration (e.g. \"24h\")."))
        .field(Field::new("token_policies", FieldType::CommaList, "Comma-separated list of policies"))
        .field(Field::new("token_type", FieldType::Str, "The type of token to generate, service or batch").default("default-service"))
        .field(Field::new("token_ttl", FieldType::Duration, "The initial ttl of the token to generate"))
        .field(Field::new("token_num_uses", FieldType::Int, "The maximum number of times a token may be used, a value of zero means unlimited"))
}

pub async fn list(_: &AppRole, r: &Req<'_>) -> Reply {
    let names = r.mount()?.storage.list(keys::ROLE).await?;
    if names.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Some(Response::list(names)))
}

pub async fn read(_: &AppRole, r: &Req<'_>) -> Reply {
    let Some(role) = load(&r.mount()?.storage, &r.fields.str("role_name")).await? else {
        return Ok(None);
    };
    Ok(Some(Response::data(data(&role))))
}

/// What a read of the role shows.
pub fn data(role: &Role) -> Value {
    let mut data = json!({
        "bind_secret_id": role.bind_secret_id,
        "secret_id_bound_cidrs": if role.secret_id_bound_cidrs.is_empty() { Value::Null } else { json!(role.secret_id_bound_cidrs) },
        "secret_id_num_uses": role.secret_id_num_uses,
        "secret_id_ttl": role.secret_id_ttl,
        "local_secret_ids": role.local_secret_ids,
        "token_bound_cidrs": role.token_bound_cidrs,
        "token_explicit_max_ttl": role.token_explicit_max_ttl,
        "token_max_ttl": role.token_max_ttl,
        "token_no_default_policy": role.token_no_default_policy,
        "token_period": role.token_period,
        "token_policies": role.token_policies,
        "token_type": role.token_type,
        "token_ttl": role.token_ttl,
        "token_num_uses": role.token_num_uses,
    });
    if role.period != 0 {
        data["period"] = json!(role.period);
    }
    if !role.policies.is_empty() {
        data["policies"] = json!(role.policies);
    }
    data
}

/// Policies as Vault's `policyutil.ParsePolicies` keeps the deprecated
/// field: trimmed, lower-cased, sorted, without duplicates or empties.
fn parse_policies(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = list
        .into_iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Go's `time.Duration.String()` of whole seconds ("24h0m0s", "1m30s").
fn go_duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

fn mount_max(mount: &Mount) -> i64 {
    if mount.max_lease_ttl > 0 {
        mount.max_lease_ttl
    } else {
        ttl::system_max_ttl()
    }
}

/// Vault's `pathRoleCreateUpdate`: every check first, then one batch.
pub async fn write(b: &AppRole, r: &Req<'_>) -> Reply {
    let f = &r.fields;
    let mount = r.mount()?;
    let view = &mount.storage;
    let name = f.str("role_name").to_lowercase();
    if name.is_empty() {
        return Err(Error::bad("missing role_name"));
    }
    if name.len() > MAX_HMAC_INPUT {
        return Err(Error::bad(format!(
            "role_name is longer than maximum of {MAX_HMAC_INPUT} bytes"
        )));
    }
    let _roles = b.roles.lock().await;
    let existing = load(view, &name).await?;
    let create = existing.is_none();
    if create && r.operation != Operation::Create {
        return Err(Error::bad(format!("role name {name:?} doesn't exist")));
    }
    let mut role = existing.clone().unwrap_or_else(Role::new);
    let mut warnings = Vec::new();

    // tokenutil.ParseTokenFields, in its order.
    if let Some(cidrs) = f.opt_list("token_bound_cidrs") {
        cidr::parse_all(&cidrs, true).map_err(Error::bad)?;
        role.token_bound_cidrs = cidrs;
    }
    if let Some(v) = f.opt_duration("token_explicit_max_ttl") {
        role.token_explicit_max_ttl = v;
    }
    if let Some(v) = f.opt_duration("token_max_ttl") {
        role.token_max_ttl = v;
    }
    if role.token_max_ttl < 0 {
        return Err(Error::bad("'token_max_ttl' cannot be negative"));
    }
    if let Some(v) = f.opt_bool("token_no_default_policy") {
        role.token_no_default_policy = v;
    }
    if let Some(v) = f.opt_duration("token_period") {
        role.token_period = v;
    }
    if role.token_period < 0 {
        return Err(Error::bad("'token_period' cannot be negative"));
    }
    if let Some(p) = f.opt_list("token_policies") {
        role.token_policies = p;
    }
    if let Some(kind) = f.opt_str("token_type") {
        role.token_type = match kind.as_str() {
            "" | "default" => "default".into(),
            "service" => "service".into(),
            "default-service" => {
                warnings.push("default-service has no useful meaning; adjusting to service".to_string());
                "service".into()
            }
            "batch" => "batch".into(),
            "default-batch" => {
                warnings.push("default-batch has no useful meaning; adjusting to batch".to_string());
                "batch".into()
            }
            other => return Err(Error::bad(format!("invalid 'token_type' value {other:?}"))),
        };
    }
    if let Some(v) = f.opt_duration("token_ttl") {
        role.token_ttl = v;
    }
    if role.token_ttl < 0 {
        return Err(Error::bad("'token_ttl' cannot be negative"));
    }
    if role.token_ttl > 0 && role.token_max_ttl > 0 && role.token_ttl > role.token_max_ttl {
        return Err(Error::bad("'token_ttl' cannot be greater than 'token_max_ttl'"));
    }
    if let Some(v) = f.opt_int("token_num_uses") {
        role.token_num_uses = v;
    }
    if role.token_num_uses < 0 {
        return Err(Error::bad("'token_num_uses' cannot be negative"));
    }
    if role.token_explicit_max_ttl < 0 {
        return Err(Error::bad("'token_explicit_max_ttl' cannot be negative"));
    }
    // tokenutil's rules: a batch token is neither periodic nor use-limited.
    if role.token_type == "batch" {
        if role.token_period != 0 || f.opt_duration("period").is_some_and(|p| p != 0) {
            return Err(Error::bad(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens",
            ));
        }
        if role.token_num_uses != 0 {
            return Err(Error::bad(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
            ));
        }
    }

    if let Some(local) = f.opt_bool("local_secret_ids") {
        if !create {
            return Err(Error::bad("local_secret_ids can only be modified during role creation"));
        }
        role.local_secret_ids = local;
    }
    let previous_role_id = existing.as_ref().map(|e| e.role_id.clone());
    if let Some(id) = f.opt_str("role_id") {
        role.role_id = id;
    } else if create {
        role.role_id = uuid::Uuid::new_v4().to_string();
    }
    if role.role_id.is_empty() {
        return Err(Error::bad("invalid role_id supplied, or failed to generate a role_id"));
    }
    if let Some(bind) = f.opt_bool("bind_secret_id") {
        role.bind_secret_id = bind;
    }
    if let Some(cidrs) = f
        .opt_list("secret_id_bound_cidrs")
        .or_else(|| f.opt_list("bound_cidr_list"))
    {
        role.secret_id_bound_cidrs = cidrs;
    }
    if let Err(e) = cidr::parse_all(&role.secret_id_bound_cidrs, false) {
        return Err(Error::bad(format!("failed to validate CIDR blocks: {e}")));
    }
    if let Some(n) = f.opt_int("secret_id_num_uses") {
        role.secret_id_num_uses = n;
    }
    if role.secret_id_num_uses < 0 {
        return Err(Error::bad("secret_id_num_uses cannot be negative"));
    }
    if let Some(t) = f.opt_duration("secret_id_ttl") {
        role.secret_id_ttl = t;
    }
    // tokenutil.UpgradeValue: the new field wins; the old one mirrors it
    // when both are given, and is cleared when only the new one is.
    match (f.opt_list("token_policies"), f.opt_list("policies")) {
        (None, Some(old)) => {
            role.policies = parse_policies(old);
            role.token_policies = role.policies.clone();
        }
        (Some(_), Some(_)) => role.policies = role.token_policies.clone(),
        (Some(_), None) => role.policies.clear(),
        (None, None) => {}
    }
    match (f.opt_duration("token_period"), f.opt_duration("period")) {
        (None, Some(old)) => {
            role.period = old;
            role.token_period = old;
        }
        (Some(_), Some(_)) => role.period = role.token_period,
        (Some(_), None) => role.period = 0,
        (None, None) => {}
    }
    let max = mount_max(mount);
    if role.period > max {
        return Err(Error::bad(format!(
            "period of {:?} is greater than the backend's maximum lease TTL of {:?}",
            go_duration(role.period),
            go_duration(max)
        )));
    }
    if role.period < 0 {
        return Err(Error::bad("'period' cannot be negative"));
    }
    if role.token_max_ttl > max {
        warnings.push("token_max_ttl is greater than the backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".to_string());
    }
    if !role.has_constraint() {
        return Err(Error::bad("at least one constraint should be enabled on the role"));
    }
    save(b, view, &name, &role, previous_role_id.as_deref()).await?;
    if warnings.is_empty() {
        return Ok(None);
    }
    Ok(Some(Response {
        warnings,
        ..Response::default()
    }))
}

/// Store a role and its role-id index (and drop the old index when the
/// role-id changed) in one batch, refusing a role-id another role has.
/// The caller holds the roles lock.
pub(super) async fn save(
    b: &AppRole,
    view: &View,
    name: &str,
    role: &Role,
    previous_role_id: Option<&str>,
) -> Result<()> {
    if role.role_id.len() > MAX_HMAC_INPUT {
        return Err(Error::bad(format!(
            "role_id is longer than maximum of {MAX_HMAC_INPUT} bytes"
        )));
    }
    let index = format!("{}{}", keys::ROLE_ID, b.salted(view, &role.role_id).await?);
    if let Some(owner) = view.get_json::<RoleIdEntry>(&index).await?
        && owner.name != name
    {
        return Err(Error::bad("role_id already in use"));
    }
    let mut writes = vec![
        Write::Put(role_key(name), to_json(role)?),
        Write::Put(index, to_json(&RoleIdEntry { name: name.to_string() })?),
    ];
    if let Some(old) = previous_role_id
        && old != role.role_id
    {
        writes.push(Write::Delete(format!(
            "{}{}",
            keys::ROLE_ID,
            b.salted(view, old).await?
        )));
    }
    view.batch(writes).await?;
    Ok(())
}

pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::internal(format!("encoding an AppRole entry: {e}")))
}

/// Delete the role, every secret ID issued against it, and its role-id
/// index (the role last, so a failure half way can be retried).
pub async fn delete(b: &AppRole, r: &Req<'_>) -> Reply {
    let view = &r.mount()?.storage;
    let name = r.fields.str("role_name").to_lowercase();
    let _roles = b.roles.lock().await;
    let Some(role) = load(view, &name).await? else {
        return Ok(None);
    };
    secret_id::flush(b, view, &name, &role).await?;
    let index = format!("{}{}", keys::ROLE_ID, b.salted(view, &role.role_id).await?);
    view.batch(vec![Write::Delete(index), Write::Delete(role_key(&name))])
        .await?;
    Ok(None)
}

pub async fn read_role_id(_: &AppRole, r: &Req<'_>) -> Reply {
    let Some(role) = load(&r.mount()?.storage, &r.fields.str("role_name")).await? else {
        return Ok(None);
    };
    Ok(Some(Response::data(json!({ "role_id": role.role_id }))))
}

pub async fn write_role_id(b: &AppRole, r: &Req<'_>) -> Reply {
    let view = &r.mount()?.storage;
    let name = r.fields.str("role_name").to_lowercase();
    let _roles = b.roles.lock().await;
    let Some(mut role) = load(view, &name).await? else {
        return Err(Error::UnsupportedPath);
    };
    let id = r.fields.str("role_id").trim().to_string();
    if id.is_empty() {
        return Err(Error::bad("missing role_id"));
    }
    let previous = std::mem::replace(&mut role.role_id, id);
    save(b, view, &name, &role, Some(&previous)).await?;
    Ok(None)
}

/// The role a `role_id` names (a login's first step).
pub async fn by_role_id(b: &AppRole, view: &View, role_id: &str) -> Result<Option<(String, Role)>> {
    if role_id.is_empty() || role_id.len() > MAX_HMAC_INPUT {
        return Ok(None);
    }
    let index = format!("{}{}", keys::ROLE_ID, b.salted(view, role_id).await?);
    let Some(entry) = view.get_json::<RoleIdEntry>(&index).await? else {
        return Ok(None);
    };
    // An index whose role changed its role-id since (a race with an
    // update) names a role that no longer has it.
    Ok(load(view, &entry.name)
        .await?
        .filter(|role| role.role_id == role_id)
        .map(|role| (entry.name, role)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(30), "30s");
        assert_eq!(go_duration(90), "1m30s");
        assert_eq!(go_duration(86400), "24h0m0s");
        assert_eq!(go_duration(3661), "1h1m1s");
    }

    #[test]
    fn legacy_policies_are_parsed_as_vaults() {
        assert_eq!(
            parse_policies(vec![" B".into(), "a".into(), String::new(), "b".into()]),
            vec!["a", "b"]
        );
    }
}
