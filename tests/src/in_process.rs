//! Driving a `warden::core::Core` directly, for the tests that play a crash
//! in process (static_recovery.rs, mongodb_recovery.rs): a request as the
//! HTTP layer would build it, handled with the given token. The `sys/`
//! backend is the node's, which these tests do not have: the three sys/
//! calls they make (mount, lease lookup, revoke) go to the core's own
//! methods, as the system backend's handlers do.

use anyhow::Result;
use serde_json::{Map, Value};
use std::sync::Arc;
use warden::core::Core;
use warden::core::mounts::{MountRecord, normalize_path};
use warden::logical::{Auth, Operation, Request, Response};

/// Start a core over `storage` (which holds the root token's hash, as
/// `sys/init` leaves it) with the built-in engine types, as an unseal does.
pub async fn start_core(
    storage: &warden::storage::Storage,
    runtime: &Arc<warden::runtime::Runtime>,
) -> Result<Arc<Core>> {
    let engines = Arc::new(warden::engines::builtins());
    // A keyring of its own seals batch tokens (the tests make none).
    let keyring = Arc::new(warden::storage::barrier::Keyring::new());
    Core::start(
        storage.clone(),
        Default::default(),
        runtime.clone(),
        engines,
        keyring,
        "in-process".into(),
    )
    .await
}

/// Handle `op path` with `data` (a JSON object, or anything else for none).
pub async fn call(core: &Core, token: &str, op: Operation, path: &str, data: Value) -> Result<Option<Response>> {
    let field = |name: &str| data.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(mount) = path.strip_prefix("sys/mounts/") {
        let uuid = uuid::Uuid::new_v4().to_string();
        let kind = field("type");
        let record = MountRecord {
            path: normalize_path(mount),
            accessor: format!("{kind}_{}", &uuid[..8]),
            kind,
            description: String::new(),
            uuid,
            default_lease_ttl: 0,
            max_lease_ttl: 0,
        };
        core.enable_mount(&Default::default(), record)
            .await
            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        return Ok(None);
    }
    match path {
        "sys/leases/lookup" => {
            let lease = core.expiration.get(&field("lease_id")).await?;
            return Ok(lease.map(|l| Response::data(serde_json::json!({ "id": l.lease_id }))));
        }
        "sys/leases/revoke" => {
            core.revoke_lease(&field("lease_id"))
                .await
                .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            return Ok(None);
        }
        _ => {}
    }
    let req = Request {
        operation: op,
        path: path.to_string(),
        data: data.as_object().cloned().unwrap_or_else(Map::new),
        auth: Auth::root(token),
        ..Request::default()
    };
    core.handle(req, &|_| Ok(()))
        .await
        .map_err(|e| anyhow::anyhow!("{op:?} {path}: {e}"))
}
