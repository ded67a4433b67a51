//! Starting the server: logging, the plugin runtime and catalog, the node
//! (storage and seal) and the HTTP listeners, until SIGINT or SIGTERM.
//! `-dev` runs in memory, initialised with one key share and unsealed;
//! `-config=FILE` opens the configured storage and starts sealed (or
//! uninitialised), as Vault does. SIGHUP reopens the audit devices' files
//! (log rotation), as Vault's reload does.

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

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            // PostgreSQL notices ("no privileges could be revoked") are noise.
            "warden={0},{0},sqlx::postgres::notice=error",
            level
        ))
    });
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in log files.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
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
        Some(cfg) => serve_config(cfg, runtime, engines).await,
    }
}

async fn serve_dev(opts: ServerOptions, runtime: Arc<Runtime>, engines: Arc<Registry>) -> anyhow::Result<()> {
    let node = Node::open(Arc::new(MemoryBackend::new()), "inmem", runtime, engines).await?;
    let init = node
        .init(
            1,
            1,
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
    reopen_audit_files_on_sighup(node.clone())?;
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
        StorageConfig::Postgresql { connection_url, table } => Arc::new(
            PostgresBackend::connect(connection_url, table)
                .await
                .context("connecting to the postgresql storage")?,
        ),
        StorageConfig::Inmem => Arc::new(MemoryBackend::new()),
    })
}

async fn serve_config(cfg: ServerConfig, runtime: Arc<Runtime>, engines: Arc<Registry>) -> anyhow::Result<()> {
    ttl::set_system_ttls(cfg.default_lease_ttl, cfg.max_lease_ttl);
    let physical = open_storage(&cfg.storage).await?;
    let node = Node::open(physical, cfg.storage.type_name(), runtime, engines)
        .await
        .context("reading the storage")?;
    reopen_audit_files_on_sighup(node.clone())?;
    let router = crate::api::router(node.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    for l in &cfg.listeners {
        servers.push(listen(l, router.clone(), stopped.clone()).await?);
    }
    println!(
        "==> Warden server started: storage {}, {}\n",
        cfg.storage.type_name(),
        match (node.initialized(), node.sealed()) {
            (false, _) => "not initialized (PUT /v1/sys/init)",
            (true, true) => "sealed (PUT /v1/sys/unseal with the key shares)",
            (true, false) => "unsealed",
        }
    );
    shutdown().await;
    let _ = stop.send(true);
    for s in servers {
        let _ = s.await;
    }
    Ok(())
}

/// Bind one listener and serve on it in the background (api::listener:
/// the same timeouts and connection cap for plain and TLS listeners).
async fn listen(
    l: &Listener,
    router: axum::Router,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr: std::net::SocketAddr = l.address.parse().context("listener address")?;
    let tls = match (l.tls_disable, &l.tls_cert_file, &l.tls_key_file) {
        (true, _, _) => None,
        (false, Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
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
    Ok(tokio::spawn(crate::api::listener::serve(
        listener,
        tls,
        l.http.clone(),
        router,
        stopped,
    )))
}

/// SIGHUP: the audit devices of the unsealed core close and reopen their
/// files (a rotated log goes on in a new file at its path). Registered
/// before the server answers, so a SIGHUP never ends the process.
fn reopen_audit_files_on_sighup(node: Arc<Node>) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reopening the audit files");
                if let Ok(core) = node.core() {
                    core.audit.reopen();
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = node;
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
