//! AppRole secret IDs: issued against a role (`role/<name>/secret-id`,
//! `custom-secret-id`), looked up and destroyed by value or accessor, and
//! spent by logins. Storage holds only HMACs of a secret ID (under its
//! role's key) and of its accessor (under the mount's salt), never either
//! value. Spending a use is a read-modify-write serialised by the mount's
//! secret-ID lock, so no two logins can both spend the last use; an
//! expired secret ID is deleted when next touched and refused like an
//! unknown one.

use super::role::{self, Role, to_json};
use super::{AppRole, MAX_HMAC_INPUT, hmac_hex};
use crate::credential::cidr;
use crate::error::{Error, Result};
use crate::framework::{Req, ttl};
use crate::logical::{Mount, Reply, Response};
use crate::storage::layout::approle as keys;
use crate::storage::{View, Write};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A secret ID's properties (Vault's `secretIDStorageEntry`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecretIdEntry {
    pub secret_id_accessor: String,
    /// Uses left; 0: unlimited.
    pub secret_id_num_uses: i64,
    pub secret_id_ttl: i64,
    pub creation_time: DateTime<Utc>,
    /// None: it never expires.
    pub expiration_time: Option<DateTime<Utc>>,
    pub last_updated_time: DateTime<Utc>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub cidr_list: Vec<String>,
    #[serde(default)]
    pub token_bound_cidrs: Vec<String>,
}

impl SecretIdEntry {
    pub(super) fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration_time.is_some_and(|t| t <= now)
    }

    fn data(&self) -> Value {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Nanos, true);
        json!({
            "secret_id_accessor": self.secret_id_accessor,
            "secret_id_num_uses": self.secret_id_num_uses,
            "secret_id_ttl": self.secret_id_ttl,
            "creation_time": time(self.creation_time),
            // Go's zero time, as Vault shows a secret ID without expiry.
            "expiration_time": self.expiration_time.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), time),
            "last_updated_time": time(self.last_updated_time),
            "metadata": self.metadata,
            "cidr_list": self.cidr_list,
            "token_bound_cidrs": self.token_bound_cidrs,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct AccessorEntry {
    pub(super) secret_id_hmac: String,
}

/// Where a role's secret IDs and their accessors live.
struct Keys {
    /// `secret_id/<HMAC of role name>/` (or the local prefix).
    dir: String,
    accessor_prefix: &'static str,
}

fn keys_of(name: &str, role: &Role) -> Keys {
    let (prefix, accessor_prefix) = match role.local_secret_ids {
        true => (keys::SECRET_ID_LOCAL, keys::ACCESSOR_LOCAL),
        false => (keys::SECRET_ID, keys::ACCESSOR),
    };
    Keys {
        dir: format!("{prefix}{}/", hmac_hex(role.hmac_key.as_bytes(), name)),
        accessor_prefix,
    }
}

/// The HMAC of a secret ID under its role's key (Vault refuses to HMAC
/// more than 4096 bytes).
fn secret_hmac(role: &Role, secret_id: &str) -> Result<String> {
    if secret_id.len() > MAX_HMAC_INPUT {
        return Err(Error::bad(format!(
            "failed to create HMAC of secret_id: value is longer than maximum of {MAX_HMAC_INPUT} bytes"
        )));
    }
    Ok(hmac_hex(role.hmac_key.as_bytes(), secret_id))
}

async fn accessor_key(b: &AppRole, view: &View, k: &Keys, accessor: &str) -> Result<String> {
    Ok(format!("{}{}", k.accessor_prefix, b.salted(view, accessor).await?))
}

/// The secret ID's TTL as granted (Vault's `deriveSecretIDTTL`): a
/// negative one or one past the mount's max gets the mount's max.
fn derive_ttl(mount: &Mount, requested: i64) -> i64 {
    let max = if mount.max_lease_ttl > 0 {
        mount.max_lease_ttl
    } else {
        ttl::system_max_ttl()
    };
    if requested < 0 || requested > max {
        max
    } else {
        requested
    }
}

pub async fn generate(b: &AppRole, r: &Req<'_>) -> Reply {
    issue(b, r, uuid::Uuid::new_v4().to_string()).await
}

pub async fn custom(b: &AppRole, r: &Req<'_>) -> Reply {
    issue(b, r, r.fields.str("secret_id")).await
}

/// Vault's `handleRoleSecretIDCommon`: check everything, then store the
/// accessor index and the entry in one batch.
async fn issue(b: &AppRole, r: &Req<'_>, secret_id: String) -> Reply {
    let f = &r.fields;
    let mount = r.mount()?;
    let view = &mount.storage;
    let name = f.str("role_name").to_lowercase();
    if name.is_empty() {
        return Err(Error::bad("missing role_name"));
    }
    if secret_id.is_empty() {
        return Err(Error::bad("missing secret_id"));
    }
    let _roles = b.roles.lock().await;
    let Some(role) = role::load(view, &name).await? else {
        return Err(Error::Http(404, format!("role {name:?} does not exist")));
    };
    if !role.bind_secret_id {
        return Err(Error::bad("bind_secret_id is not set on the role"));
    }
    let cidr_list = f.list("cidr_list");
    if let Err(e) = cidr::parse_all(&cidr_list, false) {
        return Err(Error::bad(format!("failed to validate CIDR blocks: {e}")));
    }
    cidr::verify_subset(&cidr_list, &role.secret_id_bound_cidrs).map_err(Error::bad)?;
    let token_cidrs = f.list("token_bound_cidrs");
    if let Err(e) = cidr::parse_all(&token_cidrs, false) {
        return Err(Error::bad(format!("failed to validate token CIDR blocks: {e}")));
    }
    cidr::verify_subset(&token_cidrs, &role.token_bound_cidrs).map_err(Error::bad)?;
    let num_uses = match f.opt_int("num_uses") {
        Some(n) if n < 0 => return Err(Error::bad("num_uses cannot be negative")),
        // 0 (unlimited) is "higher" than any limit.
        Some(n) if role.secret_id_num_uses > 0 && (n == 0 || n > role.secret_id_num_uses) => {
            return Err(Error::bad(
                "num_uses cannot be higher than the role's secret_id_num_uses",
            ));
        }
        Some(n) => n,
        None => role.secret_id_num_uses,
    };
    let ttl_secs = match f.opt_duration("ttl") {
        // 0 (never expires) is "longer" than any limit.
        Some(t) if role.secret_id_ttl > 0 && (t == 0 || t > role.secret_id_ttl) => {
            return Err(Error::bad("ttl cannot be longer than the role's secret_id_ttl"));
        }
        Some(t) => t,
        None => role.secret_id_ttl,
    };
    let mut metadata = Map::new();
    for (k, v) in f.opt_map("metadata").unwrap_or_default() {
        match v {
            Value::String(_) => {
                metadata.insert(k, v);
            }
            _ => {
                return Err(Error::bad(format!(
                    "failed to parse metadata: the value of {k:?} is not a string"
                )));
            }
        }
    }
    let k = keys_of(&name, &role);
    let hmac = secret_hmac(&role, &secret_id)?;
    let entry_key = format!("{}{hmac}", k.dir);
    if view.get(&entry_key).await?.is_some() {
        return Err(Error::bad("failed to store secret_id: SecretID is already registered"));
    }
    let now = chrono::Utc::now();
    let granted = derive_ttl(mount, ttl_secs);
    let expiration_time = match granted {
        0 => None,
        t => Some(ttl::expiry(now, t)?),
    };
    let entry = SecretIdEntry {
        secret_id_accessor: uuid::Uuid::new_v4().to_string(),
        secret_id_num_uses: num_uses,
        secret_id_ttl: ttl_secs,
        creation_time: now,
        expiration_time,
        last_updated_time: now,
        metadata,
        cidr_list,
        token_bound_cidrs: token_cidrs,
    };
    let accessor = accessor_key(b, view, &k, &entry.secret_id_accessor).await?;
    view.batch(vec![
        Write::Put(accessor, to_json(&AccessorEntry { secret_id_hmac: hmac })?),
        Write::Put(entry_key, to_json(&entry)?),
    ])
    .await?;
    Ok(Some(Response::data(json!({
        "secret_id": secret_id,
        "secret_id_accessor": entry.secret_id_accessor,
        "secret_id_ttl": granted,
        "secret_id_num_uses": entry.secret_id_num_uses,
    }))))
}

/// The accessors of a role's live secret IDs.
pub async fn list(_: &AppRole, r: &Req<'_>) -> Reply {
    let view = &r.mount()?.storage;
    let (name, role) = role::named(r).await?;
    let k = keys_of(&name, &role);
    let now = Utc::now();
    let mut accessors = Vec::new();
    for hmac in view.list(&k.dir).await? {
        if let Some(entry) = view.get_json::<SecretIdEntry>(&format!("{}{hmac}", k.dir)).await?
            && !entry.expired(now)
        {
            accessors.push(entry.secret_id_accessor);
        }
    }
    if accessors.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Some(Response::list(accessors)))
}

/// Delete one secret ID and its accessor index.
async fn remove(b: &AppRole, view: &View, k: &Keys, hmac: &str, entry: &SecretIdEntry) -> Result<()> {
    let accessor = accessor_key(b, view, k, &entry.secret_id_accessor).await?;
    view.batch(vec![Write::Delete(accessor), Write::Delete(format!("{}{hmac}", k.dir))])
        .await?;
    Ok(())
}

/// A live secret ID's entry (an expired one is deleted and counts as
/// absent). The caller holds the secret-ID lock.
async fn live(b: &AppRole, view: &View, k: &Keys, hmac: &str) -> Result<Option<SecretIdEntry>> {
    let Some(entry) = view.get_json::<SecretIdEntry>(&format!("{}{hmac}", k.dir)).await? else {
        return Ok(None);
    };
    if entry.expired(Utc::now()) {
        remove(b, view, k, hmac, &entry).await?;
        return Ok(None);
    }
    Ok(Some(entry))
}

pub async fn lookup(b: &AppRole, r: &Req<'_>) -> Reply {
    let secret_id = r.fields.str("secret_id");
    if secret_id.is_empty() {
        return Err(Error::bad("missing secret_id"));
    }
    let view = &r.mount()?.storage;
    let (name, role) = role::named(r).await?;
    let k = keys_of(&name, &role);
    let hmac = secret_hmac(&role, &secret_id)?;
    let _uses = b.secret_ids.lock().await;
    Ok(live(b, view, &k, &hmac).await?.map(|e| Response::data(e.data())))
}

pub async fn destroy(b: &AppRole, r: &Req<'_>) -> Reply {
    let secret_id = r.fields.str("secret_id");
    if secret_id.is_empty() {
        return Err(Error::bad("missing secret_id"));
    }
    let view = &r.mount()?.storage;
    let (name, role) = role::named(r).await?;
    let k = keys_of(&name, &role);
    let hmac = secret_hmac(&role, &secret_id)?;
    let _uses = b.secret_ids.lock().await;
    if let Some(entry) = view.get_json::<SecretIdEntry>(&format!("{}{hmac}", k.dir)).await? {
        remove(b, view, &k, &hmac, &entry).await?;
    }
    Ok(None)
}

/// The secret ID's HMAC an accessor names, if the accessor is known.
async fn by_accessor(b: &AppRole, view: &View, k: &Keys, accessor: &str) -> Result<Option<String>> {
    let key = accessor_key(b, view, k, accessor).await?;
    Ok(view.get_json::<AccessorEntry>(&key).await?.map(|a| a.secret_id_hmac))
}

pub async fn lookup_accessor(b: &AppRole, r: &Req<'_>) -> Reply {
    let accessor = r.fields.str("secret_id_accessor");
    if accessor.is_empty() {
        return Err(Error::bad("missing secret_id_accessor"));
    }
    let view = &r.mount()?.storage;
    let (name, role) = role::named(r).await?;
    let k = keys_of(&name, &role);
    let _uses = b.secret_ids.lock().await;
    let Some(hmac) = by_accessor(b, view, &k, &accessor).await? else {
        return Err(Error::Http(
            404,
            format!("failed to find accessor entry for secret_id_accessor: {accessor:?}"),
        ));
    };
    Ok(live(b, view, &k, &hmac).await?.map(|e| Response::data(e.data())))
}

pub async fn destroy_accessor(b: &AppRole, r: &Req<'_>) -> Reply {
    let accessor = r.fields.str("secret_id_accessor");
    if accessor.is_empty() {
        return Err(Error::bad("missing secret_id_accessor"));
    }
    let view = &r.mount()?.storage;
    let (name, role) = role::named(r).await?;
    let k = keys_of(&name, &role);
    let _uses = b.secret_ids.lock().await;
    let Some(hmac) = by_accessor(b, view, &k, &accessor).await? else {
        return Err(Error::bad(format!(
            "failed to find accessor entry for secret_id_accessor: {accessor:?}"
        )));
    };
    let Some(entry) = view.get_json::<SecretIdEntry>(&format!("{}{hmac}", k.dir)).await? else {
        return Err(Error::Http(403, "invalid secret id accessor".into()));
    };
    remove(b, view, &k, &hmac, &entry).await?;
    Ok(None)
}

/// Delete every secret ID of a role (the role is being deleted; the
/// caller holds the roles lock).
pub async fn flush(b: &AppRole, view: &View, name: &str, role: &Role) -> Result<()> {
    let k = keys_of(name, role);
    let _uses = b.secret_ids.lock().await;
    for hmac in view.list(&k.dir).await? {
        match view.get_json::<SecretIdEntry>(&format!("{}{hmac}", k.dir)).await? {
            Some(entry) => remove(b, view, &k, &hmac, &entry).await?,
            None => view.delete(&format!("{}{hmac}", k.dir)).await?,
        }
    }
    Ok(())
}

/// Why a login's secret ID is refused: unknown, expired or used up (all
/// answered alike), or from an address its CIDR list does not allow.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    Invalid,
    Address(String),
}

/// Check a login's secret ID and spend one of its uses, atomically: the
/// read, the checks and the write happen under the mount's secret-ID lock,
/// and nothing is spent on a refusal. Returns its metadata.
pub async fn spend(
    b: &AppRole,
    view: &View,
    name: &str,
    role: &Role,
    secret_id: &str,
    client: Option<std::net::IpAddr>,
) -> Result<std::result::Result<SecretIdEntry, Refusal>> {
    if secret_id.len() > MAX_HMAC_INPUT {
        return Ok(Err(Refusal::Invalid));
    }
    let k = keys_of(name, role);
    let hmac = secret_hmac(role, secret_id)?;
    let _uses = b.secret_ids.lock().await;
    let Some(mut entry) = live(b, view, &k, &hmac).await? else {
        return Ok(Err(Refusal::Invalid));
    };
    // A secret ID whose accessor index is gone was half destroyed: finish.
    if by_accessor(b, view, &k, &entry.secret_id_accessor).await?.is_none() {
        view.delete(&format!("{}{hmac}", k.dir)).await?;
        return Ok(Err(Refusal::Invalid));
    }
    if !entry.cidr_list.is_empty() {
        cidr::verify_subset(&entry.cidr_list, &role.secret_id_bound_cidrs).map_err(Error::bad)?;
        let Some(ip) = client else {
            return Err(Error::bad("failed to get connection information"));
        };
        if !cidr::any_contains(&entry.cidr_list, ip) {
            return Ok(Err(Refusal::Address(format!(
                "source address {:?} unauthorized through CIDR restrictions on the secret ID",
                ip.to_string()
            ))));
        }
    }
    match entry.secret_id_num_uses {
        0 => {}
        1 => remove(b, view, &k, &hmac, &entry).await?,
        n => {
            entry.secret_id_num_uses = n - 1;
            entry.last_updated_time = Utc::now();
            view.put(&format!("{}{hmac}", k.dir), &to_json(&entry)?).await?;
        }
    }
    Ok(Ok(entry))
}
