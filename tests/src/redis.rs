//! A real Redis for the tests: a throwaway redis-server (Debian's package)
//! in a temp dir, on free ports of 127.0.0.1: plain TCP and TLS (a test CA
//! and server certificate made with the openssl CLI). The `default` user is
//! off; the admin user `warden` has a password and every right, so a wrong
//! password really fails. Nothing is saved to disk. Cleanup as for MariaDB
//! (tests/src/mariadb.rs): a reaper process kills the server by its pid
//! file and removes the directory when this process ends in any way.
//!
//! [`Resp`] is a small RESP2 client over std's TcpStream, enough for the
//! tests to log in as an issued user and try commands.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::util::{self, TempDir};

/// A throwaway Redis server; see the module docs.
pub struct TestRedis {
    port: u16,
    tls_port: u16,
    admin_password: String,
    ca_pem: String,
    other_ca_pem: String,
    dir: PathBuf,
    server: Mutex<Option<Child>>,
    reaper: Mutex<Option<(Child, ChildStdin)>>,
}

impl std::fmt::Debug for TestRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRedis")
            .field("port", &self.port)
            .field("tls_port", &self.tls_port)
            .field("dir", &self.dir)
            .finish()
    }
}

static SHARED: OnceLock<std::result::Result<TestRedis, String>> = OnceLock::new();

impl TestRedis {
    /// The server all tests of this binary share, started on first use.
    pub fn shared() -> &'static TestRedis {
        match SHARED.get_or_init(|| TestRedis::start().map_err(|e| format!("{e:#}"))) {
            Ok(r) => r,
            Err(e) => panic!("no Redis for the tests: {e}"),
        }
    }

    pub fn start() -> Result<TestRedis> {
        let server_bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| anyhow!("redis-server not found; install it (apt-get install -y redis-server)"))?;
        let dir = TempDir::new_in(Path::new("/tmp"), "warden-redis")?;
        let dir_path = dir.path().to_path_buf();
        // The reaper removes the directory.
        std::mem::forget(dir);
        let pid_file = dir_path.join("redis.pid");
        let reaper = spawn_reaper(&dir_path, &pid_file)?;
        make_certificates(&dir_path)?;
        let ca_pem = std::fs::read_to_string(dir_path.join("ca.crt"))?;
        let other_ca_pem = std::fs::read_to_string(dir_path.join("other-ca.crt"))?;
        let admin_password = util::random_alnum(24);
        let port = util::free_port()?;
        let tls_port = loop {
            let p = util::free_port()?;
            if p != port {
                break p;
            }
        };
        let d = dir_path.display();
        let conf = format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\nsave \"\"\nappendonly no\ndir {d}\n\
             pidfile {pid}\nlogfile {d}/redis.log\n\
             tls-port {tls_port}\ntls-cert-file {d}/server.crt\ntls-key-file {d}/server.key\n\
             tls-ca-cert-file {d}/ca.crt\ntls-auth-clients no\n\
             user default off\nuser warden on >{admin_password} ~* &* +@all\n",
            pid = pid_file.display()
        );
        std::fs::write(dir_path.join("redis.conf"), conf)?;
        let server = Command::new(server_bin)
            .arg(dir_path.join("redis.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start redis-server")?;
        let redis = TestRedis {
            port,
            tls_port,
            admin_password,
            ca_pem,
            other_ca_pem,
            dir: dir_path.clone(),
            server: Mutex::new(Some(server)),
            reaper: Mutex::new(Some(reaper)),
        };
        let started = Instant::now();
        while redis.admin().is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "redis-server did not accept connections; log:\n{}",
                    util::tail_of_file(&dir_path.join("redis.log"), 3000)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(redis)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port (server certificate for IP 127.0.0.1, signed by [`Self::ca_pem`]).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A CA that did not sign the server's certificate.
    pub fn other_ca_pem(&self) -> &str {
        &self.other_ca_pem
    }

    pub fn admin_user(&self) -> &str {
        "warden"
    }

    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    /// A connection logged in as the admin user.
    pub fn admin(&self) -> Result<Resp> {
        Resp::login(self.port, self.admin_user(), &self.admin_password)
    }

    /// Does `user` log in with `password`?
    pub fn logs_in(&self, user: &str, password: &str) -> bool {
        Resp::login(self.port, user, password).is_ok()
    }

    /// Whether the ACL user exists.
    pub fn user_exists(&self, user: &str) -> Result<bool> {
        Ok(self.admin()?.command(&["ACL", "GETUSER", user])? != Value::Nil)
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.lock().ok().and_then(|mut s| s.take()) {
            let _ = server.kill();
            let _ = server.wait();
        }
        if let Some((mut reaper, stdin)) = self.reaper.lock().ok().and_then(|mut r| r.take()) {
            drop(stdin);
            let _ = reaper.wait();
        }
    }
}

/// A RESP2 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(i64),
    Nil,
    List(Vec<Value>),
}

/// A RESP2 client for the tests.
pub struct Resp {
    reader: BufReader<TcpStream>,
}

impl Resp {
    /// Connect to 127.0.0.1:`port` and AUTH as `user`.
    pub fn login(port: u16, user: &str, password: &str) -> Result<Resp> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut resp = Resp {
            reader: BufReader::new(stream),
        };
        resp.command(&["AUTH", user, password])?;
        Ok(resp)
    }

    /// Run a command; a Redis error reply is an Err with the server's text.
    pub fn command(&mut self, args: &[&str]) -> Result<Value> {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.reader.get_mut().write_all(out.as_bytes())?;
        self.value()
    }

    fn value(&mut self) -> Result<Value> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at(line.len().min(1));
        match kind {
            "+" => Ok(Value::Text(rest.into())),
            "-" => Err(anyhow!("{rest}")),
            ":" => Ok(Value::Int(rest.parse()?)),
            "$" | "*" if rest.starts_with('-') => Ok(Value::Nil),
            "$" => {
                let mut data = vec![0; rest.parse::<usize>()? + 2];
                self.reader.read_exact(&mut data)?;
                data.truncate(data.len() - 2);
                Ok(Value::Text(String::from_utf8_lossy(&data).into()))
            }
            "*" => (0..rest.parse::<usize>()?)
                .map(|_| self.value())
                .collect::<Result<_>>()
                .map(Value::List),
            _ => bail!("malformed reply {line:?}"),
        }
    }
}

/// A test CA and a server certificate for 127.0.0.1 (and a CA that signed
/// nothing), with the openssl CLI.
fn make_certificates(dir: &Path) -> Result<()> {
    let run = |args: &[&str]| -> Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .context("run openssl (apt-get install -y openssl)")?;
        if !out.status.success() {
            bail!("openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n")?;
    for (name, subject) in [("ca", "/CN=warden test CA"), ("other-ca", "/CN=another CA")] {
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        let args = ["-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject];
        run(&[&["req", "-x509", "-keyout", &key, "-out", &crt][..], &args].concat())?;
    }
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ])?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ])
}

fn spawn_reaper(dir: &Path, pid_file: &Path) -> Result<(Child, ChildStdin)> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(
            r#"cat >/dev/null; pid=$(cat "$WARDEN_REDIS_PID" 2>/dev/null); [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; sleep 0.3; rm -rf "$WARDEN_REDIS_DIR""#,
        )
        .env("WARDEN_REDIS_DIR", dir)
        .env("WARDEN_REDIS_PID", pid_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn().context("spawn the Redis reaper")?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("reaper has no stdin"))?;
    stdin.flush()?;
    Ok((child, stdin))
}
