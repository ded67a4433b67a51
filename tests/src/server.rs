//! The `warden` binary started as a process in dev mode on a free port of
//! 127.0.0.1, killed when the value is dropped. Its stdout and stderr go to a
//! log file; a test that fails while the server is alive gets the log's tail
//! printed (libtest shows it with the failure).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::client::Client;
use crate::util::{self, TempDir};

/// Environment variable naming the `warden` binary.
pub const WARDEN_BIN_ENV: &str = "WARDEN_BIN";
/// How long a starting server may take to answer /v1/sys/health with 200.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Options for [`WardenServer::start_with`].
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// `-dev-plugin-dir=<dir>`.
    pub plugin_dir: Option<PathBuf>,
    /// More arguments after the dev flags.
    pub extra_args: Vec<String>,
    /// More environment variables for the server.
    pub env: Vec<(String, String)>,
}

/// A running `warden server -dev`.
#[derive(Debug)]
pub struct WardenServer {
    child: Option<Child>,
    addr: String,
    root_token: String,
    log_path: PathBuf,
    _dir: TempDir,
}

/// The `warden` binary: `WARDEN_BIN`, else `<target>/release/warden`.
pub fn warden_bin() -> PathBuf {
    match std::env::var_os(WARDEN_BIN_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => util::target_dir().join("release").join("warden"),
    }
}

impl WardenServer {
    /// Start a dev-mode server with default options.
    pub async fn start() -> Result<WardenServer> {
        WardenServer::start_with(ServerOptions::default()).await
    }

    /// Start a dev-mode server and wait until /v1/sys/health answers 200.
    pub async fn start_with(options: ServerOptions) -> Result<WardenServer> {
        let bin = warden_bin();
        if !bin.is_file() {
            bail!(
                "warden binary not found at {} (build it with `cargo build --release`, \
                 or set {WARDEN_BIN_ENV})",
                bin.display()
            );
        }
        let mut last_error = anyhow!("no attempt");
        // A free port can be taken between our probe and the server's bind:
        // retry on a new port when the server exits early.
        for _attempt in 0..3 {
            match WardenServer::start_once(&bin, &options).await {
                Ok(server) => return Ok(server),
                Err(StartError::ExitedEarly(e)) => last_error = e,
                Err(StartError::Fatal(e)) => return Err(e),
            }
        }
        Err(last_error)
    }

    async fn start_once(bin: &Path, options: &ServerOptions) -> Result<WardenServer, StartError> {
        let dir = TempDir::new("warden-server").map_err(|e| StartError::Fatal(e.into()))?;
        let port = util::free_port().map_err(|e| StartError::Fatal(e.into()))?;
        let addr = format!("127.0.0.1:{port}");
        let root_token = format!("warden-test-root-{}", util::random_alnum(16));
        let log_path = dir.path().join("warden.log");
        let log = File::create(&log_path).map_err(|e| StartError::Fatal(e.into()))?;
        let log_err = log.try_clone().map_err(|e| StartError::Fatal(e.into()))?;

        let mut cmd = Command::new(bin);
        cmd.arg("server")
            .arg("-dev")
            .arg(format!("-dev-root-token-id={root_token}"))
            .arg(format!("-dev-listen-address={addr}"));
        if let Some(plugin_dir) = &options.plugin_dir {
            cmd.arg(format!("-dev-plugin-dir={}", plugin_dir.display()));
        }
        cmd.args(&options.extra_args)
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let command_line = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))
            .map_err(StartError::Fatal)?;

        let mut server = WardenServer {
            child: Some(child),
            addr,
            root_token,
            log_path,
            _dir: dir,
        };
        let client = server.client();
        let started = Instant::now();
        loop {
            if let Some(child) = server.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = server.log_tail(8000);
                server.child = None;
                return Err(StartError::ExitedEarly(anyhow!(
                    "{command_line} exited during start-up ({status}); its output:\n{log}"
                )));
            }
            let last = match client.req("GET", "/v1/sys/health", None).await {
                Ok((200, _)) => return Ok(server),
                Ok((status, body)) => format!("status {status}: {body}"),
                Err(e) => format!("{e:#}"),
            };
            if started.elapsed() > START_TIMEOUT {
                let log = server.log_tail(8000);
                return Err(StartError::Fatal(anyhow!(
                    "{command_line} did not answer GET /v1/sys/health with 200 within {}s \
                     (last: {last}); its output:\n{log}",
                    START_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// The server's process id (for /proc/<pid>/stat).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A client with the root token.
    pub fn client(&self) -> Client {
        Client::new(&self.url(), Some(&self.root_token))
    }

    /// Path of the file holding the server's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `max` bytes of the server's output.
    pub fn log_tail(&self, max: usize) -> String {
        util::tail_of_file(&self.log_path, max)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kill the server and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for WardenServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- warden server output ({}) ----\n{}\n---- end of warden output ----",
                self.log_path.display(),
                self.log_tail(16000)
            );
        }
        self.stop();
    }
}

enum StartError {
    /// The process exited before answering: maybe the port was taken.
    ExitedEarly(anyhow::Error),
    Fatal(anyhow::Error),
}
