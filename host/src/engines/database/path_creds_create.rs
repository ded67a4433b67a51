//! `creds/:name`: issue a dynamic credential. Generates a password, has the
//! driver create the user, and returns a secret the core puts under a lease.
//! If anything fails after the user exists, the user is dropped again.
//!
//! Crash safety: the driver names the user first (`new-username`), and a
//! write-ahead record `wal/creds/<lease uuid>` {lease id, username, role,
//! connection} is stored before the user is created. The core deletes the
//! record once the lease is stored; a record found at start-up whose lease
//! does not exist means the server died in between, and the user is dropped
//! (`engines::pending_creds`).

use super::{DatabaseEngine, credentials, path_cluster_database, path_roles, plugin_error};
use crate::bindings::db;
use crate::error::{Error, Result};
use crate::framework::Req;
use crate::framework::ttl;
use crate::logical::{Mount, Reply, Response, Secret};
use crate::runtime::catalog::PASSWORD_GENERATOR;
use chrono::Utc;
use serde_json::json;
use warden_driver_common::redact::redact_secrets;

pub async fn read(engine: &DatabaseEngine, req: &Req<'_>) -> Reply {
    let mount = req.mount()?;
    let name = &req.fields.str("name");
    let role = path_roles::load(mount, name)
        .await?
        .ok_or_else(|| Error::bad(format!("unknown role: {name}")))?;
    let config = engine.config(mount, &role.db_name).await?;
    if let Some(refused) = config.cluster.as_ref().and_then(|l| l.refusal()) {
        return Err(refused);
    }
    if !config.allows(name) {
        return Err(Error::internal(format!("{name:?} is not an allowed role")));
    }
    // No creation statements is the driver's to judge, as in Vault: the SQL
    // drivers refuse ("empty creation statements"), Redis has a default.
    // A role written before its connection was is checked here.
    credentials::check_supported(&config, &role.db_name, &role.credential_type)?;
    let granted = ttl::calculate(
        0,
        role.default_ttl,
        role.max_ttl,
        mount.default_lease_ttl,
        mount.max_lease_ttl,
        None,
        Utc::now(),
    );
    // Checked before anything is created: a TTL past the end of time is a 400.
    let expiration = ttl::expiry(Utc::now(), granted.ttl)?;
    // The role's own policy first, then the connection's (as Vault).
    let policy = role
        .credential_config
        .get("password_policy")
        .and_then(|v| v.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or(&config.password_policy);
    let password = generate_password(engine, mount, policy).await?;

    let request = db::NewUserRequest {
        username_config: db::UsernameMetadata {
            display_name: req.auth.display_name.clone(),
            role_name: name.to_string(),
        },
        username_template: config
            .connection_details
            .get("username_template")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(String::from),
        // A tenant database's logins get the owner's rights, whatever the
        // role says (path_cluster_database).
        creation_statements: match &config.cluster {
            Some(link) => link.creation_statements(path_cluster_database::is_postgres(&config)),
            None => role.creation_statements.clone(),
        },
        rollback_statements: match &config.cluster {
            Some(_) => Vec::new(),
            None => role.rollback_statements.clone(),
        },
        credential: db::Credential::Password(password.clone()),
        expiration: expiration.timestamp(),
        username: None,
    };
    let details = config.details_json();
    let mut driver = engine.driver(mount, &role.db_name, &config).await?;
    let mut request = request;
    let username = driver.new_username(&details, &request).await.map_err(plugin_error)?;
    request.username = Some(username.clone());
    let wal = super::secret_creds::PendingCreds {
        lease_id: req.lease_id.to_string(),
        username: username.clone(),
        role: name.to_string(),
        db_name: role.db_name.clone(),
    };
    let wal_key = crate::engines::pending_creds::write(mount, &wal).await?;
    let created = driver
        .new_user(&details, &request)
        .await
        // A database error may quote the statement: never echo the password.
        .map_err(|e| redact(plugin_error(e), &password));
    let username = match created {
        Ok(u) => u,
        Err(e) => {
            // The driver rolled the creation back: nothing to recover.
            if let Err(d) = mount.storage.delete(&wal_key).await {
                tracing::warn!(error = %d, "could not delete the write-ahead record of a failed creation");
            }
            return Err(e);
        }
    };

    let mut resp = Response::data(json!({ "username": username, "password": password }));
    resp.secret = Some(Secret {
        internal: json!({ "username": username, "role": name, "db_name": role.db_name }),
        ttl: granted.ttl,
        renewable: true,
        wal: Some(wal_key),
    });
    if let Some(w) = granted.warning {
        resp.warnings.push(w);
    }
    Ok(Some(resp))
}

/// A password from the named policy, or from Vault's default rules when
/// `policy` is empty (also for root rotation and static roles). A policy
/// that does not exist fails the request as in Vault (500 "failed to
/// generate password: ...").
pub(super) async fn generate_password(engine: &DatabaseEngine, mount: &Mount, policy: &str) -> Result<String> {
    if !policy.is_empty() {
        return mount
            .system
            .generate_password(policy)
            .await
            .map_err(|e| Error::internal(format!("failed to generate password: {e}")))?
            .ok_or_else(|| {
                Error::internal(format!(
                    "failed to generate password: no password policy found with the name {policy:?}"
                ))
            });
    }
    let out = engine
        .runtime
        .generate(PASSWORD_GENERATOR, &[])
        .await
        .map_err(plugin_error)?;
    out.into_iter()
        .find(|(k, _)| k == "password")
        .map(|(_, v)| v)
        .ok_or_else(|| Error::internal("the password generator returned no password"))
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
