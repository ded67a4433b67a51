//! Renewing and revoking the leases of dynamic credentials. The role is
//! read at the time of the operation; a role deleted since issuing still
//! revokes (with the driver's default revocation). Also the start-up
//! recovery of credentials whose lease was never stored.

use super::{DatabaseEngine, path_roles, plugin_error};
use crate::core::expiration::LeaseEntry;
use crate::core::mounts::MountEntry;
use crate::engines::LeaseTtls;
use crate::error::{Error, Result};
use crate::runtime::bindings::db;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where the write-ahead records of credentials being issued live, in the
/// mount's storage (a local key class: never replicated).
pub const PENDING_PREFIX: &str = "wal/creds/";

/// The write-ahead record of a credential being issued.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingCreds {
    pub lease_id: String,
    pub username: String,
    pub role: String,
    pub db_name: String,
}

impl PendingCreds {
    /// Store the record; returns its key in the mount's storage.
    pub async fn write(&self, mount: &MountEntry) -> Result<String> {
        let key = format!("{PENDING_PREFIX}{}", uuid::Uuid::new_v4());
        mount.storage.put_json(&key, self).await?;
        Ok(key)
    }
}

/// Settle every write-ahead record left by a server that died while issuing:
/// a record whose lease exists is finished (the record is just deleted); one
/// without a lease means the user may exist with nobody knowing it, so the
/// user is dropped. Returns (rolled back, still pending) counts; a record whose
/// drop failed stays for the next attempt.
pub async fn recover(
    engine: &DatabaseEngine,
    mount: &MountEntry,
    expiration: &crate::core::expiration::Expiration,
) -> Result<(usize, usize)> {
    let mut rolled_back = 0;
    let mut pending = 0;
    for name in mount.storage.list(PENDING_PREFIX).await? {
        let key = format!("{PENDING_PREFIX}{name}");
        let Some(record) = mount.storage.get_json::<PendingCreds>(&key).await? else {
            continue;
        };
        if expiration.get(&record.lease_id).await?.is_some() {
            mount.storage.delete(&key).await?;
            continue;
        }
        let lease = LeaseEntry {
            lease_id: record.lease_id.clone(),
            path: String::new(),
            mount_path: mount.path().to_string(),
            internal: serde_json::json!({
                "username": record.username, "role": record.role, "db_name": record.db_name,
            }),
            issue_time: Utc::now(),
            expire_time: Utc::now(),
            last_renewal: None,
            renewable: false,
            revoke: Default::default(),
        };
        match revoke(engine, mount, &lease).await {
            Ok(()) => {
                mount.storage.delete(&key).await?;
                rolled_back += 1;
            }
            Err(e) => {
                tracing::warn!(mount = mount.path(), error = %e, "could not roll back a credential issued before a crash; will retry");
                pending += 1;
            }
        }
    }
    Ok((rolled_back, pending))
}

struct Issued<'a> {
    username: &'a str,
    role: &'a str,
    db_name: &'a str,
}

fn issued(lease: &LeaseEntry) -> Result<Issued<'_>> {
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

pub async fn lease_ttls(mount: &MountEntry, lease: &LeaseEntry) -> Result<LeaseTtls> {
    let i = issued(lease)?;
    let role = path_roles::load(mount, i.role).await?;
    Ok(role
        .map(|r| LeaseTtls {
            default_ttl: r.default_ttl,
            max_ttl: r.max_ttl,
        })
        .unwrap_or_default())
}

pub async fn renew(
    engine: &DatabaseEngine,
    mount: &MountEntry,
    lease: &LeaseEntry,
    expires: DateTime<Utc>,
) -> Result<()> {
    let i = issued(lease)?;
    let statements = path_roles::load(mount, i.role)
        .await?
        .map(|r| r.renew_statements)
        .unwrap_or_default();
    let config = engine.config(mount, i.db_name).await?;
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

pub async fn revoke(engine: &DatabaseEngine, mount: &MountEntry, lease: &LeaseEntry) -> Result<()> {
    let i = issued(lease)?;
    let statements = path_roles::load(mount, i.role)
        .await?
        .map(|r| r.revocation_statements)
        .unwrap_or_default();
    let config = engine.config(mount, i.db_name).await?;
    let mut driver = engine.driver(mount, i.db_name, &config).await?;
    driver
        .delete_user(&config.details_json(), i.username, &statements)
        .await
        .map_err(plugin_error)
}
