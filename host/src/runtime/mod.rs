//! The plugin runtime: one wasmtime engine, components compiled once (and
//! cached on disk), pre-linked `InstancePre`s, and sandboxed instances from
//! the pooling allocator. An instance serves one grant only (one mount's one
//! connection, or a generator with no grant) and is kept for that grant's
//! next call, so the hot path skips instantiation; an instance that trapped
//! or timed out is thrown away. A call gets a memory limit and a deadline; a
//! trap, a runaway loop or a memory bomb fails that call only.

mod cache;
pub mod catalog;
pub mod contract;
mod engine_config;
pub mod external;
#[cfg(test)]
mod generator_tests;
mod registered;
mod strikes;

use crate::bindings::driver::{DatabaseDriver, DatabaseDriverPre};
use crate::bindings::generator::{CredentialGenerator, CredentialGeneratorPre};
use crate::bindings::{WitError, db};
use crate::imports::{CallState, Grant};
pub use external::CatalogEntry;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};

/// How often the epoch ticks; a running component yields to the executor at
/// every tick, so a busy loop never starves other requests.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Linear memory one instance may grow to.
pub const MEMORY_LIMIT: usize = 64 << 20;
/// Instances alive at once across all mounts (the pooling allocator's size).
const MAX_INSTANCES: u32 = 256;
/// Idle instances kept for one grant.
const MAX_IDLE_PER_GRANT: usize = 16;
/// Longest user name a driver may return: far beyond any database's limit
/// (PostgreSQL 63 bytes, MySQL 32), so only a misbehaving driver hits it.
const MAX_USERNAME: usize = 1024;
/// Longest connection configuration `initialize` may return.
const MAX_CONFIG: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin not found in the catalog: {0}")]
    NotFound(String),
    /// A registered file that cannot be used (missing, changed, outside
    /// the plugin directory, not a driver, importing what it may not).
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Driver(String),
    /// The driver refused its input (WIT `bad-parameter`): a malformed
    /// statement, a role the database does not know.
    #[error("{0}")]
    Rejected(String),
    #[error("plugin {plugin} failed: {reason}")]
    Trap { plugin: String, reason: String },
    #[error("plugin {plugin} did not answer within {secs}s")]
    Timeout { plugin: String, secs: u64 },
}

impl From<WitError> for PluginError {
    fn from(e: WitError) -> Self {
        PluginError::Driver(match e {
            WitError::BadParameter(m) => return PluginError::Rejected(m),
            WitError::ConnectionFailed(m)
            | WitError::QueryFailed(m)
            | WitError::NotPermitted(m)
            | WitError::Other(m) => m,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginKind {
    Database,
    Generator,
}

/// A component known to the catalog; compiled on first need (or at start-up
/// in the background).
pub struct Plugin {
    pub name: String,
    pub kind: PluginKind,
    pub builtin: bool,
    pub sha256: String,
    wasm: Arc<[u8]>,
    /// Machine code compiled from `wasm` when Warden was built (built-in
    /// components; empty when there is none).
    precompiled: &'static [u8],
    ready: OnceCell<Prepared>,
}

impl Plugin {
    /// `builtin`: Some(the machine code build.rs compiled for it, maybe
    /// empty) for a component built into the server, None for a
    /// registered one.
    fn new(name: &str, kind: PluginKind, wasm: Arc<[u8]>, builtin: Option<&'static [u8]>) -> Arc<Plugin> {
        use sha2::Digest;
        Arc::new(Plugin {
            name: name.to_string(),
            kind,
            builtin: builtin.is_some(),
            sha256: hex::encode(sha2::Sha256::digest(&wasm)),
            wasm,
            precompiled: builtin.unwrap_or_default(),
            ready: OnceCell::new(),
        })
    }
}

enum Prepared {
    Driver(DatabaseDriverPre<CallState>),
    Generator(CredentialGeneratorPre<CallState>),
}

/// A new instance of `$plugin` (compiled on first use) in a new store with
/// `$grant`, holding a pooling-allocator slot. A macro rather than a generic
/// function: the two worlds' `*Pre` types share no trait to be generic over.
macro_rules! fresh_instance {
    ($self:ident, $plugin:ident, $variant:path, $grant:expr) => {{
        let $variant(pre) = $self.prepare(&$plugin).await? else {
            return Err(PluginError::NotFound($plugin.name.clone()));
        };
        let permit = $self.slot(&$plugin).await?;
        let mut store = $self.new_store($grant);
        let bindings = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| $self.trap(&$plugin, format!("{e:#}")))?;
        Instance {
            store,
            bindings,
            _permit: permit,
            _live: crate::telemetry::component_instance(&$plugin.name),
        }
    }};
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: Option<cache::DiskCache>,
    plugins: std::sync::RwLock<HashMap<String, Arc<Plugin>>>,
    /// Bounds instances alive at once to what the pool holds, so a burst
    /// waits instead of failing.
    slots: Arc<Semaphore>,
    /// Idle instances by grant key, ready for the next call.
    idle_drivers: std::sync::Mutex<HashMap<String, Vec<Instance<DatabaseDriver>>>>,
    idle_generators: std::sync::Mutex<HashMap<String, Vec<Instance<CredentialGenerator>>>>,
    pub call_timeout: Duration,
    /// Grants whose driver misbehaved lately, and their back-off.
    strikes: strikes::Strikes,
    /// Where registered plugins' files live (`plugin_directory`).
    plugin_directory: OnceLock<PathBuf>,
    /// The unsealed core's catalog entries by (name, version), and the
    /// components loaded from them (file read, digest checked, compiled).
    external: std::sync::RwLock<BTreeMap<(String, String), CatalogEntry>>,
    loaded: std::sync::Mutex<HashMap<(String, String), Arc<Plugin>>>,
}

impl Runtime {
    pub fn new(call_timeout: Duration) -> anyhow::Result<Arc<Runtime>> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_INSTANCES)
            .total_core_instances(MAX_INSTANCES * 8)
            .total_memories(MAX_INSTANCES * 2)
            .total_tables(MAX_INSTANCES * 8)
            .total_stacks(MAX_INSTANCES)
            .max_memory_size(MEMORY_LIMIT);
        let mut config = Config::new();
        engine_config::codegen(&mut config).allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        crate::imports::add_to_linker(&mut linker)?;

        // One ticker for the whole process; it holds only a weak handle.
        let weak = engine.weak();
        std::thread::Builder::new().name("warden-epoch".into()).spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;

        Ok(Arc::new(Runtime {
            engine,
            linker,
            cache: cache::DiskCache::default_location(),
            plugins: Default::default(),
            slots: Arc::new(Semaphore::new(MAX_INSTANCES as usize)),
            idle_drivers: Default::default(),
            idle_generators: Default::default(),
            call_timeout,
            strikes: Default::default(),
            plugin_directory: OnceLock::new(),
            external: Default::default(),
            loaded: Default::default(),
        }))
    }

    /// Add a built-in component to the catalog (replacing one of the same
    /// name), with the machine code build.rs compiled for it (may be empty).
    pub fn register_builtin(
        &self,
        name: &str,
        kind: PluginKind,
        wasm: Arc<[u8]>,
        precompiled: &'static [u8],
    ) -> Arc<Plugin> {
        let plugin = Plugin::new(name, kind, wasm, Some(precompiled));
        self.plugins
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), plugin.clone());
        plugin
    }

    pub fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        self.plugins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        let mut all: Vec<_> = self
            .plugins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Compile every registered component that has no usable precompiled
    /// code now, in the background threads of the blocking pool, so the
    /// first request does not wait for it. Precompiled ones load on first
    /// use (milliseconds), so an unused driver costs no memory.
    pub fn warm_up(self: &Arc<Self>) {
        let rt = self.clone();
        tokio::spawn(async move {
            let plugins = rt.plugins();
            // Whether this engine takes the embedded code, tried on the
            // smallest piece (all were compiled alike): no when the binary
            // was built for another CPU, or in a debug build.
            let sample = plugins
                .iter()
                .map(|p| p.precompiled)
                .filter(|c| !c.is_empty())
                .min_by_key(|c| c.len());
            let engine = rt.engine.clone();
            let precompiled_fits = match sample {
                Some(code) => tokio::task::spawn_blocking(move || cache::load_precompiled(&engine, code).is_some())
                    .await
                    .unwrap_or(false),
                None => false,
            };
            // One component may be registered under several names (Vault's
            // four MySQL plugin names): compile it once; the other names
            // load it from the disk cache on first use.
            let mut seen = std::collections::HashSet::new();
            for plugin in plugins {
                if !seen.insert(plugin.sha256.clone()) || (precompiled_fits && !plugin.precompiled.is_empty()) {
                    continue;
                }
                let rt = rt.clone();
                tokio::spawn(async move {
                    if let Err(e) = rt.prepare(&plugin).await {
                        tracing::error!(plugin = %plugin.name, error = %e, "component failed to compile");
                    }
                });
            }
        });
    }

    async fn prepare<'a>(&self, plugin: &'a Plugin) -> Result<&'a Prepared, PluginError> {
        plugin
            .ready
            .get_or_try_init(|| async {
                let engine = self.engine.clone();
                let wasm = plugin.wasm.clone();
                let cache = self.cache.clone();
                let precompiled = plugin.precompiled;
                let started = Instant::now();
                // Compiling is CPU-bound: keep it off the async workers.
                let component = tokio::task::spawn_blocking(move || {
                    if let Some(component) = cache::load_precompiled(&engine, precompiled) {
                        return Ok(component);
                    }
                    match cache {
                        Some(c) => c.load_or_compile(&engine, &wasm),
                        None => Component::new(&engine, &wasm),
                    }
                })
                .await
                .map_err(|e| self.trap(plugin, e.to_string()))?
                .map_err(|e| self.trap(plugin, format!("invalid component: {e:#}")))?;
                tracing::debug!(plugin = %plugin.name, ms = started.elapsed().as_millis() as u64, "component ready");
                let ty = component.component_type();
                let imports: Vec<String> = ty.imports(&self.engine).map(|(name, _)| name.to_string()).collect();
                let exports = ty.exports(&self.engine).map(|(name, _)| name);
                contract::check(&plugin.name, imports.iter().map(String::as_str).chain(exports))
                    .map_err(PluginError::Refused)?;
                if let Some(name) = external::forbidden_import(imports.iter().map(String::as_str)) {
                    return Err(PluginError::Refused(format!(
                        "plugin {:?} imports {name}, which Warden does not give components: a \
                         component reaches only the warden:plugin interfaces of its grant",
                        plugin.name
                    )));
                }
                let pre = self
                    .linker
                    .instantiate_pre(&component)
                    .map_err(|e| self.trap(plugin, format!("cannot link: {e:#}")))?;
                let prepared = match plugin.kind {
                    PluginKind::Database => Prepared::Driver(
                        DatabaseDriverPre::new(pre)
                            .map_err(|e| self.trap(plugin, format!("not a database driver: {e:#}")))?,
                    ),
                    PluginKind::Generator => Prepared::Generator(
                        CredentialGeneratorPre::new(pre)
                            .map_err(|e| self.trap(plugin, format!("not a credential generator: {e:#}")))?,
                    ),
                };
                Ok(prepared)
            })
            .await
    }

    fn trap(&self, plugin: &Plugin, reason: String) -> PluginError {
        PluginError::Trap {
            plugin: plugin.name.clone(),
            reason,
        }
    }

    fn new_store(&self, grant: Grant) -> Store<CallState> {
        let memory = grant.limits.memory.map_or(MEMORY_LIMIT, |m| m.min(MEMORY_LIMIT));
        let timeout = self.timeout_for(&grant.limits);
        let mut store = Store::new(&self.engine, CallState::new(grant, memory));
        store.limiter(|s| &mut s.limits);
        // Instantiation runs the component's start-up code: same deadline.
        arm(&mut store, timeout, Pace::Yield);
        store
    }

    /// The deadline of one call under `limits`: theirs, capped by the
    /// runtime's own.
    fn timeout_for(&self, limits: &crate::imports::Limits) -> Duration {
        limits.timeout.map_or(self.call_timeout, |t| t.min(self.call_timeout))
    }

    /// A pooling-allocator slot for a new instance. When all are taken and
    /// some are idle, one idle instance makes room.
    async fn slot(&self, plugin: &Plugin) -> Result<OwnedSemaphorePermit, PluginError> {
        loop {
            if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                return Ok(permit);
            }
            if !self.evict_one() {
                return self
                    .slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| self.trap(plugin, e.to_string()));
            }
        }
    }

    fn evict_one(&self) -> bool {
        fn pop<B>(m: &std::sync::Mutex<HashMap<String, Vec<Instance<B>>>>) -> bool {
            let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
            let Some(key) = m.keys().next().cloned() else {
                return false;
            };
            Runtime::take_idle_locked(&mut m, &key).is_some()
        }
        pop(&self.idle_drivers) || pop(&self.idle_generators)
    }

    /// Drop the idle instances of every grant whose key starts with
    /// `prefix`: their connection settings changed or went away.
    pub fn forget_grants(&self, prefix: &str) {
        let mut m = self.idle_drivers.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|k, _| !k.starts_with(prefix));
    }

    fn take_idle<B>(map: &std::sync::Mutex<HashMap<String, Vec<Instance<B>>>>, key: &str) -> Option<Instance<B>> {
        Self::take_idle_locked(&mut map.lock().unwrap_or_else(|p| p.into_inner()), key)
    }

    /// An idle instance of `key`; a grant left with none leaves the map, so
    /// the map holds at most as many grants as there are live instances
    /// (not one per connection ever used: with thousands of mounts,
    /// `evict_one` and `forget_grants` scanned them all on every call).
    fn take_idle_locked<B>(m: &mut HashMap<String, Vec<Instance<B>>>, key: &str) -> Option<Instance<B>> {
        let idle = m.get_mut(key)?;
        let instance = idle.pop();
        if idle.is_empty() {
            m.remove(key);
        }
        instance
    }

    fn put_idle<B>(map: &std::sync::Mutex<HashMap<String, Vec<Instance<B>>>>, key: String, instance: Instance<B>) {
        let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
        let idle = m.entry(key).or_default();
        if idle.len() < MAX_IDLE_PER_GRANT {
            idle.push(instance);
        }
    }

    /// A driver instance for `grant`. `grant_key` names the grant: an idle
    /// instance made for the same key is reused, so the key must change
    /// whenever the grant would (mount, connection, target).
    /// `version` picks a catalog version of `name` (see
    /// [`Runtime::resolve_driver`]).
    pub async fn driver(
        self: &Arc<Self>,
        name: &str,
        version: &str,
        grant_key: &str,
        grant: Grant,
    ) -> Result<DriverCall, PluginError> {
        let plugin = self.resolve_driver(name, version).await?;
        let key = format!(
            "{grant_key}\0{}\0{}\0{}",
            plugin.name,
            plugin.sha256,
            grant.limits.key()
        );
        let timeout = self.timeout_for(&grant.limits);
        let pace = match self.strikes.wait_out(&key, timeout).await {
            true => Pace::Penalised,
            false => Pace::Throttle,
        };
        let instance = match Self::take_idle(&self.idle_drivers, &key) {
            Some(i) => i,
            None => fresh_instance!(self, plugin, Prepared::Driver, grant),
        };
        Ok(DriverCall {
            runtime: self.clone(),
            plugin,
            key,
            instance: Some(instance),
            healthy: true,
            timeout,
            held: None,
            pace,
        })
    }

    /// Run a credential generator once.
    pub async fn generate(
        &self,
        name: &str,
        config: &[(String, String)],
    ) -> Result<Vec<(String, String)>, PluginError> {
        let plugin = self
            .plugin(name)
            .filter(|p| p.kind == PluginKind::Generator)
            .ok_or_else(|| PluginError::NotFound(name.to_string()))?;
        let key = format!("{}\0{}", plugin.name, plugin.sha256);
        let mut instance = match Self::take_idle(&self.idle_generators, &key) {
            Some(i) => i,
            None => fresh_instance!(self, plugin, Prepared::Generator, Grant::none(&plugin.name)),
        };
        instance.arm(self.call_timeout, Pace::Yield);
        let call = instance
            .bindings
            .warden_plugin_generator()
            .call_generate(&mut instance.store, config);
        // On a trap or timeout the instance is dropped here, not reused.
        let out = finish(&plugin, self.call_timeout, call).await?;
        Self::put_idle(&self.idle_generators, key, instance);
        out.map_err(PluginError::Driver)
    }
}

/// A live instance with its store and its pooling-allocator slot.
struct Instance<B> {
    store: Store<CallState>,
    bindings: B,
    _permit: OwnedSemaphorePermit,
    /// Counted in `warden.runtime.instances` while it lives.
    _live: crate::telemetry::Live,
}

impl<B> Instance<B> {
    fn arm(&mut self, timeout: Duration, pace: Pace) {
        arm(&mut self.store, timeout, pace);
    }
}

/// How a long computation shares the CPU.
#[derive(Clone, Copy)]
enum Pace {
    /// Yield at every epoch tick, nothing more: built-in generators, whose
    /// key generation may legitimately compute for seconds.
    Yield,
    /// Yield at every tick, and once the call has computed for
    /// [`THROTTLE_AFTER`], pause [`THROTTLE_PAUSE`] at every tick: database
    /// drivers wait on their database, not on the CPU, so only a runaway
    /// (or hostile) driver gets there, and it then takes at most a quarter
    /// of a core until its deadline instead of a whole one.
    Throttle,
    /// Pause [`PENALTY_PAUSE`] at every tick from the first: a driver with
    /// strikes (see strikes.rs) gets a tenth of a core.
    Penalised,
}

/// Wasm time after which a driver call is throttled.
const THROTTLE_AFTER: Duration = Duration::from_millis(200);
/// The pause per epoch tick (10 ms) of a throttled call.
const THROTTLE_PAUSE: Duration = Duration::from_millis(30);
/// The pause per epoch tick of a penalised call.
const PENALTY_PAUSE: Duration = Duration::from_millis(90);

/// Give the next call its own deadline: the running component yields at
/// every epoch tick and is interrupted once the deadline has passed.
fn arm(store: &mut Store<CallState>, timeout: Duration, pace: Pace) {
    let started = Instant::now();
    // A timeout too large to add (a huge -plugin-timeout) means no deadline
    // worth checking: a year.
    let deadline = started
        .checked_add(timeout)
        .or_else(|| started.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(started);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        let now = Instant::now();
        if now >= deadline {
            return Ok(UpdateDeadline::Interrupt);
        }
        // tokio's own yield (or sleep): the task goes behind the others that
        // are ready. wasmtime's plain Yield wakes the task itself, which
        // tokio runs again at once (its LIFO slot), so a looping component
        // starved the requests on its worker (other mounts' p99 x24 under
        // attack, hostile_bench).
        let pause: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = match pace {
            Pace::Throttle if now.saturating_duration_since(started) > THROTTLE_AFTER => {
                Box::pin(tokio::time::sleep(THROTTLE_PAUSE))
            }
            Pace::Penalised => Box::pin(tokio::time::sleep(PENALTY_PAUSE)),
            _ => Box::pin(tokio::task::yield_now()),
        };
        Ok(UpdateDeadline::YieldCustom(1, pause))
    });
}

/// Wait for a component call under the deadline, and turn traps into
/// errors; a call the sandbox stopped is counted (`warden.runtime.kills`).
async fn finish<T>(
    plugin: &Plugin,
    timeout: Duration,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> Result<T, PluginError> {
    let out = finish_call(plugin, timeout, call).await;
    if let Err(e) = &out {
        let kill = match e {
            PluginError::Timeout { .. } => Some(crate::telemetry::Kill::Epoch),
            PluginError::Trap { reason, .. } if reason.contains("growing memory") => {
                Some(crate::telemetry::Kill::Memory)
            }
            PluginError::Trap { .. } => Some(crate::telemetry::Kill::Trap),
            _ => None,
        };
        if let Some(kill) = kill {
            crate::telemetry::component_killed(&plugin.name, kill);
        }
    }
    out
}

/// [`finish`] without the counting.
async fn finish_call<T>(
    plugin: &Plugin,
    timeout: Duration,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> Result<T, PluginError> {
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Err(PluginError::Timeout {
            plugin: plugin.name.clone(),
            secs: timeout.as_secs(),
        }),
        Ok(Err(e)) => {
            let reason = match e.downcast_ref::<wasmtime::Trap>() {
                Some(wasmtime::Trap::Interrupt) => {
                    return Err(PluginError::Timeout {
                        plugin: plugin.name.clone(),
                        secs: timeout.as_secs(),
                    });
                }
                Some(trap) => trap.to_string(),
                // The root cause ("forcing trap when growing memory ...")
                // without the wasm backtrace, which helps nobody reading a
                // 500 response.
                None => e.root_cause().to_string(),
            };
            Err(PluginError::Trap {
                plugin: plugin.name.clone(),
                reason,
            })
        }
        Ok(Ok(v)) => Ok(v),
    }
}

/// A database driver instance lent to one engine operation; it goes back to
/// the idle pool when dropped, unless a call trapped or timed out.
pub struct DriverCall {
    runtime: Arc<Runtime>,
    plugin: Arc<Plugin>,
    key: String,
    instance: Option<Instance<DatabaseDriver>>,
    healthy: bool,
    /// Throttle, or Penalised when the grant has strikes.
    pace: Pace,
    /// The deadline of each call (the runtime's, or a tighter one of the
    /// grant's limits).
    timeout: Duration,
    /// A place the caller holds for as long as the call lives (a sandbox
    /// quota's concurrent-call slot).
    held: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for DriverCall {
    fn drop(&mut self) {
        if let Some(instance) = self.instance.take().filter(|_| self.healthy) {
            Runtime::put_idle(&self.runtime.idle_drivers, std::mem::take(&mut self.key), instance);
        }
    }
}

/// Run one export of the driver under the deadline. The instance counts as
/// unhealthy until the call returns, so a cancelled or failed call is never
/// reused.
macro_rules! driver_call {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {{
        let timeout = $self.timeout;
        let Some(instance) = $self.instance.as_mut() else {
            return Err(PluginError::Driver("driver instance already discarded".into()));
        };
        instance.arm(timeout, $self.pace);
        $self.healthy = false;
        let call = instance.bindings.warden_plugin_database().$method(&mut instance.store, $($arg),*);
        let out = finish(&$self.plugin, timeout, call).await;
        // A trap, a memory bomb or a timeout is a strike; an answer, even
        // the database's error, clears them.
        match out {
            Ok(_) => $self.runtime.strikes.clear(&$self.key),
            Err(_) => $self.runtime.strikes.strike(&$self.key),
        }
        let out = out?;
        $self.healthy = true;
        Ok(out?)
    }};
}

impl DriverCall {
    /// Keep `permit` until this call is dropped.
    pub fn hold(&mut self, permit: tokio::sync::OwnedSemaphorePermit) {
        self.held = Some(permit);
    }

    pub async fn initialize(&mut self, config: &str, verify: bool) -> Result<String, PluginError> {
        let out: Result<String, PluginError> = driver_call!(self, call_initialize(config, verify));
        self.bounded("configuration", out?, MAX_CONFIG)
    }

    pub async fn new_username(&mut self, config: &str, req: &db::NewUserRequest) -> Result<String, PluginError> {
        let out: Result<String, PluginError> = driver_call!(self, call_new_username(config, req));
        self.bounded("user name", out?, MAX_USERNAME)
    }

    pub async fn new_user(&mut self, config: &str, req: &db::NewUserRequest) -> Result<String, PluginError> {
        let out: Result<String, PluginError> = driver_call!(self, call_new_user(config, req));
        self.bounded("user name", out?, MAX_USERNAME)
    }

    /// A driver's answer within what any database takes; a driver that
    /// returns more misbehaves: the call fails and its instance (whose
    /// memory grew to hold the answer) is not reused.
    fn bounded(&mut self, what: &str, value: String, max: usize) -> Result<String, PluginError> {
        if value.len() <= max {
            return Ok(value);
        }
        self.healthy = false;
        self.runtime.strikes.strike(&self.key);
        Err(PluginError::Trap {
            plugin: self.plugin.name.clone(),
            reason: format!("it returned a {what} of {} bytes (at most {max})", value.len()),
        })
    }

    pub async fn update_user(&mut self, config: &str, req: &db::UpdateUserRequest) -> Result<(), PluginError> {
        driver_call!(self, call_update_user(config, req))
    }

    pub async fn delete_user(
        &mut self,
        config: &str,
        username: &str,
        statements: &[String],
    ) -> Result<(), PluginError> {
        driver_call!(self, call_delete_user(config, username, statements))
    }
}
