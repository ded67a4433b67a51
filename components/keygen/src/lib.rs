//! Key pairs and client certificates for Warden's rsa-key and client-cert
//! generator components, as Vault's database engine makes them: an RSA key
//! pair (PKIX public key, PKCS#8 private key), and a client certificate for
//! a fresh RSA, EC (P-224/256/384/521) or Ed25519 key, signed by a given CA
//! (RSA, P-256, P-384 or Ed25519 key) with SHA-256/384/512. Pure Rust (RustCrypto); randomness
//! comes from the caller through [`Entropy`] (in a component, the host's
//! crypto import), never from WASI.

#![forbid(unsafe_code)]

use der::asn1::{BitString, SetOfVec, Utf8StringRef};
use der::{Any, Decode, Encode, EncodePem, Tag};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use rand_core::{CryptoRng, RngCore};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::LineEnding;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::Digest;
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};

/// Random bytes from outside (the host). A component passes a closure over
/// its `crypto::random-bytes` import.
pub struct Entropy<F: FnMut(&mut [u8])>(pub F);

impl<F: FnMut(&mut [u8])> RngCore for Entropy<F> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        (self.0)(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        (self.0)(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        (self.0)(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        (self.0)(dest);
        Ok(())
    }
}

/// The host's CSPRNG is a CSPRNG.
impl<F: FnMut(&mut [u8])> CryptoRng for Entropy<F> {}

/// A generated RSA key pair as PEM: `(PUBLIC KEY (PKIX), PRIVATE KEY (PKCS#8))`.
pub fn rsa_key_pair(rng: &mut (impl CryptoRng + RngCore), bits: usize) -> Result<(String, String), String> {
    if !matches!(bits, 2048 | 3072 | 4096) {
        return Err(format!("invalid key_bits: {bits}"));
    }
    let key = rsa::RsaPrivateKey::new(rng, bits).map_err(|e| format!("generating an RSA key: {e}"))?;
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?;
    let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| e.to_string())?;
    Ok((public, private.to_string()))
}

/// What a client certificate is made of (a role's normalised
/// `credential_config` plus the rendered common name and the times).
pub struct CertRequest<'a> {
    pub key_type: &'a str,
    /// RSA: 2048/3072/4096; EC: 224/256/384/521; ignored for Ed25519.
    pub key_bits: usize,
    /// The CA's signature hash: 256, 384 or 512.
    pub signature_bits: usize,
    pub common_name: &'a str,
    pub ca_cert_pem: &'a str,
    pub ca_key_pem: &'a str,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

/// A signed client certificate and its new private key.
pub struct CertBundle {
    pub certificate: String,
    pub private_key: String,
    /// `rsa`, `ec` or `ed25519`, as Vault's `private_key_type`.
    pub private_key_type: String,
    /// Colon-separated hex, as Vault prints serial numbers.
    pub serial_number: String,
    /// The subject DN, e.g. `CN=v-role-x`.
    pub subject: String,
    pub issuing_ca: String,
}

/// A new key of the requested kind: its private key PEM (Vault's formats:
/// PKCS#1 for RSA, SEC1 for EC, PKCS#8 for Ed25519) and its SPKI.
fn new_key(
    rng: &mut (impl CryptoRng + RngCore),
    key_type: &str,
    bits: usize,
) -> Result<(String, SubjectPublicKeyInfoOwned), String> {
    let spki = |der: der::Document| SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(|e| e.to_string());
    match (key_type, bits) {
        ("rsa", 2048 | 3072 | 4096) => {
            let key = rsa::RsaPrivateKey::new(rng, bits).map_err(|e| format!("generating an RSA key: {e}"))?;
            let pem = key.to_pkcs1_pem(LineEnding::LF).map_err(|e| e.to_string())?;
            let public = key.to_public_key().to_public_key_der().map_err(|e| e.to_string())?;
            Ok((pem.to_string(), spki(public)?))
        }
        ("ec", 256) => {
            use p256::elliptic_curve::sec1::ToEncodedPoint;
            let key = p256::SecretKey::random(rng);
            let point = key.public_key().to_encoded_point(false);
            let pem = sec1_pem(&key.to_bytes(), point.as_bytes(), "1.2.840.10045.3.1.7")?;
            let public = key.public_key().to_public_key_der().map_err(|e| e.to_string())?;
            Ok((pem, spki(public)?))
        }
        ("ec", 384) => {
            use p384::elliptic_curve::sec1::ToEncodedPoint;
            let key = p384::SecretKey::random(rng);
            let point = key.public_key().to_encoded_point(false);
            let pem = sec1_pem(&key.to_bytes(), point.as_bytes(), "1.3.132.0.34")?;
            let public = key.public_key().to_public_key_der().map_err(|e| e.to_string())?;
            Ok((pem, spki(public)?))
        }
        ("ec", 224) => {
            use p224::elliptic_curve::sec1::ToEncodedPoint;
            let key = p224::SecretKey::random(rng);
            let point = key.public_key().to_encoded_point(false);
            let pem = sec1_pem(&key.to_bytes(), point.as_bytes(), "1.3.132.0.33")?;
            let public = key.public_key().to_public_key_der().map_err(|e| e.to_string())?;
            Ok((pem, spki(public)?))
        }
        ("ec", 521) => {
            use p521::elliptic_curve::sec1::ToEncodedPoint;
            let key = p521::SecretKey::random(rng);
            let point = key.public_key().to_encoded_point(false);
            let pem = sec1_pem(&key.to_bytes(), point.as_bytes(), "1.3.132.0.35")?;
            let public = key.public_key().to_public_key_der().map_err(|e| e.to_string())?;
            Ok((pem, spki(public)?))
        }
        ("ec", other) => Err(format!("invalid key_bits: {other}")),
        ("ed25519", _) => {
            let key = ed25519_dalek::SigningKey::generate(rng);
            // PKCS#8 v1 (no public key inside), as Go's MarshalPKCS8PrivateKey
            // writes it; OpenSSL 3.0 cannot read the v2 form ed25519-dalek
            // writes.
            let seed = key.to_bytes();
            let inner = der::asn1::OctetStringRef::new(&seed)
                .and_then(|o| o.to_der())
                .map_err(|e| e.to_string())?;
            let info = ed25519_dalek::pkcs8::PrivateKeyInfo::new(
                ed25519_dalek::pkcs8::spki::AlgorithmIdentifierRef {
                    oid: ObjectIdentifier::new_unwrap("1.3.101.112"),
                    parameters: None,
                },
                &inner,
            );
            let der = info.to_der().map_err(|e| e.to_string())?;
            let pem = der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &der).map_err(|e| e.to_string())?;
            let public = key.verifying_key().to_public_key_der().map_err(|e| e.to_string())?;
            Ok((pem, spki(public)?))
        }
        ("rsa", other) => Err(format!("invalid key_bits: {other}")),
        (other, _) => Err(format!("invalid key_type: {other}")),
    }
}

/// An EC private key as SEC1 PEM ("EC PRIVATE KEY", as Go's
/// MarshalECPrivateKey writes it): with the curve named, which OpenSSL and
/// PostgreSQL's libpq need (the curve crates' own SEC1 output leaves it out).
fn sec1_pem(secret: &[u8], public_point: &[u8], curve: &str) -> Result<String, String> {
    let key = sec1::EcPrivateKey {
        private_key: secret,
        parameters: Some(sec1::EcParameters::NamedCurve(
            ObjectIdentifier::new(curve).map_err(|e| e.to_string())?,
        )),
        public_key: Some(public_point),
    };
    let der = key.to_der().map_err(|e| e.to_string())?;
    der::pem::encode_string("EC PRIVATE KEY", LineEnding::LF, &der).map_err(|e| e.to_string())
}

/// The CA's signing key, from PKCS#8, PKCS#1 or SEC1 PEM.
enum CaKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl CaKey {
    fn parse(pem: &str) -> Result<CaKey, String> {
        let pem = pem.trim();
        if pem.contains("BEGIN RSA PRIVATE KEY") {
            return rsa::RsaPrivateKey::from_pkcs1_pem(pem)
                .map(|k| CaKey::Rsa(Box::new(k)))
                .map_err(|e| format!("ca_private_key: {e}"));
        }
        if pem.contains("BEGIN EC PRIVATE KEY") {
            if let Ok(k) = p256::SecretKey::from_sec1_pem(pem) {
                return Ok(CaKey::P256(k.into()));
            }
            return p384::SecretKey::from_sec1_pem(pem)
                .map(|k| CaKey::P384(k.into()))
                .map_err(|_| "ca_private_key: an EC key on a curve other than P-256 or P-384".to_string());
        }
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            return Ok(CaKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_pem(pem) {
            return Ok(CaKey::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_pem(pem) {
            return Ok(CaKey::P384(k.into()));
        }
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(CaKey::Ed25519(Box::new(k)));
        }
        Err("ca_private_key: not an RSA, P-256, P-384 or Ed25519 private key in PEM".into())
    }

    fn public_key_der(&self) -> Result<Vec<u8>, String> {
        let doc = match self {
            CaKey::Rsa(k) => k.to_public_key().to_public_key_der(),
            CaKey::P256(k) => k.verifying_key().to_public_key_der(),
            CaKey::P384(k) => k.verifying_key().to_public_key_der(),
            CaKey::Ed25519(k) => k.verifying_key().to_public_key_der(),
        };
        doc.map(|d| d.as_bytes().to_vec()).map_err(|e| e.to_string())
    }

    /// The signature algorithm for `bits` (Ed25519 has one of its own).
    fn algorithm(&self, bits: usize) -> Result<AlgorithmIdentifierOwned, String> {
        let (oid, null_params) = match (self, bits) {
            (CaKey::Rsa(_), 256) => ("1.2.840.113549.1.1.11", true),
            (CaKey::Rsa(_), 384) => ("1.2.840.113549.1.1.12", true),
            (CaKey::Rsa(_), 512) => ("1.2.840.113549.1.1.13", true),
            (CaKey::P256(_) | CaKey::P384(_), 256) => ("1.2.840.10045.4.3.2", false),
            (CaKey::P256(_) | CaKey::P384(_), 384) => ("1.2.840.10045.4.3.3", false),
            (CaKey::P256(_) | CaKey::P384(_), 512) => ("1.2.840.10045.4.3.4", false),
            (CaKey::Ed25519(_), _) => ("1.3.101.112", false),
            (_, other) => return Err(format!("invalid signature_bits: {other}")),
        };
        Ok(AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new(oid).map_err(|e| e.to_string())?,
            parameters: null_params
                .then(|| Any::new(Tag::Null, Vec::<u8>::new()))
                .transpose()
                .map_err(|e| e.to_string())?,
        })
    }

    fn sign(&self, bits: usize, message: &[u8]) -> Result<Vec<u8>, String> {
        let digest = || -> Vec<u8> {
            match bits {
                384 => sha2::Sha384::digest(message).to_vec(),
                512 => sha2::Sha512::digest(message).to_vec(),
                _ => sha2::Sha256::digest(message).to_vec(),
            }
        };
        let fail = |e: rsa::signature::Error| format!("signing the certificate: {e}");
        Ok(match self {
            CaKey::Rsa(k) => match bits {
                384 => rsa::pkcs1v15::SigningKey::<sha2::Sha384>::new((**k).clone()).try_sign(message),
                512 => rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new((**k).clone()).try_sign(message),
                _ => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**k).clone()).try_sign(message),
            }
            .map_err(fail)?
            .to_vec(),
            CaKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign_prehash(&digest()).map_err(fail)?;
                sig.to_der().as_bytes().to_vec()
            }
            CaKey::P384(k) => {
                let sig: p384::ecdsa::Signature = k.sign_prehash(&digest()).map_err(fail)?;
                sig.to_der().as_bytes().to_vec()
            }
            CaKey::Ed25519(k) => k.sign(message).to_vec(),
        })
    }
}

fn time(unix: i64) -> Result<Time, String> {
    let secs = u64::try_from(unix).map_err(|_| format!("time {unix} is before 1970"))?;
    Time::try_from(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).map_err(|e| e.to_string())
}

fn extension(oid: &str, critical: bool, value: &impl Encode) -> Result<Extension, String> {
    Ok(Extension {
        extn_id: ObjectIdentifier::new(oid).map_err(|e| e.to_string())?,
        critical,
        extn_value: der::asn1::OctetString::new(value.to_der().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?,
    })
}

/// Checks that the CA certificate may sign (basicConstraints cA, as Vault
/// requires) and that the key is the certificate's.
fn check_ca(ca: &Certificate, key: &CaKey) -> Result<(), String> {
    let basic = ca
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid_basic_constraints())
        .ok_or("the given certificate does not meet basic constraints for CA use")?;
    let constraints = BasicConstraints::from_der(basic.extn_value.as_bytes())
        .map_err(|e| format!("ca_cert basicConstraints: {e}"))?;
    if !constraints.ca {
        return Err("the given certificate is not marked for CA use".into());
    }
    let ca_public = ca
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    if ca_public != key.public_key_der()? {
        return Err("ca_private_key does not belong to ca_cert".into());
    }
    Ok(())
}

fn const_oid_basic_constraints() -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap("2.5.29.19")
}

/// A client certificate for a new key, signed by the CA.
pub fn client_certificate(rng: &mut (impl CryptoRng + RngCore), req: &CertRequest) -> Result<CertBundle, String> {
    use x509_cert::der::DecodePem;
    let ca = Certificate::from_pem(req.ca_cert_pem.trim()).map_err(|e| format!("ca_cert: {e}"))?;
    let ca_key = CaKey::parse(req.ca_key_pem)?;
    check_ca(&ca, &ca_key)?;
    let algorithm = ca_key.algorithm(req.signature_bits)?;
    let (private_key, spki) = new_key(rng, req.key_type, req.key_bits)?;

    let mut serial = [0u8; 16];
    rng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x01; // positive, and 16 bytes long
    let cn = Utf8StringRef::new(req.common_name).map_err(|e| e.to_string())?;
    let rdn = RelativeDistinguishedName(
        SetOfVec::try_from(vec![x509_cert::attr::AttributeTypeAndValue {
            oid: ObjectIdentifier::new_unwrap("2.5.4.3"),
            value: Any::encode_from(&cn).map_err(|e| e.to_string())?,
        }])
        .map_err(|e| e.to_string())?,
    );
    let subject: Name = RdnSequence(vec![rdn]);
    let extensions = vec![
        extension("2.5.29.15", true, &KeyUsage(KeyUsages::DigitalSignature.into()))?,
        extension(
            "2.5.29.37",
            false,
            &ExtendedKeyUsage(vec![ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2")]),
        )?,
    ];
    let tbs = x509_cert::TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: SerialNumber::new(&serial).map_err(|e| e.to_string())?,
        signature: algorithm.clone(),
        issuer: ca.tbs_certificate.subject.clone(),
        validity: Validity {
            not_before: time(req.not_before)?,
            not_after: time(req.not_after)?,
        },
        subject: subject.clone(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let signature = ca_key.sign(req.signature_bits, &tbs.to_der().map_err(|e| e.to_string())?)?;
    let certificate = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature).map_err(|e| e.to_string())?,
    };
    Ok(CertBundle {
        certificate: certificate
            .to_pem(der::pem::LineEnding::LF)
            .map_err(|e| e.to_string())?,
        private_key,
        private_key_type: req.key_type.to_string(),
        serial_number: serial.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
        subject: subject.to_string(),
        issuing_ca: ca.to_pem(der::pem::LineEnding::LF).map_err(|e| e.to_string())?,
    })
}
