//! Starting the server: logging, the plugin runtime and catalog, the node
//! (storage and seal) and the HTTP listeners, until SIGINT or SIGTERM.
//! `-dev` runs in memory, initialised with one key share and unsealed;
//! `-config=FILE` opens the configured storage and starts sealed (or
//! uninitialised), as Vault does. SIGHUP reopens the audit devices' files
//! (log rotation), reads the listeners' TLS certificates again and takes
//! the configuration file's `log_level`, as Vault's reload does.
//! SIGTERM/SIGINT: the listeners stop accepting, requests under way get a
//! few seconds to finish, then an HA node steps down and the core stops
//! (its database connections closed).

use crate::cli::{Command, ServerOptions, USAGE};
use crate::config::{self, Listener, ServerConfig, StorageConfig};
use crate::framework::{Registry, ttl};
use crate::node::Node;
use crate::runtime::Runtime;
use crate::runtime::catalog;
use crate::storage::{MemoryBackend, PostgresBackend, SqliteBackend, Storage};
use anyhow::Context;
use std::sync::Arc;

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Command::Version => {
            println!("Warden v{}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Server(opts) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve(opts)),
    }
}

type FilterHandle = tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// The log filter, changed by SIGHUP (None when `RUST_LOG` fixes it).
static LOG_FILTER: std::sync::OnceLock<FilterHandle> = std::sync::OnceLock::new();

fn level_filter(level: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::new(format!(
        // PostgreSQL notices ("no privileges could be revoked") are noise.
        "warden={0},{0},sqlx::postgres::notice=error",
        level
    ))
}

fn init_logging(level: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let from_env = tracing_subscriber::EnvFilter::try_from_default_env().ok();
    let fixed = from_env.is_some();
    let (filter, handle) = tracing_subscriber::reload::Layer::new(from_env.unwrap_or_else(|| level_filter(level)));
    if !fixed {
        let _ = LOG_FILTER.set(handle);
    }
    use std::io::IsTerminal;
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only for a terminal, not in log files.
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .try_init();
}

/// SIGHUP's new log level (unless `RUST_LOG` or `-log-level` fixed it).
fn set_log_level(level: &str) {
    if let Some(handle) = LOG_FILTER.get() {
        match handle.reload(level_filter(level)) {
            Ok(()) => tracing::info!(level, "log level changed"),
            Err(e) => tracing::warn!(error = %e, "could not change the log level"),
        }
    }
}

async fn serve(opts: ServerOptions) -> anyhow::Result<()> {
    // Read the file before anything else, so a mistake stops start-up at once.
    let file = match &opts.config {
        Some(path) => Some(config::load(path)?),
        None => None,
    };
    let level = match &file {
        Some(ServerConfig {
            log_level: Some(level), ..
        }) if !opts.log_level_set => level.clone(),
        _ => opts.log_level.clone(),
    };
    init_logging(&level);
    // Vault's telemetry defaults for a configuration file; -dev serves the
    // Prometheus format too.
    crate::telemetry::init(
        file.as_ref()
            .map_or_else(crate::telemetry::Settings::dev, |f| f.telemetry.clone()),
    );

    crate::core::expiration::set_retry_policy(opts.revoke_retry);
    let runtime = Runtime::new(opts.plugin_timeout)?;
    catalog::register_builtins(&runtime);
    let plugin_dir = opts
        .plugin_dir
        .clone()
        .or_else(|| file.as_ref().and_then(|f| f.plugin_directory.clone()));
    if let Some(dir) = plugin_dir {
        runtime.set_plugin_directory(dir);
    }
    runtime.warm_up();
    // The secrets engine types mounts can be built as.
    let mut engines = Registry::new();
    crate::engines::register_builtins(&mut engines);
    let engines = Arc::new(engines);

    match file {
        None => serve_dev(opts, runtime, engines).await,
        Some(cfg) => {
            let reload = Reload {
                config: opts.config.clone(),
                level_fixed: opts.log_level_set,
                certificates: Arc::default(),
            };
            serve_config(cfg, runtime, engines, reload).await
        }
    }
}

async fn serve_dev(opts: ServerOptions, runtime: Arc<Runtime>, engines: Arc<Registry>) -> anyhow::Result<()> {
    let node = Node::open(Arc::new(MemoryBackend::new()), "inmem", runtime, engines).await?;
    let init = node
        .init(
            crate::node::InitRequest::shamir(1, 1),
            Some(opts.root_token.clone().unwrap_or_else(crate::core::token::generate)),
        )
        .await
        .map_err(|e| anyhow::anyhow!("dev mode init: {e}"))?;
    let unseal_key = crate::node::init_response(&init)["keys_base64"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    node.unseal(Some(&unseal_key), false)
        .await
        .map_err(|e| anyhow::anyhow!("dev mode unseal: {e}"))?;

    // As Vault's -dev-plugin-dir: every component of the directory is
    // registered in the catalog under its file name.
    if let Some(dir) = &opts.plugin_dir {
        let core = node.core().map_err(|e| anyhow::anyhow!("dev mode: {e}"))?;
        for entry in catalog::dev_entries(dir)? {
            let (name, command) = (entry.name.clone(), entry.command.clone());
            match core.register_plugin(entry).await {
                Ok(()) => {
                    tracing::info!(plugin = %name, command = %command, "registered a plugin of the dev plugin directory")
                }
                Err(e) => {
                    tracing::warn!(plugin = %name, error = %e, "a file of the dev plugin directory was not registered")
                }
            }
        }
    }
    reload_on_sighup(node.clone(), Reload::default())?;
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let addr = listener.local_addr()?;
    println!(
        "==> Warden server started (dev mode: in-memory storage, unsealed)\n\n\
         \x20   Api Address: http://{addr}\n\n\
         WARNING! dev mode is enabled! Nothing is kept on disk and the root token is printed below.\n\n\
         You may need to set the following environment variables:\n\n\
         \x20   $ export VAULT_ADDR='http://{addr}'\n\n\
         Unseal Key: {unseal_key}\n\
         Root Token: {}\n",
        init.root_token
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(crate::api::listener::serve(
        listener,
        None,
        crate::api::HttpLimits::default(),
        crate::api::router(node),
        stopped,
    ));
    shutdown().await;
    let _ = stop.send(true);
    let _ = server.await;
    Ok(())
}

async fn open_storage(storage: &StorageConfig) -> anyhow::Result<Storage> {
    Ok(match storage {
        StorageConfig::Sqlite { path } => Arc::new(
            SqliteBackend::open(path)
                .await
                .with_context(|| format!("opening the sqlite storage {}", path.display()))?,
        ),
        StorageConfig::Postgresql {
            connection_url, table, ..
        } => Arc::new(
            PostgresBackend::connect(connection_url, table)
                .await
                .context("connecting to the postgresql storage")?,
        ),
        StorageConfig::Inmem => Arc::new(MemoryBackend::new()),
    })
}

/// The address a listener is reached at, as a URL.
fn listener_url(l: &Listener) -> String {
    let scheme = if l.tls_disable { "http" } else { "https" };
    format!("{scheme}://{}", l.address)
}

/// Where a listener takes forwarded requests: `cluster_address`, or (as
/// Vault) the API port plus one.
fn cluster_listen_address(l: &Listener) -> anyhow::Result<std::net::SocketAddr> {
    if let Some(a) = &l.cluster_address {
        return a.parse().context("cluster_address");
    }
    let mut addr: std::net::SocketAddr = l.address.parse().context("listener address")?;
    let port = addr
        .port()
        .checked_add(1)
        .context("the listener's port is 65535: set cluster_address")?;
    addr.set_port(port);
    Ok(addr)
}

/// HA on PostgreSQL: the lock, the fenced storage, the node's addresses.
async fn open_ha_storage(
    cfg: &ServerConfig,
    connection_url: &str,
    table: &str,
    ha_table: &str,
) -> anyhow::Result<(Storage, Arc<crate::ha::Ha>, Storage)> {
    let backend = PostgresBackend::connect(connection_url, table)
        .await
        .context("connecting to the postgresql storage")?;
    let lock = crate::ha::lock::PgLock::connect(connection_url, ha_table)
        .await
        .context("preparing the postgresql HA lock table")?;
    let fence = Arc::new(crate::ha::fence::Fence::new(uuid::Uuid::new_v4().to_string()));
    let unfenced: Storage = Arc::new(backend.unfenced());
    let fenced: Storage = Arc::new(backend.fenced(ha_table, fence.clone())?);
    let first = cfg.listeners.first().context("HA needs a listener")?;
    let api_addr = cfg.api_addr.clone().unwrap_or_else(|| listener_url(first));
    let cluster_addr = match &cfg.cluster_addr {
        Some(a) => a.clone(),
        None => format!("https://{}", cluster_listen_address(first)?),
    };
    let settings = crate::ha::Settings {
        api_addr,
        cluster_addr,
        disable_forwarding: cfg.disable_clustering,
    };
    Ok((fenced, crate::ha::Ha::new(settings, lock, fence), unfenced))
}

async fn serve_config(
    cfg: ServerConfig,
    runtime: Arc<Runtime>,
    engines: Arc<Registry>,
    reload: Reload,
) -> anyhow::Result<()> {
    ttl::set_system_ttls(cfg.default_lease_ttl, cfg.max_lease_ttl);
    let seal = match &cfg.seal {
        Some(stanza) => Some(Arc::new(crate::node::StaticSeal::load(stanza)?)),
        None => None,
    };
    let node = match &cfg.storage {
        StorageConfig::Postgresql {
            connection_url,
            table,
            ha_enabled: true,
            ha_table,
        } => {
            let (fenced, ha, unfenced) = open_ha_storage(&cfg, connection_url, table, ha_table).await?;
            let node = Node::open_ha(
                fenced,
                "postgresql",
                runtime,
                engines,
                Some((ha.clone(), unfenced)),
                seal,
            )
            .await
            .context("reading the storage")?;
            println!(
                "    HA: enabled (node {}, api_addr {}, cluster_addr {})",
                ha.node_id, ha.settings.api_addr, ha.settings.cluster_addr
            );
            tokio::spawn(ha.run(node.clone()));
            node
        }
        storage => {
            let physical = open_storage(storage).await?;
            Node::open_ha(physical, storage.type_name(), runtime, engines, None, seal)
                .await
                .context("reading the storage")?
        }
    };
    // A static seal unseals the node now; a key that does not open the
    // stored root key stops start-up, as Vault's auto-unseal does.
    node.auto_unseal()
        .await
        .map_err(|e| anyhow::anyhow!("unsealing with the static seal: {e}"))?;
    let certificates = reload.certificates.clone();
    reload_on_sighup(node.clone(), reload)?;
    let router = crate::api::router(node.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    for l in &cfg.listeners {
        let (server, certificate) = listen(l, router.clone(), stopped.clone()).await?;
        servers.push(server);
        certificates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(certificate);
        if let Some(ha) = node.ha().filter(|_| !cfg.disable_clustering) {
            servers.push(listen_cluster(l, ha, router.clone(), stopped.clone()).await?);
        }
    }
    println!(
        "==> Warden server started: storage {}, {}\n",
        cfg.storage.type_name(),
        match (node.initialized(), node.sealed()) {
            (false, _) if cfg.seal.is_some() =>
                "not initialized (PUT /v1/sys/init with recovery_shares; the static seal unseals it)",
            (false, _) => "not initialized (PUT /v1/sys/init)",
            (true, true) => "sealed (PUT /v1/sys/unseal with the key shares)",
            (true, false) => "unsealed",
        }
    );
    shutdown().await;
    // Stop accepting; requests under way finish (a bounded grace).
    let _ = stop.send(true);
    for s in servers {
        let _ = s.await;
    }
    if let Some(ha) = node.ha() {
        // A standby takes over at once rather than when the lease runs out.
        ha.leave().await;
    }
    // The core's tasks stop and its database connections close.
    if let Err(e) = node.seal().await {
        tracing::warn!(error = %e, "stopping the core at shutdown failed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The cluster listener of an HA node: mutual TLS with the cluster's
/// pinned certificate, the same API behind it (what standbys forward).
async fn listen_cluster(
    l: &Listener,
    ha: &Arc<crate::ha::Ha>,
    router: axum::Router,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr = cluster_listen_address(l)?;
    let tls = crate::ha::cluster_tls::server_config(ha.identity.clone())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the cluster address {addr}"))?;
    println!(
        "    Cluster listener: tcp (addr: {:?}, mutual TLS)",
        listener.local_addr()?
    );
    let limits = crate::api::HttpLimits {
        cluster: true,
        ..l.http.clone()
    };
    Ok(tokio::spawn(crate::api::listener::serve(
        listener,
        Some(tls),
        limits,
        router,
        stopped,
    )))
}

/// Bind one listener and serve on it in the background (api::listener:
/// the same timeouts and connection cap for plain and TLS listeners).
async fn listen(
    l: &Listener,
    router: axum::Router,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, Option<Arc<crate::tls::Certificate>>)> {
    let addr: std::net::SocketAddr = l.address.parse().context("listener address")?;
    let (tls, certificate) = match (l.tls_disable, &l.tls_cert_file, &l.tls_key_file) {
        (true, _, _) => (None, None),
        (false, Some(cert), Some(key)) => {
            let (acceptor, certificate) = crate::tls::server_config(cert, key)?;
            (Some(acceptor), Some(certificate))
        }
        _ => anyhow::bail!("listener {addr}: TLS needs tls_cert_file and tls_key_file"),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!(
        "    Listener: tcp (addr: {:?}, tls: {}, max_connections: {})",
        listener.local_addr()?,
        if tls.is_some() { "enabled" } else { "disabled" },
        l.http.max_connections
    );
    let server = tokio::spawn(crate::api::listener::serve(
        listener,
        tls,
        l.http.clone(),
        router,
        stopped,
    ));
    Ok((server, certificate))
}

/// What SIGHUP reloads besides the audit files.
#[derive(Default)]
struct Reload {
    /// The configuration file (its `log_level`).
    config: Option<std::path::PathBuf>,
    /// `-log-level` was given: it wins over the file, as at start-up.
    level_fixed: bool,
    /// The TLS listeners' certificates (filled once they listen).
    certificates: Arc<std::sync::Mutex<Vec<Arc<crate::tls::Certificate>>>>,
}

impl Reload {
    fn run(&self, node: &Node) {
        if let Ok(core) = node.core() {
            core.audit.reopen();
        }
        let certificates = self.certificates.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for certificate in certificates {
            match certificate.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                // The certificate in use stays.
                Err(e) => tracing::error!(error = %format!("{e:#}"), "SIGHUP: the TLS certificate was not reloaded"),
            }
        }
        if let Some(path) = &self.config {
            match config::load(path) {
                Ok(cfg) if !self.level_fixed => {
                    if let Some(level) = &cfg.log_level {
                        set_log_level(level);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %format!("{e:#}"), "SIGHUP: the configuration file was not reloaded"),
            }
        }
    }
}

/// SIGHUP: the audit devices of the unsealed core close and reopen their
/// files (a rotated log goes on in a new file at its path), TLS
/// certificates and the log level are read again. Registered before the
/// server answers, so a SIGHUP never ends the process.
fn reload_on_sighup(node: Arc<Node>, reload: Reload) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading (audit files, TLS certificates, log level)");
                reload.run(&node);
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (node, reload);
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
