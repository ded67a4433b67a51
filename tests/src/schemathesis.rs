//! Schemathesis (PyPI), the OpenAPI fuzzer, in a virtualenv under
//! `<target>/schemathesis-venv` made on first use, pinned so runs compare;
//! and the hook module that tells Vault's own 500s from Warden's bugs.

use crate::util::target_dir;
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The version the test was written against (its CLI and hook API).
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// The 500s Vault answers too, which are therefore no bug: a role that
/// its connection does not allow, a connection that does not exist, a
/// role without creation statements, and a database that refuses what a
/// role or static role asks of it (Vault's database backend returns those
/// as internal errors).
pub const VAULTS_OWN_500S: &[&str] = &[
    "is not an allowed role",
    "failed to find entry for connection",
    "empty creation statements",
    "error setting credentials",
    "unable to finish rotating credentials",
    "unable to rotate root credentials",
    "error creating database object",
];

/// `<target>/schemathesis-venv/bin/st`, installing it when missing.
pub fn ensure_st() -> Result<PathBuf> {
    let venv = target_dir().join("schemathesis-venv");
    let st = venv.join("bin").join("st");
    let python = venv.join("bin").join("python");
    let installed = || {
        Command::new(&python)
            .args([
                "-c",
                "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != sys.argv[1])",
                SCHEMATHESIS_VERSION,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if st.exists() && installed() {
        return Ok(st);
    }
    if !python.exists() {
        let out = Command::new("python3").args(["-m", "venv"]).arg(&venv).output()?;
        if !out.status.success() {
            bail!("python3 -m venv failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let out = Command::new(venv.join("bin").join("pip"))
        .args(["install", "-q", "--disable-pip-version-check"])
        .arg(format!("schemathesis=={SCHEMATHESIS_VERSION}"))
        .output()?;
    if !out.status.success() || !installed() {
        bail!(
            "pip install schemathesis=={SCHEMATHESIS_VERSION} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(st)
}

/// The hook module (written next to the venv): one custom check, any 5xx
/// is a failure unless its body is one of [`VAULTS_OWN_500S`].
pub fn write_hooks() -> Result<PathBuf> {
    let dir = target_dir().join("schemathesis-hooks");
    std::fs::create_dir_all(&dir)?;
    let allowed = serde_json::to_string(VAULTS_OWN_500S)?;
    let hooks = format!(
        r#"import schemathesis

ALLOWED = {allowed}

@schemathesis.check
def no_5xx_but_vaults_own(ctx, response, case):
    if response.status_code < 500:
        return None
    text = response.text
    if response.status_code == 500 and any(a in text for a in ALLOWED):
        return None
    raise AssertionError(f"{{response.status_code}} on {{case.method}} {{case.formatted_path}}: {{text[:500]}}")
"#
    );
    std::fs::write(dir.join("warden_hooks.py"), hooks)?;
    Ok(dir)
}
