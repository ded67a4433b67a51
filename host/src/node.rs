//! A Warden node: the physical storage, the seal, and the [`Core`] that runs
//! once the node is unsealed. Owns Vault's seal life cycle:
//!
//! - `sys/init` makes a random root key and a keyring of data keys, stores the
//!   keyring sealed under the root key and the root key sealed under a random
//!   unseal key, and hands the unseal key out as Shamir shares (never stored);
//! - `sys/unseal` collects shares until the threshold, rebuilds the unseal key,
//!   opens the root key and the keyring, and starts the core over the barrier;
//! - `sys/seal` stops the core and forgets every key;
//! - while sealed (or not initialised) every other request gets a 503.
//!
//! Physical keys outside the barrier (never encrypted by it, so readable while
//! sealed): `core/seal-config` (shares and threshold, written last by init so
//! that a crash during init leaves the node uninitialised), `core/root-key`,
//! `core/keyring`.

mod generate_root;
mod rekey;

pub use generate_root::{GenerateRootStatus, decode_token as decode_root_token};
pub use rekey::RekeyRequest;

use crate::core::{Core, shamir};
use crate::error::{Error, Result};
use crate::framework::Registry;
use crate::runtime::Runtime;
use crate::storage::barrier::{self, Barrier, KEY_LEN};
use crate::storage::locality::{LocalStorage, Locality};
use crate::storage::{Storage, layout};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

pub const SEAL_CONFIG_KEY: &str = layout::SEAL_CONFIG;
pub const ROOT_KEY_KEY: &str = layout::ROOT_KEY;
pub const KEYRING_KEY: &str = layout::KEYRING;

/// The node's local storage (`PathsSpecial.LocalStorage`): the seal's keys
/// belong to this node (a performance secondary has its own seal).
pub const LOCAL_STORAGE: LocalStorage = &[SEAL_CONFIG_KEY, ROOT_KEY_KEY, KEYRING_KEY];

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealConfig {
    pub secret_shares: u8,
    pub secret_threshold: u8,
}

enum State {
    Uninitialized,
    Sealed {
        config: SealConfig,
        /// Shares entered so far (wiped when dropped).
        shares: Vec<Zeroizing<Vec<u8>>>,
        nonce: String,
    },
    Unsealed {
        config: SealConfig,
        core: Arc<Core>,
        barrier: Arc<Barrier>,
        /// Kept while unsealed to re-seal the keyring after `sys/rotate`.
        root_key: Zeroizing<[u8; KEY_LEN]>,
    },
}

/// What `sys/init` hands out, once.
pub struct InitResult {
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    pub root_token: String,
}

pub struct Node {
    physical: Storage,
    storage_type: &'static str,
    runtime: Arc<Runtime>,
    /// The engine types mounts are built as (filled by the server).
    engines: Arc<Registry>,
    state: Mutex<State>,
    /// Serialises init, unseal, seal, rotate and rekey (the state lock is
    /// std and cannot be held across an await).
    transition: tokio::sync::Mutex<()>,
    /// A `sys/rekey` attempt in progress (forgotten when sealed). Its own
    /// lock, never held across an await nor while taking `state`.
    rekey: Mutex<Option<rekey::Rekey>>,
    /// A `sys/generate-root` attempt in progress (forgotten when sealed);
    /// locked as `rekey` is.
    generate_root: Mutex<Option<generate_root::Attempt>>,
}

impl Node {
    /// A node over `physical`; reads whether it was initialised.
    pub async fn open(
        physical: Storage,
        storage_type: &'static str,
        runtime: Arc<Runtime>,
        engines: Arc<Registry>,
    ) -> anyhow::Result<Arc<Node>> {
        rekey::recover_pending(&physical).await?;
        let state = match read_seal_config(&physical).await? {
            None => State::Uninitialized,
            Some(config) => State::Sealed {
                config,
                shares: Vec::new(),
                nonce: String::new(),
            },
        };
        Ok(Arc::new(Node {
            physical,
            storage_type,
            runtime,
            engines,
            state: Mutex::new(state),
            transition: tokio::sync::Mutex::new(()),
            rekey: Mutex::new(None),
            generate_root: Mutex::new(None),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running core, or the 503 Vault gives while sealed.
    pub fn core(&self) -> Result<Arc<Core>> {
        match &*self.state() {
            State::Unsealed { core, .. } => Ok(core.clone()),
            _ => Err(Error::Sealed),
        }
    }

    pub fn initialized(&self) -> bool {
        !matches!(&*self.state(), State::Uninitialized)
    }

    pub fn sealed(&self) -> bool {
        !matches!(&*self.state(), State::Unsealed { .. })
    }

    /// `sys/init`: only once. `root_token` is the dev mode's chosen token.
    pub async fn init(&self, shares: i64, threshold: i64, root_token: Option<String>) -> Result<InitResult> {
        let _t = self.transition.lock().await;
        if self.initialized() || read_seal_config(&self.physical).await.map_err(storage_err)?.is_some() {
            return Err(Error::bad("Vault is already initialized"));
        }
        let config = check_seal_config(shares, threshold)?;

        let unseal_key = barrier::random_key();
        let root_key = barrier::random_key();
        let keyring = barrier::Keyring::new();
        let sealed_keyring = barrier::seal_keyring(&root_key, &keyring).map_err(|e| Error::internal(e.to_string()))?;
        let sealed_root = barrier::seal_root_key(&unseal_key, &root_key).map_err(|e| Error::internal(e.to_string()))?;
        let keys: Vec<Zeroizing<Vec<u8>>> = if config.secret_shares == 1 {
            vec![Zeroizing::new(unseal_key.to_vec())]
        } else {
            shamir::split(unseal_key.as_ref(), config.secret_shares, config.secret_threshold)
                .map_err(|e| Error::internal(e.to_string()))?
                .into_iter()
                .map(Zeroizing::new)
                .collect()
        };
        let root_token = root_token.unwrap_or_else(crate::core::token::generate);

        // Keyring and root key first, the seal config last: until it is
        // written the node counts as uninitialised and init can run again.
        self.physical
            .put(KEYRING_KEY, &sealed_keyring)
            .await
            .map_err(storage_err)?;
        self.physical
            .put(ROOT_KEY_KEY, &sealed_root)
            .await
            .map_err(storage_err)?;
        let barrier = Barrier::new(self.physical.clone(), keyring);
        crate::core::token::store_root(&barrier, &root_token).await?;
        let config_json = serde_json::to_vec(&config).map_err(|e| Error::internal(e.to_string()))?;
        self.physical
            .put(SEAL_CONFIG_KEY, &config_json)
            .await
            .map_err(storage_err)?;

        *self.state() = State::Sealed {
            config,
            shares: Vec::new(),
            nonce: String::new(),
        };
        tracing::info!(
            shares = config.secret_shares,
            threshold = config.secret_threshold,
            "initialized: root key, keyring and seal configuration stored"
        );
        Ok(InitResult { keys, root_token })
    }

    /// `sys/unseal`: add one share (hex or base64), or `reset` the progress.
    /// On a node that is already unsealed (one more key holder than the
    /// threshold) it just answers the seal status, as Vault does.
    pub async fn unseal(&self, key: Option<&str>, reset: bool) -> Result<Value> {
        let _t = self.transition.lock().await;
        // The state lock is taken in this block only: `seal_status` and
        // `open_with` take it again, and a std mutex is not re-entrant.
        let ready = {
            let mut state = self.state();
            match &mut *state {
                State::Uninitialized => return Err(Error::bad("Vault is not initialized")),
                State::Unsealed { .. } => None,
                State::Sealed { shares, nonce, config } => {
                    if reset {
                        shares.clear();
                        nonce.clear();
                        None
                    } else {
                        let key = key.filter(|k| !k.is_empty()).ok_or_else(|| {
                            Error::bad("'key' must be specified in request body as JSON, or 'reset' set to true")
                        })?;
                        let bytes = decode_key(key)?;
                        if shares.is_empty() {
                            *nonce = uuid::Uuid::new_v4().to_string();
                        }
                        // Vault ignores a share entered twice.
                        if !shares.iter().any(|s| s.as_slice() == bytes.as_slice()) {
                            shares.push(bytes);
                        }
                        if shares.len() >= config.secret_threshold as usize {
                            nonce.clear();
                            Some((*config, std::mem::take(shares)))
                        } else {
                            None
                        }
                    }
                }
            }
        };
        if let Some((config, taken)) = ready {
            self.open_with(&config, &taken).await?;
        }
        Ok(self.seal_status())
    }

    /// Rebuild the unseal key from `shares`, open the root key and keyring,
    /// and start the core over the barrier.
    async fn open_with(&self, config: &SealConfig, shares: &[Zeroizing<Vec<u8>>]) -> Result<()> {
        let unseal_key: Zeroizing<Vec<u8>> = if config.secret_shares == 1 {
            shares.first().cloned().unwrap_or_default()
        } else {
            let raw: Vec<Vec<u8>> = shares.iter().map(|s| s.to_vec()).collect();
            let combined = shamir::combine(&raw).map_err(|e| Error::bad(format!("Error unsealing: {e}")));
            for mut r in raw {
                zeroize::Zeroize::zeroize(&mut r);
            }
            Zeroizing::new(combined?)
        };
        let unseal_key: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(
            unseal_key
                .as_slice()
                .try_into()
                .map_err(|_| Error::bad("Error unsealing: the key shares do not combine into a 256-bit key"))?,
        );
        let sealed_root = self
            .physical
            .get(ROOT_KEY_KEY)
            .await
            .map_err(storage_err)?
            .ok_or_else(|| Error::internal("storage holds a seal configuration but no root key"))?;
        let root_key = barrier::open_root_key(&unseal_key, &sealed_root).map_err(|_| {
            Error::bad("Error unsealing: failed to decrypt the root key: the unseal key is wrong (message authentication failed)")
        })?;
        let sealed_keyring = self
            .physical
            .get(KEYRING_KEY)
            .await
            .map_err(storage_err)?
            .ok_or_else(|| Error::internal("storage holds a seal configuration but no keyring"))?;
        let keyring = barrier::open_keyring(&root_key, &sealed_keyring)
            .map_err(|e| Error::internal(format!("the stored keyring cannot be opened: {e}")))?;
        let barrier = Arc::new(Barrier::new(self.physical.clone(), keyring));
        // Keys are classed (local or replicated) by their owners' declarations.
        let locality = Arc::new(Locality::new(&[
            LOCAL_STORAGE,
            crate::core::LOCAL_STORAGE,
            crate::storage::wal::LOCAL_STORAGE,
        ]));
        let indexed = crate::storage::wal::Indexed::open(barrier.clone(), locality.clone())
            .await
            .map_err(|e| Error::internal(format!("unsealed, but the write-ahead log cannot be read: {e}")))?;
        let core = Core::start(
            Arc::new(indexed),
            locality,
            self.runtime.clone(),
            self.engines.clone(),
            barrier.clone(),
        )
        .await
        .map_err(|e| Error::internal(format!("unsealed, but the core failed to start: {e:#}")))?;
        *self.state() = State::Unsealed {
            config: *config,
            core,
            barrier,
            root_key,
        };
        tracing::info!("unsealed");
        Ok(())
    }

    /// `sys/seal`: stop the core and forget the keys.
    pub async fn seal(&self) -> Result<()> {
        let _t = self.transition.lock().await;
        let previous = {
            let mut state = self.state();
            let config = match &*state {
                State::Unsealed { config, .. } => *config,
                _ => return Ok(()),
            };
            std::mem::replace(
                &mut *state,
                State::Sealed {
                    config,
                    shares: Vec::new(),
                    nonce: String::new(),
                },
            )
        };
        // As Vault: a rekey in progress does not outlive the seal.
        *self.rekey.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *self.generate_root.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let State::Unsealed { core, .. } = previous {
            core.stop().await;
        }
        tracing::info!("sealed");
        Ok(())
    }

    /// `sys/rotate`: a new data key for new writes; older terms stay readable.
    pub async fn rotate(&self) -> Result<(u32, chrono::DateTime<chrono::Utc>)> {
        let _t = self.transition.lock().await;
        let (barrier, sealed) = {
            let state = self.state();
            let State::Unsealed { barrier, root_key, .. } = &*state else {
                return Err(Error::Sealed);
            };
            barrier.rotate();
            let sealed = barrier
                .seal_keyring(root_key)
                .map_err(|e| Error::internal(e.to_string()))?;
            (barrier.clone(), sealed)
        };
        self.physical.put(KEYRING_KEY, &sealed).await.map_err(storage_err)?;
        Ok(barrier.key_status())
    }

    pub fn key_status(&self) -> Result<(u32, chrono::DateTime<chrono::Utc>)> {
        match &*self.state() {
            State::Unsealed { barrier, .. } => Ok(barrier.key_status()),
            _ => Err(Error::Sealed),
        }
    }

    /// `sys/seal-status`, in Vault's shape.
    pub fn seal_status(&self) -> Value {
        let state = self.state();
        let (initialized, sealed, t, n, progress, nonce, cluster_id) = match &*state {
            State::Uninitialized => (false, true, 0, 0, 0, String::new(), None),
            State::Sealed { config, shares, nonce } => (
                true,
                true,
                config.secret_threshold,
                config.secret_shares,
                shares.len(),
                nonce.clone(),
                None,
            ),
            State::Unsealed { config, core, .. } => (
                true,
                false,
                config.secret_threshold,
                config.secret_shares,
                0,
                String::new(),
                Some(core.cluster_id.clone()),
            ),
        };
        let mut v = json!({
            "type": "shamir",
            "initialized": initialized,
            "sealed": sealed,
            "t": t,
            "n": n,
            "progress": progress,
            "nonce": nonce,
            "version": env!("CARGO_PKG_VERSION"),
            "build_date": "",
            "migration": false,
            "recovery_seal": false,
            "storage_type": self.storage_type,
        });
        if let Some(id) = cluster_id {
            v["cluster_name"] = json!("warden-cluster");
            v["cluster_id"] = json!(id);
        }
        v
    }
}

async fn read_seal_config(physical: &Storage) -> std::result::Result<Option<SealConfig>, anyhow::Error> {
    match physical.get(SEAL_CONFIG_KEY).await? {
        None => Ok(None),
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!("storage is corrupt: {SEAL_CONFIG_KEY} cannot be read ({e}); nothing was changed")
        })?)),
    }
}

/// Vault's checks on `secret_shares` and `secret_threshold`.
fn check_seal_config(shares: i64, threshold: i64) -> Result<SealConfig> {
    if shares < 1 {
        return Err(Error::bad("shares must be at least one"));
    }
    if threshold < 1 {
        return Err(Error::bad("threshold must be at least one"));
    }
    if shares > 1 && threshold == 1 {
        return Err(Error::bad("threshold must be greater than one for multiple shares"));
    }
    if shares > 255 {
        return Err(Error::bad("shares must be less than 256"));
    }
    if threshold > shares {
        return Err(Error::bad("threshold cannot be larger than shares"));
    }
    Ok(SealConfig {
        secret_shares: shares as u8,
        secret_threshold: threshold as u8,
    })
}

/// A share as the operator pastes it: hex (Vault's `keys`) or base64
/// (`keys_base64`).
fn decode_key(key: &str) -> Result<Zeroizing<Vec<u8>>> {
    let key = key.trim();
    let bytes = if key.len().is_multiple_of(2) && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(key).ok()
    } else {
        None
    }
    .or_else(|| B64.decode(key).ok())
    .ok_or_else(|| Error::bad("'key' must be a valid hex or base64 string"))?;
    // A whole unseal key (one share) is 32 bytes; a Shamir share one more.
    if bytes.len() != KEY_LEN && bytes.len() != KEY_LEN + 1 {
        return Err(Error::bad(format!(
            "Error unsealing: the key is {} bytes long, expected {KEY_LEN} or {}",
            bytes.len(),
            KEY_LEN + 1
        )));
    }
    Ok(Zeroizing::new(bytes))
}

fn storage_err(e: impl std::fmt::Display) -> Error {
    Error::internal(e.to_string())
}

/// Render init's keys as Vault does: hex and base64 lists.
pub fn init_response(result: &InitResult) -> Value {
    let hex_keys: Vec<String> = result.keys.iter().map(hex::encode).collect();
    let b64_keys: Vec<String> = result.keys.iter().map(|k| B64.encode(k.as_slice())).collect();
    json!({
        "keys": hex_keys,
        "keys_base64": b64_keys,
        "root_token": result.root_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_config_checks_follow_vault() {
        assert!(check_seal_config(5, 3).is_ok());
        assert!(check_seal_config(1, 1).is_ok());
        assert!(check_seal_config(0, 1).is_err());
        assert!(check_seal_config(3, 1).is_err());
        assert!(check_seal_config(3, 4).is_err());
        assert!(check_seal_config(256, 3).is_err());
    }

    #[test]
    fn keys_decode_from_hex_and_base64() {
        let raw = [7u8; 33];
        assert_eq!(decode_key(&hex::encode(raw)).unwrap().as_slice(), &raw);
        assert_eq!(decode_key(&B64.encode(raw)).unwrap().as_slice(), &raw);
        assert!(decode_key("not a key!").is_err());
        assert!(decode_key(&hex::encode([1u8; 8])).is_err());
    }
}
