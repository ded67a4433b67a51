//! Command-line parsing, Vault style: single-dash flags (`-dev`,
//! `-dev-root-token-id=root`), `--flag` and `-flag value` accepted too.

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub dev: bool,
    /// `-config=FILE`: Vault's HCL server configuration (not with -dev).
    pub config: Option<PathBuf>,
    pub root_token: Option<String>,
    pub listen: SocketAddr,
    pub plugin_dir: Option<PathBuf>,
    /// Deadline of one component call.
    pub plugin_timeout: Duration,
    /// `-revoke-retry-base`, `-revoke-retry-limit`: back-off and attempts
    /// before an expired lease that cannot be revoked becomes irrevocable.
    pub revoke_retry: crate::core::expiration::RetryPolicy,
    pub log_level: String,
    /// Whether -log-level was given (it then wins over the file's log_level).
    pub log_level_set: bool,
}

#[derive(Debug)]
pub enum Command {
    Server(ServerOptions),
    Version,
    Help,
}

pub const USAGE: &str = "Usage: warden server -dev [options]
       warden server -config=FILE [options]

  -dev                          run an in-memory, unsealed server (nothing else needed)
  -config=FILE                  Vault's HCL server configuration: listener, storage
                                (sqlite, postgresql), plugin_directory, TTLs, log_level
  -dev-root-token-id=ID         the root token (default: a random one)
  -dev-listen-address=ADDR      where to listen (default: 127.0.0.1:8200)
  -dev-plugin-dir=DIR           register every DIR/<name>.wasm as database plugin <name>
  -plugin-timeout=DURATION      deadline of one plugin call (default: 30s)
  -revoke-retry-base=DURATION   first wait before retrying a failed revocation
                                of an expired lease; doubles each time, at
                                most 5m (default: 10s)
  -revoke-retry-limit=N         failed revocations before the lease becomes
                                irrevocable (default: 6; 0: retry forever)
  -log-level=LEVEL              trace, debug, info, warn or error (default: info)
";

pub fn parse(args: &[String]) -> anyhow::Result<Command> {
    let Some((first, rest)) = args.split_first() else {
        return Ok(Command::Help);
    };
    match first.as_str() {
        // `warden server -h` asks for the usage, as `vault server -h` does.
        "server" if rest.iter().any(|a| matches!(a.as_str(), "-h" | "-help" | "--help")) => Ok(Command::Help),
        "server" => parse_server(rest).map(Command::Server),
        "version" | "-version" | "--version" => Ok(Command::Version),
        "help" | "-h" | "-help" | "--help" => Ok(Command::Help),
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

fn parse_server(args: &[String]) -> anyhow::Result<ServerOptions> {
    let mut o = ServerOptions {
        dev: false,
        config: None,
        root_token: None,
        listen: "127.0.0.1:8200".parse()?,
        plugin_dir: None,
        plugin_timeout: Duration::from_secs(30),
        revoke_retry: Default::default(),
        log_level: "info".into(),
        log_level_set: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let flag = arg.trim_start_matches('-');
        if flag.len() == arg.len() {
            bail!("unexpected argument {arg:?}\n\n{USAGE}");
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let mut value = || -> anyhow::Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("flag -{name} needs a value")),
            }
        };
        match name {
            "dev" => o.dev = inline.as_deref().is_none_or(|v| v == "true"),
            "dev-root-token-id" => o.root_token = Some(value()?),
            "dev-listen-address" => o.listen = value()?.parse().context("-dev-listen-address")?,
            "dev-plugin-dir" => o.plugin_dir = Some(PathBuf::from(value()?)),
            "plugin-timeout" => {
                let secs = crate::framework::convert::parse_duration(&value()?).map_err(anyhow::Error::msg)?;
                if secs <= 0 {
                    bail!("-plugin-timeout must be positive");
                }
                o.plugin_timeout = Duration::from_secs(secs as u64);
            }
            "revoke-retry-base" => {
                let secs = crate::framework::convert::parse_duration(&value()?).map_err(anyhow::Error::msg)?;
                if secs <= 0 {
                    bail!("-revoke-retry-base must be positive");
                }
                o.revoke_retry.base = Duration::from_secs(secs as u64);
            }
            "revoke-retry-limit" => {
                o.revoke_retry.limit = value()?
                    .parse()
                    .context("-revoke-retry-limit must be a number of attempts (0: retry forever)")?;
            }
            "log-level" => {
                o.log_level = value()?;
                o.log_level_set = true;
            }
            "config" => o.config = Some(PathBuf::from(value()?)),
            _ => bail!("unknown flag {arg:?}\n\n{USAGE}"),
        }
    }
    match (o.dev, &o.config) {
        (false, None) => bail!("either -dev or -config=FILE is needed\n\n{USAGE}"),
        (true, Some(_)) => bail!("-dev and -config cannot be used together\n\n{USAGE}"),
        _ => {}
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn vault_style_dev_flags() {
        let Command::Server(o) = parse(&args(
            "server -dev -dev-root-token-id=root --dev-listen-address 127.0.0.1:9999",
        ))
        .unwrap() else {
            panic!("not a server command")
        };
        assert!(o.dev);
        assert_eq!(o.root_token.as_deref(), Some("root"));
        assert_eq!(o.listen.port(), 9999);
    }

    #[test]
    fn revoke_retry_flags() {
        let Command::Server(o) = parse(&args("server -dev")).unwrap() else {
            panic!("not a server command")
        };
        assert_eq!(o.revoke_retry, crate::core::expiration::RetryPolicy::default());
        let Command::Server(o) = parse(&args("server -dev -revoke-retry-base=2s -revoke-retry-limit 3")).unwrap()
        else {
            panic!("not a server command")
        };
        assert_eq!(o.revoke_retry.base, Duration::from_secs(2));
        assert_eq!(o.revoke_retry.limit, 3);
        assert!(parse(&args("server -dev -revoke-retry-base=0s")).is_err());
        assert!(parse(&args("server -dev -revoke-retry-limit=many")).is_err());
    }

    #[test]
    fn unknown_flags_are_refused() {
        assert!(parse(&args("server -dev -bogus")).is_err());
        assert!(parse(&args("server")).is_err());
    }

    #[test]
    fn help_is_not_an_error() {
        for a in ["-h", "--help", "help"] {
            assert!(matches!(parse(&args(a)), Ok(Command::Help)), "{a}");
        }
        assert!(matches!(parse(&args("server -h")), Ok(Command::Help)));
        assert!(matches!(parse(&args("server -dev -help")), Ok(Command::Help)));
    }
}
