//! Vault's `rsa_private_key` credential generator as a Warden component
//! (world credential-generator). Settings: `key_bits` (2048, 3072 or 4096;
//! default 2048) and `format` (only `pkcs8`). Returns `public_key` (PEM,
//! PKIX) for the database and `private_key` (PEM, PKCS#8) for the client.
//! Randomness is the host's (crypto import), fetched in blocks.

use exports::warden::plugin::generator::Guest;
use warden::plugin::crypto;
use warden_keygen::Entropy;

wit_bindgen::generate!({ world: "credential-generator", path: "../../wit" });

struct RsaKey;

impl Guest for RsaKey {
    fn generate(config: Vec<(String, String)>) -> Result<Vec<(String, String)>, String> {
        let setting = |key: &str| config.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim());
        let bits = match setting("key_bits") {
            None | Some("") | Some("0") => 2048,
            Some(n) => n.parse().map_err(|_| format!("invalid key_bits: {n}"))?,
        };
        match setting("format").map(str::to_lowercase).as_deref() {
            None | Some("") | Some("pkcs8") => {}
            Some(other) => return Err(format!("invalid format: {other}")),
        }
        let (public, private) = warden_keygen::rsa_key_pair(&mut host_entropy(), bits)?;
        Ok(vec![("public_key".into(), public), ("private_key".into(), private)])
    }
}

export!(RsaKey);

/// The host's CSPRNG; prime search asks for many small pieces, so bytes are
/// fetched 4 KiB at a time.
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
