//! `creds/:name`: a new MongoDB user for a role, `vault-<display name>-<uuid>`
//! with a UUID password (as Vault's legacy engine makes them), created in
//! the role's `db` with its roles, under a renewable lease whose TTL comes
//! from `config/lease`. Revoking the lease drops the user.
//!
//! Crash safety as in the database engine: the driver names the user first,
//! a write-ahead record `wal/creds/<uuid>` {lease id, username, db} is
//! stored before createUser, and the core deletes it once the lease is
//! stored. At start-up a record without its lease means the server died in
//! between: the user is dropped (`engines::pending_creds`).

use super::{MongoDbEngine, config, driver_config, plugin_error, roles};
use crate::bindings::db;
use crate::engines::pending_creds::{self, Pending};
use crate::error::{Error, Result};
use crate::framework::Req;
use crate::framework::ttl;
use crate::logical::Lease;
use crate::logical::Mount;
use crate::logical::{Reply, Response, Secret};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use warden_driver_common::redact::redact_secrets;

pub async fn read(engine: &MongoDbEngine, req: &Req<'_>) -> Reply {
    let mount = req.mount()?;
    let name = &req.fields.str("name");
    let role = roles::load(mount, name)
        .await?
        .ok_or_else(|| Error::bad(format!("unknown role: {name}")))?;
    let conn = config::load_connection(mount)
        .await?
        .ok_or_else(|| Error::bad("configure the DB connection with config/connection first"))?;
    let lease = config::load_lease(mount).await?.unwrap_or_default();
    let granted = ttl::calculate(
        0,
        lease.ttl,
        lease.max_ttl,
        mount.default_lease_ttl,
        mount.max_lease_ttl,
        None,
        Utc::now(),
    );
    let password = uuid::Uuid::new_v4().to_string();
    let template = if req.auth.display_name.is_empty() {
        "vault-{{uuid}}"
    } else {
        "vault-{{.DisplayName}}-{{uuid}}"
    };
    let statement = json!({ "db": role.db, "roles": role.roles_value() }).to_string();
    let request = db::NewUserRequest {
        username_config: db::UsernameMetadata {
            display_name: req.auth.display_name.clone(),
            role_name: name.to_string(),
        },
        username_template: Some(template.to_string()),
        creation_statements: vec![statement],
        rollback_statements: vec![],
        credential: db::Credential::Password(password.clone()),
        expiration: ttl::expiry(Utc::now(), granted.ttl)?.timestamp(),
        username: None,
    };
    let config = driver_config(&conn.uri);
    let mut driver = engine.driver(mount, &conn.uri).await?;
    let mut request = request;
    let username = driver.new_username(&config, &request).await.map_err(plugin_error)?;
    request.username = Some(username.clone());
    let record = PendingUser {
        lease_id: req.lease_id.to_string(),
        username,
        db: role.db.clone(),
    };
    let wal_key = pending_creds::write(mount, &record).await?;
    let username = match driver.new_user(&config, &request).await {
        Ok(u) => u,
        Err(e) => {
            // The driver created nothing (or dropped it again).
            if let Err(d) = mount.storage.delete(&wal_key).await {
                tracing::warn!(error = %d, "could not delete the write-ahead record of a failed creation");
            }
            return Err(redact(plugin_error(e), &password));
        }
    };

    let mut resp = Response::data(json!({
        "db": role.db,
        "username": username,
        "password": password,
    }));
    resp.secret = Some(Secret {
        internal: json!({ "username": username, "db": role.db, "role": name }),
        ttl: granted.ttl,
        renewable: true,
        wal: Some(wal_key),
    });
    if let Some(w) = granted.warning {
        resp.warnings.push(w);
    }
    Ok(Some(resp))
}

/// The write-ahead record of a user being created
/// ([`crate::engines::pending_creds`]).
#[derive(Serialize, Deserialize)]
pub(super) struct PendingUser {
    lease_id: String,
    username: String,
    db: String,
}

impl Pending for PendingUser {
    fn lease_id(&self) -> &str {
        &self.lease_id
    }

    fn internal(&self) -> serde_json::Value {
        json!({ "username": self.username, "db": self.db })
    }
}

/// Drop the lease's user from the database it was created in. A user
/// already gone is fine, so a retry after a partial failure succeeds.
pub async fn revoke(engine: &MongoDbEngine, mount: &Mount, lease: Lease<'_>) -> Result<()> {
    let get = |k: &str| lease.internal.get(k).and_then(|v| v.as_str());
    let (Some(username), Some(database)) = (get("username"), get("db")) else {
        return Err(Error::internal("secret is missing username or db internal data"));
    };
    let conn = config::load_connection(mount)
        .await?
        .ok_or_else(|| Error::internal("no connection configured to revoke the user through"))?;
    let statement = json!({ "db": database }).to_string();
    let mut driver = engine.driver(mount, &conn.uri).await?;
    driver
        .delete_user(&driver_config(&conn.uri), username, &[statement])
        .await
        .map_err(plugin_error)
}

/// Never echo a password in an error; only its whole occurrences go, so a
/// short one leaves the words around it readable.
fn redact(e: Error, secret: &str) -> Error {
    match e {
        Error::Internal(m) => Error::Internal(redact_secrets(&m, &[secret], "[redacted]")),
        Error::BadRequest(m) => Error::BadRequest(redact_secrets(&m, &[secret], "[redacted]")),
        other => other,
    }
}
