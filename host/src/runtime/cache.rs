//! Compiled components: the machine code build.rs compiled for the
//! built-in components, and the on-disk cache of what the server compiled
//! itself (registered plugins; built-ins whose precompiled code does not
//! fit), so a restart does not pay Cranelift's compile time again. Cache
//! entries are keyed by the component's SHA-256 and the engine's
//! compatibility hash (wasmtime version and settings), so a stale entry is
//! never loaded by an incompatible engine.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A hash of everything in `engine` that compiled code must agree with
/// (wasmtime's version, target, CPU features, settings).
fn engine_hash(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

/// A built-in component from the machine code build.rs compiled for it;
/// None when there is none or it does not fit this engine (another CPU:
/// the caller compiles the component instead).
pub fn load_precompiled(engine: &Engine, code: &'static [u8]) -> Option<Component> {
    if code.is_empty() {
        return None;
    }
    #[expect(
        unsafe_code,
        reason = "wasmtime can only load a precompiled component unsafely; see SAFETY"
    )]
    // SAFETY: `code` is a static of this binary, written by build.rs with
    // `Engine::precompile_component` of the wasmtime version this binary
    // links; wasmtime checks its header and settings against `engine` and
    // refuses code compiled for another configuration or CPU.
    let loaded = unsafe { Component::deserialize(engine, code) };
    match loaded {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::info!(error = %e, "precompiled component does not fit this engine; compiling it");
            None
        }
    }
}

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
        let digest = Sha256::digest(wasm);
        let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}-{:016x}.cwasm", engine_hash(engine)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Runtime, catalog};

    /// The code build.rs compiled loads into the runtime's engine: the two
    /// share engine_config.rs, and a setting added to one side only would
    /// silently send every fresh install back to compiling.
    #[test]
    fn precompiled_builtins_load_into_the_runtime_engine() {
        let runtime = Runtime::new(std::time::Duration::from_secs(5)).unwrap();
        catalog::register_builtins(&runtime);
        if cfg!(debug_assertions) {
            // A debug build precompiles nothing.
            assert!(runtime.plugins().iter().all(|p| p.precompiled.is_empty()));
            return;
        }
        for plugin in runtime.plugins() {
            assert!(
                load_precompiled(&runtime.engine, plugin.precompiled).is_some(),
                "{}",
                plugin.name
            );
        }
    }

    /// Code compiled with other settings (here without the epoch checks the
    /// deadlines rely on) is refused, so the caller compiles instead of
    /// running code that would ignore its deadline.
    #[test]
    fn code_for_another_engine_is_refused() {
        let runtime = Runtime::new(std::time::Duration::from_secs(5)).unwrap();
        catalog::register_builtins(&runtime);
        let plugin = runtime.plugin(catalog::PASSWORD_GENERATOR).unwrap();
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        let other = Engine::new(&config).unwrap();
        let code = other.precompile_component(&plugin.wasm).unwrap();
        assert!(load_precompiled(&runtime.engine, Vec::leak(code)).is_none());
        assert!(load_precompiled(&runtime.engine, b"not compiled code").is_none());
        assert!(load_precompiled(&runtime.engine, &[]).is_none());
    }
}
