//! `warden:plugin/mongo`: MongoDB through clients that the host owns (the
//! mongodb crate). A component opens a URL; the host checks every host in it
//! against the call's outbound allowlist (outbound.rs: the hosts and ports
//! of the mount's configured connection URL) and hands back a handle on a
//! client shared by every call for that configuration and URL. Each client has timeouts on connecting,
//! on server selection and on every command, and a bound on the commands
//! waiting at once, so an unreachable server fails requests quickly instead
//! of piling them up. Commands and replies cross the boundary as MongoDB
//! extended JSON; the conversion to and from BSON happens here.

use super::outbound::Outbound;
use super::{CallState, denied};
use crate::bindings::driver::warden::plugin::mongo::{self, ClientOptions, Host, HostClient};
use crate::bindings::driver::warden::plugin::types::Error;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_SELECTION_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
const DEFAULT_POOL_SIZE: u32 = 10;
/// Commands in flight or waiting on one client; more wait for a slot, at
/// most the command timeout. An unreachable server thus holds at most this
/// many requests, each for at most the timeouts above.
const MAX_INFLIGHT: usize = 64;
pub const DEFAULT_PORT: u16 = 27017;

/// One client and the limits of its use.
#[derive(Clone)]
pub struct MongoHandle {
    client: mongodb::Client,
    hosts: Vec<(String, u16)>,
    connect_timeout: Duration,
    command_timeout: Duration,
    inflight: Arc<Semaphore>,
    /// Set when the scope is closed: an idle instance may still hold this
    /// handle as its last one, and must open a fresh client instead.
    closed: Arc<AtomicBool>,
}

/// The host's clients, by scope (one connection configuration of one
/// mount) and rendered URL.
#[derive(Default)]
pub struct MongoClients {
    clients: Mutex<HashMap<String, HashMap<String, MongoHandle>>>,
}

impl MongoClients {
    async fn get_or_open(&self, scope: &str, url: &str, options: &ClientOptions) -> Result<MongoHandle, Error> {
        if let Some(h) = self.lock().get(scope).and_then(|m| m.get(url)) {
            return Ok(h.clone());
        }
        let ms = |v: u64, default: Duration| {
            if v == 0 { default } else { Duration::from_millis(v) }
        };
        let connect_timeout = ms(options.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT);
        let command_timeout = ms(options.command_timeout_ms, DEFAULT_COMMAND_TIMEOUT);
        let hosts = hosts_of(url).ok_or_else(bad_url)?;
        // Parsing a mongodb:// URL does no I/O (only mongodb+srv:// would,
        // and hosts_of refuses it); bound it anyway.
        let mut parsed = tokio::time::timeout(connect_timeout, mongodb::options::ClientOptions::parse(url))
            .await
            .map_err(|_| bad_url())?
            .map_err(|e| Error::BadParameter(format!("invalid connection URL: {}", scrub(&e.to_string(), url))))?;
        // A timeout the URL sets itself wins; otherwise the caller's.
        parsed.connect_timeout.get_or_insert(connect_timeout);
        parsed
            .server_selection_timeout
            .get_or_insert(ms(options.server_selection_timeout_ms, DEFAULT_SELECTION_TIMEOUT));
        parsed.max_pool_size.get_or_insert(match options.max_pool_size {
            0 => DEFAULT_POOL_SIZE,
            n => n,
        });
        parsed.app_name.get_or_insert_with(|| "warden".into());
        let client = mongodb::Client::with_options(parsed)
            .map_err(|e| Error::BadParameter(format!("invalid connection URL: {}", scrub(&e.to_string(), url))))?;
        let handle = MongoHandle {
            client,
            hosts,
            connect_timeout,
            command_timeout,
            inflight: Arc::new(Semaphore::new(MAX_INFLIGHT)),
            closed: Arc::new(AtomicBool::new(false)),
        };
        // Another call may have opened the same URL meanwhile: keep one.
        let mut all = self.lock();
        let by_url = all.entry(scope.to_string()).or_default();
        Ok(by_url.entry(url.to_string()).or_insert(handle).clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, MongoHandle>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Close every client of a scope: after a config is rewritten or
    /// deleted, the next call connects afresh.
    pub fn close_scope(&self, scope: &str) {
        let removed = self.lock().remove(scope);
        for handle in removed.into_iter().flat_map(|m| m.into_values()) {
            handle.closed.store(true, Ordering::Release);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { handle.client.shutdown().await });
            }
        }
    }

    /// Close the clients of every scope starting with `prefix` (a whole mount).
    pub fn close_prefix(&self, prefix: &str) {
        let scopes: Vec<String> = self.lock().keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        for scope in scopes {
            self.close_scope(&scope);
        }
    }
}

/// Permission to use the host's MongoDB clients of one connection
/// configuration (which servers: the call's outbound allowlist).
pub struct MongoGrant {
    pub clients: Arc<MongoClients>,
    pub scope: String,
}

/// The hosts and ports a configured connection URL (template) such as
/// `mongodb://{{username}}:{{password}}@db1:27017,db2/admin` names; None
/// for anything that is not a mongodb:// URL.
pub fn url_targets(template: &str) -> Option<Vec<(String, u16)>> {
    let probe = template.replace("{{username}}", "u").replace("{{password}}", "p");
    hosts_of(&probe)
}

/// The `mongo` import's state in one instance.
pub struct MongoState {
    grant: Option<MongoGrant>,
    outbound: Arc<Outbound>,
    table: ResourceTable,
    /// The client this instance opened last, by URL (see sql.rs's last_pool).
    last: Option<(String, MongoHandle)>,
}

impl MongoState {
    pub fn new(grant: Option<MongoGrant>, outbound: Arc<Outbound>) -> Self {
        MongoState {
            grant,
            outbound,
            table: ResourceTable::new(),
            last: None,
        }
    }
}

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    mongo::add_to_linker::<CallState, HasSelf<MongoState>>(linker, |s| &mut s.mongo)
}

fn bad_url() -> Error {
    Error::BadParameter(
        "connection URL must be a mongodb://[user:password@]host[:port][,host...][/db][?options] URL".into(),
    )
}

/// The hosts and ports of a `mongodb://` URL, lower-cased, port 27017 when
/// none is given. `mongodb+srv://` is refused: its hosts come from DNS, so
/// the grant could not name them.
pub fn hosts_of(url: &str) -> Option<Vec<(String, u16)>> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("mongodb") {
        return None;
    }
    let authority = rest.split(['/', '?']).next()?;
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let mut out = Vec::new();
    for host in hosts.split(',') {
        let (name, port) = if let Some(v6) = host.strip_prefix('[') {
            let (name, after) = v6.split_once(']')?;
            match after {
                "" => (name, None),
                p => (name, Some(p.strip_prefix(':')?)),
            }
        } else {
            match host.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            }
        };
        if name.is_empty() || name.contains(['%', '/']) {
            return None;
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p.parse().ok().filter(|p| *p != 0)?,
        };
        out.push((name.to_ascii_lowercase(), port));
    }
    (!out.is_empty()).then_some(out)
}

/// Remove a URL (which holds a password) from an error text.
fn scrub(msg: &str, url: &str) -> String {
    if url.is_empty() {
        msg.to_string()
    } else {
        msg.replace(url, "<connection url>")
    }
}

/// A MongoDB error as the WIT error; command refusals are handled before.
fn mongo_error(e: &mongodb::error::Error) -> Error {
    match e.kind.as_ref() {
        ErrorKind::Authentication { message, .. } => {
            Error::ConnectionFailed(format!("authentication failed: {message}"))
        }
        ErrorKind::ServerSelection { message, .. } => Error::ConnectionFailed(format!("no usable server: {message}")),
        ErrorKind::Io(io) => Error::ConnectionFailed(io.to_string()),
        ErrorKind::ConnectionPoolCleared { message, .. } => Error::ConnectionFailed(message.clone()),
        ErrorKind::InvalidArgument { message, .. } => Error::BadParameter(message.clone()),
        _ => Error::QueryFailed(e.to_string()),
    }
}

/// The reply the server sent for a refused command, rebuilt from the
/// driver's error, or `None` when the error is not a refusal.
fn refusal(e: &mongodb::error::Error) -> Option<Document> {
    let (code, name, message) = match e.kind.as_ref() {
        ErrorKind::Command(c) => (c.code, &c.code_name, &c.message),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => (w.code, &w.code_name, &w.message),
        _ => return None,
    };
    Some(doc! { "ok": 0.0, "errmsg": message.as_str(), "code": code, "codeName": name.as_str() })
}

/// Parse a command from extended JSON, keeping the order of its keys (the
/// first names the command). serde_json's own map would sort them.
pub fn command_from_json(json: &str) -> Result<Document, String> {
    let raw: Document = serde_json::from_str(json).map_err(|e| format!("the command is not a JSON object: {e}"))?;
    // Extended JSON wrappers ({"$numberLong": "5"}, {"$oid": ...}) become
    // their BSON types; plain values stay as they were parsed.
    let mut out = Document::new();
    for (k, v) in raw {
        out.insert(k, from_extjson(v)?);
    }
    if out.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(out)
}

fn from_extjson(v: Bson) -> Result<Bson, String> {
    match v {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
            let json = Bson::Document(d).into_relaxed_extjson();
            Bson::try_from(json).map_err(|e| format!("invalid extended JSON in the command: {e}"))
        }
        Bson::Document(d) => {
            let mut out = Document::new();
            for (k, v) in d {
                out.insert(k, from_extjson(v)?);
            }
            Ok(Bson::Document(out))
        }
        Bson::Array(items) => items
            .into_iter()
            .map(from_extjson)
            .collect::<Result<_, _>>()
            .map(Bson::Array),
        other => Ok(other),
    }
}

/// A reply as relaxed extended JSON.
pub fn reply_to_json(reply: Document) -> String {
    Bson::Document(reply).into_relaxed_extjson().to_string()
}

impl MongoHandle {
    async fn run(&self, db: &str, command: Document) -> Result<Document, Error> {
        let timed_out = || Error::ConnectionFailed(format!("no answer within {}s", self.command_timeout.as_secs()));
        let work = async {
            let _permit = self
                .inflight
                .acquire()
                .await
                .map_err(|_| Error::ConnectionFailed("client closed".into()))?;
            match self.client.database(db).run_command(command).await {
                Ok(reply) => Ok(reply),
                Err(e) => refusal(&e).ok_or_else(|| mongo_error(&e)),
            }
        };
        tokio::time::timeout(self.command_timeout, work)
            .await
            .map_err(|_| timed_out())?
    }

    /// Whether any host accepts a TCP connection: a closed port answers at
    /// once, where server selection would wait for its whole timeout.
    async fn reachable(&self) -> Result<(), Error> {
        let mut last = None;
        for (host, port) in &self.hosts {
            let addr = format!(
                "{}:{port}",
                if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                }
            );
            match tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(&addr)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => last = Some(format!("{addr}: {e}")),
                Err(_) => last = Some(format!("{addr}: no answer within {}s", self.connect_timeout.as_secs())),
            }
        }
        Err(Error::ConnectionFailed(format!(
            "cannot connect to the server: {}",
            last.unwrap_or_default()
        )))
    }
}

/// A handle on a client, as the component's `client` resource.
pub struct Client {
    handle: MongoHandle,
}

impl Host for MongoState {}

impl HostClient for MongoState {
    async fn open(&mut self, url: String, options: ClientOptions) -> Result<Resource<Client>, Error> {
        let cached = self
            .last
            .as_ref()
            .filter(|(u, h)| *u == url && !h.closed.load(Ordering::Acquire))
            .map(|(_, h)| h.clone());
        let handle = match cached {
            Some(h) => h,
            None => {
                let grant = self.grant.as_ref().ok_or_else(|| denied("MongoDB"))?;
                for (host, port) in hosts_of(&url).ok_or_else(bad_url)? {
                    self.outbound.check(&host, port)?;
                }
                let handle = grant.clients.get_or_open(&grant.scope, &url, &options).await?;
                self.last = Some((url, handle.clone()));
                handle
            }
        };
        self.table
            .push(Client { handle })
            .map_err(|e| Error::Other(format!("too many open handles: {e}")))
    }

    async fn ping(&mut self, client: Resource<Client>) -> Result<(), Error> {
        let handle = self.mongo_handle(&client)?;
        handle.reachable().await?;
        let reply = handle.run("admin", doc! { "ping": 1 }).await?;
        match reply.get("ok") {
            Some(Bson::Double(ok)) if *ok == 1.0 => Ok(()),
            Some(Bson::Int32(1) | Bson::Int64(1)) => Ok(()),
            _ => Err(Error::ConnectionFailed(format!(
                "the server refused ping: {}",
                reply.get_str("errmsg").unwrap_or("no reason given")
            ))),
        }
    }

    async fn run_command(&mut self, client: Resource<Client>, db: String, command: String) -> Result<String, Error> {
        let handle = self.mongo_handle(&client)?;
        if db.is_empty() || db.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
            return Err(Error::BadParameter(format!("invalid database name {db:?}")));
        }
        let command = command_from_json(&command).map_err(Error::BadParameter)?;
        handle.run(&db, command).await.map(reply_to_json)
    }

    async fn drop(&mut self, client: Resource<Client>) -> wasmtime::Result<()> {
        self.table.delete(client)?;
        Ok(())
    }
}

impl MongoState {
    fn mongo_handle(&self, client: &Resource<Client>) -> Result<MongoHandle, Error> {
        self.table
            .get(client)
            .map(|c| c.handle.clone())
            .map_err(|e| Error::BadParameter(format!("invalid client handle: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_mongodb_urls() {
        assert_eq!(
            hosts_of("mongodb://u:p@DB1:27018,db2/admin?replicaSet=x"),
            Some(vec![("db1".into(), 27018), ("db2".into(), 27017)])
        );
        assert_eq!(hosts_of("mongodb://127.0.0.1"), Some(vec![("127.0.0.1".into(), 27017)]));
        assert_eq!(hosts_of("mongodb://[::1]:1234/"), Some(vec![("::1".into(), 1234)]));
        assert_eq!(hosts_of("mongodb://a:b@c@h:1/x"), Some(vec![("h".into(), 1)]));
        assert_eq!(hosts_of("mongodb+srv://cluster.example.com/"), None);
        assert_eq!(hosts_of("postgres://h/db"), None);
        assert_eq!(hosts_of("mongodb://h:notaport/"), None);
        assert_eq!(hosts_of("mongodb:///x"), None);
    }

    #[test]
    fn targets_of_a_template() {
        let targets = url_targets("mongodb://{{username}}:{{password}}@127.0.0.1:4000,DB2/admin");
        assert_eq!(
            targets,
            Some(vec![("127.0.0.1".to_string(), 4000), ("db2".to_string(), 27017)])
        );
        assert_eq!(url_targets("postgres://{{username}}@h/db"), None);
    }

    #[test]
    fn commands_keep_key_order_and_read_extended_json() {
        let c = command_from_json(
            r#"{"updateUser":"u","pwd":"p","n":{"$numberLong":"5"},"roles":[{"role":"r","db":"d"}],"x":1}"#,
        )
        .expect("command");
        let keys: Vec<&str> = c.keys().map(String::as_str).collect();
        assert_eq!(keys, ["updateUser", "pwd", "n", "roles", "x"]);
        assert_eq!(c.get("n"), Some(&Bson::Int64(5)));
        assert!(command_from_json("[1]").is_err());
        assert!(command_from_json("{}").is_err());
        let reply = reply_to_json(doc! { "ok": 1.0, "n": 2_i64 });
        let v: serde_json::Value = serde_json::from_str(&reply).expect("json");
        assert_eq!(v["ok"], 1.0);
        assert_eq!(v["n"], 2);
    }
}
