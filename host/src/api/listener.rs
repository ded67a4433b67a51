//! The HTTP listeners' connections. Warden accepts TCP connections itself
//! and runs hyper's HTTP/1 on each (with TLS first where configured), so
//! that Vault's listener settings hold the same way on every listener (dev,
//! plain, TLS): `http_read_header_timeout`, `http_read_timeout`,
//! `http_write_timeout`, `http_idle_timeout`, `max_request_size`,
//! `max_request_duration`, and Warden's own cap on open connections.
//!
//! hyper's built-in header timeout is not used: it also runs while a
//! kept-alive connection waits for its next request, so it would close idle
//! connections after 10 s instead of Vault's 5 minutes (and a Go client that
//! reuses such a connection for a POST gets an error instead of a retry).
//! Instead each connection has a [`Watch`] that follows it as Go's server
//! does: the header clock starts at accept or at the first byte after an
//! idle spell, the body deadline is the head's start plus the read timeout
//! (enforced where the body is read, in api/mod.rs, which answers a JSON
//! 408), the write clock runs while a request is in the service, and the
//! idle clock while nothing is.

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use hyper::body::{Frame, Incoming, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Vault's default `max_request_size`: 32 MiB.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 32 << 20;
/// Open connections per listener when `max_connections` is not set: far
/// more than a secrets server on a few cores serves at once, few enough to
/// stay under a default file descriptor limit with room for storage and
/// database pools.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The longest request target (path and query) the API reads; longer ones
/// get a JSON 414. hyper refuses targets of 64 KiB and more by itself, with
/// an empty 414 (its limit cannot be raised), so this one is below it.
pub const MAX_URI_BYTES: usize = 32 << 10;
/// The most header bytes (names and values) a request may carry: JSON 431
/// past it. Go's server allows 1 MiB; Vault's clients send a few hundred
/// bytes (a batch token is the largest), and this bounds what an idle
/// unauthenticated client makes the server hold.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// The most header fields a request may carry: JSON 431 past it (hyper's
/// own default, now enforced here so that the answer is JSON).
pub const MAX_HEADER_COUNT: usize = 100;
/// hyper's read buffer: room for a head of MAX_URI_BYTES + MAX_HEADER_BYTES,
/// so that a head over those limits reaches the service and gets a JSON
/// answer; a head over this gets hyper's own empty 431.
const HYPER_MAX_BUF: usize = 128 << 10;
/// hyper's header count limit, above MAX_HEADER_COUNT for the same reason.
const HYPER_MAX_HEADERS: usize = 4 * MAX_HEADER_COUNT;
/// At shutdown, how long requests under way may take to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// One listener's HTTP settings (Vault's names and defaults; a zero timeout
/// is "none", except where Vault falls back to another one, see below).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpLimits {
    /// `http_read_header_timeout` (10s); 0 falls back to the read timeout.
    pub read_header_timeout: Duration,
    /// `http_read_timeout` (30s): from the head's first byte to the body's end.
    pub read_timeout: Duration,
    /// `http_write_timeout` (0: none): from the head's end to the response's.
    pub write_timeout: Duration,
    /// `http_idle_timeout` (5m); 0 falls back to the read, then the header timeout.
    pub idle_timeout: Duration,
    /// `max_request_size` (32 MiB); None: no limit (Vault's negative value).
    pub max_request_size: Option<usize>,
    /// `max_request_duration` (90s): how long the API works on one request.
    pub max_request_duration: Duration,
    /// `max_connections` (Warden's own): open connections at once; more wait
    /// in the kernel's accept queue until one closes.
    pub max_connections: usize,
    /// `disable_unauthed_generate_root_endpoints` (OpenBao's; false, as
    /// Vault): answer Vault's token-less `sys/generate-root/*` with 405, so
    /// that nobody without a token can start or cancel a root generation
    /// through this listener (`sys/generate-root-token/*` still works).
    pub disable_unauthed_generate_root: bool,
    /// The HA cluster listener (mutual TLS with the cluster's certificate):
    /// its clients are standbys forwarding, whose
    /// `X-Warden-Forwarded-For` names the real client.
    pub cluster: bool,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            read_header_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::ZERO,
            idle_timeout: Duration::from_secs(300),
            max_request_size: Some(DEFAULT_MAX_REQUEST_SIZE),
            max_request_duration: Duration::from_secs(90),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            disable_unauthed_generate_root: false,
            cluster: false,
        }
    }
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl HttpLimits {
    /// As Go's server: the header timeout, else the read timeout.
    fn header_timeout(&self) -> Option<Duration> {
        nonzero(self.read_header_timeout).or(nonzero(self.read_timeout))
    }

    fn idle(&self) -> Option<Duration> {
        nonzero(self.idle_timeout).or(self.header_timeout())
    }

    /// As Go's server: the shortest of the read, write and header timeouts.
    fn handshake_timeout(&self) -> Option<Duration> {
        [self.read_header_timeout, self.read_timeout, self.write_timeout]
            .into_iter()
            .filter(|d| !d.is_zero())
            .min()
    }
}

/// What the API's handler needs of its listener's settings, put in each
/// request's extensions (absent when the router is called directly, as in
/// unit tests: then the defaults, with no body deadline).
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// When the body must have arrived (the read timeout from the head's start).
    pub body_deadline: Option<Instant>,
    pub max_request_size: Option<usize>,
    pub max_request_duration: Duration,
    pub disable_unauthed_generate_root: bool,
    /// The request came over the cluster listener (forwarded by a standby).
    pub from_cluster: bool,
}

impl Default for RequestLimits {
    fn default() -> Self {
        let d = HttpLimits::default();
        RequestLimits {
            body_deadline: None,
            max_request_size: d.max_request_size,
            max_request_duration: d.max_request_duration,
            disable_unauthed_generate_root: d.disable_unauthed_generate_root,
            from_cluster: false,
        }
    }
}

/// Serve `router` on `listener` until `stop` turns true; then stop
/// accepting, let the requests under way finish (a few seconds at most) and
/// return. Never fails: a failed accept (such as too many open files) is
/// logged and retried, a failed connection ends only itself.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: HttpLimits,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        // Take a slot before accepting: past the cap, new connections wait
        // in the kernel's accept queue rather than being accepted and held.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let (limits, router, stop, tls) = (limits.clone(), router.clone(), stop.clone(), tls.clone());
        conns.spawn(async move {
            let _slot = slot;
            match tls {
                None => connection(stream, peer.ip(), router, limits, stop).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    let done = match limits.handshake_timeout() {
                        Some(t) => tokio::time::timeout(t, handshake).await.ok(),
                        None => Some(handshake.await),
                    };
                    match done {
                        Some(Ok(stream)) => connection(stream, peer.ip(), router, limits, stop).await,
                        Some(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        None => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    // Every connection saw `stop` too and is closing or finishing its request.
    let all_closed = async { while conns.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), all_closed).await;
}

/// A failed accept: the client's own failures are skipped, a shortage of
/// file descriptors or memory waits a moment (as Go's server does) rather
/// than spinning or ending the listener.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Where a connection is in its request cycle, and since when.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head (since accept, or the first byte after idling).
    Head(Instant),
    /// `n` requests in the service since `since` (HTTP/1: one at a time).
    Busy { since: Instant, n: usize },
    /// Kept alive with nothing to do since then.
    Idle(Instant),
}

/// A connection's phase, shared by its reader, its service and its task.
struct Watch {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Watch {
    fn new() -> Self {
        Watch {
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
        }
    }

    /// Change the phase and wake the connection's task to re-arm its clock.
    fn update(&self, f: impl FnOnce(Phase, Instant) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = f(*phase, Instant::now());
        drop(phase);
        self.changed.notify_one();
    }

    fn get(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: an idle connection starts a new request head.
    fn bytes_read(&self) {
        if matches!(self.get(), Phase::Idle(_)) {
            self.update(|p, now| match p {
                Phase::Idle(_) => Phase::Head(now),
                other => other,
            });
        }
    }

    /// The deadline for the current phase, and whether passing it closes
    /// the connection at once (a late head, a late response) or gracefully
    /// (an idle connection).
    fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, bool)> {
        let (start, timeout, abrupt) = match self.get() {
            Phase::Head(t) => (t, limits.header_timeout()?, true),
            Phase::Busy { since, .. } => (since, nonzero(limits.write_timeout)?, true),
            Phase::Idle(t) => (t, limits.idle()?, false),
        };
        // A deadline past what Instant can hold is no deadline.
        Some((start.checked_add(timeout)?, abrupt))
    }
}

/// A request in the service: the connection is busy until its response
/// body is dropped (written out, or the connection gone).
struct Busy {
    watch: Arc<Watch>,
}

impl Busy {
    /// Mark the connection busy; returns the guard and when the head began.
    fn begin(watch: Arc<Watch>) -> (Busy, Instant) {
        let mut head_start = Instant::now();
        watch.update(|p, now| match p {
            Phase::Head(t) => {
                head_start = t;
                Phase::Busy { since: now, n: 1 }
            }
            Phase::Busy { since, n } => Phase::Busy {
                since,
                n: n.saturating_add(1),
            },
            Phase::Idle(_) => Phase::Busy { since: now, n: 1 },
        });
        (Busy { watch }, head_start)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.watch.update(|p, now| match p {
            Phase::Busy { since, n } if n > 1 => Phase::Busy { since, n: n - 1 },
            _ => Phase::Idle(now),
        });
    }
}

/// A response body that keeps its request's [`Busy`] guard.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection's byte stream, telling its [`Watch`] when bytes arrive.
struct Watched<I> {
    io: I,
    watch: Arc<Watch>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.watch.bytes_read();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The address of the client a request came from (the connection's
/// peer), in the request's extensions: what CIDR-bound credentials are
/// checked against.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);

/// One request through the router, with its listener's limits and its
/// client's address attached.
async fn call(
    router: Router,
    watch: Arc<Watch>,
    limits: Arc<HttpLimits>,
    peer: std::net::IpAddr,
    mut req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Tracked>, Infallible> {
    let (busy, head_start) = Busy::begin(watch);
    // A standby names the client it forwards for; only a cluster member
    // (mutual TLS) can reach the cluster listener.
    let client = match limits.cluster {
        true => req
            .headers()
            .get(crate::ha::forward::FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(peer),
        false => peer,
    };
    req.extensions_mut().insert(ClientAddr(client));
    req.extensions_mut().insert(RequestLimits {
        from_cluster: limits.cluster,
        body_deadline: nonzero(limits.read_timeout).and_then(|t| head_start.checked_add(t)),
        max_request_size: limits.max_request_size,
        max_request_duration: limits.max_request_duration,
        disable_unauthed_generate_root: limits.disable_unauthed_generate_root,
    });
    let resp = match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    Ok(resp.map(|body| Tracked { body, _busy: busy }))
}

/// Serve one connection until it closes, its clock runs out, or `stop`.
async fn connection<I>(
    io: I,
    peer: std::net::IpAddr,
    router: Router,
    limits: Arc<HttpLimits>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = Arc::new(Watch::new());
    let service = {
        let (watch, limits) = (watch.clone(), limits.clone());
        hyper::service::service_fn(move |req| call(router.clone(), watch.clone(), limits.clone(), peer, req))
    };
    let io = hyper_util::rt::TokioIo::new(Watched {
        io,
        watch: watch.clone(),
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(HYPER_MAX_BUF)
        .max_headers(HYPER_MAX_HEADERS)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    loop {
        let deadline = watch.deadline(&limits);
        let expired = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            // The phase changed: re-arm the clock.
            _ = watch.changed.notified() => {}
            // Re-read the phase: it may have moved on as the clock ran out.
            _ = expired => match watch.deadline(&limits) {
                Some((at, true)) if at <= Instant::now() => {
                    tracing::debug!(phase = ?watch.get(), "closing a connection that ran out of time");
                    return;
                }
                Some((at, false)) if at <= Instant::now() => break,
                _ => {}
            },
            _ = stop.changed() => break,
        }
    }
    // Idle, or shutting down: close once the request under way (if any) is answered.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_fall_back_as_in_go() {
        let d = HttpLimits::default();
        assert_eq!(d.header_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(d.idle(), Some(Duration::from_secs(300)));
        assert_eq!(d.handshake_timeout(), Some(Duration::from_secs(10)));
        let l = HttpLimits {
            read_header_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            ..d.clone()
        };
        assert_eq!(l.header_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(l.idle(), Some(Duration::from_secs(30)));
        let none = HttpLimits {
            read_header_timeout: Duration::ZERO,
            read_timeout: Duration::ZERO,
            idle_timeout: Duration::ZERO,
            ..d
        };
        assert_eq!(none.header_timeout(), None);
        assert_eq!(none.idle(), None);
        assert_eq!(none.handshake_timeout(), None);
    }

    #[test]
    fn the_phase_follows_the_request_cycle() {
        let limits = HttpLimits {
            write_timeout: Duration::from_secs(7),
            ..HttpLimits::default()
        };
        let secs = Duration::from_secs;
        let watch = Arc::new(Watch::new());
        let Phase::Head(t0) = watch.get() else {
            panic!("a new connection waits for a head")
        };
        assert_eq!(watch.deadline(&limits), Some((t0 + secs(10), true)));
        // Bytes while waiting for a head do not restart its clock.
        watch.bytes_read();
        assert_eq!(watch.deadline(&limits), Some((t0 + secs(10), true)));
        let (busy, head_start) = Busy::begin(watch.clone());
        assert_eq!(head_start, t0, "the body deadline counts from the head's start");
        let Phase::Busy { since, n: 1 } = watch.get() else {
            panic!("busy")
        };
        assert_eq!(watch.deadline(&limits), Some((since + secs(7), true)));
        watch.bytes_read();
        assert!(matches!(watch.get(), Phase::Busy { .. }), "body bytes leave it busy");
        drop(busy);
        let Phase::Idle(t1) = watch.get() else {
            panic!("idle once the response is gone")
        };
        assert_eq!(watch.deadline(&limits), Some((t1 + secs(300), false)));
        // Bytes after an idle spell start the next head.
        watch.bytes_read();
        let Phase::Head(t2) = watch.get() else {
            panic!("a new head")
        };
        assert!(t2 >= t1);
        assert_eq!(watch.deadline(&limits), Some((t2 + secs(10), true)));
        // A timeout too far for Instant is no deadline, not an overflow.
        let far = HttpLimits {
            read_header_timeout: Duration::MAX,
            ..HttpLimits::default()
        };
        assert_eq!(watch.deadline(&far), None);
    }
}
