//! On-disk cache of compiled components, so a restart does not pay
//! Cranelift's compile time again. Entries are keyed by the component's
//! SHA-256 and the engine's compatibility hash (wasmtime version and
//! settings), so a stale entry is never loaded by an incompatible engine.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Clone)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// The cache directory: `$WARDEN_CACHE_DIR`, else `$XDG_CACHE_HOME/warden`,
    /// else `~/.cache/warden`. None when none can be found or created.
    pub fn default_location() -> Option<DiskCache> {
        let dir = std::env::var_os("WARDEN_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("warden")))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/warden")))?;
        std::fs::create_dir_all(&dir).ok()?;
        Some(DiskCache { dir })
    }

    fn path_for(&self, engine: &Engine, wasm: &[u8]) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let digest = Sha256::digest(wasm);
        let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}-{:016x}.cwasm", h.finish()))
    }

    /// Load a compiled component, or compile and store it.
    pub fn load_or_compile(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Component> {
        let path = self.path_for(engine, wasm);
        if path.exists() {
            match load(engine, &path) {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable compiled component"),
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Ok(bytes) = component.serialize() {
            // Write then rename, so a crash never leaves a torn file behind.
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
        Ok(component)
    }
}

#[expect(
    unsafe_code,
    reason = "wasmtime can only load a precompiled component unsafely; see SAFETY"
)]
fn load(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file was written by `Component::serialize` of an engine with
    // the same compatibility hash (it is in the name), in a directory only
    // the server's user writes to. wasmtime still checks the header and
    // rejects a file from another version or configuration.
    unsafe { Component::deserialize_file(engine, path) }
}
