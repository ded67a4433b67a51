//! `warden:plugin/tcp` (contract 1.1.0): raw TCP streams, optionally TLS
//! (tokio-rustls), for drivers that speak their database's wire protocol
//! themselves, such as the Redis driver. The component names host and
//! port; the call's outbound allowlist ([`Outbound`]) must hold them.
//! Every wait is bounded (connect and TLS handshake, each read and write),
//! a read returns at most 64 KiB, and one instance holds at most
//! [`MAX_STREAMS`] open streams, so a driver can neither hang a request on
//! a silent server nor hoard sockets.

use super::CallState;
use super::outbound::Outbound;
use crate::bindings::driver::warden::plugin::tcp::{self, ConnectOptions, Host, HostConnection, TlsOptions};
use crate::bindings::driver::warden::plugin::types::Error;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest wait a component may ask for, connecting or per read/write.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// The most bytes one read returns.
const MAX_READ: u32 = 64 * 1024;
/// Open streams per instance; a driver opens one or two per call.
pub const MAX_STREAMS: usize = 8;

/// What a stream reads from and writes to: plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One open connection, as the component's `stream` resource.
pub struct Stream {
    io: Box<dyn Io>,
    io_timeout: Duration,
    peer: String,
}

/// The `tcp` import's state in one instance.
pub struct TcpState {
    outbound: Arc<Outbound>,
    table: ResourceTable,
    /// Streams open now (at most [`MAX_STREAMS`]).
    open: usize,
}

impl TcpState {
    pub fn new(outbound: Arc<Outbound>) -> Self {
        TcpState {
            outbound,
            table: ResourceTable::new(),
            open: 0,
        }
    }

    fn stream(&mut self, handle: &Resource<Stream>) -> Result<&mut Stream, Error> {
        self.table
            .get_mut(handle)
            .map_err(|e| Error::Other(format!("invalid stream handle: {e}")))
    }
}

pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    tcp::add_to_linker::<CallState, HasSelf<TcpState>>(linker, |s| &mut s.tcp)
}

impl Host for TcpState {}

impl HostConnection for TcpState {
    async fn connect(&mut self, host: String, port: u16, options: ConnectOptions) -> Result<Resource<Stream>, Error> {
        self.outbound.check(&host, port)?;
        if self.open >= MAX_STREAMS {
            return Err(Error::Other(format!(
                "this driver instance already holds {MAX_STREAMS} open connections"
            )));
        }
        let connect_timeout = bounded(options.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT);
        let peer = format!("{host}:{port}");
        let io = tokio::time::timeout(connect_timeout, open(&host, port, options.tls.as_ref()))
            .await
            .map_err(|_| {
                Error::ConnectionFailed(format!("connecting to {peer} timed out after {connect_timeout:?}"))
            })??;
        let stream = Stream {
            io,
            io_timeout: bounded(options.io_timeout_ms, DEFAULT_IO_TIMEOUT),
            peer,
        };
        let handle = self
            .table
            .push(stream)
            .map_err(|e| Error::Other(format!("too many open handles: {e}")))?;
        self.open += 1;
        Ok(handle)
    }

    async fn write(&mut self, stream: Resource<Stream>, data: Vec<u8>) -> Result<(), Error> {
        let s = self.stream(&stream)?;
        let wrote = tokio::time::timeout(s.io_timeout, async {
            s.io.write_all(&data).await?;
            s.io.flush().await
        })
        .await;
        match wrote {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::ConnectionFailed(format!("writing to {}: {e}", s.peer))),
            Err(_) => Err(timed_out("writing to", s)),
        }
    }

    async fn read(&mut self, stream: Resource<Stream>, max: u32) -> Result<Vec<u8>, Error> {
        let s = self.stream(&stream)?;
        let mut buf = vec![0; max.clamp(1, MAX_READ) as usize];
        match tokio::time::timeout(s.io_timeout, s.io.read(&mut buf)).await {
            Ok(Ok(n)) => {
                buf.truncate(n);
                Ok(buf)
            }
            Ok(Err(e)) => Err(Error::ConnectionFailed(format!("reading from {}: {e}", s.peer))),
            Err(_) => Err(timed_out("reading from", s)),
        }
    }

    async fn drop(&mut self, stream: Resource<Stream>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        self.open = self.open.saturating_sub(1);
        Ok(())
    }
}

/// A component's timeout in milliseconds: 0 for the default, and never
/// more than [`MAX_TIMEOUT`].
fn bounded(ms: u64, default: Duration) -> Duration {
    match ms {
        0 => default,
        ms => Duration::from_millis(ms).min(MAX_TIMEOUT),
    }
}

fn timed_out(what: &str, s: &Stream) -> Error {
    Error::ConnectionFailed(format!("{what} {} timed out after {:?}", s.peer, s.io_timeout))
}

async fn open(host: &str, port: u16, tls: Option<&TlsOptions>) -> Result<Box<dyn Io>, Error> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| Error::ConnectionFailed(format!("dial tcp {host}:{port}: {e}")))?;
    // Request/response protocols: send each request at once.
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Box::new(tcp));
    };
    let name = tls
        .server_name
        .clone()
        .unwrap_or_else(|| host.trim_matches(['[', ']']).to_string());
    let name = ServerName::try_from(name.clone())
        .map_err(|_| Error::BadParameter(format!("{name:?} is not a valid TLS server name")))?;
    let connector = TlsConnector::from(Arc::new(client_config(tls)?));
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| Error::ConnectionFailed(format!("TLS handshake with {host}:{port} failed: {e}")))?;
    Ok(Box::new(stream))
}

fn client_config(tls: &TlsOptions) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Other(format!("TLS setup: {e}")))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
    } else {
        builder.with_root_certificates(roots(tls.ca_pem.as_deref())?)
    };
    match (&tls.client_cert_pem, &tls.client_key_pem) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| Error::BadParameter("the client certificate is not valid PEM".into()))?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|_| Error::BadParameter("the client key is not a valid PEM private key".into()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::BadParameter(format!("the client certificate and key: {e}")))
        }
        _ => Err(Error::BadParameter(
            "a client certificate needs its private key, and a key its certificate".into(),
        )),
    }
}

/// The given PEM CA certificates, or the Mozilla roots (webpki-roots).
fn roots(ca_pem: Option<&str>) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    let Some(pem) = ca_pem else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    };
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|_| Error::BadParameter("the CA certificate is not valid PEM".into()))?;
        roots
            .add(cert)
            .map_err(|e| Error::BadParameter(format!("the CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::BadParameter(
            "the CA certificate PEM holds no certificate".into(),
        ));
    }
    Ok(roots)
}

/// Accepts any server certificate (insecure-skip-verify), but still checks
/// the handshake's signatures, so the session is at least bound to the key
/// the server showed.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_IO_TIMEOUT, MAX_TIMEOUT, bounded, roots};
    use std::time::Duration;

    #[test]
    fn timeouts_default_and_are_capped() {
        assert_eq!(bounded(0, DEFAULT_IO_TIMEOUT), DEFAULT_IO_TIMEOUT);
        assert_eq!(bounded(250, DEFAULT_IO_TIMEOUT), Duration::from_millis(250));
        assert_eq!(bounded(u64::MAX, DEFAULT_IO_TIMEOUT), MAX_TIMEOUT);
    }

    #[test]
    fn ca_pem_must_hold_a_certificate() {
        assert!(roots(None).is_ok_and(|r| !r.is_empty()));
        assert!(roots(Some("not pem")).is_err());
        assert!(roots(Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")).is_err());
    }
}
