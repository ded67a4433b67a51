//! Vault's `client_certificate` credential generator as a Warden component
//! (world credential-generator). Settings: a role's `credential_config`
//! (`key_type` rsa/ec/ed25519, `key_bits`, `signature_bits`,
//! `common_name_template`, `ca_cert`, `ca_private_key`), plus
//! `display_name` and `role_name` for the common name template and
//! `not_after` (Unix seconds, the lease's expiry). Returns `certificate`,
//! `private_key`, `private_key_type`, `serial_number`, `subject` and
//! `issuing_ca`. The certificate is valid from 30 seconds ago (as Vault's).

use exports::warden::plugin::generator::Guest;
use warden::plugin::{clock, crypto};
use warden_driver_common::Env;
use warden_driver_common::template::{Template, UsernameMetadata};
use warden_keygen::{CertRequest, Entropy};

wit_bindgen::generate!({ world: "credential-generator", path: "../../wit" });

/// Vault backdates a certificate's notBefore by this much for clock skew.
const BACKDATE_SECONDS: i64 = 30;

struct ClientCert;

impl Guest for ClientCert {
    fn generate(config: Vec<(String, String)>) -> Result<Vec<(String, String)>, String> {
        let setting = |key: &str| config.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.trim());
        let number = |key: &str, default: usize| match setting(key) {
            "" | "0" => Ok(default),
            n => n.parse::<usize>().map_err(|_| format!("invalid {key}: {n}")),
        };
        let key_type = setting("key_type");
        let key_bits = match key_type {
            "rsa" => number("key_bits", 2048)?,
            "ec" => number("key_bits", 256)?,
            _ => 0,
        };
        let template = setting("common_name_template");
        if template.is_empty() {
            return Err("missing required common_name_template".into());
        }
        let metadata = UsernameMetadata {
            display_name: setting("display_name"),
            role_name: setting("role_name"),
        };
        let common_name = Template::parse(template)
            .and_then(|t| t.render(&metadata, &mut Host))
            .map_err(|e| format!("common_name_template: {e}"))?;
        let now = clock::now().0;
        let not_after = match setting("not_after") {
            "" => return Err("missing not_after".into()),
            n => n.parse::<i64>().map_err(|_| format!("invalid not_after: {n}"))?,
        };
        let request = CertRequest {
            key_type,
            key_bits,
            signature_bits: number("signature_bits", 256)?,
            common_name: &common_name,
            ca_cert_pem: setting("ca_cert"),
            ca_key_pem: setting("ca_private_key"),
            not_before: now - BACKDATE_SECONDS,
            not_after,
        };
        let bundle = warden_keygen::client_certificate(&mut host_entropy(), &request)?;
        Ok(vec![
            ("certificate".into(), bundle.certificate),
            ("private_key".into(), bundle.private_key),
            ("private_key_type".into(), bundle.private_key_type),
            ("serial_number".into(), bundle.serial_number),
            ("subject".into(), bundle.subject),
            ("issuing_ca".into(), bundle.issuing_ca),
        ])
    }
}

export!(ClientCert);

/// The host's clock and randomness for the common name template.
struct Host;

impl Env for Host {
    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        crypto::random_bytes(u32::try_from(len).unwrap_or(u32::MAX))
    }
    fn now(&self) -> (i64, u32) {
        clock::now()
    }
    fn sha256(&self, data: &[u8]) -> Vec<u8> {
        crypto::sha256(data)
    }
}

/// The host's CSPRNG, fetched 4 KiB at a time (prime search for RSA keys
/// asks for many small pieces).
fn host_entropy() -> Entropy<impl FnMut(&mut [u8])> {
    let mut buffer: Vec<u8> = Vec::new();
    Entropy(move |dest: &mut [u8]| {
        if buffer.len() < dest.len() {
            let want = dest.len().max(4096);
            buffer.extend(crypto::random_bytes(u32::try_from(want).unwrap_or(u32::MAX)));
        }
        let rest = buffer.split_off(dest.len());
        dest.copy_from_slice(&buffer);
        buffer = rest;
    })
}
