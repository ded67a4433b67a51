//! The compiler settings of Warden's wasmtime engine: everything that
//! changes the machine code of a compiled component. Shared, through
//! `#[path]`, by the runtime's engine and by build.rs, which compiles the
//! built-in components ahead of time: wasmtime loads a precompiled
//! component only into an engine whose settings hash the same, so both
//! must come from this one function. Settings that do not change the code
//! (the pooling allocator, its limits) belong to the runtime alone.

/// Apply the code-generation settings to `config`.
pub fn codegen(config: &mut wasmtime::Config) -> &mut wasmtime::Config {
    // Epoch interruption compiles a deadline check into every loop and
    // function entry: the runtime's per-call deadline depends on it.
    config.wasm_component_model(true).epoch_interruption(true)
}
