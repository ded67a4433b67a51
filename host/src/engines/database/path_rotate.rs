//! `rotate-root/:name`, `rotate-role/:name` and `reset/:name`: rotating the
//! connection's own (root) password, rotating a static role now, and
//! closing a connection so the next call starts from the stored config.

use super::scheduler::{self, RootWal};
use super::{DatabaseEngine, multierror, path_config_connection, path_static_roles};
use crate::error::Error;
use crate::framework::Req;
use crate::logical::Reply;
use chrono::Utc;

/// `reset/:name`: close the pools and driver instances of a connection and
/// initialise the driver again from the stored config.
pub async fn reset(engine: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let (mount, name) = (r.mount()?, &r.fields.str("name"));
    let config = engine.config(mount, name).await.map_err(multierror)?;
    engine.release(mount, name);
    let mut driver = engine.driver(mount, name, &config).await.map_err(multierror)?;
    driver
        .initialize(&config.details_json(), config.verify_connection)
        .await
        .map_err(|e| multierror(Error::internal(format!("error creating database object: {e}"))))?;
    Ok(None)
}

/// `rotate-root/:name`: give the connection's user a new password, with
/// `root_rotation_statements` or the driver's default. The old password
/// stops working; the stored config holds the new one, which no read
/// returns. A write-ahead record with the old password covers a crash in
/// between (see scheduler.rs).
pub async fn rotate_root(engine: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let (mount, name) = (r.mount()?, &r.fields.str("name"));
    let _guard = engine.statics.lock.lock().await;
    let config = engine.config(mount, name).await.map_err(multierror)?;
    // Its login is the cluster's management role, whose password lives in
    // the cluster's record.
    path_config_connection::refuse_cluster_owned(name, Some(&config))?;
    let detail = |k: &str| {
        config
            .connection_details
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let (username, old_password) = (detail("username"), detail("password"));
    if username.is_empty() {
        return Err(Error::bad(
            "unable to rotate root credentials: no username in configuration",
        ));
    }
    if old_password.is_empty() {
        return Err(Error::bad(
            "unable to rotate root credentials: no password in configuration",
        ));
    }
    let new_password = super::path_creds_create::generate_password(engine, mount, &config.password_policy).await?;
    let wal = RootWal {
        username: username.clone(),
        old_password,
        new_password: new_password.clone(),
        created: Utc::now(),
    };
    mount.storage.put_json(&scheduler::root_wal_key(name), &wal).await?;
    let changed = scheduler::set_password(
        engine,
        mount,
        name,
        &config,
        &username,
        &new_password,
        &config.root_credentials_rotate_statements,
    )
    .await;
    if let Err(e) = changed {
        // Usually the statement failed as a whole and the old password still
        // works; but an error after the commit leaves the new one in force.
        // The start-up recovery sorts out both cases, so run it now.
        if let Err(undo) = scheduler::recover_root(engine, mount, name).await {
            tracing::error!(connection = name, error = %undo, "rotate-root failed and could not be rolled back; the start-up recovery will try again");
        }
        return Err(multierror(Error::internal(format!(
            "failed to update user: {}",
            message(&e)
        ))));
    }
    path_config_connection::store(mount, name, &scheduler::with_password(&config, &new_password)).await?;
    // Pooled sessions logged in with the old password: drop them, so every
    // later call proves the new one.
    engine.release(mount, name);
    mount.storage.delete(&scheduler::root_wal_key(name)).await?;
    Ok(None)
}

/// `rotate-role/:name`: rotate a static role's password now. On failure the
/// scheduler retries with back-off and the old password stays in use.
pub async fn rotate_role(engine: &DatabaseEngine, r: &Req<'_>) -> Reply {
    let (mount, name) = (r.mount()?, &r.fields.str("name"));
    let _guard = engine.statics.lock.lock().await;
    let mut role = path_static_roles::load(mount, name)
        .await?
        .ok_or_else(|| Error::bad("no static role found for role name"))?;
    match scheduler::rotate(engine, mount, name, &mut role).await {
        Ok(()) => {
            match role.next_vault_rotation {
                Some(at) => engine.statics.schedule(name, at),
                None => engine.statics.unschedule(name),
            }
            Ok(None)
        }
        Err(e) => {
            engine.statics.retry_later(name);
            Err(multierror(Error::internal(format!(
                "unable to finish rotating credentials; retries will continue in the background but it is also safe to retry manually: {}",
                message(&e)
            ))))
        }
    }
}

fn message(e: &Error) -> String {
    match e {
        Error::Internal(m) | Error::BadRequest(m) => m.clone(),
        other => other.to_string(),
    }
}
