//! Builds the WebAssembly components (components/, a workspace of its own)
//! for wasm32-wasip2 and tells the host where they are through the
//! WARDEN_COMPONENT_* variables, which the host embeds with include_bytes!.
//! A nested cargo, as wasmtime's test-programs do: the components need
//! another target, and their own lock file and release profile.
//!
//! Then it compiles the built-in components to machine code ahead of time
//! (wasmtime's `precompile_component`, with the runtime's own code
//! settings from src/runtime/engine_config.rs) and hands the artefacts over
//! as WARDEN_PRECOMPILED_*, so a fresh install's first request does not
//! wait for Cranelift. The runtime still checks each artefact against its
//! engine and compiles the component itself when they differ (another CPU,
//! a cross build, where this script leaves the artefacts empty).

#[path = "src/runtime/engine_config.rs"]
mod engine_config;

use std::env;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";

/// Each component's artefact name, the variable the host reads it from,
/// and whether it is built into the server (and so precompiled); the
/// hostile driver is for tests, which drop it into a plugin directory.
const COMPONENTS: [(&str, &str, bool); 8] = [
    ("postgres_driver", "WARDEN_COMPONENT_POSTGRES", true),
    ("mysql_driver", "WARDEN_COMPONENT_MYSQL", true),
    ("password_generator", "WARDEN_COMPONENT_PASSWORD", true),
    ("hostile_driver", "WARDEN_COMPONENT_HOSTILE", false),
    ("rsa_key_generator", "WARDEN_COMPONENT_RSA_KEY", true),
    ("client_cert_generator", "WARDEN_COMPONENT_CLIENT_CERT", true),
    ("mongodb_driver", "WARDEN_COMPONENT_MONGODB", true),
    ("redis_driver", "WARDEN_COMPONENT_REDIS", true),
];

fn main() {
    let Some(host_dir) = env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
        fail("CARGO_MANIFEST_DIR is not set; run this through cargo");
    };
    let repo = host_dir.parent().unwrap_or(&host_dir).to_path_buf();
    let components = repo.join("components");
    let target_dir = repo.join("target").join("wasm");

    watch(&components, &repo.join("wit"));
    // A crate of the host's workspace that the components use too.
    println!(
        "cargo:rerun-if-changed={}",
        repo.join("crates").join("goduration").display()
    );
    require_target();

    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(components.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // Cargo reads a build script's stdout as instructions; keep the
        // nested build's output on stderr.
        .stdout(Stdio::from(io::stderr()));
    scrub_env(&mut cargo);
    match cargo.status() {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!(
            "building the components failed ({status}); to see why, run\n  \
             cargo build --release --target {TARGET} --manifest-path components/Cargo.toml --target-dir target/wasm"
        )),
        Err(e) => fail(&format!("could not run cargo to build the components: {e}")),
    }

    let release = target_dir.join(TARGET).join("release");
    let Some(out_dir) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        fail("OUT_DIR is not set; run this through cargo");
    };
    let engine = precompiling_engine();
    for (artefact, var, builtin) in COMPONENTS {
        let path = release.join(format!("{artefact}.wasm"));
        require_component(&path);
        println!("cargo:rustc-env={var}={}", path.display());
        if builtin {
            let precompiled = out_dir.join(format!("{artefact}.cwasm"));
            precompile(engine.as_ref(), &path, &precompiled);
            let var = var.replace("WARDEN_COMPONENT_", "WARDEN_PRECOMPILED_");
            println!("cargo:rustc-env={var}={}", precompiled.display());
        }
    }
}

/// The engine that compiles the built-in components: the runtime's code
/// settings, for this machine's CPU. None in a debug build, and when the
/// server is built for another target: code compiled here would not run
/// there.
fn precompiling_engine() -> Option<wasmtime::Engine> {
    // A debug build's build dependencies are not optimised: compiling there
    // would take minutes on every change of a component.
    if env::var("PROFILE").as_deref() != Ok("release") {
        return None;
    }
    if env::var_os("TARGET") != env::var_os("HOST") {
        println!("cargo:warning=cross build: the built-in components are compiled when the server first uses them");
        return None;
    }
    let mut config = wasmtime::Config::new();
    engine_config::codegen(&mut config);
    match wasmtime::Engine::new(&config) {
        Ok(engine) => Some(engine),
        Err(e) => fail(&format!("cannot set up wasmtime to precompile the components: {e:#}")),
    }
}

/// Write the machine code of the component at `wasm` to `out`; an empty
/// file when there is no engine (the runtime then compiles it).
fn precompile(engine: Option<&wasmtime::Engine>, wasm: &Path, out: &Path) {
    let code = match engine {
        None => Vec::new(),
        Some(engine) => {
            let bytes = std::fs::read(wasm).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", wasm.display())));
            engine
                .precompile_component(&bytes)
                .unwrap_or_else(|e| fail(&format!("cannot compile {}: {e:#}", wasm.display())))
        }
    };
    if let Err(e) = std::fs::write(out, code) {
        fail(&format!("cannot write {}: {e}", out.display()));
    }
}

/// Reruns this script when a component's sources, the components
/// workspace or the WIT contract change, and for nothing else.
fn watch(components: &Path, wit: &Path) {
    println!("cargo:rerun-if-changed={}", wit.display());
    for file in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", components.join(file).display());
    }
    // Every member directory (one with a Cargo.toml), but not components/
    // itself, which may hold a stray target/ from a build by hand.
    let members = std::fs::read_dir(components).unwrap_or_else(|e| {
        fail(&format!("cannot read {}: {e}", components.display()));
    });
    for entry in members.flatten() {
        let path = entry.path();
        if path.join("Cargo.toml").is_file() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// Fails early, with the fix, when the wasm32-wasip2 standard library is
/// not installed.
fn require_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let installed = libdir
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .is_some_and(|mut d| d.next().is_some());
    if !installed {
        fail(&format!(
            "the {TARGET} target is not installed, and Warden's components need it; run\n  \
             rustup target add {TARGET}"
        ));
    }
}

/// Variables of the outer build that would leak into the nested one: flags,
/// jobserver, wrappers such as clippy-driver, and what cargo sets only for
/// this build script.
const LEAKING_VARS: [&str; 8] = [
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
];

/// Prefixes of the same: target, target directory and per-target settings,
/// profile overrides, cfg and feature values, package metadata.
const LEAKING_PREFIXES: [&str; 8] = [
    "CARGO_BUILD_",
    "CARGO_TARGET_",
    "CARGO_PROFILE_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "__CARGO_",
];

fn scrub_env(cargo: &mut Command) {
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        // A job limit the user set still applies.
        let leaks = LEAKING_VARS.contains(&key)
            || (LEAKING_PREFIXES.iter().any(|p| key.starts_with(p)) && key != "CARGO_BUILD_JOBS");
        if leaks {
            cargo.env_remove(key);
        }
    }
}

/// A cdylib built for wasm32-wasip2 is already a component (the target's
/// linker wraps the module); check the header to be sure: "\0asm", then
/// version 0x0d and layer 1 for a component (a core module has 1 and 0).
fn require_component(path: &Path) {
    let mut header = [0u8; 8];
    let read = File::open(path).and_then(|mut f| f.read_exact(&mut header));
    if let Err(e) = read {
        fail(&format!("cannot read the component {}: {e}", path.display()));
    }
    if header != *b"\0asm\x0d\x00\x01\x00" {
        fail(&format!("{} is not a WebAssembly component", path.display()));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
