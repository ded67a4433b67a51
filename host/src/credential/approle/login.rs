//! `auth/<mount>/login`: a role's `role_id` and, when the role binds one,
//! a live `secret_id` issued against it, from an address the role's and the
//! secret ID's CIDR blocks allow. Every wrong credential gets Vault's one
//! answer, "invalid role or secret ID" (400), so a caller cannot tell an
//! unknown role-id from a wrong secret ID. What the login grants is
//! returned as a [`Login`]: the core mints the token.

use super::{AppRole, role, secret_id};
use crate::credential::cidr;
use crate::error::Error;
use crate::framework::Req;
use crate::logical::{Login, Reply, Response};
use serde_json::Value;

const INVALID: &str = "invalid role or secret ID";

pub async fn login(b: &AppRole, r: &Req<'_>) -> Reply {
    let view = &r.mount()?.storage;
    let role_id = r.fields.str("role_id").trim().to_string();
    if role_id.is_empty() {
        return Err(Error::bad("missing role_id"));
    }
    let Some((name, role)) = role::by_role_id(b, view, &role_id).await? else {
        return Err(Error::bad(INVALID));
    };
    // The role's blocks first: a refused address spends nothing.
    if !role.secret_id_bound_cidrs.is_empty() {
        let Some(ip) = r.remote_addr else {
            return Err(Error::bad("failed to get connection information"));
        };
        if !cidr::any_contains(&role.secret_id_bound_cidrs, ip) {
            return Err(Error::bad(format!(
                "source address {:?} unauthorized by CIDR restrictions on the role",
                ip.to_string()
            )));
        }
    }
    let mut metadata = serde_json::Map::new();
    // A secret ID's own token blocks narrow the role's.
    let mut bound_cidrs = role.token_bound_cidrs.clone();
    if role.bind_secret_id {
        let secret = r.fields.str("secret_id").trim().to_string();
        if secret.is_empty() {
            return Err(Error::bad("missing secret_id"));
        }
        match secret_id::spend(b, view, &name, &role, &secret, r.remote_addr).await? {
            Ok(entry) => {
                if !entry.token_bound_cidrs.is_empty() {
                    bound_cidrs = entry.token_bound_cidrs;
                }
                metadata = entry.metadata;
            }
            Err(secret_id::Refusal::Invalid) => return Err(Error::bad(INVALID)),
            Err(secret_id::Refusal::Address(msg)) => return Err(Error::bad(msg)),
        }
    }
    // Always the role's name, for later filtering (as Vault).
    metadata.insert("role_name".into(), Value::String(name));
    Ok(Some(Response {
        login: Some(Login {
            policies: role.token_policies.clone(),
            no_default_policy: role.token_no_default_policy,
            ttl: role.token_ttl,
            max_ttl: role.token_max_ttl,
            explicit_max_ttl: role.token_explicit_max_ttl,
            period: role.token_period,
            num_uses: role.token_num_uses,
            metadata,
            display_name: String::new(),
            bound_cidrs,
            batch: role.token_type == "batch",
        }),
        ..Response::default()
    }))
}
