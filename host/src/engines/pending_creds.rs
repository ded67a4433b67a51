//! The write-ahead records of credentials being issued, for the engines that
//! create database users (the database engine and the legacy MongoDB one).
//! A record naming the lease id and the user is stored before the user is
//! created; the core deletes it once the lease is stored. At start-up
//! ([`recover`]) a record whose lease exists is finished and just deleted;
//! one without a lease means the server died in between and nobody holds
//! the user, so it is revoked as its lease would have been. Recovery runs
//! in the background while requests are served, so records of requests in
//! flight are skipped.

use crate::error::Result;
use crate::framework::SecretsEngine;
use crate::logical::{Lease, LeaseStatus, Mount};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where the records live, in the mount's storage (a local key class:
/// never replicated).
pub const PREFIX: &str = crate::storage::layout::engine::PENDING_CREDS;

/// An engine's record of a credential being issued.
pub trait Pending: Serialize + DeserializeOwned {
    fn lease_id(&self) -> &str;
    /// The internal data the lease would have held: what the engine's
    /// `revoke` needs to drop the user.
    fn internal(&self) -> serde_json::Value;
}

/// Store a record; returns its key in the mount's storage.
pub async fn write(mount: &Mount, record: &impl Pending) -> Result<String> {
    let key = format!("{PREFIX}{}", uuid::Uuid::new_v4());
    mount.storage.put_json(&key, record).await?;
    Ok(key)
}

/// Settle every record a crashed server left. Returns (rolled back, still
/// pending) counts; a record whose revocation failed stays for the next
/// attempt.
pub async fn recover<P: Pending>(engine: &dyn SecretsEngine, mount: &Mount) -> Result<(usize, usize)> {
    let (mut rolled_back, mut pending) = (0, 0);
    for name in mount.storage.list(PREFIX).await? {
        let key = format!("{PREFIX}{name}");
        let Some(record) = mount.storage.get_json::<P>(&key).await? else {
            continue;
        };
        match mount.system.lease_status(record.lease_id()).await? {
            // Recovery runs while requests are served: a record of a
            // request in flight is not a leftover.
            LeaseStatus::Issuing => continue,
            LeaseStatus::Stored => {
                mount.storage.delete(&key).await?;
                continue;
            }
            LeaseStatus::Absent => {}
        }
        let internal = record.internal();
        let lease = Lease {
            id: record.lease_id(),
            internal: &internal,
        };
        match engine.revoke(mount, lease).await {
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
