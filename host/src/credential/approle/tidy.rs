//! `tidy/secret-id` (Vault's): removes what no login can use any more,
//! so that storage does not grow with secret IDs nobody touches again:
//! expired secret IDs (with their accessor index), the secret IDs of roles
//! that were deleted, and accessor entries whose secret ID is gone.
//!
//! As in Vault the request answers 202 at once and the work runs in the
//! background, one tidy per mount at a time; what it did goes to the log.
//! Deleting an expired secret ID needs no lock: expiry cannot be undone,
//! so a login racing with the tidy refuses it either way. An accessor is
//! removed only after its secret ID is looked up again and found nowhere,
//! so one written a moment after the scan is kept.

use super::secret_id::{AccessorEntry, SecretIdEntry};
use super::{AppRole, hmac_hex, role};
use crate::error::{Error, Result};
use crate::framework::Req;
use crate::logical::{Reply, Response};
use crate::storage::layout::approle as keys;
use crate::storage::{View, Write};
use chrono::Utc;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

const STARTED: &str =
    "Tidy operation successfully started. Any information from the operation will be printed to Warden's server logs.";

/// What one tidy removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tidied {
    pub secret_ids: usize,
    pub accessors: usize,
}

pub async fn tidy(b: &AppRole, r: &Req<'_>) -> Reply {
    let view = r.mount()?.storage.clone();
    let salt = b.salt(&view).await?.to_vec();
    // 202 in the envelope, the warning saying what happens (Vault's).
    let accepted = |warning: &str| Response {
        warnings: vec![warning.to_string()],
        ..Response::accepted()
    };
    if b.tidying.swap(true, Ordering::AcqRel) {
        return Ok(Some(accepted("Tidy operation already in progress.")));
    }
    let running = b.tidying.clone();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let done = crate::panic_guard::guard(tidy_secret_ids(&view, &salt))
            .await
            .unwrap_or_else(|panic| Err(Error::internal(format!("tidy panicked: {panic}"))));
        match done {
            Ok(t) => tracing::info!(
                secret_ids = t.secret_ids,
                accessors = t.accessors,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "approle: tidy of secret IDs finished"
            ),
            Err(e) => tracing::warn!(error = %e, "approle: tidy of secret IDs failed"),
        }
        running.store(false, Ordering::Release);
    });
    Ok(Some(accepted(STARTED)))
}

/// One pass over both classes of secret IDs (replicated and local).
pub async fn tidy_secret_ids(view: &View, salt: &[u8]) -> Result<Tidied> {
    // The directories of the roles that exist (a role's secret IDs live
    // under the HMAC of its name, keyed by the role's own key).
    let mut roles = HashSet::new();
    for name in view.list(keys::ROLE).await? {
        if let Some(role) = role::load(view, &name).await? {
            roles.insert(hmac_hex(role.hmac_key.as_bytes(), &name));
        }
    }
    let now = Utc::now();
    let mut tidied = Tidied::default();
    for (prefix, accessor_prefix) in [
        (keys::SECRET_ID, keys::ACCESSOR),
        (keys::SECRET_ID_LOCAL, keys::ACCESSOR_LOCAL),
    ] {
        let dirs: Vec<String> = view
            .list(prefix)
            .await?
            .into_iter()
            .filter_map(|d| d.strip_suffix('/').map(str::to_string))
            .collect();
        let mut live = HashSet::new();
        for dir in &dirs {
            let role_gone = !roles.contains(dir);
            for hmac in view.list(&format!("{prefix}{dir}/")).await? {
                let key = format!("{prefix}{dir}/{hmac}");
                let Some(entry) = view.get_json::<SecretIdEntry>(&key).await? else {
                    continue;
                };
                if role_gone || entry.expired(now) {
                    let accessor = format!("{accessor_prefix}{}", hmac_hex(salt, &entry.secret_id_accessor));
                    view.batch(vec![Write::Delete(accessor), Write::Delete(key)]).await?;
                    tidied.secret_ids += 1;
                } else {
                    live.insert(hmac);
                }
            }
        }
        for name in view.list(accessor_prefix).await? {
            let key = format!("{accessor_prefix}{name}");
            let Some(entry) = view.get_json::<AccessorEntry>(&key).await? else {
                continue;
            };
            if live.contains(&entry.secret_id_hmac) {
                continue;
            }
            // Written after the scan, perhaps: look again before deleting.
            let mut found = false;
            for dir in view.list(prefix).await? {
                if view
                    .get(&format!("{prefix}{dir}{}", entry.secret_id_hmac))
                    .await?
                    .is_some()
                {
                    found = true;
                    break;
                }
            }
            if !found {
                view.delete(&key).await?;
                tidied.accessors += 1;
            }
        }
    }
    Ok(tidied)
}
