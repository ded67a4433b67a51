//! The `warden` binary: parse the command line and run the server.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = warden::cli::parse(&args)?;
    warden::server::run(command)
}
