//! Vault's rekey of the unseal key (`sys/rekey/init`, `sys/rekey/update`,
//! `sys/rekey/verify`): a threshold of the current shares proves the caller
//! may, then a new unseal key is made and handed out as new shares (with a
//! new share count and threshold if asked). Only the unseal key changes: the
//! root key is sealed again under the new unseal key, and the keyring (sealed
//! by the root key) and everything behind the barrier stay as they are.
//!
//! With `require_verification` the new shares are handed out first and take
//! effect only once a threshold of them is entered on `sys/rekey/verify`, so
//! an operator who lost the answer still has the old shares.
//!
//! The attempt lives in memory (as in Vault): a seal or a restart forgets it.
//! Applying it writes the root key sealed under the new unseal key and the
//! new seal configuration; a record of both (`core/rekey-pending`) written
//! first lets [`recover_pending`] finish or drop a rekey that a crash cut in
//! the middle, so the stored root key and seal configuration always agree.

use super::static_seal::Purpose;
use super::{
    Node, RECOVERY_KEY_KEY, ROOT_KEY_KEY, SEAL_CONFIG_KEY, SealConfig, SealType, State, check_seal_config, storage_err,
};
use crate::core::shamir;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::storage::barrier::{self, KEY_LEN};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// Written before a rekey's two writes, deleted after them (outside the
/// barrier, like the seal configuration).
pub const REKEY_PENDING_KEY: &str = "core/rekey-pending";

/// Vault's bounds on a share's length (AES-128 to AES-256 keys, plus the
/// one byte a Shamir share adds), with its texts.
const MIN_KEY_LEN: usize = 16;
const MAX_KEY_LEN: usize = KEY_LEN + 1;

/// A rekey attempt in progress.
pub(super) struct Rekey {
    /// The new share count and threshold.
    config: SealConfig,
    nonce: String,
    require_verification: bool,
    /// Current shares entered so far.
    progress: Vec<Zeroizing<Vec<u8>>>,
    /// Once the new shares are out and verification is required.
    verification: Option<Verification>,
}

struct Verification {
    nonce: String,
    new_key: Zeroizing<[u8; KEY_LEN]>,
    /// New shares entered so far.
    progress: Vec<Zeroizing<Vec<u8>>>,
}

/// What `sys/rekey/init` (PUT) takes.
pub struct RekeyRequest {
    pub secret_shares: i64,
    pub secret_threshold: i64,
    pub require_verification: bool,
}

#[derive(Serialize, Deserialize)]
struct Pending {
    config: SealConfig,
    /// The root key sealed under the new unseal key, base64.
    sealed_root: String,
}

impl Node {
    fn rekey_lock(&self) -> std::sync::MutexGuard<'_, Option<Rekey>> {
        self.rekey.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current seal configuration, or the error Vault gives while sealed
    /// (503) or uninitialised (400).
    pub(super) fn unsealed_config(&self) -> Result<SealConfig> {
        match &*self.state() {
            State::Unsealed { config, .. } => Ok(*config),
            State::Uninitialized => Err(Error::bad("server is not yet initialized")),
            State::Sealed { .. } => Err(Error::Sealed),
            // Standbys forward the rekey paths; one that raced a demotion.
            State::Standby { .. } => Err(Error::Http(503, "this node is a standby".into())),
        }
    }

    /// `GET sys/rekey/init`: the attempt's configuration and progress.
    pub fn rekey_status(&self) -> Result<Value> {
        let current = self.unsealed_config()?;
        let rekey = self.rekey_lock();
        Ok(status_json(rekey.as_ref(), current))
    }

    /// `PUT sys/rekey/init`: start an attempt (one at a time). Serialised
    /// with seal, so an attempt never outlives the seal that forgets it.
    pub async fn rekey_init(&self, request: &RekeyRequest) -> Result<Value> {
        if request.secret_threshold > request.secret_shares {
            return Err(Error::bad("provided threshold greater than the total shares"));
        }
        let config = check_seal_config(request.secret_shares, request.secret_threshold)
            .map_err(|e| Error::bad(format!("invalid rekey seal configuration: {e}")))?;
        let _t = self.transition.lock().await;
        let current = self.unsealed_config()?;
        if current.seal_type == SealType::Static {
            return Err(Error::bad(
                "rekeying is not supported with a static seal: the static key seals the root key (rotate it with current_key and previous_key), and recovery keys cannot be rekeyed",
            ));
        }
        let mut rekey = self.rekey_lock();
        if rekey.is_some() {
            return Err(Error::bad("rekey already in progress"));
        }
        *rekey = Some(Rekey {
            config,
            nonce: uuid::Uuid::new_v4().to_string(),
            require_verification: request.require_verification,
            progress: Vec::new(),
            verification: None,
        });
        tracing::info!(
            shares = config.secret_shares,
            threshold = config.secret_threshold,
            verification_required = request.require_verification,
            "rekey initialized"
        );
        Ok(status_json(rekey.as_ref(), current))
    }

    /// `DELETE sys/rekey/init`: forget the attempt (none is fine).
    pub fn rekey_cancel(&self) -> Result<()> {
        self.unsealed_config()?;
        *self.rekey_lock() = None;
        Ok(())
    }

    /// `PUT sys/rekey/update`: one current share. Below the threshold it
    /// answers the status; at the threshold the new shares.
    pub async fn rekey_update(&self, key: &str, nonce: &str) -> Result<Value> {
        let key = decode_share(key)?;
        // Serialised with seal, unseal and rotate: the stored root key and
        // the node's state change together.
        let _t = self.transition.lock().await;
        let current = self.unsealed_config()?;
        let (shares, config, nonce, require_verification) = {
            let mut guard = self.rekey_lock();
            let rekey = guard
                .as_mut()
                .ok_or_else(|| Error::bad("no barrier rekey in progress"))?;
            if let Some(v) = &rekey.verification {
                return Err(Error::bad(format!(
                    "rekey operation already finished; verification must be performed; nonce for the verification operation is {:?}",
                    v.nonce
                )));
            }
            let words = ("rekey", "generation");
            let Some(shares) = add_share(&mut rekey.progress, &rekey.nonce, nonce, key, current, words)? else {
                return Ok(status_json(Some(rekey), current));
            };
            (shares, rekey.config, rekey.nonce.clone(), rekey.require_verification)
        };
        let root_key = self.open_root_key_with(&current, &shares).await?;

        let new_key = barrier::random_key();
        let new_shares = split(&new_key, config)?;
        let mut answer = json!({
            "nonce": nonce,
            "complete": true,
            "keys": new_shares.iter().map(hex::encode).collect::<Vec<_>>(),
            "keys_base64": new_shares.iter().map(|k| B64.encode(k.as_slice())).collect::<Vec<_>>(),
            "pgp_fingerprints": null,
            "backup": false,
            "verification_required": require_verification,
        });
        if require_verification {
            let verification_nonce = uuid::Uuid::new_v4().to_string();
            let mut guard = self.rekey_lock();
            let rekey = guard
                .as_mut()
                .filter(|r| r.nonce == nonce)
                .ok_or_else(|| Error::bad("no barrier rekey in progress"))?;
            rekey.verification = Some(Verification {
                nonce: verification_nonce.clone(),
                new_key,
                progress: Vec::new(),
            });
            answer["verification_nonce"] = json!(verification_nonce);
            tracing::info!("rekey: new shares handed out; they take effect once verified");
            return Ok(answer);
        }
        self.apply_rekey(&root_key, &new_key, config).await?;
        *self.rekey_lock() = None;
        Ok(answer)
    }

    /// `GET sys/rekey/verify`: the verification's progress.
    pub fn rekey_verify_status(&self) -> Result<Value> {
        self.unsealed_config()?;
        let rekey = self.rekey_lock();
        let rekey = rekey
            .as_ref()
            .ok_or_else(|| Error::bad("no rekey configuration found"))?;
        Ok(verify_status_json(rekey))
    }

    /// `DELETE sys/rekey/verify`: start the verification over, with a new
    /// nonce.
    pub fn rekey_verify_restart(&self) -> Result<Value> {
        self.unsealed_config()?;
        {
            let mut rekey = self.rekey_lock();
            if let Some(v) = rekey.as_mut().and_then(|r| r.verification.as_mut()) {
                v.progress.clear();
                v.nonce = uuid::Uuid::new_v4().to_string();
            }
        }
        self.rekey_verify_status()
    }

    /// `PUT sys/rekey/verify`: one new share. At the threshold the new
    /// shares replace the old ones.
    pub async fn rekey_verify(&self, key: &str, nonce: &str) -> Result<Value> {
        let key = decode_share(key)?;
        let _t = self.transition.lock().await;
        self.unsealed_config()?;
        let (config, new_key, shares, verification_nonce) = {
            let mut guard = self.rekey_lock();
            let rekey = guard.as_mut().ok_or_else(|| Error::bad("no rekey in progress"))?;
            let config = rekey.config;
            let v = rekey
                .verification
                .as_mut()
                .ok_or_else(|| Error::bad("no rekey verification in progress"))?;
            // Whatever the outcome, this round's shares are used up; a
            // failed round gets a new nonce (Vault's behaviour).
            let words = ("verify", "verify");
            let Some(shares) = add_share(&mut v.progress, &v.nonce, nonce, key, config, words)? else {
                return Ok(verify_status_json(rekey));
            };
            (config, v.new_key.clone(), shares, v.nonce.clone())
        };
        let matches = combine(&config, &shares).is_ok_and(|k| k.as_slice() == new_key.as_slice());
        if !matches {
            if let Some(v) = self.rekey_lock().as_mut().and_then(|r| r.verification.as_mut()) {
                v.nonce = uuid::Uuid::new_v4().to_string();
            }
            return Err(Error::bad("rekey verification failed; incorrect key shares supplied"));
        }
        // The root key the node was unsealed with (the keyring's); only the
        // key sealing it changes.
        let root_key = match &*self.state() {
            State::Unsealed { root_key, .. } => root_key.clone(),
            _ => return Err(Error::Sealed),
        };
        self.apply_rekey(&root_key, &new_key, config).await?;
        *self.rekey_lock() = None;
        Ok(json!({ "nonce": verification_nonce, "complete": true }))
    }

    /// The root key that a threshold of current shares opens, or Vault's
    /// 400 "root key verification failed". With a static seal the shares
    /// make the recovery key, which must equal the stored one; the seal's
    /// key then opens the root key.
    pub(super) async fn open_root_key_with(
        &self,
        config: &SealConfig,
        shares: &[Zeroizing<Vec<u8>>],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        if config.seal_type == SealType::Static {
            let seal = self
                .seal
                .as_ref()
                .ok_or_else(|| Error::internal("the storage has a static seal but none is configured"))?;
            let candidate =
                combine(config, shares).map_err(|e| Error::bad(format!("recovery key verification failed: {e}")))?;
            let stored = self.open_sealed(seal, RECOVERY_KEY_KEY, Purpose::RecoveryKey).await?;
            if !crate::core::constant_time_eq(candidate.as_slice(), stored.secret.as_slice()) {
                return Err(Error::bad(
                    "recovery key verification failed: the key shares do not make the recovery key",
                ));
            }
            return self.sealed_root_key(seal).await;
        }
        let unseal_key =
            combine(config, shares).map_err(|e| Error::bad(format!("root key verification failed: {e}")))?;
        let sealed_root = self.read_sealed_root().await?;
        barrier::open_root_key(&unseal_key, &sealed_root).map_err(|_| {
            Error::bad(
                "root key verification failed: the key shares do not open the root key (message authentication failed)",
            )
        })
    }

    async fn read_sealed_root(&self) -> Result<Vec<u8>> {
        self.physical
            .get(ROOT_KEY_KEY)
            .await
            .map_err(storage_err)?
            .ok_or_else(|| Error::internal("storage holds a seal configuration but no root key"))
    }

    /// Seal the root key under `new_key` and store it with the new seal
    /// configuration; the node's state takes the new configuration.
    async fn apply_rekey(&self, root_key: &[u8; KEY_LEN], new_key: &[u8; KEY_LEN], config: SealConfig) -> Result<()> {
        let sealed_root = barrier::seal_root_key(new_key, root_key).map_err(|e| Error::internal(e.to_string()))?;
        let pending = Pending {
            config,
            sealed_root: B64.encode(&sealed_root),
        };
        let pending = serde_json::to_vec(&pending).map_err(|e| Error::internal(e.to_string()))?;
        let config_json = serde_json::to_vec(&config).map_err(|e| Error::internal(e.to_string()))?;
        let fail = |e: crate::storage::StorageError| Error::internal(format!("failed to perform barrier rekey: {e}"));
        self.physical.put(REKEY_PENDING_KEY, &pending).await.map_err(fail)?;
        self.physical.put(ROOT_KEY_KEY, &sealed_root).await.map_err(fail)?;
        self.physical.put(SEAL_CONFIG_KEY, &config_json).await.map_err(fail)?;
        self.physical.delete(REKEY_PENDING_KEY).await.map_err(fail)?;
        if let State::Unsealed { config: c, .. } = &mut *self.state() {
            *c = config;
        }
        tracing::info!(
            shares = config.secret_shares,
            threshold = config.secret_threshold,
            "rekeyed: the root key is sealed under a new unseal key; the old shares no longer open it"
        );
        Ok(())
    }
}

/// At start-up: a rekey that a crash cut between its writes. If the root
/// key under the new unseal key was written, the new configuration is too
/// (roll forward: the new shares open it); otherwise nothing was changed and
/// the record goes (roll back: the old shares still open it).
pub(super) async fn recover_pending(physical: &Storage) -> anyhow::Result<()> {
    let Some(bytes) = physical.get(REKEY_PENDING_KEY).await? else {
        return Ok(());
    };
    let pending: Pending = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("storage is corrupt: {REKEY_PENDING_KEY} cannot be read ({e})"))?;
    let sealed_root = B64
        .decode(&pending.sealed_root)
        .map_err(|e| anyhow::anyhow!("storage is corrupt: {REKEY_PENDING_KEY} holds no root key ({e})"))?;
    if physical.get(ROOT_KEY_KEY).await?.as_deref() == Some(sealed_root.as_slice()) {
        physical
            .put(SEAL_CONFIG_KEY, &serde_json::to_vec(&pending.config)?)
            .await?;
        tracing::warn!("a rekey was interrupted after its new root key was stored: finished (the new shares apply)");
    } else {
        tracing::warn!("a rekey was interrupted before it changed anything: dropped (the old shares still apply)");
    }
    physical.delete(REKEY_PENDING_KEY).await?;
    Ok(())
}

/// Vault's `RekeyStatusResponse`.
fn status_json(rekey: Option<&Rekey>, current: SealConfig) -> Value {
    let mut v = json!({
        "nonce": "",
        "started": false,
        "t": 0,
        "n": 0,
        "progress": 0,
        "required": current.secret_threshold,
        "pgp_fingerprints": null,
        "backup": false,
        "verification_required": false,
    });
    if let Some(r) = rekey {
        v["nonce"] = json!(r.nonce);
        v["started"] = json!(true);
        v["t"] = json!(r.config.secret_threshold);
        v["n"] = json!(r.config.secret_shares);
        v["progress"] = json!(r.progress.len());
        v["verification_required"] = json!(r.require_verification);
        if let Some(ver) = &r.verification {
            v["verification_nonce"] = json!(ver.nonce);
        }
    }
    v
}

/// Vault's `RekeyVerificationStatusResponse`.
fn verify_status_json(rekey: &Rekey) -> Value {
    let (nonce, started, progress) = match &rekey.verification {
        Some(v) => (v.nonce.as_str(), true, v.progress.len()),
        None => ("", false, 0),
    };
    json!({
        "nonce": nonce,
        "started": started,
        "t": rekey.config.secret_threshold,
        "n": rekey.config.secret_shares,
        "progress": progress,
    })
}

/// One share for an attempt whose nonce is `expected`, with Vault's checks
/// and words (`words`: the operation the nonce error names, and the one a
/// share given twice names). At the threshold of `config` the shares are
/// taken out (as in Vault they are used once, whatever comes of them);
/// below it, None.
pub(super) fn add_share(
    progress: &mut Vec<Zeroizing<Vec<u8>>>,
    expected: &str,
    nonce: &str,
    key: Zeroizing<Vec<u8>>,
    config: SealConfig,
    words: (&str, &str),
) -> Result<Option<Vec<Zeroizing<Vec<u8>>>>> {
    let (operation, repeated) = words;
    if config.secret_threshold == 0 {
        return Err(Error::bad(
            "this node has no recovery keys (init made none), so none can authorise this",
        ));
    }
    if nonce != expected {
        return Err(Error::bad(format!(
            "incorrect nonce supplied; nonce for this {operation} operation is {expected:?}"
        )));
    }
    if progress.iter().any(|s| s.as_slice() == key.as_slice()) {
        return Err(Error::bad(format!(
            "given key has already been provided during this {repeated} operation"
        )));
    }
    progress.push(key);
    if progress.len() < config.secret_threshold as usize {
        return Ok(None);
    }
    Ok(Some(std::mem::take(progress)))
}

/// A share as Vault reads it: hex if it is hex of a plausible length,
/// base64 otherwise.
pub(super) fn decode_share(key: &str) -> Result<Zeroizing<Vec<u8>>> {
    if key.is_empty() {
        return Err(Error::bad("'key' must be specified in request body as JSON"));
    }
    let bytes = match hex::decode(key) {
        Ok(b) if (MIN_KEY_LEN..=MAX_KEY_LEN).contains(&b.len()) => b,
        _ => B64
            .decode(key)
            .map_err(|_| Error::bad("'key' must be a valid hex or base64 string"))?,
    };
    if bytes.len() < MIN_KEY_LEN {
        return Err(Error::bad(format!("key is shorter than minimum {MIN_KEY_LEN} bytes")));
    }
    if bytes.len() > MAX_KEY_LEN {
        return Err(Error::bad(format!("key is longer than maximum {MAX_KEY_LEN} bytes")));
    }
    Ok(Zeroizing::new(bytes))
}

/// The key that `shares` of a split under `config` make.
fn combine(
    config: &SealConfig,
    shares: &[Zeroizing<Vec<u8>>],
) -> std::result::Result<Zeroizing<[u8; KEY_LEN]>, String> {
    let combined: Zeroizing<Vec<u8>> = if config.secret_threshold == 1 {
        shares.first().cloned().unwrap_or_default()
    } else {
        let raw: Vec<Vec<u8>> = shares.iter().map(|s| s.to_vec()).collect();
        let combined = shamir::combine(&raw).map_err(|e| e.to_string());
        for mut r in raw {
            zeroize::Zeroize::zeroize(&mut r);
        }
        Zeroizing::new(combined?)
    };
    let key: [u8; KEY_LEN] = combined
        .as_slice()
        .try_into()
        .map_err(|_| "the key shares do not combine into a 256-bit key".to_string())?;
    Ok(Zeroizing::new(key))
}

/// `key` as the shares of `config` (the key itself for one share).
pub(super) fn split(key: &[u8; KEY_LEN], config: SealConfig) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    if config.secret_shares == 1 {
        return Ok(vec![Zeroizing::new(key.to_vec())]);
    }
    Ok(shamir::split(key, config.secret_shares, config.secret_threshold)
        .map_err(|e| Error::internal(format!("failed to generate shares: {e}")))?
        .into_iter()
        .map(Zeroizing::new)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crash between the rekey's writes: the next start rolls forward if
    /// the new root key is stored, and back otherwise; the record goes.
    #[tokio::test]
    async fn an_interrupted_rekey_is_finished_or_dropped_at_start() {
        let physical: Storage = std::sync::Arc::new(crate::storage::MemoryBackend::new());
        let old = SealConfig {
            secret_shares: 5,
            secret_threshold: 3,
            seal_type: SealType::Shamir,
        };
        let new = SealConfig {
            secret_shares: 3,
            secret_threshold: 2,
            seal_type: SealType::Shamir,
        };
        let config_of = |p: &Storage| {
            let p = p.clone();
            async move { serde_json::from_slice::<SealConfig>(&p.get(SEAL_CONFIG_KEY).await.unwrap().unwrap()).unwrap() }
        };
        let pending = serde_json::to_vec(&Pending {
            config: new,
            sealed_root: B64.encode(b"new sealed root"),
        })
        .unwrap();
        physical
            .put(SEAL_CONFIG_KEY, &serde_json::to_vec(&old).unwrap())
            .await
            .unwrap();

        // The root key was not written yet: dropped.
        physical.put(ROOT_KEY_KEY, b"old sealed root").await.unwrap();
        physical.put(REKEY_PENDING_KEY, &pending).await.unwrap();
        recover_pending(&physical).await.unwrap();
        assert_eq!(config_of(&physical).await, old);
        assert!(physical.get(REKEY_PENDING_KEY).await.unwrap().is_none());

        // The root key was written, the configuration not: finished.
        physical.put(ROOT_KEY_KEY, b"new sealed root").await.unwrap();
        physical.put(REKEY_PENDING_KEY, &pending).await.unwrap();
        recover_pending(&physical).await.unwrap();
        assert_eq!(config_of(&physical).await, new);
        assert!(physical.get(REKEY_PENDING_KEY).await.unwrap().is_none());
        // Nothing pending: nothing changes.
        recover_pending(&physical).await.unwrap();
        assert_eq!(config_of(&physical).await, new);
    }

    #[test]
    fn shares_decode_as_vault_reads_them() {
        let raw = [9u8; 33];
        assert_eq!(decode_share(&hex::encode(raw)).unwrap().as_slice(), &raw);
        assert_eq!(decode_share(&B64.encode(raw)).unwrap().as_slice(), &raw);
        let err = |k: &str| decode_share(k).unwrap_err().to_string();
        assert_eq!(err(""), "'key' must be specified in request body as JSON");
        assert_eq!(err("!!"), "'key' must be a valid hex or base64 string");
        assert_eq!(err(&hex::encode([1u8; 8])), "key is shorter than minimum 16 bytes");
        assert_eq!(err(&B64.encode([1u8; 40])), "key is longer than maximum 33 bytes");
    }

    #[test]
    fn a_split_combines_back_and_one_share_is_the_key() {
        let key = barrier::random_key();
        let config = SealConfig {
            secret_shares: 5,
            secret_threshold: 3,
            seal_type: SealType::Shamir,
        };
        let shares = split(&key, config).unwrap();
        assert_eq!(shares.len(), 5);
        assert_eq!(*combine(&config, &shares[1..4]).unwrap(), *key);
        let one = SealConfig {
            secret_shares: 1,
            secret_threshold: 1,
            seal_type: SealType::Shamir,
        };
        let shares = split(&key, one).unwrap();
        assert_eq!(shares[0].as_slice(), key.as_slice());
        assert_eq!(*combine(&one, &shares).unwrap(), *key);
    }
}
