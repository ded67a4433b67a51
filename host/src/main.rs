//! The `warden` binary: parse the command line and run the server.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match warden::cli::parse(&args).and_then(warden::server::run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The message and its causes, never a stack trace: these are
            // an operator's mistakes (a flag, a config line), and
            // RUST_BACKTRACE=1 in the environment should not bury them.
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// A faster allocator than glibc's for the many small, short-lived
// allocations of a request (measured: see bench/README in docs/testing.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
