//! The cluster's TLS identity: one self-signed ECDSA P-256 certificate and
//! its key, made by the first node to become active and kept in the
//! encrypted storage (`core/cluster/tls`), so every unsealed node of the
//! cluster reads the same one. Forwarding between nodes is mutual TLS
//! where each side pins that exact certificate: the active node's cluster
//! listener accepts only clients presenting it, and a standby accepts
//! only a server presenting it (whatever address it dialled). Nothing
//! outside the cluster has the key, which never leaves the barrier but in
//! an unsealed node's memory.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::DistinguishedName;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};

/// The name in the certificate, and the name a standby asks for.
pub const SERVER_NAME: &str = "warden-cluster";

/// The identity as stored (base64 DER).
#[derive(Serialize, Deserialize)]
pub struct Stored {
    cert: String,
    key: String,
}

pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    certified: Arc<CertifiedKey>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity { .. }")
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

impl Identity {
    /// A new key and certificate.
    pub fn generate() -> anyhow::Result<Identity> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])?;
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        // The cluster keeps it; it is pinned, not checked against a CA.
        params.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CommonName, SERVER_NAME);
        params.distinguished_name = name;
        let cert = params.self_signed(&key)?;
        Identity::new(cert.der().clone(), PrivatePkcs8KeyDer::from(key.serialize_der()))
    }

    fn new(cert: CertificateDer<'static>, key: PrivatePkcs8KeyDer<'static>) -> anyhow::Result<Identity> {
        let signing = rustls::crypto::ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(key.clone_key()))
            .map_err(|e| anyhow::anyhow!("the cluster key cannot sign: {e}"))?;
        let certified = Arc::new(CertifiedKey::new(vec![cert.clone()], signing));
        Ok(Identity { cert, key, certified })
    }

    pub fn to_stored(&self) -> Stored {
        Stored {
            cert: B64.encode(self.cert.as_ref()),
            key: B64.encode(self.key.secret_pkcs8_der()),
        }
    }

    pub fn from_stored(stored: &Stored) -> anyhow::Result<Identity> {
        let cert = B64.decode(&stored.cert)?;
        let key = B64.decode(&stored.key)?;
        Identity::new(CertificateDer::from(cert), PrivatePkcs8KeyDer::from(key))
    }

    /// What a standby dials the active node with.
    pub fn client_config(self: &Arc<Self>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned(Some(self.clone()))))
            .with_client_auth_cert(vec![self.cert.clone()], PrivateKeyDer::Pkcs8(self.key.clone_key()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The identity this node knows now (none until it has read or made it).
pub type Cell = Arc<RwLock<Option<Arc<Identity>>>>;

fn current(cell: &Cell) -> Option<Arc<Identity>> {
    cell.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The cluster listener's TLS: its certificate and the client check both
/// read `cell` at each handshake (the identity arrives after unseal).
pub fn server_config(cell: Cell) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(PinnedClients(cell.clone())))
        .with_cert_resolver(Arc::new(Resolver(cell)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[derive(Debug)]
struct Resolver(Cell);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        current(&self.0).map(|i| i.certified.clone())
    }
}

fn pinned(identity: Option<&Arc<Identity>>, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    match identity {
        Some(i) if i.cert.as_ref() == presented.as_ref() => Ok(()),
        _ => Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ApplicationVerificationFailure,
        )),
    }
}

fn tls12(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
}

fn tls13(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
}

/// A standby's check of the active node: the pinned certificate.
#[derive(Debug)]
struct Pinned(Option<Arc<Identity>>);

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        pinned(self.0.as_ref(), end_entity).map(|()| ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// The active node's check of a client: the pinned certificate.
#[derive(Debug)]
struct PinnedClients(Cell);

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        pinned(current(&self.0).as_ref(), end_entity).map(|()| ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_survives_storage() {
        let a = Identity::generate().unwrap();
        let b = Identity::from_stored(&a.to_stored()).unwrap();
        assert_eq!(a.cert, b.cert);
        assert!(pinned(Some(&Arc::new(b)), &a.cert).is_ok());
        let other = Identity::generate().unwrap();
        assert!(pinned(Some(&Arc::new(other)), &a.cert).is_err());
        assert!(pinned(None, &a.cert).is_err());
    }

    /// A handshake between two ends pinning the same identity works; one
    /// with another identity fails.
    #[tokio::test]
    async fn mutual_tls_pins_the_cluster_certificate() {
        let id = Arc::new(Identity::generate().unwrap());
        let cell: Cell = Arc::new(RwLock::new(Some(id.clone())));
        let acceptor = server_config(cell).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(s).await {
                        use tokio::io::AsyncWriteExt;
                        let _ = tls.write_all(b"ok").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        let dial = |identity: Arc<Identity>| async move {
            let connector = tokio_rustls::TlsConnector::from(identity.client_config().unwrap());
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from(SERVER_NAME).unwrap();
            let mut tls = connector.connect(name, tcp).await?;
            let mut out = Vec::new();
            use tokio::io::AsyncReadExt;
            tls.read_to_end(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        assert_eq!(dial(id.clone()).await.unwrap(), b"ok");
        assert!(dial(Arc::new(Identity::generate().unwrap())).await.is_err());
    }
}
