//! Request forwarding from a standby to the active node: the client's
//! request (method, path, headers, body) goes as it came over HTTP/1.1 on
//! mutual TLS to the active node's cluster address, which serves it as its
//! own API would, and the answer comes back as it is. Connections are kept
//! and reused (a small pool per target). A failure to connect is told
//! apart from a failure after the request left: only the first may fall
//! back to a 307 redirect (the request surely did not run).

use super::cluster_tls::{Identity, SERVER_NAME};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The header a standby names the client's address in; trusted only on
/// the cluster listener (mutual TLS: only cluster members reach it).
pub const FORWARDED_FOR: &str = "x-warden-forwarded-for";
/// Connections kept idle per target.
const MAX_IDLE: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub enum ForwardError {
    /// No connection could be made: the request did not leave.
    Connect(String),
    /// The request left, and no answer came back whole.
    Failed(String),
}

struct Pool {
    /// `host:port` of the active node's cluster address.
    target: String,
    identity: Arc<Identity>,
    config: Arc<rustls::ClientConfig>,
    idle: Vec<SendRequest<Full<Bytes>>>,
}

#[derive(Default)]
pub struct Forwarder {
    pool: Mutex<Option<Pool>>,
}

/// `https://host:port/` → `host:port`.
pub fn host_port(cluster_addr: &str) -> &str {
    let rest = cluster_addr
        .strip_prefix("https://")
        .or_else(|| cluster_addr.strip_prefix("http://"))
        .unwrap_or(cluster_addr);
    rest.trim_end_matches('/')
}

/// Headers that belong to one connection, not to the request.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade" | "proxy-connection" | "host"
    ) || name.as_str() == FORWARDED_FOR
}

impl Forwarder {
    fn pool(&self) -> std::sync::MutexGuard<'_, Option<Pool>> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection to `target`, or a new one.
    async fn connection(
        &self,
        target: &str,
        identity: &Arc<Identity>,
    ) -> Result<SendRequest<Full<Bytes>>, ForwardError> {
        let config = {
            let mut pool = self.pool();
            let fresh = !matches!(&*pool, Some(p) if p.target == target && Arc::ptr_eq(&p.identity, identity));
            if fresh {
                let config = identity
                    .client_config()
                    .map_err(|e| ForwardError::Connect(format!("cluster TLS: {e}")))?;
                *pool = Some(Pool {
                    target: target.to_string(),
                    identity: identity.clone(),
                    config,
                    idle: Vec::new(),
                });
            }
            let p = pool.as_mut().ok_or_else(|| ForwardError::Connect("no pool".into()))?;
            while let Some(conn) = p.idle.pop() {
                if conn.is_ready() {
                    return Ok(conn);
                }
            }
            p.config.clone()
        };
        let dial = async {
            let tcp = tokio::net::TcpStream::connect(target).await?;
            let _ = tcp.set_nodelay(true);
            let name = rustls::pki_types::ServerName::try_from(SERVER_NAME)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
        };
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, dial)
            .await
            .map_err(|_| ForwardError::Connect(format!("connecting to {target} timed out")))?
            .map_err(|e| ForwardError::Connect(format!("connecting to {target}: {e}")))?;
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| ForwardError::Connect(format!("HTTP handshake with {target}: {e}")))?;
        tokio::spawn(async move {
            // Ends when the connection closes; an error then is the peer's.
            let _ = conn.await;
        });
        Ok(send)
    }

    fn give_back(&self, target: &str, conn: SendRequest<Full<Bytes>>) {
        let mut pool = self.pool();
        if let Some(p) = pool.as_mut().filter(|p| p.target == target)
            && p.idle.len() < MAX_IDLE
        {
            p.idle.push(conn);
        }
    }

    /// Send the request to `cluster_addr` and bring its answer back.
    #[allow(clippy::too_many_arguments, reason = "the parts of one HTTP request")]
    pub async fn forward(
        &self,
        cluster_addr: &str,
        identity: &Arc<Identity>,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
        client: Option<std::net::IpAddr>,
    ) -> Result<Response<Body>, ForwardError> {
        let target = host_port(cluster_addr);
        let mut conn = self.connection(target, identity).await?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .body(Full::new(body.clone()))
            .map_err(|e| ForwardError::Connect(format!("building the forwarded request: {e}")))?;
        let h = request.headers_mut();
        for (name, value) in headers {
            if !hop_by_hop(name) {
                h.append(name.clone(), value.clone());
            }
        }
        h.insert(header::HOST, HeaderValue::from_static(SERVER_NAME));
        if let Some(ip) = client
            && let Ok(v) = HeaderValue::from_str(&ip.to_string())
        {
            h.insert(FORWARDED_FOR, v);
        }
        let answer = conn
            .send_request(request)
            .await
            .map_err(|e| ForwardError::Failed(format!("forwarding to the active node: {e}")))?;
        let (parts, incoming) = answer.into_parts();
        let bytes = incoming
            .collect()
            .await
            .map_err(|e| ForwardError::Failed(format!("reading the active node's answer: {e}")))?
            .to_bytes();
        self.give_back(target, conn);
        let mut out = Response::new(Body::from(bytes));
        *out.status_mut() = parts.status;
        for (name, value) in &parts.headers {
            if !hop_by_hop(name) && name != header::CONTENT_LENGTH {
                out.headers_mut().append(name.clone(), value.clone());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_addresses_become_host_port() {
        assert_eq!(host_port("https://127.0.0.1:8201"), "127.0.0.1:8201");
        assert_eq!(host_port("https://node-a:8201/"), "node-a:8201");
        assert_eq!(host_port("10.0.0.1:8201"), "10.0.0.1:8201");
    }

    #[test]
    fn connection_headers_stay_behind() {
        assert!(hop_by_hop(&HeaderName::from_static("connection")));
        assert!(hop_by_hop(&HeaderName::from_static(FORWARDED_FOR)));
        assert!(!hop_by_hop(&HeaderName::from_static("x-vault-token")));
    }
}
