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
//! With HA (PostgreSQL storage, `ha_enabled`), unsealing makes a *standby*:
//! the keys are checked and kept, but no core runs until the election loop
//! (`crate::ha`) takes the lock and calls [`Node::promote`]; losing the
//! lock calls [`Node::demote`], which stops the core and keeps the keys.
//!
//! With a `seal "static"` stanza ([`static_seal`]) the root key is sealed
//! by the operator's static key instead: the node unseals itself at start
//! (and right after init), and the shares handed out are *recovery* shares,
//! which authorise root token generation and unsealing a node sealed by
//! hand but decrypt nothing.
//!
//! Physical keys outside the barrier (never encrypted by it, so readable while
//! sealed): `core/seal-config` (shares and threshold, and the seal type,
//! written last by init so that a crash during init leaves the node
//! uninitialised), `core/root-key`, `core/keyring`, and with a static seal
//! `core/recovery-key`.

mod generate_root;
mod rekey;
pub mod static_seal;

pub use generate_root::{GenerateRootStatus, decode_token as decode_root_token};
pub use rekey::RekeyRequest;
pub use static_seal::StaticSeal;

use crate::core::{Core, shamir};
use crate::error::{Error, Result};
use crate::framework::Registry;
use crate::runtime::Runtime;
use crate::storage::barrier::{self, Barrier, KEY_LEN};
use crate::storage::locality::{LocalStorage, Locality};
use crate::storage::{Backend, Storage, layout};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

pub const SEAL_CONFIG_KEY: &str = layout::SEAL_CONFIG;
pub const ROOT_KEY_KEY: &str = layout::ROOT_KEY;
pub const KEYRING_KEY: &str = layout::KEYRING;
pub const RECOVERY_KEY_KEY: &str = layout::RECOVERY_KEY;

/// The node's local storage (`PathsSpecial.LocalStorage`): the seal's keys
/// belong to this node (a performance secondary has its own seal), and so
/// do the cluster's id and TLS identity.
pub const LOCAL_STORAGE: LocalStorage = &[
    SEAL_CONFIG_KEY,
    ROOT_KEY_KEY,
    KEYRING_KEY,
    RECOVERY_KEY_KEY,
    layout::CLUSTER_INFO,
];

/// The cluster's id and TLS identity, as stored.
#[derive(Serialize, Deserialize)]
struct ClusterInfo {
    id: String,
    tls: crate::ha::cluster_tls::Stored,
}

/// The shares people hold: unseal shares (Shamir), or with a static seal
/// recovery shares (0 of them when init was asked for none, as OpenBao).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealConfig {
    pub secret_shares: u8,
    pub secret_threshold: u8,
    /// Absent in what earlier versions stored: Shamir.
    #[serde(default, skip_serializing_if = "SealType::is_shamir")]
    pub seal_type: SealType,
}

/// How the root key is kept.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SealType {
    /// Under the unseal key, which exists only as the operators' shares.
    #[default]
    Shamir,
    /// Under the `seal "static"` key (auto-unseal).
    Static,
}

impl SealType {
    fn is_shamir(&self) -> bool {
        *self == SealType::Shamir
    }

    /// Vault's name (seal-status `type`).
    pub fn name(self) -> &'static str {
        match self {
            SealType::Shamir => "shamir",
            SealType::Static => "static",
        }
    }
}

/// What `sys/init` takes: unseal shares for a Shamir seal, recovery shares
/// for a static one (whose `secret_*` Vault forces to one stored key).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InitRequest {
    pub secret_shares: i64,
    pub secret_threshold: i64,
    pub recovery_shares: i64,
    pub recovery_threshold: i64,
}

impl InitRequest {
    /// A Shamir init with `shares` and `threshold`.
    pub fn shamir(shares: i64, threshold: i64) -> InitRequest {
        InitRequest {
            secret_shares: shares,
            secret_threshold: threshold,
            ..InitRequest::default()
        }
    }
}

enum State {
    Uninitialized,
    Sealed {
        config: SealConfig,
        /// Shares entered so far (wiped when dropped).
        shares: Vec<Zeroizing<Vec<u8>>>,
        nonce: String,
    },
    /// HA: unsealed, not active (no core; requests are forwarded).
    Standby {
        config: SealConfig,
        root_key: Zeroizing<[u8; KEY_LEN]>,
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
    /// Unseal shares (none with a static seal).
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// Recovery shares (a static seal).
    pub recovery_keys: Vec<Zeroizing<Vec<u8>>>,
    pub root_token: String,
}

pub struct Node {
    physical: Storage,
    /// The same storage without HA fencing: init's writes (no node holds
    /// the lock before the cluster has keys). Equal to `physical` without HA.
    unfenced: Storage,
    /// HA, when the storage has it on.
    ha: Option<Arc<crate::ha::Ha>>,
    /// The cluster's id once read or made (stable across restarts).
    cluster_id: Mutex<Option<String>>,
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
    /// The `seal "static"` keys, when configured (auto-unseal).
    seal: Option<Arc<StaticSeal>>,
    /// Sealed by `sys/seal`: a static seal does not unseal it again until
    /// recovery shares are given or the process restarts (Vault's rule).
    sealed_by_hand: AtomicBool,
    /// The last auto-unseal failure logged (the HA loop retries; the same
    /// failure is logged once).
    auto_unseal_failure: Mutex<Option<String>>,
}

impl Node {
    /// A node over `physical`; reads whether it was initialised.
    pub async fn open(
        physical: Storage,
        storage_type: &'static str,
        runtime: Arc<Runtime>,
        engines: Arc<Registry>,
    ) -> anyhow::Result<Arc<Node>> {
        Node::open_ha(physical, storage_type, runtime, engines, None, None).await
    }

    /// A node over `physical`, with HA when `ha` is given (`ha.1`: the
    /// storage without fencing, for init), and auto-unseal with `seal`.
    /// Storage initialised under another kind of seal than `seal` is an
    /// error (migrating between seals is not supported).
    pub async fn open_ha(
        physical: Storage,
        storage_type: &'static str,
        runtime: Arc<Runtime>,
        engines: Arc<Registry>,
        ha: Option<(Arc<crate::ha::Ha>, Storage)>,
        seal: Option<Arc<StaticSeal>>,
    ) -> anyhow::Result<Arc<Node>> {
        // With HA, only the active node may write: a rekey a crash cut
        // short is settled at promotion instead.
        if ha.is_none() {
            rekey::recover_pending(&physical).await?;
        }
        let (ha, unfenced) = match ha {
            Some((ha, unfenced)) => (Some(ha), unfenced),
            None => (None, physical.clone()),
        };
        let stored = read_seal_config(&physical).await?;
        if let Some(config) = &stored {
            check_seal_type(config, seal.is_some()).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let state = match stored {
            None => State::Uninitialized,
            Some(config) => State::Sealed {
                config,
                shares: Vec::new(),
                nonce: String::new(),
            },
        };
        Ok(Arc::new(Node {
            physical,
            unfenced,
            ha,
            cluster_id: Mutex::new(None),
            storage_type,
            runtime,
            engines,
            state: Mutex::new(state),
            transition: tokio::sync::Mutex::new(()),
            rekey: Mutex::new(None),
            generate_root: Mutex::new(None),
            seal,
            sealed_by_hand: AtomicBool::new(false),
            auto_unseal_failure: Mutex::new(None),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running core, or the 503 Vault gives while sealed.
    pub fn core(&self) -> Result<Arc<Core>> {
        match &*self.state() {
            State::Unsealed { core, .. } => Ok(core.clone()),
            // A request that raced a demotion (standbys forward the rest).
            State::Standby { .. } => Err(Error::Http(
                503,
                "this node is a standby: the request could not be forwarded to the active node".into(),
            )),
            _ => Err(Error::Sealed),
        }
    }

    /// A node that started before another node of its HA cluster
    /// initialised the shared storage learns of it (on unseal, and from the
    /// election loop while it waits).
    pub async fn reread_initialized(&self) {
        if self.ha.is_none() || self.initialized() {
            return;
        }
        if let Ok(Some(config)) = read_seal_config(&self.unfenced).await {
            if let Err(e) = check_seal_type(&config, self.seal.is_some()) {
                self.log_auto_unseal_failure(&e.to_string());
                return;
            }
            let mut state = self.state();
            if matches!(&*state, State::Uninitialized) {
                *state = State::Sealed {
                    config,
                    shares: Vec::new(),
                    nonce: String::new(),
                };
            }
        }
    }

    /// A standby that unsealed before any node had made the cluster's id
    /// and TLS identity reads them once they exist (from the election loop).
    pub async fn reread_cluster_info(&self) {
        if self.cluster_id.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            return;
        }
        let root_key = match &*self.state() {
            State::Standby { root_key, .. } => root_key.clone(),
            _ => return,
        };
        if let Ok(barrier) = self.open_barrier(&root_key).await {
            self.read_cluster_info(&barrier, self.ha.as_ref()).await;
        }
    }

    /// The physical storage (what replication asks of PostgreSQL).
    pub fn physical(&self) -> &Storage {
        &self.physical
    }

    /// The storage's type name (`sqlite`, `postgresql`, `inmem`).
    pub fn storage_type(&self) -> &'static str {
        self.storage_type
    }

    /// The barrier of the running core (the node's own keys), or the 503
    /// of a sealed node.
    pub fn barrier(&self) -> Result<Arc<Barrier>> {
        match &*self.state() {
            State::Unsealed { barrier, .. } => Ok(barrier.clone()),
            _ => Err(Error::Sealed),
        }
    }

    /// The cluster's id, once known.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// HA, when on.
    pub fn ha(&self) -> Option<&Arc<crate::ha::Ha>> {
        self.ha.as_ref()
    }

    /// This node's part in HA now.
    pub fn ha_role(&self) -> crate::ha::Role {
        match &*self.state() {
            State::Unsealed { .. } => crate::ha::Role::Active,
            State::Standby { .. } => crate::ha::Role::Standby,
            _ => crate::ha::Role::Sealed,
        }
    }

    /// HA: an unsealed node that is not active.
    pub fn standby(&self) -> bool {
        matches!(&*self.state(), State::Standby { .. })
    }

    /// The election loop took the lock: start the core over the current
    /// keyring (the active node may have rotated it), settling what the
    /// previous active node left (a cut rekey, write-ahead records, lease
    /// timers: `Core::start`).
    pub async fn promote(&self) -> Result<()> {
        let _t = self.transition.lock().await;
        let (config, root_key) = match &*self.state() {
            State::Standby { config, root_key } => (*config, root_key.clone()),
            _ => return Err(Error::internal("only an unsealed standby can become active")),
        };
        rekey::recover_pending(&self.physical)
            .await
            .map_err(|e| Error::internal(format!("settling an interrupted rekey: {e}")))?;
        self.start_core(config, root_key).await
    }

    /// The lock is lost or given up: stop the core, keep the keys.
    pub async fn demote(&self) {
        let _t = self.transition.lock().await;
        let core = {
            let mut state = self.state();
            let State::Unsealed { config, root_key, .. } = &*state else {
                return;
            };
            let standby = State::Standby {
                config: *config,
                root_key: root_key.clone(),
            };
            match std::mem::replace(&mut *state, standby) {
                State::Unsealed { core, .. } => core,
                _ => return,
            }
        };
        core.stop().await;
        tracing::info!("now a standby");
    }

    pub fn initialized(&self) -> bool {
        !matches!(&*self.state(), State::Uninitialized)
    }

    pub fn sealed(&self) -> bool {
        matches!(&*self.state(), State::Uninitialized | State::Sealed { .. })
    }

    /// `sys/init`: only once. `root_token` is the dev mode's chosen token.
    /// With a static seal the node unseals itself at once, as Vault's.
    pub async fn init(&self, request: InitRequest, root_token: Option<String>) -> Result<InitResult> {
        let _t = self.transition.lock().await;
        if self.initialized() || read_seal_config(&self.unfenced).await.map_err(storage_err)?.is_some() {
            return Err(Error::bad("Vault is already initialized"));
        }
        let config = self.init_config(&request)?;

        let root_key = barrier::random_key();
        let keyring = barrier::Keyring::new();
        let sealed_keyring = barrier::seal_keyring(&root_key, &keyring).map_err(|e| Error::internal(e.to_string()))?;
        // The key the shares make: the unseal key, or a static seal's
        // recovery key (none when no recovery shares were asked for).
        let human_key = barrier::random_key();
        let shares = if config.secret_shares == 0 {
            Vec::new()
        } else {
            rekey::split(&human_key, config)?
        };
        let (sealed_root, sealed_recovery) = match &self.seal {
            None => (
                barrier::seal_root_key(&human_key, &root_key).map_err(|e| Error::internal(e.to_string()))?,
                None,
            ),
            Some(seal) => {
                let sealed = |purpose, secret: &[u8]| {
                    seal.seal(purpose, secret)
                        .map_err(|e| Error::internal(format!("sealing with the static key: {e:#}")))
                };
                let recovery = match config.secret_shares {
                    0 => None,
                    _ => Some(sealed(static_seal::Purpose::RecoveryKey, &human_key[..])?),
                };
                (sealed(static_seal::Purpose::RootKey, &root_key[..])?, recovery)
            }
        };
        let root_token = root_token.unwrap_or_else(crate::core::token::generate);

        // Keyring and root key first, the seal config last: until it is
        // written the node counts as uninitialised and init can run again.
        self.unfenced
            .put(KEYRING_KEY, &sealed_keyring)
            .await
            .map_err(storage_err)?;
        self.unfenced
            .put(ROOT_KEY_KEY, &sealed_root)
            .await
            .map_err(storage_err)?;
        if let Some(recovery) = &sealed_recovery {
            self.unfenced
                .put(RECOVERY_KEY_KEY, recovery)
                .await
                .map_err(storage_err)?;
        }
        let barrier = Barrier::new(self.unfenced.clone(), keyring);
        crate::core::token::store_root(&barrier, &root_token).await?;
        let config_json = serde_json::to_vec(&config).map_err(|e| Error::internal(e.to_string()))?;
        self.unfenced
            .put(SEAL_CONFIG_KEY, &config_json)
            .await
            .map_err(storage_err)?;

        *self.state() = State::Sealed {
            config,
            shares: Vec::new(),
            nonce: String::new(),
        };
        tracing::info!(
            seal = config.seal_type.name(),
            shares = config.secret_shares,
            threshold = config.secret_threshold,
            "initialized: root key, keyring and seal configuration stored"
        );
        let (keys, recovery_keys) = match config.seal_type {
            SealType::Shamir => (shares, Vec::new()),
            SealType::Static => {
                self.open_root(config, root_key).await?;
                (Vec::new(), shares)
            }
        };
        Ok(InitResult {
            keys,
            recovery_keys,
            root_token,
        })
    }

    /// The seal configuration `request` asks for, with Vault's checks for
    /// this node's kind of seal.
    fn init_config(&self, request: &InitRequest) -> Result<SealConfig> {
        if self.seal.is_none() {
            let mut recovery = Vec::new();
            if request.recovery_shares != 0 {
                recovery.push("recovery_shares");
            }
            if request.recovery_threshold != 0 {
                recovery.push("recovery_threshold");
            }
            if !recovery.is_empty() {
                return Err(Error::bad(format!(
                    "parameters {} not applicable to seal type shamir",
                    recovery.join(",")
                )));
            }
            return check_seal_config(request.secret_shares, request.secret_threshold);
        }
        // Vault stores one key for an auto seal whatever secret_* say.
        if !matches!(request.secret_shares, 0 | 1) || !matches!(request.secret_threshold, 0 | 1) {
            tracing::warn!("init: a static seal stores one key; secret_shares and secret_threshold are ignored");
        }
        if request.recovery_shares == 0 && request.recovery_threshold == 0 {
            // OpenBao's: no recovery keys at all.
            return Ok(SealConfig {
                secret_shares: 0,
                secret_threshold: 0,
                seal_type: SealType::Static,
            });
        }
        let config = check_seal_config(request.recovery_shares, request.recovery_threshold)
            .map_err(|e| Error::bad(format!("invalid recovery configuration: {e}")))?;
        Ok(SealConfig {
            seal_type: SealType::Static,
            ..config
        })
    }

    /// `sys/unseal`: add one share (hex or base64), or `reset` the progress.
    /// On a node that is already unsealed (one more key holder than the
    /// threshold) it just answers the seal status, as Vault does.
    pub async fn unseal(&self, key: Option<&str>, reset: bool) -> Result<Value> {
        let _t = self.transition.lock().await;
        self.reread_initialized().await;
        // The state lock is taken in this block only: `seal_status` and
        // `open_with` take it again, and a std mutex is not re-entrant.
        let ready = {
            let mut state = self.state();
            match &mut *state {
                State::Uninitialized => return Err(Error::bad("Vault is not initialized")),
                State::Unsealed { .. } | State::Standby { .. } => None,
                State::Sealed { shares, nonce, config } => {
                    if config.seal_type == SealType::Static && config.secret_threshold == 0 && !reset {
                        return Err(Error::bad(
                            "this node has no recovery keys (init made none): restart it to unseal it with its static key",
                        ));
                    }
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
    /// and start the core over the barrier. With a static seal the shares
    /// are recovery shares: checked, then the seal's key opens the root key.
    async fn open_with(&self, config: &SealConfig, shares: &[Zeroizing<Vec<u8>>]) -> Result<()> {
        if config.seal_type == SealType::Static {
            let root_key = self.open_root_key_with(config, shares).await?;
            self.sealed_by_hand.store(false, Ordering::SeqCst);
            return self.open_root(*config, root_key).await;
        }
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
        self.open_root(*config, root_key).await
    }

    /// With the root key in hand: a standby (HA) or a running core.
    async fn open_root(&self, config: SealConfig, root_key: Zeroizing<[u8; KEY_LEN]>) -> Result<()> {
        if let Some(ha) = &self.ha {
            // The keys open the keyring (checked here), but the core waits
            // for the lock.
            let barrier = self.open_barrier(&root_key).await?;
            self.read_cluster_info(&barrier, Some(ha)).await;
            *self.state() = State::Standby { config, root_key };
            tracing::info!("unsealed: a standby until it holds the HA lock");
            return Ok(());
        }
        self.start_core(config, root_key).await?;
        tracing::info!("unsealed");
        Ok(())
    }

    /// A static seal: unseal with the seal's key, as at start. Nothing to
    /// do (false) without a static seal, before init, when unsealed, or
    /// after `sys/seal` (Vault's rule: a node sealed by hand stays sealed
    /// until recovery shares are given or it restarts).
    pub async fn auto_unseal(&self) -> Result<bool> {
        let Some(seal) = &self.seal else {
            return Ok(false);
        };
        if self.sealed_by_hand.load(Ordering::SeqCst) {
            return Ok(false);
        }
        // The state is current: read at open, and re-read by the HA loop
        // (`reread_initialized`) just before it calls this.
        let _t = self.transition.lock().await;
        let config = match &*self.state() {
            State::Sealed { config, .. } => *config,
            _ => return Ok(false),
        };
        let root_key = self.sealed_root_key(seal).await?;
        self.open_root(config, root_key).await?;
        *self.auto_unseal_failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
        tracing::info!(key_id = seal.current_key_id(), "unsealed with the static seal");
        Ok(true)
    }

    /// [`Node::auto_unseal`] from a loop that retries: a failure is logged
    /// once until it changes or succeeds.
    pub async fn retry_auto_unseal(&self) {
        if let Err(e) = self.auto_unseal().await {
            self.log_auto_unseal_failure(&e.to_string());
        }
    }

    fn log_auto_unseal_failure(&self, failure: &str) {
        let mut last = self.auto_unseal_failure.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() != Some(failure) {
            tracing::error!(error = %failure, "the node cannot unseal itself");
            *last = Some(failure.to_string());
        }
    }

    /// A value the static seal sealed, opened.
    async fn open_sealed(
        &self,
        seal: &StaticSeal,
        key: &str,
        purpose: static_seal::Purpose,
    ) -> Result<static_seal::Opened> {
        let stored = self
            .physical
            .get(key)
            .await
            .map_err(storage_err)?
            .ok_or_else(|| Error::internal(format!("storage holds a seal configuration but no {key}")))?;
        seal.open(purpose, &stored)
            .map_err(|e| Error::internal(format!("auto-unseal failed: {e:#}")))
    }

    /// The root key, opened with the static seal.
    async fn sealed_root_key(&self, seal: &StaticSeal) -> Result<Zeroizing<[u8; KEY_LEN]>> {
        let opened = self
            .open_sealed(seal, ROOT_KEY_KEY, static_seal::Purpose::RootKey)
            .await?;
        let root_key: [u8; KEY_LEN] = opened
            .secret
            .as_slice()
            .try_into()
            .map_err(|_| Error::internal("the stored root key is not 32 bytes"))?;
        Ok(Zeroizing::new(root_key))
    }

    /// The active node seals again under the current static key what the
    /// previous key sealed (the end of a key rotation).
    async fn reseal_stale(&self) {
        let Some(seal) = &self.seal else {
            return;
        };
        for (key, purpose) in [
            (ROOT_KEY_KEY, static_seal::Purpose::RootKey),
            (RECOVERY_KEY_KEY, static_seal::Purpose::RecoveryKey),
        ] {
            let stored = match self.physical.get(key).await {
                Ok(Some(stored)) => stored,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, key, "could not read a sealed key to reseal it");
                    continue;
                }
            };
            let resealed = match seal.open(purpose, &stored) {
                Ok(opened) if opened.stale => seal.seal(purpose, &opened.secret),
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            match resealed {
                Ok(bytes) => match self.physical.put(key, &bytes).await {
                    Ok(()) => tracing::info!(
                        key,
                        key_id = seal.current_key_id(),
                        "sealed again under the current static key"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, key, "could not store a key sealed under the current static key")
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), key, "could not reseal under the current static key")
                }
            }
        }
    }

    /// The barrier over the stored keyring, opened with `root_key`.
    async fn open_barrier(&self, root_key: &[u8; KEY_LEN]) -> Result<Arc<Barrier>> {
        let sealed_keyring = self
            .physical
            .get(KEYRING_KEY)
            .await
            .map_err(storage_err)?
            .ok_or_else(|| Error::internal("storage holds a seal configuration but no keyring"))?;
        let keyring = barrier::open_keyring(root_key, &sealed_keyring)
            .map_err(|e| Error::internal(format!("the stored keyring cannot be opened: {e}")))?;
        Ok(Arc::new(Barrier::new(self.physical.clone(), keyring)))
    }

    /// The cluster's id and TLS identity as stored, if they are (kept in
    /// this node: the id for seal-status, the identity for forwarding).
    async fn read_cluster_info(&self, barrier: &Barrier, ha: Option<&Arc<crate::ha::Ha>>) -> Option<String> {
        let stored = match barrier.get(layout::CLUSTER_INFO).await {
            Ok(Some(bytes)) => serde_json::from_slice::<ClusterInfo>(&bytes).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the cluster's id");
                None
            }
        };
        let info = stored?;
        if let Some(ha) = ha {
            match crate::ha::cluster_tls::Identity::from_stored(&info.tls) {
                Ok(identity) => *ha.identity.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(identity)),
                Err(e) => tracing::error!(error = %e, "the stored cluster TLS identity cannot be read"),
            }
        }
        *self.cluster_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(info.id.clone());
        Some(info.id)
    }

    /// The cluster's id, made and stored when there is none yet.
    async fn cluster_info(&self, barrier: &Barrier) -> Result<String> {
        if let Some(id) = self.read_cluster_info(barrier, self.ha.as_ref()).await {
            return Ok(id);
        }
        let identity = crate::ha::cluster_tls::Identity::generate()
            .map_err(|e| Error::internal(format!("making the cluster's TLS identity: {e}")))?;
        let info = ClusterInfo {
            id: uuid::Uuid::new_v4().to_string(),
            tls: identity.to_stored(),
        };
        let bytes = serde_json::to_vec(&info).map_err(|e| Error::internal(e.to_string()))?;
        barrier.put(layout::CLUSTER_INFO, &bytes).await.map_err(storage_err)?;
        self.read_cluster_info(barrier, self.ha.as_ref())
            .await
            .ok_or_else(|| Error::internal("the cluster's id was stored but cannot be read back"))
    }

    /// Start the core over the barrier (a node without HA at unseal, the
    /// active node at promotion).
    async fn start_core(&self, config: SealConfig, root_key: Zeroizing<[u8; KEY_LEN]>) -> Result<()> {
        let barrier = self.open_barrier(&root_key).await?;
        self.reseal_stale().await;
        let cluster_id = self.cluster_info(&barrier).await?;
        // Keys are classed (local or replicated) by their owners' declarations.
        let locality = Arc::new(Locality::new(&[
            LOCAL_STORAGE,
            crate::core::LOCAL_STORAGE,
            crate::storage::wal::LOCAL_STORAGE,
            crate::replication::LOCAL_STORAGE,
        ]));
        // The storage classes its rows from now on (PostgreSQL keeps the
        // replicated ones apart for replication).
        self.physical.set_locality(locality.clone());
        let indexed = crate::storage::wal::Indexed::open(barrier.clone(), locality.clone())
            .await
            .map_err(|e| Error::internal(format!("unsealed, but the write-ahead log cannot be read: {e}")))?;
        let core = Core::start(
            Arc::new(indexed),
            locality,
            self.runtime.clone(),
            self.engines.clone(),
            barrier.clone(),
            cluster_id,
        )
        .await
        .map_err(|e| Error::internal(format!("unsealed, but the core failed to start: {e:#}")))?;
        *self.state() = State::Unsealed {
            config,
            core,
            barrier,
            root_key,
        };
        tracing::info!("the core is running");
        Ok(())
    }

    /// `sys/seal`: stop the core and forget the keys. A static seal does
    /// not unseal the node again by itself (recovery shares or a restart).
    pub async fn seal(&self) -> Result<()> {
        let _t = self.transition.lock().await;
        self.sealed_by_hand.store(true, Ordering::SeqCst);
        if let Some(ha) = &self.ha {
            // No write after this point, and a standby takes over at once.
            ha.on_seal().await;
        }
        let previous = {
            let mut state = self.state();
            let config = match &*state {
                State::Unsealed { config, .. } | State::Standby { config, .. } => *config,
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
            State::Unsealed { config, .. } | State::Standby { config, .. } => (
                true,
                false,
                config.secret_threshold,
                config.secret_shares,
                0,
                String::new(),
                self.cluster_id.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            ),
        };
        // The configured seal, also before init: the CLI's init reads
        // `recovery_seal` to choose between unseal and recovery shares.
        let seal_type = if self.seal.is_some() {
            SealType::Static
        } else {
            SealType::Shamir
        };
        let mut v = json!({
            "type": seal_type.name(),
            "initialized": initialized,
            "sealed": sealed,
            "t": t,
            "n": n,
            "progress": progress,
            "nonce": nonce,
            "version": env!("CARGO_PKG_VERSION"),
            "build_date": "",
            "migration": false,
            "recovery_seal": seal_type == SealType::Static,
            "storage_type": self.storage_type,
        });
        if seal_type == SealType::Static {
            v["recovery_seal_type"] = json!("shamir");
        }
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

/// Storage initialised under one kind of seal opens under the same kind
/// only (no seal migration).
fn check_seal_type(stored: &SealConfig, static_configured: bool) -> Result<()> {
    match (stored.seal_type, static_configured) {
        (SealType::Static, false) => Err(Error::bad(
            "the storage was initialised with a static seal, but the configuration has no seal \"static\" stanza",
        )),
        (SealType::Shamir, true) => Err(Error::bad(
            "the storage was initialised with Shamir unseal keys, but the configuration has a seal \"static\" stanza: migrating between seals is not supported",
        )),
        _ => Ok(()),
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
        seal_type: SealType::Shamir,
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
/// With a static seal `keys` are empty and the recovery shares come as
/// `recovery_keys` and `recovery_keys_base64` (absent when none).
pub fn init_response(result: &InitResult) -> Value {
    let hex_keys = |keys: &[Zeroizing<Vec<u8>>]| keys.iter().map(hex::encode).collect::<Vec<_>>();
    let b64_keys = |keys: &[Zeroizing<Vec<u8>>]| keys.iter().map(|k| B64.encode(k.as_slice())).collect::<Vec<_>>();
    let mut v = json!({
        "keys": hex_keys(&result.keys),
        "keys_base64": b64_keys(&result.keys),
        "root_token": result.root_token,
    });
    if !result.recovery_keys.is_empty() {
        v["recovery_keys"] = json!(hex_keys(&result.recovery_keys));
        v["recovery_keys_base64"] = json!(b64_keys(&result.recovery_keys));
    }
    v
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
