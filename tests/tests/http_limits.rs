//! The HTTP layer against hostile or broken clients, over raw TCP sockets to
//! the real binary: a client that sends part of a head, or less body than it
//! announced, loses its connection (or gets a JSON 408) within the
//! listener's timeouts; every limit (URI, headers, body size, malformed
//! JSON) answers Vault's `{"errors":[...]}`; more connections than
//! `max_connections` wait, and the server goes on serving once they go.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use warden_tests::configured::{Node, NodeStorage};
use warden_tests::server::WardenServer;
use warden_tests::util;

/// One HTTP response read off a socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    /// The body is Vault's error envelope with at least one message.
    fn json_errors(&self) -> Result<Vec<String>> {
        ensure!(
            self.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "status {} is not JSON: {}",
            self.status,
            self.head
        );
        let v: Value = serde_json::from_slice(&self.body)
            .with_context(|| format!("body of {}: {}", self.status, String::from_utf8_lossy(&self.body)))?;
        let errors: Vec<String> = v["errors"]
            .as_array()
            .with_context(|| format!("no errors list: {v}"))?
            .iter()
            .filter_map(|e| e.as_str().map(String::from))
            .collect();
        ensure!(!errors.is_empty(), "an empty errors list: {v}");
        Ok(errors)
    }
}

fn connect(addr: &str) -> Result<TcpStream> {
    let s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

/// Read one response (head and Content-Length body) from `s`.
fn read_answer(s: &mut TcpStream) -> Result<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).context("reading a response head")?;
        if n == 0 {
            bail!("the connection closed before a response ({} bytes)", buf.len());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = s.read(&mut chunk).context("reading a response body")?;
        if n == 0 {
            bail!("the connection closed in the body");
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Answer { status, head, body })
}

/// Send `request` on a new connection and read the answer.
fn exchange(addr: &str, request: &[u8]) -> Result<Answer> {
    let mut s = connect(addr)?;
    s.write_all(request)?;
    read_answer(&mut s)
}

/// Wait until the server closes `s` (EOF or reset); the time it took.
fn time_to_close(s: &mut TcpStream, started: Instant) -> Result<Duration> {
    let mut chunk = [0u8; 1024];
    match s.read(&mut chunk) {
        Ok(0) => Ok(started.elapsed()),
        Ok(n) => bail!("unexpected bytes: {:?}", String::from_utf8_lossy(&chunk[..n])),
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
            Ok(started.elapsed())
        }
        Err(e) => bail!("still open after {:?}: {e}", started.elapsed()),
    }
}

/// The limits with Vault's defaults on a dev server: each refusal is JSON.
#[tokio::test]
async fn every_limit_answers_json() -> Result<()> {
    let server = WardenServer::start().await?;
    let addr = server.addr().to_string();

    // A body larger than max_request_size (32 MiB): refused from its
    // Content-Length, without waiting for it.
    let a = exchange(
        &addr,
        b"PUT /v1/sys/unseal HTTP/1.1\r\nHost: t\r\nContent-Length: 40000000\r\n\r\n",
    )?;
    ensure!(a.status == 413, "declared 40 MB body: {a:?}");
    ensure!(a.json_errors()?[0].contains("too large"), "{a:?}");

    // A 40 KiB request target.
    let long = format!(
        "GET /v1/sys/health?pad={} HTTP/1.1\r\nHost: t\r\n\r\n",
        "a".repeat(40 << 10)
    );
    let a = exchange(&addr, long.as_bytes())?;
    ensure!(a.status == 414, "40 KiB URI: {a:?}");
    a.json_errors()?;

    // 70 KiB of header, then 150 small header fields.
    let big = format!(
        "GET /v1/sys/health HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(70 << 10)
    );
    let a = exchange(&addr, big.as_bytes())?;
    ensure!(a.status == 431, "70 KiB header: {a:?}");
    a.json_errors()?;
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let a = exchange(
        &addr,
        format!("GET /v1/sys/health HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes(),
    )?;
    ensure!(a.status == 431, "150 header fields: {a:?}");
    a.json_errors()?;

    // Malformed JSON: 400, and the connection goes on serving.
    let mut s = connect(&addr)?;
    s.write_all(b"PUT /v1/sys/unseal HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\n\r\n{\"key\":")?;
    let a = read_answer(&mut s)?;
    ensure!(a.status == 400, "malformed JSON: {a:?}");
    ensure!(a.json_errors()?[0].contains("failed to parse JSON"), "{a:?}");
    s.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: t\r\n\r\n")?;
    let a = read_answer(&mut s)?;
    ensure!(a.status == 200, "health on the same connection: {a:?}");
    Ok(())
}

/// A listener configured with short timeouts, a small body limit and a
/// connection cap (a second listener with Vault's default timeouts holds the
/// cap, so that the header timeout cannot free its slots during the test).
#[tokio::test]
async fn slow_clients_time_out_and_the_connection_cap_holds() -> Result<()> {
    let mut node = Node::new(NodeStorage::Inmem)?;
    let fast = format!("127.0.0.1:{}", util::free_port()?);
    let capped = format!("127.0.0.1:{}", util::free_port()?);
    node.extra_config = format!(
        "\nlistener \"tcp\" {{\n  address = \"{fast}\"\n  tls_disable = true\n  \
         http_read_header_timeout = \"1s\"\n  http_read_timeout = \"2s\"\n  max_request_size = 4096\n}}\n\
         listener \"tcp\" {{\n  address = \"{capped}\"\n  tls_disable = true\n  max_connections = 4\n}}\n"
    );
    node.start().await?;

    // Part of a head, then nothing: closed at the header timeout (1 s).
    let mut s = connect(&fast)?;
    let started = Instant::now();
    s.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: t\r\n")?;
    let took = time_to_close(&mut s, started)?;
    ensure!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "a partial head was closed after {took:?}, expected about 1 s"
    );

    // Content-Length 100 and 8 bytes sent: a JSON 408 at the read timeout
    // (2 s from the head's start), then the connection closes.
    let mut s = connect(&fast)?;
    let started = Instant::now();
    s.write_all(b"PUT /v1/sys/unseal HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"key\":\"")?;
    let a = read_answer(&mut s)?;
    let took = started.elapsed();
    ensure!(a.status == 408, "short body: {a:?}");
    a.json_errors()?;
    ensure!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(6),
        "the short body was answered after {took:?}, expected about 2 s"
    );
    time_to_close(&mut s, Instant::now())?;

    // Over max_request_size (4096): by its Content-Length, and chunked.
    let body = format!("{{\"key\":\"{}\"}}", "k".repeat(5000));
    let a = exchange(
        &fast,
        format!(
            "PUT /v1/sys/unseal HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )?;
    ensure!(a.status == 413, "5 KB body: {a:?}");
    a.json_errors()?;
    let a = exchange(
        &fast,
        format!(
            "PUT /v1/sys/unseal HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )?;
    ensure!(a.status == 413, "5 KB chunked body: {a:?}");
    a.json_errors()?;

    // Four idle connections fill the cap: a fifth waits unanswered...
    let holders: Vec<TcpStream> = (0..4).map(|_| connect(&capped)).collect::<Result<_>>()?;
    let mut fifth = connect(&capped)?;
    fifth.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: t\r\n\r\n")?;
    fifth.set_read_timeout(Some(Duration::from_millis(700)))?;
    let mut byte = [0u8; 1];
    match fifth.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => bail!("a fifth connection past max_connections = 4 was served at once: {other:?}"),
    }
    // ...and is served once they go.
    drop(holders);
    fifth.set_read_timeout(Some(Duration::from_secs(10)))?;
    let a = read_answer(&mut fifth)?;
    ensure!(a.status == 501, "sys/health of an uninitialised node: {a:?}");
    // The other listener served on throughout.
    let a = exchange(&fast, b"GET /v1/sys/health HTTP/1.1\r\nHost: t\r\n\r\n")?;
    ensure!(a.status == 501, "{a:?}");
    Ok(())
}
