//! A real Vault client library against Warden: hvac, the Python client,
//! drives the database secrets engine end to end through its public API
//! (tests/hvac/smoke.py), and PostgreSQL confirms that every login it was
//! issued is gone afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use warden_tests::util::{target_dir, workspace_dir};
use warden_tests::{TestPostgres, WardenServer};

/// The hvac release the script is written against.
const HVAC_VERSION: &str = "2.4.0";
/// The Python that creates the virtualenv: `WARDEN_TEST_PYTHON`, else `python3`.
const PYTHON_ENV: &str = "WARDEN_TEST_PYTHON";
/// Where the script mounts the database engine (not `db/`, so the mount is
/// the script's own doing).
const MOUNT: &str = "hvacdb";
/// Upper bound on one run of the script.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test]
async fn hvac_drives_the_database_engine_end_to_end() -> Result<()> {
    let python = tokio::task::spawn_blocking(ensure_hvac_venv).await??;
    let scratch = TestPostgres::shared().scratch("hvac").await?;
    let server = WardenServer::start().await?;
    let script = workspace_dir().join("tests").join("hvac").join("smoke.py");

    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg(&script)
        .env("VAULT_ADDR", server.url())
        .env("VAULT_TOKEN", server.root_token())
        .env("PG_URL_TEMPLATE", scratch.connection_url_template())
        .env("PG_USER", &scratch.admin_user)
        .env("PG_PASSWORD", &scratch.admin_password)
        .env("MOUNT", MOUNT)
        // requests honours proxy variables; the server is local.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("VAULT_NAMESPACE")
        .env_remove("PYTHONPATH")
        .kill_on_drop(true);
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, cmd.output())
        .await
        .with_context(|| {
            format!(
                "{} did not finish within {}s",
                script.display(),
                SCRIPT_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("run {} {}", python.display(), script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Shown by libtest when the test fails (and always with --nocapture).
    eprintln!("{}", shown(&output));

    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.ends_with(" failed") && l.contains(" passed, "));
    assert!(
        output.status.success(),
        "smoke.py exited with {} ({}); see the script's output above",
        output.status,
        summary.unwrap_or("no summary line")
    );
    assert!(
        summary.is_some_and(|s| s.ends_with(", 0 failed")),
        "smoke.py exited 0 but its summary is {summary:?}; see the script's output above"
    );

    let gone: Vec<String> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("GONE: "))
        .context("no GONE: line in the script's output (shown above)")?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    assert!(
        !gone.is_empty(),
        "the GONE: line names no logins; see the script's output above"
    );
    let mut still_there = Vec::new();
    for name in &gone {
        if scratch.role_exists(name).await? {
            still_there.push(name.clone());
        }
    }
    assert!(
        still_there.is_empty(),
        "logins revoked through hvac still exist in PostgreSQL: {still_there:?} (of {gone:?}); see the script's output above"
    );
    Ok(())
}

/// `<target>/hvac-venv/bin/python`, with hvac importable: the virtualenv is
/// (re)created and hvac installed only when that Python cannot import hvac
/// [`HVAC_VERSION`].
fn ensure_hvac_venv() -> Result<PathBuf> {
    let venv = target_dir().join("hvac-venv");
    let python = venv.join("bin").join("python");
    if has_hvac(&python) {
        return Ok(python);
    }
    let base = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_string());
    run(Command::new(&base).args(["-m", "venv", "--clear"]).arg(&venv)).with_context(|| {
        format!(
            "create a virtualenv at {} with {base} (needs venv and ensurepip: Debian's \
             python3-venv package; or set {PYTHON_ENV} to another Python)",
            venv.display()
        )
    })?;
    let requirement = format!("hvac=={HVAC_VERSION}");
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        &requirement,
    ]))
    .with_context(|| format!("pip install {requirement} into {}", venv.display()))?;
    if !has_hvac(&python) {
        bail!(
            "{} still cannot import hvac {HVAC_VERSION} after pip install",
            python.display()
        );
    }
    Ok(python)
}

/// Whether `python` imports hvac, in version [`HVAC_VERSION`].
fn has_hvac(python: &Path) -> bool {
    let probe = format!("import hvac, importlib.metadata as m; assert m.version('hvac') == '{HVAC_VERSION}'");
    Command::new(python)
        .args(["-c", &probe])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> Result<()> {
    let output = cmd.output().with_context(|| format!("spawn {cmd:?}"))?;
    if !output.status.success() {
        bail!("{cmd:?} failed ({})\n{}", output.status, shown(&output));
    }
    Ok(())
}

/// A process's stdout and stderr for messages.
fn shown(output: &Output) -> String {
    format!(
        "---- stdout ----\n{}---- stderr ----\n{}---- end ----",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
