//! Schemathesis (PyPI), the OpenAPI fuzzer, in a virtualenv under
//! `<target>/schemathesis-venv` made on first use, pinned so runs compare;
//! and the hook module that tells Vault's own 500s from Warden's bugs.

use crate::util::target_dir;
use anyhow::Result;
use std::path::PathBuf;

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
    let venv = crate::util::pip_venv("schemathesis-venv", "schemathesis", SCHEMATHESIS_VERSION, "st")?;
    Ok(venv.join("bin").join("st"))
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
