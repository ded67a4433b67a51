//! The token store, as far as it exists yet: the root token only, kept as
//! its SHA-256 hash in storage (written by `sys/init`).
//! `auth/token/lookup-self` and `lookup` answer for it, so clients that check
//! their token at start-up (hvac's `is_authenticated`, `vault login`) work.

use super::Core;
use crate::error::{Error, Result};
use crate::logical::{Operation, Reply, Request, Response};
use serde_json::json;

pub async fn handle(core: &Core, path: &str, req: &Request, token: &str) -> Reply {
    match (path, req.operation) {
        ("lookup-self", Operation::Read | Operation::Update) => Ok(Some(lookup(core, token)?)),
        ("lookup", Operation::Update) => {
            let asked = super::fields::string(&req.data, "token")?.unwrap_or_default();
            Ok(Some(lookup(core, &asked)?))
        }
        ("lookup-self" | "lookup", _) => Err(Error::UnsupportedOperation),
        _ => Err(Error::UnsupportedPath),
    }
}

fn lookup(core: &Core, token: &str) -> Result<Response> {
    core.authorize(Some(token)).map_err(|_| Error::bad("bad token"))?;
    Ok(Response::data(json!({
        "accessor": "",
        "creation_time": core.started.timestamp(),
        "creation_ttl": 0,
        "display_name": "root",
        "entity_id": "",
        "expire_time": null,
        "explicit_max_ttl": 0,
        "id": token,
        "meta": null,
        "num_uses": 0,
        "orphan": true,
        "path": "auth/token/root",
        "policies": ["root"],
        "renewable": false,
        "ttl": 0,
        "type": "service",
    })))
}

/// Where the root token's hash is kept (a local key: tokens are per cluster).
pub const ROOT_TOKEN_KEY: &str = crate::storage::layout::ROOT_TOKEN;

/// A new random token in Vault's service-token shape.
pub fn generate() -> String {
    use rand::Rng;
    let s: String = rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("hvs.{s}")
}

/// SHA-256 of a token: what is stored and compared, never the token.
pub fn hash(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RootTokenEntry {
    sha256: String,
}

/// Store the root token's hash (at init).
pub async fn store_root(storage: &dyn crate::storage::Backend, token: &str) -> Result<()> {
    let entry = RootTokenEntry {
        sha256: hex::encode(hash(token)),
    };
    let bytes = serde_json::to_vec(&entry).map_err(|e| Error::internal(e.to_string()))?;
    storage.put(ROOT_TOKEN_KEY, &bytes).await?;
    Ok(())
}

/// The stored root token hash (at unseal).
pub async fn load_root_hash(storage: &crate::storage::Storage) -> anyhow::Result<[u8; 32]> {
    let bytes = storage
        .get(ROOT_TOKEN_KEY)
        .await?
        .ok_or_else(|| anyhow::anyhow!("storage holds no root token ({ROOT_TOKEN_KEY})"))?;
    let entry: RootTokenEntry = serde_json::from_slice(&bytes)?;
    let raw = hex::decode(&entry.sha256)?;
    raw.as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("{ROOT_TOKEN_KEY} is corrupt"))
}
