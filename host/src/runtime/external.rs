//! Drivers registered in the plugin catalog (`sys/plugins/catalog`): what an
//! entry is, how its `.wasm` file is found inside the plugin directory and
//! checked against the SHA-256 the operator registered, and which imports a
//! component may have. The entries themselves are kept by the core
//! (`core/plugin_catalog.rs`); the runtime holds the ones of the unsealed
//! core and loads each on first use.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// One registered plugin version, as stored and as `sys/plugins/catalog`
/// shows it. `args` and `env` are accepted for Vault's clients and ignored:
/// a component gets no arguments and no environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub name: String,
    /// Vault's plugin type; Warden runs `database` plugins only.
    #[serde(rename = "type")]
    pub kind: String,
    /// "" (unversioned) or a semantic version with a leading `v`.
    #[serde(default)]
    pub version: String,
    /// The file name inside the plugin directory.
    pub command: String,
    /// Lower-case hex.
    pub sha256: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
}

/// Why a registered file cannot be used; every text is safe to show.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("could not set plugin, plugin directory is not configured")]
    NoDirectory,
    #[error("cannot execute files outside of configured plugin directory")]
    OutsideDirectory,
    #[error("plugin file {0:?} was not found in the plugin directory")]
    Missing(String),
    #[error("checksums did not match: the SHA-256 of {command:?} is {actual}, not the registered {expected}")]
    Checksum {
        command: String,
        expected: String,
        actual: String,
    },
    #[error("cannot read plugin file {0:?}: {1}")]
    Unreadable(String, String),
}

/// The path of `command` inside `dir`: a plain file name or a relative path
/// that, symbolic links resolved, stays inside the directory (Vault's rule
/// for plugin commands).
pub fn confined(dir: Option<&Path>, command: &str) -> Result<PathBuf, LoadError> {
    let dir = dir.ok_or(LoadError::NoDirectory)?;
    let relative = Path::new(command);
    if command.is_empty() || relative.is_absolute() {
        return Err(LoadError::OutsideDirectory);
    }
    let root = dir
        .canonicalize()
        .map_err(|e| LoadError::Unreadable(dir.display().to_string(), e.to_string()))?;
    let path = match root.join(relative).canonicalize() {
        Ok(p) => p,
        // A path that leaves the directory is refused as such even when
        // the file it names does not exist.
        Err(_)
            if relative
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir)) =>
        {
            return Err(LoadError::OutsideDirectory);
        }
        Err(_) => return Err(LoadError::Missing(command.to_string())),
    };
    if !path.starts_with(&root) {
        return Err(LoadError::OutsideDirectory);
    }
    if !path.is_file() {
        return Err(LoadError::Missing(command.to_string()));
    }
    Ok(path)
}

/// Read the file an entry names and check it against the registered digest.
pub fn read_verified(dir: Option<&Path>, command: &str, sha256: &str) -> Result<Vec<u8>, LoadError> {
    let path = confined(dir, command)?;
    let wasm = std::fs::read(&path).map_err(|e| LoadError::Unreadable(command.to_string(), e.to_string()))?;
    let actual = hex::encode(Sha256::digest(&wasm));
    if !actual.eq_ignore_ascii_case(sha256) {
        return Err(LoadError::Checksum {
            command: command.to_string(),
            expected: sha256.to_ascii_lowercase(),
            actual,
        });
    }
    Ok(wasm)
}

/// A version as the catalog keeps it: "" stays "", anything else must be a
/// semantic version and gets a leading `v` (Vault accepts `1.2.3` and
/// `v1.2.3` alike).
pub fn normalize_version(version: &str) -> Result<String, String> {
    let version = version.trim();
    if version.is_empty() {
        return Ok(String::new());
    }
    let bare = version.strip_prefix('v').unwrap_or(version);
    semver::Version::parse(bare)
        .map(|v| format!("v{v}"))
        .map_err(|e| format!("version {version:?} is not a valid semantic version: {e}"))
}

/// The highest of some normalized versions ("" counts lowest).
pub fn highest<'a>(versions: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    versions
        .filter_map(|v| Some((semver::Version::parse(v.strip_prefix('v')?).ok()?, v)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, v)| v)
}

/// The WASI interfaces a component may import. Rust's standard library for
/// `wasm32-wasip2` links clocks, random, I/O streams, the CLI environment
/// and exit, standard streams and the filesystem's types and preopens
/// whether a program uses them or not; the host gives every one of them
/// empty (no variables, no arguments, no preopened directory), so they are
/// harmless. Sockets, HTTP and anything else are refused: a component
/// reaches the network only through the host imports of its grant.
const ALLOWED_WASI: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// The first import of `imports` that a component may not have, if any.
/// Every `warden:plugin` interface is allowed (the linker still checks that
/// the host has the one asked for).
pub fn forbidden_import<'a>(imports: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    imports.into_iter().find(|name| {
        let unversioned = name.split('@').next().unwrap_or(name);
        !(unversioned.starts_with("warden:plugin/") || ALLOWED_WASI.contains(&unversioned))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &[u8])]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        for (name, body) in files {
            std::fs::write(d.path().join(name), body).unwrap();
        }
        d
    }

    /// A throwaway directory removed on drop (no tempfile crate in the host).
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let p = std::env::temp_dir().join(format!("warden-external-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn a_command_must_stay_inside_the_plugin_directory() {
        let d = dir_with(&[("ok.wasm", b"x")]);
        let outside = dir_with(&[("evil.wasm", b"x")]);
        assert!(confined(Some(d.path()), "ok.wasm").is_ok());
        assert_eq!(confined(None, "ok.wasm"), Err(LoadError::NoDirectory));
        assert_eq!(confined(Some(d.path()), "../ok.wasm"), Err(LoadError::OutsideDirectory));
        assert_eq!(
            confined(Some(d.path()), "../nowhere.wasm"),
            Err(LoadError::OutsideDirectory)
        );
        let abs = outside.path().join("evil.wasm");
        assert_eq!(
            confined(Some(d.path()), abs.to_str().unwrap()),
            Err(LoadError::OutsideDirectory)
        );
        assert_eq!(
            confined(Some(d.path()), "missing.wasm"),
            Err(LoadError::Missing("missing.wasm".into()))
        );
        // A link inside the directory to a file outside it is refused.
        std::os::unix::fs::symlink(&abs, d.path().join("link.wasm")).unwrap();
        assert_eq!(confined(Some(d.path()), "link.wasm"), Err(LoadError::OutsideDirectory));
        // A directory is no plugin file.
        std::fs::create_dir(d.path().join("sub")).unwrap();
        assert_eq!(confined(Some(d.path()), "sub"), Err(LoadError::Missing("sub".into())));
    }

    #[test]
    fn a_file_is_used_only_with_its_registered_digest() {
        let d = dir_with(&[("p.wasm", b"abc")]);
        let good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(read_verified(Some(d.path()), "p.wasm", good).unwrap(), b"abc");
        assert!(read_verified(Some(d.path()), "p.wasm", &good.to_uppercase()).is_ok());
        let bad = "00".repeat(32);
        let err = read_verified(Some(d.path()), "p.wasm", &bad).unwrap_err();
        assert!(
            matches!(err, LoadError::Checksum { ref actual, .. } if actual == good),
            "{err}"
        );
    }

    #[test]
    fn versions_are_semantic_and_carry_a_v() {
        assert_eq!(normalize_version("").unwrap(), "");
        assert_eq!(normalize_version("1.2.3").unwrap(), "v1.2.3");
        assert_eq!(normalize_version("v1.2.3-rc.1+abc").unwrap(), "v1.2.3-rc.1+abc");
        assert!(normalize_version("1.2").is_err());
        assert!(normalize_version("banana").is_err());
        assert_eq!(
            highest(["v1.2.0", "v1.10.0", "v1.9.9", ""].into_iter()),
            Some("v1.10.0")
        );
        assert_eq!(highest([""].into_iter()), None);
    }

    #[test]
    fn only_warden_and_harmless_wasi_interfaces_may_be_imported() {
        let std_imports = [
            "wasi:cli/environment@0.2.6",
            "wasi:filesystem/types@0.2.6",
            "wasi:io/streams@0.2.6",
            "warden:plugin/sql@0.1.0",
        ];
        assert_eq!(forbidden_import(std_imports), None);
        assert_eq!(
            forbidden_import(["wasi:io/poll@0.2.0", "wasi:sockets/tcp@0.2.0"]),
            Some("wasi:sockets/tcp@0.2.0")
        );
        assert_eq!(
            forbidden_import(["wasi:http/outgoing-handler@0.2.0"]),
            Some("wasi:http/outgoing-handler@0.2.0")
        );
        assert_eq!(forbidden_import(["other:thing/x"]), Some("other:thing/x"));
    }
}
