//! The token store, as far as it exists yet: the root token only, kept as
//! its SHA-256 hash in storage (written by `sys/init`).
//! `auth/token/lookup-self` and `lookup` answer for it, so clients that check
//! their token at start-up (hvac's `is_authenticated`, `vault login`) work.

use super::Core;
use crate::error::{Error, Result};
use crate::framework::{Backend, Field, FieldType, Path, Req};
use crate::handler;
use crate::logical::Operation::{Read, Update};
use crate::logical::{Reply, Response};
use serde_json::json;

/// The token backend's paths (`auth/token/`).
pub static BACKEND: std::sync::LazyLock<Backend<Core>> = std::sync::LazyLock::new(|| {
    Backend::new(
        "token",
        "The token credential backend is always enabled and builtin to Warden. For now it knows the root token only.",
        vec![
            Path::new("lookup-self")
                .op(Read, handler!(lookup_self), "Look up the calling token's properties.")
                .op(Update, handler!(lookup_self), "Look up the calling token's properties.")
                .help(
                    "Look up the properties of the calling token.",
                    "The calling token's policies, TTL and other properties.",
                ),
            Path::new("lookup")
                .field(Field::new("token", FieldType::Str, "The token to look up."))
                .op(Update, handler!(lookup_other), "Look up a token's properties.")
                .help(
                    "Look up the properties of a token.",
                    "The given token's policies, TTL and other properties.",
                ),
        ],
    )
});

async fn lookup_self(core: &Core, r: &Req<'_>) -> Reply {
    Ok(Some(lookup(core, &r.auth.client_token)?))
}

async fn lookup_other(core: &Core, r: &Req<'_>) -> Reply {
    Ok(Some(lookup(core, &r.fields.str("token"))?))
}

fn lookup(core: &Core, token: &str) -> Result<Response> {
    core.authenticate(Some(token)).map_err(|_| Error::bad("bad token"))?;
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
