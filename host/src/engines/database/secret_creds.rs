//! Renewing and revoking the leases of dynamic credentials. The role is
//! read at the time of the operation; a role deleted since issuing still
//! revokes (with the driver's default revocation). Also the write-ahead
//! record of a credential being issued.

use super::{DatabaseEngine, path_roles, plugin_error};
use crate::bindings::db;
use crate::engines::pending_creds::Pending;
use crate::error::{Error, Result};
use crate::framework::LeaseTtls;
use crate::logical::Lease;
use crate::logical::Mount;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The write-ahead record of a credential being issued
/// ([`crate::engines::pending_creds`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingCreds {
    pub lease_id: String,
    pub username: String,
    pub role: String,
    pub db_name: String,
}

impl Pending for PendingCreds {
    fn lease_id(&self) -> &str {
        &self.lease_id
    }

    fn internal(&self) -> serde_json::Value {
        serde_json::json!({ "username": self.username, "role": self.role, "db_name": self.db_name })
    }
}

struct Issued<'a> {
    username: &'a str,
    role: &'a str,
    db_name: &'a str,
}

fn issued(lease: Lease<'_>) -> Result<Issued<'_>> {
    let get = |k: &str| lease.internal.get(k).and_then(|v| v.as_str());
    match (get("username"), get("role"), get("db_name")) {
        (Some(username), Some(role), Some(db_name)) => Ok(Issued {
            username,
            role,
            db_name,
        }),
        _ => Err(Error::internal("lease is missing its internal data")),
    }
}

pub async fn lease_ttls(mount: &Mount, lease: Lease<'_>) -> Result<LeaseTtls> {
    let i = issued(lease)?;
    let role = path_roles::load(mount, i.role).await?;
    Ok(role
        .map(|r| LeaseTtls {
            default_ttl: r.default_ttl,
            max_ttl: r.max_ttl,
        })
        .unwrap_or_default())
}

pub async fn renew(engine: &DatabaseEngine, mount: &Mount, lease: Lease<'_>, expires: DateTime<Utc>) -> Result<()> {
    let i = issued(lease)?;
    let mut statements = path_roles::load(mount, i.role)
        .await?
        .map(|r| r.renew_statements)
        .unwrap_or_default();
    let config = engine.config(mount, i.db_name).await?;
    // A disabled cluster or database: no renewal (its leases run out and
    // are revoked on expiry).
    if let Some(link) = &config.cluster {
        if let Some(refused) = link.refusal() {
            return Err(refused);
        }
        statements.clear();
    }
    let request = db::UpdateUserRequest {
        username: i.username.to_string(),
        password: None,
        expiration: Some(db::ChangeExpiration {
            new_expiration: expires.timestamp(),
            statements,
        }),
    };
    let mut driver = engine.driver(mount, i.db_name, &config).await?;
    driver
        .update_user(&config.details_json(), &request)
        .await
        .map_err(plugin_error)
}

pub async fn revoke(engine: &DatabaseEngine, mount: &Mount, lease: Lease<'_>) -> Result<()> {
    let i = issued(lease)?;
    let mut statements = path_roles::load(mount, i.role)
        .await?
        .map(|r| r.revocation_statements)
        .unwrap_or_default();
    let config = engine.config(mount, i.db_name).await?;
    if config.cluster.is_some() {
        // A tenant database's logins are dropped the driver's way, even
        // when its cluster is disabled.
        statements.clear();
    }
    let mut driver = engine.driver(mount, i.db_name, &config).await?;
    driver
        .delete_user(&config.details_json(), i.username, &statements)
        .await
        .map_err(plugin_error)
}
