//! The HTTP fuzzer's parts (tests/tests/fuzz_http.rs drives them): a seeded
//! generator of hostile requests for every path family Warden declares, a
//! raw HTTP/1.1 client that sends them byte for byte (so `..`, `%00`, wrong
//! Content-Length and oversized heads reach the server as written, which
//! reqwest would normalise or refuse), and the checks every answer must pass
//! (a bounded time, `{"errors":[...]}` on errors, no 5xx outside the cases
//! where Vault answers 500 too).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the fuzzer may rely on in the world it fuzzes (set up and repaired
/// by the test between rounds).
#[derive(Clone, Debug)]
pub struct World {
    /// `connection_url` of the working PostgreSQL connection (templated).
    pub pg_url: String,
    /// The same on a closed port of 127.0.0.1: connecting is refused at once.
    pub closed_pg_url: String,
    /// A MongoDB URL on a closed port of 127.0.0.1 with short timeouts.
    pub closed_mongo_url: String,
    pub admin_user: String,
    pub admin_password: String,
    /// Login of the `rot` connection (rotate-root is fuzzed on it only).
    pub rot_user: String,
    /// Logins the static roles may take over.
    pub static_users: Vec<String>,
}

/// How the body is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` is the body's length.
    Exact,
    /// `Content-Length` says `declared` bytes, fewer are sent, then the
    /// client closes its side: a truncated upload.
    Truncated { declared: usize },
}

/// One request as it goes on the wire.
#[derive(Clone, Debug)]
pub struct FuzzRequest {
    /// The path family (for grouping findings and the 500 allow-list).
    pub family: String,
    pub method: String,
    /// The request target: path and query exactly as sent.
    pub target: String,
    /// `X-Vault-Token` (raw bytes), none when absent.
    pub token: Option<Vec<u8>>,
    /// Extra header lines (name, value).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub framing: Framing,
    /// Where it came from: seed, round, client, index.
    pub origin: String,
}

/// What came back.
#[derive(Debug)]
pub enum Outcome {
    Answered {
        status: u16,
        body: Vec<u8>,
        elapsed: Duration,
    },
    /// No complete answer within the bound.
    Hang,
    /// The connection closed or was reset without a complete answer.
    Dropped(String),
    /// The server did not accept the connection (it is gone).
    Refused(String),
}

/// Show at most `max` characters of bytes, escaping what is not printable.
pub fn show_bytes(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let mut out: String = text
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if bytes.len() > max {
        let _ = write!(out, "... ({} bytes in all)", bytes.len());
    }
    out
}

impl FuzzRequest {
    /// A minimal reproduction: method, target, token, framing and body.
    pub fn repro(&self) -> String {
        let mut out = format!("{} {}", self.method, show_bytes(self.target.as_bytes(), 300));
        match &self.token {
            None => out.push_str("  [no token]"),
            Some(t) if t.as_slice() == b"<root>" => {}
            Some(t) => {
                let _ = write!(out, "  [token: {}]", show_bytes(t, 60));
            }
        }
        for (name, value) in &self.headers {
            let _ = write!(out, "  [{name}: {}]", show_bytes(value, 60));
        }
        if let Framing::Truncated { declared } = self.framing {
            let _ = write!(
                out,
                "  [Content-Length: {declared}, {} sent, then EOF]",
                self.body.len()
            );
        }
        if !self.body.is_empty() {
            let _ = write!(out, "\n      body: {}", show_bytes(&self.body, 400));
        }
        let _ = write!(out, "\n      ({})", self.origin);
        out
    }

    /// A head or body past what the server reads (URI over 64 KiB, header
    /// over hyper's buffer, body over [`MAX_BODY`]).
    pub fn oversized(&self) -> bool {
        let declared = match self.framing {
            Framing::Exact => self.body.len(),
            Framing::Truncated { declared } => declared,
        };
        declared > MAX_BODY
            || self.target.len() > 60_000
            || self.headers.iter().map(|(_, v)| v.len()).sum::<usize>() > 60_000
            || self.token.as_ref().is_some_and(|t| t.len() > 60_000)
    }

    /// Vault's operation for the method (for the allow-list).
    pub fn operation(&self) -> &'static str {
        match self.method.as_str() {
            "GET" if self.target.contains("list=true") => "list",
            "GET" => "read",
            "POST" | "PUT" => "update",
            "DELETE" => "delete",
            "LIST" => "list",
            _ => "other",
        }
    }
}

/// Send `req` to `addr` over a new connection (`Connection: close`), giving
/// up after `limit`. The root token is written as `<root>` in requests and
/// replaced by `root_token` here, so reproductions never print it.
pub async fn send(addr: &str, root_token: &str, req: &FuzzRequest, limit: Duration) -> Outcome {
    match tokio::time::timeout(limit, exchange(addr, root_token, req)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Hang,
    }
}

async fn exchange(addr: &str, root_token: &str, req: &FuzzRequest) -> Outcome {
    let started = Instant::now();
    let stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(req.method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(req.target.as_bytes());
    head.extend_from_slice(format!(" HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n").as_bytes());
    if let Some(token) = &req.token {
        head.extend_from_slice(b"X-Vault-Token: ");
        if token.as_slice() == b"<root>" {
            head.extend_from_slice(root_token.as_bytes());
        } else {
            head.extend_from_slice(token);
        }
        head.extend_from_slice(b"\r\n");
    }
    for (name, value) in &req.headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    let declared = match req.framing {
        Framing::Exact => req.body.len(),
        Framing::Truncated { declared } => declared,
    };
    if declared > 0 || matches!(req.method.as_str(), "POST" | "PUT" | "PATCH") {
        head.extend_from_slice(format!("Content-Type: application/json\r\nContent-Length: {declared}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");

    // Write and read at once: the server may answer (413) before it has
    // read the whole body.
    let write = async {
        wr.write_all(&head).await?;
        wr.write_all(&req.body).await?;
        if matches!(req.framing, Framing::Truncated { .. }) {
            wr.shutdown().await?;
        }
        Ok::<(), std::io::Error>(())
    };
    let mut buf = Vec::new();
    let read = rd.read_to_end(&mut buf);
    let (written, read) = tokio::join!(write, read);
    let elapsed = started.elapsed();
    match parse_response(&buf, req.method == "HEAD") {
        Some((status, body)) => Outcome::Answered { status, body, elapsed },
        None => Outcome::Dropped(format!(
            "{} bytes of answer{}{}",
            buf.len(),
            read.err().map(|e| format!(", read: {e}")).unwrap_or_default(),
            written.err().map(|e| format!(", write: {e}")).unwrap_or_default(),
        )),
    }
}

/// The status and the (de-chunked) body of a complete HTTP/1.1 answer.
fn parse_response(buf: &[u8], head_request: bool) -> Option<(u16, Vec<u8>)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let rest = &buf[end + 4..];
    if head_request || status == 204 || status == 304 {
        return Some((status, Vec::new()));
    }
    if chunked {
        return dechunk(rest).map(|b| (status, b));
    }
    match length {
        Some(n) if rest.len() >= n => Some((status, rest[..n].to_vec())),
        Some(_) => None,
        None => Some((status, rest.to_vec())),
    }
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if rest.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

// ---------------------------------------------------------------------------
// The checks.

/// Where a 500 is what Vault answers too, so it is not a finding. Each entry
/// is (path family, operation, the Vault behaviour it matches). Vault's HTTP
/// layer (`logical.RespondErrorCommon`) answers 500 for any plain Go error a
/// handler returns (one that is not `logical.ErrorResponse` or a coded
/// error); these handlers return database and plugin failures that way.
pub const ALLOWED_500: &[(&str, &str, &str)] = &[
    (
        "db/creds",
        "read",
        "database pathCredsCreateRead returns plain errors: connection or NewUser failure, \
         \"is not an allowed role\", missing connection entry, password generation (500 in Vault)",
    ),
    (
        "db/rotate-role",
        "update",
        "database pathRotateRoleCredentialsUpdate: a failed rotation is a plain error (500)",
    ),
    (
        "db/rotate-root",
        "update",
        "database pathRotateRootCredentialsUpdate: a driver failure is a plain error (500)",
    ),
    (
        "db/reset",
        "update",
        "database pathConnectionReset: re-creating the connection fails with a plain error (500)",
    ),
    (
        "db/static-roles",
        "update",
        "database pathStaticRoleCreateUpdate: \"is not an allowed role\" and setting the first \
         password fail with plain errors (500)",
    ),
    (
        "sys/leases/renew",
        "update",
        "expiration manager: the engine's renew fails (role gone, database down): plain error (500)",
    ),
    (
        "sys/leases/revoke",
        "update",
        "expiration manager: the engine's revoke fails (database down): plain error (500)",
    ),
    (
        "sys/leases/revoke-prefix",
        "update",
        "expiration manager: revoking one of the leases fails: plain error (500)",
    ),
    (
        "sys/policies/password/generate",
        "read",
        "password policy generate: a stored policy that cannot generate: plain error (500)",
    ),
    (
        "mongodb/creds",
        "read",
        "legacy mongodb secretCredsCreate: the MongoDB session or createUser fails: plain error (500)",
    ),
];

/// The allow-list entry covering a 500 for this request, if any. A message
/// that speaks of a panic or of the request timing out is never allowed.
pub fn allowed_500(req: &FuzzRequest, body: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    if text.contains("panic") || text.contains("timed out") {
        return None;
    }
    let op = req.operation();
    ALLOWED_500
        .iter()
        .find(|(family, o, _)| *family == req.family && *o == op)
        .map(|(family, _, _)| *family)
}

/// One kind of failure, with the first request that showed it.
#[derive(Debug)]
pub struct Finding {
    /// When it was first seen (findings print in this order: after a
    /// deadlock, the first hang is the cause and the rest its consequence).
    pub first_at: Instant,
    pub kind: String,
    pub first: String,
    pub detail: String,
    pub count: u64,
}

/// What one run saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub requests: u64,
    pub by_status: BTreeMap<u16, u64>,
    /// Statuses per path family (to show every family was reached).
    pub by_family: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Allowed 500s per allow-list entry: how many, and distinct messages
    /// (digits dropped, at most 5 kept) with one example request each.
    pub allowed_500: BTreeMap<&'static str, u64>,
    pub allowed_500_messages: BTreeMap<&'static str, BTreeMap<String, String>>,
    pub findings: BTreeMap<String, Finding>,
    pub slowest: Duration,
    pub slowest_request: String,
    /// Hangs, drops and refusals (the driver stops early when these pile up).
    pub fatal: u64,
    /// Oversized requests whose connection was reset (see `check`).
    pub oversize_dropped: u64,
    /// Values shown as `<redacted>` in reproductions (the test logins'
    /// passwords).
    pub secrets: Vec<String>,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        for (k, v) in other.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        for (family, statuses) in other.by_family {
            let mine = self.by_family.entry(family).or_default();
            for (k, v) in statuses {
                *mine.entry(k).or_default() += v;
            }
        }
        for (k, messages) in other.allowed_500_messages {
            let mine = self.allowed_500_messages.entry(k).or_default();
            for (m, r) in messages {
                if mine.len() < 5 {
                    mine.entry(m).or_insert(r);
                }
            }
        }
        for (k, v) in other.allowed_500 {
            *self.allowed_500.entry(k).or_default() += v;
        }
        for (k, f) in other.findings {
            match self.findings.get_mut(&k) {
                Some(mine) => {
                    let count = mine.count + f.count;
                    if f.first_at < mine.first_at {
                        *mine = f;
                    }
                    mine.count = count;
                }
                None => {
                    self.findings.insert(k, f);
                }
            }
        }
        if other.slowest > self.slowest {
            self.slowest = other.slowest;
            self.slowest_request = other.slowest_request;
        }
        self.fatal += other.fatal;
        self.oversize_dropped += other.oversize_dropped;
    }

    /// A tally whose reproductions hide `secrets`.
    pub fn redacting(secrets: Vec<String>) -> Tally {
        Tally {
            secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect(),
            ..Tally::default()
        }
    }

    fn find(&mut self, key: String, kind: &str, req: &FuzzRequest, detail: String) {
        let mut first = req.repro();
        for secret in &self.secrets {
            first = first.replace(secret.as_str(), "<redacted>");
        }
        self.findings
            .entry(key)
            .or_insert_with(|| Finding {
                first_at: Instant::now(),
                kind: kind.to_string(),
                first,
                detail,
                count: 0,
            })
            .count += 1;
    }

    /// Check one answer against the rules; record what it broke.
    pub fn check(&mut self, req: &FuzzRequest, outcome: &Outcome) {
        self.requests += 1;
        let family = &req.family;
        let method = &req.method;
        match outcome {
            Outcome::Hang => {
                self.fatal += 1;
                self.find(
                    format!("hang {family} {method}"),
                    "hang: no complete answer within the bound",
                    req,
                    String::new(),
                );
            }
            Outcome::Dropped(_) if req.oversized() => {
                // The server refuses an oversized head or body before reading
                // it all and closes; the unread bytes make the kernel reset
                // the connection, which can discard the answer before the
                // client reads it. Not a finding (a panic still shows in the
                // server's log).
                self.oversize_dropped += 1;
            }
            Outcome::Dropped(why) => {
                self.fatal += 1;
                self.find(
                    format!("dropped {family}"),
                    "connection closed without an answer (a panic in the handler?)",
                    req,
                    why.clone(),
                );
            }
            Outcome::Refused(why) => {
                self.fatal += 1;
                self.find(
                    "refused".into(),
                    "server refused the connection (is it still running?)",
                    req,
                    why.clone(),
                );
            }
            Outcome::Answered { status, body, elapsed } => {
                let status = *status;
                *self.by_status.entry(status).or_default() += 1;
                *self
                    .by_family
                    .entry(family.clone())
                    .or_default()
                    .entry(status)
                    .or_default() += 1;
                if *elapsed > self.slowest {
                    self.slowest = *elapsed;
                    self.slowest_request = req.repro();
                }
                if status >= 500 {
                    match (status, allowed_500(req, body)) {
                        (500, Some(entry)) => {
                            *self.allowed_500.entry(entry).or_default() += 1;
                            let messages = self.allowed_500_messages.entry(entry).or_default();
                            let text: String = show_bytes(body, 160).chars().filter(|c| !c.is_ascii_digit()).collect();
                            if messages.len() < 5 && !messages.contains_key(&text) {
                                messages.insert(
                                    text,
                                    format!("{} {}", req.method, show_bytes(req.target.as_bytes(), 100)),
                                );
                            }
                        }
                        _ => self.find(
                            format!("5xx {family} {method} {status}"),
                            &format!("{status} where Vault does not answer 5xx"),
                            req,
                            show_bytes(body, 300),
                        ),
                    }
                }
                if req.method == "HEAD" {
                    return;
                }
                // hyper answers a head past its own fixed limits (a target of
                // 64 KiB or more, a head over 128 KiB) before Warden sees the
                // request, with an empty body; Go's net/http, and so Vault,
                // answers those itself in plain text too. Heads between
                // Warden's limits and hyper's get Warden's JSON (checked).
                let past_hyper = req.target.len() >= 64 * 1024
                    || req.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() > 128 * 1024;
                if status >= 400 && !is_error_body(body) && !(past_hyper && matches!(status, 414 | 431)) {
                    // One finding per status and answer text: the same
                    // non-JSON answer (from the HTTP layer) on every path is
                    // one cause.
                    let text: String = show_bytes(body, 60).chars().filter(|c| !c.is_ascii_digit()).collect();
                    self.find(
                        format!("errbody {status} {text}"),
                        &format!("{status} without a {{\"errors\":[...]}} JSON body"),
                        req,
                        format!("body: {:?}", show_bytes(body, 200)),
                    );
                }
                if (200..300).contains(&status) && !body.is_empty() && serde_json::from_slice::<Value>(body).is_err() {
                    self.find(
                        format!("okbody {status} {family} {method}"),
                        &format!("{status} with a body that is not JSON"),
                        req,
                        format!("body: {:?}", show_bytes(body, 200)),
                    );
                }
            }
        }
    }
}

/// `{"errors": [<string>, ...]}` (an empty list is Vault's 404 for a read
/// of nothing).
pub fn is_error_body(body: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m
            .get("errors")
            .and_then(Value::as_array)
            .is_some_and(|errors| errors.iter().all(Value::is_string)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// The generator.

/// Warden's largest accepted body (Vault's max_request_size).
pub const MAX_BODY: usize = 32 << 20;

/// Lease ids seen in answers, for the lease endpoints (bounded).
#[derive(Clone, Debug, Default)]
pub struct LeasePool(Arc<Mutex<Vec<String>>>);

impl LeasePool {
    pub fn add(&self, id: String) {
        if let Ok(mut ids) = self.0.lock()
            && ids.len() < 256
        {
            ids.push(id);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut ids) = self.0.lock() {
            ids.clear();
        }
    }

    fn pick(&self, rng: &mut StdRng) -> Option<String> {
        let ids = self.0.lock().ok()?;
        if ids.is_empty() {
            None
        } else {
            Some(ids[rng.random_range(0..ids.len())].clone())
        }
    }
}

/// Raw JSON tokens serde_json's `Value` cannot hold; written as a marker
/// string and put into the body text verbatim.
const RAW: &str = "@@RAW:";

fn raw(text: &str) -> Value {
    Value::String(format!("{RAW}{text}@@"))
}

fn serialize(v: &Value) -> Vec<u8> {
    let mut text = v.to_string();
    while let Some(start) = text.find(&format!("\"{RAW}")) {
        let Some(len) = text[start + 1..].find("@@\"") else {
            break;
        };
        let inner = text[start + 1 + RAW.len()..start + 1 + len].to_string();
        text.replace_range(start..start + 1 + len + 3, &inner);
    }
    text.into_bytes()
}

/// Path segments as they go on the wire (already percent-encoded where
/// they must be): `..`, `%00`, invalid UTF-8, unicode, very long, slashes.
fn odd_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "..",
        ".",
        "%2e%2e",
        "%00",
        "a%00b",
        "a%2Fb",
        "a/b",
        "a/",
        "%C3%BC%C3%B1%C3%AF%C3%A7%C3%B8d%C3%A9",
        "%F0%9F%98%80",
        "%F0%9F%94%A5role",
        "%E2%80%AE",
        "%ff%fe",
        "%zz",
        "%",
        "%20",
        "a%20b",
        "-a",
        "a-",
        "_",
        "*",
        "%2A",
        "a.b",
        "A",
        "name%22%3B%20DROP%20ROLE%20x%3B--",
        "%27",
        "~",
        "$",
        "!",
        ";",
        "0",
        "-1",
        "9223372036854775808",
        "con",
        "nul",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("x".repeat(300));
    names.push("y".repeat(5000));
    names.push("%F0%9F%98%80".repeat(200));
    names.push(String::new());
    names
}

/// Values that break durations: extreme numbers, odd units and signs,
/// wrong JSON types.
fn duration_extremes() -> Vec<Value> {
    let mut v: Vec<Value> = [
        "9999999999999h",
        "-5s",
        "1e3s",
        "2562047h",
        "2562048h",
        "9223372036",
        "9223372037",
        "-9223372037",
        "9223372036854775807",
        "-9223372036854775808",
        "0",
        "",
        "-0",
        "+5m",
        "1.5h",
        ".5s",
        "5.s",
        "1d",
        "1w",
        "1y",
        "h",
        "s",
        "NaN",
        "Infinity",
        "-Infinity",
        "∞",
        "5 s",
        " 5s ",
        "5s5",
        "0x10",
        "1_000",
        "--5s",
        "5ss",
        "١٢s",
        "5\u{0}s",
        "1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h",
        "system",
        "-1",
        "1",
        "1ns",
        "999999999999999999999ns",
        "4",
        "5",
        "1h59m59s",
        "0.000000001s",
    ]
    .iter()
    .map(|s| json!(s))
    .collect();
    v.push(json!("9".repeat(400)));
    v.push(json!(format!("{}s", "9".repeat(400))));
    v.push(json!(format!("{}h", "1".repeat(30))));
    for n in [
        0i64,
        -1,
        1,
        4,
        5,
        3600,
        i64::MAX,
        i64::MIN,
        9223372036,
        9223372037,
        10_000_000_000_000,
    ] {
        v.push(json!(n));
    }
    v.push(json!(u64::MAX));
    for f in [1e308, -1e308, 1e13, -1e13, 0.5, -0.5, 1.8446744073709552e19, 5e-324] {
        v.push(json!(f));
    }
    for r in [
        "18446744073709551616",
        "1e999",
        "-1e999",
        "123456789012345678901234567890",
        "-0",
        "1E400",
    ] {
        v.push(raw(r));
    }
    v
}

fn integer_extremes() -> Vec<Value> {
    let mut v = vec![
        json!(0),
        json!(-1),
        json!(1),
        json!(2),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(i32::MAX),
        json!(1e308),
        json!(-1e308),
        json!(1e13),
        json!(0.5),
        json!("12"),
        json!("-1"),
        json!("abc"),
        json!(""),
        json!("1e3"),
        json!("9223372036854775808"),
        raw("18446744073709551616"),
        raw("1e999"),
    ];
    v.push(json!("9".repeat(400)));
    v
}

/// Wrong JSON types for any field.
fn wrong_types(rng: &mut StdRng) -> Value {
    match rng.random_range(0..12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(false),
        3 => json!([]),
        4 => json!({}),
        5 => json!(["1h", 5, null, {"a": []}]),
        6 => json!({"nested": {"deeper": [1, 2, {"x": "y"}]}}),
        7 => json!(rng.random::<i64>()),
        8 => json!(rng.random::<f64>() * 1e300),
        9 => (0..20).fold(json!(1), |v, _| json!([v])),
        10 => json!("\u{0}\u{1}\u{7f}\u{feff}\u{202e}"),
        _ => json!(rng.random::<u64>()),
    }
}

/// A seeded generator of requests for one client.
pub struct Generator {
    rng: StdRng,
    world: Arc<World>,
    leases: LeasePool,
    names: Vec<String>,
    durations: Vec<Value>,
    integers: Vec<Value>,
    /// The id of this generator's requests: "seed S round R client C".
    origin: String,
    count: u64,
    /// Path families (prefixes) not to send (WARDEN_FUZZ_SKIP).
    skip: Vec<String>,
    /// Mutation mode for the request being made: every field valid but the
    /// `target`-th value asked for (`seen` counts them), so that one bad
    /// value reaches code behind the checks of all the others.
    focus: Option<Focus>,
}

#[derive(Clone, Copy, Debug)]
struct Focus {
    target: usize,
    seen: usize,
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "LIST", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO",
];

impl Generator {
    pub fn new(seed: u64, round: u64, client: u64, world: Arc<World>, leases: LeasePool) -> Generator {
        let mixed = seed
            ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ client.wrapping_mul(0xC2B2_AE3D_27D4_EB4F).rotate_left(17);
        Generator {
            rng: StdRng::seed_from_u64(mixed),
            world,
            leases,
            names: odd_names(),
            durations: duration_extremes(),
            integers: integer_extremes(),
            origin: format!("seed {seed} round {round} client {client}"),
            count: 0,
            skip: Vec::new(),
            focus: None,
        }
    }

    /// The world this generator fuzzes.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Leave out the path families starting with any of `prefixes` (to see
    /// past a known failure, such as a deadlock, while it is being fixed).
    pub fn skipping(mut self, prefixes: &[String]) -> Generator {
        self.skip = prefixes.iter().filter(|p| !p.is_empty()).cloned().collect();
        self
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())].clone()
    }

    /// In mutation mode: whether this value is to be a valid one (it is not
    /// the one value being mutated).
    fn keep_valid(&mut self) -> bool {
        match &mut self.focus {
            Some(f) => {
                let mutate = f.seen == f.target;
                f.seen += 1;
                !mutate
            }
            None => false,
        }
    }

    /// A name for a path segment: one of `known` mostly, else an odd one.
    fn name(&mut self, known: &[&str]) -> String {
        if self.focus.is_some() {
            return known[0].to_string();
        }
        if self.chance(0.7) {
            self.pick(known).to_string()
        } else {
            let names = std::mem::take(&mut self.names);
            let n = self.pick(&names);
            self.names = names;
            n
        }
    }

    fn method(&mut self, natural: &[&str]) -> String {
        if self.focus.is_some() || self.chance(0.8) {
            self.pick(natural).to_string()
        } else {
            self.pick(METHODS).to_string()
        }
    }

    fn duration(&mut self, good: &[&str]) -> Value {
        if self.keep_valid() {
            return json!(good[0]);
        }
        match self.rng.random_range(0..10) {
            0..=3 => json!(self.pick(good)),
            4..=8 => {
                let d = std::mem::take(&mut self.durations);
                let v = self.pick(&d);
                self.durations = d;
                v
            }
            _ => wrong_types(&mut self.rng),
        }
    }

    fn integer(&mut self, good: &[i64]) -> Value {
        if self.keep_valid() {
            return json!(good[0]);
        }
        match self.rng.random_range(0..10) {
            0..=3 => json!(self.pick(good)),
            4..=8 => {
                let d = std::mem::take(&mut self.integers);
                let v = self.pick(&d);
                self.integers = d;
                v
            }
            _ => wrong_types(&mut self.rng),
        }
    }

    fn boolean(&mut self) -> Value {
        if self.keep_valid() {
            return json!(true);
        }
        let options = [
            json!(true),
            json!(false),
            json!("true"),
            json!("false"),
            json!("t"),
            json!("maybe"),
            json!(0),
            json!(1),
            json!(2.5),
            json!(""),
        ];
        if self.chance(0.15) {
            wrong_types(&mut self.rng)
        } else {
            self.pick(&options)
        }
    }

    /// Any string: a good one sometimes, else odd text, control characters,
    /// unicode, or a huge one.
    fn text(&mut self, good: &[&str]) -> Value {
        if self.keep_valid() {
            return json!(good[0]);
        }
        match self.rng.random_range(0..20) {
            0..=8 => json!(self.pick(good)),
            9 => json!(""),
            10 => json!("ünïcødé ✓ 😀 \u{202e}rtl"),
            11 => json!("\u{0}\u{1}\u{1b}[31m\r\n"),
            12 => json!("../../../../etc/passwd"),
            13 => json!("x".repeat(self.rng.random_range(1000..70_000))),
            14 => json!("{{"),
            15 => json!("'; DROP ROLE x; --"),
            16 => json!("%00%ff"),
            17 => json!("\u{ad}\u{200b}\u{fffd}\u{10ffff}"),
            _ => wrong_types(&mut self.rng),
        }
    }

    fn list(&mut self, good: &[&str]) -> Value {
        if self.keep_valid() {
            return json!([good[0]]);
        }
        match self.rng.random_range(0..10) {
            0..=3 => json!([self.pick(good)]),
            4 => json!(good),
            5 => json!(good.join(",")),
            6 => json!([1, true, null, {"a": 1}, ["x"]]),
            7 => json!(vec!["a"; 2000]),
            8 => json!(",,,, , ,"),
            _ => wrong_types(&mut self.rng),
        }
    }

    /// Fields of a body: each is present with some chance, and sometimes an
    /// unknown field joins them.
    fn object(&mut self, fields: Vec<(&str, Value)>) -> Value {
        let mut m = Map::new();
        let all = self.focus.is_some();
        for (k, v) in fields {
            if all || self.chance(0.7) {
                m.insert(k.to_string(), v);
            }
        }
        if !all && self.chance(0.15) {
            let key = self.pick(&["unknown", "", "😀", "__proto__", "data", "errors", "lease_id", "name"]);
            let value = self.text(&["x"]);
            m.insert(key.to_string(), value);
        }
        Value::Object(m)
    }

    fn statements(&mut self, good: &str) -> Value {
        if self.keep_valid() {
            return json!([good]);
        }
        let options = [
            json!([good]),
            json!(good),
            json!([]),
            json!(""),
            json!(["CREATE ROLE"]),
            json!(["SELECT 1/0"]),
            json!([";;;"]),
            json!(["{{nope}} {{name}} {{password}} {{expiration}} {{name}}"]),
            json!([
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'; COMMENT ON ROLE \"{{name}}\" IS 'ünï😀'"
            ]),
            json!([format!("-- {}\n{good}", "c".repeat(60_000))]),
            json!(["DROP ROLE IF EXISTS \"{{name}}\""]),
            json!([good, good]),
        ];
        if self.chance(0.1) {
            wrong_types(&mut self.rng)
        } else {
            self.pick(&options)
        }
    }

    /// An HCL password policy, good or broken.
    fn policy(&mut self) -> Value {
        let good = "length = 20\nrule \"charset\" {\n  charset = \"abcdefghijklmnopqrstuvwxyz0123456789\"\n  min-chars = 1\n}\n";
        if self.keep_valid() {
            return json!(good);
        }
        let options = [
            json!(good),
            json!("length = 4\nrule \"charset\" { charset = \"a\" min-chars = 5 }"),
            json!("length = 1e308\nrule \"charset\" { charset = \"ab\" }"),
            json!("length = -1\nrule \"charset\" { charset = \"ab\" }"),
            json!("length = 9223372036854775808\nrule \"charset\" { charset = \"ab\" }"),
            json!("length = 100\nrule \"charset\" { charset = \"\u{0}\u{1}\" }"),
            json!("rule \"nope\" {}"),
            json!("length = "),
            json!("{{{{"),
            json!(base64_of(good)),
            json!({"length": 20, "rule": [{"charset": {"charset": "ab", "min-chars": 1}}]}),
            json!(format!(
                "length = 20\n{}",
                "rule \"charset\" { charset = \"ab\" }\n".repeat(2000)
            )),
            json!("length = 100\nrule \"charset\" { charset = \"ab\" min-chars = 9223372036854775807 }"),
        ];
        if self.chance(0.1) {
            wrong_types(&mut self.rng)
        } else {
            self.pick(&options)
        }
    }

    fn lease_id(&mut self) -> String {
        if self.chance(0.5)
            && let Some(id) = self.leases.pick(&mut self.rng)
        {
            return id;
        }
        let options = [
            "",
            "db/creds/dyn/",
            "db/creds/dyn/nonexistent",
            "db/creds/",
            "db/",
            "db",
            "mongodb/creds/app/x",
            "sys/",
            "../",
            "..",
            "/",
            "%00",
            "ünï/😀",
            "auth/token/create",
        ];
        if self.chance(0.05) {
            "l".repeat(5000)
        } else {
            self.pick(&options).to_string()
        }
    }

    fn token(&mut self) -> Option<Vec<u8>> {
        match self.rng.random_range(0..100) {
            0..=94 => Some(b"<root>".to_vec()),
            95 => None,
            96 => Some(b"wrong-token".to_vec()),
            97 => Some(Vec::new()),
            98 => Some(vec![0xff, 0xfe, b'a', 0x80]),
            _ => Some(vec![b't'; 20_000]),
        }
    }

    fn query(&mut self, method: &str) -> String {
        if method != "GET" || self.chance(0.7) {
            return String::new();
        }
        self.pick(&[
            "?list=true",
            "?type=irrevocable",
            "?type=irrevocable&limit=none",
            "?type=irrevocable&limit=-1",
            "?type=irrevocable&limit=99999999999999999999",
            "?type=irrevocable&limit=1e308",
            "?type=%ff",
            "?a=%ff&b&&=&list=1",
            "?%00=%00",
        ])
        .to_string()
    }

    /// The next request.
    pub fn next_request(&mut self) -> FuzzRequest {
        self.count += 1;
        // Half the requests are mutations of a valid one.
        self.focus = self.chance(0.5).then(|| Focus {
            target: self.rng.random_range(0..8),
            seen: 0,
        });
        let (mut family, mut method, mut path, mut body) = self.pick_path();
        for _ in 0..1000 {
            if !self.skip.iter().any(|p| family.starts_with(p.as_str())) {
                break;
            }
            (family, method, path, body) = self.pick_path();
        }
        let target = format!("{path}{}", self.query(&method));
        let token = self.token();
        let mut req = FuzzRequest {
            family,
            method,
            target,
            token,
            headers: Vec::new(),
            body: Vec::new(),
            framing: Framing::Exact,
            origin: format!("{} request {}", self.origin, self.count),
        };
        if self.focus.take().is_some() {
            req.token = Some(b"<root>".to_vec());
            req.body = body.as_ref().map(serialize).unwrap_or_default();
        } else {
            self.frame(&mut req, body);
        }
        req
    }

    /// Turn the body into bytes: mostly JSON, sometimes broken on purpose.
    fn frame(&mut self, req: &mut FuzzRequest, body: Option<Value>) {
        let json_bytes = body.as_ref().map(serialize).unwrap_or_default();
        let roll = self.rng.random_range(0..1000);
        req.body = match roll {
            0..=799 => json_bytes,
            800..=839 => {
                // Truncated JSON text.
                let mut b = if json_bytes.len() > 2 {
                    json_bytes
                } else {
                    b"{\"name\": \"x\", \"ttl\": 5".to_vec()
                };
                let cut = self.rng.random_range(1..b.len());
                b.truncate(cut);
                b
            }
            840..=859 => self
                .pick(&["[1,2,3]", "\"a string\"", "5", "null", "true", "1e999", "[]"])
                .as_bytes()
                .to_vec(),
            860..=879 => self
                .pick(&[
                    "key=value&x=1",
                    "<xml/>",
                    "not json at all",
                    "{'single': 'quotes'}",
                    "{\"a\":1}garbage",
                    "{\"a\":1,}",
                    "{\"a\":NaN}",
                    "{\"a\":Infinity}",
                ])
                .as_bytes()
                .to_vec(),
            880..=894 => vec![0xff, 0xfe, 0x00, b'{', 0xc3, 0x28, b'}'],
            895..=909 => {
                let depth = self.pick(&[200usize, 5000, 100_000]);
                let mut b = "[".repeat(depth).into_bytes();
                if self.chance(0.5) {
                    b.extend("]".repeat(depth).into_bytes());
                }
                b
            }
            910..=924 => b"{\"a\":1,\"a\":2,\"a\":{\"a\":[]}}".to_vec(),
            925..=939 => {
                let mut b = b"\xef\xbb\xbf".to_vec();
                b.extend(json_bytes);
                b
            }
            940..=954 => b"   \r\n\t  ".to_vec(),
            955..=969 => {
                // A big but allowed body: a huge string in a known field.
                let size = self.pick(&[100_000usize, 1 << 20, 4 << 20]);
                let mut m = body.and_then(|b| b.as_object().cloned()).unwrap_or_default();
                let key = m.keys().next().cloned().unwrap_or_else(|| "name".into());
                m.insert(key, json!("z".repeat(size)));
                serialize(&Value::Object(m))
            }
            970..=984 => {
                // Content-Length promises more than is sent.
                let declared = json_bytes.len() + self.rng.random_range(1..10_000);
                req.framing = Framing::Truncated { declared };
                json_bytes
            }
            985..=994 => {
                // Content-Length over the limit (nothing like it is sent).
                req.framing = Framing::Truncated {
                    declared: MAX_BODY + 1 + self.rng.random_range(0..1_000_000),
                };
                json_bytes
            }
            995..=996 => {
                // Oversized head: a long header, past Warden's 64 KiB limit
                // (JSON 431) or past hyper's 128 KiB (hyper's own 431).
                let len = if self.rng.random_bool(0.5) {
                    70 * 1024
                } else {
                    512 * 1024
                };
                req.headers.push(("X-Fuzz".into(), vec![b'h'; len]));
                json_bytes
            }
            997..=998 => {
                // A very long URI: past Warden's 32 KiB limit (JSON 414) or
                // past hyper's 64 KiB (hyper's own 414).
                let len = if self.rng.random_bool(0.5) { 40_000 } else { 70_000 };
                let (path, query) = req.target.split_at(req.target.find('?').unwrap_or(req.target.len()));
                req.target = format!("{path}/{}{query}", "u".repeat(len));
                json_bytes
            }
            _ => {
                // A real body past the 32 MiB limit, sent in full.
                let mut b = b"{\"data\":\"".to_vec();
                b.resize(MAX_BODY + 1024, b'q');
                b.extend_from_slice(b"\"}");
                b
            }
        };
    }

    /// (family, method, path, JSON body) of the next request.
    fn pick_path(&mut self) -> (String, String, String, Option<Value>) {
        let w = self.world.clone();
        let roll = self.rng.random_range(0..1000);
        match roll {
            // The database engine: most of the real work.
            0..=499 => self.database_path(&w),
            500..=579 => self.legacy_mongodb_path(&w),
            580..=649 => self.mounts_path(),
            650..=789 => self.leases_path(),
            790..=839 => self.password_policy_path(),
            840..=939 => self.seal_and_token_path(),
            _ => {
                let method = self.pick(METHODS).to_string();
                let path = self
                    .pick(&[
                        "/",
                        "/v1",
                        "/v1/",
                        "/v2/sys/health",
                        "/v1//sys//mounts",
                        "/v1/sys",
                        "/v1/sys/",
                        "/v1/nope/x",
                        "/v1/sys/seal-status/extra",
                        "/v1/%00",
                        "/v1/sys/../sys/health",
                        "/v1/cubbyhole/x",
                        "/v1/secret/data/x",
                        "/v1/sys/raw/core",
                        "/v1/sys/internal/ui/mounts",
                        "/v1/identity/entity",
                        "/ui/",
                    ])
                    .to_string();
                let body = self.object(vec![("x", json!(1))]);
                ("other".into(), method, path, Some(body))
            }
        }
    }

    fn database_path(&mut self, w: &World) -> (String, String, String, Option<Value>) {
        let mount = if self.chance(0.9) {
            "db".to_string()
        } else {
            self.pick(&["fz1".to_string(), "nomount".into(), "db/sub".into()])
        };
        let kind = self.pick(&[
            "config",
            "config",
            "reset",
            "rotate-root",
            "roles",
            "roles",
            "creds",
            "creds",
            "creds",
            "static-roles",
            "static-roles",
            "static-creds",
            "rotate-role",
        ]);
        let family = format!("db/{kind}");
        match kind {
            "config" => {
                let name = self.name(&["pg", "c1", "c2", "missing"]);
                let method = self.method(&["POST", "PUT", "GET", "DELETE", "LIST"]);
                let url = self.text(&[
                    &w.pg_url,
                    &w.pg_url,
                    &w.closed_pg_url,
                    &w.closed_mongo_url,
                    "postgresql://",
                    "host=127.0.0.1 port=1",
                    "{{username}}",
                ]);
                let plugin = self.text(&[
                    "postgresql-database-plugin",
                    "postgresql-database-plugin",
                    "mysql-database-plugin",
                    "mongodb-database-plugin",
                    "nope-plugin",
                    "../../builtin",
                ]);
                let user = self.text(&[
                    &w.admin_user,
                    &w.admin_user,
                    "nobody",
                    "a\u{7}b",
                    "\u{221}",
                    "\u{fffd}",
                    "ünï",
                ]);
                let password = self.text(&[&w.admin_password, &w.admin_password, "wrong", "\u{0}", "pässwörd\u{ad}"]);
                let verify = self.boolean();
                let roles = self.list(&["*", "dyn", "r1", "stat"]);
                let max_open = self.integer(&[1, 4, 10, 0, -1]);
                let max_idle = self.integer(&[0, 1, 4, -1]);
                let lifetime = self.duration(&["0", "30s", "1h"]);
                let template = self.text(&[
                    "{{.RoleName}}-{{random 8}}",
                    "{{",
                    "{{.Nope}}",
                    "{{printf \"%s\" .RoleName}}",
                    "{{random 9223372036854775807}}",
                    "{{random -1}}",
                ]);
                let policy = self.text(&["fuzzpol", "missing"]);
                let rotation = self.statements("ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}'");
                let body = self.object(vec![
                    ("plugin_name", plugin),
                    ("connection_url", url),
                    ("username", user),
                    ("password", password),
                    ("verify_connection", verify),
                    ("allowed_roles", roles),
                    ("max_open_connections", max_open),
                    ("max_idle_connections", max_idle),
                    ("max_connection_lifetime", lifetime),
                    ("username_template", template),
                    ("password_policy", policy),
                    ("root_rotation_statements", rotation),
                ]);
                let path = if method == "LIST" && self.chance(0.5) {
                    format!("/v1/{mount}/config")
                } else {
                    format!("/v1/{mount}/config/{name}")
                };
                (family, method, path, Some(body))
            }
            "reset" | "rotate-root" => {
                // rotate-root only on `rot` (never `pg`, whose password the
                // repair step must know); reset on any.
                let name = if kind == "reset" {
                    self.name(&["pg", "rot", "c1", "missing"])
                } else {
                    self.name(&["rot", "rot", "c1", "missing"])
                };
                let method = self.method(&["POST", "PUT"]);
                let junk = self.text(&["x"]);
                let body = self.object(vec![("name", junk)]);
                (family, method, format!("/v1/{mount}/{kind}/{name}"), Some(body))
            }
            "roles" => {
                let name = self.name(&["dyn", "r1", "r2", "short", "stat"]);
                let method = self.method(&["POST", "PUT", "GET", "DELETE", "LIST"]);
                let creation = self.statements(crate::CREATE_ROLE);
                let revocation = self.statements("DROP ROLE IF EXISTS \"{{name}}\"");
                let renew = self.statements("ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}'");
                let rollback = self.statements("DROP ROLE IF EXISTS \"{{name}}\"");
                let db_name = self.text(&["pg", "pg", "rot", "c1", "missing"]);
                let default_ttl = self.duration(&["1h", "2s", "30m", "0"]);
                let max_ttl = self.duration(&["24h", "3s", "1h", "0"]);
                let ctype = self.text(&["password", "password", "rsa_private_key", "client_certificate", "nope"]);
                let cconfig = match self.rng.random_range(0..6) {
                    0 => json!({"password_policy": "fuzzpol"}),
                    1 => json!({"password_policy": "missing"}),
                    2 => json!({"key_bits": 1e308, "format": "pkcs8"}),
                    3 => json!({"key_type": "ec", "key_bits": -1, "signature_bits": i64::MAX}),
                    4 => json!("not a map"),
                    _ => json!({}),
                };
                let body = self.object(vec![
                    ("db_name", db_name),
                    ("creation_statements", creation),
                    ("revocation_statements", revocation),
                    ("renew_statements", renew),
                    ("rollback_statements", rollback),
                    ("default_ttl", default_ttl),
                    ("max_ttl", max_ttl),
                    ("credential_type", ctype),
                    ("credential_config", cconfig),
                ]);
                let path = if method == "LIST" && self.chance(0.5) {
                    format!("/v1/{mount}/roles")
                } else {
                    format!("/v1/{mount}/roles/{name}")
                };
                (family, method, path, Some(body))
            }
            "creds" => {
                let name = self.name(&["dyn", "dyn", "dyn", "r1", "r2", "short", "stat", "missing"]);
                let method = self.method(&["GET", "GET", "GET", "POST"]);
                (family, method, format!("/v1/{mount}/creds/{name}"), None)
            }
            "static-roles" => {
                let name = self.name(&["stat", "s2", "missing", "dyn"]);
                let method = self.method(&["POST", "PUT", "GET", "DELETE", "LIST"]);
                let users: Vec<&str> = w.static_users.iter().map(String::as_str).collect();
                let mut good_users = users.clone();
                good_users.extend(["fz_no_such_user", "ünï", "\u{221}user"]);
                let username = self.text(&good_users);
                let db_name = self.text(&["pg", "pg", "missing", "rot"]);
                let period = self.duration(&["1h", "5s", "6s", "24h", "4s"]);
                let schedule = self.text(&[
                    "* * * * *",
                    "0 0 31 2 *",
                    "*/0 * * * *",
                    "61 * * * *",
                    "0 0 * * 7",
                    "@daily",
                    "0-59/1 0-23 1-31 1-12 0-6",
                    "9999999999 * * * *",
                ]);
                let window = self.duration(&["1h", "2h", "59m"]);
                let statements = self.statements("ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}'");
                let ctype = self.text(&["password", "rsa_private_key"]);
                let use_schedule = self.chance(0.3);
                let mut fields = vec![
                    ("db_name", db_name),
                    ("username", username),
                    ("rotation_statements", statements),
                    ("credential_type", ctype),
                ];
                if use_schedule || self.chance(0.1) {
                    fields.push(("rotation_schedule", schedule));
                    fields.push(("rotation_window", window));
                }
                if !use_schedule || self.chance(0.1) {
                    fields.push(("rotation_period", period));
                }
                let body = self.object(fields);
                let path = if method == "LIST" && self.chance(0.5) {
                    format!("/v1/{mount}/static-roles")
                } else {
                    format!("/v1/{mount}/static-roles/{name}")
                };
                (family, method, path, Some(body))
            }
            "static-creds" => {
                let name = self.name(&["stat", "stat", "s2", "missing", "dyn"]);
                let method = self.method(&["GET"]);
                (family, method, format!("/v1/{mount}/static-creds/{name}"), None)
            }
            _ => {
                let name = self.name(&["stat", "stat", "s2", "missing", "dyn"]);
                let method = self.method(&["POST", "PUT"]);
                (
                    family,
                    method,
                    format!("/v1/{mount}/rotate-role/{name}"),
                    Some(json!({})),
                )
            }
        }
    }

    fn legacy_mongodb_path(&mut self, w: &World) -> (String, String, String, Option<Value>) {
        let kind = self.pick(&["config/connection", "config/lease", "roles", "roles", "creds", "creds"]);
        match kind {
            "config/connection" => {
                let method = self.method(&["POST", "PUT", "GET", "DELETE"]);
                let url = self.text(&[
                    &w.closed_mongo_url,
                    &w.closed_mongo_url,
                    "mongodb://",
                    "mongodb://127.0.0.1:99999/?serverSelectionTimeoutMS=200",
                    "not-a-url",
                    "mongodb+srv://127.0.0.1/",
                ]);
                let verify = self.boolean();
                let body = self.object(vec![("url", url.clone()), ("uri", url), ("verify_connection", verify)]);
                (
                    "mongodb/config/connection".into(),
                    method,
                    "/v1/mongodb/config/connection".into(),
                    Some(body),
                )
            }
            "config/lease" => {
                let method = self.method(&["POST", "PUT", "GET"]);
                let lease = self.duration(&["1h", "10s", "0"]);
                let lease_max = self.duration(&["24h", "1m", "0"]);
                let body = self.object(vec![("lease", lease), ("lease_max", lease_max)]);
                (
                    "mongodb/config/lease".into(),
                    method,
                    "/v1/mongodb/config/lease".into(),
                    Some(body),
                )
            }
            "roles" => {
                let name = self.name(&["app", "r1", "missing"]);
                let method = self.method(&["POST", "PUT", "GET", "DELETE", "LIST"]);
                let db = self.text(&["admin", "foo", "", "a.b", "$cmd"]);
                let roles = self.text(&[
                    "[\"readWrite\",{\"db\":\"bar\",\"role\":\"read\"}]",
                    "[\"read\"]",
                    "[",
                    "{}",
                    "[1,2,3]",
                    "[{\"role\":null}]",
                ]);
                let body = self.object(vec![("db", db), ("roles", roles)]);
                let path = if method == "LIST" && self.chance(0.5) {
                    "/v1/mongodb/roles".to_string()
                } else {
                    format!("/v1/mongodb/roles/{name}")
                };
                ("mongodb/roles".into(), method, path, Some(body))
            }
            _ => {
                let name = self.name(&["app", "app", "r1", "missing"]);
                let method = self.method(&["GET"]);
                (
                    "mongodb/creds".into(),
                    method,
                    format!("/v1/mongodb/creds/{name}"),
                    None,
                )
            }
        }
    }

    fn mounts_path(&mut self) -> (String, String, String, Option<Value>) {
        let mount = self.name(&[
            "fz1",
            "fz2",
            "fz1",
            "fz/nested",
            "db",
            "mongodb",
            "sys",
            "auth",
            "auth/token",
            "cubbyhole",
            "identity",
        ]);
        let ttl_default = self.duration(&["1h", "system", "0", "10s"]);
        let ttl_max = self.duration(&["24h", "system", "0", "20s"]);
        let description = self.text(&["fuzz mount", ""]);
        let ty = self.text(&[
            "database",
            "database",
            "mongodb",
            "kv",
            "system",
            "DATABASE",
            "../database",
            "token",
        ]);
        match self.rng.random_range(0..10) {
            0 => {
                let method = self.method(&["GET"]);
                ("sys/mounts".into(), method, "/v1/sys/mounts".into(), None)
            }
            1..=3 => {
                let method = self.method(&["GET", "POST", "PUT"]);
                let body = self.object(vec![
                    ("default_lease_ttl", ttl_default),
                    ("max_lease_ttl", ttl_max),
                    ("description", description),
                ]);
                (
                    "sys/mounts/tune".into(),
                    method,
                    format!("/v1/sys/mounts/{mount}/tune"),
                    Some(body),
                )
            }
            _ => {
                // Deleting the base mounts happens, but rarely.
                let method = if matches!(mount.as_str(), "db" | "mongodb") {
                    self.method(&["GET", "POST", "GET", "POST", "GET", "POST", "GET", "POST", "DELETE"])
                } else {
                    self.method(&["GET", "POST", "PUT", "DELETE"])
                };
                let local = self.boolean();
                let config = self.object(vec![
                    ("default_lease_ttl", ttl_default),
                    ("max_lease_ttl", ttl_max),
                    ("force_no_cache", json!(true)),
                ]);
                let body = self.object(vec![
                    ("type", ty),
                    ("description", description),
                    ("config", config),
                    ("local", local),
                    ("options", json!({"version": "2"})),
                ]);
                (
                    "sys/mounts/path".into(),
                    method,
                    format!("/v1/sys/mounts/{mount}"),
                    Some(body),
                )
            }
        }
    }

    fn leases_path(&mut self) -> (String, String, String, Option<Value>) {
        let id = self.lease_id();
        let increment = self.duration(&["1h", "60", "0", "10s"]);
        let in_url = self.chance(0.3);
        let url_id = if in_url {
            format!("/{}", encode_path(&id))
        } else {
            String::new()
        };
        let body = self.object(vec![("lease_id", json!(id)), ("increment", increment)]);
        let alias = self.chance(0.1);
        match self.rng.random_range(0..9) {
            0 | 1 => {
                let method = self.method(&["PUT", "POST"]);
                (
                    "sys/leases/lookup".into(),
                    method,
                    "/v1/sys/leases/lookup".into(),
                    Some(body),
                )
            }
            2 => {
                let prefix = self.pick(&[
                    "db/creds/dyn/",
                    "db/creds/",
                    "db/",
                    "mongodb/",
                    "",
                    "nope/",
                    "%00/",
                    "../",
                ]);
                let method = self.method(&["LIST"]);
                (
                    "sys/leases/lookup-list".into(),
                    method,
                    format!("/v1/sys/leases/lookup/{prefix}"),
                    None,
                )
            }
            3 => {
                let method = self.method(&["PUT", "POST"]);
                let base = if alias { "/v1/sys/renew" } else { "/v1/sys/leases/renew" };
                ("sys/leases/renew".into(), method, format!("{base}{url_id}"), Some(body))
            }
            4 => {
                let method = self.method(&["PUT", "POST"]);
                let base = if alias {
                    "/v1/sys/revoke"
                } else {
                    "/v1/sys/leases/revoke"
                };
                (
                    "sys/leases/revoke".into(),
                    method,
                    format!("{base}{url_id}"),
                    Some(body),
                )
            }
            5 => {
                let prefix = self.pick(&[
                    "db/creds/dyn",
                    "db/creds/r1",
                    "nope",
                    "mongodb/creds",
                    "",
                    "%00",
                    "db/creds/dyn/x",
                ]);
                let method = self.method(&["PUT", "POST"]);
                let base = if alias {
                    "/v1/sys/revoke-prefix"
                } else {
                    "/v1/sys/leases/revoke-prefix"
                };
                (
                    "sys/leases/revoke-prefix".into(),
                    method,
                    format!("{base}/{prefix}"),
                    None,
                )
            }
            6 => {
                let prefix = self.pick(&["db/creds/r2", "nope", "mongodb/creds", "", "%00", "db/creds/r1/x"]);
                let method = self.method(&["PUT", "POST"]);
                (
                    "sys/leases/revoke-force".into(),
                    method,
                    format!("/v1/sys/leases/revoke-force/{prefix}"),
                    None,
                )
            }
            7 => {
                let method = self.method(&["GET"]);
                let q = self.pick(&["?type=irrevocable", "", "?type=all", "?type=%ff"]);
                (
                    "sys/leases/count".into(),
                    method,
                    format!("/v1/sys/leases/count{q}"),
                    None,
                )
            }
            _ => {
                let method = self.method(&["GET", "LIST"]);
                let q = self.pick(&[
                    "?type=irrevocable",
                    "?type=irrevocable&limit=1",
                    "?type=irrevocable&limit=none",
                    "?type=irrevocable&limit=-5",
                    "?type=irrevocable&limit=1e999",
                    "",
                    "?type=nope",
                ]);
                ("sys/leases".into(), method, format!("/v1/sys/leases{q}"), None)
            }
        }
    }

    fn password_policy_path(&mut self) -> (String, String, String, Option<Value>) {
        let name = self.name(&["fuzzpol", "p1", "p2", "missing"]);
        match self.rng.random_range(0..5) {
            0 => {
                let method = self.method(&["GET"]);
                (
                    "sys/policies/password/generate".into(),
                    method,
                    format!("/v1/sys/policies/password/{name}/generate"),
                    None,
                )
            }
            1 => {
                let method = self.method(&["LIST"]);
                (
                    "sys/policies/password".into(),
                    method,
                    "/v1/sys/policies/password".into(),
                    None,
                )
            }
            _ => {
                let method = self.method(&["POST", "PUT", "GET", "DELETE"]);
                let policy = self.policy();
                let body = self.object(vec![("policy", policy)]);
                (
                    "sys/policies/password".into(),
                    method,
                    format!("/v1/sys/policies/password/{name}"),
                    Some(body),
                )
            }
        }
    }

    fn seal_and_token_path(&mut self) -> (String, String, String, Option<Value>) {
        match self.rng.random_range(0..10) {
            0 => (
                "sys/health".into(),
                self.method(&["GET", "HEAD"]),
                "/v1/sys/health".into(),
                None,
            ),
            1 => (
                "sys/seal-status".into(),
                self.method(&["GET"]),
                "/v1/sys/seal-status".into(),
                None,
            ),
            2 => {
                let shares = self.integer(&[1, 3, 5]);
                let threshold = self.integer(&[1, 2, 3]);
                let body = self.object(vec![
                    ("secret_shares", shares),
                    ("secret_threshold", threshold),
                    ("pgp_keys", json!(["x"])),
                ]);
                (
                    "sys/init".into(),
                    self.method(&["GET", "PUT", "POST"]),
                    "/v1/sys/init".into(),
                    Some(body),
                )
            }
            3 => {
                let key = self.text(&[
                    "00",
                    "not-hex",
                    "aGVsbG8=",
                    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                ]);
                let reset = self.boolean();
                let body = self.object(vec![("key", key), ("reset", reset)]);
                (
                    "sys/unseal".into(),
                    self.method(&["PUT", "POST"]),
                    "/v1/sys/unseal".into(),
                    Some(body),
                )
            }
            4 => (
                "sys/key-status".into(),
                self.method(&["GET"]),
                "/v1/sys/key-status".into(),
                None,
            ),
            5 => {
                // Rotations add a key term each: kept rare.
                let method = if self.chance(0.2) {
                    self.method(&["PUT", "POST"])
                } else {
                    "GET".into()
                };
                ("sys/rotate".into(), method, "/v1/sys/rotate".into(), None)
            }
            6 => (
                "sys/plugins/catalog/database".into(),
                self.method(&["LIST", "GET"]),
                "/v1/sys/plugins/catalog/database".into(),
                None,
            ),
            7 => (
                "auth/token/lookup-self".into(),
                self.method(&["GET", "POST"]),
                "/v1/auth/token/lookup-self".into(),
                None,
            ),
            8 => {
                let token = self.text(&["root", "wrong"]);
                let body = self.object(vec![("token", token)]);
                (
                    "auth/token/lookup".into(),
                    self.method(&["POST", "PUT"]),
                    "/v1/auth/token/lookup".into(),
                    Some(body),
                )
            }
            _ => {
                let rest = self.name(&[
                    "create",
                    "renew-self",
                    "revoke-self",
                    "lookup-accessor",
                    "roles/x",
                    "accessors",
                ]);
                (
                    "auth/token/other".into(),
                    self.method(&["POST", "GET", "LIST"]),
                    format!("/v1/auth/token/{rest}"),
                    Some(json!({})),
                )
            }
        }
    }
}

/// A lease id as a URL path: its characters that HTTP would not carry
/// as written percent-encoded, the rest (`/`, `..`, `%`) left alone.
fn encode_path(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/%!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_tokens_are_written_verbatim() {
        let body = json!({"a": raw("18446744073709551616"), "b": [raw("1e999"), "x"]});
        let text = String::from_utf8(serialize(&body)).unwrap();
        assert!(text.contains("\"a\":18446744073709551616"), "{text}");
        assert!(text.contains("[1e999,\"x\"]"), "{text}");
    }

    #[test]
    fn responses_parse_with_length_chunks_and_head() {
        let r = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 13\r\n\r\n{\"errors\":[]}";
        assert_eq!(parse_response(r, false), Some((400, b"{\"errors\":[]}".to_vec())));
        let r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(r, false), Some((200, b"abcde".to_vec())));
        assert_eq!(
            parse_response(b"HTTP/1.1 405 x\r\ncontent-length: 9\r\n\r\n", true),
            Some((405, vec![]))
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc", false),
            None
        );
        assert_eq!(parse_response(b"", false), None);
    }

    #[test]
    fn error_bodies() {
        assert!(is_error_body(br#"{"errors":["x"]}"#));
        assert!(is_error_body(br#"{"errors":[]}"#));
        assert!(!is_error_body(b"length limit exceeded"));
        assert!(!is_error_body(br#"{"errors":"x"}"#));
        assert!(!is_error_body(b""));
    }

    #[test]
    fn the_same_seed_makes_the_same_requests() {
        let world = Arc::new(World {
            pg_url: "postgresql://{{username}}:{{password}}@127.0.0.1:1/x".into(),
            closed_pg_url: "postgresql://{{username}}:{{password}}@127.0.0.1:2/x".into(),
            closed_mongo_url: "mongodb://127.0.0.1:2/admin".into(),
            admin_user: "a".into(),
            admin_password: "p".into(),
            rot_user: "r".into(),
            static_users: vec!["s".into()],
        });
        let mut a = Generator::new(7, 1, 2, world.clone(), LeasePool::default());
        let mut b = Generator::new(7, 1, 2, world, LeasePool::default());
        for _ in 0..300 {
            let (x, y) = (a.next_request(), b.next_request());
            assert_eq!((x.method, x.target, x.body), (y.method, y.target, y.body));
        }
    }
}
