//! The `warden` binary: parse the command line and run the server.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = warden::cli::parse(&args)?;
    warden::server::run(command)
}

// A faster allocator than glibc's for the many small, short-lived
// allocations of a request (measured: see bench/README in docs/testing.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
