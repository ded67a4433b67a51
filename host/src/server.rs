//! Starting the server: logging, the plugin runtime and catalog, the core
//! over its storage, and the HTTP listener, until SIGINT or SIGTERM.

use crate::cli::{Command, ServerOptions, USAGE};
use crate::core::{Core, catalog};
use crate::runtime::Runtime;
use crate::storage::MemoryBackend;
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

async fn serve(opts: ServerOptions) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            // PostgreSQL notices ("no privileges could be revoked") are noise.
            "warden={0},{0},sqlx::postgres::notice=error",
            opts.log_level
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let runtime = Runtime::new(opts.plugin_timeout)?;
    catalog::register_builtins(&runtime);
    if let Some(dir) = &opts.plugin_dir {
        let names = catalog::register_dir(&runtime, dir)?;
        tracing::info!(dir = %dir.display(), plugins = ?names, "registered plugins from the dev plugin directory");
    }
    runtime.warm_up();

    let root_token = opts.root_token.clone().unwrap_or_else(|| {
        use rand::Rng;
        let s: String = rand::rng()
            .sample_iter(&rand::distr::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        format!("hvs.{s}")
    });
    let core = Core::start(Arc::new(MemoryBackend::new()), runtime, root_token.clone()).await?;

    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let addr = listener.local_addr()?;
    println!(
        "==> Warden server started (dev mode: in-memory storage, unsealed)\n\n\
         \x20   Api Address: http://{addr}\n\n\
         WARNING! dev mode is enabled! Nothing is kept on disk and the root token is printed below.\n\n\
         You may need to set the following environment variables:\n\n\
         \x20   $ export VAULT_ADDR='http://{addr}'\n\n\
         Root Token: {root_token}\n"
    );
    axum::serve(listener, crate::api::router(core))
        .with_graceful_shutdown(shutdown())
        .await?;
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
