//! TLS for the HTTP listeners: rustls (ring provider) from the PEM files a
//! listener stanza names. Errors name the file, never its content. The
//! handshake itself runs in api::listener, under the listener's timeouts.
//! The certificate is read anew on SIGHUP ([`Certificate::reload`]), as
//! Vault does: new connections get the new one, open ones keep theirs.

use anyhow::Context;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

/// A listener's certificate and key, as last read from their files.
#[derive(Debug)]
pub struct Certificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("reading tls_cert_file {}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("tls_cert_file {} is not valid PEM", cert_file.display()))?;
    if certs.is_empty() {
        anyhow::bail!("tls_cert_file {} holds no certificate", cert_file.display());
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("tls_key_file {} holds no readable private key", key_file.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .with_context(|| format!("tls_key_file {} holds a key rustls cannot use", key_file.display()))?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().with_context(|| {
        format!(
            "the key in {} does not match the certificate in {}",
            key_file.display(),
            cert_file.display()
        )
    })?;
    Ok(Arc::new(certified))
}

impl Certificate {
    /// Read the files again; on any error the certificate in use stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = load(&self.cert_file, &self.key_file)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The acceptor of a TLS listener, and its certificate (to reload).
pub fn server_config(cert_file: &Path, key_file: &Path) -> anyhow::Result<(TlsAcceptor, Arc<Certificate>)> {
    let certificate = Arc::new(Certificate {
        cert_file: cert_file.to_path_buf(),
        key_file: key_file.to_path_buf(),
        current: RwLock::new(load(cert_file, key_file)?),
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(certificate.clone());
    // HTTP/1.1 only, as the plain listeners serve.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), certificate))
}
